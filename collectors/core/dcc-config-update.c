/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UPDATE_CONFIG: every key of changes_json is checked against the schema
 * first; one bad key and nothing is applied. validate_only reports what would
 * happen, with the same status applying would get. Otherwise the new values go in force together and a running
 * collector gets them in one apply_config call; if that fails and the caller
 * asked for rollback_on_failure, the old values come back (and apply_config
 * is called with the changes reversed), else the new ones stay recorded.
 */
#include <json-glib/json-glib.h>

#include "dcc-private.h"

/* A ConfigUpdateResult and the memory its pointers refer to. */
typedef struct {
        Daemoneye__Eventbus__ConfigUpdateResult result;
        GPtrArray *applied;  /* char *, borrowed */
        GPtrArray *skipped;  /* KeyRejection * */
        GPtrArray *rejected; /* KeyRejection * */
} ResultBuilder;

static void result_init(ResultBuilder *b)
{
        daemoneye__eventbus__config_update_result__init(&b->result);
        b->applied = g_ptr_array_new();
        b->skipped = g_ptr_array_new_with_free_func(g_free);
        b->rejected = g_ptr_array_new_with_free_func(g_free);
}

static void result_clear(ResultBuilder *b)
{
        g_ptr_array_unref(b->applied);
        g_ptr_array_unref(b->skipped);
        g_ptr_array_unref(b->rejected);
}

static void result_add_rejection(ResultBuilder *b, GPtrArray *list, const char *key, const char *reason)
{
        Daemoneye__Eventbus__KeyRejection *rejection = g_new(Daemoneye__Eventbus__KeyRejection, 1);

        daemoneye__eventbus__key_rejection__init(rejection);
        rejection->key = (char *)key;
        rejection->reason = (char *)reason;
        g_ptr_array_add(list, rejection);
}

static void result_add_rejections(ResultBuilder *b, GPtrArray *list, const GPtrArray *rejections)
{
        for (guint i = 0; i < rejections->len; i++) {
                const DccConfigRejection *r = rejections->pdata[i];

                result_add_rejection(b, list, r->key, r->reason);
        }
}

static void result_add_changes(ResultBuilder *b, const GArray *changes)
{
        for (guint i = 0; i < changes->len; i++)
                g_ptr_array_add(b->applied, (char *)g_array_index(changes, DccConfigChange, i).key->key);
}

/* Fills the result from what the plan says (applied = live + deferred). */
static void result_from_plan(ResultBuilder *b, const DccConfigPlan *plan)
{
        result_add_changes(b, plan->live);
        result_add_changes(b, plan->deferred);
        result_add_rejections(b, b->skipped, plan->skipped);
        result_add_rejections(b, b->rejected, plan->rejected);
        b->result.restart_required = plan->deferred->len > 0;
}

static const ProtobufCMessage *result_finish(ResultBuilder *b)
{
        b->result.n_applied = b->applied->len;
        b->result.applied = (char **)b->applied->pdata;
        b->result.n_skipped = b->skipped->len;
        b->result.skipped = (Daemoneye__Eventbus__KeyRejection **)b->skipped->pdata;
        b->result.n_rejected = b->rejected->len;
        b->result.rejected = (Daemoneye__Eventbus__KeyRejection **)b->rejected->pdata;
        return &b->result.base;
}

char *dcc_config_plan_describe_rejections(const DccConfigPlan *plan, char **context_json)
{
        g_autoptr(JsonBuilder) builder = json_builder_new();
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(GString) summary = g_string_new(NULL);

        json_builder_begin_object(builder);
        json_builder_set_member_name(builder, "rejected");
        json_builder_begin_array(builder);
        for (guint i = 0; i < plan->rejected->len; i++) {
                const DccConfigRejection *r = plan->rejected->pdata[i];

                json_builder_begin_object(builder);
                json_builder_set_member_name(builder, "key");
                json_builder_add_string_value(builder, r->key);
                json_builder_set_member_name(builder, "reason");
                json_builder_add_string_value(builder, r->reason);
                json_builder_end_object(builder);
                g_string_append_printf(summary, "%s%s: %s", i > 0 ? "; " : "", r->key, r->reason);
        }
        json_builder_end_array(builder);
        json_builder_end_object(builder);
        root = json_builder_get_root(builder);
        json_generator_set_root(generator, root);
        *context_json = json_generator_to_data(generator, NULL);
        return g_string_free(g_steal_pointer(&summary), FALSE);
}

static char *changes_describe_keys(const GArray *changes)
{
        g_autoptr(GString) keys = g_string_new(NULL);

        for (guint i = 0; i < changes->len; i++)
                g_string_append_printf(keys, "%s%s", i > 0 ? ", " : "",
                                       g_array_index(changes, DccConfigChange, i).key->key);
        return g_string_free(g_steal_pointer(&keys), FALSE);
}

/* Runs apply_config; Returns: TRUE if there was nothing to call or it succeeded. */
static gboolean config_apply(DccCollector *collector, const GArray *changes, GError **error)
{
        if (!collector->info->apply_config || changes->len == 0)
                return TRUE;
        if (!collector->info->apply_config(collector, (const DccConfigChange *)(gpointer)changes->data,
                                           changes->len, collector->user_data, error)) {
                if (error && !*error)
                        g_set_error(error, DCC_ERROR, DCC_ERROR_FAILED, "apply_config failed without saying why");
                return FALSE;
        }
        return TRUE;
}

