/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DccCollector object: identity, settings, state, publishing, logging,
 * and running until the collector ends.
 */
#include <signal.h>
#include <string.h>

#include <glib-unix.h>

#include "deb-topic.h"
#include "dcc-private.h"

G_DEFINE_QUARK(dcc-error-quark, dcc_error)

gboolean dcc_topic_level_is_valid(const char *s)
{
        gsize len = s ? strlen(s) : 0;

        if (len == 0 || len > DEB_TOPIC_MAX_LEVEL_LEN)
                return FALSE;
        for (gsize i = 0; i < len; i++)
                if (!g_ascii_isalnum(s[i]) && s[i] != '_' && s[i] != '-')
                        return FALSE;
        return TRUE;
}

gboolean dcc_collector_set_id(DccCollector *collector, const char *id, GError **error)
{
        g_return_val_if_fail(collector != NULL, FALSE);

        if (collector->client) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                            "collector %s: the id cannot change once connected", collector->id);
                return FALSE;
        }
        /* The id is a level of every topic the collector uses: "a.b" or "#" would change their meaning. */
        if (!dcc_topic_level_is_valid(id)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                            "collector id '%s': not 1..64 bytes of [A-Za-z0-9_-] (it is a topic level)",
                            id ? id : "(none)");
                return FALSE;
        }
        g_free(collector->id);
        g_free(collector->topic_control);
        g_free(collector->topic_config);
        g_free(collector->topic_shutdown);
        g_free(collector->topic_heartbeat);
        collector->id = g_strdup(id);
        collector->topic_control = g_strconcat("control.collector.", id, NULL);
        collector->topic_config = g_strconcat("control.collector.config.", id, NULL);
        collector->topic_shutdown = g_strconcat("control.shutdown.", id, NULL);
        collector->topic_heartbeat = g_strconcat("control.health.heartbeat.", id, NULL);
        return TRUE;
}

static void request_table_drop(gpointer data)
{
        dcc_request_unref(data);
}

DccCollector *dcc_collector_new(const DccCollectorInfo *info, gpointer user_data, GError **error)
{
        g_autoptr(DccCollector) collector = NULL;

        g_return_val_if_fail(info != NULL, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        collector = g_new0(DccCollector, 1);
        collector->info = info;
        collector->user_data = user_data;
        collector->context = g_main_context_ref_thread_default();
        collector->state = DCC_STATE_STOPPED;
        collector->exit_status = -1;
        collector->listen_fd = -1;
        collector->created_us = g_get_monotonic_time();
        collector->requests = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, request_table_drop);
        collector->operations = g_ptr_array_new();
        collector->components = g_ptr_array_new_with_free_func(dcc_component_free);
        collector->metrics = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        collector->cleanup_hooks = g_array_new(FALSE, TRUE, sizeof(DccHook));
        collector->heartbeat_interval_ms = DCC_DEFAULT_HEARTBEAT_MS;
        collector->max_concurrent = info->max_concurrent_requests ? info->max_concurrent_requests
                                                                  : DCC_DEFAULT_MAX_CONCURRENT;
        collector->timeout_min_ms = info->timeout_min_ms ? info->timeout_min_ms : DCC_DEFAULT_TIMEOUT_MIN_MS;
        collector->timeout_max_ms = info->timeout_max_ms ? info->timeout_max_ms : DCC_DEFAULT_TIMEOUT_MAX_MS;
        collector->timeout_default_ms = info->timeout_default_ms ? info->timeout_default_ms
                                                                 : DCC_DEFAULT_TIMEOUT_MS;
        collector->graceful_timeout_ms = info->graceful_timeout_ms ? info->graceful_timeout_ms
                                                                   : DCC_DEFAULT_GRACEFUL_MS;

        if (!dcc_collector_set_id(collector, info->id ? info->id : info->type, error))
                return NULL;
        if (collector->timeout_min_ms > collector->timeout_default_ms ||
            collector->timeout_default_ms > collector->timeout_max_ms) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                            "collector %s: timeout limits %u <= %u <= %u ms (min <= default <= max) do not hold",
                            collector->id, collector->timeout_min_ms, collector->timeout_default_ms,
                            collector->timeout_max_ms);
                return NULL;
        }
        collector->config = dcc_config_store_new(info->config_schema, error);
        if (!collector->config) {
                g_prefix_error(error, "collector %s: ", collector->id);
                return NULL;
        }
        return g_steal_pointer(&collector);
}

/* Requests outlive the collector only inside completion handles, which must not reach back. */
static void collector_detach_requests(DccCollector *collector)
{
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, collector->requests);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                DccRequest *request = value;

                request->collector = NULL;
                dcc_source_clear(&request->deadline_source);
        }
}

