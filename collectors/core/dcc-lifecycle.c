/* SPDX-License-Identifier: Apache-2.0 */
/*
 * START, STOP, RESTART, PAUSE and RESUME: each runs the collector's callbacks
 * as steps through the states of dcc-state.c, one lifecycle operation at a
 * time, and answers with the state reached.
 *
 * Deadlines: a START, STOP or RESTART answered TIMEOUT leaves the collector
 * FAILED at once (the transition did not happen in time; a later completion
 * does not undo that, and the next start or restart calls stop first). A
 * PAUSE or RESUME answered TIMEOUT still takes effect if its callback
 * completes later, since it leaves nothing half done.
 */
#include <string.h>
#include <unistd.h>

#include "dcc-private.h"

typedef struct {
        gint ref_count;
        DccRequest *request; /* (nullable) NULL for --autostart */
        int operation;
        DccConfigPlan *overrides; /* (nullable) START/RESTART config_overrides, checked */
} LifecycleRun;

static LifecycleRun *run_ref(LifecycleRun *run)
{
        run->ref_count++;
        return run;
}

static void run_unref(gpointer data)
{
        LifecycleRun *run = data;

        if (--run->ref_count > 0)
                return;
        g_clear_pointer(&run->request, dcc_request_unref);
        g_clear_pointer(&run->overrides, dcc_config_plan_free);
        g_free(run);
}

static gboolean run_expired(LifecycleRun *run)
{
        return run->request && run->request->expired;
}

static void lifecycle_reply_success(DccCollector *collector, DccRequest *request)
{
        Daemoneye__Eventbus__LifecycleResult result = DAEMONEYE__EVENTBUS__LIFECYCLE_RESULT__INIT;

        result.status = (Daemoneye__Eventbus__CollectorStatus)collector->state;
        /* The process answering is running whatever its collection state. */
        result.pid = (uint32_t)getpid();
        dcc_request_reply(request, DCC_STATUS(SUCCESS), NULL, &result.base);
}

/* The run is over: the next lifecycle operation, or a waiting shutdown, may go. */
static void lifecycle_end(DccCollector *collector)
{
        collector->busy_with = NULL;
        dcc_shutdown_notify_idle(collector);
}

static void lifecycle_expire(DccCollector *collector, DccRequest *request)
{
        if (collector->state == DCC_STATE_STARTING || collector->state == DCC_STATE_STOPPING)
                dcc_collector_set_state(collector, DCC_STATE_FAILED);
}

static void on_start_done(DccCollector *collector, const GError *error, gpointer data)
{
        LifecycleRun *run = data;

        if (run_expired(run)) {
                dcc_collector_log(collector, run->request, G_LOG_LEVEL_INFO,
                                  "start completed after its deadline; the collector stays %s",
                                  dcc_state_to_string(collector->state));
        } else if (error) {
                dcc_collector_set_state(collector, DCC_STATE_FAILED);
                dcc_request_fail_error(run->request, "collector.start_failed", NULL, error);
                if (!run->request)
                        dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "start failed: %s",
                                          error->message);
        } else if (collector->state != DCC_STATE_STARTING) {
                /* dcc_collector_fail() was called while the start callback ran. */
                dcc_request_fail(run->request, DCC_STATUS(ERROR), DCC_KIND(EXECUTION_ERROR),
                                 DCC_CATEGORY(INTERNAL), "collector.start_failed", NULL, NULL,
                                 "collector %s: start: the collector failed while starting", collector->id);
        } else {
                dcc_collector_set_state(collector, DCC_STATE_RUNNING);
                lifecycle_reply_success(collector, run->request);
        }
        lifecycle_end(collector);
}

static void start_phase(DccCollector *collector, LifecycleRun *run)
{
        dcc_collector_set_state(collector, DCC_STATE_STARTING);
        /* Overrides are settings "for this run": in force before the start callback reads them. */
        if (run->overrides)
                dcc_config_store_commit(collector->config, run->overrides);
        dcc_step_run(collector, "start", collector->info->start, collector->user_data, run->request, on_start_done,
                     run_ref(run), run_unref);
}

