/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "deb-client.h"
#include "dcc-config.h"

G_BEGIN_DECLS

/*
 * collector-core: everything a DaemonEye collector does besides collecting.
 *
 * A collector author fills a DccCollectorInfo (identity, config schema,
 * callbacks) and calls dcc_main() from main(). collector-core then:
 *
 *  - gets its connection. Under socket activation (systemd, or the agent's
 *    embedded backend, which does exactly what systemd does) fd 3 is either a
 *    listening socket, on which it accepts the one connection the agent dials,
 *    or an already connected one. Otherwise it dials a broker socket
 *    (--connect PATH, default the system EventBus socket).
 *  - is a plain EventBus *client* on that stream, whichever way it came: it
 *    sends Hello (client id = collector id, capabilities "operation.<name>"
 *    and "feature.<name>") and waits for Welcome. When the agent dialed the
 *    collector's socket, the agent adopts its end into the broker as a client
 *    connection; the collector cannot tell, and needs no second protocol.
 *  - subscribes to exactly its three request topics: control.collector.<id>,
 *    control.collector.config.<id> (UPDATE_CONFIG) and control.shutdown.<id>
 *    (GRACEFUL_SHUTDOWN, FORCE_SHUTDOWN); an operation arriving on another of
 *    the three is refused, so a topic ACL on one of them cannot be bypassed.
 *  - publishes a Heartbeat on control.health.heartbeat.<id> every interval and
 *    at every state change, with a sequence number starting at 1.
 *  - answers every RpcRequest on response.<correlation_id> (RpcResponse, same
 *    correlation id), running it through the state machine
 *
 *        STOPPED --start--> STARTING --> RUNNING --pause--> PAUSED
 *           ^                  |           |  ^---resume-----'  |
 *           |                  v           v                    |
 *           '---- STOPPING <-------- stop/restart <-------------'
 *        FAILED: a start, stop or restart failed or overran its deadline, or
 *        the collector called dcc_collector_fail(); start, stop and restart leave it.
 *
 *    Refused transitions answer ERROR with kind INVALID_OPERATION. START while
 *    RUNNING, STOP while STOPPED and PAUSE while PAUSED succeed without doing
 *    anything, so the RPC client may retry them.
 *  - enforces the request deadline (already past on arrival: TIMEOUT without
 *    running anything; not finished by then: TIMEOUT), max_concurrent_requests
 *    (ERROR, kind EXECUTION_ERROR, category RESOURCE; shutdown requests are
 *    never refused for it) and that the payload fits the operation
 *    (INVALID_ARGUMENT, nothing run).
 *  - shuts down: GRACEFUL_SHUTDOWN and SIGTERM stop collection, run the
 *    cleanup hooks within the graceful timeout, answer, flush, and make
 *    dcc_main() return DCC_EXIT_SHUTDOWN; FORCE_SHUTDOWN answers and returns
 *    DCC_EXIT_FORCED at once.
 *
 * Everything runs on the thread-default GMainContext current when the
 * collector was created; collector-core starts no thread.
 */

typedef struct _DccCollector DccCollector;

/*
 * A completion handle: every callback below that receives one must complete
 * it exactly once, with dcc_operation_complete() or dcc_operation_fail(),
 * before returning or later from the main loop. It stays valid until then,
 * even if its request's deadline passed or the collector was freed.
 */
typedef struct _DccOperation DccOperation;

/* The state machine's states; the values are the wire's CollectorStatus. */
typedef enum {
        DCC_STATE_STOPPED = 1,
        DCC_STATE_STARTING = 2,
        DCC_STATE_RUNNING = 3,
        DCC_STATE_PAUSED = 4,
        DCC_STATE_STOPPING = 5,
        DCC_STATE_FAILED = 6,
} DccState;

/* The values are the wire's HealthStatus. */
typedef enum {
        DCC_HEALTH_UNKNOWN = 0,
        DCC_HEALTH_HEALTHY = 1,
        DCC_HEALTH_DEGRADED = 2,
        DCC_HEALTH_UNHEALTHY = 3,
} DccHealthStatus;

