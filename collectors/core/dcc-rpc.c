/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The service side of RPC: every envelope on the collector's request topics
 * is decoded and checked here (type, correlation, deadline, topic, target,
 * payload, capacity) before any operation runs, and every reply leaves from
 * here, once, on response.<correlation_id>.
 */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "deb-topic.h"
#include "dcc-private.h"

#define RESPONSE_TOPIC_PREFIX "response."

DccRequest *dcc_request_ref(DccRequest *request)
{
        g_atomic_int_inc(&request->ref_count);
        return request;
}

void dcc_request_unref(DccRequest *request)
{
        if (!request || !g_atomic_int_dec_and_test(&request->ref_count))
                return;
        dcc_source_clear(&request->deadline_source);
        if (request->message)
                protobuf_c_message_free_unpacked(&request->message->base, NULL);
        g_free(request->correlation_id);
        g_free(request);
}

int dcc_error_to_category(const GError *error)
{
        if (error && error->domain == DCC_ERROR) {
                switch ((DccError)error->code) {
                case DCC_ERROR_INVALID_ARGUMENT:
                case DCC_ERROR_CONFIGURATION:
                        return DCC_CATEGORY(CONFIGURATION);
                case DCC_ERROR_RESOURCE:
                        return DCC_CATEGORY(RESOURCE);
                case DCC_ERROR_PERMISSION:
                        return DCC_CATEGORY(PERMISSION);
                case DCC_ERROR_CONNECTION:
                        return DCC_CATEGORY(COMMUNICATION);
                case DCC_ERROR_FAILED:
                case DCC_ERROR_NOT_RUNNING:
                        break;
                }
        }
        if (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
                return DCC_CATEGORY(PERMISSION);
        return DCC_CATEGORY(INTERNAL);
}

char *dcc_json_string_pairs(const char *first_key, ...)
{
        g_autoptr(JsonBuilder) builder = json_builder_new();
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        va_list args;

        json_builder_begin_object(builder);
        va_start(args, first_key);
        for (const char *key = first_key; key; key = va_arg(args, const char *)) {
                json_builder_set_member_name(builder, key);
                json_builder_add_string_value(builder, va_arg(args, const char *));
        }
        va_end(args);
        json_builder_end_object(builder);
        root = json_builder_get_root(builder);
        json_generator_set_root(generator, root);
        return json_generator_to_data(generator, NULL);
}

static void response_set_payload(Daemoneye__Eventbus__RpcResponse *response, const ProtobufCMessage *payload)
{
        if (!payload)
                return;
        if (payload->descriptor == &daemoneye__eventbus__health_result__descriptor) {
                response->payload_case = DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_HEALTH;
                response->health = (Daemoneye__Eventbus__HealthResult *)payload;
        } else if (payload->descriptor == &daemoneye__eventbus__config_update_result__descriptor) {
                response->payload_case = DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_CONFIG_UPDATE;
                response->config_update = (Daemoneye__Eventbus__ConfigUpdateResult *)payload;
        } else if (payload->descriptor == &daemoneye__eventbus__capabilities__descriptor) {
                response->payload_case = DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_CAPABILITIES;
                response->capabilities = (Daemoneye__Eventbus__Capabilities *)payload;
        } else if (payload->descriptor == &daemoneye__eventbus__lifecycle_result__descriptor) {
                response->payload_case = DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_LIFECYCLE;
                response->lifecycle = (Daemoneye__Eventbus__LifecycleResult *)payload;
        } else {
                g_return_if_reached();
        }
}

/* Sends one RpcResponse for @correlation_id; used for requests in the table and for ones refused at the door. */
static void rpc_send_response(DccCollector *collector, const char *correlation_id, int operation,
                              gint64 received_us, int status, const Daemoneye__Eventbus__RpcErrorDetails *error,
                              const ProtobufCMessage *payload)
{
        Daemoneye__Eventbus__RpcResponse response = DAEMONEYE__EVENTBUS__RPC_RESPONSE__INIT;
        g_autofree char *topic = g_strconcat(RESPONSE_TOPIC_PREFIX, correlation_id, NULL);
        g_autofree guint8 *packed = NULL;
        g_autoptr(GError) local = NULL;
        DebPublishOptions options = {
                .message_type = DCC_MT(RPC_RESPONSE),
                .payload_type = DCC_PAYLOAD_TYPE_RESPONSE,
                .correlation_id = correlation_id,
                .workflow_stage = dcc_rpc_operation_to_string(operation),
        };
        gsize len;

        response.correlation_id = (char *)correlation_id;
        response.status = status;
        response.error = (Daemoneye__Eventbus__RpcErrorDetails *)error;
        response.execution_time_us = (guint64)MAX(0, g_get_monotonic_time() - received_us);
        response_set_payload(&response, payload);
        len = protobuf_c_message_get_packed_size(&response.base);
        packed = g_malloc(MAX(len, 1));
        protobuf_c_message_pack(&response.base, packed);

        if (!collector->client ||
            !deb_client_publish(collector->client, topic, packed, len, &options, &local)) {
                collector->error_count++;
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "reply to %s (%s) not sent: %s",
                                  correlation_id, dcc_rpc_operation_to_string(operation),
                                  local ? local->message : "not connected");
        }
}

