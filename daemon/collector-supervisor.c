/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One collector instance's life, driven by its desired state (want_running)
 * and by what happens to its process:
 *
 *   spawn       backend launch → connection adopted into the broker →
 *               first heartbeat (its subscriptions are live then) → RPC Start
 *               with its settings → RUNNING
 *   stop        RPC GracefulShutdown → SIGTERM after graceful_shutdown_timeout_seconds
 *               → SIGKILL after force_shutdown_timeout_seconds → gone
 *   failure     the process exited or dropped its connection unasked, missed
 *               three heartbeats and the health check (collector-health.c),
 *               did not come up in time, or reported FAILED: it is ended (if still there), then
 *               restarted after restart_backoff_seconds × 2^(n-1), at most
 *               max_restart_attempts times in a row, or left FAILED
 *
 * Only after the process is gone does anything new start, so an instance
 * never has two processes. Past failures are forgotten once it has been
 * RUNNING for STABLE_RUN_SECONDS.
 */
#include <sys/wait.h>

#include <string.h>
#include <unistd.h>

#include "process-manager-private.h"

/* RUNNING this long makes the next failure count as the first again. */
#define STABLE_RUN_SECONDS 60
/* A closed connection waits this long for the process's exit, so the log says why it ended. */
#define DISCONNECT_GRACE_MS 250
/* Waits of DISCONNECT_GRACE_MS for the exit report of a process that is dead already. */
#define DISCONNECT_MAX_WAITS 40
#define BACKOFF_CAP_MS (3600u * 1000u)

static void spawn(ManagedCollector *mc, const char *reason);
static gboolean on_restart_timer(gpointer user_data);
static gboolean on_stop_timer(gpointer user_data);
static gboolean on_stable(gpointer user_data);

/* restart_backoff_seconds doubled per consecutive failure (1-based), capped at an hour. */
static guint backoff_ms(ManagedCollector *mc, guint failure)
{
        guint64 ms = pm_seconds_ms(mc->pm->config.restart_backoff_seconds);

        for (guint i = 1; i < failure && ms < BACKOFF_CAP_MS; i++)
                ms *= 2;
        return (guint)MIN(ms, BACKOFF_CAP_MS);
}

static const char *actor_of(ManagedCollector *mc)
{
        return mc->actor ? mc->actor : PROCESS_MANAGER_CLIENT_ID;
}

static void set_actor(ManagedCollector *mc, const char *actor)
{
        g_free(mc->actor);
        mc->actor = g_strdup(actor);
}

/** supervisor_complete_waiters: completes (from an idle) the waiters for RUNNING (@running) or for the
 * process's end. */
void supervisor_complete_waiters(ManagedCollector *mc, gboolean running, const DebRpcResponse *response,
                                 const GError *error)
{
        for (GList *l = mc->waiters.head; l;) {
                GList *next = l->next;
                PmWaiter *w = l->data;

                if (w->until_running == running) {
                        g_queue_delete_link(&mc->waiters, l);
                        pm_defer_callback(mc->pm, w->callback, w->user_data, mc->id, response, error);
                        g_free(w);
                }
                l = next;
        }
}

static void fail_waiters(ManagedCollector *mc, gboolean running, int code, const char *message)
{
        g_autoptr(GError) error = g_error_new_literal(PROCESS_MANAGER_ERROR, code, message);

        supervisor_complete_waiters(mc, running, NULL, error);
}

static void add_waiter(ManagedCollector *mc, gboolean until_running, ProcessManagerCallback callback,
                       gpointer user_data)
{
        PmWaiter *w;

        if (!callback)
                return;
        w = g_new0(PmWaiter, 1);
        w->callback = callback;
        w->user_data = user_data;
        w->until_running = until_running;
        g_queue_push_tail(&mc->waiters, w);
}

static void cancel_call(ManagedCollector *mc, PmCall **call)
{
        if (*call)
                pm_call_cancel(mc->pm, *call); /* its done function clears *call */
        *call = NULL;
}

/*
 * The process is gone (or never came): start again, wait for the backoff, or
 * settle in STOPPED (or FAILED, when @keep_failed and it failed).
 */
