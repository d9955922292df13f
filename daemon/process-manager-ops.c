/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process manager's operations, as the D-Bus front calls them. Start,
 * stop and restart act on the process (collector-supervisor.c); pause,
 * resume, update-config, get-capabilities and health-check are one RPC each,
 * allowed only in the states where they make sense, and refused before
 * anything is sent otherwise.
 */
#include <json-glib/json-glib.h>

#include "process-manager-private.h"

static ManagedCollector *lookup(ProcessManager *pm, const char *id, GError **error)
{
        ManagedCollector *mc = g_hash_table_lookup(pm->by_id, id);

        if (!mc)
                g_set_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_NOT_FOUND,
                            "no collector '%s' (see the [collector <id>] groups of the configuration)", id);
        return mc;
}

static gboolean refuse_if_stopping(ProcessManager *pm, const char *id, GError **error)
{
        if (!pm->shutting_down)
                return FALSE;
        g_set_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_CANCELLED,
                    "collector %s: the agent is shutting down", id);
        return TRUE;
}

/** process_manager_start: see process-manager.h. */
gboolean process_manager_start(ProcessManager *pm, const char *id, const char *actor,
                               ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        ManagedCollector *mc = lookup(pm, id, error);

        if (!mc || refuse_if_stopping(pm, id, error))
                return FALSE;
        supervisor_start(mc, actor, callback, user_data);
        return TRUE;
}

/** process_manager_stop: see process-manager.h. */
gboolean process_manager_stop(ProcessManager *pm, const char *id, const char *actor,
                              ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        return process_manager_stop_with(pm, id, PROCESS_MANAGER_STOP_GRACEFUL, 0, NULL, actor, callback,
                                         user_data, error);
}

/** process_manager_stop_with: see process-manager.h. */
gboolean process_manager_stop_with(ProcessManager *pm, const char *id, ProcessManagerStopMode mode,
                                   guint timeout_ms, const char *reason, const char *actor,
                                   ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        ManagedCollector *mc = lookup(pm, id, error);

        if (!mc)
                return FALSE;
        supervisor_stop(mc, STOP_CAUSE_REQUESTED, mode, timeout_ms, reason, actor, callback, user_data);
        return TRUE;
}

/** process_manager_restart: see process-manager.h. */
gboolean process_manager_restart(ProcessManager *pm, const char *id, const char *actor,
                                 ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        ManagedCollector *mc = lookup(pm, id, error);

        if (!mc || refuse_if_stopping(pm, id, error))
                return FALSE;
        supervisor_stop(mc, STOP_CAUSE_RESTART, PROCESS_MANAGER_STOP_GRACEFUL, 0, NULL, actor, callback,
                        user_data);
        return TRUE;
}

/* An operation that is one RPC. */
typedef struct {
        char *id;
        DebRpcOperation operation;
        char *changes_json; /* UPDATE_CONFIG */
        guint generation; /* the process asked: a reply about an earlier one changes no state */
        ProcessManagerCallback callback;
        gpointer user_data;
} OpRequest;

static void op_request_free(OpRequest *op)
{
        g_free(op->id);
        g_free(op->changes_json);
        g_free(op);
}

/* Settings UpdateConfig applied, kept as text for the next Start's config_overrides. */
static void remember_applied(ManagedCollector *mc, const char *changes_json,
                             const Daemoneye__Eventbus__ConfigUpdateResult *result)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonObject *changes;

        if (!result || result->validated_only || !json_parser_load_from_data(parser, changes_json, -1, NULL))
                return;
        changes = json_node_get_object(json_parser_get_root(parser));
        for (gsize i = 0; i < result->n_applied; i++) {
                JsonNode *node = json_object_get_member(changes, result->applied[i]);
                char text[G_ASCII_DTOSTR_BUF_SIZE];
                const char *value = NULL;
                GType type;

                if (!node || !JSON_NODE_HOLDS_VALUE(node))
                        continue;
                type = json_node_get_value_type(node);
                if (type == G_TYPE_STRING) {
                        value = json_node_get_string(node);
                } else if (type == G_TYPE_BOOLEAN) {
                        value = json_node_get_boolean(node) ? "true" : "false";
                } else if (type == G_TYPE_INT64) {
                        g_snprintf(text, sizeof(text), "%" G_GINT64_FORMAT, json_node_get_int(node));
                        value = text;
                } else if (type == G_TYPE_DOUBLE) {
                        value = g_ascii_dtostr(text, sizeof(text), json_node_get_double(node));
                }
                if (value)
                        g_hash_table_replace(mc->runtime_settings, g_strdup(result->applied[i]),
                                             g_strdup(value));
        }
}