static void on_stop_done(DccCollector *collector, const GError *error, gpointer data)
{
        LifecycleRun *run = data;

        if (run_expired(run)) {
                dcc_collector_log(collector, run->request, G_LOG_LEVEL_INFO,
                                  "stop completed after its deadline; the collector stays %s",
                                  dcc_state_to_string(collector->state));
                lifecycle_end(collector);
                return;
        }
        if (error) {
                dcc_collector_set_state(collector, DCC_STATE_FAILED);
                dcc_request_fail_error(run->request, "collector.stop_failed", NULL, error);
                lifecycle_end(collector);
                return;
        }
        if (run->operation == DCC_OP(STOP)) {
                dcc_collector_set_state(collector, DCC_STATE_STOPPED);
                lifecycle_reply_success(collector, run->request);
                lifecycle_end(collector);
                return;
        }
        /* RESTART, or START from FAILED: stopped cleanly, now start. */
        start_phase(collector, run);
}

static void stop_phase(DccCollector *collector, LifecycleRun *run)
{
        dcc_collector_set_state(collector, DCC_STATE_STOPPING);
        dcc_step_run(collector, "stop", collector->info->stop, collector->user_data, run->request, on_stop_done,
                     run_ref(run), run_unref);
}

static void on_pause_resume_done(DccCollector *collector, const GError *error, gpointer data)
{
        LifecycleRun *run = data;
        gboolean pause = run->operation == DCC_OP(PAUSE);

        if (error) {
                dcc_request_fail_error(run->request, pause ? "collector.pause_failed" : "collector.resume_failed",
                                       NULL, error);
        } else {
                if (collector->state == (pause ? DCC_STATE_RUNNING : DCC_STATE_PAUSED))
                        dcc_collector_set_state(collector, pause ? DCC_STATE_PAUSED : DCC_STATE_RUNNING);
                lifecycle_reply_success(collector, run->request);
        }
        lifecycle_end(collector);
}

static void lifecycle_begin(DccCollector *collector, LifecycleRun *run)
{
        const DccCollectorInfo *info = collector->info;

        collector->busy_with = dcc_rpc_operation_to_string(run->operation);
        switch (run->operation) {
        case DCC_OP(START):
                /* A FAILED collector may hold half of a run: stop releases it first. */
                if (collector->state == DCC_STATE_FAILED)
                        stop_phase(collector, run);
                else
                        start_phase(collector, run);
                break;
        case DCC_OP(RESTART):
                if (collector->state == DCC_STATE_STOPPED)
                        start_phase(collector, run);
                else
                        stop_phase(collector, run);
                break;
        case DCC_OP(STOP):
                stop_phase(collector, run);
                break;
        case DCC_OP(PAUSE):
                dcc_step_run(collector, "pause", info->pause, collector->user_data, run->request,
                             on_pause_resume_done, run_ref(run), run_unref);
                break;
        case DCC_OP(RESUME):
                dcc_step_run(collector, "resume", info->resume, collector->user_data, run->request,
                             on_pause_resume_done, run_ref(run), run_unref);
                break;
        default:
                g_assert_not_reached();
        }
}

/* Checks START/RESTART config_overrides like any other settings; Returns: FALSE when answered. */
static gboolean lifecycle_check_overrides(DccCollector *collector, DccRequest *request, DccConfigPlan **out)
{
        const Daemoneye__Eventbus__LifecyclePayload *payload = request->message->lifecycle;
        g_autoptr(DccConfigPlan) plan = NULL;
        g_autofree char *context = NULL;
        g_autofree char *summary = NULL;

        if (payload->n_config_overrides == 0)
                return TRUE;
        if (request->operation != DCC_OP(START) && request->operation != DCC_OP(RESTART)) {
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                                 DCC_CATEGORY(CONFIGURATION), "rpc.invalid_payload", NULL, NULL,
                                 "collector %s: %s takes no config_overrides (only start and restart do)",
                                 collector->id, dcc_rpc_operation_to_string(request->operation));
                return FALSE;
        }
        plan = dcc_config_plan_new();
        for (gsize i = 0; i < payload->n_config_overrides; i++)
                dcc_config_plan_add_string(collector->config, plan, payload->config_overrides[i]->key,
                                           payload->config_overrides[i]->value, FALSE, TRUE);
        if (plan->rejected->len > 0) {
                summary = dcc_config_plan_describe_rejections(plan, &context);
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                                 DCC_CATEGORY(CONFIGURATION), "config.invalid", context, NULL,
                                 "collector %s: %s: config_overrides rejected: %s", collector->id,
                                 dcc_rpc_operation_to_string(request->operation), summary);
                return FALSE;
        }
        *out = g_steal_pointer(&plan);
        return TRUE;
}

