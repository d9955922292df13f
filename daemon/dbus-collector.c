/* SPDX-License-Identifier: Apache-2.0 */
/*
 * org.daemoneye.Collector1: one object per collector instance at
 * /org/daemoneye/Agent1/collector/<escaped id>, served by one fallback
 * vtable. Each method is one process manager operation; the reply is sent
 * from its callback, so the loop never waits for a collector.
 */
#include <errno.h>
#include <json-glib/json-glib.h>

#include "dbus-front-private.h"
#include "dbus-util.h"

#define ACTION_MANAGE "org.daemoneye.collector.manage"
#define ACTION_CONFIGURE "org.daemoneye.collector.configure"
#define ACTION_SHUTDOWN "org.daemoneye.agent.shutdown"

/** front_collector_free: frees @fc. */
void front_collector_free(FrontCollector *fc)
{
        g_free(fc->id);
        g_free(fc->path);
        g_free(fc->health);
        g_free(fc);
}

/** dbus_collector_health: see dbus-front-private.h. */
const char *dbus_collector_health(const ProcessManagerCollectorInfo *info)
{
        switch (info->state) {
        case COLLECTOR_STATE_RUNNING:
                return "healthy";
        case COLLECTOR_STATE_PAUSED:
                return "degraded";
        case COLLECTOR_STATE_FAILED:
        case COLLECTOR_STATE_UNRESPONSIVE:
                return "unhealthy";
        case COLLECTOR_STATE_STOPPED:
        case COLLECTOR_STATE_STARTING:
        case COLLECTOR_STATE_STOPPING:
                break;
        }
        return "unknown";
}

/** dbus_collector_find: see dbus-front-private.h. */
int dbus_collector_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                        sd_bus_error *error)
{
        DbusFront *front = userdata;
        g_autofree char *id = NULL;
        FrontCollector *fc;
        int r;

        r = sd_bus_path_decode(path, DBUS_FRONT_COLLECTOR_PREFIX, &id);
        if (r <= 0)
                return r;
        fc = g_hash_table_lookup(front->collectors, id);
        if (!fc)
                return 0;
        *found = fc;
        return 1;
}

/** dbus_collector_enumerate: see dbus-front-private.h. */
int dbus_collector_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                             sd_bus_error *error)
{
        DbusFront *front = userdata;
        GHashTableIter iter;
        FrontCollector *fc;
        char **nodes = calloc(g_hash_table_size(front->collectors) + 1, sizeof(char *));
        gsize n = 0;

        /* sd-bus frees these with free(): no g_malloc here. */
        if (!nodes)
                return -ENOMEM;
        g_hash_table_iter_init(&iter, front->collectors);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&fc)) {
                nodes[n] = strdup(fc->path);
                if (!nodes[n]) {
                        for (gsize i = 0; i < n; i++)
                                free(nodes[i]);
                        free(nodes);
                        return -ENOMEM;
                }
                n++;
        }
        *ret_nodes = nodes;
        return 0;
}

/** dbus_collector_refresh: see dbus-front-private.h. */
void dbus_collector_refresh(DbusFront *front, FrontCollector *fc)
{
        g_autoptr(ProcessManagerCollectorInfo) info = process_manager_get(front->pm, fc->id);
        const char *changed[12];
        const char *health;
        guint n = 0;

        if (!info)
                return;
        health = dbus_collector_health(info);
        if (fc->state != info->state) {
                fc->state = info->state;
                changed[n++] = "State";
                changed[n++] = "Unit"; /* known from the first start on */
        }
        if (g_strcmp0(fc->health, health) != 0) {
                g_free(fc->health);
                fc->health = g_strdup(health);
                changed[n++] = "Health";
        }
        if (fc->pid != (guint32)MAX(info->pid, 0)) {
                fc->pid = (guint32)MAX(info->pid, 0);
                changed[n++] = "Pid";
        }
        if (fc->restart_count != info->restart_count) {
                fc->restart_count = info->restart_count;
                changed[n++] = "RestartCount";
        }
        if (fc->last_heartbeat != (guint64)MAX(info->last_heartbeat_us, 0)) {
                fc->last_heartbeat = (guint64)MAX(info->last_heartbeat_us, 0);
                changed[n++] = "LastHeartbeat";
        }
        if (fc->events_published != info->events_published) {
                fc->events_published = info->events_published;
                changed[n++] = "EventsPublished";
        }
        if (n == 0)
                return;
        /* Uptime moves all the time: it is announced with every other change (a start resets it). */
        changed[n++] = "Uptime";
        changed[n] = NULL;
        if (fc->announced)
                sd_bus_emit_properties_changed_strv(front->bus, fc->path, DBUS_FRONT_COLLECTOR_INTERFACE,
                                                    (char **)changed);
}