/* What dcc_main() and dcc_collector_run() return: how the collector ended. */
typedef enum {
        DCC_EXIT_SHUTDOWN = 0,     /* graceful shutdown (RPC or SIGTERM/SIGINT), hooks done */
        DCC_EXIT_FAILURE = 1,      /* could not connect, handshake refused, hooks failed */
        DCC_EXIT_USAGE = 2,        /* bad command line or collector info */
        DCC_EXIT_FORCED = 3,       /* FORCE_SHUTDOWN, or graceful hooks overran with force_after_timeout */
        DCC_EXIT_DISCONNECTED = 4, /* the broker connection was lost; cleanup hooks were run */
} DccExitStatus;

#define DCC_ERROR (dcc_error_quark())
GQuark dcc_error_quark(void);

/*
 * Errors of collector-core, and the codes a collector fails an operation with
 * to say whose problem it is (the RPC error's category). Other domains map to
 * the INTERNAL category, except G_IO_ERROR_PERMISSION_DENIED (PERMISSION).
 */
typedef enum {
        DCC_ERROR_FAILED,           /* category INTERNAL */
        DCC_ERROR_INVALID_ARGUMENT, /* a bad id, option or value; category CONFIGURATION */
        DCC_ERROR_CONFIGURATION,    /* category CONFIGURATION */
        DCC_ERROR_RESOURCE,         /* category RESOURCE: memory, fds, disk */
        DCC_ERROR_PERMISSION,       /* category PERMISSION */
        DCC_ERROR_NOT_RUNNING,      /* dcc_publish() while not collecting */
        DCC_ERROR_CONNECTION,       /* no broker connection; category COMMUNICATION */
} DccError;

/* A lifecycle, health or cleanup callback; see DccOperation. */
typedef void (*DccOperationFunc)(DccCollector *collector, DccOperation *op, gpointer user_data);

/*
 * Applies validated changes to a running (or paused) collector, all or none.
 * The settings already read the new values (dcc_collector_get_*) during the
 * call. Returning %FALSE (with @error set) makes collector-core restore the
 * previous values when the caller asked for rollback_on_failure, calling this
 * again with the changes reversed.
 */
typedef gboolean (*DccApplyConfigFunc)(DccCollector *collector, const DccConfigChange *changes, gsize n_changes,
                                       gpointer user_data, GError **error);

typedef struct {
        /* Collector id unless --id says otherwise; a topic level: 1..64 of [A-Za-z0-9_-]. */
        const char *id;
        /* Collector type ("procmond"); for logs and capabilities. */
        const char *type;
        /* One line for --help. */
        const char *description;

        /* NULL-terminated; may be NULL. Topics published ("events.process.lifecycle"). */
        const char *const *event_types;
        /* NULL-terminated; may be NULL. Free-form feature names ("hash-verification"). */
        const char *const *features;
        /* NULL-terminated; NULL means { "linux" }. */
        const char *const *platforms;
        /* NULL-terminated Linux capabilities needed ("CAP_SYS_PTRACE"); may be NULL. */
        const char *const *required_capabilities;
        guint64 min_memory_bytes;
        guint min_cpu_percent;

        /* Ends with an entry whose key is NULL; may be NULL for no settings. */
        const DccConfigKey *config_schema;

        /* Requests answered concurrently before "busy"; 0: 8. */
        guint max_concurrent_requests;
        /* Request timeouts accepted: 0: 10 ms, 5 min, 30 s. Longer deadlines are clamped to max. */
        guint timeout_min_ms;
        guint timeout_max_ms;
        guint timeout_default_ms;
        /* Cleanup budget of SIGTERM and of a shutdown request saying 0; 0: 30 s. */
        guint graceful_timeout_ms;

        /*
         * Callbacks. All may be NULL (the transition then just happens), but
         * PAUSE and RESUME are offered only when both pause and resume are
         * given. stop is also called from FAILED, so it must cope with a
         * start that did not finish.
         */
        DccOperationFunc start;
        DccOperationFunc stop;
        DccOperationFunc pause;
        DccOperationFunc resume;
        /* Refreshes dcc_collector_report_component()/set_metric() before HEALTH_CHECK answers. */
        DccOperationFunc health;
        DccApplyConfigFunc apply_config;
        /* NULL-terminated; run in order at graceful shutdown, after stop. May be NULL. */
        const DccOperationFunc *cleanup_hooks;
} DccCollectorInfo;

