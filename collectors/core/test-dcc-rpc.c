/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RPC service of collector-core over the wire: HEALTH_CHECK and
 * GET_CAPABILITIES results, deadlines (already past; overrun),
 * max_concurrent_requests, and the checks every request passes before
 * anything runs (topic, target, payload, correlation, decoding).
 */
#include <signal.h>
#include <string.h>

#include "test-dcc-agent.h"

static void shutdown_and_reap(TestAgent *agent)
{
        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

static gboolean metric_get(const Daemoneye__Eventbus__HealthResult *health, const char *name, double *value)
{
        for (gsize i = 0; i < health->n_metrics; i++) {
                if (g_str_equal(health->metrics[i]->key, name)) {
                        *value = health->metrics[i]->value;
                        return TRUE;
                }
        }
        return FALSE;
}

static void test_health_check(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "interval_ms=20", NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) response = NULL;
        g_autoptr(TestMessage) event = NULL;
        const Daemoneye__Eventbus__HealthResult *health;
        double value = 0;

        test_assert_success(start);
        for (guint i = 0; i < 3; i++) {
                g_clear_pointer(&event, test_message_free);
                event = test_agent_wait_message(agent, "events.test.counter", TEST_AGENT_TIMEOUT_MS);
                g_assert_nonnull(event);
        }
        response = test_agent_call_op(agent, TEST_OP(HEALTH_CHECK));
        test_assert_success(response);
        g_assert_cmpint(response->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_HEALTH);
        health = response->health;
        g_assert_cmpint(health->status, ==, TEST_CSTATUS(RUNNING));
        g_assert_cmpint(health->overall, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY);
        g_assert_cmpuint(health->n_components, ==, 1);
        g_assert_cmpstr(health->components[0]->name, ==, "counter");
        g_assert_cmpint(health->components[0]->status, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY);
        g_assert_cmpstr(health->components[0]->message, ==, "ticking");
        g_assert_cmpuint(health->components[0]->check_interval_ms, ==, 20);
        g_assert_cmpuint(health->components[0]->last_check_us, >, 0);
        /* The collector's own metric, refreshed by its health callback, and collector-core's. */
        g_assert_true(metric_get(health, "counter", &value));
        g_assert_cmpfloat(value, >=, 3);
        g_assert_true(metric_get(health, "core.events_published", &value));
        g_assert_cmpfloat(value, >=, 3);
        g_assert_true(metric_get(health, "core.heartbeats_sent", &value));
        g_assert_cmpfloat(value, >=, 1);
        g_assert_true(metric_get(health, "core.requests_total", &value));
        g_assert_cmpfloat(value, >=, 2);
        g_assert_true(metric_get(health, "core.requests_in_flight", &value));
        g_assert_cmpfloat(value, ==, 1); /* this very request */
        g_assert_cmpuint(health->last_heartbeat_us, >, 0);
        g_assert_cmpuint(health->error_count, ==, 0);
        g_assert_cmpuint(response->execution_time_us, <, 10 * G_USEC_PER_SEC);
        shutdown_and_reap(agent);
}

static gboolean ops_contain(const Daemoneye__Eventbus__Capabilities *caps, int operation)
{
        for (gsize i = 0; i < caps->n_operations; i++)
                if ((int)caps->operations[i] == operation)
                        return TRUE;
        return FALSE;
}

static void test_capabilities(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) response = test_agent_call_op(agent, TEST_OP(GET_CAPABILITIES));
        const Daemoneye__Eventbus__Capabilities *caps;

        test_assert_success(response);
        g_assert_cmpint(response->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_CAPABILITIES);
        caps = response->capabilities;
        g_assert_cmpuint(caps->n_event_types, ==, 1);
        g_assert_cmpstr(caps->event_types[0], ==, "events.test.counter");
        g_assert_cmpuint(caps->n_operations, ==, 10);
        for (int op = TEST_OP(START); op <= TEST_OP(RESUME); op++)
                g_assert_true(ops_contain(caps, op));
        g_assert_cmpuint(caps->n_platforms, ==, 1);
        g_assert_cmpstr(caps->platforms[0], ==, "linux");
        g_assert_cmpuint(caps->n_features, ==, 1);
        g_assert_cmpstr(caps->features[0], ==, "counter");
        g_assert_cmpuint(caps->max_concurrent_requests, ==, 4);
        g_assert_nonnull(caps->timeout_limits);
        g_assert_cmpuint(caps->timeout_limits->min_ms, ==, 10);
        g_assert_cmpuint(caps->timeout_limits->max_ms, ==, 5 * 60 * 1000);
        g_assert_cmpuint(caps->timeout_limits->default_ms, ==, 30 * 1000);
        g_assert_nonnull(caps->resources);
        shutdown_and_reap(agent);
}