/** dbus_collector_sync: see dbus-front-private.h. */
void dbus_collector_sync(DbusFront *front)
{
        g_autoptr(GPtrArray) list = process_manager_list(front->pm);
        g_autoptr(GHashTable) present = g_hash_table_new(g_str_hash, g_str_equal);
        GHashTableIter iter;
        FrontCollector *fc;

        for (guint i = 0; i < list->len; i++) {
                ProcessManagerCollectorInfo *info = list->pdata[i];

                g_hash_table_add(present, info->id);
                if (g_hash_table_contains(front->collectors, info->id))
                        continue;
                fc = g_new0(FrontCollector, 1);
                fc->front = front;
                fc->id = g_strdup(info->id);
                if (sd_bus_path_encode(DBUS_FRONT_COLLECTOR_PREFIX, info->id, &fc->path) < 0) {
                        front_collector_free(fc);
                        continue;
                }
                g_hash_table_insert(front->collectors, fc->id, fc);
                dbus_collector_refresh(front, fc);
                fc->announced = TRUE;
                sd_bus_emit_object_added(front->bus, fc->path);
        }

        g_hash_table_iter_init(&iter, front->collectors);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&fc)) {
                if (g_hash_table_contains(present, fc->id))
                        continue;
                /* Announced while it can still be looked up: InterfacesRemoved names its interfaces. */
                sd_bus_emit_object_removed(front->bus, fc->path);
                g_hash_table_iter_remove(&iter);
        }
}

/* ---- replies from process manager callbacks ---- */

/*
 * Replies to @call (whose reference this consumes) with @value (floating, an
 * (s, a{sv}) tuple or an a{sv}) or with @error; @value NULL and no error: the
 * collector answered without the result the operation promises.
 */
static void reply_result(sd_bus_message *call, const char *id, const char *operation, const GError *error,
                         GVariant *value)
{
        g_autoptr(GVariant) owned = value ? g_variant_ref_sink(value) : NULL;
        int r;

        if (error)
                r = dbus_reply_gerror(call, error);
        else if (!owned)
                r = sd_bus_reply_method_errorf(call, DBUS_ERROR_COMMUNICATION,
                                               "collector %s answered %s without a result", id, operation);
        else
                r = dbus_reply_gvariant(call, owned);
        if (r < 0)
                g_warning("D-Bus: cannot reply to %s of %s: %s", operation, id, g_strerror(-r));
        sd_bus_message_unref(call);
}

static void on_done(ProcessManager *pm, const char *id, const DebRpcResponse *response, const GError *error,
                    gpointer user_data)
{
        sd_bus_message *call = user_data;

        if (error)
                dbus_reply_gerror(call, error);
        else
                sd_bus_reply_method_return(call, NULL);
        sd_bus_message_unref(call);
}

/* "COLLECTOR_STATUS_RUNNING" → "running". */
static char *enum_nick(const ProtobufCEnumDescriptor *descriptor, int value, const char *prefix)
{
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(descriptor, value);

        if (!v)
                return g_strdup("unknown");
        return g_ascii_strdown(g_str_has_prefix(v->name, prefix) ? v->name + strlen(prefix) : v->name, -1);
}

