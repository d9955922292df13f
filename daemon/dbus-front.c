/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The D-Bus front: the connection, the name, and org.daemoneye.Agent1 at
 * /org/daemoneye/Agent1 with the ObjectManager of the collector objects
 * (dbus-collector.c). See dbus-front.h.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemoneye-build-config.h"
#include "dbus-front-private.h"
#include "dbus-util.h"
#include "deb-topic.h"
#include "sd-event-source.h"

/* How often health is evaluated for HealthChanged when nothing else prompts it. */
#define HEALTH_INTERVAL_MS 5000

#define ACTION_SHUTDOWN "org.daemoneye.agent.shutdown"
#define ACTION_SUBSCRIBE "org.daemoneye.events.subscribe"

static void front_emit_health(DbusFront *front)
{
        g_autoptr(GVariant) health = dbus_health_evaluate(front);
        const char *status = NULL;

        g_variant_get_child(health, 0, "&s", &status);
        if (g_strcmp0(status, front->health_status) == 0)
                return;
        if (front->health_status)
                g_message("health: %s -> %s", front->health_status, status);
        g_free(front->health_status);
        front->health_status = g_strdup(status);
        sd_bus_emit_signal(front->bus, DBUS_FRONT_AGENT_PATH, DBUS_FRONT_AGENT_INTERFACE, "HealthChanged",
                           "s", status);
}

static gboolean on_health_timer(gpointer user_data)
{
        front_emit_health(user_data);
        return G_SOURCE_CONTINUE;
}

static void on_collector_state(ProcessManager *pm, const char *id, CollectorState old_state,
                               CollectorState new_state, const char *reason, gpointer user_data)
{
        DbusFront *front = user_data;
        FrontCollector *fc;

        dbus_collector_sync(front);
        fc = g_hash_table_lookup(front->collectors, id);
        if (fc)
                dbus_collector_refresh(front, fc);
        sd_bus_emit_signal(front->bus, DBUS_FRONT_AGENT_PATH, DBUS_FRONT_AGENT_INTERFACE,
                           "CollectorStateChanged", "sss", id, collector_state_to_string(old_state),
                           collector_state_to_string(new_state));
        front_emit_health(front);
}

static void on_collector_heartbeat(ProcessManager *pm, const char *id, gpointer user_data)
{
        DbusFront *front = user_data;
        FrontCollector *fc = g_hash_table_lookup(front->collectors, id);

        if (fc)
                dbus_collector_refresh(front, fc);
}

/* ---- org.daemoneye.Agent1 methods ---- */