static void after_gone(ManagedCollector *mc, gboolean keep_failed)
{
        ProcessManager *pm = mc->pm;

        mc->exit_pending = FALSE;
        mc->stop_stage = 0;
        mc->running_since = 0;
        /* What a stop waits for happened, even if a start asked meanwhile follows now. */
        supervisor_complete_waiters(mc, FALSE, NULL, NULL);
        if (mc->want_running && !pm->shutting_down) {
                if (mc->restart_pending) {
                        pm_timer_set(&mc->restart_timer, mc->restart_delay_ms, on_restart_timer, mc);
                        return;
                }
                spawn(mc, "starting");
                return;
        }

        mc->restart_pending = FALSE;
        collector_backend_release(pm->backend, mc->id);
        if (!keep_failed || mc->state != COLLECTOR_STATE_FAILED)
                pm_set_state(mc, COLLECTOR_STATE_STOPPED, "stopped");
        fail_waiters(mc, TRUE, PROCESS_MANAGER_ERROR_CANCELLED,
                     mc->state == COLLECTOR_STATE_FAILED && mc->last_error
                             ? mc->last_error
                             : "stopped before it was running");
        if (mc->removed) {
                pm_collector_dropped(mc); /* frees mc */
                pm_maybe_finish_shutdown(pm);
                return;
        }
        pm_maybe_finish_shutdown(pm);
}

static gboolean on_restart_timer(gpointer user_data)
{
        ManagedCollector *mc = user_data;
        g_autofree char *reason = g_strdup_printf("automatic restart %u of %u", mc->failures,
                                                  mc->pm->config.max_restart_attempts);

        pm_timer_fired(&mc->restart_timer);
        mc->restart_pending = FALSE;
        spawn(mc, reason);
        return G_SOURCE_REMOVE;
}

static void terminate_now(ManagedCollector *mc)
{
        mc->stop_stage = 1;
        collector_backend_terminate(mc->pm->backend, mc->id);
        pm_timer_set(&mc->stop_timer, pm_seconds_ms(mc->pm->config.force_shutdown_timeout_seconds),
                     on_stop_timer, mc);
}

static gboolean on_stop_timer(gpointer user_data)
{
        ManagedCollector *mc = user_data;
        ProcessManager *pm = mc->pm;

        pm_timer_fired(&mc->stop_timer);
        if (mc->pid == 0)
                return G_SOURCE_REMOVE;
        if (mc->stop_stage == 0) {
                pm_log(G_LOG_LEVEL_WARNING, mc->id, NULL, NULL, -1,
                       "collector %s: pid %d still running %u s after the graceful shutdown request; "
                       "sending SIGTERM",
                       mc->id, (int)mc->pid, pm->config.graceful_shutdown_timeout_seconds);
                terminate_now(mc);
        } else if (mc->stop_stage == 1) {
                pm_log(G_LOG_LEVEL_WARNING, mc->id, NULL, NULL, -1,
                       "collector %s: pid %d still running %u s after SIGTERM; sending SIGKILL", mc->id,
                       (int)mc->pid, pm->config.force_shutdown_timeout_seconds);
                mc->stop_stage = 2;
                collector_backend_kill(pm->backend, mc->id);
        }
        return G_SOURCE_REMOVE;
}

static void on_stop_reply(ProcessManager *pm, ManagedCollector *mc, const DebRpcResponse *response,
                          const GError *error, gpointer data)
{
        if (pm_reply_is_stale(mc, data) || !error ||
            g_error_matches(error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED))
                return;
        /* It will not shut down by itself: no point waiting out the graceful timeout. */
        if (mc->pid > 0 && mc->stop_stage == 0) {
                pm_log(G_LOG_LEVEL_WARNING, mc->id, "graceful-shutdown", NULL, -1,
                       "collector %s: graceful shutdown failed (%s); sending SIGTERM", mc->id,
                       error->message);
                terminate_now(mc);
        }
}