/**
 * dcc_main:
 * @info: the collector; must outlive the call
 * @user_data: passed to every callback
 *
 * The whole life of a collector process: parses the standard options
 * (--id ID, --connect PATH, --set KEY=VALUE (repeatable), --heartbeat-interval MS,
 * --autostart, --verbose, --help), connects, and runs the main loop until shutdown.
 * $DAEMONEYE_COLLECTOR_ID and $DAEMONEYE_HEARTBEAT_INTERVAL_MS, which the
 * agent sets, are the defaults of --id and --heartbeat-interval;
 * $DAEMONEYE_SOCKET is dialed when there is neither --connect nor socket activation.
 * Returns: a #DccExitStatus, to return from main().
 */
int dcc_main(int argc, char **argv, const DccCollectorInfo *info, gpointer user_data);

/**
 * dcc_collector_new:
 * @info: must outlive the collector
 *
 * For dcc_main() and for tests that run a collector in-process. Checks @info
 * (id, schema, defaults) and loads the defaults.
 * Returns: (transfer full) a STOPPED, unconnected collector, or %NULL with
 *   #DCC_ERROR_INVALID_ARGUMENT naming what is wrong.
 */
DccCollector *dcc_collector_new(const DccCollectorInfo *info, gpointer user_data, GError **error);

/**
 * dcc_collector_free:
 *
 * Closes the connection abruptly (no callback runs). Completion handles still
 * held by the collector author stay valid and are freed when completed.
 */
void dcc_collector_free(DccCollector *collector);

/** dcc_collector_set_id: before connecting; refuses ids that are not one topic level. */
gboolean dcc_collector_set_id(DccCollector *collector, const char *id, GError **error);

/** dcc_collector_set_config_string: sets a setting from "VALUE" text (--set KEY=VALUE), checked. */
gboolean dcc_collector_set_config_string(DccCollector *collector, const char *key, const char *value,
                                         GError **error);

/** dcc_collector_set_heartbeat_interval: before connecting; @interval_ms >= 10 (default 10000). */
void dcc_collector_set_heartbeat_interval(DccCollector *collector, guint interval_ms);

/** dcc_collector_set_autostart: start collecting right after the handshake, without waiting for START. */
void dcc_collector_set_autostart(DccCollector *collector, gboolean autostart);

/**
 * dcc_collector_connect_fd:
 * @fd: a connected stream socket; taken over (closed on failure too)
 *
 * Starts the handshake and, once welcomed, serves requests and heartbeats.
 */
gboolean dcc_collector_connect_fd(DccCollector *collector, int fd, GError **error);

/** dcc_collector_connect: dials the broker socket at @socket_path, then as dcc_collector_connect_fd(). */
gboolean dcc_collector_connect(DccCollector *collector, const char *socket_path, GError **error);

/**
 * dcc_collector_connect_activated:
 * @found: (out) %FALSE when the process was not socket-activated (nothing done)
 *
 * Takes fd 3 from socket activation (sd_listen_fds()): a listening socket is
 * accepted on once, asynchronously (within 60 s, else the collector ends
 * with DCC_EXIT_FAILURE); a connected one is used as it is.
 * Returns: %FALSE on an activation fd that is not a Unix stream socket, or on several fds.
 */
gboolean dcc_collector_connect_activated(DccCollector *collector, gboolean *found, GError **error);

/**
 * dcc_collector_run:
 *
 * Iterates the collector's main context until it ends, flushes what it still
 * has to send (at most 2 s) and disconnects. SIGTERM and SIGINT start a
 * graceful shutdown while it runs.
 * Returns: a #DccExitStatus.
 */
