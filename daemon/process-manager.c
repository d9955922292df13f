/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process manager: the instances of every [collector <id>] group, the
 * operations the D-Bus front calls, the listing, reload and shutdown. What
 * happens to one instance is in collector-supervisor.c, the EventBus side in
 * process-manager-bus.c, how processes are run in the backends.
 */
#include <json-glib/json-glib.h>

#include <systemd/sd-daemon.h>

#include "process-manager-private.h"

/* clang-format off */
G_DEFINE_QUARK(daemoneye-process-manager-error-quark, process_manager_error)
/* clang-format on */

static const char *const state_names[] = {
        [COLLECTOR_STATE_STOPPED] = "stopped",           [COLLECTOR_STATE_STARTING] = "starting",
        [COLLECTOR_STATE_RUNNING] = "running",           [COLLECTOR_STATE_PAUSED] = "paused",
        [COLLECTOR_STATE_STOPPING] = "stopping",         [COLLECTOR_STATE_FAILED] = "failed",
        [COLLECTOR_STATE_UNRESPONSIVE] = "unresponsive",
};

/** collector_state_to_string: see process-manager.h. */
const char *collector_state_to_string(CollectorState state)
{
        if ((guint)state >= G_N_ELEMENTS(state_names))
                return "unknown";
        return state_names[state];
}

static const char *priority_of(GLogLevelFlags level)
{
        if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
                return "3";
        if (level & G_LOG_LEVEL_WARNING)
                return "4";
        if (level & G_LOG_LEVEL_MESSAGE)
                return "5";
        if (level & G_LOG_LEVEL_INFO)
                return "6";
        return "7";
}

/** pm_log: see process-manager-private.h. */
void pm_log(GLogLevelFlags level, const char *collector_id, const char *operation,
            const char *correlation_id, gint64 duration_us, const char *fmt, ...)
{
        g_autofree char *message = NULL;
        char duration[24];
        GLogField fields[7];
        gsize n = 0;
        va_list ap;

        va_start(ap, fmt);
        message = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        fields[n++] = (GLogField){"MESSAGE", message, -1};
        fields[n++] = (GLogField){"PRIORITY", priority_of(level), -1};
        fields[n++] = (GLogField){"GLIB_DOMAIN", G_LOG_DOMAIN, -1};
        if (collector_id)
                fields[n++] = (GLogField){"COLLECTOR_ID", collector_id, -1};
        if (operation)
                fields[n++] = (GLogField){"RPC_OPERATION", operation, -1};
        if (correlation_id)
                fields[n++] = (GLogField){"CORRELATION_ID", correlation_id, -1};
        if (duration_us >= 0) {
                g_snprintf(duration, sizeof(duration), "%" G_GINT64_FORMAT, duration_us);
                fields[n++] = (GLogField){"DURATION_US", duration, -1};
        }
        g_log_structured_array(level, fields, n);
}

/** pm_set_state: moves @mc to @state, logs it, publishes it and tells the state functions. */
void pm_set_state(ManagedCollector *mc, CollectorState state, const char *reason)
{
        ProcessManager *pm = mc->pm;
        CollectorState old = mc->state;
        gboolean bad = state == COLLECTOR_STATE_FAILED || state == COLLECTOR_STATE_UNRESPONSIVE;
        g_autofree char *id = NULL;

        if (old == state) {
                /* A new reason for the same state (a failed start during a restart): worth a line, not a
                 * signal. */
                pm_log(G_LOG_LEVEL_MESSAGE, mc->id, NULL, NULL, -1, "collector %s: %s: %s", mc->id,
                       collector_state_to_string(state), reason);
                return;
        }
        mc->state = state;
        pm_log(bad ? G_LOG_LEVEL_WARNING : G_LOG_LEVEL_MESSAGE, mc->id, NULL, NULL, -1,
               "collector %s: %s -> %s: %s", mc->id, collector_state_to_string(old),
               collector_state_to_string(state), reason);
        pm_bus_publish_state(mc, old, reason);

        id = g_strdup(mc->id);
        for (guint i = 0; i < pm->state_funcs->len; i++) {
                PmStateFunc *f = &g_array_index(pm->state_funcs, PmStateFunc, i);

                f->func(pm, id, old, state, reason, f->user_data);
        }
}

