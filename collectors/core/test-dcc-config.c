/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UPDATE_CONFIG over the wire against daemoneye-test-collector's schema
 * (interval_ms int 10..60000, verbose bool, label string restart_required,
 * fail_apply bool, and debug uints): validate_only, rejections with their
 * reasons, all-or-nothing application, rollback_on_failure when the apply
 * callback fails, restart_required keys, and a new value taking effect.
 */
#include <signal.h>
#include <string.h>

#include "test-dcc-agent.h"

static void shutdown_and_reap(TestAgent *agent)
{
        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

static const Daemoneye__Eventbus__ConfigUpdateResult *result_of(const TestResponse *response)
{
        g_assert_cmpint(response->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_CONFIG_UPDATE);
        return response->config_update;
}

static gboolean applied_has(const Daemoneye__Eventbus__ConfigUpdateResult *result, const char *key)
{
        for (gsize i = 0; i < result->n_applied; i++)
                if (g_str_equal(result->applied[i], key))
                        return TRUE;
        return FALSE;
}

/* Returns: (transfer none) the reason @key is listed under @list for, or NULL. */
static const char *reason_for(Daemoneye__Eventbus__KeyRejection **list, gsize n, const char *key)
{
        for (gsize i = 0; i < n; i++)
                if (g_str_equal(list[i]->key, key))
                        return list[i]->reason;
        return NULL;
}

/* The value in force of @key is @json: a validate_only of it reports "unchanged". */
static void assert_value(TestAgent *agent, const char *key, const char *json)
{
        g_autofree char *changes = g_strdup_printf("{\"%s\": %s}", key, json);
        g_autoptr(TestResponse) r = test_agent_call_config(agent, changes, TRUE, FALSE, FALSE);
        const Daemoneye__Eventbus__ConfigUpdateResult *result;
        const char *reason;

        test_assert_success(r);
        result = result_of(r);
        reason = reason_for(result->skipped, result->n_skipped, key);
        if (!reason)
                g_error("%s is not %s in force", key, json);
        g_assert_cmpstr(reason, ==, "value unchanged");
}

static void test_validate_only(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) ok = test_agent_call_config(agent, "{\"interval_ms\": 500, \"verbose\": true}",
                                                              TRUE, FALSE, FALSE);
        g_autoptr(TestResponse) bad = NULL;
        const Daemoneye__Eventbus__ConfigUpdateResult *result;

        test_assert_success(ok);
        result = result_of(ok);
        g_assert_true(result->validated_only);
        g_assert_true(applied_has(result, "interval_ms"));
        g_assert_true(applied_has(result, "verbose"));
        g_assert_cmpuint(result->n_rejected, ==, 0);
        /* Nothing changed. */
        assert_value(agent, "interval_ms", "1000");
        assert_value(agent, "verbose", "false");

        /* An invalid change set is an error even when only validated, with every reason. */
        bad = test_agent_call_config(agent, "{\"interval_ms\": 5, \"nope\": 1}", TRUE, FALSE, FALSE);
        test_assert_error(bad, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "interval_ms");
        result = result_of(bad);
        g_assert_true(result->validated_only);
        g_assert_cmpuint(result->n_rejected, ==, 2);
        g_assert_nonnull(strstr(reason_for(result->rejected, result->n_rejected, "interval_ms"), "10..60000"));
        g_assert_nonnull(strstr(reason_for(result->rejected, result->n_rejected, "nope"), "unknown key"));
        g_assert_nonnull(strstr(bad->error->context, "\"rejected\""));
        assert_value(agent, "interval_ms", "1000");
        shutdown_and_reap(agent);
}