void dcc_request_reply(DccRequest *request, int status, const Daemoneye__Eventbus__RpcErrorDetails *error,
                       const ProtobufCMessage *payload)
{
        DccCollector *collector;

        if (!request || request->answered || !request->collector)
                return;
        collector = request->collector;
        request->answered = TRUE;
        dcc_source_clear(&request->deadline_source);
        if (status != DCC_STATUS(SUCCESS))
                collector->error_count++;
        dcc_collector_log(collector, request, G_LOG_LEVEL_DEBUG, "%s: answered %s after %" G_GINT64_FORMAT " us",
                          dcc_rpc_operation_to_string(request->operation),
                          status == DCC_STATUS(SUCCESS)   ? "success"
                          : status == DCC_STATUS(TIMEOUT) ? "timeout"
                                                          : "error",
                          g_get_monotonic_time() - request->received_us);
        rpc_send_response(collector, request->correlation_id, request->operation, request->received_us, status,
                          error, payload);
        /* Last: the table may hold the last reference. */
        g_hash_table_remove(collector->requests, request->correlation_id);
}

static void error_details_init(Daemoneye__Eventbus__RpcErrorDetails *details, int kind, int category,
                               const char *code, const char *context_json, const char *message)
{
        daemoneye__eventbus__rpc_error_details__init(details);
        details->kind = kind;
        details->category = category;
        details->code = (char *)code;
        details->message = (char *)message;
        details->context = (char *)(context_json ? context_json : "{}");
}

void dcc_request_fail(DccRequest *request, int status, int kind, int category, const char *code,
                      const char *context_json, const ProtobufCMessage *payload, const char *format, ...)
{
        Daemoneye__Eventbus__RpcErrorDetails details;
        g_autofree char *message = NULL;
        g_autofree char *prefix = NULL;
        va_list args;

        if (!request || request->answered || !request->collector)
                return;
        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        /* The reply names the collector for its reader; the log line does already. */
        prefix = g_strconcat("collector ", request->collector->id, ": ", NULL);
        dcc_collector_log(request->collector, request, G_LOG_LEVEL_INFO, "%s",
                          g_str_has_prefix(message, prefix) ? message + strlen(prefix) : message);
        error_details_init(&details, kind, category, code, context_json, message);
        dcc_request_reply(request, status, &details, payload);
}

void dcc_request_fail_error(DccRequest *request, const char *code, const ProtobufCMessage *payload,
                            const GError *error)
{
        if (!request || !request->collector)
                return;
        dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(EXECUTION_ERROR), dcc_error_to_category(error),
                         code, NULL, payload, "collector %s: %s: %s", request->collector->id,
                         dcc_rpc_operation_to_string(request->operation), error->message);
}

/* Refusal before a DccRequest exists: the caller still gets a reply on its correlation id. */
G_GNUC_PRINTF(8, 9)
static void rpc_refuse(DccCollector *collector, const char *correlation_id, int operation, int status, int kind,
                       int category, const char *code, const char *format, ...)
{
        Daemoneye__Eventbus__RpcErrorDetails details;
        g_autofree char *message = NULL;
        g_autofree char *context = NULL;
        va_list args;

        va_start(args, format);
        message = g_strdup_vprintf(format, args);
        va_end(args);
        collector->error_count++;
        dcc_collector_log(collector, NULL, G_LOG_LEVEL_INFO, "request %s refused: %s", correlation_id, message);
        context = dcc_json_string_pairs("collector", collector->id, "operation",
                                        dcc_rpc_operation_to_string(operation), NULL);
        error_details_init(&details, kind, category, code, context, message);
        rpc_send_response(collector, correlation_id, operation, g_get_monotonic_time(), status, &details, NULL);
}