typedef struct {
        ProcessManagerCallback callback;
        gpointer user_data;
        char *id;
        GError *error;
        DebRpcResponse *response; /* a copy, protobuf-c unpacked */
} PmDeferred;

static void deferred_run(ProcessManager *pm, PmDeferred *d)
{
        d->callback(pm, d->id, d->response, d->error, d->user_data);
        if (d->response)
                daemoneye__eventbus__rpc_response__free_unpacked(d->response, NULL);
        g_clear_error(&d->error);
        g_free(d->id);
        g_free(d);
}

static gboolean on_deferred_idle(gpointer user_data)
{
        ProcessManager *pm = user_data;
        PmDeferred *d;

        g_clear_pointer(&pm->deferred_idle, g_source_unref);
        /* Callbacks may defer more: those wait for the next idle. */
        for (guint n = g_queue_get_length(&pm->deferred); n > 0 && (d = g_queue_pop_head(&pm->deferred));
             n--)
                deferred_run(pm, d);
        return G_SOURCE_REMOVE;
}

/** pm_defer_callback: see process-manager-private.h. */
void pm_defer_callback(ProcessManager *pm, ProcessManagerCallback callback, gpointer user_data,
                       const char *id, const DebRpcResponse *response, const GError *error)
{
        PmDeferred *d = g_new0(PmDeferred, 1);

        d->callback = callback;
        d->user_data = user_data;
        d->id = g_strdup(id);
        d->error = error ? g_error_copy(error) : NULL;
        if (response) {
                gsize len = protobuf_c_message_get_packed_size(&response->base);
                g_autofree guint8 *buf = g_malloc(len + 1);

                protobuf_c_message_pack(&response->base, buf);
                d->response = daemoneye__eventbus__rpc_response__unpack(NULL, len, buf);
        }
        g_queue_push_tail(&pm->deferred, d);
        if (!pm->deferred_idle) {
                pm->deferred_idle = g_idle_source_new();
                g_source_set_callback(pm->deferred_idle, on_deferred_idle, pm, NULL);
                g_source_attach(pm->deferred_idle, NULL);
        }
}

static void on_backend_exited(CollectorBackend *backend, const char *id, GPid pid, int wait_status,
                              gpointer user_data)
{
        ProcessManager *pm = user_data;
        ManagedCollector *mc = g_hash_table_lookup(pm->by_id, id);

        if (mc)
                supervisor_on_exited(mc, pid, wait_status);
}

/* Instance ids of a group: "<id>" alone, or "<id>-1".."<id>-N". */
static char **instance_ids(const CollectorConfig *c)
{
        char **ids = g_new0(char *, c->instances + 1);

        for (guint i = 0; i < c->instances; i++)
                ids[i] = c->instances == 1 ? g_strdup(c->id) : g_strdup_printf("%s-%u", c->id, i + 1);
        return ids;
}

static ManagedCollector *pm_add(ProcessManager *pm, const char *id, const CollectorConfig *config)
{
        ManagedCollector *mc = supervisor_new(pm, id, config);

        g_ptr_array_add(pm->collectors, mc);
        g_hash_table_insert(pm->by_id, mc->id, mc);
        return mc;
}

/** pm_collector_dropped: forgets @mc, whose group was removed and which no longer runs; frees it. */
void pm_collector_dropped(ManagedCollector *mc)
{
        ProcessManager *pm = mc->pm;

        pm_log(G_LOG_LEVEL_MESSAGE, mc->id, NULL, NULL, -1, "collector %s: removed", mc->id);
        g_hash_table_remove(pm->by_id, mc->id);
        g_ptr_array_remove(pm->collectors, mc);
}

static void copy_config(ProcessManager *pm, const Config *config)
{
        pm->config = config->process_manager;
        pm->rpc_config = config->rpc;
        pm->rpc_config.audit_log_path = NULL;
        g_free(pm->broker_socket_path);
        pm->broker_socket_path = g_strdup(config->broker.socket_path);
        pm->startup_timeout_seconds = config->broker.startup_timeout_seconds;
}

/* auto: systemd when it runs the machine (sd_booted()), else embedded. */
static gboolean backend_is_systemd(const Config *config)
{
        return config->process_manager.backend == COLLECTOR_BACKEND_SYSTEMD ||
               (config->process_manager.backend == COLLECTOR_BACKEND_AUTO && sd_booted() > 0);
}