static int method_list_collectors(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;
        __attribute__((cleanup(sd_bus_message_unrefp))) sd_bus_message *reply = NULL;
        g_autoptr(GPtrArray) list = process_manager_list(front->pm);
        int r;

        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sso)");
        for (guint i = 0; r >= 0 && i < list->len; i++) {
                ProcessManagerCollectorInfo *info = list->pdata[i];
                g_autofree char *path = NULL;

                r = sd_bus_path_encode(DBUS_FRONT_COLLECTOR_PREFIX, info->id, &path);
                if (r >= 0)
                        r = sd_bus_message_append(reply, "(sso)", info->id,
                                                  collector_state_to_string(info->state), path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_health(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;
        g_autoptr(GVariant) health = dbus_health_evaluate(front);

        return dbus_reply_gvariant(call, health);
}

static int method_get_metrics(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;
        g_autoptr(GVariant) broker = broker_get_metrics(front->broker);
        g_autoptr(GVariant) collectors = process_manager_to_variant(front->pm);
        g_autoptr(GVariant) metrics = NULL;
        GVariantBuilder builder;
        GVariantIter iter;
        const char *key;
        GVariant *value;

        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        g_variant_iter_init(&iter, broker);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_variant_builder_add(&builder, "{sv}", key, value);
                g_variant_unref(value);
        }
        g_variant_builder_add(&builder, "{sv}", "collectors", collectors);
        metrics = g_variant_ref_sink(g_variant_builder_end(&builder));
        return dbus_reply_gvariant(call, metrics);
}

static int method_reload(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;
        g_autoptr(GError) error = NULL;
        g_autofree char *actor = NULL;
        int r;

        r = dbus_polkit_verify(front->polkit, call, ACTION_SHUTDOWN, &actor, ret_error);
        if (r <= 0)
                return r < 0 ? r : 1;
        g_message("reload requested over D-Bus by %s", actor);
        if (!front->hooks.reload(front->hooks.user_data, &error))
                return sd_bus_error_setf(ret_error, DBUS_ERROR_EXECUTION, "%s", error->message);
        return sd_bus_reply_method_return(call, NULL);
}

static int method_shutdown(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;
        g_autofree char *actor = NULL;
        int r;

        r = dbus_polkit_verify(front->polkit, call, ACTION_SHUTDOWN, &actor, ret_error);
        if (r <= 0)
                return r < 0 ? r : 1;
        g_message("shutdown requested over D-Bus by %s", actor);
        r = sd_bus_reply_method_return(call, NULL);
        front->hooks.shutdown(front->hooks.user_data);
        return r;
}

static int method_open_event_stream(sd_bus_message *call, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;
        g_autoptr(GError) error = NULL;
        g_autofree char *actor = NULL;
        const char *pattern = NULL;
        int fds[2];
        int r;

        r = sd_bus_message_read(call, "s", &pattern);
        if (r < 0)
                return r;
        /* Refused before polkit is even asked: a bad pattern is bad for everyone. */
        if (!deb_pattern_validate(pattern, &error))
                return sd_bus_error_setf(ret_error, DBUS_ERROR_INVALID_ARGS, "%s", error->message);
        if (sd_bus_can_send(sd_bus_message_get_bus(call), 'h') <= 0)
                return sd_bus_error_setf(ret_error, DBUS_ERROR_COMMUNICATION,
                                         "this bus connection cannot pass file descriptors");

        r = dbus_polkit_verify(front->polkit, call, ACTION_SUBSCRIBE, &actor, ret_error);
        if (r <= 0)
                return r < 0 ? r : 1;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                return sd_bus_error_setf(ret_error, DBUS_ERROR_EXECUTION, "socketpair: %s",
                                         g_strerror(errno));
        /* fds[0] is the broker's from here on, closed by it on failure too. */
        if (!broker_adopt_stream_fd(front->broker, fds[0], pattern, actor, &error)) {
                close(fds[1]);
                return sd_bus_error_setf(ret_error,
                                         g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_PERM)
                                                 ? DBUS_ERROR_INVALID_ARGS
                                                 : DBUS_ERROR_EXECUTION,
                                         "%s", error->message);
        }
        /* sd-bus sends a duplicate: ours is closed either way. */
        r = sd_bus_reply_method_return(call, "h", fds[1]);
        close(fds[1]);
        return r;
}

/* ---- org.daemoneye.Agent1 properties ---- */

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;

        if (g_str_equal(property, "Version"))
                return sd_bus_message_append(reply, "s", DAEMONEYE_VERSION);
        if (g_str_equal(property, "State"))
                return sd_bus_message_append(reply, "s", front->state);
        if (g_str_equal(property, "BrokerSocket"))
                return sd_bus_message_append(reply, "s", broker_get_socket_description(front->broker));
        if (g_str_equal(property, "StartTime"))
                return sd_bus_message_append(reply, "t", front->start_time_us);
        if (g_str_equal(property, "ConnectedClients"))
                return sd_bus_message_append(reply, "u", (guint32)broker_get_n_connections(front->broker));
        if (g_str_equal(property, "MessagesRouted"))
                return sd_bus_message_append(reply, "t", broker_get_messages_routed(front->broker));
        return -ENOENT;
}