void dcc_collector_free(DccCollector *collector)
{
        if (!collector)
                return;
        if (collector->operations)
                dcc_operations_detach(collector);
        if (collector->requests) {
                collector_detach_requests(collector);
                g_hash_table_unref(collector->requests);
        }
        g_clear_pointer(&collector->shutdown, dcc_shutdown_free);
        dcc_heartbeat_stop(collector);
        dcc_connection_close(collector);
        g_clear_pointer(&collector->operations, g_ptr_array_unref);
        g_clear_pointer(&collector->components, g_ptr_array_unref);
        g_clear_pointer(&collector->metrics, g_hash_table_unref);
        g_clear_pointer(&collector->cleanup_hooks, g_array_unref);
        g_clear_pointer(&collector->config, dcc_config_store_free);
        g_free(collector->id);
        g_free(collector->topic_control);
        g_free(collector->topic_config);
        g_free(collector->topic_shutdown);
        g_free(collector->topic_heartbeat);
        g_main_context_unref(collector->context);
        g_free(collector);
}

gboolean dcc_collector_set_config_string(DccCollector *collector, const char *key, const char *value,
                                         GError **error)
{
        g_return_val_if_fail(collector != NULL, FALSE);
        g_return_val_if_fail(key != NULL && value != NULL, FALSE);

        if (!dcc_config_store_set_string(collector->config, key, value, error)) {
                g_prefix_error(error, "collector %s: ", collector->id);
                return FALSE;
        }
        return TRUE;
}

void dcc_collector_set_heartbeat_interval(DccCollector *collector, guint interval_ms)
{
        g_return_if_fail(collector != NULL);

        collector->heartbeat_interval_ms = MAX(interval_ms, DCC_MIN_HEARTBEAT_MS);
        if (collector->heartbeat_source)
                dcc_heartbeat_start(collector);
}

void dcc_collector_set_autostart(DccCollector *collector, gboolean autostart)
{
        g_return_if_fail(collector != NULL);
        collector->autostart = autostart;
}

void dcc_collector_log(DccCollector *collector, DccRequest *request, GLogLevelFlags level, const char *format, ...)
{
        g_autofree char *message = NULL;
        va_list args;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        if (request)
                g_log_structured(G_LOG_DOMAIN, level, "COLLECTOR_ID", collector->id, "CORRELATION_ID",
                                 request->correlation_id, "RPC_OPERATION",
                                 dcc_rpc_operation_to_string(request->operation), "MESSAGE",
                                 "collector %s: request %s: %s", collector->id, request->correlation_id, message);
        else
                g_log_structured(G_LOG_DOMAIN, level, "COLLECTOR_ID", collector->id, "MESSAGE", "collector %s: %s",
                                 collector->id, message);
}

void dcc_collector_set_state(DccCollector *collector, DccState state)
{
        if (collector->state == state)
                return;
        dcc_collector_log(collector, NULL, G_LOG_LEVEL_INFO, "%s -> %s", dcc_state_to_string(collector->state),
                          dcc_state_to_string(state));
        collector->state = state;
        dcc_heartbeat_send(collector);
}

gboolean dcc_collector_is_finished(DccCollector *collector)
{
        return collector->exit_status >= 0;
}

gboolean dcc_collector_supports_pause(DccCollector *collector)
{
        return collector->info->pause && collector->info->resume;
}

void dcc_collector_finish(DccCollector *collector, DccExitStatus status)
{
        if (dcc_collector_is_finished(collector))
                return;
        /* Whoever still waits for an answer learns now rather than at its deadline. */
        if (collector->client && deb_client_is_connected(collector->client))
                dcc_rpc_fail_pending(collector, "collector.exiting", "the collector is exiting");
        collector->exit_status = status;
        dcc_heartbeat_stop(collector);
        if (collector->loop)
                g_main_loop_quit(collector->loop);
}

static gboolean on_sigterm(gpointer user_data)
{
        dcc_shutdown_begin_signal(user_data, SIGTERM);
        return G_SOURCE_CONTINUE;
}

static gboolean on_sigint(gpointer user_data)
{
        dcc_shutdown_begin_signal(user_data, SIGINT);
        return G_SOURCE_CONTINUE;
}

int dcc_collector_run(DccCollector *collector)
{
        g_return_val_if_fail(collector != NULL, DCC_EXIT_FAILURE);

        if (!dcc_collector_is_finished(collector)) {
                g_autoptr(GMainLoop) loop = g_main_loop_new(collector->context, FALSE);
                GSource *signals[] = {g_unix_signal_source_new(SIGTERM), g_unix_signal_source_new(SIGINT)};

                g_source_set_callback(signals[0], on_sigterm, collector, NULL);
                g_source_set_callback(signals[1], on_sigint, collector, NULL);
                for (gsize i = 0; i < G_N_ELEMENTS(signals); i++)
                        g_source_attach(signals[i], collector->context);
                collector->loop = loop;
                g_main_loop_run(loop);
                collector->loop = NULL;
                for (gsize i = 0; i < G_N_ELEMENTS(signals); i++) {
                        g_source_destroy(signals[i]);
                        g_source_unref(signals[i]);
                }
        }
        /* The last reply and heartbeat must reach the broker before the process goes. */
        if (collector->client)
                deb_client_disconnect(collector->client, DCC_EXIT_FLUSH_MS);
        return collector->exit_status;
}