/** process_manager_check_config: see process-manager.h. */
gboolean process_manager_check_config(const Config *config, GError **error)
{
        /* Under systemd a collector is its unit: exec= is the unit's business. */
        if (backend_is_systemd(config))
                return TRUE;
        for (CollectorConfig **c = config->collectors; c && *c; c++) {
                g_autoptr(GError) local = NULL;
                g_auto(GStrv) argv = collector_config_expand_exec(*c, NULL, &local);

                if (!argv) {
                        g_set_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_CONFIGURATION, "%s",
                                    local->message);
                        return FALSE;
                }
        }
        return TRUE;
}

/** process_manager_new: see process-manager.h. */
ProcessManager *process_manager_new(Broker *broker, const Config *config, AuditLog *audit, GError **error)
{
        const CollectorBackendEvents events = {.exited = on_backend_exited};
        g_autoptr(ProcessManager) pm = NULL;

        if (!process_manager_check_config(config, error))
                return NULL;
        pm = g_new0(ProcessManager, 1);
        pm->broker = broker;
        pm->audit = audit;
        copy_config(pm, config);
        g_queue_init(&pm->deferred);
        pm->collectors = g_ptr_array_new_with_free_func((GDestroyNotify)supervisor_free);
        pm->by_id = g_hash_table_new(g_str_hash, g_str_equal);
        pm->state_funcs = g_array_new(FALSE, TRUE, sizeof(PmStateFunc));
        if (backend_is_systemd(config)) {
                pm->backend = collector_backend_systemd_new(&events, pm, error);
                if (!pm->backend)
                        return NULL;
        } else
                pm->backend = collector_backend_embedded_new(&events, pm);
        g_message("process manager: %s backend", pm->backend->ops->name);
        /* Without collectors the agent stays off its own broker: a reload adding some connects it. */
        if (config->collectors[0] && !pm_bus_connect(pm, TRUE, error))
                return NULL;

        for (CollectorConfig **c = config->collectors; c && *c; c++) {
                g_auto(GStrv) ids = instance_ids(*c);

                for (char **id = ids; *id; id++)
                        pm_add(pm, *id, *c);
        }
        return g_steal_pointer(&pm);
}

/** process_manager_free: see process-manager.h. */
void process_manager_free(ProcessManager *pm)
{
        if (!pm)
                return;
        if (pm->shutdown_idle) {
                g_source_destroy(pm->shutdown_idle);
                g_clear_pointer(&pm->shutdown_idle, g_source_unref);
        }
        /* Instances first: their pending calls are cancelled through the RPC client. */
        g_clear_pointer(&pm->collectors, g_ptr_array_unref);
        /* Callbacks already due run now, with their outcome. */
        if (pm->deferred_idle) {
                g_source_destroy(pm->deferred_idle);
                g_clear_pointer(&pm->deferred_idle, g_source_unref);
        }
        for (PmDeferred *d; (d = g_queue_pop_head(&pm->deferred));)
                deferred_run(pm, d);
        g_clear_pointer(&pm->by_id, g_hash_table_unref);
        pm_bus_disconnect(pm);
        g_clear_pointer(&pm->backend, collector_backend_free);
        for (guint i = 0; pm->state_funcs && i < pm->state_funcs->len; i++) {
                PmStateFunc *f = &g_array_index(pm->state_funcs, PmStateFunc, i);

                if (f->destroy)
                        f->destroy(f->user_data);
        }
        g_clear_pointer(&pm->state_funcs, g_array_unref);
        g_free(pm->broker_socket_path);
        g_free(pm);
}

/** pm_on_connected: the agent's client was welcomed: start what wants to run. */
void pm_on_connected(ProcessManager *pm)
{
        for (guint i = 0; i < pm->collectors->len; i++) {
                ManagedCollector *mc = pm->collectors->pdata[i];

                if (mc->want_running && mc->pid == 0 && !mc->restart_timer && !pm->shutting_down)
                        supervisor_start(mc, mc->actor, NULL, NULL);
        }
}

