/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test agent's RPC side: RpcRequest envelopes on the collector's request
 * topics, RpcResponses read back from response.<correlation_id>, and the
 * assertions the tests make on them.
 */
#include <string.h>
#include <unistd.h>

#include "test-dcc-agent-private.h"

char *test_agent_send(TestAgent *agent, DebRpcRequest *request, const char *topic)
{
        char *const caller_id = request->correlation_id;
        g_autofree char *correlation_id = NULL;
        g_autofree char *default_topic = NULL;
        g_autoptr(GError) error = NULL;

        if (!request->correlation_id || !request->correlation_id[0])
                correlation_id = g_strdup_printf("test-%d-%u", (int)getpid(), agent->next_id + 1);
        else
                correlation_id = g_strdup(request->correlation_id);
        request->correlation_id = correlation_id;
        if (!request->client_id || !request->client_id[0])
                request->client_id = (char *)"test-agent";
        if (!request->target || !request->target[0])
                request->target = agent->collector_id;
        if (request->timestamp_us == 0)
                request->timestamp_us = (guint64)g_get_real_time();
        if (!topic) {
                default_topic = deb_rpc_request_topic(agent->collector_id, request->operation, &error);
                g_assert_no_error(error);
                topic = default_topic;
        }
        test_agent_send_message(agent, TEST_MT(RPC_REQUEST), topic, correlation_id, &request->base);
        /* The caller's request must not keep pointing into our string. */
        request->correlation_id = caller_id;
        return g_steal_pointer(&correlation_id);
}

TestResponse *test_agent_wait_response(TestAgent *agent, const char *correlation_id, guint timeout_ms)
{
        g_autofree char *topic = g_strconcat("response.", correlation_id, NULL);
        g_autoptr(TestMessage) message = test_agent_take(agent, test_agent_match_topic, topic, timeout_ms);
        TestResponse *response;

        if (!message)
                g_error("no reply on %s within %u ms%s", topic, timeout_ms,
                        agent->closed ? " (the collector closed the connection)" : "");
        g_assert_cmpint(message->message_type, ==, TEST_MT(RPC_RESPONSE));
        g_assert_cmpstr(message->correlation_id, ==, correlation_id);
        response = (TestResponse *)test_unpack(message, &daemoneye__eventbus__rpc_response__descriptor);
        g_assert_cmpstr(response->correlation_id, ==, correlation_id);
        return response;
}

TestResponse *test_agent_call(TestAgent *agent, DebRpcRequest *request)
{
        g_autofree char *correlation_id = test_agent_send(agent, request, NULL);

        return test_agent_wait_response(agent, correlation_id, TEST_AGENT_TIMEOUT_MS);
}

TestResponse *test_agent_call_op(TestAgent *agent, DebRpcOperation operation)
{
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__LifecyclePayload lifecycle = DAEMONEYE__EVENTBUS__LIFECYCLE_PAYLOAD__INIT;
        Daemoneye__Eventbus__ShutdownPayload shutdown = DAEMONEYE__EVENTBUS__SHUTDOWN_PAYLOAD__INIT;

        request.operation = operation;
        switch (operation) {
        case TEST_OP(START):
        case TEST_OP(STOP):
        case TEST_OP(RESTART):
        case TEST_OP(PAUSE):
        case TEST_OP(RESUME):
                request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_LIFECYCLE;
                request.lifecycle = &lifecycle;
                break;
        case TEST_OP(GRACEFUL_SHUTDOWN):
        case TEST_OP(FORCE_SHUTDOWN):
                request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_SHUTDOWN;
                request.shutdown = &shutdown;
                break;
        default:
                break;
        }
        return test_agent_call(agent, &request);
}

TestResponse *test_agent_call_config(TestAgent *agent, const char *changes_json, gboolean validate_only,
                                       gboolean rollback_on_failure, gboolean restart_required)
{
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__ConfigUpdatePayload update = DAEMONEYE__EVENTBUS__CONFIG_UPDATE_PAYLOAD__INIT;

        update.changes_json = (char *)changes_json;
        update.validate_only = validate_only;
        update.rollback_on_failure = rollback_on_failure;
        update.restart_required = restart_required;
        request.operation = TEST_OP(UPDATE_CONFIG);
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_CONFIG_UPDATE;
        request.config_update = &update;
        return test_agent_call(agent, &request);
}

char *test_agent_send_shutdown(TestAgent *agent, DebRpcOperation operation, guint graceful_timeout_ms,
                               gboolean force_after_timeout)
{
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__ShutdownPayload shutdown = DAEMONEYE__EVENTBUS__SHUTDOWN_PAYLOAD__INIT;

        shutdown.graceful_timeout_ms = graceful_timeout_ms;
        shutdown.force_after_timeout = force_after_timeout;
        shutdown.reason = (char *)"test";
        request.operation = operation;
        request.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_SHUTDOWN;
        request.shutdown = &shutdown;
        return test_agent_send(agent, &request, NULL);
}

int test_agent_get_state(TestAgent *agent)
{
        g_autoptr(TestResponse) response = test_agent_call_op(agent, TEST_OP(HEALTH_CHECK));

        test_assert_success(response);
        g_assert_cmpint(response->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_HEALTH);
        return response->health->status;
}

void test_assert_success(const TestResponse *response)
{
        if (response->status != TEST_STATUS(SUCCESS))
                g_error("expected SUCCESS, got %s: %s (%s)", deb_rpc_status_to_string(response->status),
                        response->error ? response->error->message : "(no error details)",
                        response->error ? response->error->code : "");
}

void test_assert_error(const TestResponse *response, int status, int kind, const char *needle)
{
        if ((int)response->status != status)
                g_error("expected %s, got %s: %s", deb_rpc_status_to_string(status),
                        deb_rpc_status_to_string(response->status),
                        response->error ? response->error->message : "(no error details)");
        g_assert_nonnull(response->error);
        if ((int)response->error->kind != kind)
                g_error("expected error kind %s, got %s: %s", deb_rpc_error_kind_to_string(kind),
                        deb_rpc_error_kind_to_string(response->error->kind), response->error->message);
        if (needle && !strstr(response->error->message, needle))
                g_error("error message '%s' does not mention '%s'", response->error->message, needle);
}
