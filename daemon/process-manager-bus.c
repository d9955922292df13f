/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process manager's side of the EventBus:
 *
 *  - the agent's own client: one end of a socketpair adopted into the broker
 *    (client id "daemoneye-agent"), the other end a DebClient on the same
 *    main loop, with the RPC client on it. No thread, no second socket path;
 *    the agent is a client of its broker like any other, so ACLs, routing and
 *    metrics see it as one;
 *  - collector connections: the socket the backend dialed is adopted into the
 *    broker as that collector's client connection, and its close reported;
 *  - heartbeats in (control.health.heartbeat.#), state changes out
 *    (control.agent.collector.<id>.state);
 *  - every RPC out, written to the audit log and logged with COLLECTOR_ID=,
 *    RPC_OPERATION=, CORRELATION_ID= and DURATION_US=.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "process-manager-private.h"

#define HEARTBEAT_PATTERN "control.health.heartbeat.#"
#define HEARTBEAT_PREFIX "control.health.heartbeat."
/* Bound on the agent's own handshake and first subscription at startup. */
#define CLIENT_SYNC_MS 5000

struct _PmAdoption {
        ProcessManager *pm; /* NULL once detached */
        char *collector_id; /* NULL for the agent's own connection */
};

struct _PmCall {
        ProcessManager *pm;
        ManagedCollector *mc;
        guint call_id;
        char *actor;
        PmCallDone done;
        gpointer data;
};

static void adoption_free(gpointer data)
{
        PmAdoption *adoption = data;

        g_free(adoption->collector_id);
        g_free(adoption);
}

/** pm_adoption_detach: see process-manager-private.h. */
void pm_adoption_detach(PmAdoption *adoption)
{
        adoption->pm = NULL;
}

static void on_adopted_closed(Broker *broker, gpointer user_data)
{
        PmAdoption *adoption = user_data;
        ProcessManager *pm = adoption->pm;
        ManagedCollector *mc;

        if (!pm)
                return;
        adoption->pm = NULL;
        if (!adoption->collector_id) {
                pm->client_adoption = NULL;
                if (!pm->shutting_down)
                        g_warning("the agent's own broker connection closed: collectors cannot be reached");
                return;
        }
        mc = g_hash_table_lookup(pm->by_id, adoption->collector_id);
        if (mc && mc->adoption == adoption)
                supervisor_on_disconnected(mc);
}

/*
 * The one place that knows the broker's adoption API. The broker owns
 * @adoption from here on (freed after the closed callback, or by
 * broker_free()); on failure it is freed here and @fd is closed.
 */
static gboolean adopt(ProcessManager *pm, int fd, const char *client_id, PmAdoption *adoption,
                      GError **error)
{
        if (broker_adopt_fd(pm->broker, fd, client_id, on_adopted_closed, adoption, adoption_free, error) ==
            0) {
                adoption_free(adoption);
                return FALSE;
        }
        return TRUE;
}

/** pm_bus_adopt: see process-manager-private.h. */
gboolean pm_bus_adopt(ManagedCollector *mc, int fd, GError **error)
{
        PmAdoption *adoption = g_new0(PmAdoption, 1);

        adoption->pm = mc->pm;
        adoption->collector_id = g_strdup(mc->id);
        if (!adopt(mc->pm, fd, mc->id, adoption, error)) {
                g_prefix_error(error, "collector %s: ", mc->id);
                return FALSE;
        }
        mc->adoption = adoption;
        return TRUE;
}

static void on_heartbeat(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        ProcessManager *pm = user_data;
        const char *id = envelope->topic + strlen(HEARTBEAT_PREFIX);
        Daemoneye__Eventbus__Heartbeat *heartbeat;
        ManagedCollector *mc;

        if (!g_str_has_prefix(envelope->topic, HEARTBEAT_PREFIX) || strchr(id, '.'))
                return;
        mc = g_hash_table_lookup(pm->by_id, id);
        if (!mc)
                return;
        heartbeat =
                daemoneye__eventbus__heartbeat__unpack(NULL, envelope->payload.len, envelope->payload.data);
        if (!heartbeat) {
                pm_log(G_LOG_LEVEL_WARNING, id, NULL, NULL, -1,
                       "collector %s: a heartbeat that does not decode", id);
                return;
        }
        /* The topic names the collector; the payload must agree. */
        if (heartbeat->collector_id[0] == '\0' || g_str_equal(heartbeat->collector_id, id))
                supervisor_on_heartbeat(mc, heartbeat);
        daemoneye__eventbus__heartbeat__free_unpacked(heartbeat, NULL);
}

static void on_client_connected(DebClient *client, const GError *error, gpointer user_data)
{
        ProcessManager *pm = user_data;

        if (error) {
                g_warning("the agent's broker connection: %s; collectors cannot be started", error->message);
                return;
        }
        pm_on_connected(pm);
}

/** pm_bus_is_ready: see process-manager-private.h. */
gboolean pm_bus_is_ready(ProcessManager *pm)
{
        return pm->client && pm->rpc && deb_client_is_connected(pm->client);
}

static void on_client_error(DebClient *client, const GError *error, gboolean fatal, gpointer user_data)
{
        ProcessManager *pm = user_data;

        if (pm->shutting_down && fatal)
                return;
        g_warning("the agent's broker client: %s%s", error->message, fatal ? " (connection closed)" : "");
}

/** pm_bus_connect: see process-manager-private.h. */
gboolean pm_bus_connect(ProcessManager *pm, gboolean wait, GError **error)
{
        DebRpcClientOptions options = deb_rpc_client_options_default();
        PmAdoption *adoption;
        int fds[2];
        guint subscription;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "the agent's broker connection: %s", g_strerror(errsv));
                return FALSE;
        }
        adoption = g_new0(PmAdoption, 1);
        adoption->pm = pm;
        if (!adopt(pm, fds[0], PROCESS_MANAGER_CLIENT_ID, adoption, error)) {
                close(fds[1]);
                g_prefix_error(error, "the agent's broker connection: ");
                return FALSE;
        }
        pm->client_adoption = adoption;

        pm->client = deb_client_new(PROCESS_MANAGER_CLIENT_ID);
        deb_client_set_error_func(pm->client, on_client_error, pm);
        subscription = deb_client_subscribe(pm->client, HEARTBEAT_PATTERN, on_heartbeat, pm, NULL, error);
        /*
         * The Subscribe goes out right behind the Hello, in the same write, and
         * the broker handles a connection's frames in order: once welcomed, the
         * heartbeat subscription is live and collectors may start.
         */
        if (!subscription) {
                close(fds[1]);
                goto fail;
        }
        if (!deb_client_connect_fd(pm->client, fds[1], wait ? NULL : on_client_connected, pm, error))
                goto fail;

        /*
         * The process manager is its own circuit breaker: a collector that stops
         * answering is marked UNRESPONSIVE and restarted, and calls to one not
         * RUNNING are refused before anything is sent. A per-target breaker on
         * top would keep refusing the *new* process after a restart. Retries
         * would only delay that verdict: on one host a request is not lost, a
         * collector that does not answer is stuck.
         */
        options.max_pending = pm->rpc_config.max_pending_requests;
        options.default_timeout_ms = pm->rpc_config.default_timeout_seconds * 1000;
        options.retry.max_attempts = 1;
        options.breaker.failure_threshold = G_MAXUINT;
        pm->rpc = deb_rpc_client_new(pm->client, &options, error);
        if (!pm->rpc)
                goto fail;
        if (wait && !deb_client_sync(pm->client, CLIENT_SYNC_MS, error)) {
                g_prefix_error(error, "the agent's broker connection: ");
                goto fail;
        }
        return TRUE;