/** process_manager_autostart: see process-manager.h. */
void process_manager_autostart(ProcessManager *pm)
{
        for (guint i = 0; i < pm->collectors->len; i++) {
                ManagedCollector *mc = pm->collectors->pdata[i];

                if (mc->config->autostart && !mc->want_running)
                        supervisor_start(mc, NULL, NULL, NULL);
        }
}

/* A config file value as a typed JSON value: collectors check types as they check the file's. */
static void add_json_value(JsonBuilder *builder, const char *text)
{
        char *end = NULL;
        gint64 i;
        double d;

        if (g_str_equal(text, "true") || g_str_equal(text, "false")) {
                json_builder_add_boolean_value(builder, g_str_equal(text, "true"));
                return;
        }
        i = g_ascii_strtoll(text, &end, 10);
        if (text[0] && end && *end == '\0') {
                json_builder_add_int_value(builder, i);
                return;
        }
        d = g_ascii_strtod(text, &end);
        if (text[0] && end && *end == '\0') {
                json_builder_add_double_value(builder, d);
                return;
        }
        json_builder_add_string_value(builder, text);
}

static void on_reload_update_done(ProcessManager *pm, ManagedCollector *mc, const DebRpcResponse *response,
                                  const GError *error, gpointer data)
{
        if (error && mc)
                pm_log(G_LOG_LEVEL_WARNING, mc->id, "update-config", NULL, -1,
                       "collector %s: reload: settings not applied (%s); they apply at its next start",
                       mc->id, error->message);
}

/* Sends the settings a reload changed to a running instance. */
static void send_reload_changes(ManagedCollector *mc, const CollectorConfig *old)
{
        g_autoptr(JsonBuilder) builder = json_builder_new();
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree const char **keys = collector_config_get_setting_keys(mc->config);
        g_autofree char *json = NULL;
        g_autoptr(GError) error = NULL;
        Daemoneye__Eventbus__ConfigUpdatePayload update = DAEMONEYE__EVENTBUS__CONFIG_UPDATE_PAYLOAD__INIT;
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        guint changed = 0;

        json_builder_begin_object(builder);
        for (const char **k = keys; *k; k++) {
                const char *value = g_hash_table_lookup(mc->config->settings, *k);

                if (g_strcmp0(value, g_hash_table_lookup(old->settings, *k)) == 0)
                        continue;
                json_builder_set_member_name(builder, *k);
                add_json_value(builder, value);
                changed++;
        }
        json_builder_end_object(builder);
        if (changed == 0 || (mc->state != COLLECTOR_STATE_RUNNING && mc->state != COLLECTOR_STATE_PAUSED))
                return;
        root = json_builder_get_root(builder);
        json_generator_set_root(generator, root);
        json = json_generator_to_data(generator, NULL);
        update.changes_json = json;
        update.rollback_on_failure = TRUE;
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_CONFIG_UPDATE;
        request.config_update = &update;
        if (!pm_call(mc, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_UPDATE_CONFIG, &request, 0, NULL,
                     on_reload_update_done, NULL, &error))
                on_reload_update_done(mc->pm, mc, NULL, error, NULL);
}

/** process_manager_apply_config: see process-manager.h. */
void process_manager_apply_config(ProcessManager *pm, const Config *config)
{
        g_autoptr(GHashTable) wanted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func(g_free);

        if (config->process_manager.backend != pm->config.backend)
                g_message("reload: [process_manager] backend takes effect after a restart of the agent");
        copy_config(pm, config);
        if (config->collectors[0] && !pm->client) {
                g_autoptr(GError) error = NULL;

                /* In the background: collectors to start wait for pm_on_connected(). */
                if (!pm_bus_connect(pm, FALSE, &error))
                        g_warning("reload: %s; collectors cannot be started", error->message);
        }

        for (CollectorConfig **c = config->collectors; c && *c; c++) {
                g_auto(GStrv) ids = instance_ids(*c);

                for (char **id = ids; *id; id++) {
                        ManagedCollector *mc = g_hash_table_lookup(pm->by_id, *id);

                        g_hash_table_add(wanted, g_strdup(*id));
                        if (mc) {
                                g_autoptr(CollectorConfig) old = collector_config_copy(mc->config);

                                mc->removed = FALSE;
                                supervisor_apply_config(mc, *c);
                                send_reload_changes(mc, old);
                                continue;
                        }
                        mc = pm_add(pm, *id, *c);
                        if ((*c)->autostart && !pm->shutting_down)
                                supervisor_start(mc, NULL, NULL, NULL);
                }
        }
        for (guint i = 0; i < pm->collectors->len; i++) {
                ManagedCollector *mc = pm->collectors->pdata[i];

                if (!g_hash_table_contains(wanted, mc->id))
                        g_ptr_array_add(gone, g_strdup(mc->id));
        }
        for (guint i = 0; i < gone->len; i++) {
                ManagedCollector *mc = g_hash_table_lookup(pm->by_id, gone->pdata[i]);

                if (!mc)
                        continue;
                mc->removed = TRUE;
                /* Stopped (now or once its process is gone), then dropped. */
                supervisor_stop(mc, STOP_CAUSE_REQUESTED, PROCESS_MANAGER_STOP_GRACEFUL, 0, NULL, NULL, NULL,
                                NULL);
        }
}

