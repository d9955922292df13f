/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ending the collector.
 *
 * Graceful (GRACEFUL_SHUTDOWN, SIGTERM, SIGINT, a lost broker connection):
 * wait for a lifecycle operation in progress, stop collecting, run the
 * cleanup hooks in order, answer, end. All of it within the graceful timeout;
 * past it the request is answered TIMEOUT and, with force_after_timeout,
 * the collector ends at once (DCC_EXIT_FORCED), else it keeps waiting for
 * the hooks (the agent's SIGKILL is the backstop).
 *
 * Force (FORCE_SHUTDOWN, a second signal): answer and end at once; no hook runs.
 */
#include <signal.h>

#include "dcc-private.h"

struct _DccShutdown {
        DccRequest *request; /* (nullable) NULL for signals and a lost connection */
        guint timeout_ms;
        gboolean force_after_timeout;
        DccExitStatus exit_status; /* when everything went well */
        GSource *timer;
        gboolean waiting_idle;
        guint next_hook;
        GString *failures; /* "stop: …; cleanup hook 2: …" */
};

void dcc_shutdown_free(DccShutdown *shutdown)
{
        if (!shutdown)
                return;
        dcc_source_clear(&shutdown->timer);
        g_clear_pointer(&shutdown->request, dcc_request_unref);
        g_string_free(shutdown->failures, TRUE);
        g_free(shutdown);
}

gboolean dcc_shutdown_in_progress(DccCollector *collector)
{
        return collector->shutdown != NULL;
}

static void shutdown_complete(DccCollector *collector)
{
        DccShutdown *s = collector->shutdown;
        DccExitStatus status = s->exit_status;

        dcc_collector_set_state(collector, DCC_STATE_STOPPED);
        if (s->failures->len > 0) {
                dcc_request_fail(s->request, DCC_STATUS(ERROR), DCC_KIND(EXECUTION_ERROR), DCC_CATEGORY(INTERNAL),
                                 "shutdown.cleanup_failed", NULL, NULL, "collector %s: graceful shutdown: %s",
                                 collector->id, s->failures->str);
                if (!s->request)
                        dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "graceful shutdown: %s",
                                          s->failures->str);
                if (status == DCC_EXIT_SHUTDOWN)
                        status = DCC_EXIT_FAILURE;
        } else {
                dcc_request_reply(s->request, DCC_STATUS(SUCCESS), NULL, NULL);
        }
        dcc_collector_log(collector, NULL, G_LOG_LEVEL_INFO, "shut down (exit status %d)", status);
        dcc_collector_finish(collector, status);
}

static void shutdown_run_next_hook(DccCollector *collector);

static void on_hook_done(DccCollector *collector, const GError *error, gpointer data)
{
        DccShutdown *s = collector->shutdown;
        guint index = GPOINTER_TO_UINT(data);

        if (error) {
                collector->error_count++;
                g_string_append_printf(s->failures, "%scleanup hook %u: %s", s->failures->len > 0 ? "; " : "",
                                       index + 1, error->message);
        }
        shutdown_run_next_hook(collector);
}

static void shutdown_run_next_hook(DccCollector *collector)
{
        DccShutdown *s = collector->shutdown;
        const DccOperationFunc *info_hooks = collector->info->cleanup_hooks;
        guint n_info = 0;
        guint index;

        while (info_hooks && info_hooks[n_info])
                n_info++;
        if (s->next_hook >= n_info + collector->cleanup_hooks->len) {
                shutdown_complete(collector);
                return;
        }
        index = s->next_hook++;
        if (index < n_info) {
                dcc_step_run(collector, "cleanup", info_hooks[index], collector->user_data, s->request, on_hook_done,
                             GUINT_TO_POINTER(index), NULL);
        } else {
                const DccHook *hook = &g_array_index(collector->cleanup_hooks, DccHook, index - n_info);

                dcc_step_run(collector, "cleanup", hook->func, hook->user_data, s->request, on_hook_done,
                             GUINT_TO_POINTER(index), NULL);
        }
}

static void on_stop_done(DccCollector *collector, const GError *error, gpointer data)
{
        DccShutdown *s = collector->shutdown;

        if (error) {
                collector->error_count++;
                g_string_append_printf(s->failures, "stop: %s", error->message);
        }
        shutdown_run_next_hook(collector);
}

static void shutdown_proceed(DccCollector *collector)
{
        DccState state = collector->state;

        dcc_collector_set_state(collector, DCC_STATE_STOPPING);
        if (state == DCC_STATE_RUNNING || state == DCC_STATE_PAUSED || state == DCC_STATE_FAILED)
                dcc_step_run(collector, "stop", collector->info->stop, collector->user_data,
                             collector->shutdown->request, on_stop_done, NULL, NULL);
        else
                shutdown_run_next_hook(collector);
}