static void test_rejections(void)
{
        static const struct {
                const char *json;
                const char *key;
                const char *reason;
        } cases[] = {
                {"{\"interval_ms\": 5}", "interval_ms", "5 is out of range 10..60000"},
                {"{\"interval_ms\": 60001}", "interval_ms", "out of range"},
                {"{\"interval_ms\": \"100\"}", "interval_ms", "expected an integer, got a string"},
                {"{\"interval_ms\": 1.5}", "interval_ms", "expected an integer"},
                {"{\"stall_ms\": -1}", "stall_ms", "expected an unsigned integer"},
                {"{\"verbose\": \"yes\"}", "verbose", "expected a boolean"},
                {"{\"label\": 7}", "label", "expected a string"},
                {"{\"label\": \"0123456789012345678901234567890123\"}", "label", "out of range"},
                {"{\"intervalms\": 100}", "intervalms", "unknown key (known: interval_ms"},
        };
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(TestResponse) r = test_agent_call_config(agent, cases[i].json, FALSE, FALSE, FALSE);
                const Daemoneye__Eventbus__ConfigUpdateResult *result;
                const char *reason;

                test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), cases[i].key);
                g_assert_cmpint(r->error->category, ==, TEST_CATEGORY(CONFIGURATION));
                result = result_of(r);
                g_assert_cmpuint(result->n_applied, ==, 0);
                reason = reason_for(result->rejected, result->n_rejected, cases[i].key);
                g_assert_nonnull(reason);
                if (!strstr(reason, cases[i].reason))
                        g_error("%s: reason '%s' does not say '%s'", cases[i].json, reason, cases[i].reason);
        }

        /* Not a JSON object at all. */
        {
                g_autoptr(TestResponse) r = test_agent_call_config(agent, "[1, 2]", FALSE, FALSE, FALSE);

                test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "JSON object");
        }
        shutdown_and_reap(agent);
}

/* One bad key and nothing is applied. */
static void test_atomic(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) mixed = NULL;
        g_autoptr(TestResponse) good = NULL;
        const Daemoneye__Eventbus__ConfigUpdateResult *result;

        test_assert_success(start);
        mixed = test_agent_call_config(agent, "{\"interval_ms\": 50, \"verbose\": true, \"nope\": 1}", FALSE, TRUE,
                                       FALSE);
        test_assert_error(mixed, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "none applied");
        result = result_of(mixed);
        g_assert_cmpuint(result->n_applied, ==, 0);
        g_assert_cmpuint(result->n_rejected, ==, 1);
        assert_value(agent, "interval_ms", "1000");
        assert_value(agent, "verbose", "false");

        /* The same without the bad key goes in whole; a key at its current value is skipped. */
        good = test_agent_call_config(agent, "{\"interval_ms\": 50, \"verbose\": true, \"stall_ms\": 0}", FALSE,
                                      TRUE, FALSE);
        test_assert_success(good);
        result = result_of(good);
        g_assert_false(result->validated_only);
        g_assert_false(result->rolled_back);
        g_assert_true(applied_has(result, "interval_ms"));
        g_assert_true(applied_has(result, "verbose"));
        g_assert_cmpstr(reason_for(result->skipped, result->n_skipped, "stall_ms"), ==, "value unchanged");
        assert_value(agent, "interval_ms", "50");
        assert_value(agent, "verbose", "true");
        shutdown_and_reap(agent);
}

/* A new interval takes effect in the running collector (through its apply callback). */
static void test_applied_live(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) update = NULL;
        gint64 begin;

        test_assert_success(start);
        update = test_agent_call_config(agent, "{\"interval_ms\": 20}", FALSE, FALSE, FALSE);
        test_assert_success(update);
        test_agent_drop_messages(agent, "events.");
        begin = g_get_monotonic_time();
        for (guint i = 0; i < 10; i++) {
                g_autoptr(TestMessage) event = test_agent_wait_message(agent, "events.test.counter", 5000);

                g_assert_nonnull(event);
        }
        /* Ten events at 1000 ms would take ten seconds. */
        g_assert_cmpint(g_get_monotonic_time() - begin, <, 3 * G_USEC_PER_SEC);
        shutdown_and_reap(agent);
}

