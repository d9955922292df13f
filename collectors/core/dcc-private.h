/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Internals of collector-core shared by its files; not installed.
 *
 *   dcc-collector.c    the DccCollector object, publishing, settings, running
 *   dcc-connection.c   socket activation, dialing, handshake, subscriptions
 *   dcc-rpc.c          request intake (decode, check, deadline, capacity), replies
 *   dcc-state.c        the state machine's transition table
 *   dcc-operation.c    completion handles and the step runner
 *   dcc-lifecycle.c    START, STOP, RESTART, PAUSE, RESUME
 *   dcc-config-update.c UPDATE_CONFIG
 *   dcc-health.c       HEALTH_CHECK, GET_CAPABILITIES, components and metrics
 *   dcc-heartbeat.c    heartbeats
 *   dcc-shutdown.c     GRACEFUL_SHUTDOWN, FORCE_SHUTDOWN, SIGTERM, lost connection
 *   dcc-config.c       settings store and change checking
 *   dcc-main.c         dcc_main() and the standard options
 */
#include "dcc-collector.h"
#include "dcc-config-store.h"
#include "eventbus.pb-c.h"

G_BEGIN_DECLS

#define DCC_DEFAULT_MAX_CONCURRENT 8u
#define DCC_DEFAULT_TIMEOUT_MIN_MS 10u
#define DCC_DEFAULT_TIMEOUT_MAX_MS (5u * 60u * 1000u)
#define DCC_DEFAULT_TIMEOUT_MS (30u * 1000u)
#define DCC_DEFAULT_GRACEFUL_MS (30u * 1000u)
#define DCC_DEFAULT_HEARTBEAT_MS 10000u
#define DCC_MIN_HEARTBEAT_MS 10u
/* How long a listening activation socket may wait for the agent to dial it. */
#define DCC_ACCEPT_TIMEOUT_MS (60u * 1000u)
/* Bound on flushing replies and heartbeats when the collector ends. */
#define DCC_EXIT_FLUSH_MS 2000u

/* Set by the agent's embedded backend (daemon/config.h COLLECTOR_ENV_*): defaults of --id, --heartbeat-interval, the socket. */
#define DCC_ENV_ID "DAEMONEYE_COLLECTOR_ID"
#define DCC_ENV_HEARTBEAT_MS "DAEMONEYE_HEARTBEAT_INTERVAL_MS"
#define DCC_ENV_SOCKET "DAEMONEYE_SOCKET"

#define DCC_PAYLOAD_TYPE_REQUEST "daemoneye.eventbus.RpcRequest"
#define DCC_PAYLOAD_TYPE_RESPONSE "daemoneye.eventbus.RpcResponse"
#define DCC_PAYLOAD_TYPE_HEARTBEAT "daemoneye.eventbus.Heartbeat"

#define DCC_OP(name) DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_##name
#define DCC_STATUS(name) DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_##name
#define DCC_KIND(name) DAEMONEYE__EVENTBUS__ERROR_KIND__ERROR_KIND_##name
#define DCC_CATEGORY(name) DAEMONEYE__EVENTBUS__ERROR_CATEGORY__ERROR_CATEGORY_##name
#define DCC_MT(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name

/* Detaches *@source from its context and drops our reference; a no-op when NULL. */
static inline void dcc_source_clear(GSource **source)
{
        if (!*source)
                return;
        g_source_destroy(*source);
        g_clear_pointer(source, g_source_unref);
}

typedef Daemoneye__Eventbus__RpcRequest DccRpcRequestMessage;
typedef struct _DccRequest DccRequest;
typedef struct _DccShutdown DccShutdown;

/* Called when a request's deadline passed before it was answered, right before the TIMEOUT reply. */
typedef void (*DccRequestExpireFunc)(DccCollector *collector, DccRequest *request);

/* One request being served: in the collector's table until answered, then held by whoever still works on it. */
struct _DccRequest {
        gint ref_count;
        DccCollector *collector; /* NULL once the collector is gone */
        char *correlation_id;
        DccRpcRequestMessage *message; /* owned, protobuf-c unpacked */
        int operation;
        gint64 received_us; /* monotonic */
        guint timeout_ms;   /* from received_us to the deadline */
        GSource *deadline_source;
        gboolean answered;
        gboolean expired;
        DccRequestExpireFunc on_expire;
};

