/* SPDX-License-Identifier: Apache-2.0 */
#include "deb-breaker.h"

struct _DebBreaker {
        DebBreakerPolicy policy;
        DebClockFunc clock;
        gpointer clock_data;
        DebBreakerState state;
        guint failures;           /* consecutive, since the last success */
        gint64 opened_us;         /* when it last opened; meaningful in OPEN */
        gboolean probe_in_flight; /* HALF_OPEN only */
        gint64 probe_started_us;
};

struct _DebBreakerRegistry {
        DebBreakerPolicy policy;
        DebClockFunc clock;
        gpointer clock_data;
        GHashTable *breakers; /* target (owned) -> DebBreaker * (owned) */
};

DebBreakerPolicy deb_breaker_policy_default(void)
{
        return (DebBreakerPolicy){
                .failure_threshold = 5,
                .recovery_timeout_ms = 30000,
        };
}

static gint64 breaker_clock_default(gpointer user_data)
{
        return g_get_monotonic_time();
}

DebBreaker *deb_breaker_new(const DebBreakerPolicy *policy, DebClockFunc clock, gpointer clock_data)
{
        DebBreaker *breaker;

        g_return_val_if_fail(policy, NULL);
        g_return_val_if_fail(policy->failure_threshold >= 1, NULL);

        breaker = g_new0(DebBreaker, 1);
        breaker->policy = *policy;
        breaker->clock = clock ? clock : breaker_clock_default;
        breaker->clock_data = clock ? clock_data : NULL;
        breaker->state = DEB_BREAKER_CLOSED;
        return breaker;
}

void deb_breaker_free(DebBreaker *breaker)
{
        g_free(breaker);
}

static gint64 breaker_timeout_us(const DebBreaker *breaker)
{
        return (gint64)breaker->policy.recovery_timeout_ms * G_TIME_SPAN_MILLISECOND;
}

/* Rounded up, so that retrying after that many milliseconds is never too early. */
static guint breaker_us_to_ms(gint64 us)
{
        if (us <= 0)
                return 0;
        return (guint)MIN((us + G_TIME_SPAN_MILLISECOND - 1) / G_TIME_SPAN_MILLISECOND, (gint64)G_MAXUINT);
}

/* The only transition driven by time rather than by an outcome. */
static void breaker_update(DebBreaker *breaker, gint64 now)
{
        if (breaker->state == DEB_BREAKER_OPEN && now - breaker->opened_us >= breaker_timeout_us(breaker)) {
                breaker->state = DEB_BREAKER_HALF_OPEN;
                breaker->probe_in_flight = FALSE;
        }
}

static void breaker_open(DebBreaker *breaker, gint64 now)
{
        breaker->state = DEB_BREAKER_OPEN;
        breaker->opened_us = now;
        breaker->probe_in_flight = FALSE;
}

gboolean deb_breaker_allow(DebBreaker *breaker, guint *retry_after_ms)
{
        gint64 now, wait_us;

        g_return_val_if_fail(breaker, FALSE);

        now = breaker->clock(breaker->clock_data);
        breaker_update(breaker, now);

        switch (breaker->state) {
        case DEB_BREAKER_CLOSED:
                return TRUE;
        case DEB_BREAKER_OPEN:
                wait_us = breaker->opened_us + breaker_timeout_us(breaker) - now;
                break;
        case DEB_BREAKER_HALF_OPEN:
                wait_us = breaker->probe_started_us + breaker_timeout_us(breaker) - now;
                /* No probe yet, or the last one is lost: this call is the probe. */
                if (!breaker->probe_in_flight || wait_us <= 0) {
                        breaker->probe_in_flight = TRUE;
                        breaker->probe_started_us = now;
                        return TRUE;
                }
                break;
        default:
                g_assert_not_reached();
        }

        if (retry_after_ms)
                *retry_after_ms = breaker_us_to_ms(wait_us);
        return FALSE;
}