static gboolean request_deadline_cb(gpointer user_data)
{
        DccRequest *request = user_data;
        DccCollector *collector = request->collector;
        g_autofree char *timeout = g_strdup_printf("%u", request->timeout_ms);
        g_autofree char *context = dcc_json_string_pairs("timeout_ms", timeout, NULL);

        g_clear_pointer(&request->deadline_source, g_source_unref);
        dcc_request_ref(request);
        request->expired = TRUE;
        if (request->on_expire)
                request->on_expire(collector, request);
        dcc_request_fail(request, DCC_STATUS(TIMEOUT), DCC_KIND(TIMEOUT), DCC_CATEGORY(TIMEOUT), "rpc.timeout",
                         context, NULL, "collector %s: %s did not finish within its deadline (%u ms)",
                         collector->id, dcc_rpc_operation_to_string(request->operation), request->timeout_ms);
        dcc_request_unref(request);
        return G_SOURCE_REMOVE;
}

/* The topic each operation must come on, so that an ACL on one of them cannot be side-stepped. */
static const char *rpc_topic_for_operation(DccCollector *collector, int operation)
{
        switch (operation) {
        case DCC_OP(UPDATE_CONFIG):
                return collector->topic_config;
        case DCC_OP(GRACEFUL_SHUTDOWN):
        case DCC_OP(FORCE_SHUTDOWN):
                return collector->topic_shutdown;
        default:
                return collector->topic_control;
        }
}

/* Returns: NULL when the payload fits @message->operation, else why not. */
static const char *rpc_payload_problem(const DccRpcRequestMessage *message)
{
        switch (message->operation) {
        case DCC_OP(START):
        case DCC_OP(STOP):
        case DCC_OP(RESTART):
        case DCC_OP(PAUSE):
        case DCC_OP(RESUME):
                if (message->payload_case != DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE)
                        return "expects a LifecyclePayload";
                return NULL;
        case DCC_OP(UPDATE_CONFIG):
                if (message->payload_case != DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_CONFIG_UPDATE)
                        return "expects a ConfigUpdatePayload";
                return NULL;
        case DCC_OP(GRACEFUL_SHUTDOWN):
                if (message->payload_case != DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_SHUTDOWN)
                        return "expects a ShutdownPayload";
                if (message->shutdown->type != DAEMONEYE__EVENTBUS__SHUTDOWN_TYPE__SHUTDOWN_TYPE_UNSPECIFIED &&
                    message->shutdown->type != DAEMONEYE__EVENTBUS__SHUTDOWN_TYPE__SHUTDOWN_TYPE_GRACEFUL)
                        return "takes shutdown type GRACEFUL (or unspecified)";
                return NULL;
        case DCC_OP(FORCE_SHUTDOWN):
                if (message->payload_case != DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_SHUTDOWN)
                        return "expects a ShutdownPayload";
                if (message->shutdown->type != DAEMONEYE__EVENTBUS__SHUTDOWN_TYPE__SHUTDOWN_TYPE_UNSPECIFIED &&
                    message->shutdown->type != DAEMONEYE__EVENTBUS__SHUTDOWN_TYPE__SHUTDOWN_TYPE_EMERGENCY)
                        return "takes shutdown type EMERGENCY (or unspecified)";
                return NULL;
        case DCC_OP(HEALTH_CHECK):
        case DCC_OP(GET_CAPABILITIES):
                if (message->payload_case != DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD__NOT_SET)
                        return "takes no payload";
                return NULL;
        default:
                return "is not an operation";
        }
}

static gboolean operation_is_shutdown(int operation)
{
        return operation == DCC_OP(GRACEFUL_SHUTDOWN) || operation == DCC_OP(FORCE_SHUTDOWN);
}

static gboolean operation_is_read_only(int operation)
{
        return operation == DCC_OP(HEALTH_CHECK) || operation == DCC_OP(GET_CAPABILITIES);
}

/* Effective timeout: the caller's deadline, clamped to the advertised maximum. */
static guint rpc_timeout_ms(DccCollector *collector, guint64 deadline_wall_us, gint64 now_wall_us)
{
        guint64 remaining_ms;

        if (deadline_wall_us == 0)
                return collector->timeout_default_ms;
        remaining_ms = (deadline_wall_us - (guint64)now_wall_us + 999) / 1000;
        return (guint)MIN(remaining_ms, (guint64)collector->timeout_max_ms);
}

