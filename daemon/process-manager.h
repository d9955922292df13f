/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "audit-log.h"
#include "broker.h"
#include "config.h"
#include "deb-rpc.h"

G_BEGIN_DECLS

/*
 * The process manager: runs the collectors of the [collector <id>] groups and
 * keeps them running.
 *
 * Each instance (a group with instances=N > 1 makes "<id>-1".."<id>-N") has a
 * desired state (running or stopped) and an actual one:
 *
 *   STOPPED --start--> STARTING --Start RPC answered--> RUNNING <--pause/resume--> PAUSED
 *      ^                   |  ^                            |
 *      |                   |  '--- crash / unresponsive, --'   (auto-restart: backoff
 *      '---- STOPPING <----'       restart_backoff_seconds,     doubling, at most
 *                                  then 2×, 4×…                 max_restart_attempts)
 *   FAILED: out of restart attempts, auto-restart disabled, or the collector
 *   refused its settings. UNRESPONSIVE: three heartbeats missed and no answer
 *   to the HealthCheck that followed (then restarted when auto-restart is on).
 *
 * Starting an instance: the backend (collector-backend.h) makes the process
 * run and hands back a connection to it, which is adopted into the broker as
 * that collector's client connection; the collector says Hello with its id,
 * subscribes to its request topics and sends its first heartbeat; then the
 * agent sends RPC Start with the group's own settings as config_overrides.
 * Stopping: RPC GracefulShutdown, SIGTERM after
 * graceful_shutdown_timeout_seconds, SIGKILL after force_shutdown_timeout_seconds
 * more. A process that exits or drops its connection unasked is noticed at
 * once (child watch, broker), never at the next heartbeat.
 *
 * The agent reaches the collectors through its own EventBus client, on one end
 * of a socketpair whose other end is adopted into the broker (client id
 * "daemoneye-agent"), with an RPC client on it. Every RPC it sends is written
 * to the audit log. Every state change is logged (COLLECTOR_ID=) and
 * published on "control.agent.collector.<id>.state" as a JSON object:
 *
 *   {"collector_id":"procmond","type":"procmond","state":"running","previous_state":"starting",
 *    "pid":1234,"restart_count":0,"reason":"started","timestamp_us":1714564800000000}
 *
 * so `daemoneye-cli watch 'control.agent.collector.#'` follows them live.
 */
typedef struct _ProcessManager ProcessManager;

typedef enum {
        COLLECTOR_STATE_STOPPED,
        COLLECTOR_STATE_STARTING,
        COLLECTOR_STATE_RUNNING,
        COLLECTOR_STATE_PAUSED,
        COLLECTOR_STATE_STOPPING,
        COLLECTOR_STATE_FAILED,
        COLLECTOR_STATE_UNRESPONSIVE,
} CollectorState;

#define PROCESS_MANAGER_ERROR (process_manager_error_quark())
GQuark process_manager_error_quark(void);

typedef enum {
        PROCESS_MANAGER_ERROR_NOT_FOUND,         /* no collector with that id */
        PROCESS_MANAGER_ERROR_INVALID_OPERATION, /* not possible in the collector's current state */
        PROCESS_MANAGER_ERROR_FAILED,            /* it was tried and did not work; the message says why */
        PROCESS_MANAGER_ERROR_CANCELLED, /* superseded (a stop during a start) or the agent is stopping */
        PROCESS_MANAGER_ERROR_CONFIGURATION,    /* a [collector] group the backend cannot run */
        PROCESS_MANAGER_ERROR_INVALID_ARGUMENT, /* a malformed argument (changes_json not a JSON object) */
} ProcessManagerError;

/* The topic prefix of state changes: "control.agent.collector.<id>.state". */
#define PROCESS_MANAGER_STATE_TOPIC_PREFIX "control.agent.collector"
/* The agent's own client id on its broker. */
#define PROCESS_MANAGER_CLIENT_ID "daemoneye-agent"

/* One instance as the D-Bus front and the logs show it. */
typedef struct {
        char *id;
        char *type; /* type=, "" when unset */
        CollectorState state;
        pid_t pid;                /* 0 when not running */
        guint restart_count;      /* automatic restarts since the agent started */
        gint64 last_heartbeat_us; /* wall clock, 0 if none yet */
        guint64 events_published; /* as its heartbeats report, summed over its processes */
        char *unit;               /* (nullable) its systemd unit, with the systemd backend */
        guint64 uptime_us;        /* since it last reached RUNNING, 0 unless RUNNING or PAUSED */
        gboolean autostart;
        char *last_error; /* (nullable) why it last failed */
} ProcessManagerCollectorInfo;

