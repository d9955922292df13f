/* SPDX-License-Identifier: Apache-2.0 */
#include "deb-breaker.h"

/* A clock the test moves by hand; starts far from 0 as a monotonic clock would. */
typedef struct {
        gint64 now_us;
} FakeClock;

static gint64 fake_clock_now(gpointer user_data)
{
        return ((FakeClock *)user_data)->now_us;
}

static void fake_clock_advance_ms(FakeClock *clock, gint64 ms)
{
        clock->now_us += ms * G_TIME_SPAN_MILLISECOND;
}

static DebBreaker *breaker_new_fake(FakeClock *clock, guint threshold, guint timeout_ms)
{
        DebBreakerPolicy p = {.failure_threshold = threshold, .recovery_timeout_ms = timeout_ms};

        clock->now_us = 1000 * G_TIME_SPAN_SECOND;
        return deb_breaker_new(&p, fake_clock_now, clock);
}

static void assert_state(DebBreaker *breaker, DebBreakerState expected)
{
        g_assert_cmpstr(deb_breaker_state_to_string(deb_breaker_get_state(breaker)), ==,
                        deb_breaker_state_to_string(expected));
}

/* Fails @n calls through @breaker, each allowed. */
static void fail_calls(DebBreaker *breaker, guint n)
{
        for (guint i = 0; i < n; i++) {
                g_assert_true(deb_breaker_allow(breaker, NULL));
                deb_breaker_record_failure(breaker);
        }
}

/* Opens the breaker and lets the recovery timeout pass, so the next allow is the probe. */
static void make_half_open(DebBreaker *breaker, FakeClock *clock, guint threshold, guint timeout_ms)
{
        fail_calls(breaker, threshold);
        assert_state(breaker, DEB_BREAKER_OPEN);
        fake_clock_advance_ms(clock, timeout_ms);
        assert_state(breaker, DEB_BREAKER_HALF_OPEN);
}

static void test_default_policy(void)
{
        DebBreakerPolicy p = deb_breaker_policy_default();

        g_assert_cmpuint(p.failure_threshold, >=, 1);
        g_assert_cmpuint(p.recovery_timeout_ms, >, 0);
}

static void test_opens_at_threshold(void)
{
        static const guint thresholds[] = {1, 2, 5, 20};

        for (gsize i = 0; i < G_N_ELEMENTS(thresholds); i++) {
                FakeClock clock;
                g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, thresholds[i], 1000);

                g_test_message("threshold %u", thresholds[i]);
                assert_state(breaker, DEB_BREAKER_CLOSED);
                fail_calls(breaker, thresholds[i] - 1);
                assert_state(breaker, DEB_BREAKER_CLOSED);
                g_assert_cmpuint(deb_breaker_get_consecutive_failures(breaker), ==, thresholds[i] - 1);
                g_assert_true(deb_breaker_allow(breaker, NULL));

                deb_breaker_record_failure(breaker);
                assert_state(breaker, DEB_BREAKER_OPEN);
                g_assert_cmpuint(deb_breaker_get_consecutive_failures(breaker), ==, thresholds[i]);
                g_assert_false(deb_breaker_allow(breaker, NULL));
        }
}

static void test_refuses_while_open(void)
{
        static const struct {
                gint64 elapsed_us; /* since it opened */
                guint retry_after_ms;
        } steps[] = {
                /* clang-format off */
                {0, 1000},
                {1, 1000},      /* rounded up: 999.999 ms left */
                {400000, 600},
                {998001, 2},
                {999000, 1},
                {999999, 1},
                /* clang-format on */
        };
        FakeClock clock;
        g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, 3, 1000);
        gint64 opened;

        fail_calls(breaker, 3);
        opened = clock.now_us;

        for (gsize i = 0; i < G_N_ELEMENTS(steps); i++) {
                guint retry_after = 0;

                g_test_message("%" G_GINT64_FORMAT " us after opening", steps[i].elapsed_us);
                clock.now_us = opened + steps[i].elapsed_us;
                for (int call = 0; call < 3; call++) {
                        g_assert_false(deb_breaker_allow(breaker, &retry_after));
                        g_assert_cmpuint(retry_after, ==, steps[i].retry_after_ms);
                }
                assert_state(breaker, DEB_BREAKER_OPEN);
        }

        clock.now_us = opened + 1000 * G_TIME_SPAN_MILLISECOND;
        assert_state(breaker, DEB_BREAKER_HALF_OPEN);
}

