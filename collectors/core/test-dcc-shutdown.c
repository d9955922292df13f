/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ending a collector: GRACEFUL_SHUTDOWN runs stop and the cleanup hooks in
 * order within the timeout, answers, and exits 0; hooks overrunning the
 * timeout with force_after_timeout exit 3; FORCE_SHUTDOWN exits 3 at once;
 * SIGTERM is graceful and a second one forced; a failing hook exits 1.
 */
#include <signal.h>
#include <string.h>

#include "test-dcc-agent.h"

/* The heartbeats' states, in order, from what the collector sent so far. */
static GArray *heartbeat_states(TestAgent *agent)
{
        GArray *states = g_array_new(FALSE, FALSE, sizeof(int));
        TestMessage *message;

        while ((message = test_agent_wait_message(agent, "control.health.heartbeat.", 0))) {
                Daemoneye__Eventbus__Heartbeat *heartbeat = (Daemoneye__Eventbus__Heartbeat *)test_unpack(
                        message, &daemoneye__eventbus__heartbeat__descriptor);
                int state = heartbeat->status;

                g_array_append_val(states, state);
                protobuf_c_message_free_unpacked(&heartbeat->base, NULL);
                test_message_free(message);
        }
        return states;
}

static void test_graceful(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "interval_ms=20", NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) done = NULL;
        g_autoptr(GArray) states = NULL;
        g_autofree char *id = NULL;
        g_autofree char *out = NULL;

        test_assert_success(start);
        id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 5000, FALSE);
        done = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(done);
        test_agent_expect_closed(agent, TEST_AGENT_TIMEOUT_MS);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 0);
        /* Both hooks, in their order. */
        g_assert_nonnull(strstr(out, "cleanup=2 order=1,2 "));

        /* The agent saw it go through STOPPING to STOPPED. */
        states = heartbeat_states(agent);
        g_assert_cmpuint(states->len, >=, 3);
        g_assert_cmpint(g_array_index(states, int, states->len - 2), ==, TEST_CSTATUS(STOPPING));
        g_assert_cmpint(g_array_index(states, int, states->len - 1), ==, TEST_CSTATUS(STOPPED));
}

/* Hooks overrunning the graceful timeout with force_after_timeout: TIMEOUT reply, exit 3, soon. */
static void test_graceful_overrun_forced(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "cleanup_ms=60000", NULL);
        g_autoptr(TestResponse) done = NULL;
        g_autofree char *id = NULL;
        g_autofree char *out = NULL;
        gint64 sent = g_get_monotonic_time();

        id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 300, TRUE);
        done = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_error(done, TEST_STATUS(TIMEOUT), TEST_KIND(TIMEOUT), "300 ms");
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 3);
        g_assert_cmpint(g_get_monotonic_time() - sent, <, 10 * G_USEC_PER_SEC);
        /* The first hook started and never finished, so the second never ran. */
        g_assert_nonnull(strstr(out, "cleanup=1 order=1 "));
}

/* Without force_after_timeout the collector answers TIMEOUT but still lets the hooks finish, then exits 0. */
static void test_graceful_overrun_waits(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "cleanup_ms=1000", NULL);
        g_autoptr(TestResponse) done = NULL;
        g_autofree char *id = NULL;
        g_autofree char *out = NULL;

        id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 200, FALSE);
        done = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_error(done, TEST_STATUS(TIMEOUT), TEST_KIND(TIMEOUT), "still waiting");
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 0);
        g_assert_nonnull(strstr(out, "cleanup=2 order=1,2 "));
}

/* FORCE_SHUTDOWN exits at once, in the middle of a slow graceful shutdown too. */
static void test_force(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "cleanup_ms=60000", NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) graceful = NULL;
        g_autoptr(TestResponse) forced = NULL;
        g_autofree char *graceful_id = NULL;
        g_autofree char *force_id = NULL;
        g_autofree char *out = NULL;
        gint64 sent;

        test_assert_success(start);
        graceful_id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 120000, FALSE);
        /* The first hook is running now; a second graceful one is refused. */
        {
                g_autofree char *again_id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE);
                g_autoptr(TestResponse) again = test_agent_wait_response(agent, again_id, TEST_AGENT_TIMEOUT_MS);

                test_assert_error(again, TEST_STATUS(ERROR), TEST_KIND(INVALID_OPERATION), "shutting down");
        }
        sent = g_get_monotonic_time();
        force_id = test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE);
        forced = test_agent_wait_response(agent, force_id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(forced);
        /* The pending graceful request is told the collector is exiting. */
        graceful = test_agent_wait_response(agent, graceful_id, TEST_AGENT_TIMEOUT_MS);
        test_assert_error(graceful, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "exiting");
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 3);
        g_assert_cmpint(g_get_monotonic_time() - sent, <, 5 * G_USEC_PER_SEC);
        g_assert_nonnull(strstr(out, "order=1 "));
}

