/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The state machine over the wire: every lifecycle operation in every state
 * (STOPPED, STARTING, RUNNING, PAUSED, STOPPING, FAILED), valid ones leading
 * where they should and invalid ones refused with INVALID_OPERATION, nothing
 * run. daemoneye-test-collector's debug settings (start_ms, stop_ms,
 * fail_start) hold it in the transient states or make it fail.
 */
#include <signal.h>
#include <string.h>

#include "test-dcc-agent.h"

static const DebRpcOperation lifecycle_ops[] = {
        TEST_OP(START), TEST_OP(STOP), TEST_OP(RESTART), TEST_OP(PAUSE), TEST_OP(RESUME),
};

/* The operation succeeds and reports @state (and our child's pid). */
static void expect_to(TestAgent *agent, DebRpcOperation operation, int state)
{
        g_autoptr(TestResponse) response = test_agent_call_op(agent, operation);

        test_assert_success(response);
        g_assert_cmpint(response->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_LIFECYCLE);
        g_assert_cmpint(response->lifecycle->status, ==, state);
        g_assert_cmpuint(response->lifecycle->pid, ==, (guint)test_agent_get_pid(agent));
        g_assert_cmpint(test_agent_get_state(agent), ==, state);
}

/* The operation is refused as INVALID_OPERATION and the state does not move. */
static void expect_refused(TestAgent *agent, DebRpcOperation operation, int state)
{
        g_autoptr(TestResponse) response = test_agent_call_op(agent, operation);

        test_assert_error(response, TEST_STATUS(ERROR), TEST_KIND(INVALID_OPERATION), NULL);
        g_assert_cmpint(response->error->category, ==, TEST_CATEGORY(CONFIGURATION));
        g_assert_cmpstr(response->error->code, !=, "");
        g_assert_cmpint(response->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD__NOT_SET);
        if (state)
                g_assert_cmpint(test_agent_get_state(agent), ==, state);
}

static void shutdown_and_reap(TestAgent *agent)
{
        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

static void test_from_stopped(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);

        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(STOPPED));
        expect_refused(agent, TEST_OP(PAUSE), TEST_CSTATUS(STOPPED));
        expect_refused(agent, TEST_OP(RESUME), TEST_CSTATUS(STOPPED));
        /* STOP names the state it is in: a harmless success, so the agent may retry it. */
        expect_to(agent, TEST_OP(STOP), TEST_CSTATUS(STOPPED));
        expect_to(agent, TEST_OP(START), TEST_CSTATUS(RUNNING));
        expect_to(agent, TEST_OP(STOP), TEST_CSTATUS(STOPPED));
        expect_to(agent, TEST_OP(RESTART), TEST_CSTATUS(RUNNING));
        shutdown_and_reap(agent);
}

static void test_from_running(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "interval_ms=20", NULL);
        g_autoptr(TestMessage) event = NULL;

        expect_to(agent, TEST_OP(START), TEST_CSTATUS(RUNNING));
        event = test_agent_wait_message(agent, "events.test.counter", TEST_AGENT_TIMEOUT_MS);
        g_assert_nonnull(event);
        expect_to(agent, TEST_OP(START), TEST_CSTATUS(RUNNING));
        expect_refused(agent, TEST_OP(RESUME), TEST_CSTATUS(RUNNING));
        expect_to(agent, TEST_OP(RESTART), TEST_CSTATUS(RUNNING));
        expect_to(agent, TEST_OP(PAUSE), TEST_CSTATUS(PAUSED));
        expect_to(agent, TEST_OP(RESUME), TEST_CSTATUS(RUNNING));
        expect_to(agent, TEST_OP(STOP), TEST_CSTATUS(STOPPED));
        shutdown_and_reap(agent);
}

