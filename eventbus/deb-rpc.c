/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RPC conventions shared by the client, the services and the broker: topics,
 * names, the error domain and error replies. No I/O here.
 */
#include <stdarg.h>
#include <string.h>

#include "deb-rpc.h"
#include "deb-topic.h"

#define OPERATION(name) DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_##name
#define STATUS(name) DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_##name
#define KIND(name) DAEMONEYE__EVENTBUS__ERROR_KIND__ERROR_KIND_##name
#define CATEGORY(name) DAEMONEYE__EVENTBUS__ERROR_CATEGORY__ERROR_CATEGORY_##name
#define PAYLOAD(name) DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_##name

G_DEFINE_QUARK(deb - rpc - error - quark, deb_rpc_error)

/* Indexed by enum value; [0] is the UNSPECIFIED zero, which never parses. */
static const char *const operation_names[] = {
        [OPERATION(UNSPECIFIED)] = "unspecified",
        [OPERATION(START)] = "start",
        [OPERATION(STOP)] = "stop",
        [OPERATION(RESTART)] = "restart",
        [OPERATION(HEALTH_CHECK)] = "health-check",
        [OPERATION(UPDATE_CONFIG)] = "update-config",
        [OPERATION(GRACEFUL_SHUTDOWN)] = "graceful-shutdown",
        [OPERATION(FORCE_SHUTDOWN)] = "force-shutdown",
        [OPERATION(GET_CAPABILITIES)] = "get-capabilities",
        [OPERATION(PAUSE)] = "pause",
        [OPERATION(RESUME)] = "resume",
};

static const char *const status_names[] = {
        [STATUS(UNSPECIFIED)] = "unspecified",
        [STATUS(SUCCESS)] = "success",
        [STATUS(ERROR)] = "error",
        [STATUS(TIMEOUT)] = "timeout",
        [STATUS(IN_PROGRESS)] = "in-progress",
};

static const char *const kind_names[] = {
        [KIND(UNSPECIFIED)] = "unspecified",
        [KIND(TIMEOUT)] = "timeout",
        [KIND(NOT_FOUND)] = "not-found",
        [KIND(INVALID_OPERATION)] = "invalid-operation",
        [KIND(EXECUTION_ERROR)] = "execution-error",
        [KIND(COMMUNICATION_ERROR)] = "communication-error",
        [KIND(INVALID_ARGUMENT)] = "invalid-argument",
};

static const char *const category_names[] = {
        [CATEGORY(UNSPECIFIED)] = "unspecified", [CATEGORY(CONFIGURATION)] = "configuration",
        [CATEGORY(RESOURCE)] = "resource",       [CATEGORY(COMMUNICATION)] = "communication",
        [CATEGORY(PERMISSION)] = "permission",   [CATEGORY(INTERNAL)] = "internal",
        [CATEGORY(TIMEOUT)] = "timeout",
};

static const char *name_lookup(const char *const *names, gsize n, int value)
{
        if (value < 0 || (gsize)value >= n)
                return "unknown";
        return names[value];
}

/* Equal ignoring case, '-' and '_': "HealthCheck" == "health_check" == "health-check". */
static gboolean name_equal(const char *name, const char *s)
{
        for (;;) {
                while (*name == '-')
                        name++;
                while (*s == '-' || *s == '_')
                        s++;
                if (!*name || !*s)
                        return !*name && !*s;
                if (g_ascii_tolower(*name) != g_ascii_tolower(*s))
                        return FALSE;
                name++;
                s++;
        }
}

static gboolean name_parse(const char *const *names, gsize n, const char *s, int *out)
{
        if (!s)
                return FALSE;
        for (gsize i = 1; i < n; i++) {
                if (name_equal(names[i], s)) {
                        *out = (int)i;
                        return TRUE;
                }
        }
        return FALSE;
}

const char *deb_rpc_operation_to_string(DebRpcOperation operation)
{
        return name_lookup(operation_names, G_N_ELEMENTS(operation_names), (int)operation);
}

gboolean deb_rpc_operation_from_string(const char *s, DebRpcOperation *out)
{
        int v;

        if (!name_parse(operation_names, G_N_ELEMENTS(operation_names), s, &v))
                return FALSE;
        *out = (DebRpcOperation)v;
        return TRUE;
}

const char *deb_rpc_status_to_string(DebRpcStatus status)
{
        return name_lookup(status_names, G_N_ELEMENTS(status_names), (int)status);
}

gboolean deb_rpc_status_from_string(const char *s, DebRpcStatus *out)
{
        int v;

        if (!name_parse(status_names, G_N_ELEMENTS(status_names), s, &v))
                return FALSE;
        *out = (DebRpcStatus)v;
        return TRUE;
}

