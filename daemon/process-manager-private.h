/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What the process manager's files share; nothing else includes this.
 *
 *   process-manager.c       the manager: instances, configuration, the public
 *                           operations, the listing, shutdown
 *   process-manager-bus.c   the agent's own EventBus connection: adopting it into
 *                           the broker, heartbeats in, state changes out, and
 *                           every RPC (audited, logged)
 *   process-manager-ops.c   the public operations
 *   collector-supervisor.c  one instance's life: spawn, start, stop escalation,
 *                           crash and restart policy
 *   collector-health.c      heartbeats, the health check after three missed ones
 */
#include <glib.h>

#include "collector-backend.h"
#include "deb-client.h"
#include "deb-rpc-client.h"
#include "process-manager.h"

G_BEGIN_DECLS

typedef struct _ManagedCollector ManagedCollector;
typedef struct _PmCall PmCall;
typedef struct _PmAdoption PmAdoption;

/* Why the process is being stopped, hence what happens when it is gone. */
typedef enum {
        STOP_CAUSE_NONE,
        STOP_CAUSE_REQUESTED, /* stop(): stay stopped */
        STOP_CAUSE_RESTART,   /* restart(): start again at once */
        STOP_CAUSE_FAILURE,   /* crash, unresponsive, failed start: restart policy */
} StopCause;

/* An operation waiting for an instance to be RUNNING (start) or gone (stop). */
typedef struct {
        ProcessManagerCallback callback;
        gpointer user_data;
        gboolean until_running;
} PmWaiter;

struct _ManagedCollector {
        ProcessManager *pm;
        char *id;                /* instance id: the group id, or "<id>-<n>" */
        CollectorConfig *config; /* a copy of its group */
        GHashTable
                *runtime_settings; /* applied by UpdateConfig: sent at later starts over config->settings */
        gboolean removed;          /* its group is gone: dropped once stopped */

        CollectorState state;
        gboolean want_running; /* the desired state */
        StopCause stop_cause;
        char *actor; /* who asked for the start or stop under way, for the audit log */
        char *last_error;

        GPid pid;                 /* 0: no process */
        guint generation;         /* one per process spawned: replies about an earlier one are stale */
        guint heartbeat_seconds;  /* the interval this process started with; a reload changes the next one */
        PmAdoption *adoption;     /* the adopted connection, while open */
        gboolean ready;           /* its first heartbeat since the spawn came */
        gboolean exit_pending;    /* we asked the process to end: its exit is expected */
        gboolean restart_pending; /* an automatic restart follows once the process is gone */
        guint restart_delay_ms;   /* its backoff */

        PmCall *start_call; /* RPCs in flight, at most one of each */
        PmCall *stop_call;
        PmCall *health_call;
        GList *calls; /* every PmCall in flight for this instance */

        guint failures;       /* consecutive; reset after STABLE_RUN_SECONDS of RUNNING */
        guint restart_count;  /* automatic restarts since the agent started */
        gint64 running_since; /* monotonic µs, 0 unless RUNNING/PAUSED */
        gint64 last_heartbeat_real_us;
        gint64 last_heartbeat_mono_us;
        guint64 events_published; /* as its last heartbeat said; kept across its restarts */
        guint64 events_base;      /* the sum of earlier processes' counts */
        guint stop_stage;         /* 0 graceful, 1 SIGTERM sent, 2 SIGKILL sent */

        GSource *restart_timer;    /* backoff before an automatic restart */
        GSource *startup_timer;    /* spawned → first heartbeat deadline */
        GSource *stop_timer;       /* stop escalation */
        GSource *watchdog_timer;   /* three heartbeats missed */
        GSource *stable_timer;     /* RUNNING long enough to forget past failures */
        GSource *disconnect_timer; /* connection closed: grace for the exit to be reported first */
        guint disconnect_waits;    /* grace periods waited for a dead process's exit report */

        GQueue waiters; /* of PmWaiter */
};

typedef struct {
        ProcessManagerStateFunc func;
        gpointer user_data;
        GDestroyNotify destroy;
        guint id;
} PmStateFunc;

struct _ProcessManager {
        Broker *broker;
        AuditLog *audit;
        CollectorBackend *backend;
        ProcessManagerConfig config;
        RpcConfig rpc_config; /* audit_log_path not kept */
        char *broker_socket_path;
        guint startup_timeout_seconds;

        DebClient *client; /* the agent's own connection, adopted into the broker */
        DebRpcClient *rpc;
        PmAdoption *client_adoption;

        GPtrArray *collectors; /* of ManagedCollector, in config order; owns them */
        GHashTable *by_id;     /* id → ManagedCollector */

        GArray *state_funcs; /* of PmStateFunc */
        guint next_state_func_id;
        ProcessManagerHeartbeatFunc heartbeat_func;
        gpointer heartbeat_data;

        GQueue deferred; /* of PmDeferred: callbacks due, run from an idle */
        GSource *deferred_idle;

        gboolean shutting_down;
        ProcessManagerShutdownFunc shutdown_func;
        gpointer shutdown_data;
        GSource *shutdown_idle;
};

/* A finished RPC: @mc is NULL when the instance went away meanwhile (the call was cancelled). */
typedef void (*PmCallDone)(ProcessManager *pm, ManagedCollector *mc, const DebRpcResponse *response,
                           const GError *error, gpointer data);