int dcc_collector_get_exit_status(DccCollector *collector)
{
        g_return_val_if_fail(collector != NULL, DCC_EXIT_FAILURE);
        return collector->exit_status;
}

const char *dcc_collector_get_id(DccCollector *collector)
{
        g_return_val_if_fail(collector != NULL, NULL);
        return collector->id;
}

DccState dcc_collector_get_state(DccCollector *collector)
{
        g_return_val_if_fail(collector != NULL, DCC_STATE_FAILED);
        return collector->state;
}

DebClient *dcc_collector_get_client(DccCollector *collector)
{
        g_return_val_if_fail(collector != NULL, NULL);
        return collector->client;
}

guint64 dcc_collector_get_events_published(DccCollector *collector)
{
        g_return_val_if_fail(collector != NULL, 0);
        return collector->events_published;
}

guint64 dcc_collector_get_heartbeat_sequence(DccCollector *collector)
{
        g_return_val_if_fail(collector != NULL, 0);
        return collector->heartbeat_sequence;
}

gboolean dcc_publish(DccCollector *collector, const char *topic, const char *payload_type, const void *data,
                     gsize len, GError **error)
{
        DebPublishOptions options = {.payload_type = payload_type};

        g_return_val_if_fail(collector != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        /*
         * STARTING and STOPPING may publish: an initial snapshot, a final batch.
         * Once the collector has ended (a forced shutdown leaves the state as
         * it was) nothing new goes out: the last flush must not be prolonged by
         * a collector timer that is still ticking.
         */
        if (dcc_collector_is_finished(collector)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_NOT_RUNNING, "collector %s: not publishing to %s: exiting",
                            collector->id, topic);
                return FALSE;
        }
        if (collector->state == DCC_STATE_STOPPED || collector->state == DCC_STATE_PAUSED ||
            collector->state == DCC_STATE_FAILED) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_NOT_RUNNING, "collector %s: not publishing to %s while %s",
                            collector->id, topic, dcc_state_to_string(collector->state));
                return FALSE;
        }
        if (!collector->client) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_CONNECTION, "collector %s: not connected", collector->id);
                return FALSE;
        }
        if (!deb_client_publish(collector->client, topic, data, len, &options, error))
                return FALSE;
        collector->events_published++;
        return TRUE;
}

void dcc_collector_count_error(DccCollector *collector)
{
        g_return_if_fail(collector != NULL);
        collector->error_count++;
}

void dcc_collector_fail(DccCollector *collector, const GError *error)
{
        g_return_if_fail(collector != NULL);

        collector->error_count++;
        dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "collection failed: %s",
                          error ? error->message : "no reason given");
        if (collector->state == DCC_STATE_STARTING || collector->state == DCC_STATE_RUNNING ||
            collector->state == DCC_STATE_PAUSED)
                dcc_collector_set_state(collector, DCC_STATE_FAILED);
}

void dcc_collector_add_cleanup_hook(DccCollector *collector, DccOperationFunc func, gpointer user_data)
{
        DccHook hook = {func, user_data};

        g_return_if_fail(collector != NULL);
        g_return_if_fail(func != NULL);
        g_array_append_val(collector->cleanup_hooks, hook);
}

static const DccConfigValue *collector_get_value(DccCollector *collector, const char *key, DccConfigType type)
{
        const DccConfigKey *schema_key;

        g_return_val_if_fail(collector != NULL, NULL);
        schema_key = dcc_config_store_lookup(collector->config, key);
        /* Asking for a key the schema does not declare, or with another type, is a programming error. */
        g_return_val_if_fail(schema_key != NULL, NULL);
        g_return_val_if_fail(schema_key->type == type, NULL);
        return dcc_config_store_get(collector->config, schema_key);
}

gint64 dcc_collector_get_int(DccCollector *collector, const char *key)
{
        const DccConfigValue *value = collector_get_value(collector, key, DCC_CONFIG_INT);
        return value ? value->int_value : 0;
}

guint64 dcc_collector_get_uint(DccCollector *collector, const char *key)
{
        const DccConfigValue *value = collector_get_value(collector, key, DCC_CONFIG_UINT);
        return value ? value->uint_value : 0;
}

gboolean dcc_collector_get_bool(DccCollector *collector, const char *key)
{
        const DccConfigValue *value = collector_get_value(collector, key, DCC_CONFIG_BOOL);
        return value ? value->bool_value : FALSE;
}

double dcc_collector_get_double(DccCollector *collector, const char *key)
{
        const DccConfigValue *value = collector_get_value(collector, key, DCC_CONFIG_DOUBLE);
        return value ? value->double_value : 0.0;
}

const char *dcc_collector_get_string(DccCollector *collector, const char *key)
{
        const DccConfigValue *value = collector_get_value(collector, key, DCC_CONFIG_STRING);
        return value ? value->string_value : NULL;
}