static GVariant *health_details(const Daemoneye__Eventbus__HealthResult *health)
{
        g_autofree char *status = enum_nick(&daemoneye__eventbus__collector_status__descriptor,
                                            health->status, "COLLECTOR_STATUS_");
        GVariantBuilder details, components, metrics;

        g_variant_builder_init(&details, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&details, "{sv}", "collector_status", g_variant_new_string(status));
        g_variant_builder_add(&details, "{sv}", "last_heartbeat_us",
                              g_variant_new_uint64(health->last_heartbeat_us));
        g_variant_builder_add(&details, "{sv}", "uptime_ms", g_variant_new_uint64(health->uptime_ms));
        g_variant_builder_add(&details, "{sv}", "error_count", g_variant_new_uint64(health->error_count));

        g_variant_builder_init(&components, G_VARIANT_TYPE("aa{sv}"));
        for (gsize i = 0; i < health->n_components; i++) {
                const Daemoneye__Eventbus__ComponentHealth *c = health->components[i];
                g_autofree char *c_status = enum_nick(&daemoneye__eventbus__health_status__descriptor,
                                                      c->status, "HEALTH_STATUS_");
                GVariantBuilder component;

                g_variant_builder_init(&component, G_VARIANT_TYPE_VARDICT);
                g_variant_builder_add(&component, "{sv}", "name",
                                      g_variant_new_string(c->name ? c->name : ""));
                g_variant_builder_add(&component, "{sv}", "status", g_variant_new_string(c_status));
                g_variant_builder_add(&component, "{sv}", "message",
                                      g_variant_new_string(c->message ? c->message : ""));
                g_variant_builder_add(&component, "{sv}", "last_check_us",
                                      g_variant_new_uint64(c->last_check_us));
                g_variant_builder_add_value(&components, g_variant_builder_end(&component));
        }
        g_variant_builder_add(&details, "{sv}", "components", g_variant_builder_end(&components));

        g_variant_builder_init(&metrics, G_VARIANT_TYPE("a{sd}"));
        for (gsize i = 0; i < health->n_metrics; i++)
                g_variant_builder_add(&metrics, "{sd}", health->metrics[i]->key, health->metrics[i]->value);
        g_variant_builder_add(&details, "{sv}", "metrics", g_variant_builder_end(&metrics));
        return g_variant_builder_end(&details);
}

static void on_health_done(ProcessManager *pm, const char *id, const DebRpcResponse *response,
                           const GError *error, gpointer user_data)
{
        const Daemoneye__Eventbus__HealthResult *health = response ? response->health : NULL;
        g_autofree char *status = NULL;

        if (error || !health) {
                reply_result(user_data, id, "HealthCheck", error, NULL);
                return;
        }
        status = enum_nick(&daemoneye__eventbus__health_status__descriptor, health->overall,
                           "HEALTH_STATUS_");
        reply_result(user_data, id, "HealthCheck", NULL,
                     g_variant_new("(s@a{sv})", status, health_details(health)));
}

static GVariant *strv_variant(char **strv, gsize n)
{
        return g_variant_new_strv((const char *const *)strv, (gssize)n);
}

static GVariant *rejections_variant(Daemoneye__Eventbus__KeyRejection **list, gsize n)
{
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{ss}"));
        for (gsize i = 0; i < n; i++)
                g_variant_builder_add(&b, "{ss}", list[i]->key, list[i]->reason ? list[i]->reason : "");
        return g_variant_builder_end(&b);
}

