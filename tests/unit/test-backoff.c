/* SPDX-License-Identifier: Apache-2.0 */
#include <math.h>

#include "deb-backoff.h"

#define OP(name) DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_##name

static double random_fixed(gpointer user_data)
{
        return *(const double *)user_data;
}

static double random_grand(gpointer user_data)
{
        return g_rand_double(user_data);
}

static DebBackoffPolicy policy_make(guint max_attempts, guint base, guint max, double multiplier,
                                    double jitter)
{
        return (DebBackoffPolicy){
                .max_attempts = max_attempts,
                .base_delay_ms = base,
                .max_delay_ms = max,
                .multiplier = multiplier,
                .jitter = jitter,
        };
}

static void test_default_policy(void)
{
        DebBackoffPolicy p = deb_backoff_policy_default();

        g_assert_true(deb_backoff_policy_is_valid(&p));
        g_assert_cmpuint(p.max_attempts, >, 1);
        g_assert_cmpuint(p.base_delay_ms, >, 0);
        g_assert_cmpuint(p.max_delay_ms, >=, p.base_delay_ms);
        g_assert_cmpfloat(p.multiplier, >, 1.0);
        g_assert_cmpfloat(p.jitter, >, 0.0);
        g_assert_cmpfloat(p.jitter, <, 1.0);
}

static void test_policy_validity(void)
{
        static const struct {
                DebBackoffPolicy policy;
                gboolean valid;
        } cases[] = {
                {{3, 100, 5000, 2.0, 0.5}, TRUE},
                {{1, 100, 5000, 2.0, 0.5}, TRUE},   /* a single attempt: no retries */
                {{3, 0, 0, 1.0, 0.0}, TRUE},        /* immediate retries */
                {{3, 500, 500, 1.0, 1.0}, TRUE},    /* constant, full jitter */
                {{0, 100, 5000, 2.0, 0.5}, FALSE},  /* not even one attempt */
                {{3, 5001, 5000, 2.0, 0.5}, FALSE}, /* base above the cap */
                {{3, 100, 5000, 0.5, 0.5}, FALSE},  /* shrinking delays */
                {{3, 100, 5000, NAN, 0.5}, FALSE},
                {{3, 100, 5000, INFINITY, 0.5}, FALSE},
                {{3, 100, 5000, 2.0, -0.01}, FALSE},
                {{3, 100, 5000, 2.0, 1.01}, FALSE},
                {{3, 100, 5000, 2.0, NAN}, FALSE},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_test_message("case %zu", i);
                g_assert_cmpint(deb_backoff_policy_is_valid(&cases[i].policy), ==, cases[i].valid);
        }
}

static void test_invalid_policy_refused(void)
{
        DebBackoffPolicy p = policy_make(0, 100, 5000, 2.0, 0.5);

        g_test_expect_message(NULL, G_LOG_LEVEL_CRITICAL, "*deb_backoff_policy_is_valid*");
        g_assert_null(deb_backoff_new(&p));
        g_test_assert_expected_messages();
}

/* Without jitter the delays are exact: they grow by the multiplier and stop at the cap. */
static void test_delays_without_jitter(void)
{
        static const struct {
                DebBackoffPolicy policy;
                guint delays[8];
                gsize n_delays;
        } cases[] = {
                {{7, 100, 1000, 2.0, 0.0}, {100, 200, 400, 800, 1000, 1000}, 6},
                {{5, 100, 10000, 1.5, 0.0}, {100, 150, 225, 337}, 4},
                {{4, 50, 50, 1.0, 0.0}, {50, 50, 50}, 3},
                {{3, 0, 1000, 2.0, 0.0}, {0, 0}, 2},
                {{2, 300, 1000, 3.0, 0.0}, {300}, 1},
                {{1, 100, 1000, 2.0, 0.0}, {0}, 0},
                /* the growth saturates at the cap instead of overflowing */
                {{4, 1, 4000000000u, 1e300, 0.0}, {1, 4000000000u, 4000000000u}, 3},
        };
        /* jitter 0 must ignore the random source entirely */
        double r = 0.999;

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(DebBackoff) backoff = deb_backoff_new(&cases[i].policy);
                guint delay = 0;

                g_test_message("case %zu", i);
                deb_backoff_set_random_func(backoff, random_fixed, &r);
                for (gsize j = 0; j < cases[i].n_delays; j++) {
                        g_assert_true(deb_backoff_next_delay(backoff, &delay));
                        g_assert_cmpuint(delay, ==, cases[i].delays[j]);
                }
                g_assert_false(deb_backoff_next_delay(backoff, &delay));
        }
}