static const sd_bus_vtable agent_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("ListCollectors", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sso)", collectors),
                                method_list_collectors, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetHealth", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", status, "a{sv}", checks),
                                method_get_health, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", metrics),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Reload", NULL, NULL, method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("OpenEventStream", SD_BUS_ARGS("s", pattern), SD_BUS_RESULT("h", stream),
                                method_open_event_stream, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Shutdown", NULL, NULL, method_shutdown, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("CollectorStateChanged",
                                SD_BUS_ARGS("s", id, "s", old_state, "s", new_state), 0),
        SD_BUS_SIGNAL_WITH_ARGS("HealthChanged", SD_BUS_ARGS("s", status), 0),
        SD_BUS_PROPERTY("Version", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BrokerSocket", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StartTime", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        /* Counters that move with every message: read them, no signal. */
        SD_BUS_PROPERTY("ConnectedClients", "u", property_get, 0, 0),
        SD_BUS_PROPERTY("MessagesRouted", "t", property_get, 0, 0),
        SD_BUS_VTABLE_END,
};

/* ---- the connection ---- */

static void front_lost(DbusFront *front, gboolean disconnected, const char *why)
{
        if (front->lost)
                return;
        front->lost = TRUE;
        if (front->hooks.lost)
                front->hooks.lost(front->hooks.user_data, disconnected, why);
}

static int on_name_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        DbusFront *front = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        g_autofree char *why = NULL;

        if (!error) {
                g_message("D-Bus: %s acquired on %s", DBUS_FRONT_SERVICE,
                          sd_bus_is_bus_client(front->bus) ? "the bus" : "a direct connection");
                if (front->hooks.name_acquired)
                        front->hooks.name_acquired(front->hooks.user_data);
                return 0;
        }
        why = g_strdup_printf("cannot own %s: %s", DBUS_FRONT_SERVICE, error->message);
        front_lost(front, FALSE, why);
        return 0;
}

static int on_disconnected(sd_bus_message *message, void *userdata, sd_bus_error *ret_error)
{
        front_lost(userdata, TRUE, "the D-Bus connection was closed");
        return 0;
}

static int on_name_lost(sd_bus_message *message, void *userdata, sd_bus_error *ret_error)
{
        const char *name = NULL;

        if (sd_bus_message_read(message, "s", &name) > 0 && g_strcmp0(name, DBUS_FRONT_SERVICE) == 0)
                front_lost(userdata, FALSE, "the bus took " DBUS_FRONT_SERVICE " away");
        return 0;
}

static int front_open_bus(DbusFrontBusType type, const char *address, sd_bus **ret, GError **error)
{
        __attribute__((cleanup(sd_bus_unrefp))) sd_bus *bus = NULL;
        const char *what = type == DBUS_FRONT_BUS_SYSTEM    ? "the system bus"
                           : type == DBUS_FRONT_BUS_SESSION ? "the session bus"
                                                            : address;
        int r;

        switch (type) {
        case DBUS_FRONT_BUS_SYSTEM:
                r = sd_bus_open_system_with_description(&bus, "daemoneye-agent");
                break;
        case DBUS_FRONT_BUS_SESSION:
                r = sd_bus_open_user_with_description(&bus, "daemoneye-agent");
                break;
        default:
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, address);
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, TRUE);
                if (r >= 0)
                        r = sd_bus_set_description(bus, "daemoneye-agent");
                if (r >= 0)
                        r = sd_bus_negotiate_fds(bus, TRUE);
                if (r >= 0)
                        r = sd_bus_start(bus);
                break;
        }
        if (r < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-r), "cannot connect to %s: %s",
                            what, g_strerror(-r));
                return r;
        }
        *ret = g_steal_pointer(&bus);
        return 0;
}