/* Called when a step's callback completed (@error NULL on success), unless the collector ended. */
typedef void (*DccStepDoneFunc)(DccCollector *collector, const GError *error, gpointer data);

typedef struct {
        DccOperationFunc func;
        gpointer user_data;
} DccHook;

typedef struct {
        char *name;
        DccHealthStatus status;
        char *message;
        gint64 last_check_us; /* wall clock */
        guint check_interval_ms;
} DccComponent;

struct _DccCollector {
        const DccCollectorInfo *info;
        gpointer user_data;
        GMainContext *context;
        char *id;
        char *topic_control;   /* control.collector.<id> */
        char *topic_config;    /* control.collector.config.<id> */
        char *topic_shutdown;  /* control.shutdown.<id> */
        char *topic_heartbeat; /* control.health.heartbeat.<id> */
        DebClient *client;     /* NULL until connecting */
        DccConfigStore *config;
        gboolean autostart;

        DccState state;
        /* Name of the lifecycle operation whose callbacks have not completed yet, or NULL. */
        const char *busy_with;
        GHashTable *requests; /* correlation id → DccRequest, unanswered */
        GPtrArray *operations; /* DccOperation handed to callbacks and not completed */
        guint64 requests_total;
        guint max_concurrent;
        guint timeout_min_ms, timeout_max_ms, timeout_default_ms;
        guint graceful_timeout_ms;

        guint heartbeat_interval_ms;
        GSource *heartbeat_source;
        guint64 heartbeat_sequence;
        gint64 last_heartbeat_us; /* wall clock, 0 before the first */

        GPtrArray *components; /* DccComponent, in first-report order */
        GHashTable *metrics;   /* name → double * */
        guint64 events_published;
        guint64 error_count;
        gint64 created_us; /* monotonic */

        GArray *cleanup_hooks; /* DccHook, after info->cleanup_hooks */
        DccShutdown *shutdown; /* NULL until a shutdown begins */

        int listen_fd; /* activation socket awaiting the agent's connection, or -1 */
        GSource *accept_source;
        GSource *accept_timeout;
        GMainLoop *loop; /* while in dcc_collector_run() */
        int exit_status; /* -1 while running */
};

/* dcc-collector.c */
/** dcc_topic_level_is_valid: 1..DEB_TOPIC_MAX_LEVEL_LEN bytes of [A-Za-z0-9_-]: ids and correlation ids become topic levels. */
gboolean dcc_topic_level_is_valid(const char *s);
void dcc_collector_set_state(DccCollector *collector, DccState state);
/** dcc_collector_finish: ends the collector with @status (first call wins); stops its timers. */
void dcc_collector_finish(DccCollector *collector, DccExitStatus status);
gboolean dcc_collector_is_finished(DccCollector *collector);
gboolean dcc_collector_supports_pause(DccCollector *collector);
/** dcc_collector_log: logs with COLLECTOR_ID= (and CORRELATION_ID=, RPC_OPERATION= for a request). */
void dcc_collector_log(DccCollector *collector, DccRequest *request, GLogLevelFlags level, const char *format, ...)
        G_GNUC_PRINTF(4, 5);

/* dcc-connection.c */
void dcc_connection_close(DccCollector *collector);

/* dcc-rpc.c */
void dcc_rpc_handle_envelope(DebClient *client, const DebEnvelope *envelope, gpointer user_data);
DccRequest *dcc_request_ref(DccRequest *request);
void dcc_request_unref(DccRequest *request);
/**
 * dcc_request_reply:
 * @request: (nullable) nothing is sent for internal operations (NULL) or
 *   requests answered already
 * @error: (nullable) error details, for ERROR and TIMEOUT
 * @payload: (nullable) HealthResult, ConfigUpdateResult, Capabilities or LifecycleResult
 */
void dcc_request_reply(DccRequest *request, int status, const Daemoneye__Eventbus__RpcErrorDetails *error,
                       const ProtobufCMessage *payload);
/** dcc_request_fail: replies ERROR (or @status) with details built from the arguments. */
void dcc_request_fail(DccRequest *request, int status, int kind, int category, const char *code,
                      const char *context_json, const ProtobufCMessage *payload, const char *format, ...)
        G_GNUC_PRINTF(8, 9);