static void test_half_open_allows_one_probe(void)
{
        FakeClock clock;
        g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, 2, 500);
        guint retry_after = 0;

        make_half_open(breaker, &clock, 2, 500);

        g_assert_true(deb_breaker_allow(breaker, NULL));
        for (int call = 0; call < 5; call++) {
                g_assert_false(deb_breaker_allow(breaker, &retry_after));
                g_assert_cmpuint(retry_after, ==, 500);
        }
        fake_clock_advance_ms(&clock, 200);
        g_assert_false(deb_breaker_allow(breaker, &retry_after));
        g_assert_cmpuint(retry_after, ==, 300);
        assert_state(breaker, DEB_BREAKER_HALF_OPEN);
}

static void test_probe_success_closes(void)
{
        FakeClock clock;
        g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, 3, 500);

        make_half_open(breaker, &clock, 3, 500);
        g_assert_true(deb_breaker_allow(breaker, NULL));
        deb_breaker_record_success(breaker);

        assert_state(breaker, DEB_BREAKER_CLOSED);
        g_assert_cmpuint(deb_breaker_get_consecutive_failures(breaker), ==, 0);
        for (int call = 0; call < 10; call++)
                g_assert_true(deb_breaker_allow(breaker, NULL));

        /* a full threshold of fresh failures is needed to open it again */
        fail_calls(breaker, 2);
        assert_state(breaker, DEB_BREAKER_CLOSED);
        fail_calls(breaker, 1);
        assert_state(breaker, DEB_BREAKER_OPEN);
}

static void test_probe_failure_reopens(void)
{
        FakeClock clock;
        g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, 3, 500);
        guint retry_after = 0;

        make_half_open(breaker, &clock, 3, 500);
        g_assert_true(deb_breaker_allow(breaker, NULL));
        fake_clock_advance_ms(&clock, 100);
        deb_breaker_record_failure(breaker);

        /* open again for a whole timeout counted from the probe's failure */
        assert_state(breaker, DEB_BREAKER_OPEN);
        g_assert_false(deb_breaker_allow(breaker, &retry_after));
        g_assert_cmpuint(retry_after, ==, 500);
        fake_clock_advance_ms(&clock, 499);
        g_assert_false(deb_breaker_allow(breaker, &retry_after));
        g_assert_cmpuint(retry_after, ==, 1);
        fake_clock_advance_ms(&clock, 1);
        assert_state(breaker, DEB_BREAKER_HALF_OPEN);
        g_assert_true(deb_breaker_allow(breaker, NULL));
        g_assert_false(deb_breaker_allow(breaker, NULL));
}

static void test_success_resets_failures(void)
{
        FakeClock clock;
        g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, 3, 1000);

        for (int round = 0; round < 5; round++) {
                fail_calls(breaker, 2);
                g_assert_cmpuint(deb_breaker_get_consecutive_failures(breaker), ==, 2);
                g_assert_true(deb_breaker_allow(breaker, NULL));
                deb_breaker_record_success(breaker);
                g_assert_cmpuint(deb_breaker_get_consecutive_failures(breaker), ==, 0);
                assert_state(breaker, DEB_BREAKER_CLOSED);
        }
        fail_calls(breaker, 3);
        assert_state(breaker, DEB_BREAKER_OPEN);
}

/* Outcomes of calls allowed before the breaker opened neither close it nor keep it open longer. */
static void test_late_outcomes_while_open(void)
{
        FakeClock clock;
        g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, 2, 1000);
        guint retry_after = 0;

        g_assert_true(deb_breaker_allow(breaker, NULL)); /* two calls in flight */
        g_assert_true(deb_breaker_allow(breaker, NULL));
        fail_calls(breaker, 2);
        assert_state(breaker, DEB_BREAKER_OPEN);

        fake_clock_advance_ms(&clock, 300);
        deb_breaker_record_success(breaker);
        assert_state(breaker, DEB_BREAKER_OPEN);
        deb_breaker_record_failure(breaker);
        g_assert_false(deb_breaker_allow(breaker, &retry_after));
        g_assert_cmpuint(retry_after, ==, 700);

        fake_clock_advance_ms(&clock, 700);
        assert_state(breaker, DEB_BREAKER_HALF_OPEN);
}

/* A probe whose outcome never comes does not keep the breaker half-open forever. */
static void test_lost_probe(void)
{
        FakeClock clock;
        g_autoptr(DebBreaker) breaker = breaker_new_fake(&clock, 1, 400);
        guint retry_after = 0;

        make_half_open(breaker, &clock, 1, 400);
        g_assert_true(deb_breaker_allow(breaker, NULL));
        fake_clock_advance_ms(&clock, 399);
        g_assert_false(deb_breaker_allow(breaker, &retry_after));
        g_assert_cmpuint(retry_after, ==, 1);

        fake_clock_advance_ms(&clock, 1);
        g_assert_true(deb_breaker_allow(breaker, NULL));
        g_assert_false(deb_breaker_allow(breaker, NULL));
        deb_breaker_record_success(breaker);
        assert_state(breaker, DEB_BREAKER_CLOSED);
}

