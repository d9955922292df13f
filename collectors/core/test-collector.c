/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-test-collector: the smallest collector built on collector-core,
 * for the tests. While running it publishes a counter event on
 * events.test.counter every interval_ms.
 *
 * Settings: interval_ms (int, 10..60000), verbose (bool), label (string,
 * 0..32 bytes, read at start only: restart_required). Debug settings, so the
 * tests can reach every state and outcome: stall_ms (uint: HEALTH_CHECK
 * completes only after this long), start_ms and stop_ms (uint: start and
 * stop complete after this long, so STARTING and STOPPING last), fail_start
 * (bool: start fails), cleanup_ms (uint: the first cleanup hook takes this
 * long), fail_cleanup (bool: the second cleanup hook fails), fail_apply
 * (bool: apply_config refuses every change but to fail_apply itself).
 *
 * It has two cleanup hooks. On exit it prints "cleanup=N order=A,B
 * events=N" on stdout (cleanup hooks started, their numbers in the order
 * they started, events published), and its exit status is collector-core's:
 * 0 graceful shutdown, 1 failure, 2 usage, 3 forced, 4 broker connection lost.
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
        GString *order; /* "1,2": cleanup hooks in the order they started */
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
        {.key = "label", .type = DCC_CONFIG_STRING, .default_value = "", .min.u = 0, .max.u = 32,
         .restart_required = TRUE, .description = "A name read only when the collector starts"},
        {.key = "start_ms", .type = DCC_CONFIG_UINT, .default_value = "0", .min.u = 0, .max.u = 600000,
         .description = "Debug: start takes this long"},
        {.key = "stop_ms", .type = DCC_CONFIG_UINT, .default_value = "0", .min.u = 0, .max.u = 600000,
         .description = "Debug: stop takes this long"},
        {.key = "fail_start", .type = DCC_CONFIG_BOOL, .default_value = "false",
         .description = "Debug: start fails"},
        {.key = "fail_cleanup", .type = DCC_CONFIG_BOOL, .default_value = "false",
         .description = "Debug: the second cleanup hook fails"},
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

static gboolean complete_later(gpointer user_data)
{
        dcc_operation_complete(user_data);
        return G_SOURCE_REMOVE;
}

/* Completes @op now, or after @delay_ms from the main loop. */
static void complete_after(DccOperation *op, guint64 delay_ms)
{
        if (delay_ms == 0) {
                dcc_operation_complete(op);
                return;
        }
        g_timeout_add((guint)delay_ms, complete_later, op);
}

static void test_start(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        TestCollector *tc = user_data;

        tc->collector = collector;
        if (dcc_collector_get_bool(collector, "fail_start")) {
                dcc_operation_fail(op, g_error_new(DCC_ERROR, DCC_ERROR_RESOURCE, "fail_start is set"));
                return;
        }
        timer_stop(tc);
        timer_start(tc);
        dcc_collector_report_component(collector, "counter", DCC_HEALTH_HEALTHY, "ticking",
                                       (guint)dcc_collector_get_int(collector, "interval_ms"));
        complete_after(op, dcc_collector_get_uint(collector, "start_ms"));
}

static void test_stop(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        timer_stop(user_data);
        dcc_collector_report_component(collector, "counter", DCC_HEALTH_HEALTHY, "stopped", 0);
        complete_after(op, dcc_collector_get_uint(collector, "stop_ms"));
}

static void test_pause(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        timer_stop(user_data);
        dcc_collector_report_component(collector, "counter", DCC_HEALTH_HEALTHY, "paused", 0);
        dcc_operation_complete(op);
}

static void test_resume(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        TestCollector *tc = user_data;

        timer_stop(tc);
        timer_start(tc);
        dcc_collector_report_component(collector, "counter", DCC_HEALTH_HEALTHY, "ticking",
                                       (guint)dcc_collector_get_int(collector, "interval_ms"));
        dcc_operation_complete(op);
}

static void test_health(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        TestCollector *tc = user_data;
        guint64 stall_ms = dcc_collector_get_uint(collector, "stall_ms");

        dcc_collector_set_metric(collector, "counter", (double)tc->counter);
        complete_after(op, stall_ms);
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

static void cleanup_record(TestCollector *tc, guint number)
{
        tc->cleanups++;
        g_string_append_printf(tc->order, "%s%u", tc->order->len > 0 ? "," : "", number);
}

static void test_cleanup(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        cleanup_record(user_data, 1);
        complete_after(op, dcc_collector_get_uint(collector, "cleanup_ms"));
}

static void test_cleanup_second(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        cleanup_record(user_data, 2);
        if (dcc_collector_get_bool(collector, "fail_cleanup")) {
                dcc_operation_fail(op, g_error_new(DCC_ERROR, DCC_ERROR_FAILED, "fail_cleanup is set"));
                return;
        }
        dcc_operation_complete(op);
}

static const char *const event_types[] = {COUNTER_TOPIC, NULL};
static const char *const features[] = {"counter", NULL};
static const DccOperationFunc cleanup_hooks[] = {test_cleanup, test_cleanup_second, NULL};

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
        .pause = test_pause,
        .resume = test_resume,
        .health = test_health,
        .apply_config = test_apply,
        .cleanup_hooks = cleanup_hooks,
};

int main(int argc, char **argv)
{
        TestCollector tc = {.order = g_string_new(NULL)};
        int status = dcc_main(argc, argv, &info, &tc);

        timer_stop(&tc);
        printf("cleanup=%u order=%s events=%" G_GUINT64_FORMAT "\n", tc.cleanups, tc.order->str, tc.published);
        fflush(stdout);
        g_string_free(tc.order, TRUE);
        return status;
}