static void test_from_paused(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "interval_ms=20", NULL);
        g_autoptr(TestMessage) late = NULL;

        expect_to(agent, TEST_OP(START), TEST_CSTATUS(RUNNING));
        expect_to(agent, TEST_OP(PAUSE), TEST_CSTATUS(PAUSED));
        /* Paused: nothing is published any more. */
        test_agent_drop_messages(agent, "events.");
        late = test_agent_wait_message(agent, "events.", 300);
        g_assert_null(late);
        expect_to(agent, TEST_OP(PAUSE), TEST_CSTATUS(PAUSED));
        expect_refused(agent, TEST_OP(START), TEST_CSTATUS(PAUSED));
        expect_to(agent, TEST_OP(RESTART), TEST_CSTATUS(RUNNING));
        expect_to(agent, TEST_OP(PAUSE), TEST_CSTATUS(PAUSED));
        expect_to(agent, TEST_OP(STOP), TEST_CSTATUS(STOPPED));
        shutdown_and_reap(agent);
}

/* While a start or a stop is half done, every lifecycle operation and UPDATE_CONFIG is refused. */
static void refuse_all_while(TestAgent *agent, DebRpcOperation operation, int transient, int final)
{
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        g_autofree char *id = NULL;
        g_autoptr(TestResponse) done = NULL;
        g_autoptr(TestResponse) config = NULL;

        request.operation = operation;
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        id = test_agent_send(agent, &request, NULL);
        g_assert_cmpint(test_agent_get_state(agent), ==, transient);
        for (gsize i = 0; i < G_N_ELEMENTS(lifecycle_ops); i++)
                expect_refused(agent, lifecycle_ops[i], 0);
        config = test_agent_call_config(agent, "{\"verbose\": true}", FALSE, FALSE, FALSE);
        test_assert_error(config, TEST_STATUS(ERROR), TEST_KIND(INVALID_OPERATION), "in progress");
        g_assert_cmpint(test_agent_get_state(agent), ==, transient);

        done = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(done);
        g_assert_cmpint(done->lifecycle->status, ==, final);
}

static void test_starting_and_stopping(void)
{
        g_autoptr(TestAgent) agent =
                test_agent_new_test_collector("--set", "start_ms=1500", "--set", "stop_ms=1500", NULL);

        refuse_all_while(agent, TEST_OP(START), TEST_CSTATUS(STARTING), TEST_CSTATUS(RUNNING));
        refuse_all_while(agent, TEST_OP(STOP), TEST_CSTATUS(STOPPING), TEST_CSTATUS(STOPPED));
        /* RESTART goes through both. */
        refuse_all_while(agent, TEST_OP(START), TEST_CSTATUS(STARTING), TEST_CSTATUS(RUNNING));
        refuse_all_while(agent, TEST_OP(RESTART), TEST_CSTATUS(STOPPING), TEST_CSTATUS(RUNNING));
        shutdown_and_reap(agent);
}

/* Puts the collector in FAILED: a start that fails (from STOPPED: START while RUNNING does nothing). */
static void make_failed(TestAgent *agent)
{
        g_autoptr(TestResponse) stop = test_agent_call_op(agent, TEST_OP(STOP));
        g_autoptr(TestResponse) set = test_agent_call_config(agent, "{\"fail_start\": true}", FALSE, FALSE, FALSE);
        g_autoptr(TestResponse) start = NULL;

        test_assert_success(stop);
        test_assert_success(set);
        start = test_agent_call_op(agent, TEST_OP(START));
        test_assert_error(start, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "fail_start is set");
        /* The collector's DCC_ERROR_RESOURCE says whose problem it is. */
        g_assert_cmpint(start->error->category, ==, TEST_CATEGORY(RESOURCE));
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(FAILED));
        g_clear_pointer(&set, test_response_free);
        set = test_agent_call_config(agent, "{\"fail_start\": false}", FALSE, FALSE, FALSE);
        test_assert_success(set);
}