/* The process is to end: what waits for it to come up or stay healthy is over. */
static void stop_watching(ManagedCollector *mc)
{
        mc->exit_pending = TRUE;
        cancel_call(mc, &mc->start_call);
        cancel_call(mc, &mc->health_call);
        pm_timer_clear(&mc->startup_timer);
        pm_timer_clear(&mc->watchdog_timer);
        pm_timer_clear(&mc->stable_timer);
        pm_timer_clear(&mc->disconnect_timer);
}

/*
 * Ends the process: gracefully (RPC first, SIGTERM after @timeout_ms or
 * graceful_shutdown_timeout_seconds) when it can still answer, else SIGTERM at once.
 */
static void begin_stop(ManagedCollector *mc, gboolean graceful, guint timeout_ms, const char *reason)
{
        ProcessManager *pm = mc->pm;
        guint graceful_ms =
                timeout_ms ? timeout_ms : pm_seconds_ms(pm->config.graceful_shutdown_timeout_seconds);
        g_autoptr(GError) error = NULL;

        stop_watching(mc);
        if (graceful && mc->adoption && mc->ready) {
                Daemoneye__Eventbus__ShutdownPayload shutdown = DAEMONEYE__EVENTBUS__SHUTDOWN_PAYLOAD__INIT;
                DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;

                shutdown.type = DAEMONEYE__EVENTBUS__SHUTDOWN_TYPE__SHUTDOWN_TYPE_GRACEFUL;
                shutdown.graceful_timeout_ms = graceful_ms;
                shutdown.reason = (char *)reason;
                request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_SHUTDOWN;
                request.shutdown = &shutdown;
                mc->stop_stage = 0;
                mc->stop_call = pm_call(
                        mc, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_GRACEFUL_SHUTDOWN, &request,
                        graceful_ms + 1000, actor_of(mc), on_stop_reply, pm_generation_of(mc), &error);
                if (mc->stop_call) {
                        pm_timer_set(&mc->stop_timer, graceful_ms, on_stop_timer, mc);
                        return;
                }
                pm_log(G_LOG_LEVEL_WARNING, mc->id, "graceful-shutdown", NULL, -1,
                       "collector %s: %s; sending SIGTERM", mc->id, error->message);
        }
        terminate_now(mc);
}

/** supervisor_set_running: the Start succeeded (or a heartbeat said RUNNING after IN_PROGRESS). */
void supervisor_set_running(ManagedCollector *mc, const DebRpcResponse *response)
{
        g_autofree char *reason = g_strdup_printf("running as pid %d", (int)mc->pid);

        mc->running_since = g_get_monotonic_time();
        pm_timer_set(&mc->stable_timer, pm_seconds_ms(STABLE_RUN_SECONDS), on_stable, mc);
        g_clear_pointer(&mc->last_error, g_free);
        pm_set_state(mc, COLLECTOR_STATE_RUNNING, reason);
        supervisor_complete_waiters(mc, TRUE, response, NULL);
}

static void on_start_reply(ProcessManager *pm, ManagedCollector *mc, const DebRpcResponse *response,
                           const GError *error, gpointer data)
{
        g_autofree char *reason = NULL;
        gboolean refused;

        if (pm_reply_is_stale(mc, data) || g_error_matches(error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED) ||
            mc->exit_pending)
                return;
        if (!error) {
                /* IN_PROGRESS: the heartbeat saying RUNNING finishes it (supervisor_on_heartbeat). */
                if (response->status == DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_SUCCESS)
                        supervisor_set_running(mc, response);
                return;
        }
        /* Settings it refuses will be refused again: restarting cannot help. */
        refused = g_error_matches(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT);
        reason = g_strdup_printf("start failed: %s", error->message);
        supervisor_fail(mc, reason, refused, TRUE);
}

static void add_override(GPtrArray *entries, const char *key, const char *value)
{
        Daemoneye__Eventbus__LifecyclePayload__ConfigOverridesEntry *e =
                g_new(Daemoneye__Eventbus__LifecyclePayload__ConfigOverridesEntry, 1);

        daemoneye__eventbus__lifecycle_payload__config_overrides_entry__init(e);
        e->key = (char *)key;
        e->value = (char *)value;
        g_ptr_array_add(entries, e);
}

/** supervisor_send_start: RPC Start with the group's settings, and what UpdateConfig changed since, as
 * config_overrides. */