void process_manager_collector_info_free(ProcessManagerCollectorInfo *info);

/*
 * Outcome of an operation: @error is NULL on success; @response is the
 * collector's reply when there was one (valid during the call only).
 */
typedef void (*ProcessManagerCallback)(ProcessManager *pm, const char *collector_id,
                                       const DebRpcResponse *response, const GError *error,
                                       gpointer user_data);

/* A state change; @reason is one human-readable line. */
typedef void (*ProcessManagerStateFunc)(ProcessManager *pm, const char *collector_id,
                                        CollectorState old_state, CollectorState new_state,
                                        const char *reason, gpointer user_data);

/* A heartbeat of @collector_id arrived: its LastHeartbeat and events published changed. */
typedef void (*ProcessManagerHeartbeatFunc)(ProcessManager *pm, const char *collector_id,
                                            gpointer user_data);

typedef void (*ProcessManagerShutdownFunc)(ProcessManager *pm, gpointer user_data);

/** collector_state_to_string: Returns: "stopped", "starting", "running", "paused", "stopping", "failed",
 * "unresponsive". */
const char *collector_state_to_string(CollectorState state);

/**
 * process_manager_check_config:
 *
 * What process_manager_new() would refuse in @config: a backend that is not
 * available, a collector the backend cannot run (embedded: no exec=).
 * Returns: %FALSE with a PROCESS_MANAGER_ERROR_CONFIGURATION naming file, group and key.
 */
gboolean process_manager_check_config(const Config *config, GError **error);

/**
 * process_manager_new:
 * @broker: the agent's broker; must outlive the manager
 * @config: copied
 * @audit: (nullable) where RPCs are recorded; must outlive the manager
 *
 * Connects the agent's own client to @broker. Nothing is started yet.
 * Returns: (transfer full) the manager, or %NULL with an error.
 */
ProcessManager *process_manager_new(Broker *broker, const Config *config, AuditLog *audit, GError **error);

/**
 * process_manager_free:
 *
 * Abrupt: every collector still running is killed (SIGKILL) and reaped.
 * Pending callbacks run with PROCESS_MANAGER_ERROR_CANCELLED.
 */
void process_manager_free(ProcessManager *pm);

/** process_manager_autostart: starts every collector with autostart=true (the default). */
void process_manager_autostart(ProcessManager *pm);

/**
 * process_manager_apply_config:
 *
 * After a reload: collectors added are created (and started if autostart),
 * collectors removed are stopped and dropped, changed [process_manager] and
 * [rpc] values apply at once, a changed exec=, socket= or type= at the
 * collector's next start, and changed settings of a running collector are
 * sent to it with UpdateConfig.
 */
void process_manager_apply_config(ProcessManager *pm, const Config *config);

/**
 * process_manager_shutdown:
 * @func: called once every collector is stopped
 *
 * Stops every collector as process_manager_stop() does, all at once, and
 * refuses new operations.
 */
void process_manager_shutdown(ProcessManager *pm, ProcessManagerShutdownFunc func, gpointer user_data);

/** process_manager_list: Returns: (transfer full) (element-type ProcessManagerCollectorInfo) every instance,
 * in config order. */
GPtrArray *process_manager_list(ProcessManager *pm);

/** process_manager_get: Returns: (transfer full) (nullable) the instance @id. */
ProcessManagerCollectorInfo *process_manager_get(ProcessManager *pm, const char *id);

/**
 * process_manager_to_variant:
 *
 * Returns: (transfer full) process_manager_list() as an aa{sv}: id, type,
 *   state, pid, restart_count, last_heartbeat_us, uptime_us,
 *   events_published, autostart, and unit and last_error when set.
 */
GVariant *process_manager_to_variant(ProcessManager *pm);

/** process_manager_to_json: Returns: (transfer full) process_manager_to_variant() as one line of JSON. */
char *process_manager_to_json(ProcessManager *pm);

/**
 * process_manager_add_state_func:
 * @destroy: (nullable) called on @user_data when removed or when the manager is freed
 *
 * Returns: an id for process_manager_remove_state_func().
 */