static gboolean on_shutdown_idle(gpointer user_data)
{
        ProcessManager *pm = user_data;

        g_clear_pointer(&pm->shutdown_idle, g_source_unref);
        if (pm->shutdown_func)
                pm->shutdown_func(pm, pm->shutdown_data);
        return G_SOURCE_REMOVE;
}

/** pm_maybe_finish_shutdown: calls the shutdown function (from an idle) once nothing runs any more. */
void pm_maybe_finish_shutdown(ProcessManager *pm)
{
        if (!pm->shutting_down || !pm->shutdown_func || pm->shutdown_idle)
                return;
        for (guint i = 0; i < pm->collectors->len; i++)
                if (!supervisor_is_idle(pm->collectors->pdata[i]))
                        return;
        pm->shutdown_idle = g_idle_source_new();
        g_source_set_callback(pm->shutdown_idle, on_shutdown_idle, pm, NULL);
        g_source_attach(pm->shutdown_idle, NULL);
}

/** process_manager_shutdown: see process-manager.h. */
void process_manager_shutdown(ProcessManager *pm, ProcessManagerShutdownFunc func, gpointer user_data)
{
        g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);

        pm->shutting_down = TRUE;
        pm->shutdown_func = func;
        pm->shutdown_data = user_data;
        for (guint i = 0; i < pm->collectors->len; i++)
                g_ptr_array_add(ids, g_strdup(((ManagedCollector *)pm->collectors->pdata[i])->id));
        /* By id: stopping a removed instance that no longer runs drops it from the array. */
        for (guint i = 0; i < ids->len; i++) {
                ManagedCollector *mc = g_hash_table_lookup(pm->by_id, ids->pdata[i]);

                if (mc && (mc->pid > 0 || mc->want_running || mc->restart_timer))
                        supervisor_stop(mc, STOP_CAUSE_REQUESTED, PROCESS_MANAGER_STOP_GRACEFUL, 0, NULL,
                                        NULL, NULL, NULL);
        }
        pm_maybe_finish_shutdown(pm);
}

/** process_manager_collector_info_free: frees @info. */
void process_manager_collector_info_free(ProcessManagerCollectorInfo *info)
{
        if (!info)
                return;
        g_free(info->id);
        g_free(info->type);
        g_free(info->unit);
        g_free(info->last_error);
        g_free(info);
}

static ProcessManagerCollectorInfo *info_new(ManagedCollector *mc)
{
        ProcessManagerCollectorInfo *info = g_new0(ProcessManagerCollectorInfo, 1);

        info->id = g_strdup(mc->id);
        info->type = g_strdup(mc->config->type ? mc->config->type : "");
        info->state = mc->state;
        info->pid = (pid_t)mc->pid;
        info->restart_count = mc->restart_count;
        info->last_heartbeat_us = mc->last_heartbeat_real_us;
        info->events_published = mc->events_published;
        info->unit = g_strdup(mc->pm->backend->ops->get_unit
                                      ? mc->pm->backend->ops->get_unit(mc->pm->backend, mc->id)
                                      : NULL);
        info->uptime_us = mc->running_since ? (guint64)(g_get_monotonic_time() - mc->running_since) : 0;
        info->autostart = mc->config->autostart;
        info->last_error = g_strdup(mc->last_error);
        return info;
}