void supervisor_send_start(ManagedCollector *mc)
{
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(g_free);
        g_autofree const char **keys = collector_config_get_setting_keys(mc->config);
        g_autoptr(GError) error = NULL;
        GHashTableIter iter;
        gpointer key, value;

        for (const char **k = keys; *k; k++)
                if (!g_hash_table_contains(mc->runtime_settings, *k))
                        add_override(entries, *k, g_hash_table_lookup(mc->config->settings, *k));
        g_hash_table_iter_init(&iter, mc->runtime_settings);
        while (g_hash_table_iter_next(&iter, &key, &value))
                add_override(entries, key, value);

        lifecycle.collector_id = mc->id;
        /* Unset: "" and the collector does not check it. */
        lifecycle.collector_type = mc->config->type ? mc->config->type : (char *)"";
        lifecycle.n_config_overrides = entries->len;
        lifecycle.config_overrides =
                (Daemoneye__Eventbus__LifecyclePayload__ConfigOverridesEntry **)entries->pdata;
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        mc->start_call = pm_call(mc, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_START, &request, 0,
                                 actor_of(mc), on_start_reply, pm_generation_of(mc), &error);
        if (!mc->start_call)
                supervisor_fail(mc, error->message, FALSE, TRUE);
}

static gboolean on_startup_timeout(gpointer user_data)
{
        ManagedCollector *mc = user_data;
        g_autofree char *reason =
                g_strdup_printf("pid %d did not connect and send a heartbeat within %u s", (int)mc->pid,
                                mc->pm->startup_timeout_seconds + mc->heartbeat_seconds);

        pm_timer_fired(&mc->startup_timer);
        supervisor_fail(mc, reason, FALSE, FALSE);
        return G_SOURCE_REMOVE;
}

/* The process runs and @fd is connected to it: adopt the connection, wait for its first heartbeat. */
static void launched(ManagedCollector *mc, int fd, GPid pid)
{
        ProcessManager *pm = mc->pm;
        g_autoptr(GError) error = NULL;

        mc->pid = pid;
        if (!pm_bus_adopt(mc, fd, &error)) {
                supervisor_fail(mc, error->message, FALSE, FALSE);
                return;
        }
        /* The collector has the broker's handshake deadline, and one heartbeat interval for its first
         * heartbeat. */
        pm_timer_set(&mc->startup_timer, pm_seconds_ms(pm->startup_timeout_seconds + mc->heartbeat_seconds),
                     on_startup_timeout, mc);
}

typedef struct {
        ProcessManager *pm;
        char *id;
        guint generation;
} PendingLaunch;

static void on_launched(CollectorBackend *backend, int fd, GPid pid, const GError *error, gpointer user_data)
{
        PendingLaunch *p = user_data;
        ManagedCollector *mc = g_hash_table_lookup(p->pm->by_id, p->id);

        if (!mc || mc->generation != p->generation || mc->state != COLLECTOR_STATE_STARTING ||
            mc->pid != 0) {
                /* Stopped (or gone) while it was being started: end what was started. */
                if (fd >= 0) {
                        close(fd);
                        collector_backend_terminate(backend, p->id);
                }
        } else if (error)
                supervisor_fail(mc, error->message, FALSE, FALSE);
        else
                launched(mc, fd, pid);
}

static void pending_launch_free(gpointer data)
{
        PendingLaunch *p = data;

        g_free(p->id);
        g_free(p);
}