fail:
        /* Nothing half-connected stays: a later reload tries again (it connects when pm->client is NULL). */
        pm_bus_disconnect(pm);
        return FALSE;
}

/** pm_bus_disconnect: cancels what is pending and closes the agent's client. */
void pm_bus_disconnect(ProcessManager *pm)
{
        g_clear_pointer(&pm->rpc, deb_rpc_client_free);
        if (pm->client_adoption) {
                pm_adoption_detach(pm->client_adoption);
                pm->client_adoption = NULL;
        }
        if (pm->client) {
                deb_client_disconnect(pm->client, 0);
                g_clear_pointer(&pm->client, deb_client_unref);
        }
}

/** pm_bus_publish_state: publishes the change to mc's current state on control.agent.collector.<id>.state.
 */
void pm_bus_publish_state(ManagedCollector *mc, CollectorState old_state, const char *reason)
{
        ProcessManager *pm = mc->pm;
        g_autoptr(JsonBuilder) builder = json_builder_new();
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *topic = NULL;
        g_autofree char *json = NULL;
        gsize len = 0;
        DebPublishOptions options = {.message_type =
                                             DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_CONTROL};

        if (!pm->client)
                return;
        json_builder_begin_object(builder);
        json_builder_set_member_name(builder, "collector_id");
        json_builder_add_string_value(builder, mc->id);
        json_builder_set_member_name(builder, "type");
        json_builder_add_string_value(builder, mc->config->type ? mc->config->type : "");
        json_builder_set_member_name(builder, "state");
        json_builder_add_string_value(builder, collector_state_to_string(mc->state));
        json_builder_set_member_name(builder, "previous_state");
        json_builder_add_string_value(builder, collector_state_to_string(old_state));
        json_builder_set_member_name(builder, "pid");
        json_builder_add_int_value(builder, mc->pid);
        json_builder_set_member_name(builder, "restart_count");
        json_builder_add_int_value(builder, mc->restart_count);
        json_builder_set_member_name(builder, "reason");
        json_builder_add_string_value(builder, reason ? reason : "");
        json_builder_set_member_name(builder, "timestamp_us");
        json_builder_add_int_value(builder, g_get_real_time());
        json_builder_end_object(builder);
        root = json_builder_get_root(builder);
        json_generator_set_root(generator, root);
        json = json_generator_to_data(generator, &len);

        topic = g_strdup_printf(PROCESS_MANAGER_STATE_TOPIC_PREFIX ".%s.state", mc->id);
        if (!deb_client_publish(pm->client, topic, json, len, &options, &error))
                pm_log(G_LOG_LEVEL_WARNING, mc->id, NULL, NULL, -1,
                       "collector %s: state change not published: %s", mc->id, error->message);
}