/* With a fixed random number the jittered delay is exact: d - floor(jitter * d * r). */
static void test_jitter_exact(void)
{
        static const struct {
                double jitter;
                double r;
                guint first;  /* d = 1000 */
                guint second; /* d = 2000 */
        } cases[] = {
                /* clang-format off */
                {0.5, 0.0, 1000, 2000},
                {0.5, 0.5, 750, 1500},
                {0.5, 0.999, 501, 1001},
                {0.5, 1.0, 500, 1000},   /* out of [0, 1): clamped to the bound */
                {0.5, 7.0, 500, 1000},   /* clamped */
                {0.5, -3.0, 1000, 2000}, /* clamped */
                {0.5, NAN, 1000, 2000},  /* taken as 0 */
                {1.0, 0.5, 500, 1000},
                {1.0, 0.999, 1, 2},
                {0.25, 0.5, 875, 1750},
                /* clang-format on */
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                DebBackoffPolicy p = policy_make(3, 1000, 8000, 2.0, cases[i].jitter);
                g_autoptr(DebBackoff) backoff = deb_backoff_new(&p);
                guint delay = 0;

                g_test_message("case %zu: jitter %g r %g", i, cases[i].jitter, cases[i].r);
                deb_backoff_set_random_func(backoff, random_fixed, (gpointer)&cases[i].r);
                g_assert_true(deb_backoff_next_delay(backoff, &delay));
                g_assert_cmpuint(delay, ==, cases[i].first);
                g_assert_true(deb_backoff_next_delay(backoff, &delay));
                g_assert_cmpuint(delay, ==, cases[i].second);
        }
}

/*
 * Over many seeded draws every delay stays in [d * (1 - jitter), d] and the
 * draws actually cover that range (jitter is applied, not just bounded).
 */
static void test_jitter_bounds(void)
{
        static const double jitters[] = {0.0, 0.1, 0.5, 1.0};
        /* delays before jitter of this policy: 200, 400, 800, 1600, 3000, 3000 */
        static const guint before_jitter[] = {200, 400, 800, 1600, 3000, 3000};
        const guint rounds = 5000;

        for (gsize i = 0; i < G_N_ELEMENTS(jitters); i++) {
                DebBackoffPolicy p =
                        policy_make(G_N_ELEMENTS(before_jitter) + 1, 200, 3000, 2.0, jitters[i]);
                g_autoptr(DebBackoff) backoff = deb_backoff_new(&p);
                g_autoptr(GRand) rand = g_rand_new_with_seed(0xdeb0 + i);
                guint lowest[G_N_ELEMENTS(before_jitter)], highest[G_N_ELEMENTS(before_jitter)];

                g_test_message("jitter %g", jitters[i]);
                deb_backoff_set_random_func(backoff, random_grand, rand);
                for (gsize n = 0; n < G_N_ELEMENTS(before_jitter); n++) {
                        lowest[n] = G_MAXUINT;
                        highest[n] = 0;
                }

                for (guint round = 0; round < rounds; round++) {
                        guint delay;

                        deb_backoff_reset(backoff);
                        for (gsize n = 0; n < G_N_ELEMENTS(before_jitter); n++) {
                                double d = before_jitter[n];

                                g_assert_true(deb_backoff_next_delay(backoff, &delay));
                                g_assert_cmpfloat(delay, >=, d * (1.0 - jitters[i]));
                                g_assert_cmpuint(delay, <=, before_jitter[n]);
                                lowest[n] = MIN(lowest[n], delay);
                                highest[n] = MAX(highest[n], delay);
                        }
                        g_assert_false(deb_backoff_next_delay(backoff, &delay));
                }

                for (gsize n = 0; n < G_N_ELEMENTS(before_jitter); n++) {
                        double d = before_jitter[n], span = d * jitters[i];

                        /* 5000 uniform draws leave no gap of 2% at either end; the
                         * lower bound itself is only reached up to the truncation */
                        g_assert_cmpfloat(lowest[n], <=, d - span + span * 0.02 + 1.0);
                        g_assert_cmpfloat(highest[n], >=, d - span * 0.02);
                }
        }
}