const char *deb_rpc_error_kind_to_string(DebRpcErrorKind kind)
{
        return name_lookup(kind_names, G_N_ELEMENTS(kind_names), (int)kind);
}

gboolean deb_rpc_error_kind_from_string(const char *s, DebRpcErrorKind *out)
{
        int v;

        if (!name_parse(kind_names, G_N_ELEMENTS(kind_names), s, &v))
                return FALSE;
        *out = (DebRpcErrorKind)v;
        return TRUE;
}

const char *deb_rpc_error_category_to_string(DebRpcErrorCategory category)
{
        return name_lookup(category_names, G_N_ELEMENTS(category_names), (int)category);
}

gboolean deb_rpc_error_category_from_string(const char *s, DebRpcErrorCategory *out)
{
        int v;

        if (!name_parse(category_names, G_N_ELEMENTS(category_names), s, &v))
                return FALSE;
        *out = (DebRpcErrorCategory)v;
        return TRUE;
}

gboolean deb_rpc_operation_is_valid(DebRpcOperation operation)
{
        return operation >= OPERATION(START) && operation <= OPERATION(RESUME);
}

DebRpcError deb_rpc_error_from_kind(DebRpcErrorKind kind)
{
        switch (kind) {
        case KIND(TIMEOUT):
                return DEB_RPC_ERROR_TIMEOUT;
        case KIND(NOT_FOUND):
                return DEB_RPC_ERROR_NOT_FOUND;
        case KIND(INVALID_OPERATION):
                return DEB_RPC_ERROR_INVALID_OPERATION;
        case KIND(EXECUTION_ERROR):
                return DEB_RPC_ERROR_EXECUTION;
        case KIND(COMMUNICATION_ERROR):
                return DEB_RPC_ERROR_COMMUNICATION;
        case KIND(INVALID_ARGUMENT):
                return DEB_RPC_ERROR_INVALID_ARGUMENT;
        default:
                return DEB_RPC_ERROR_FAILED;
        }
}

DebRpcErrorKind deb_rpc_error_to_kind(DebRpcError code)
{
        switch (code) {
        case DEB_RPC_ERROR_FAILED:
                return KIND(UNSPECIFIED);
        case DEB_RPC_ERROR_TIMEOUT:
                return KIND(TIMEOUT);
        case DEB_RPC_ERROR_NOT_FOUND:
                return KIND(NOT_FOUND);
        case DEB_RPC_ERROR_INVALID_OPERATION:
                return KIND(INVALID_OPERATION);
        case DEB_RPC_ERROR_EXECUTION:
                return KIND(EXECUTION_ERROR);
        case DEB_RPC_ERROR_INVALID_ARGUMENT:
                return KIND(INVALID_ARGUMENT);
        case DEB_RPC_ERROR_COMMUNICATION:
        default:
                return KIND(COMMUNICATION_ERROR);
        }
}

gboolean deb_rpc_target_validate(const char *target, GError **error)
{
        gsize len;

        if (!target || !*target) {
                g_set_error_literal(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                                    "RPC target is empty");
                return FALSE;
        }
        len = strlen(target);
        if (len > DEB_TOPIC_MAX_LEVEL_LEN) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "RPC target of %zu bytes: at most %d are allowed (one topic level)", len,
                            DEB_TOPIC_MAX_LEVEL_LEN);
                return FALSE;
        }
        for (const char *p = target; *p; p++) {
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-') {
                        g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                                    "RPC target '%s': byte %zu is not one of [A-Za-z0-9_-]",
                                    g_utf8_validate(target, -1, NULL) ? target : "(not UTF-8)",
                                    (gsize)(p - target) + 1);
                        return FALSE;
                }
        }
        return TRUE;
}

char *deb_rpc_request_topic(const char *target, DebRpcOperation operation, GError **error)
{
        if (!deb_rpc_operation_is_valid(operation)) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "RPC operation %d is not a known operation", (int)operation);
                return NULL;
        }
        if (!deb_rpc_target_validate(target, error))
                return NULL;

        switch (operation) {
        case OPERATION(UPDATE_CONFIG):
                return g_strconcat("control.collector.config.", target, NULL);
        case OPERATION(GRACEFUL_SHUTDOWN):
        case OPERATION(FORCE_SHUTDOWN):
                return g_strconcat("control.shutdown.", target, NULL);
        default:
                return g_strconcat("control.collector.", target, NULL);
        }
}

char *deb_rpc_response_topic(const char *correlation_id, GError **error)
{
        g_autoptr(GError) local = NULL;

        /* Same rule as a target: the id must be exactly one level. */
        if (!deb_rpc_target_validate(correlation_id, &local)) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "correlation id cannot name a reply topic: %s", local->message);
                return NULL;
        }
        return g_strconcat(DEB_RPC_RESPONSE_LEVEL ".", correlation_id, NULL);
}