void dcc_lifecycle_handle(DccCollector *collector, DccRequest *request)
{
        const Daemoneye__Eventbus__LifecyclePayload *payload = request->message->lifecycle;
        const char *name = dcc_rpc_operation_to_string(request->operation);
        g_autoptr(DccConfigPlan) overrides = NULL;
        LifecycleRun *run;

        if (payload->collector_id[0] != '\0' && strcmp(payload->collector_id, collector->id) != 0) {
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                                 DCC_CATEGORY(CONFIGURATION), "rpc.invalid_payload", NULL, NULL,
                                 "collector %s: %s: the payload is for collector '%s'", collector->id, name,
                                 payload->collector_id);
                return;
        }
        if (payload->collector_type[0] != '\0' && collector->info->type &&
            strcmp(payload->collector_type, collector->info->type) != 0) {
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT),
                                 DCC_CATEGORY(CONFIGURATION), "rpc.invalid_payload", NULL, NULL,
                                 "collector %s: %s: the payload is for type '%s', this collector is a %s",
                                 collector->id, name, payload->collector_type, collector->info->type);
                return;
        }
        if ((request->operation == DCC_OP(PAUSE) || request->operation == DCC_OP(RESUME)) &&
            !dcc_collector_supports_pause(collector)) {
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_OPERATION),
                                 DCC_CATEGORY(CONFIGURATION), "rpc.unsupported", NULL, NULL,
                                 "collector %s: %s is not supported by this collector", collector->id, name);
                return;
        }
        if (!lifecycle_check_overrides(collector, request, &overrides))
                return;
        if (collector->busy_with) {
                g_autofree char *context =
                        dcc_json_string_pairs("state", dcc_state_to_string(collector->state), "busy_with",
                                              collector->busy_with, NULL);

                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_OPERATION),
                                 DCC_CATEGORY(CONFIGURATION), "state.busy", context, NULL,
                                 "collector %s: %s refused: %s is still in progress", collector->id, name,
                                 collector->busy_with);
                return;
        }

        switch (dcc_state_transition(collector->state, request->operation)) {
        case DCC_TRANSITION_REFUSE: {
                g_autofree char *context = dcc_json_string_pairs(
                        "state", dcc_state_to_string(collector->state), "operation", name, NULL);

                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_OPERATION),
                                 DCC_CATEGORY(CONFIGURATION), "state.invalid_transition", context, NULL,
                                 "collector %s: %s is not allowed while %s", collector->id, name,
                                 dcc_state_to_string(collector->state));
                return;
        }
        case DCC_TRANSITION_NOOP:
                /* A retried START is fine; one asking for other settings than those in force is not. */
                if (overrides && (overrides->live->len > 0 || overrides->deferred->len > 0)) {
                        dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_OPERATION),
                                         DCC_CATEGORY(CONFIGURATION), "state.invalid_transition", NULL, NULL,
                                         "collector %s: start: already running with other settings than "
                                         "config_overrides asks for; use update_config or restart",
                                         collector->id);
                        return;
                }
                lifecycle_reply_success(collector, request);
                return;
        case DCC_TRANSITION_RUN:
                break;
        }

        run = g_new0(LifecycleRun, 1);
        run->ref_count = 1;
        run->request = dcc_request_ref(request);
        run->operation = request->operation;
        run->overrides = g_steal_pointer(&overrides);
        if (request->operation != DCC_OP(PAUSE) && request->operation != DCC_OP(RESUME))
                request->on_expire = lifecycle_expire;
        lifecycle_begin(collector, run);
        run_unref(run);
}

void dcc_lifecycle_autostart(DccCollector *collector)
{
        LifecycleRun *run;

        if (collector->busy_with || dcc_state_transition(collector->state, DCC_OP(START)) != DCC_TRANSITION_RUN)
                return;
        run = g_new0(LifecycleRun, 1);
        run->ref_count = 1;
        run->operation = DCC_OP(START);
        lifecycle_begin(collector, run);
        run_unref(run);
}