int dcc_collector_run(DccCollector *collector);

/** dcc_collector_get_exit_status: Returns: the #DccExitStatus once the collector ended, else -1. */
int dcc_collector_get_exit_status(DccCollector *collector);

const char *dcc_collector_get_id(DccCollector *collector);
DccState dcc_collector_get_state(DccCollector *collector);
/** dcc_collector_get_client: Returns: (transfer none) the EventBus client, for extra subscriptions. */
DebClient *dcc_collector_get_client(DccCollector *collector);
guint64 dcc_collector_get_events_published(DccCollector *collector);
/** dcc_collector_get_heartbeat_sequence: Returns: the sequence number of the last heartbeat sent (0: none). */
guint64 dcc_collector_get_heartbeat_sequence(DccCollector *collector);

/**
 * dcc_publish:
 * @topic: a concrete topic, normally one of info->event_types
 * @payload_type: (nullable) full protobuf name of the payload message
 *
 * Publishes one event and counts it in events_published (heartbeats, health).
 * Returns: %FALSE with #DCC_ERROR_NOT_RUNNING while STOPPED, PAUSED or FAILED
 *   and once the collector has ended, or with the client's error (bad topic,
 *   too large, connection closed).
 */
gboolean dcc_publish(DccCollector *collector, const char *topic, const char *payload_type, const void *data,
                     gsize len, GError **error);

/**
 * dcc_collector_report_component:
 * @check_interval_ms: how often the collector checks this component (0: unknown)
 *
 * Records the health of one part of the collector, stamped now; HEALTH_CHECK
 * returns the latest report of each. The overall health is the worst of them.
 */
void dcc_collector_report_component(DccCollector *collector, const char *name, DccHealthStatus status,
                                    const char *message, guint check_interval_ms);

/** dcc_collector_set_metric: a figure HEALTH_CHECK returns in its metrics map. */
void dcc_collector_set_metric(DccCollector *collector, const char *name, double value);

/** dcc_collector_count_error: counts one error in HEALTH_CHECK's error_count. */
void dcc_collector_count_error(DccCollector *collector);

/**
 * dcc_collector_fail:
 *
 * Collection broke down on its own (not during an operation): moves to
 * FAILED, counts an error, logs @error and tells the agent by a heartbeat.
 * The agent's restart brings it back through stop and start.
 */
void dcc_collector_fail(DccCollector *collector, const GError *error);

/** dcc_collector_add_cleanup_hook: runs after info->cleanup_hooks, in the order added. */
void dcc_collector_add_cleanup_hook(DccCollector *collector, DccOperationFunc func, gpointer user_data);

gint64 dcc_collector_get_int(DccCollector *collector, const char *key);
guint64 dcc_collector_get_uint(DccCollector *collector, const char *key);
gboolean dcc_collector_get_bool(DccCollector *collector, const char *key);
double dcc_collector_get_double(DccCollector *collector, const char *key);
/** dcc_collector_get_string: Returns: (transfer none) valid until the setting changes. */
const char *dcc_collector_get_string(DccCollector *collector, const char *key);

/** dcc_operation_complete: the operation succeeded; see #DccOperation. */
void dcc_operation_complete(DccOperation *op);

/**
 * dcc_operation_fail:
 * @error: (transfer full) why; its domain and code choose the RPC error category
 */
void dcc_operation_fail(DccOperation *op, GError *error);

/** dcc_operation_get_name: Returns: "start", "stop", "pause", "resume", "health_check" or "cleanup". */
const char *dcc_operation_get_name(DccOperation *op);

/**
 * dcc_operation_is_expired:
 *
 * Returns: %TRUE once the request this operation serves has been answered
 *   TIMEOUT (or the collector was freed): the work may be abandoned, but the
 *   handle must still be completed.
 */
gboolean dcc_operation_is_expired(DccOperation *op);

/** dcc_state_to_string: "stopped", "starting", "running", "paused", "stopping", "failed". */
const char *dcc_state_to_string(DccState state);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DccCollector, dcc_collector_free)

G_END_DECLS