/** dbus_front_new: see dbus-front.h. */
DbusFront *dbus_front_new(DbusFrontBusType type, const char *address, Broker *broker, ProcessManager *pm,
                          const DbusFrontHooks *hooks, GError **error)
{
        g_autoptr(DbusFront) front = g_new0(DbusFront, 1);
        int r;

        front->broker = broker;
        front->pm = pm;
        front->hooks = *hooks;
        front->polkit = dbus_polkit_new();
        front->collectors =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)front_collector_free);
        front->state = g_strdup("starting");
        front->start_time_us = (guint64)g_get_real_time();

        if (front_open_bus(type, address, &front->bus, error) < 0)
                return NULL;
        r = sd_event_new(&front->event);
        if (r >= 0)
                r = sd_bus_attach_event(front->bus, front->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_add_object_vtable(front->bus, NULL, DBUS_FRONT_AGENT_PATH,
                                             DBUS_FRONT_AGENT_INTERFACE, agent_vtable, front);
        if (r >= 0)
                r = sd_bus_add_fallback_vtable(front->bus, NULL, DBUS_FRONT_COLLECTOR_PREFIX,
                                               DBUS_FRONT_COLLECTOR_INTERFACE, dbus_collector_vtable,
                                               dbus_collector_find, front);
        if (r >= 0)
                r = sd_bus_add_node_enumerator(front->bus, NULL, DBUS_FRONT_COLLECTOR_PREFIX,
                                               dbus_collector_enumerate, front);
        if (r >= 0)
                r = sd_bus_add_object_manager(front->bus, NULL, DBUS_FRONT_AGENT_PATH);
        if (r >= 0)
                r = sd_bus_match_signal(front->bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected,
                                        front);
        if (r >= 0)
                r = sd_bus_match_signal_async(front->bus, NULL, "org.freedesktop.DBus",
                                              "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameLost",
                                              on_name_lost, NULL, front);
        if (r >= 0)
                r = sd_bus_request_name_async(front->bus, NULL, DBUS_FRONT_SERVICE, 0, on_name_reply, front);
        if (r < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-r), "D-Bus: cannot set up %s: %s",
                            DBUS_FRONT_AGENT_PATH, g_strerror(-r));
                return NULL;
        }
        front->event_source = sd_event_source_glib_attach(front->event, NULL, G_PRIORITY_DEFAULT);

        front->state_func = process_manager_add_state_func(pm, on_collector_state, front, NULL);
        process_manager_set_heartbeat_func(pm, on_collector_heartbeat, front);
        dbus_collector_sync(front);
        front->health_timer = g_timeout_source_new(HEALTH_INTERVAL_MS);
        g_source_set_callback(front->health_timer, on_health_timer, front, NULL);
        g_source_attach(front->health_timer, NULL);
        return g_steal_pointer(&front);
}

/** dbus_front_free: see dbus-front.h. */
void dbus_front_free(DbusFront *front)
{
        if (!front)
                return;
        if (front->state_func) {
                process_manager_remove_state_func(front->pm, front->state_func);
                process_manager_set_heartbeat_func(front->pm, NULL, NULL);
        }
        if (front->health_timer) {
                g_source_destroy(front->health_timer);
                g_source_unref(front->health_timer);
        }
        if (front->event_source)
                g_source_remove(front->event_source);
        g_clear_pointer(&front->polkit, dbus_polkit_free);
        if (front->bus) {
                sd_bus_flush(front->bus);
                sd_bus_detach_event(front->bus);
                sd_bus_close_unref(front->bus);
        }
        sd_event_unref(front->event);
        g_clear_pointer(&front->collectors, g_hash_table_unref);
        g_free(front->state);
        g_free(front->health_status);
        g_free(front);
}

/** dbus_front_set_state: see dbus-front.h. */
void dbus_front_set_state(DbusFront *front, const char *state)
{
        if (g_strcmp0(front->state, state) == 0)
                return;
        g_free(front->state);
        front->state = g_strdup(state);
        sd_bus_emit_properties_changed(front->bus, DBUS_FRONT_AGENT_PATH, DBUS_FRONT_AGENT_INTERFACE,
                                       "State", NULL);
}

/** dbus_front_collectors_changed: see dbus-front.h. */
void dbus_front_collectors_changed(DbusFront *front)
{
        dbus_collector_sync(front);
}