static void on_call_done(DebRpcClient *rpc, const DebRpcResponse *response, const GError *error,
                         const DebRpcCallInfo *info, gpointer user_data)
{
        PmCall *call = user_data;
        ProcessManager *pm = call->pm;
        ManagedCollector *mc = call->mc;
        const char *operation = deb_rpc_operation_to_string(info->operation);
        AuditRecord record;

        if (mc) {
                mc->calls = g_list_remove(mc->calls, call);
                if (mc->start_call == call)
                        mc->start_call = NULL;
                if (mc->stop_call == call)
                        mc->stop_call = NULL;
                if (mc->health_call == call)
                        mc->health_call = NULL;
        }
        audit_record_init_from_rpc(&record, call->actor, info, error);
        if (pm->audit)
                audit_log_write(pm->audit, &record);
        if (error)
                pm_log(g_error_matches(error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED) ? G_LOG_LEVEL_INFO
                                                                                      : G_LOG_LEVEL_WARNING,
                       info->target, operation, info->correlation_id, (gint64)info->duration_us,
                       "collector %s: %s: %s (%" G_GUINT64_FORMAT " us)", info->target, operation,
                       error->message, info->duration_us);
        else
                /* Read-only calls that tools poll are in the audit record already; the rest is worth a line.
                 */
                pm_log(info->operation == DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_HEALTH_CHECK ||
                                       info->operation ==
                                               DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_GET_CAPABILITIES
                               ? G_LOG_LEVEL_DEBUG
                               : G_LOG_LEVEL_INFO,
                       info->target, operation, info->correlation_id, (gint64)info->duration_us,
                       "collector %s: %s: %s (%" G_GUINT64_FORMAT " us)", info->target, operation,
                       deb_rpc_status_to_string(info->status), info->duration_us);

        call->done(pm, mc, response, error, call->data);
        g_free(call->actor);
        g_free(call);
}

/** pm_call: see process-manager-private.h. */
PmCall *pm_call(ManagedCollector *mc, DebRpcOperation operation, const DebRpcRequest *payload,
                guint timeout_ms, const char *actor, PmCallDone done, gpointer data, GError **error)
{
        ProcessManager *pm = mc->pm;
        PmCall *call;

        if (!pm->rpc) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_COMMUNICATION,
                            "collector %s: %s: the agent has no broker connection", mc->id,
                            deb_rpc_operation_to_string(operation));
                return NULL;
        }
        call = g_new0(PmCall, 1);
        call->pm = pm;
        call->mc = mc;
        call->actor = g_strdup(actor ? actor : PROCESS_MANAGER_CLIENT_ID);
        call->done = done;
        call->data = data;
        if (timeout_ms == 0)
                timeout_ms = pm->rpc_config.default_timeout_seconds * 1000;
        call->call_id = deb_rpc_client_call(pm->rpc, mc->id, operation, payload, timeout_ms, on_call_done,
                                            call, error);
        if (call->call_id == 0) {
                /* Nothing went out, but the attempt is part of the audit trail. */
                AuditRecord record = {
                        .time_us = g_get_real_time(),
                        .actor = call->actor,
                        .action = deb_rpc_operation_to_string(operation),
                        .target = mc->id,
                        .status =
                                deb_rpc_status_to_string(DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_ERROR),
                        .error = error && *error ? (*error)->message : NULL,
                };

                if (pm->audit)
                        audit_log_write(pm->audit, &record);
                g_free(call->actor);
                g_free(call);
                return NULL;
        }
        mc->calls = g_list_prepend(mc->calls, call);
        return call;
}

/** pm_call_cancel: see process-manager-private.h. */
void pm_call_cancel(ProcessManager *pm, PmCall *call)
{
        if (!deb_rpc_client_cancel(pm->rpc, call->call_id) && call->mc) {
                /* Not pending any more in the RPC client: it cannot happen, but never loop on it. */
                call->mc->calls = g_list_remove(call->mc->calls, call);
                call->mc = NULL;
        }
}