static void on_op_reply(ProcessManager *pm, ManagedCollector *mc, const DebRpcResponse *response,
                        const GError *error, gpointer data)
{
        OpRequest *op = data;

        if (mc && !error && op->generation == mc->generation) {
                if (op->operation == DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_PAUSE &&
                    mc->state == COLLECTOR_STATE_RUNNING)
                        pm_set_state(mc, COLLECTOR_STATE_PAUSED, "paused");
                else if (op->operation == DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_RESUME &&
                         mc->state == COLLECTOR_STATE_PAUSED)
                        pm_set_state(mc, COLLECTOR_STATE_RUNNING, "resumed");
                else if (op->operation == DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_UPDATE_CONFIG &&
                         response->payload_case == DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_CONFIG_UPDATE)
                        remember_applied(mc, op->changes_json, response->config_update);
        }
        if (op->callback)
                op->callback(pm, op->id, response, error, op->user_data);
        op_request_free(op);
}

static gboolean op_send(ProcessManager *pm, const char *id, DebRpcOperation operation,
                        const DebRpcRequest *payload, const char *changes_json, const char *actor,
                        ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        ManagedCollector *mc = lookup(pm, id, error);
        OpRequest *op;
        gboolean allowed;

        if (!mc || refuse_if_stopping(pm, id, error))
                return FALSE;
        switch (operation) {
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_PAUSE:
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_RESUME:
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_UPDATE_CONFIG:
                allowed = mc->state == COLLECTOR_STATE_RUNNING || mc->state == COLLECTOR_STATE_PAUSED;
                break;
        default:
                /* Health and capabilities: whenever its process can answer, unresponsive included. */
                allowed = mc->pid > 0 && mc->ready && !mc->exit_pending;
                break;
        }
        if (!allowed) {
                g_set_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_INVALID_OPERATION,
                            "collector %s: %s is not possible while it is %s", id,
                            deb_rpc_operation_to_string(operation), collector_state_to_string(mc->state));
                return FALSE;
        }
        op = g_new0(OpRequest, 1);
        op->id = g_strdup(id);
        op->operation = operation;
        op->changes_json = g_strdup(changes_json);
        op->generation = mc->generation;
        op->callback = callback;
        op->user_data = user_data;
        if (!pm_call(mc, operation, payload, 0, actor, on_op_reply, op, error)) {
                op_request_free(op);
                return FALSE;
        }
        return TRUE;
}

static gboolean lifecycle_op(ProcessManager *pm, const char *id, DebRpcOperation operation,
                             const char *actor, ProcessManagerCallback callback, gpointer user_data,
                             GError **error)
{
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;

        lifecycle.collector_id = (char *)id;
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        return op_send(pm, id, operation, &request, NULL, actor, callback, user_data, error);
}

/** process_manager_pause: see process-manager.h. */
gboolean process_manager_pause(ProcessManager *pm, const char *id, const char *actor,
                               ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        return lifecycle_op(pm, id, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_PAUSE, actor, callback,
                            user_data, error);
}

/** process_manager_resume: see process-manager.h. */
gboolean process_manager_resume(ProcessManager *pm, const char *id, const char *actor,
                                ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        return lifecycle_op(pm, id, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_RESUME, actor,
                            callback, user_data, error);
}

/** process_manager_update_config: see process-manager.h. */
gboolean process_manager_update_config(ProcessManager *pm, const char *id, const char *changes_json,
                                       gboolean validate_only, gboolean restart_required,
                                       gboolean rollback_on_failure, const char *actor,
                                       ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        Daemoneye__Eventbus__ConfigUpdatePayload update = DAEMONEYE__EVENTBUS__CONFIG_UPDATE_PAYLOAD__INIT;
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) local = NULL;

        if (!json_parser_load_from_data(parser, changes_json, -1, &local) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
                g_set_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_INVALID_ARGUMENT,
                            "collector %s: changes must be a JSON object%s%s", id, local ? ": " : "",
                            local ? local->message : "");
                return FALSE;
        }
        update.changes_json = (char *)changes_json;
        update.validate_only = validate_only;
        update.restart_required = restart_required;
        update.rollback_on_failure = rollback_on_failure;
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_CONFIG_UPDATE;
        request.config_update = &update;
        return op_send(pm, id, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_UPDATE_CONFIG, &request,
                       changes_json, actor, callback, user_data, error);
}

/** process_manager_get_capabilities: see process-manager.h. */
gboolean process_manager_get_capabilities(ProcessManager *pm, const char *id, const char *actor,
                                          ProcessManagerCallback callback, gpointer user_data,
                                          GError **error)
{
        return op_send(pm, id, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_GET_CAPABILITIES, NULL,
                       NULL, actor, callback, user_data, error);
}

/** process_manager_health_check: see process-manager.h. */
gboolean process_manager_health_check(ProcessManager *pm, const char *id, const char *actor,
                                      ProcessManagerCallback callback, gpointer user_data, GError **error)
{
        return op_send(pm, id, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_HEALTH_CHECK, NULL, NULL,
                       actor, callback, user_data, error);
}