const char *deb_rpc_response_topic_get_id(const char *topic)
{
        gsize prefix = strlen(DEB_RPC_RESPONSE_LEVEL ".");
        const char *id;

        if (!topic || strncmp(topic, DEB_RPC_RESPONSE_LEVEL ".", prefix) != 0)
                return NULL;
        id = topic + prefix;
        if (!deb_rpc_target_validate(id, NULL))
                return NULL;
        return id;
}

gboolean deb_rpc_payload_fits_operation(DebRpcOperation operation,
                                        Daemoneye__Eventbus__RpcRequest__PayloadCase payload_case)
{
        if (payload_case == PAYLOAD(_NOT_SET))
                return TRUE;
        switch (operation) {
        case OPERATION(START):
        case OPERATION(STOP):
        case OPERATION(RESTART):
        case OPERATION(PAUSE):
        case OPERATION(RESUME):
                return payload_case == PAYLOAD(LIFECYCLE);
        case OPERATION(UPDATE_CONFIG):
                return payload_case == PAYLOAD(CONFIG_UPDATE);
        case OPERATION(GRACEFUL_SHUTDOWN):
        case OPERATION(FORCE_SHUTDOWN):
                return payload_case == PAYLOAD(SHUTDOWN);
        default:
                return FALSE;
        }
}

gboolean deb_rpc_response_to_error(const DebRpcResponse *response, GError **error)
{
        const DebRpcErrorDetails *details = response->error;
        const char *message = details && details->message && *details->message ? details->message : NULL;
        const char *code = details && details->code && *details->code ? details->code : NULL;
        DebRpcError domain_code;

        switch (response->status) {
        case STATUS(SUCCESS):
        case STATUS(IN_PROGRESS):
                return TRUE;
        case STATUS(TIMEOUT):
                domain_code = DEB_RPC_ERROR_TIMEOUT;
                break;
        case STATUS(ERROR):
                domain_code = details ? deb_rpc_error_from_kind(details->kind) : DEB_RPC_ERROR_FAILED;
                break;
        default:
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL,
                            "reply with status %d (%s), which is not an outcome", (int)response->status,
                            deb_rpc_status_to_string(response->status));
                return FALSE;
        }

        if (code)
                g_set_error(error, DEB_RPC_ERROR, domain_code, "%s (%s)",
                            message ? message : deb_rpc_status_to_string(response->status), code);
        else
                g_set_error(error, DEB_RPC_ERROR, domain_code, "%s",
                            message ? message : deb_rpc_status_to_string(response->status));
        return FALSE;
}

DebRpcResponse *deb_rpc_response_new_error(const char *correlation_id, DebRpcErrorKind kind,
                                           DebRpcErrorCategory category, const char *code,
                                           const char *format, ...)
{
        DebRpcResponse *response = g_new0(DebRpcResponse, 1);
        DebRpcErrorDetails *details = g_new0(DebRpcErrorDetails, 1);
        va_list ap;

        daemoneye__eventbus__rpc_response__init(response);
        daemoneye__eventbus__rpc_error_details__init(details);
        response->correlation_id = g_strdup(correlation_id ? correlation_id : "");
        response->status = kind == KIND(TIMEOUT) ? STATUS(TIMEOUT) : STATUS(ERROR);
        va_start(ap, format);
        details->message = g_strdup_vprintf(format, ap);
        va_end(ap);
        details->code = g_strdup(code ? code : "");
        details->context = g_strdup("");
        details->kind = kind;
        details->category = category;
        response->error = details;
        return response;
}

DebRpcResponse *deb_rpc_response_new_from_error(const char *correlation_id, const GError *error,
                                                DebRpcErrorCategory category)
{
        DebRpcErrorKind kind = KIND(EXECUTION_ERROR);

        if (error->domain == DEB_RPC_ERROR)
                kind = deb_rpc_error_to_kind((DebRpcError)error->code);
        return deb_rpc_response_new_error(correlation_id, kind, category, NULL, "%s", error->message);
}

void deb_rpc_response_free(DebRpcResponse *response)
{
        if (!response)
                return;
        if (response->error) {
                g_free(response->error->code);
                g_free(response->error->message);
                g_free(response->error->context);
                g_free(response->error);
        }
        g_free(response->correlation_id);
        g_free(response);
}

GBytes *deb_rpc_response_pack(const DebRpcResponse *response)
{
        gsize size = protobuf_c_message_get_packed_size(&response->base);
        guint8 *data = g_malloc(size + 1); /* + 1: an empty reply is not a NULL buffer */

        protobuf_c_message_pack(&response->base, data);
        return g_bytes_new_take(data, size);
}
