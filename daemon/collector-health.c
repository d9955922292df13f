/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Is the collector alive? Its heartbeats on control.health.heartbeat.<id>
 * say so; three missed ones make the agent ask with a HealthCheck RPC, and
 * no answer to that makes it UNRESPONSIVE (then restarted, with
 * enable_auto_restart). A heartbeat also carries the collector's own state,
 * which the agent follows (paused or resumed behind its back, FAILED).
 */
#include "process-manager-private.h"

#define MISSED_HEARTBEATS 3

static void on_watchdog_reply(ProcessManager *pm, ManagedCollector *mc, const DebRpcResponse *response,
                              const GError *error, gpointer data);

static gboolean on_watchdog(gpointer user_data)
{
        ManagedCollector *mc = user_data;
        gint64 silent_s = (g_get_monotonic_time() - mc->last_heartbeat_mono_us) / G_USEC_PER_SEC;
        g_autoptr(GError) error = NULL;

        pm_timer_fired(&mc->watchdog_timer);
        if (mc->pid == 0 || mc->exit_pending || mc->health_call)
                return G_SOURCE_REMOVE;
        pm_log(G_LOG_LEVEL_WARNING, mc->id, "health-check", NULL, -1,
               "collector %s: no heartbeat for %" G_GINT64_FORMAT " s (%d missed); sending a health check",
               mc->id, silent_s, MISSED_HEARTBEATS);
        mc->health_call =
                pm_call(mc, DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_HEALTH_CHECK, NULL, 0,
                        PROCESS_MANAGER_CLIENT_ID, on_watchdog_reply, pm_generation_of(mc), &error);
        if (!mc->health_call)
                on_watchdog_reply(mc->pm, mc, NULL, error, pm_generation_of(mc));
        return G_SOURCE_REMOVE;
}

static void watchdog_arm(ManagedCollector *mc)
{
        /* A quarter interval of slack, so a third heartbeat that is merely late is not "missed". */
        guint ms = pm_seconds_ms(mc->heartbeat_seconds);

        pm_timer_set(&mc->watchdog_timer, ms * MISSED_HEARTBEATS + ms / 4, on_watchdog, mc);
}

static void on_watchdog_reply(ProcessManager *pm, ManagedCollector *mc, const DebRpcResponse *response,
                              const GError *error, gpointer data)
{
        g_autofree char *reason = NULL;

        if (pm_reply_is_stale(mc, data) || g_error_matches(error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED) ||
            mc->exit_pending)
                return;
        if (response) {
                /* Any answer, even an error, proves it alive: its heartbeats were lost, not it. */
                pm_log(G_LOG_LEVEL_MESSAGE, mc->id, "health-check", NULL, -1,
                       "collector %s: answered the health check without heartbeats", mc->id);
                watchdog_arm(mc);
                return;
        }
        reason = g_strdup_printf("pid %d: no heartbeat for %u s and no answer to the health check (%s)",
                                 (int)mc->pid, MISSED_HEARTBEATS * mc->heartbeat_seconds,
                                 error ? error->message : "not sent");
        pm_set_state(mc, COLLECTOR_STATE_UNRESPONSIVE, reason);
        /* Without automatic restarts it stays UNRESPONSIVE, for an administrator to decide; a heartbeat
         * revives it. */
        if (pm->config.enable_auto_restart)
                supervisor_fail(mc, reason, FALSE, FALSE);
}

/** supervisor_on_heartbeat: a heartbeat on control.health.heartbeat.<id>. */
void supervisor_on_heartbeat(ManagedCollector *mc, const Daemoneye__Eventbus__Heartbeat *heartbeat)
{
        if (mc->pid == 0 || mc->exit_pending || !mc->adoption)
                return;
        /*
         * A new process counts from 1. Anything else before that is a late
         * heartbeat of the previous process (restarted at once): taking it for
         * the new one's would send Start before the new one subscribed.
         */
        if (!mc->ready && heartbeat->sequence != 1)
                return;
        mc->last_heartbeat_real_us =
                heartbeat->timestamp_us ? (gint64)heartbeat->timestamp_us : g_get_real_time();
        mc->last_heartbeat_mono_us = g_get_monotonic_time();
        mc->events_published = mc->events_base + heartbeat->events_published;
        watchdog_arm(mc);
        if (mc->pm->heartbeat_func)
                mc->pm->heartbeat_func(mc->pm, mc->id, mc->pm->heartbeat_data);

        if (!mc->ready) {
                /* Its subscriptions went to the broker before this: requests reach it now. */
                mc->ready = TRUE;
                pm_timer_clear(&mc->startup_timer);
                supervisor_send_start(mc);
                return;
        }
        if (mc->start_call)
                return;
        switch (heartbeat->status) {
        case DAEMONEYE__EVENTBUS__COLLECTOR_STATUS__COLLECTOR_STATUS_RUNNING:
                /* STARTING: the Start answered IN_PROGRESS; PAUSED: resumed by someone else, or before our
                 * reply. */
                if (mc->state == COLLECTOR_STATE_STARTING)
                        supervisor_set_running(mc, NULL);
                else if (mc->state == COLLECTOR_STATE_PAUSED || mc->state == COLLECTOR_STATE_UNRESPONSIVE)
                        pm_set_state(mc, COLLECTOR_STATE_RUNNING, "the collector reports it is running");
                break;
        case DAEMONEYE__EVENTBUS__COLLECTOR_STATUS__COLLECTOR_STATUS_PAUSED:
                if (mc->state == COLLECTOR_STATE_RUNNING || mc->state == COLLECTOR_STATE_UNRESPONSIVE)
                        pm_set_state(mc, COLLECTOR_STATE_PAUSED, "the collector reports it is paused");
                break;
        case DAEMONEYE__EVENTBUS__COLLECTOR_STATUS__COLLECTOR_STATUS_FAILED:
                if (mc->state == COLLECTOR_STATE_RUNNING || mc->state == COLLECTOR_STATE_PAUSED ||
                    mc->state == COLLECTOR_STATE_UNRESPONSIVE)
                        supervisor_fail(mc, "the collector reports it failed", FALSE, TRUE);
                break;
        default:
                if (mc->state == COLLECTOR_STATE_UNRESPONSIVE)
                        pm_set_state(mc, COLLECTOR_STATE_RUNNING, "heartbeats again");
                break;
        }
}