static void test_state_to_string(void)
{
        static const struct {
                DebBreakerState state;
                const char *name;
        } cases[] = {
                {DEB_BREAKER_CLOSED, "closed"},
                {DEB_BREAKER_OPEN, "open"},
                {DEB_BREAKER_HALF_OPEN, "half-open"},
                {(DebBreakerState)42, "unknown"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
                g_assert_cmpstr(deb_breaker_state_to_string(cases[i].state), ==, cases[i].name);
}

static void test_registry(void)
{
        DebBreakerPolicy p = {.failure_threshold = 2, .recovery_timeout_ms = 1000};
        FakeClock clock = {.now_us = 5 * G_TIME_SPAN_SECOND};
        g_autoptr(DebBreakerRegistry) registry = deb_breaker_registry_new(&p, fake_clock_now, &clock);
        DebBreaker *a, *b;

        g_assert_cmpuint(deb_breaker_registry_get_size(registry), ==, 0);
        a = deb_breaker_registry_get(registry, "procmond");
        b = deb_breaker_registry_get(registry, "netmond");
        g_assert_nonnull(a);
        g_assert_true(a != b);
        g_assert_true(deb_breaker_registry_get(registry, "procmond") == a);
        g_assert_cmpuint(deb_breaker_registry_get_size(registry), ==, 2);

        /* one target failing does not affect the other */
        fail_calls(a, 2);
        assert_state(a, DEB_BREAKER_OPEN);
        assert_state(b, DEB_BREAKER_CLOSED);
        g_assert_true(deb_breaker_allow(b, NULL));
        g_assert_cmpuint(deb_breaker_get_consecutive_failures(b), ==, 0);

        /* breakers use the registry's policy and clock */
        fail_calls(b, 1);
        assert_state(b, DEB_BREAKER_CLOSED);
        clock.now_us += 1000 * G_TIME_SPAN_MILLISECOND;
        assert_state(a, DEB_BREAKER_HALF_OPEN);

        /* a removed target starts afresh */
        g_assert_true(deb_breaker_registry_remove(registry, "procmond"));
        g_assert_false(deb_breaker_registry_remove(registry, "procmond"));
        g_assert_false(deb_breaker_registry_remove(registry, "fsmond"));
        g_assert_cmpuint(deb_breaker_registry_get_size(registry), ==, 1);
        a = deb_breaker_registry_get(registry, "procmond");
        assert_state(a, DEB_BREAKER_CLOSED);
        g_assert_cmpuint(deb_breaker_get_consecutive_failures(a), ==, 0);
        g_assert_cmpuint(deb_breaker_get_consecutive_failures(b), ==, 1);
}

/* Without an injected clock the breaker runs on g_get_monotonic_time(). */
static void test_default_clock(void)
{
        DebBreakerPolicy p = {.failure_threshold = 1, .recovery_timeout_ms = 60000};
        g_autoptr(DebBreaker) breaker = deb_breaker_new(&p, NULL, NULL);
        guint retry_after = 0;

        fail_calls(breaker, 1);
        g_assert_false(deb_breaker_allow(breaker, &retry_after));
        g_assert_cmpuint(retry_after, <=, 60000);
        g_assert_cmpuint(retry_after, >, 50000);
        assert_state(breaker, DEB_BREAKER_OPEN);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/breaker/default-policy", test_default_policy);
        g_test_add_func("/breaker/opens-at-threshold", test_opens_at_threshold);
        g_test_add_func("/breaker/refuses-while-open", test_refuses_while_open);
        g_test_add_func("/breaker/half-open-allows-one-probe", test_half_open_allows_one_probe);
        g_test_add_func("/breaker/probe-success-closes", test_probe_success_closes);
        g_test_add_func("/breaker/probe-failure-reopens", test_probe_failure_reopens);
        g_test_add_func("/breaker/success-resets-failures", test_success_resets_failures);
        g_test_add_func("/breaker/late-outcomes-while-open", test_late_outcomes_while_open);
        g_test_add_func("/breaker/lost-probe", test_lost_probe);
        g_test_add_func("/breaker/state-to-string", test_state_to_string);
        g_test_add_func("/breaker/registry", test_registry);
        g_test_add_func("/breaker/default-clock", test_default_clock);

        return g_test_run();
}