/** process_manager_list: see process-manager.h. */
GPtrArray *process_manager_list(ProcessManager *pm)
{
        GPtrArray *list =
                g_ptr_array_new_with_free_func((GDestroyNotify)process_manager_collector_info_free);

        for (guint i = 0; i < pm->collectors->len; i++)
                g_ptr_array_add(list, info_new(pm->collectors->pdata[i]));
        return list;
}

/** process_manager_get: see process-manager.h. */
ProcessManagerCollectorInfo *process_manager_get(ProcessManager *pm, const char *id)
{
        ManagedCollector *mc = g_hash_table_lookup(pm->by_id, id);

        return mc ? info_new(mc) : NULL;
}

/** process_manager_to_variant: see process-manager.h. */
GVariant *process_manager_to_variant(ProcessManager *pm)
{
        g_autoptr(GPtrArray) list = process_manager_list(pm);
        GVariantBuilder collectors;

        g_variant_builder_init(&collectors, G_VARIANT_TYPE("aa{sv}"));
        for (guint i = 0; i < list->len; i++) {
                ProcessManagerCollectorInfo *info = list->pdata[i];
                GVariantBuilder c;

                g_variant_builder_init(&c, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&c, "{sv}", "id", g_variant_new_string(info->id));
                g_variant_builder_add(&c, "{sv}", "type", g_variant_new_string(info->type));
                g_variant_builder_add(&c, "{sv}", "state",
                                      g_variant_new_string(collector_state_to_string(info->state)));
                g_variant_builder_add(&c, "{sv}", "pid", g_variant_new_uint32((guint32)MAX(info->pid, 0)));
                g_variant_builder_add(&c, "{sv}", "restart_count",
                                      g_variant_new_uint32(info->restart_count));
                g_variant_builder_add(&c, "{sv}", "last_heartbeat_us",
                                      g_variant_new_uint64((guint64)MAX(info->last_heartbeat_us, 0)));
                g_variant_builder_add(&c, "{sv}", "uptime_us", g_variant_new_uint64(info->uptime_us));
                g_variant_builder_add(&c, "{sv}", "events_published",
                                      g_variant_new_uint64(info->events_published));
                g_variant_builder_add(&c, "{sv}", "autostart", g_variant_new_boolean(info->autostart));
                if (info->unit)
                        g_variant_builder_add(&c, "{sv}", "unit", g_variant_new_string(info->unit));
                if (info->last_error)
                        g_variant_builder_add(&c, "{sv}", "last_error",
                                              g_variant_new_string(info->last_error));
                g_variant_builder_add_value(&collectors, g_variant_builder_end(&c));
        }
        return g_variant_ref_sink(g_variant_builder_end(&collectors));
}

/** process_manager_to_json: see process-manager.h. */
char *process_manager_to_json(ProcessManager *pm)
{
        g_autoptr(GVariant) collectors = process_manager_to_variant(pm);
        g_autoptr(JsonNode) root = json_gvariant_serialize(collectors);

        return json_to_string(root, FALSE);
}

/** process_manager_add_state_func: see process-manager.h. */
guint process_manager_add_state_func(ProcessManager *pm, ProcessManagerStateFunc func, gpointer user_data,
                                     GDestroyNotify destroy)
{
        PmStateFunc f = {
                .func = func, .user_data = user_data, .destroy = destroy, .id = ++pm->next_state_func_id};

        g_array_append_val(pm->state_funcs, f);
        return f.id;
}

/** process_manager_set_heartbeat_func: see process-manager.h. */
void process_manager_set_heartbeat_func(ProcessManager *pm, ProcessManagerHeartbeatFunc func,
                                        gpointer user_data)
{
        pm->heartbeat_func = func;
        pm->heartbeat_data = user_data;
}

/** process_manager_remove_state_func: see process-manager.h. */
void process_manager_remove_state_func(ProcessManager *pm, guint id)
{
        for (guint i = 0; i < pm->state_funcs->len; i++) {
                PmStateFunc f = g_array_index(pm->state_funcs, PmStateFunc, i);

                if (f.id != id)
                        continue;
                g_array_remove_index(pm->state_funcs, i);
                if (f.destroy)
                        f.destroy(f.user_data);
                return;
        }
}