/* apply_config refused the changes: undo them (or not) and answer. */
static void config_apply_failed(DccCollector *collector, DccRequest *request, const DccConfigPlan *plan,
                                const GError *error)
{
        const Daemoneye__Eventbus__ConfigUpdatePayload *payload = request->message->config_update;
        g_autoptr(GError) undo_error = NULL;
        g_autofree char *reason = g_strdup_printf("apply failed: %s", error->message);
        g_autofree char *keys = changes_describe_keys(plan->live);
        g_autofree char *outcome = NULL;
        ResultBuilder b;

        result_init(&b);
        if (payload->rollback_on_failure) {
                g_autoptr(GArray) reversed = dcc_config_changes_reverse(plan->live);

                dcc_config_store_revert(collector->config, plan);
                if (!config_apply(collector, reversed, &undo_error)) {
                        /* Neither the new nor the old values are known to be in force. */
                        dcc_collector_set_state(collector, DCC_STATE_FAILED);
                }
                b.result.rolled_back = TRUE;
                for (guint i = 0; i < plan->live->len; i++)
                        result_add_rejection(&b, b.rejected, g_array_index(plan->live, DccConfigChange, i).key->key,
                                             reason);
                for (guint i = 0; i < plan->deferred->len; i++)
                        result_add_rejection(&b, b.rejected,
                                             g_array_index(plan->deferred, DccConfigChange, i).key->key,
                                             "rolled back with the rest of the request");
        } else {
                /* Recorded, not applied cleanly: the caller chose not to roll back. */
                result_from_plan(&b, plan);
        }
        if (!payload->rollback_on_failure)
                outcome = g_strdup("the new values stay in force (no rollback was requested)");
        else if (undo_error)
                outcome = g_strdup_printf("restoring the previous values failed too (%s): the collector is failed",
                                          undo_error->message);
        else
                outcome = g_strdup("the previous values were restored");
        dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(EXECUTION_ERROR), dcc_error_to_category(error),
                         "config.apply_failed", NULL, result_finish(&b),
                         "collector %s: update_config: applying %s failed: %s; %s", collector->id, keys,
                         error->message, outcome);
        result_clear(&b);
}

void dcc_config_update_handle(DccCollector *collector, DccRequest *request)
{
        const Daemoneye__Eventbus__ConfigUpdatePayload *payload = request->message->config_update;
        g_autoptr(DccConfigPlan) plan = dcc_config_plan_new();
        g_autoptr(GError) error = NULL;
        gboolean running = collector->state == DCC_STATE_RUNNING || collector->state == DCC_STATE_PAUSED;
        ResultBuilder b;

        if (collector->busy_with ||
            dcc_state_transition(collector->state, DCC_OP(UPDATE_CONFIG)) != DCC_TRANSITION_RUN) {
                g_autofree char *context = dcc_json_string_pairs("state", dcc_state_to_string(collector->state),
                                                                 NULL);

                g_autofree char *why = collector->busy_with
                                               ? g_strdup_printf("%s is in progress", collector->busy_with)
                                               : g_strdup_printf("the collector is %s",
                                                                 dcc_state_to_string(collector->state));

                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_OPERATION),
                                 DCC_CATEGORY(CONFIGURATION), "state.invalid_transition", context, NULL,
                                 "collector %s: update_config refused: %s", collector->id, why);
                return;
        }
        if (!dcc_config_plan_add_json(collector->config, plan, payload->changes_json, running,
                                      payload->restart_required, &error)) {
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT), DCC_CATEGORY(CONFIGURATION),
                                 "config.invalid", NULL, NULL, "collector %s: update_config: %s", collector->id,
                                 error->message);
                return;
        }

        result_init(&b);
        /*
         * validate_only answers exactly what applying would: SUCCESS only when
         * every key is acceptable, else the same INVALID_ARGUMENT error with
         * every rejection, so "check this config" cannot read as "fine".
         */
        if (payload->validate_only && plan->rejected->len == 0) {
                result_from_plan(&b, plan);
                b.result.validated_only = TRUE;
                dcc_request_reply(request, DCC_STATUS(SUCCESS), NULL, result_finish(&b));
                result_clear(&b);
                return;
        }
        if (plan->rejected->len > 0) {
                g_autofree char *context = NULL;
                g_autofree char *summary = dcc_config_plan_describe_rejections(plan, &context);

                /* Nothing was applied: the result lists only what was wrong (and what was unchanged). */
                result_add_rejections(&b, b.skipped, plan->skipped);
                result_add_rejections(&b, b.rejected, plan->rejected);
                b.result.validated_only = payload->validate_only;
                dcc_request_fail(request, DCC_STATUS(ERROR), DCC_KIND(INVALID_ARGUMENT), DCC_CATEGORY(CONFIGURATION),
                                 "config.invalid", context, result_finish(&b),
                                 "collector %s: update_config: %u of %u settings rejected, none applied: %s",
                                 collector->id, plan->rejected->len,
                                 plan->rejected->len + plan->skipped->len + plan->live->len + plan->deferred->len,
                                 summary);
                result_clear(&b);
                return;
        }

        dcc_config_store_commit(collector->config, plan);
        /* A stopped collector reads its settings when it starts: nothing to apply now. */
        if (running && !config_apply(collector, plan->live, &error)) {
                result_clear(&b);
                config_apply_failed(collector, request, plan, error);
                return;
        }
        result_from_plan(&b, plan);
        dcc_collector_log(collector, request, G_LOG_LEVEL_INFO, "update_config: %u applied, %u for the next start",
                          plan->live->len, plan->deferred->len);
        dcc_request_reply(request, DCC_STATUS(SUCCESS), NULL, result_finish(&b));
        result_clear(&b);
}