static void test_attempts_exhausted(void)
{
        static const guint max_attempts[] = {1, 2, 3, 10};

        for (gsize i = 0; i < G_N_ELEMENTS(max_attempts); i++) {
                DebBackoffPolicy p = policy_make(max_attempts[i], 10, 100, 2.0, 0.5);
                g_autoptr(DebBackoff) backoff = deb_backoff_new(&p);
                guint delay = 0, retries = 0;

                g_test_message("max_attempts %u", max_attempts[i]);
                g_assert_cmpuint(deb_backoff_get_attempts(backoff), ==, 1);
                while (deb_backoff_next_delay(backoff, &delay)) {
                        retries++;
                        g_assert_cmpuint(deb_backoff_get_attempts(backoff), ==, retries + 1);
                        g_assert_cmpuint(retries, <, max_attempts[i]);
                }
                g_assert_cmpuint(retries, ==, max_attempts[i] - 1);
                g_assert_cmpuint(deb_backoff_get_attempts(backoff), ==, max_attempts[i]);

                /* stays exhausted, and leaves the out value alone */
                delay = 4242;
                g_assert_false(deb_backoff_next_delay(backoff, &delay));
                g_assert_false(deb_backoff_next_delay(backoff, &delay));
                g_assert_cmpuint(delay, ==, 4242);

                /* a reset starts over from the base delay */
                deb_backoff_reset(backoff);
                g_assert_cmpuint(deb_backoff_get_attempts(backoff), ==, 1);
                g_assert_cmpint(deb_backoff_next_delay(backoff, &delay), ==, max_attempts[i] > 1);
                if (max_attempts[i] > 1)
                        g_assert_cmpuint(delay, <=, 10);
        }
}

static const struct {
        Daemoneye__Eventbus__RpcOperation operation;
        gboolean idempotent;
} rpc_operations[] = {
        {OP(UNSPECIFIED), FALSE},
        {OP(START), TRUE},
        {OP(STOP), TRUE},
        {OP(RESTART), FALSE},
        {OP(HEALTH_CHECK), TRUE},
        {OP(UPDATE_CONFIG), FALSE},
        {OP(GRACEFUL_SHUTDOWN), FALSE},
        {OP(FORCE_SHUTDOWN), FALSE},
        {OP(GET_CAPABILITIES), TRUE},
        {OP(PAUSE), TRUE},
        {OP(RESUME), TRUE},
        {(Daemoneye__Eventbus__RpcOperation)999, FALSE}, /* from a newer peer */
};

static const char *operation_name(Daemoneye__Eventbus__RpcOperation operation)
{
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
                &daemoneye__eventbus__rpc_operation__descriptor, operation);

        return v ? v->name : "(not in the schema)";
}

/* Every operation of the schema has a decision here: a new one fails this test until it gets one. */
static void test_rpc_operations_covered(void)
{
        const ProtobufCEnumDescriptor *desc = &daemoneye__eventbus__rpc_operation__descriptor;

        for (unsigned i = 0; i < desc->n_values; i++) {
                gboolean found = FALSE;

                for (gsize j = 0; j < G_N_ELEMENTS(rpc_operations) && !found; j++)
                        found = (int)rpc_operations[j].operation == desc->values[i].value;
                if (!found)
                        g_error("%s has no entry in the idempotency table", desc->values[i].name);
        }
}

static void test_rpc_idempotency(void)
{
        DebBackoffPolicy p = policy_make(4, 10, 100, 2.0, 0.5);

        for (gsize i = 0; i < G_N_ELEMENTS(rpc_operations); i++) {
                g_autoptr(DebBackoff) backoff = deb_backoff_new_for_rpc(&p, rpc_operations[i].operation);
                guint delay, retries = 0;

                g_test_message("%s", operation_name(rpc_operations[i].operation));
                g_assert_cmpint(deb_rpc_operation_is_idempotent(rpc_operations[i].operation), ==,
                                rpc_operations[i].idempotent);

                while (deb_backoff_next_delay(backoff, &delay))
                        retries++;
                /* non-idempotent operations are never retried, whatever the policy */
                g_assert_cmpuint(retries, ==, rpc_operations[i].idempotent ? p.max_attempts - 1 : 0);

                deb_backoff_reset(backoff);
                g_assert_cmpint(deb_backoff_next_delay(backoff, &delay), ==, rpc_operations[i].idempotent);
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/backoff/default-policy", test_default_policy);
        g_test_add_func("/backoff/policy-validity", test_policy_validity);
        g_test_add_func("/backoff/invalid-policy-refused", test_invalid_policy_refused);
        g_test_add_func("/backoff/delays-without-jitter", test_delays_without_jitter);
        g_test_add_func("/backoff/jitter-exact", test_jitter_exact);
        g_test_add_func("/backoff/jitter-bounds", test_jitter_bounds);
        g_test_add_func("/backoff/attempts-exhausted", test_attempts_exhausted);
        g_test_add_func("/backoff/rpc-operations-covered", test_rpc_operations_covered);
        g_test_add_func("/backoff/rpc-idempotency", test_rpc_idempotency);

        return g_test_run();
}