void deb_breaker_record_success(DebBreaker *breaker)
{
        g_return_if_fail(breaker);

        breaker_update(breaker, breaker->clock(breaker->clock_data));

        switch (breaker->state) {
        case DEB_BREAKER_CLOSED:
                breaker->failures = 0;
                break;
        case DEB_BREAKER_HALF_OPEN:
                breaker->state = DEB_BREAKER_CLOSED;
                breaker->failures = 0;
                breaker->probe_in_flight = FALSE;
                break;
        case DEB_BREAKER_OPEN:
                /* A call let through before the breaker opened: the probe decides. */
                break;
        }
}

void deb_breaker_record_failure(DebBreaker *breaker)
{
        gint64 now;

        g_return_if_fail(breaker);

        now = breaker->clock(breaker->clock_data);
        breaker_update(breaker, now);

        switch (breaker->state) {
        case DEB_BREAKER_CLOSED:
                if (breaker->failures < G_MAXUINT)
                        breaker->failures++;
                if (breaker->failures >= breaker->policy.failure_threshold)
                        breaker_open(breaker, now);
                break;
        case DEB_BREAKER_HALF_OPEN:
                if (breaker->failures < G_MAXUINT)
                        breaker->failures++;
                breaker_open(breaker, now);
                break;
        case DEB_BREAKER_OPEN:
                /* Not extended by late failures, or a busy caller would keep it open forever. */
                break;
        }
}

DebBreakerState deb_breaker_get_state(DebBreaker *breaker)
{
        g_return_val_if_fail(breaker, DEB_BREAKER_CLOSED);

        breaker_update(breaker, breaker->clock(breaker->clock_data));
        return breaker->state;
}

guint deb_breaker_get_consecutive_failures(DebBreaker *breaker)
{
        g_return_val_if_fail(breaker, 0);

        return breaker->failures;
}

const char *deb_breaker_state_to_string(DebBreakerState state)
{
        switch (state) {
        case DEB_BREAKER_CLOSED:
                return "closed";
        case DEB_BREAKER_OPEN:
                return "open";
        case DEB_BREAKER_HALF_OPEN:
                return "half-open";
        default:
                return "unknown";
        }
}

DebBreakerRegistry *deb_breaker_registry_new(const DebBreakerPolicy *policy, DebClockFunc clock,
                                             gpointer clock_data)
{
        DebBreakerRegistry *registry;

        g_return_val_if_fail(policy, NULL);
        g_return_val_if_fail(policy->failure_threshold >= 1, NULL);

        registry = g_new0(DebBreakerRegistry, 1);
        registry->policy = *policy;
        registry->clock = clock;
        registry->clock_data = clock_data;
        registry->breakers =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)deb_breaker_free);
        return registry;
}

void deb_breaker_registry_free(DebBreakerRegistry *registry)
{
        if (!registry)
                return;

        g_hash_table_unref(registry->breakers);
        g_free(registry);
}

DebBreaker *deb_breaker_registry_get(DebBreakerRegistry *registry, const char *target)
{
        DebBreaker *breaker;

        g_return_val_if_fail(registry, NULL);
        g_return_val_if_fail(target, NULL);

        breaker = g_hash_table_lookup(registry->breakers, target);
        if (!breaker) {
                breaker = deb_breaker_new(&registry->policy, registry->clock, registry->clock_data);
                g_hash_table_insert(registry->breakers, g_strdup(target), breaker);
        }
        return breaker;
}

gboolean deb_breaker_registry_remove(DebBreakerRegistry *registry, const char *target)
{
        g_return_val_if_fail(registry, FALSE);
        g_return_val_if_fail(target, FALSE);

        return g_hash_table_remove(registry->breakers, target);
}

guint deb_breaker_registry_get_size(DebBreakerRegistry *registry)
{
        g_return_val_if_fail(registry, 0);

        return g_hash_table_size(registry->breakers);
}