/* The apply callback fails: with rollback_on_failure the old values come back, without it the new stay. */
static void test_rollback(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) r = NULL;
        const Daemoneye__Eventbus__ConfigUpdateResult *result;

        test_assert_success(start);
        /* fail_apply makes the collector refuse interval_ms as it applies it. */
        r = test_agent_call_config(agent, "{\"fail_apply\": true, \"interval_ms\": 2000}", FALSE, TRUE, FALSE);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "previous values were restored");
        g_assert_cmpint(r->error->category, ==, TEST_CATEGORY(CONFIGURATION));
        result = result_of(r);
        g_assert_true(result->rolled_back);
        g_assert_cmpuint(result->n_applied, ==, 0);
        g_assert_nonnull(strstr(reason_for(result->rejected, result->n_rejected, "interval_ms"), "apply failed"));
        g_assert_nonnull(reason_for(result->rejected, result->n_rejected, "fail_apply"));
        assert_value(agent, "interval_ms", "1000");
        assert_value(agent, "fail_apply", "false");
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(RUNNING));
        g_clear_pointer(&r, test_response_free);

        r = test_agent_call_config(agent, "{\"fail_apply\": true, \"interval_ms\": 2000}", FALSE, FALSE, FALSE);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "no rollback was requested");
        result = result_of(r);
        g_assert_false(result->rolled_back);
        g_assert_true(applied_has(result, "interval_ms"));
        assert_value(agent, "interval_ms", "2000");
        assert_value(agent, "fail_apply", "true");
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(RUNNING));
        g_clear_pointer(&r, test_response_free);

        /* fail_apply stays set: restoring fails too, and then neither value is known to be in force. */
        r = test_agent_call_config(agent, "{\"interval_ms\": 3000}", FALSE, TRUE, FALSE);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "restoring the previous values failed");
        g_assert_true(result_of(r)->rolled_back);
        assert_value(agent, "interval_ms", "2000");
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(FAILED));
        shutdown_and_reap(agent);
}

/* A restart_required key: refused while running unless the caller accepts a restart, then kept for the next start. */
static void test_restart_required(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) r = NULL;
        const Daemoneye__Eventbus__ConfigUpdateResult *result;

        /* Stopped: it is read at the next start anyway, so it simply goes in. */
        r = test_agent_call_config(agent, "{\"label\": \"one\"}", FALSE, FALSE, FALSE);
        test_assert_success(r);
        g_assert_false(result_of(r)->restart_required);
        g_clear_pointer(&r, test_response_free);

        r = test_agent_call_op(agent, TEST_OP(START));
        test_assert_success(r);
        g_clear_pointer(&r, test_response_free);
        r = test_agent_call_config(agent, "{\"label\": \"two\"}", FALSE, FALSE, FALSE);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "restart");
        g_clear_pointer(&r, test_response_free);
        assert_value(agent, "label", "\"one\"");

        r = test_agent_call_config(agent, "{\"label\": \"two\"}", FALSE, FALSE, TRUE);
        test_assert_success(r);
        result = result_of(r);
        g_assert_true(result->restart_required);
        g_assert_true(applied_has(result, "label"));
        assert_value(agent, "label", "\"two\"");
        shutdown_and_reap(agent);
}

/* UPDATE_CONFIG is not served while a lifecycle operation is half done (covered in lifecycle), nor after shutdown began. */
static void test_refused_while_shutting_down(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "cleanup_ms=2000", NULL);
        g_autofree char *id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE);
        g_autoptr(TestResponse) r = test_agent_call_config(agent, "{\"verbose\": true}", FALSE, FALSE, FALSE);
        g_autoptr(TestResponse) done = NULL;

        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_OPERATION), "shutting down");
        done = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(done);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 0);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/dcc/config/validate-only", test_validate_only);
        g_test_add_func("/dcc/config/rejections", test_rejections);
        g_test_add_func("/dcc/config/atomic", test_atomic);
        g_test_add_func("/dcc/config/applied-live", test_applied_live);
        g_test_add_func("/dcc/config/rollback", test_rollback);
        g_test_add_func("/dcc/config/restart-required", test_restart_required);
        g_test_add_func("/dcc/config/refused-while-shutting-down", test_refused_while_shutting_down);
        return g_test_run();
}