/* process-manager.c */
void pm_set_state(ManagedCollector *mc, CollectorState state, const char *reason);
/* Structured log line; NULL fields and a negative @duration_us are left out. */
void pm_log(GLogLevelFlags level, const char *collector_id, const char *operation,
            const char *correlation_id, gint64 duration_us, const char *fmt, ...) G_GNUC_PRINTF(6, 7);
void pm_maybe_finish_shutdown(ProcessManager *pm);
/*
 * Runs @callback from an idle, with copies of @response and @error: an
 * operation's callback never runs inside the call that made it due.
 */
void pm_defer_callback(ProcessManager *pm, ProcessManagerCallback callback, gpointer user_data,
                       const char *id, const DebRpcResponse *response, const GError *error);
void pm_collector_dropped(ManagedCollector *mc);
void pm_on_connected(ProcessManager *pm);

/* process-manager-bus.c */
/*
 * Connects the agent's client to the broker. @wait: until its heartbeat
 * subscription is live (at startup, before any loop runs); else in the
 * background, and pm_on_connected() starts what waits for it.
 */
gboolean pm_bus_connect(ProcessManager *pm, gboolean wait, GError **error);
/* Returns: %TRUE once the agent's client is welcomed: collectors may be spawned. */
gboolean pm_bus_is_ready(ProcessManager *pm);
void pm_bus_disconnect(ProcessManager *pm);
void pm_bus_publish_state(ManagedCollector *mc, CollectorState old_state, const char *reason);
/**
 * pm_bus_adopt:
 * @fd: (transfer full) a connection to the collector @mc
 * Returns: %FALSE with an error; @fd is closed then.
 */
gboolean pm_bus_adopt(ManagedCollector *mc, int fd, GError **error);
/* Forgets the adoption without closing anything: its close is not reported any more. */
void pm_adoption_detach(PmAdoption *adoption);
/**
 * pm_call:
 * Sends an RPC to @mc, audited under @actor. Returns: the call, owned by
 * @mc until @done ran, or %NULL with an error (recorded in the audit log too).
 */
PmCall *pm_call(ManagedCollector *mc, DebRpcOperation operation, const DebRpcRequest *payload,
                guint timeout_ms, const char *actor, PmCallDone done, gpointer data, GError **error);
/* Ends @call now: its done function runs with PROCESS_MANAGER_ERROR_CANCELLED semantics
 * (DEB_RPC_ERROR_CANCELLED). */
void pm_call_cancel(ProcessManager *pm, PmCall *call);

static inline void pm_timer_clear(GSource **timer)
{
        if (!*timer)
                return;
        g_source_destroy(*timer);
        g_clear_pointer(timer, g_source_unref);
}

static inline void pm_timer_set(GSource **timer, guint ms, GSourceFunc func, ManagedCollector *mc)
{
        pm_timer_clear(timer);
        *timer = g_timeout_source_new(ms);
        g_source_set_callback(*timer, func, mc, NULL);
        g_source_attach(*timer, NULL);
}

/* For a timer's own callback: forget the source, which GLib destroys when the callback returns REMOVE. */
static inline void pm_timer_fired(GSource **timer)
{
        g_clear_pointer(timer, g_source_unref);
}

static inline guint pm_seconds_ms(guint seconds)
{
        return seconds > G_MAXUINT / 1000 ? G_MAXUINT : seconds * 1000;
}

/* The user data of a call about mc's current process. */
static inline gpointer pm_generation_of(ManagedCollector *mc)
{
        return GUINT_TO_POINTER(mc->generation);
}

/* @data: what pm_generation_of() gave; Returns: %TRUE if that process is gone (or mc is). */
static inline gboolean pm_reply_is_stale(ManagedCollector *mc, gpointer data)
{
        return !mc || GPOINTER_TO_UINT(data) != mc->generation;
}

/* collector-supervisor.c */
ManagedCollector *supervisor_new(ProcessManager *pm, const char *id, const CollectorConfig *config);
void supervisor_free(ManagedCollector *mc);
void supervisor_start(ManagedCollector *mc, const char *actor, ProcessManagerCallback callback,
                      gpointer user_data);
void supervisor_stop(ManagedCollector *mc, StopCause cause, ProcessManagerStopMode mode, guint timeout_ms,
                     const char *reason, const char *actor, ProcessManagerCallback callback,
                     gpointer user_data);
void supervisor_on_heartbeat(ManagedCollector *mc, const Daemoneye__Eventbus__Heartbeat *heartbeat);
void supervisor_on_disconnected(ManagedCollector *mc);
void supervisor_on_exited(ManagedCollector *mc, GPid pid, int wait_status);
void supervisor_apply_config(ManagedCollector *mc, const CollectorConfig *config);
gboolean supervisor_is_idle(ManagedCollector *mc);
void supervisor_complete_waiters(ManagedCollector *mc, gboolean running, const DebRpcResponse *response,
                                 const GError *error);
/*
 * Something went wrong with the process. @permanent: restarting cannot help
 * (settings refused). @graceful: it can still answer a shutdown request.
 */
void supervisor_fail(ManagedCollector *mc, const char *reason, gboolean permanent, gboolean graceful);
void supervisor_set_running(ManagedCollector *mc, const DebRpcResponse *response);
void supervisor_send_start(ManagedCollector *mc);

G_END_DECLS