/** dcc_request_fail_error: replies ERROR kind EXECUTION_ERROR, category from @error's domain and code. */
void dcc_request_fail_error(DccRequest *request, const char *code, const ProtobufCMessage *payload,
                            const GError *error);
/** dcc_rpc_fail_pending: answers every unanswered request with @code, as the collector ends. */
void dcc_rpc_fail_pending(DccCollector *collector, const char *code, const char *why);
/** dcc_error_to_category: Returns: the ErrorCategory for @error's domain and code. */
int dcc_error_to_category(const GError *error);
/** dcc_json_string_pairs: Returns: (transfer full) a JSON object of the NULL-terminated key, value strings. */
char *dcc_json_string_pairs(const char *first_key, ...) G_GNUC_NULL_TERMINATED;

/* dcc-state.c */
typedef enum {
        DCC_TRANSITION_RUN,    /* do it */
        DCC_TRANSITION_NOOP,   /* already there: SUCCESS without calling anything */
        DCC_TRANSITION_REFUSE, /* INVALID_OPERATION */
} DccTransition;

/**
 * dcc_state_transition:
 * @operation: a lifecycle RpcOperation or UPDATE_CONFIG
 *
 * Returns: what @operation does in @state; the table is in dcc-state.c.
 */
DccTransition dcc_state_transition(DccState state, int operation);
/** dcc_rpc_operation_to_string: "start", "health_check", … ("unknown" otherwise). */
const char *dcc_rpc_operation_to_string(int operation);

/* dcc-operation.c */
/**
 * dcc_step_run:
 * @func: (nullable) the collector's callback; NULL completes at once
 * @request: (nullable) the request served, for dcc_operation_is_expired()
 * @done_data: released with @done_destroy when the step ends, however it ends
 *
 * Hands a fresh completion handle to @func and calls @done when it is
 * completed, which may happen before this returns.
 */
void dcc_step_run(DccCollector *collector, const char *name, DccOperationFunc func, gpointer func_data,
                  DccRequest *request, DccStepDoneFunc done, gpointer done_data, GDestroyNotify done_destroy);
/** dcc_operations_detach: the collector is going; handles still out complete into nothing. */
void dcc_operations_detach(DccCollector *collector);

/* dcc-lifecycle.c */
void dcc_lifecycle_handle(DccCollector *collector, DccRequest *request);
/** dcc_lifecycle_autostart: START without a request, for --autostart. */
void dcc_lifecycle_autostart(DccCollector *collector);

/* dcc-config-update.c */
void dcc_config_update_handle(DccCollector *collector, DccRequest *request);
/**
 * dcc_config_plan_describe_rejections:
 * @context_json: (out) {"rejected": [{"key": …, "reason": …}, …]}
 *
 * Returns: (transfer full) "key: reason; key: reason" for an error message.
 */
char *dcc_config_plan_describe_rejections(const DccConfigPlan *plan, char **context_json);

/* dcc-health.c */
void dcc_health_handle_check(DccCollector *collector, DccRequest *request);
void dcc_health_handle_capabilities(DccCollector *collector, DccRequest *request);
/** dcc_health_get_capability_strings: Returns: (transfer full) Hello's capabilities. */
GStrv dcc_health_get_capability_strings(DccCollector *collector);
void dcc_component_free(gpointer data);

/* dcc-heartbeat.c */
void dcc_heartbeat_start(DccCollector *collector);
void dcc_heartbeat_stop(DccCollector *collector);
/** dcc_heartbeat_send: publishes one heartbeat now, if welcomed. */
void dcc_heartbeat_send(DccCollector *collector);

/* dcc-shutdown.c */
void dcc_shutdown_handle(DccCollector *collector, DccRequest *request);
/** dcc_shutdown_begin_signal: SIGTERM/SIGINT: graceful the first time, forced the second. */
void dcc_shutdown_begin_signal(DccCollector *collector, int signum);
/** dcc_shutdown_begin_disconnected: the broker is gone: stop and clean up, then end DISCONNECTED. */
void dcc_shutdown_begin_disconnected(DccCollector *collector);
/** dcc_shutdown_notify_idle: the lifecycle operation a shutdown waits for has completed. */
void dcc_shutdown_notify_idle(DccCollector *collector);
gboolean dcc_shutdown_in_progress(DccCollector *collector);
void dcc_shutdown_free(DccShutdown *shutdown);

G_END_DECLS