static void spawn(ManagedCollector *mc, const char *reason)
{
        ProcessManager *pm = mc->pm;
        g_autofree char *socket_path = collector_config_get_socket_path(mc->config, pm->broker_socket_path);
        CollectorLaunch launch = {
                .id = mc->id,
                .config = mc->config,
                .socket_path = socket_path,
                .broker_socket_path = pm->broker_socket_path,
        };
        g_autoptr(GError) error = NULL;
        GPid pid = 0;
        int fd;

        pm_timer_clear(&mc->restart_timer);
        mc->restart_pending = FALSE;
        mc->ready = FALSE;
        mc->exit_pending = FALSE;
        mc->stop_stage = 0;
        mc->generation++;
        mc->heartbeat_seconds = mc->config->heartbeat_interval_seconds;
        pm_set_state(mc, COLLECTOR_STATE_STARTING, reason);

        /* systemd: the unit's start job is waited for without blocking; pid stays 0 meanwhile. */
        if (pm->backend->ops->launch_async) {
                PendingLaunch *p = g_new0(PendingLaunch, 1);

                p->pm = pm;
                p->id = g_strdup(mc->id);
                p->generation = mc->generation;
                pm->backend->ops->launch_async(pm->backend, &launch, on_launched, p, pending_launch_free);
                return;
        }
        fd = collector_backend_launch(pm->backend, &launch, &pid, &error);
        if (fd < 0) {
                supervisor_fail(mc, error->message, FALSE, FALSE);
                return;
        }
        launched(mc, fd, pid);
}

/** supervisor_fail: see process-manager-private.h. */
void supervisor_fail(ManagedCollector *mc, const char *reason, gboolean permanent, gboolean graceful)
{
        ProcessManager *pm = mc->pm;
        guint max = pm->config.max_restart_attempts;
        gboolean restart = !permanent && mc->want_running && pm->config.enable_auto_restart &&
                           !pm->shutting_down && mc->failures < max;
        g_autofree char *message = NULL;

        g_free(mc->last_error);
        mc->last_error = g_strdup(reason);
        if (restart) {
                /* The agent's own decision: its RPCs are audited as the agent's, not the last caller's. */
                set_actor(mc, NULL);
                mc->failures++;
                mc->restart_count++;
                mc->restart_pending = TRUE;
                mc->restart_delay_ms = backoff_ms(mc, mc->failures);
                message = g_strdup_printf("%s; restarting in %u ms (attempt %u of %u)", reason,
                                          mc->restart_delay_ms, mc->failures, max);
                pm_set_state(mc, COLLECTOR_STATE_STARTING, message);
        } else {
                message =
                        g_strdup_printf("%s%s", reason,
                                        permanent || !mc->want_running    ? ""
                                        : !pm->config.enable_auto_restart ? "; automatic restart is disabled"
                                        : pm->shutting_down               ? "; the agent is stopping"
                                                                          : "; no restart attempts left");
                mc->want_running = FALSE;
                mc->restart_pending = FALSE;
                g_free(mc->last_error);
                mc->last_error = g_strdup(message);
                pm_set_state(mc, COLLECTOR_STATE_FAILED, message);
                fail_waiters(mc, TRUE, PROCESS_MANAGER_ERROR_FAILED, message);
        }

        if (mc->pid > 0) {
                if (!mc->exit_pending)
                        begin_stop(mc, graceful, 0, message);
                return; /* continues in supervisor_on_exited() */
        }
        after_gone(mc, TRUE);
}

/** supervisor_on_exited: the backend reaped the process @pid. */
void supervisor_on_exited(ManagedCollector *mc, GPid pid, int wait_status)
{
        g_autofree char *how = NULL;

        if (pid != mc->pid)
                return;
        if (wait_status < 0)
                how = g_strdup("ended");
        else if (WIFEXITED(wait_status))
                how = g_strdup_printf("exited with status %d", WEXITSTATUS(wait_status));
        else if (WIFSIGNALED(wait_status))
                how = g_strdup_printf("was killed by signal %d (%s)", WTERMSIG(wait_status),
                                      g_strsignal(WTERMSIG(wait_status)));
        else
                how = g_strdup_printf("ended with wait status 0x%x", (guint)wait_status);

        mc->pid = 0;
        mc->ready = FALSE;
        mc->events_base = mc->events_published; /* the next process counts from 0 */
        pm_timer_clear(&mc->startup_timer);
        pm_timer_clear(&mc->stop_timer);
        pm_timer_clear(&mc->watchdog_timer);
        pm_timer_clear(&mc->stable_timer);
        pm_timer_clear(&mc->disconnect_timer);
        /*
         * Calls to it still in flight end on their own (the broker answers
         * for a target that closed), so the audit log has their real outcome;
         * their replies are stale for the next process.
         */
        mc->start_call = mc->health_call = mc->stop_call = NULL;

        if (!mc->exit_pending) {
                g_autofree char *reason = g_strdup_printf("pid %d %s unexpectedly", (int)pid, how);

                supervisor_fail(mc, reason, FALSE, FALSE);
                return;
        }
        pm_log(G_LOG_LEVEL_MESSAGE, mc->id, NULL, NULL, -1, "collector %s: pid %d %s", mc->id, (int)pid,
               how);
        after_gone(mc, TRUE);
}