/* FORCE_SHUTDOWN from RUNNING: no hook runs at all. */
static void test_force_no_hooks(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) forced = test_agent_call_op(agent, TEST_OP(FORCE_SHUTDOWN));
        g_autofree char *out = NULL;

        test_assert_success(start);
        test_assert_success(forced);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 3);
        g_assert_nonnull(strstr(out, "cleanup=0 order= "));
}

/* A cleanup hook that fails: the shutdown is answered ERROR naming it, and the exit status is 1. */
static void test_hook_fails(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "fail_cleanup=true", NULL);
        g_autofree char *id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE);
        g_autoptr(TestResponse) done = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        g_autofree char *out = NULL;

        test_assert_error(done, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "cleanup hook 2");
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 1);
        g_assert_nonnull(strstr(out, "order=1,2 "));
}

/* SIGTERM is a graceful shutdown (exit 0, hooks run); a second signal during it forces the exit. */
static void test_sigterm(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestAgent) slow = test_agent_new_test_collector("--set", "cleanup_ms=60000", NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autofree char *out = NULL;
        g_autofree char *slow_out = NULL;

        test_assert_success(start);
        test_agent_kill(agent, SIGTERM);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 0);
        g_assert_nonnull(strstr(out, "cleanup=2 order=1,2 "));

        /* Wait until the first hook runs (STOPPING announced), then signal again. */
        test_agent_kill(slow, SIGTERM);
        for (;;) {
                g_autoptr(TestMessage) message =
                        test_agent_wait_message(slow, "control.health.heartbeat.", TEST_AGENT_TIMEOUT_MS);
                Daemoneye__Eventbus__Heartbeat *heartbeat;
                gboolean stopping;

                g_assert_nonnull(message);
                heartbeat = (Daemoneye__Eventbus__Heartbeat *)test_unpack(message,
                                                                          &daemoneye__eventbus__heartbeat__descriptor);
                stopping = heartbeat->status == TEST_CSTATUS(STOPPING);
                protobuf_c_message_free_unpacked(&heartbeat->base, NULL);
                if (stopping)
                        break;
        }
        test_agent_kill(slow, SIGINT);
        g_assert_cmpint(test_agent_wait_exit(slow, TEST_AGENT_TIMEOUT_MS, &slow_out), ==, 3);
        g_assert_nonnull(strstr(slow_out, "cleanup=1 order=1 "));
}

/* A shutdown that arrives during a start waits for it, then stops what it started. */
static void test_shutdown_during_start(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "start_ms=800", NULL);
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        g_autoptr(TestResponse) started = NULL;
        g_autoptr(TestResponse) done = NULL;
        g_autofree char *start_id = NULL;
        g_autofree char *shutdown_id = NULL;
        g_autofree char *out = NULL;

        request.operation = TEST_OP(START);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        start_id = test_agent_send(agent, &request, NULL);
        shutdown_id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 10000, FALSE);
        started = test_agent_wait_response(agent, start_id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(started);
        done = test_agent_wait_response(agent, shutdown_id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(done);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 0);
        g_assert_nonnull(strstr(out, "cleanup=2 order=1,2 "));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/dcc/shutdown/graceful", test_graceful);
        g_test_add_func("/dcc/shutdown/graceful-overrun-forced", test_graceful_overrun_forced);
        g_test_add_func("/dcc/shutdown/graceful-overrun-waits", test_graceful_overrun_waits);
        g_test_add_func("/dcc/shutdown/force", test_force);
        g_test_add_func("/dcc/shutdown/force-no-hooks", test_force_no_hooks);
        g_test_add_func("/dcc/shutdown/hook-fails", test_hook_fails);
        g_test_add_func("/dcc/shutdown/sigterm", test_sigterm);
        g_test_add_func("/dcc/shutdown/during-start", test_shutdown_during_start);
        return g_test_run();
}