static void on_update_config_done(ProcessManager *pm, const char *id, const DebRpcResponse *response,
                                  const GError *error, gpointer user_data)
{
        const Daemoneye__Eventbus__ConfigUpdateResult *result = response ? response->config_update : NULL;
        GVariantBuilder b;

        if (error || !result) {
                reply_result(user_data, id, "UpdateConfig", error, NULL);
                return;
        }
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "applied", strv_variant(result->applied, result->n_applied));
        g_variant_builder_add(&b, "{sv}", "skipped", rejections_variant(result->skipped, result->n_skipped));
        g_variant_builder_add(&b, "{sv}", "rejected",
                              rejections_variant(result->rejected, result->n_rejected));
        g_variant_builder_add(&b, "{sv}", "restart_required",
                              g_variant_new_boolean(result->restart_required));
        g_variant_builder_add(&b, "{sv}", "validated_only", g_variant_new_boolean(result->validated_only));
        g_variant_builder_add(&b, "{sv}", "rolled_back", g_variant_new_boolean(result->rolled_back));
        reply_result(user_data, id, "UpdateConfig", NULL, g_variant_builder_end(&b));
}

static void on_capabilities_done(ProcessManager *pm, const char *id, const DebRpcResponse *response,
                                 const GError *error, gpointer user_data)
{
        const Daemoneye__Eventbus__Capabilities *caps = response ? response->capabilities : NULL;
        GVariantBuilder b, operations;

        if (error || !caps) {
                reply_result(user_data, id, "GetCapabilities", error, NULL);
                return;
        }
        g_variant_builder_init(&operations, G_VARIANT_TYPE_STRING_ARRAY);
        for (gsize i = 0; i < caps->n_operations; i++)
                g_variant_builder_add(&operations, "s", deb_rpc_operation_to_string(caps->operations[i]));
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "event_types",
                              strv_variant(caps->event_types, caps->n_event_types));
        g_variant_builder_add(&b, "{sv}", "operations", g_variant_builder_end(&operations));
        g_variant_builder_add(&b, "{sv}", "platforms", strv_variant(caps->platforms, caps->n_platforms));
        g_variant_builder_add(&b, "{sv}", "features", strv_variant(caps->features, caps->n_features));
        g_variant_builder_add(&b, "{sv}", "max_concurrent_requests",
                              g_variant_new_uint32(caps->max_concurrent_requests));
        if (caps->resources) {
                g_variant_builder_add(
                        &b, "{sv}", "capabilities",
                        strv_variant(caps->resources->capabilities, caps->resources->n_capabilities));
                g_variant_builder_add(&b, "{sv}", "min_memory_bytes",
                                      g_variant_new_uint64(caps->resources->min_memory_bytes));
                g_variant_builder_add(&b, "{sv}", "min_cpu_percent",
                                      g_variant_new_uint32(caps->resources->min_cpu_percent));
        }
        if (caps->timeout_limits) {
                g_variant_builder_add(&b, "{sv}", "timeout_min_ms",
                                      g_variant_new_uint32(caps->timeout_limits->min_ms));
                g_variant_builder_add(&b, "{sv}", "timeout_max_ms",
                                      g_variant_new_uint32(caps->timeout_limits->max_ms));
                g_variant_builder_add(&b, "{sv}", "timeout_default_ms",
                                      g_variant_new_uint32(caps->timeout_limits->default_ms));
        }
        reply_result(user_data, id, "GetCapabilities", NULL, g_variant_builder_end(&b));
}

/*
 * Starts @call's operation; the callback replies. A refusal before anything
 * started (unknown collector, wrong state) is the reply at once.
 */
typedef gboolean (*SimpleOperation)(ProcessManager *pm, const char *id, const char *actor,
                                    ProcessManagerCallback callback, gpointer user_data, GError **error);

static int run_operation(FrontCollector *fc, sd_bus_message *call, SimpleOperation op,
                         ProcessManagerCallback callback, const char *actor, sd_bus_error *ret_error)
{
        g_autoptr(GError) error = NULL;

        if (!op(fc->front->pm, fc->id, actor, callback, sd_bus_message_ref(call), &error)) {
                sd_bus_message_unref(call);
                return sd_bus_error_setf(ret_error, dbus_error_name_for(error), "%s", error->message);
        }
        return 1;
}