/* %TRUE while @pid is a live process, not a zombie or gone (whose exit report is on its way). */
static gboolean process_is_live(GPid pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
        g_autofree char *stat = NULL;
        const char *end;

        if (!g_file_get_contents(path, &stat, NULL, NULL))
                return FALSE;
        end = strrchr(stat, ')');
        return end && end[1] == ' ' && end[2] != 'Z' && end[2] != 'X' && end[2] != '\0';
}

static gboolean on_disconnect_grace(gpointer user_data)
{
        ManagedCollector *mc = user_data;
        g_autofree char *reason = g_strdup_printf("pid %d closed its connection to the agent", (int)mc->pid);

        pm_timer_fired(&mc->disconnect_timer);
        if (mc->pid <= 0 || mc->exit_pending)
                return G_SOURCE_REMOVE;
        /* Dead already: its exit, with how it ended, is reported in a moment (a busy machine may take a
         * while). */
        if (!process_is_live(mc->pid) && ++mc->disconnect_waits < DISCONNECT_MAX_WAITS) {
                pm_timer_set(&mc->disconnect_timer, DISCONNECT_GRACE_MS, on_disconnect_grace, mc);
                return G_SOURCE_REMOVE;
        }
        supervisor_fail(mc, reason, FALSE, FALSE);
        return G_SOURCE_REMOVE;
}

/** supervisor_on_disconnected: the broker closed the adopted connection. */
void supervisor_on_disconnected(ManagedCollector *mc)
{
        mc->adoption = NULL;
        if (mc->pid == 0 || mc->exit_pending)
                return;
        /* Usually the process died: let its exit, reported in a moment, tell how. */
        mc->disconnect_waits = 0;
        pm_timer_set(&mc->disconnect_timer, DISCONNECT_GRACE_MS, on_disconnect_grace, mc);
}

static gboolean on_stable(gpointer user_data)
{
        ManagedCollector *mc = user_data;

        pm_timer_fired(&mc->stable_timer);
        mc->failures = 0;
        return G_SOURCE_REMOVE;
}

/** supervisor_start: see process_manager_start(). */
void supervisor_start(ManagedCollector *mc, const char *actor, ProcessManagerCallback callback,
                      gpointer user_data)
{
        set_actor(mc, actor);
        mc->want_running = TRUE;
        mc->failures = 0; /* an administrator's start gets a fresh set of restart attempts */
        add_waiter(mc, TRUE, callback, user_data);
        if (mc->state == COLLECTOR_STATE_RUNNING || mc->state == COLLECTOR_STATE_PAUSED) {
                supervisor_complete_waiters(mc, TRUE, NULL, NULL);
                return;
        }
        if (!pm_bus_is_ready(mc->pm))
                return; /* pm_on_connected() starts it */
        if (mc->pid > 0) {
                /* Starting already, or stopping: its exit handler starts it again (want_running). */
                if (mc->exit_pending && mc->state != COLLECTOR_STATE_STARTING)
                        pm_set_state(mc, COLLECTOR_STATE_STARTING, "start requested while stopping");
                mc->restart_pending = FALSE;
                return;
        }
        spawn(mc, mc->restart_pending ? "start requested during the restart backoff" : "start requested");
}

/* Ends the process now with SIGKILL (an emergency stop), or escalates a stop under way. */
static void kill_now(ManagedCollector *mc)
{
        stop_watching(mc);
        mc->stop_stage = 2;
        pm_timer_clear(&mc->stop_timer);
        collector_backend_kill(mc->pm->backend, mc->id);
}

