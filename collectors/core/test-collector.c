/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-test-collector: the smallest collector built on collector-core,
 * for the tests. While running it publishes a counter event on
 * events.test.counter every interval_ms.
 *
 * Settings: interval_ms (int, 10..60000), verbose (bool), stall_ms (uint,
 * debug: HEALTH_CHECK completes only after this long, so callers can test
 * deadlines), cleanup_ms (uint, debug: the cleanup hook takes this long),
 * fail_apply (bool, debug: apply_config refuses every change).
 *
 * On exit it prints "cleanup=N events=N" on stdout (N cleanup hook runs,
 * events published), and its exit status is collector-core's: 0 graceful
 * shutdown, 1 failure, 2 usage, 3 forced, 4 broker connection lost.
 */
#include <stdio.h>

#include "daemoneye-collector-core.h"

#define COUNTER_TOPIC "events.test.counter"

typedef struct {
        DccCollector *collector;
        GSource *timer;
        guint64 counter;
        guint64 published;
        guint cleanups;
} TestCollector;

static const DccConfigKey schema[] = {
        {.key = "interval_ms", .type = DCC_CONFIG_INT, .default_value = "1000", .min.i = 10, .max.i = 60000,
         .description = "Milliseconds between counter events"},
        {.key = "verbose", .type = DCC_CONFIG_BOOL, .default_value = "false",
         .description = "Log every event published"},
        {.key = "stall_ms", .type = DCC_CONFIG_UINT, .default_value = "0", .min.u = 0, .max.u = 600000,
         .description = "Debug: delay every health check by this long"},
        {.key = "cleanup_ms", .type = DCC_CONFIG_UINT, .default_value = "0", .min.u = 0, .max.u = 600000,
         .description = "Debug: the cleanup hook takes this long"},
        {.key = "fail_apply", .type = DCC_CONFIG_BOOL, .default_value = "false",
         .description = "Debug: refuse every configuration change at apply time"},
        {NULL},
};

static gboolean on_tick(gpointer user_data)
{
        TestCollector *tc = user_data;
        g_autoptr(GError) error = NULL;
        char payload[32];
        int len;

        tc->counter++;
        len = g_snprintf(payload, sizeof(payload), "%" G_GUINT64_FORMAT, tc->counter);
        if (!dcc_publish(tc->collector, COUNTER_TOPIC, NULL, payload, (gsize)len, &error)) {
                g_warning("%s", error->message);
                dcc_collector_count_error(tc->collector);
                return G_SOURCE_CONTINUE;
        }
        tc->published++;
        if (dcc_collector_get_bool(tc->collector, "verbose"))
                g_message("published %s", payload);
        return G_SOURCE_CONTINUE;
}

static void timer_start(TestCollector *tc)
{
        tc->timer = g_timeout_source_new((guint)dcc_collector_get_int(tc->collector, "interval_ms"));
        g_source_set_callback(tc->timer, on_tick, tc, NULL);
        g_source_attach(tc->timer, NULL);
}

static void timer_stop(TestCollector *tc)
{
        if (!tc->timer)
                return;
        g_source_destroy(tc->timer);
        g_clear_pointer(&tc->timer, g_source_unref);
}

static void test_start(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        TestCollector *tc = user_data;

        tc->collector = collector;
        timer_start(tc);
        dcc_collector_report_component(collector, "counter", DCC_HEALTH_HEALTHY, "ticking",
                                       (guint)dcc_collector_get_int(collector, "interval_ms"));
        dcc_operation_complete(op);
}

static void test_stop(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        timer_stop(user_data);
        dcc_collector_report_component(collector, "counter", DCC_HEALTH_HEALTHY, "stopped", 0);
        dcc_operation_complete(op);
}

static gboolean complete_later(gpointer user_data)
{
        dcc_operation_complete(user_data);
        return G_SOURCE_REMOVE;
}

static void test_health(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        TestCollector *tc = user_data;
        guint64 stall_ms = dcc_collector_get_uint(collector, "stall_ms");

        dcc_collector_set_metric(collector, "counter", (double)tc->counter);
        if (stall_ms == 0) {
                dcc_operation_complete(op);
                return;
        }
        g_timeout_add((guint)stall_ms, complete_later, op);
}

static gboolean test_apply(DccCollector *collector, const DccConfigChange *changes, gsize n_changes,
                           gpointer user_data, GError **error)
{
        TestCollector *tc = user_data;

        for (gsize i = 0; i < n_changes; i++) {
                /* Refusing its own reset would leave the test collector stuck refusing. */
                if (g_str_equal(changes[i].key->key, "fail_apply"))
                        continue;
                if (dcc_collector_get_bool(collector, "fail_apply")) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_CONFIGURATION,
                                    "fail_apply is set: refusing %s", changes[i].key->key);
                        return FALSE;
                }
        }
        /* A new interval restarts the timer; the rest is read where it is used. */
        if (tc->timer) {
                timer_stop(tc);
                timer_start(tc);
        }
        return TRUE;
}

static void test_cleanup(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        TestCollector *tc = user_data;
        guint64 cleanup_ms = dcc_collector_get_uint(collector, "cleanup_ms");

        tc->cleanups++;
        if (cleanup_ms == 0) {
                dcc_operation_complete(op);
                return;
        }
        g_timeout_add((guint)cleanup_ms, complete_later, op);
}

static const char *const event_types[] = {COUNTER_TOPIC, NULL};
static const char *const features[] = {"counter", NULL};
static const DccOperationFunc cleanup_hooks[] = {test_cleanup, NULL};

static const DccCollectorInfo info = {
        .id = "test",
        .type = "test-collector",
        .description = "A collector that publishes a counter, for the tests of collector-core.",
        .event_types = event_types,
        .features = features,
        .config_schema = schema,
        .max_concurrent_requests = 4,
        .start = test_start,
        .stop = test_stop,
        .pause = test_stop,
        .resume = test_start,
        .health = test_health,
        .apply_config = test_apply,
        .cleanup_hooks = cleanup_hooks,
};

int main(int argc, char **argv)
{
        TestCollector tc = {0};
        int status = dcc_main(argc, argv, &info, &tc);

        timer_stop(&tc);
        printf("cleanup=%u events=%" G_GUINT64_FORMAT "\n", tc.cleanups, tc.published);
        fflush(stdout);
        return status;
}