static gboolean shutdown_timeout_cb(gpointer user_data)
{
        DccCollector *collector = user_data;
        DccShutdown *s = collector->shutdown;
        g_autofree char *timeout = g_strdup_printf("%u", s->timeout_ms);
        g_autofree char *context = dcc_json_string_pairs("graceful_timeout_ms", timeout, NULL);

        g_clear_pointer(&s->timer, g_source_unref);
        if (dcc_collector_is_finished(collector))
                return G_SOURCE_REMOVE;
        collector->error_count++;
        dcc_request_fail(s->request, DCC_STATUS(TIMEOUT), DCC_KIND(TIMEOUT), DCC_CATEGORY(TIMEOUT), "shutdown.timeout",
                         context, NULL, "collector %s: graceful shutdown: cleanup did not finish within %u ms; %s",
                         collector->id, s->timeout_ms,
                         s->force_after_timeout ? "exiting anyway" : "still waiting for it");
        if (s->force_after_timeout) {
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING,
                                  "cleanup did not finish within %u ms: exiting without it", s->timeout_ms);
                dcc_collector_finish(collector, DCC_EXIT_FORCED);
        }
        return G_SOURCE_REMOVE;
}

static void shutdown_begin(DccCollector *collector, DccRequest *request, guint timeout_ms,
                           gboolean force_after_timeout, DccExitStatus exit_status, const char *reason)
{
        DccShutdown *s = g_new0(DccShutdown, 1);

        s->request = request ? dcc_request_ref(request) : NULL;
        s->timeout_ms = timeout_ms;
        s->force_after_timeout = force_after_timeout;
        s->exit_status = exit_status;
        s->failures = g_string_new(NULL);
        s->timer = g_timeout_source_new(timeout_ms);
        g_source_set_callback(s->timer, shutdown_timeout_cb, collector, NULL);
        g_source_attach(s->timer, collector->context);
        collector->shutdown = s;
        dcc_collector_log(collector, request, G_LOG_LEVEL_INFO, "graceful shutdown (%s), within %u ms", reason,
                          timeout_ms);
        if (collector->busy_with) {
                /* Stopping under a start or pause in progress would hand stop a half-done state. */
                s->waiting_idle = TRUE;
                return;
        }
        shutdown_proceed(collector);
}

void dcc_shutdown_notify_idle(DccCollector *collector)
{
        DccShutdown *s = collector->shutdown;

        if (!s || !s->waiting_idle || collector->busy_with || dcc_collector_is_finished(collector))
                return;
        s->waiting_idle = FALSE;
        shutdown_proceed(collector);
}

void dcc_shutdown_handle(DccCollector *collector, DccRequest *request)
{
        const Daemoneye__Eventbus__ShutdownPayload *payload = request->message->shutdown;
        const char *reason = payload->reason[0] ? payload->reason : "no reason given";

        if (request->operation == DCC_OP(FORCE_SHUTDOWN)) {
                dcc_collector_log(collector, request, G_LOG_LEVEL_INFO, "force shutdown (%s)", reason);
                dcc_request_reply(request, DCC_STATUS(SUCCESS), NULL, NULL);
                dcc_collector_finish(collector, DCC_EXIT_FORCED);
                return;
        }
        if (collector->shutdown) {
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_OPERATION), DCC_CATEGORY(CONFIGURATION),
                                 "state.shutting_down", NULL, NULL, "collector %s: a shutdown is already in progress",
                                 collector->id);
                return;
        }
        shutdown_begin(collector, request, payload->graceful_timeout_ms ? payload->graceful_timeout_ms
                                                                        : collector->graceful_timeout_ms,
                       payload->force_after_timeout, DCC_EXIT_SHUTDOWN, reason);
}

void dcc_shutdown_begin_signal(DccCollector *collector, int signum)
{
        g_autofree char *reason = signum == SIGTERM  ? g_strdup("SIGTERM")
                                  : signum == SIGINT ? g_strdup("SIGINT")
                                                     : g_strdup_printf("signal %d", signum);

        if (dcc_collector_is_finished(collector))
                return;
        if (collector->shutdown) {
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "%s during shutdown: exiting at once",
                                  reason);
                dcc_collector_finish(collector, DCC_EXIT_FORCED);
                return;
        }
        /* Under systemd, SIGKILL follows TimeoutStopSec= anyway: better to end on our own terms. */
        shutdown_begin(collector, NULL, collector->graceful_timeout_ms, TRUE, DCC_EXIT_SHUTDOWN, reason);
}

void dcc_shutdown_begin_disconnected(DccCollector *collector)
{
        if (dcc_collector_is_finished(collector) || collector->shutdown)
                return;
        shutdown_begin(collector, NULL, collector->graceful_timeout_ms, TRUE, DCC_EXIT_DISCONNECTED,
                       "lost the broker connection");
}