static void rpc_dispatch(DccCollector *collector, DccRequest *request)
{
        switch (request->operation) {
        case DCC_OP(START):
        case DCC_OP(STOP):
        case DCC_OP(RESTART):
        case DCC_OP(PAUSE):
        case DCC_OP(RESUME):
                dcc_lifecycle_handle(collector, request);
                break;
        case DCC_OP(UPDATE_CONFIG):
                dcc_config_update_handle(collector, request);
                break;
        case DCC_OP(HEALTH_CHECK):
                dcc_health_handle_check(collector, request);
                break;
        case DCC_OP(GET_CAPABILITIES):
                dcc_health_handle_capabilities(collector, request);
                break;
        case DCC_OP(GRACEFUL_SHUTDOWN):
        case DCC_OP(FORCE_SHUTDOWN):
                dcc_shutdown_handle(collector, request);
                break;
        default:
                g_assert_not_reached();
        }
}

void dcc_rpc_handle_envelope(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        DccCollector *collector = user_data;
        const char *envelope_id = envelope->correlation ? envelope->correlation->correlation_id : "";
        DccRpcRequestMessage *message;
        DccRequest *request;
        const char *problem;
        gint64 now_wall = g_get_real_time();
        int operation;
        guint in_flight;

        if (dcc_collector_is_finished(collector))
                return;
        if (envelope->message_type != DCC_MT(RPC_REQUEST) ||
            g_strcmp0(envelope->payload_type, DCC_PAYLOAD_TYPE_REQUEST) != 0) {
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_DEBUG,
                                  "ignored a %s message with payload type '%s' on %s",
                                  deb_message_type_to_string(envelope->message_type), envelope->payload_type,
                                  envelope->topic);
                return;
        }
        /* A reply goes to response.<id>: an id that is not one topic level cannot be answered at all. */
        if (!dcc_topic_level_is_valid(envelope_id)) {
                collector->error_count++;
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING,
                                  "dropped a request on %s from '%s': its correlation id is not 1..%d bytes of "
                                  "[A-Za-z0-9_-], so it cannot be answered",
                                  envelope->topic, envelope->sender, DEB_TOPIC_MAX_LEVEL_LEN);
                return;
        }
        /* protobuf-c checks every length inside the payload against the payload's own size. */
        message = (DccRpcRequestMessage *)protobuf_c_message_unpack(&daemoneye__eventbus__rpc_request__descriptor,
                                                                     NULL, envelope->payload.len,
                                                                     envelope->payload.data);
        if (!message) {
                rpc_refuse(collector, envelope_id, DCC_OP(UNSPECIFIED), DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                           DCC_CATEGORY(COMMUNICATION), "rpc.malformed", "collector %s: request on %s: %zu payload bytes do not decode as an RpcRequest",
                           collector->id, envelope->topic, envelope->payload.len);
                return;
        }
        operation = message->operation;
        if (strcmp(message->correlation_id, envelope_id) != 0) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                           DCC_CATEGORY(COMMUNICATION), "rpc.correlation_mismatch",
                           "collector %s: %s: request correlation id '%s' differs from its envelope's '%s'",
                           collector->id, dcc_rpc_operation_to_string(operation), message->correlation_id,
                           envelope_id);
                goto out;
        }
        if (g_hash_table_contains(collector->requests, envelope_id)) {
                /* A second reply on the same id would be taken for the first one's. */
                collector->error_count++;
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING,
                                  "dropped request %s (%s): a request with that correlation id is in progress",
                                  envelope_id, dcc_rpc_operation_to_string(operation));
                goto out;
        }
        if (message->deadline_us != 0 && message->deadline_us <= (guint64)now_wall) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(TIMEOUT), DCC_KIND(TIMEOUT),
                           DCC_CATEGORY(TIMEOUT), "rpc.deadline_expired",
                           "collector %s: %s arrived %" G_GUINT64_FORMAT " us after its deadline; not run",
                           collector->id, dcc_rpc_operation_to_string(operation),
                           (guint64)now_wall - message->deadline_us);
                goto out;
        }
        if (operation < DCC_OP(START) || operation > DCC_OP(RESUME)) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                           DCC_CATEGORY(INTERNAL), "rpc.unknown_operation",
                           "collector %s: operation %d is not one this collector knows", collector->id,
                           operation);
                goto out;
        }
        if (strcmp(envelope->topic, rpc_topic_for_operation(collector, operation)) != 0) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                           DCC_CATEGORY(PERMISSION), "rpc.wrong_topic", "collector %s: %s must be sent to %s, not %s", collector->id,
                           dcc_rpc_operation_to_string(operation), rpc_topic_for_operation(collector, operation),
                           envelope->topic);
                goto out;
        }
        if (message->target[0] != '\0' && strcmp(message->target, collector->id) != 0) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(ERROR), DCC_KIND(NOT_FOUND),
                           DCC_CATEGORY(CONFIGURATION), "rpc.not_found", "collector %s: %s targets '%s', which is not this collector",
                           collector->id, dcc_rpc_operation_to_string(operation), message->target);
                goto out;
        }
        problem = rpc_payload_problem(message);
        if (problem) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                           DCC_CATEGORY(CONFIGURATION), "rpc.invalid_payload", "collector %s: %s %s", collector->id,
                           dcc_rpc_operation_to_string(operation), problem);
                goto out;
        }
        if (dcc_shutdown_in_progress(collector) && operation != DCC_OP(FORCE_SHUTDOWN) &&
            !operation_is_read_only(operation)) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(ERROR), DCC_KIND(INVALID_OPERATION),
                           DCC_CATEGORY(CONFIGURATION), "state.shutting_down", "collector %s: %s refused: the collector is shutting down",
                           collector->id, dcc_rpc_operation_to_string(operation));
                goto out;
        }
        /* Shutdowns are never refused for capacity: a swamped collector must still be stoppable. */
        in_flight = g_hash_table_size(collector->requests);
        if (!operation_is_shutdown(operation) && in_flight >= collector->max_concurrent) {
                rpc_refuse(collector, envelope_id, operation, DCC_STATUS(ERROR), DCC_KIND(EXECUTION_ERROR),
                           DCC_CATEGORY(RESOURCE), "rpc.busy",
                           "collector %s: busy: %u requests in progress, max_concurrent_requests is %u; %s not run",
                           collector->id, in_flight, collector->max_concurrent,
                           dcc_rpc_operation_to_string(operation));
                goto out;
        }

        request = g_new0(DccRequest, 1);
        request->ref_count = 1;
        request->collector = collector;
        request->correlation_id = g_strdup(envelope_id);
        request->message = g_steal_pointer(&message);
        request->operation = operation;
        request->received_us = g_get_monotonic_time();
        request->timeout_ms = MAX(1u, rpc_timeout_ms(collector, request->message->deadline_us, now_wall));
        request->deadline_source = g_timeout_source_new(request->timeout_ms);
        g_source_set_callback(request->deadline_source, request_deadline_cb, request, NULL);
        g_source_attach(request->deadline_source, collector->context);
        g_hash_table_insert(collector->requests, request->correlation_id, request);
        collector->requests_total++;
        dcc_collector_log(collector, request, G_LOG_LEVEL_DEBUG, "%s from %s (%s), timeout %u ms",
                          dcc_rpc_operation_to_string(operation), request->message->client_id, envelope->sender,
                          request->timeout_ms);

        dcc_request_ref(request);
        rpc_dispatch(collector, request);
        dcc_request_unref(request);
out:
        if (message)
                protobuf_c_message_free_unpacked(&message->base, NULL);
}

void dcc_rpc_fail_pending(DccCollector *collector, const char *code, const char *why)
{
        g_autoptr(GPtrArray) pending = g_ptr_array_new_with_free_func((GDestroyNotify)dcc_request_unref);
        GHashTableIter iter;
        gpointer value;

        /* Replies remove requests from the table: iterate over a copy. */
        g_hash_table_iter_init(&iter, collector->requests);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                g_ptr_array_add(pending, dcc_request_ref(value));
        for (guint i = 0; i < pending->len; i++)
                dcc_request_fail(pending->pdata[i], DCC_STATUS(ERROR), DCC_KIND(EXECUTION_ERROR),
                                 DCC_CATEGORY(INTERNAL), code, NULL, NULL, "collector %s: %s: %s", collector->id,
                                 dcc_rpc_operation_to_string(((DccRequest *)pending->pdata[i])->operation), why);
}