guint process_manager_add_state_func(ProcessManager *pm, ProcessManagerStateFunc func, gpointer user_data,
                                     GDestroyNotify destroy);
void process_manager_remove_state_func(ProcessManager *pm, guint id);

/** process_manager_set_heartbeat_func: @func (nullable) replaces the one set before. */
void process_manager_set_heartbeat_func(ProcessManager *pm, ProcessManagerHeartbeatFunc func,
                                        gpointer user_data);

/*
 * The operations. Each returns %FALSE with a PROCESS_MANAGER_ERROR (unknown
 * collector, an operation impossible in its state, the agent stopping)
 * without calling @callback; otherwise @callback (nullable) runs exactly once,
 * later, from the main loop. @actor (nullable: "daemoneye-agent") is who asked:
 * it goes into the audit log with every RPC the operation sends.
 */

/** process_manager_start: spawns the collector if needed; done when it is RUNNING. Clears FAILED. */
gboolean process_manager_start(ProcessManager *pm, const char *id, const char *actor,
                               ProcessManagerCallback callback, gpointer user_data, GError **error);

/** process_manager_stop: graceful shutdown, then SIGTERM, then SIGKILL; done when the process is gone. */
gboolean process_manager_stop(ProcessManager *pm, const char *id, const char *actor,
                              ProcessManagerCallback callback, gpointer user_data, GError **error);

typedef enum {
        PROCESS_MANAGER_STOP_GRACEFUL,  /* RPC GracefulShutdown, then SIGTERM, then SIGKILL */
        PROCESS_MANAGER_STOP_TERMINATE, /* SIGTERM at once, then SIGKILL */
        PROCESS_MANAGER_STOP_KILL,      /* SIGKILL at once (an emergency shutdown) */
} ProcessManagerStopMode;

/**
 * process_manager_stop_with:
 * @timeout_ms: how long a graceful stop waits before SIGTERM; 0: graceful_shutdown_timeout_seconds
 * @reason: (nullable) for the log and the collector ("stop requested")
 *
 * As process_manager_stop(), with the force of @mode; a stop under way is
 * escalated when @mode is more forceful than the one it began with.
 */
gboolean process_manager_stop_with(ProcessManager *pm, const char *id, ProcessManagerStopMode mode,
                                   guint timeout_ms, const char *reason, const char *actor,
                                   ProcessManagerCallback callback, gpointer user_data, GError **error);

/** process_manager_restart: stop, then start; not counted as an automatic restart. */
gboolean process_manager_restart(ProcessManager *pm, const char *id, const char *actor,
                                 ProcessManagerCallback callback, gpointer user_data, GError **error);

/** process_manager_pause: RPC Pause; RUNNING → PAUSED. */
gboolean process_manager_pause(ProcessManager *pm, const char *id, const char *actor,
                               ProcessManagerCallback callback, gpointer user_data, GError **error);

/** process_manager_resume: RPC Resume; PAUSED → RUNNING. */
gboolean process_manager_resume(ProcessManager *pm, const char *id, const char *actor,
                                ProcessManagerCallback callback, gpointer user_data, GError **error);

/**
 * process_manager_update_config:
 * @changes_json: a JSON object of setting → value
 *
 * RPC UpdateConfig. Settings applied (not validate_only) are kept for the
 * collector's later starts, on top of its [collector] group, until the agent
 * restarts or a reload changes the same key in the file.
 */
gboolean process_manager_update_config(ProcessManager *pm, const char *id, const char *changes_json,
                                       gboolean validate_only, gboolean restart_required,
                                       gboolean rollback_on_failure, const char *actor,
                                       ProcessManagerCallback callback, gpointer user_data, GError **error);

/** process_manager_get_capabilities: RPC GetCapabilities; the reply carries Capabilities. */
gboolean process_manager_get_capabilities(ProcessManager *pm, const char *id, const char *actor,
                                          ProcessManagerCallback callback, gpointer user_data,
                                          GError **error);

/** process_manager_health_check: RPC HealthCheck; the reply carries HealthResult. */
gboolean process_manager_health_check(ProcessManager *pm, const char *id, const char *actor,
                                      ProcessManagerCallback callback, gpointer user_data, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcessManager, process_manager_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcessManagerCollectorInfo, process_manager_collector_info_free)

G_END_DECLS
