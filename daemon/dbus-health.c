/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Agent1.GetHealth: five checks, each "ok", "warning" or "critical" with one
 * sentence; the overall status is the worst of them (healthy, degraded,
 * unhealthy).
 *
 *   broker      accepting connections, below max_subscribers
 *   rpc         the agent's own RPC client is connected to its broker
 *   collectors  none failed or unresponsive
 *   buffers     no subscriber queue above 80 % of message_buffer_size
 *   errors      no drops or protocol errors since the previous evaluation
 */
#include "dbus-front-private.h"

#define ERRORS_WINDOW_US (5 * G_USEC_PER_SEC)
#define BUFFER_WARNING_PERCENT 80

typedef enum {
        CHECK_OK,
        CHECK_WARNING,
        CHECK_CRITICAL,
} CheckLevel;

static const char *const check_level_names[] = {"ok", "warning", "critical"};

static void add_check(GVariantBuilder *checks, CheckLevel *worst, const char *name, CheckLevel level,
                      const char *format, ...) G_GNUC_PRINTF(5, 6);
static void add_check(GVariantBuilder *checks, CheckLevel *worst, const char *name, CheckLevel level,
                      const char *format, ...)
{
        g_autofree char *message = NULL;
        GVariantBuilder check;
        va_list args;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        g_variant_builder_init(&check, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&check, "{sv}", "status", g_variant_new_string(check_level_names[level]));
        g_variant_builder_add(&check, "{sv}", "message", g_variant_new_string(message));
        g_variant_builder_add(checks, "{sv}", name, g_variant_builder_end(&check));
        *worst = MAX(*worst, level);
}

static guint64 lookup_u64(GVariant *dict, const char *key)
{
        guint64 value = 0;

        g_variant_lookup(dict, key, "t", &value);
        return value;
}

static void check_clients(DbusFront *front, GVariant *metrics, GVariantBuilder *checks, CheckLevel *worst)
{
        const BrokerConfig *config = broker_get_config(front->broker);
        g_autoptr(GVariant) clients = g_variant_lookup_value(metrics, "clients", G_VARIANT_TYPE("aa{sv}"));
        g_autofree char *fullest = NULL;
        gboolean agent_connected = FALSE;
        guint32 max_queued = 0;
        guint n = broker_get_n_connections(front->broker);
        GVariantIter iter;
        GVariant *client;

        if (n >= config->max_subscribers)
                add_check(checks, worst, "broker", CHECK_WARNING,
                          "%u connections: at max_subscribers (%u); new clients are refused", n,
                          config->max_subscribers);
        else
                add_check(checks, worst, "broker", CHECK_OK, "accepting connections; %u connected", n);

        if (clients) {
                g_variant_iter_init(&iter, clients);
                while ((client = g_variant_iter_next_value(&iter))) {
                        const char *id = "", *state = "";
                        guint32 queued = 0;

                        g_variant_lookup(client, "client_id", "&s", &id);
                        g_variant_lookup(client, "state", "&s", &state);
                        g_variant_lookup(client, "queued", "u", &queued);
                        if (g_str_equal(id, PROCESS_MANAGER_CLIENT_ID) && g_str_equal(state, "open"))
                                agent_connected = TRUE;
                        if (queued > max_queued) {
                                max_queued = queued;
                                g_free(fullest);
                                fullest = g_strdup(id[0] ? id : "(handshake)");
                        }
                        g_variant_unref(client);
                }
        }
        if (agent_connected)
                add_check(checks, worst, "rpc", CHECK_OK, "the agent's RPC client is connected");
        else
                add_check(checks, worst, "rpc", CHECK_CRITICAL,
                          "the agent's RPC client is not connected to the broker: collectors cannot be "
                          "reached");

        if (max_queued >= config->message_buffer_size)
                add_check(checks, worst, "buffers", CHECK_CRITICAL,
                          "the queue of %s is full (%u messages): messages are being dropped", fullest,
                          max_queued);
        else if ((guint64)max_queued * 100 >= (guint64)config->message_buffer_size * BUFFER_WARNING_PERCENT)
                add_check(checks, worst, "buffers", CHECK_WARNING, "the queue of %s holds %u of %u messages",
                          fullest, max_queued, config->message_buffer_size);
        else
                add_check(checks, worst, "buffers", CHECK_OK, "longest queue %u of %u messages", max_queued,
                          config->message_buffer_size);
}

static void check_collectors(DbusFront *front, GVariantBuilder *checks, CheckLevel *worst)
{
        g_autoptr(GPtrArray) list = process_manager_list(front->pm);
        g_autoptr(GString) bad = g_string_new(NULL);
        guint running = 0, n_bad = 0;

        for (guint i = 0; i < list->len; i++) {
                ProcessManagerCollectorInfo *info = list->pdata[i];

                if (info->state == COLLECTOR_STATE_RUNNING || info->state == COLLECTOR_STATE_PAUSED)
                        running++;
                if (info->state == COLLECTOR_STATE_FAILED || info->state == COLLECTOR_STATE_UNRESPONSIVE) {
                        g_string_append_printf(bad, "%s%s %s", n_bad ? ", " : "", info->id,
                                               collector_state_to_string(info->state));
                        n_bad++;
                }
        }
        if (n_bad > 0)
                add_check(checks, worst, "collectors", running == 0 ? CHECK_CRITICAL : CHECK_WARNING,
                          "%u of %u collectors running; %s", running, list->len, bad->str);
        else
                add_check(checks, worst, "collectors", CHECK_OK, "%u of %u collectors running", running,
                          list->len);
}

static void check_errors(DbusFront *front, GVariant *metrics, GVariantBuilder *checks, CheckLevel *worst)
{
        guint64 dropped = lookup_u64(metrics, "dropped");
        guint64 protocol_errors = lookup_u64(metrics, "protocol_errors");
        gint64 now = g_get_monotonic_time();

        /* Compared over windows of at least ERRORS_WINDOW_US, whoever asks and how often. */
        if (front->last_health_us == 0 || now - front->last_health_us >= ERRORS_WINDOW_US) {
                front->errors_rising =
                        front->last_health_us != 0 &&
                        (dropped > front->last_dropped || protocol_errors > front->last_protocol_errors);
                front->last_dropped = dropped;
                front->last_protocol_errors = protocol_errors;
                front->last_health_us = now;
        }
        if (front->errors_rising)
                add_check(checks, worst, "errors", CHECK_WARNING,
                          "messages dropped or protocol errors recently (%" G_GUINT64_FORMAT
                          " dropped, %" G_GUINT64_FORMAT " protocol errors in all)",
                          dropped, protocol_errors);
        else
                add_check(checks, worst, "errors", CHECK_OK,
                          "no new drops or protocol errors (%" G_GUINT64_FORMAT
                          " dropped, %" G_GUINT64_FORMAT " protocol errors in all)",
                          dropped, protocol_errors);
}

/** dbus_health_evaluate: see dbus-front-private.h. */
GVariant *dbus_health_evaluate(DbusFront *front)
{
        g_autoptr(GVariant) metrics = broker_get_metrics(front->broker);
        static const char *const overall[] = {"healthy", "degraded", "unhealthy"};
        CheckLevel worst = CHECK_OK;
        GVariantBuilder checks;

        g_variant_builder_init(&checks, G_VARIANT_TYPE_VARDICT);
        check_clients(front, metrics, &checks, &worst);
        check_collectors(front, &checks, &worst);
        check_errors(front, metrics, &checks, &worst);
        return g_variant_ref_sink(
                g_variant_new("(s@a{sv})", overall[worst], g_variant_builder_end(&checks)));
}