/** supervisor_stop: see process_manager_stop_with() (REQUESTED) and process_manager_restart() (RESTART). */
void supervisor_stop(ManagedCollector *mc, StopCause cause, ProcessManagerStopMode mode, guint timeout_ms,
                     const char *reason, const char *actor, ProcessManagerCallback callback,
                     gpointer user_data)
{
        gboolean restart = cause == STOP_CAUSE_RESTART;

        if (!reason)
                reason = restart ? "restart requested" : "stop requested";
        set_actor(mc, actor);
        add_waiter(mc, restart, callback, user_data);
        mc->want_running = restart;
        mc->restart_pending = FALSE;
        pm_timer_clear(&mc->restart_timer);
        if (restart)
                mc->failures = 0;
        else
                fail_waiters(mc, TRUE, PROCESS_MANAGER_ERROR_CANCELLED,
                             "stop requested before it was running");

        if (mc->pid == 0) {
                after_gone(mc, FALSE); /* a stop clears FAILED */
                return;
        }
        pm_set_state(mc, COLLECTOR_STATE_STOPPING, reason);
        /* A stop already under way goes on, unless this one asks for more force. */
        if (mode == PROCESS_MANAGER_STOP_KILL && mc->stop_stage < 2) {
                pm_log(G_LOG_LEVEL_MESSAGE, mc->id, NULL, NULL, -1,
                       "collector %s: emergency stop (%s): SIGKILL", mc->id, reason);
                kill_now(mc);
        } else if (!mc->exit_pending)
                begin_stop(mc, mode == PROCESS_MANAGER_STOP_GRACEFUL, timeout_ms, reason);
        else if (mode == PROCESS_MANAGER_STOP_TERMINATE && mc->stop_stage == 0)
                terminate_now(mc);
}

/** supervisor_is_idle: Returns: %TRUE when no process runs and none is about to. */
gboolean supervisor_is_idle(ManagedCollector *mc)
{
        return mc->pid == 0 && !mc->restart_timer;
}

/** supervisor_apply_config: a reload changed the group; settings go to a running collector at once. */
void supervisor_apply_config(ManagedCollector *mc, const CollectorConfig *config)
{
        CollectorConfig *old = mc->config;
        g_autofree const char **keys = collector_config_get_setting_keys(config);

        for (const char **k = keys; *k; k++)
                if (g_strcmp0(g_hash_table_lookup(old->settings, *k),
                              g_hash_table_lookup(config->settings, *k)))
                        g_hash_table_remove(mc->runtime_settings, *k); /* the file speaks again */
        mc->config = collector_config_copy(config);
        collector_config_free(old);
}

/** supervisor_new: Returns: (transfer full) a STOPPED instance of @config. */
ManagedCollector *supervisor_new(ProcessManager *pm, const char *id, const CollectorConfig *config)
{
        ManagedCollector *mc = g_new0(ManagedCollector, 1);

        mc->pm = pm;
        mc->id = g_strdup(id);
        mc->config = collector_config_copy(config);
        mc->runtime_settings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        mc->state = COLLECTOR_STATE_STOPPED;
        g_queue_init(&mc->waiters);
        return mc;
}

/** supervisor_free: cancels its calls and waiters; a process still running is the backend's to end. */
void supervisor_free(ManagedCollector *mc)
{
        pm_timer_clear(&mc->restart_timer);
        pm_timer_clear(&mc->startup_timer);
        pm_timer_clear(&mc->stop_timer);
        pm_timer_clear(&mc->watchdog_timer);
        pm_timer_clear(&mc->stable_timer);
        pm_timer_clear(&mc->disconnect_timer);
        while (mc->calls)
                pm_call_cancel(mc->pm, mc->calls->data);
        mc->start_call = mc->stop_call = mc->health_call = NULL;
        if (mc->adoption)
                pm_adoption_detach(mc->adoption);
        fail_waiters(mc, TRUE, PROCESS_MANAGER_ERROR_CANCELLED, "the agent is exiting");
        fail_waiters(mc, FALSE, PROCESS_MANAGER_ERROR_CANCELLED, "the agent is exiting");
        collector_config_free(mc->config);
        g_hash_table_unref(mc->runtime_settings);
        g_free(mc->actor);
        g_free(mc->last_error);
        g_free(mc->id);
        g_free(mc);
}