/* A request past its deadline on arrival is answered TIMEOUT and not run. */
static void test_deadline_passed(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        g_autoptr(TestResponse) response = NULL;

        request.operation = TEST_OP(START);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        request.deadline_us = (guint64)g_get_real_time() - 1000;
        response = test_agent_call(agent, &request);
        test_assert_error(response, TEST_STATUS(TIMEOUT), TEST_KIND(TIMEOUT), "after its deadline");
        g_assert_cmpint(response->error->category, ==, TEST_CATEGORY(TIMEOUT));
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(STOPPED));
        shutdown_and_reap(agent);
}

/* A request still running at its deadline is answered TIMEOUT then; a late completion changes nothing. */
static void test_deadline_overrun(void)
{
        g_autoptr(TestAgent) agent =
                test_agent_new_test_collector("--set", "stall_ms=1500", "--set", "start_ms=1500", NULL);
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        g_autoptr(TestResponse) health = NULL;
        g_autoptr(TestResponse) start = NULL;
        g_autoptr(TestResponse) late = NULL;
        g_autoptr(TestMessage) second = NULL;
        g_autofree char *id = NULL;
        gint64 sent;

        request.operation = TEST_OP(HEALTH_CHECK);
        request.deadline_us = (guint64)g_get_real_time() + 200 * 1000;
        sent = g_get_monotonic_time();
        id = test_agent_send(agent, &request, NULL);
        health = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_error(health, TEST_STATUS(TIMEOUT), TEST_KIND(TIMEOUT), "deadline");
        /* Answered at the deadline, not when the health callback finally completed. */
        g_assert_cmpint(g_get_monotonic_time() - sent, <, 1400 * 1000);
        /* Nothing more comes for it. */
        g_autofree char *topic = g_strconcat("response.", id, NULL);
        second = test_agent_wait_message(agent, topic, 1800);
        g_assert_null(second);

        /* A START overrunning its deadline leaves the collector FAILED (the transition did not happen in time). */
        request.operation = TEST_OP(START);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        request.deadline_us = (guint64)g_get_real_time() + 200 * 1000;
        start = test_agent_call(agent, &request);
        test_assert_error(start, TEST_STATUS(TIMEOUT), TEST_KIND(TIMEOUT), "deadline");
        /* stall_ms delays health checks too: ask with a deadline that allows for it. */
        request.operation = TEST_OP(HEALTH_CHECK);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD__NOT_SET;
        request.deadline_us = 0;
        late = test_agent_call(agent, &request);
        test_assert_success(late);
        g_assert_cmpint(late->health->status, ==, TEST_CSTATUS(FAILED));
        shutdown_and_reap(agent);
}

/* More than max_concurrent_requests (4) in flight: the next is refused, shutdowns still go through. */
static void test_max_concurrent(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector("--set", "stall_ms=3000", NULL);
        char *ids[4] = {NULL};
        g_autofree char *shutdown_id = NULL;
        g_autoptr(TestResponse) busy = NULL;
        g_autoptr(TestResponse) done = NULL;
        g_autofree char *out = NULL;

        for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
                DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;

                request.operation = TEST_OP(HEALTH_CHECK);
                ids[i] = test_agent_send(agent, &request, NULL);
        }
        busy = test_agent_call_op(agent, TEST_OP(GET_CAPABILITIES));
        test_assert_error(busy, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "max_concurrent_requests");
        g_assert_cmpint(busy->error->category, ==, TEST_CATEGORY(RESOURCE));
        g_assert_cmpstr(busy->error->code, ==, "rpc.busy");

        shutdown_id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE);
        done = test_agent_wait_response(agent, shutdown_id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(done);
        /* The four stalled checks learn the collector is going instead of waiting for their deadline. */
        for (guint i = 0; i < G_N_ELEMENTS(ids); i++) {
                g_autoptr(TestResponse) r = test_agent_wait_response(agent, ids[i], TEST_AGENT_TIMEOUT_MS);

                test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(EXECUTION_ERROR), "exiting");
                g_free(ids[i]);
        }
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 0);
        g_assert_nonnull(strstr(out, "order=1,2"));
}