/* Options not defined for Start and Restart are refused rather than ignored. */
static int read_no_options(sd_bus_message *call, sd_bus_error *ret_error)
{
        g_autoptr(GVariant) options = NULL;
        GVariantIter iter;
        const char *key;
        int r;

        r = dbus_read_gvariant(call, "a{sv}", &options);
        if (r < 0)
                return r;
        g_variant_iter_init(&iter, options);
        if (g_variant_iter_next(&iter, "{&sv}", &key, NULL))
                return sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS, "unknown option '%s'", key);
        return 0;
}

/* Start, Restart, Pause, Resume: authorized as org.daemoneye.collector.manage, then one operation. */
static int run_managed(sd_bus_message *call, FrontCollector *fc, SimpleOperation op, sd_bus_error *ret_error)
{
        g_autofree char *actor = NULL;
        int r;

        r = dbus_polkit_verify(fc->front->polkit, call, ACTION_MANAGE, &actor, ret_error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return run_operation(fc, call, op, on_done, actor, ret_error);
}

static int method_start(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        int r = read_no_options(call, ret_error);

        return r < 0 ? r : run_managed(call, userdata, process_manager_start, ret_error);
}

static int method_restart(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        int r = read_no_options(call, ret_error);

        return r < 0 ? r : run_managed(call, userdata, process_manager_restart, ret_error);
}

static int method_pause(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        return run_managed(call, userdata, process_manager_pause, ret_error);
}

static int method_resume(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        return run_managed(call, userdata, process_manager_resume, ret_error);
}

static int stop_with(FrontCollector *fc, sd_bus_message *call, ProcessManagerStopMode mode, guint timeout_ms,
                     const char *reason, const char *actor, sd_bus_error *ret_error)
{
        g_autoptr(GError) error = NULL;

        if (!process_manager_stop_with(fc->front->pm, fc->id, mode, timeout_ms, reason, actor, on_done,
                                       sd_bus_message_ref(call), &error)) {
                sd_bus_message_unref(call);
                return sd_bus_error_setf(ret_error, dbus_error_name_for(error), "%s", error->message);
        }
        return 1;
}

static int method_stop(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = ((FrontCollector *)userdata)->front;
        g_autofree char *actor = NULL;
        int graceful = 0;
        int r;

        r = sd_bus_message_read(call, "b", &graceful);
        if (r < 0)
                return r;
        r = dbus_polkit_verify(front->polkit, call, ACTION_MANAGE, &actor, ret_error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return stop_with(userdata, call,
                         graceful ? PROCESS_MANAGER_STOP_GRACEFUL : PROCESS_MANAGER_STOP_TERMINATE, 0, NULL,
                         actor, ret_error);
}

static int method_shutdown(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = ((FrontCollector *)userdata)->front;
        g_autofree char *actor = NULL;
        const char *type = NULL, *reason = NULL;
        guint32 timeout_ms = 0;
        ProcessManagerStopMode mode;
        int r;

        r = sd_bus_message_read(call, "sus", &type, &timeout_ms, &reason);
        if (r < 0)
                return r;
        if (g_str_equal(type, "graceful"))
                mode = PROCESS_MANAGER_STOP_GRACEFUL;
        else if (g_str_equal(type, "emergency"))
                mode = PROCESS_MANAGER_STOP_KILL;
        else
                return sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS,
                                         "shutdown type '%s': expected 'graceful' or 'emergency'", type);
        if (!g_utf8_validate(reason, -1, NULL) || strlen(reason) > 1024)
                return sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS, "reason: at most 1024 bytes");
        r = dbus_polkit_verify(front->polkit, call, ACTION_SHUTDOWN, &actor, ret_error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return stop_with(userdata, call, mode, timeout_ms, reason[0] ? reason : "shutdown requested", actor,
                         ret_error);
}

static int method_health_check(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        g_autofree char *actor = dbus_polkit_describe_sender(call);

        return run_operation(userdata, call, process_manager_health_check, on_health_done, actor, ret_error);
}

static int method_get_capabilities(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        g_autofree char *actor = dbus_polkit_describe_sender(call);

        return run_operation(userdata, call, process_manager_get_capabilities, on_capabilities_done, actor,
                             ret_error);
}

/* a{sv} of setting → value as the JSON object UpdateConfig carries; only scalars make sense as settings. */
static char *changes_to_json(GVariant *changes, sd_bus_error *ret_error)
{
        g_autoptr(JsonBuilder) builder = json_builder_new();
        g_autoptr(JsonNode) root = NULL;
        GVariantIter iter;
        const char *key;
        GVariant *value;

        json_builder_begin_object(builder);
        g_variant_iter_init(&iter, changes);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_autoptr(GVariant) v = value;

                if (!key[0]) {
                        sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS,
                                          "changes: an empty setting name");
                        return NULL;
                }
                json_builder_set_member_name(builder, key);
                switch (g_variant_classify(v)) {
                case G_VARIANT_CLASS_BOOLEAN:
                        json_builder_add_boolean_value(builder, g_variant_get_boolean(v));
                        break;
                case G_VARIANT_CLASS_STRING:
                        json_builder_add_string_value(builder, g_variant_get_string(v, NULL));
                        break;
                case G_VARIANT_CLASS_BYTE:
                        json_builder_add_int_value(builder, g_variant_get_byte(v));
                        break;
                case G_VARIANT_CLASS_INT16:
                        json_builder_add_int_value(builder, g_variant_get_int16(v));
                        break;
                case G_VARIANT_CLASS_UINT16:
                        json_builder_add_int_value(builder, g_variant_get_uint16(v));
                        break;
                case G_VARIANT_CLASS_INT32:
                        json_builder_add_int_value(builder, g_variant_get_int32(v));
                        break;
                case G_VARIANT_CLASS_UINT32:
                        json_builder_add_int_value(builder, g_variant_get_uint32(v));
                        break;
                case G_VARIANT_CLASS_INT64:
                        json_builder_add_int_value(builder, g_variant_get_int64(v));
                        break;
                case G_VARIANT_CLASS_UINT64:
                        if (g_variant_get_uint64(v) > G_MAXINT64) {
                                sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS,
                                                  "changes: '%s': %" G_GUINT64_FORMAT " is out of range",
                                                  key, g_variant_get_uint64(v));
                                return NULL;
                        }
                        json_builder_add_int_value(builder, (gint64)g_variant_get_uint64(v));
                        break;
                case G_VARIANT_CLASS_DOUBLE:
                        json_builder_add_double_value(builder, g_variant_get_double(v));
                        break;
                default:
                        sd_bus_error_setf(
                                ret_error, DBUS_ERROR_INVALID_ARGS,
                                "changes: '%s' has D-Bus type '%s'; a setting is a string, number or "
                                "boolean",
                                key, g_variant_get_type_string(v));
                        return NULL;
                }
        }
        json_builder_end_object(builder);
        root = json_builder_get_root(builder);
        return json_to_string(root, FALSE);
}