static void test_from_failed(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) health = NULL;

        make_failed(agent);
        health = test_agent_call_op(agent, TEST_OP(HEALTH_CHECK));
        test_assert_success(health);
        g_assert_cmpint(health->health->overall, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_UNHEALTHY);
        expect_refused(agent, TEST_OP(PAUSE), TEST_CSTATUS(FAILED));
        expect_refused(agent, TEST_OP(RESUME), TEST_CSTATUS(FAILED));
        expect_to(agent, TEST_OP(START), TEST_CSTATUS(RUNNING));

        make_failed(agent);
        expect_to(agent, TEST_OP(STOP), TEST_CSTATUS(STOPPED));

        make_failed(agent);
        expect_to(agent, TEST_OP(RESTART), TEST_CSTATUS(RUNNING));
        shutdown_and_reap(agent);
}

/* A lifecycle payload naming another collector or type is refused and nothing runs. */
static void test_payload_mismatch(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        g_autoptr(TestResponse) other_id = NULL;
        g_autoptr(TestResponse) other_type = NULL;

        request.operation = TEST_OP(START);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        lifecycle.collector_id = (char *)"other";
        other_id = test_agent_call(agent, &request);
        test_assert_error(other_id, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "'other'");
        lifecycle.collector_id = (char *)"test";
        lifecycle.collector_type = (char *)"procmond";
        other_type = test_agent_call(agent, &request);
        test_assert_error(other_type, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "procmond");
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(STOPPED));
        shutdown_and_reap(agent);
}

/* START's config_overrides are checked like any setting and in force for that run. */
static void test_start_overrides(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        Daemoneye__Eventbus__LifecyclePayload__ConfigOverridesEntry entry =
                DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__CONFIG_OVERRIDES_ENTRY__INIT;
        Daemoneye__Eventbus__LifecyclePayload__ConfigOverridesEntry *entries[] = {&entry};
        g_autoptr(TestResponse) bad = NULL;
        g_autoptr(TestResponse) good = NULL;
        g_autoptr(TestResponse) retry = NULL;
        g_autoptr(TestMessage) first = NULL;
        g_autoptr(TestMessage) second = NULL;

        request.operation = TEST_OP(START);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        lifecycle.n_config_overrides = 1;
        lifecycle.config_overrides = entries;
        entry.key = (char *)"interval_ms";
        entry.value = (char *)"fast";
        bad = test_agent_call(agent, &request);
        test_assert_error(bad, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "interval_ms");
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(STOPPED));

        entry.value = (char *)"20";
        good = test_agent_call(agent, &request);
        test_assert_success(good);
        /* 20 ms instead of the default 1000: two events come quickly. */
        first = test_agent_wait_message(agent, "events.test.counter", 5000);
        second = test_agent_wait_message(agent, "events.test.counter", 500);
        g_assert_nonnull(first);
        g_assert_nonnull(second);

        /* Retrying the same start is fine; asking for other settings while running is not. */
        retry = test_agent_call(agent, &request);
        test_assert_success(retry);
        g_clear_pointer(&retry, test_response_free);
        entry.value = (char *)"30";
        retry = test_agent_call(agent, &request);
        test_assert_error(retry, TEST_STATUS(ERROR), TEST_KIND(INVALID_OPERATION), "config_overrides");
        shutdown_and_reap(agent);
}

/* --autostart: collecting right after the handshake, without a START. */
static void test_autostart(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--autostart", "--set", "interval_ms=20", NULL);
        g_autoptr(TestMessage) event = test_agent_wait_message(agent, "events.test.counter", TEST_AGENT_TIMEOUT_MS);

        g_assert_nonnull(event);
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(RUNNING));
        shutdown_and_reap(agent);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/dcc/lifecycle/from-stopped", test_from_stopped);
        g_test_add_func("/dcc/lifecycle/from-running", test_from_running);
        g_test_add_func("/dcc/lifecycle/from-paused", test_from_paused);
        g_test_add_func("/dcc/lifecycle/starting-and-stopping", test_starting_and_stopping);
        g_test_add_func("/dcc/lifecycle/from-failed", test_from_failed);
        g_test_add_func("/dcc/lifecycle/payload-mismatch", test_payload_mismatch);
        g_test_add_func("/dcc/lifecycle/start-overrides", test_start_overrides);
        g_test_add_func("/dcc/lifecycle/autostart", test_autostart);
        return g_test_run();
}