static void test_request_checks(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        g_autoptr(TestResponse) r = NULL;
        g_autofree char *id = NULL;

        /* UPDATE_CONFIG must come on the config topic, so an ACL there cannot be side-stepped. */
        request.operation = TEST_OP(UPDATE_CONFIG);
        id = test_agent_send(agent, &request, "control.collector.test");
        r = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "control.collector.config.test");
        g_assert_cmpint(r->error->category, ==, TEST_CATEGORY(PERMISSION));
        g_clear_pointer(&r, test_response_free);
        g_clear_pointer(&id, g_free);

        /* A target that is not this collector. */
        request.operation = TEST_OP(HEALTH_CHECK);
        request.target = (char *)"someone-else";
        r = test_agent_call(agent, &request);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(NOT_FOUND), "someone-else");
        g_clear_pointer(&r, test_response_free);
        request.target = (char *)"";

        /* Payloads that do not fit the operation. */
        r = test_agent_call(agent, &request);
        test_assert_success(r);
        g_clear_pointer(&r, test_response_free);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
        request.lifecycle = &lifecycle;
        r = test_agent_call(agent, &request);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "takes no payload");
        g_clear_pointer(&r, test_response_free);
        request.operation = TEST_OP(START);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD__NOT_SET;
        r = test_agent_call(agent, &request);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "LifecyclePayload");
        g_clear_pointer(&r, test_response_free);

        /* An operation the collector does not know, and the UNSPECIFIED zero. */
        request.operation = 42;
        id = test_agent_send(agent, &request, "control.collector.test");
        r = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "42");
        g_clear_pointer(&r, test_response_free);
        g_clear_pointer(&id, g_free);
        request.operation = TEST_OP(UNSPECIFIED);
        id = test_agent_send(agent, &request, "control.collector.test");
        r = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), NULL);
        g_clear_pointer(&r, test_response_free);
        g_clear_pointer(&id, g_free);

        /* The request's correlation id must be its envelope's. */
        request.operation = TEST_OP(HEALTH_CHECK);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD__NOT_SET;
        request.correlation_id = (char *)"inner-id";
        request.target = (char *)"test";
        test_agent_send_message(agent, TEST_MT(RPC_REQUEST), "control.collector.test", "outer-id", &request.base);
        r = test_agent_wait_response(agent, "outer-id", TEST_AGENT_TIMEOUT_MS);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "inner-id");
        g_clear_pointer(&r, test_response_free);

        /* Bytes that are no RpcRequest are answered, not a crash. */
        test_agent_send_bytes(agent, TEST_MT(RPC_REQUEST), "control.collector.test", "garbage-id",
                              DEB_RPC_REQUEST_TYPE, "\xff\xff\xff\xff", 4);
        r = test_agent_wait_response(agent, "garbage-id", TEST_AGENT_TIMEOUT_MS);
        test_assert_error(r, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), "decode");
        g_clear_pointer(&r, test_response_free);

        /* A correlation id that cannot be a topic level cannot be answered: dropped, and the collector goes on. */
        request.correlation_id = (char *)"a.b";
        test_agent_send_message(agent, TEST_MT(RPC_REQUEST), "control.collector.test", "a.b", &request.base);
        request.correlation_id = (char *)"";

        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(STOPPED));
        shutdown_and_reap(agent);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/dcc/rpc/health-check", test_health_check);
        g_test_add_func("/dcc/rpc/capabilities", test_capabilities);
        g_test_add_func("/dcc/rpc/deadline-passed", test_deadline_passed);
        g_test_add_func("/dcc/rpc/deadline-overrun", test_deadline_overrun);
        g_test_add_func("/dcc/rpc/max-concurrent", test_max_concurrent);
        g_test_add_func("/dcc/rpc/request-checks", test_request_checks);
        return g_test_run();
}