static int method_update_config(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        FrontCollector *fc = userdata;
        DbusFront *front = fc->front;
        g_autoptr(GVariant) changes = NULL, options = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *json = NULL, *actor = NULL;
        gboolean validate_only = FALSE, rollback = TRUE;
        GVariantIter iter;
        const char *key;
        GVariant *value;
        int r;

        r = dbus_read_gvariant(call, "a{sv}", &changes);
        if (r >= 0)
                r = dbus_read_gvariant(call, "a{sv}", &options);
        if (r < 0)
                return r;
        if (g_variant_n_children(changes) == 0)
                return sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS, "changes: nothing to change");
        g_variant_iter_init(&iter, options);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_autoptr(GVariant) v = value;
                gboolean *target = g_str_equal(key, "validate_only")         ? &validate_only
                                   : g_str_equal(key, "rollback_on_failure") ? &rollback
                                                                             : NULL;

                if (!target)
                        return sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS, "unknown option '%s'",
                                                 key);
                if (!g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
                        return sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS,
                                                 "option '%s' is a boolean (b), not '%s'", key,
                                                 g_variant_get_type_string(v));
                *target = g_variant_get_boolean(v);
        }
        json = changes_to_json(changes, ret_error);
        if (!json)
                return -EINVAL;

        r = dbus_polkit_verify(front->polkit, call, ACTION_CONFIGURE, &actor, ret_error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (!process_manager_update_config(front->pm, fc->id, json, validate_only, FALSE, rollback, actor,
                                           on_update_config_done, sd_bus_message_ref(call), &error)) {
                sd_bus_message_unref(call);
                return sd_bus_error_setf(ret_error, dbus_error_name_for(error), "%s", error->message);
        }
        return 1;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        FrontCollector *fc = userdata;
        DbusFront *front = fc->front;
        g_autoptr(ProcessManagerCollectorInfo) info = NULL;

        if (g_str_equal(property, "Id"))
                return sd_bus_message_append(reply, "s", fc->id);
        info = process_manager_get(front->pm, fc->id);
        if (!info)
                return sd_bus_error_setf(ret_error, DBUS_ERROR_NOT_FOUND, "collector %s is gone", fc->id);
        if (g_str_equal(property, "Type"))
                return sd_bus_message_append(reply, "s", info->type);
        if (g_str_equal(property, "State"))
                return sd_bus_message_append(reply, "s", collector_state_to_string(info->state));
        if (g_str_equal(property, "Health"))
                return sd_bus_message_append(reply, "s", dbus_collector_health(info));
        if (g_str_equal(property, "Pid"))
                return sd_bus_message_append(reply, "u", (guint32)MAX(info->pid, 0));
        if (g_str_equal(property, "RestartCount"))
                return sd_bus_message_append(reply, "u", (guint32)info->restart_count);
        if (g_str_equal(property, "LastHeartbeat"))
                return sd_bus_message_append(reply, "t", (guint64)MAX(info->last_heartbeat_us, 0));
        if (g_str_equal(property, "Uptime"))
                return sd_bus_message_append(reply, "t", info->uptime_us);
        if (g_str_equal(property, "Unit"))
                return sd_bus_message_append(reply, "s", info->unit ? info->unit : "");
        if (g_str_equal(property, "EventsPublished"))
                return sd_bus_message_append(reply, "t", info->events_published);
        return -ENOENT;
}

const sd_bus_vtable dbus_collector_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Start", SD_BUS_ARGS("a{sv}", options), SD_BUS_NO_RESULT, method_start,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Stop", SD_BUS_ARGS("b", graceful), SD_BUS_NO_RESULT, method_stop,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Restart", SD_BUS_ARGS("a{sv}", options), SD_BUS_NO_RESULT, method_restart,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Pause", NULL, NULL, method_pause, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Resume", NULL, NULL, method_resume, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("HealthCheck", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", status, "a{sv}", details),
                                method_health_check, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("UpdateConfig", SD_BUS_ARGS("a{sv}", changes, "a{sv}", options),
                                SD_BUS_RESULT("a{sv}", result), method_update_config,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCapabilities", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", capabilities),
                                method_get_capabilities, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Shutdown", SD_BUS_ARGS("s", type, "u", timeout_ms, "s", reason),
                                SD_BUS_NO_RESULT, method_shutdown, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Id", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Type", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Health", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Pid", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RestartCount", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastHeartbeat", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Uptime", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EventsPublished", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Unit", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};
