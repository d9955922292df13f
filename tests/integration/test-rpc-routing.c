/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RPC routing in the broker (daemon/broker-rpc.c), end to end: the real
 * daemoneye-agent on a temp socket (agent-harness.h), collectors and
 * watchers played by raw connections that send exactly the frames a test
 * needs, and requesters that are either raw connections or the library's
 * RPC client (DebRpcClient) on a DebClient in this process.
 *
 * broker_adopt_fd() has no way in from outside the agent, so its tests run
 * the same broker code in this process, on its own temp socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "broker-test-util.h"
#include "broker.h"
#include "deb-rpc-client.h"

#define OP(name) DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_##name
#define STATUS(name) DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_##name
#define KIND(name) DAEMONEYE__EVENTBUS__ERROR_KIND__ERROR_KIND_##name

#define IO_MS 5000
/* The [rpc] max_pending_requests default, which the broker enforces per requesting connection. */
#define MAX_PENDING_DEFAULT 1000u

/* A reply decoded by protobuf-c (not one built by deb_rpc_response_new_error()). */
typedef DebRpcResponse WireResponse;

static void wire_response_free(WireResponse *response)
{
        daemoneye__eventbus__rpc_response__free_unpacked(response, NULL);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WireResponse, wire_response_free)

/* ---- raw RPC frames ------------------------------------------------------- */

/* An RpcRequest on @target's request topic, due @timeout_ms from now (0: no deadline). */
static void raw_request_due(RawConn *c, const char *client_id, const char *target, DebRpcOperation operation,
                            const char *correlation_id, guint timeout_ms)
{
        DebRpcRequest request = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        g_autoptr(GError) error = NULL;
        g_autofree char *topic = deb_rpc_request_topic(target, operation, &error);

        g_assert_no_error(error);
        request.correlation_id = (char *)correlation_id;
        request.client_id = (char *)client_id;
        request.target = (char *)target;
        request.operation = operation;
        request.timestamp_us = (guint64)g_get_real_time();
        request.deadline_us = timeout_ms ? request.timestamp_us + (guint64)timeout_ms * 1000 : 0;
        raw_conn_send(c, RAW_MT(RPC_REQUEST), topic, correlation_id, &request.base, NULL, 0, &error);
        g_assert_no_error(error);
}

static void raw_request(RawConn *c, const char *client_id, const char *target, DebRpcOperation operation,
                        const char *correlation_id)
{
        raw_request_due(c, client_id, target, operation, correlation_id, 30000);
}

/* An RPC_RESPONSE on response.<@topic_id> naming @correlation_id inside. */
static void raw_reply_on(RawConn *c, const char *topic_id, const char *correlation_id, DebRpcStatus status)
{
        DebRpcResponse response = DAEMONEYE__EVENTBUS__RPC_RESPONSE__INIT;
        g_autoptr(GError) error = NULL;
        g_autofree char *topic = g_strconcat("response.", topic_id, NULL);

        response.correlation_id = (char *)correlation_id;
        response.status = status;
        response.execution_time_us = 7;
        raw_conn_send(c, RAW_MT(RPC_RESPONSE), topic, topic_id, &response.base, NULL, 0, &error);
        g_assert_no_error(error);
}

static void raw_reply(RawConn *c, const char *correlation_id, DebRpcStatus status)
{
        raw_reply_on(c, correlation_id, correlation_id, status);
}

/* The next frame on @c is an RPC_REQUEST on @topic. Returns: (transfer full) its correlation id. */
static char *expect_request(RawConn *c, const char *topic)
{
        g_autoptr(GError) error = NULL;
        const DebEnvelope *env = raw_conn_read(c, IO_MS, &error);

        g_assert_no_error(error);
        g_assert_cmpstr(deb_message_type_to_string(env->message_type), ==,
                        deb_message_type_to_string(RAW_MT(RPC_REQUEST)));
        g_assert_cmpstr(env->topic, ==, topic);
        g_assert_cmpstr(env->payload_type, ==, DEB_RPC_REQUEST_TYPE);
        return g_strdup(env->correlation->correlation_id);
}

/* The next frame on @c is the reply to @correlation_id. Returns: (transfer full) it, decoded. */
static WireResponse *expect_reply(RawConn *c, const char *correlation_id)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *topic = g_strconcat("response.", correlation_id, NULL);
        const DebEnvelope *env = raw_conn_read(c, IO_MS, &error);
        WireResponse *response;

        g_assert_no_error(error);
        g_assert_cmpstr(deb_message_type_to_string(env->message_type), ==,
                        deb_message_type_to_string(RAW_MT(RPC_RESPONSE)));
        g_assert_cmpstr(env->topic, ==, topic);
        g_assert_cmpstr(env->correlation->correlation_id, ==, correlation_id);
        g_assert_cmpstr(env->payload_type, ==, DEB_RPC_RESPONSE_TYPE);
        response = daemoneye__eventbus__rpc_response__unpack(NULL, env->payload.len, env->payload.data);
        g_assert_nonnull(response);
        g_assert_cmpstr(response->correlation_id, ==, correlation_id);
        return response;
}

/*
 * Nothing more arrives on @c from what @sentinel_pub sent so far: @c
 * subscribes (its Ack must be its next frame: a stray reply or request would
 * be ahead of it on the control lane), then @sentinel_pub publishes an event
 * that must be the next frame after it (a stray event would be ahead of it).
 */
static void expect_only_sentinel(RawConn *c, RawConn *sentinel_pub, const char *tag)
{
        g_autofree char *cid = g_strdup_printf("sentinel-%p", (void *)c);

        raw_subscribe(c, (const char *const[]){"test.sentinel", NULL}, cid);
        raw_publish(sentinel_pub, "test.sentinel", tag);
        raw_expect_event(c, "test.sentinel", tag);
}

static JsonObject *metrics_now(AgentHarness *h)
{
        return get_metrics(h);
}

/* ---- the library's RPC client as requester ---------------------------------- */

typedef struct {
        DebClient *client;
        DebRpcClient *rpc;
        gboolean done;
        GError *error;
        DebRpcStatus status;
        gboolean has_response;
        gint64 sent_us;
        gint64 done_us;
} Requester;

static Requester *requester_new(AgentHarness *h, const char *client_id)
{
        Requester *r = g_new0(Requester, 1);
        g_autoptr(GError) error = NULL;

        r->client = deb_client_new(client_id);
        deb_client_connect_sync(r->client, agent_harness_get_socket_path(h), IO_MS, &error);
        g_assert_no_error(error);
        r->rpc = deb_rpc_client_new(r->client, NULL, &error);
        g_assert_no_error(error);
        return r;
}

static void requester_free(Requester *r)
{
        deb_rpc_client_free(r->rpc);
        deb_client_disconnect(r->client, 1000);
        deb_client_unref(r->client);
        g_clear_error(&r->error);
        g_free(r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Requester, requester_free)

static void requester_done(DebRpcClient *rpc, const DebRpcResponse *response, const GError *error,
                           const DebRpcCallInfo *info, gpointer user_data)
{
        Requester *r = user_data;

        r->done = TRUE;
        r->done_us = g_get_monotonic_time();
        r->error = error ? g_error_copy(error) : NULL;
        r->has_response = response != NULL;
        r->status = response ? response->status : info->status;
}

/* Starts a call and writes it out. */
static void requester_call(Requester *r, const char *target, DebRpcOperation operation, guint timeout_ms)
{
        g_autoptr(GError) error = NULL;

        r->done = FALSE;
        g_clear_error(&r->error);
        g_assert_cmpuint(
                deb_rpc_client_call(r->rpc, target, operation, NULL, timeout_ms, requester_done, r, &error),
                >, 0);
        g_assert_no_error(error);
        r->sent_us = g_get_monotonic_time();
        deb_client_flush(r->client, IO_MS, &error);
        g_assert_no_error(error);
}

static void requester_wait(Requester *r, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        GMainContext *context = g_main_context_get_thread_default();

        while (!r->done) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_main_context_iteration(context, FALSE);
                g_usleep(1000);
        }
}

/* Iterates for @ms: the call must stay pending. */
static void requester_assert_pending(Requester *r, guint ms)
{
        gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

        while (g_get_monotonic_time() < end) {
                g_main_context_iteration(g_main_context_get_thread_default(), FALSE);
                g_usleep(1000);
        }
        g_assert_false(r->done);
}

/* ---- routing through the real agent ------------------------------------------ */

/*
 * The reply goes to the requester only: a '#' watcher sees the request go by
 * but never the reply, and cannot subscribe to replies either.
 */
static void test_reply_only_to_requester(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) collector = raw_client(h, "procmond");
        g_autoptr(RawConn) watcher = raw_client(h, "watcher");
        g_autoptr(Requester) r = requester_new(h, "requester");
        g_autoptr(JsonObject) m = NULL;
        g_autofree char *cid = NULL;
        g_auto(RawError) refused = {0};
        g_autoptr(GError) error = NULL;

        raw_subscribe(collector, (const char *const[]){"control.collector.procmond", NULL}, "sub-collector");
        raw_subscribe(watcher, (const char *const[]){"#", NULL}, "sub-watcher");
        /* Replies cannot be subscribed to, by any pattern naming them. */
        raw_conn_subscribe(watcher, (const char *const[]){"response.#", NULL}, "sub-responses", &error);
        g_assert_no_error(error);
        raw_expect_error(watcher, RAW_EC(PERMISSION_DENIED), FALSE, IO_MS, &refused);
        g_assert_cmpstr(refused.correlation_id, ==, "sub-responses");

        requester_call(r, "procmond", OP(HEALTH_CHECK), 10000);
        cid = expect_request(collector, "control.collector.procmond");
        g_free(expect_request(watcher, "control.collector.procmond"));
        raw_reply(collector, cid, STATUS(SUCCESS));
        requester_wait(r, IO_MS);
        g_assert_no_error(r->error);
        g_assert_true(r->has_response);
        g_assert_cmpint(r->status, ==, STATUS(SUCCESS));

        /* Same publisher as the reply, so it would come after the reply if the watcher had been sent it. */
        expect_only_sentinel(watcher, collector, "after the reply");

        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_requests"), ==, 1);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, 0);
        g_assert_cmpuint(metric(m, "unrouted_responses"), ==, 0);
        stop_agent(h);
}

/*
 * Forged replies, from a connection the request reached but that is not its
 * target (a '#' watcher) and from one claiming the target's client id but
 * not subscribed, are dropped and counted; so is a second reply from the
 * target once the first one was routed. The requester sees only the real one.
 */
static void test_forged_replies(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) collector = raw_client(h, "procmond");
        g_autoptr(RawConn) impostor = raw_client(h, "procmond"); /* same client id, not subscribed */
        g_autoptr(RawConn) watcher = raw_client(h, "watcher");
        g_autoptr(RawConn) requester = raw_client(h, "requester");
        g_autoptr(JsonObject) m = NULL;
        g_autoptr(WireResponse) reply = NULL;
        g_autofree char *seen = NULL;

        raw_subscribe(collector, (const char *const[]){"control.collector.procmond", NULL}, "sub-collector");
        raw_subscribe(watcher, (const char *const[]){"#", NULL}, "sub-watcher");

        raw_request(requester, "requester", "procmond", OP(STOP), "req-forged-1");
        g_free(expect_request(collector, "control.collector.procmond"));
        seen = expect_request(watcher, "control.collector.procmond");
        g_assert_cmpstr(seen, ==, "req-forged-1");

        raw_reply(watcher, "req-forged-1", STATUS(SUCCESS));
        raw_reply(impostor, "req-forged-1", STATUS(SUCCESS));
        raw_reply(watcher, "no-such-request", STATUS(SUCCESS));
        wait_for_metric(h, "unrouted_responses", 3, IO_MS);
        /* A non-reply message type on a reply topic is no reply either. */
        {
                g_autoptr(GError) error = NULL;

                raw_conn_send(watcher, RAW_MT(EVENT), "response.req-forged-1", NULL, NULL, "x", 1, &error);
                g_assert_no_error(error);
        }
        wait_for_metric(h, "unrouted_responses", 4, IO_MS);

        /* Only now the target answers, with ERROR: the requester gets exactly this. */
        raw_reply(collector, "req-forged-1", STATUS(ERROR));
        reply = expect_reply(requester, "req-forged-1");
        g_assert_cmpint(reply->status, ==, STATUS(ERROR));
        g_assert_cmpuint(reply->execution_time_us, ==, 7);
        raw_reply(collector, "req-forged-1", STATUS(SUCCESS)); /* answered already */
        wait_for_metric(h, "unrouted_responses", 5, IO_MS);
        expect_only_sentinel(requester, collector, "no second reply");

        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, 0);
        g_assert_cmpuint(metric(m, "connections"), >=, 4);
        stop_agent(h);
}

/* No target connected: NOT_FOUND from the broker at once, even with a '#' watcher listening. */
static void test_not_found(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) watcher = raw_client(h, "watcher");
        g_autoptr(RawConn) requester = raw_client(h, "requester");
        g_autoptr(Requester) r = requester_new(h, "lib-requester");
        g_autoptr(WireResponse) reply = NULL;
        g_autoptr(JsonObject) m = NULL;

        raw_request(requester, "requester", "nobody", OP(HEALTH_CHECK), "req-nf-1");
        reply = expect_reply(requester, "req-nf-1");
        g_assert_cmpint(reply->status, ==, STATUS(ERROR));
        g_assert_nonnull(reply->error);
        g_assert_cmpint(reply->error->kind, ==, KIND(NOT_FOUND));
        g_assert_cmpstr(reply->error->code, ==, "broker.no_target");
        g_test_message("broker said: %s", reply->error->message);
        g_assert_nonnull(strstr(reply->error->message, "nobody"));
        g_clear_pointer(&reply, wire_response_free);

        raw_subscribe(watcher, (const char *const[]){"#", NULL}, "sub-watcher");
        raw_request(requester, "requester", "nobody", OP(UPDATE_CONFIG), "req-nf-2");
        g_free(expect_request(watcher, "control.collector.config.nobody"));
        reply = expect_reply(requester, "req-nf-2");
        g_assert_cmpint(reply->error->kind, ==, KIND(NOT_FOUND));

        /* Through the library: DEB_RPC_ERROR_NOT_FOUND, long before the deadline. */
        requester_call(r, "nobody", OP(HEALTH_CHECK), 20000);
        requester_wait(r, IO_MS);
        g_assert_error(r->error, DEB_RPC_ERROR, DEB_RPC_ERROR_NOT_FOUND);
        g_assert_cmpint(r->done_us - r->sent_us, <, 5 * G_USEC_PER_SEC);

        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_not_found"), ==, 3);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, 0);
        stop_agent(h);
}

/* The target's connection closes before it answers: the requester hears COMMUNICATION_ERROR at once. */
static void test_target_disconnects(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) collector = raw_client(h, "procmond");
        g_autoptr(Requester) r = requester_new(h, "requester");
        g_autoptr(JsonObject) m = NULL;

        raw_subscribe(collector, (const char *const[]){"control.shutdown.procmond", NULL}, "sub-collector");
        requester_call(r, "procmond", OP(GRACEFUL_SHUTDOWN), 20000);
        g_free(expect_request(collector, "control.shutdown.procmond"));
        requester_assert_pending(r, 50);
        g_clear_pointer(&collector, raw_conn_free);
        requester_wait(r, IO_MS);
        g_assert_error(r->error, DEB_RPC_ERROR, DEB_RPC_ERROR_COMMUNICATION);
        g_test_message("%s", r->error->message);
        g_assert_nonnull(strstr(r->error->message, "closed before it answered"));

        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_target_lost"), ==, 1);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, 0);
        stop_agent(h);
}

/* A requester that goes away with requests pending: its records go with it; the late replies are dropped. */
static void test_requester_disconnects(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) collector = raw_client(h, "procmond");
        g_autoptr(RawConn) requester = raw_client(h, "requester");
        g_autoptr(JsonObject) m = NULL;
        char *cids[3];

        raw_subscribe(collector, (const char *const[]){"control.collector.procmond", NULL}, "sub-collector");
        for (guint i = 0; i < G_N_ELEMENTS(cids); i++) {
                g_autofree char *cid = g_strdup_printf("req-gone-%u", i);

                raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), cid);
                cids[i] = expect_request(collector, "control.collector.procmond");
                g_assert_cmpstr(cids[i], ==, cid);
        }
        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, G_N_ELEMENTS(cids));
        g_clear_pointer(&m, json_object_unref);

        g_clear_pointer(&requester, raw_conn_free);
        wait_for_metric(h, "rpc_pending", 0, IO_MS);
        for (guint i = 0; i < G_N_ELEMENTS(cids); i++) {
                raw_reply(collector, cids[i], STATUS(SUCCESS));
                g_free(cids[i]);
        }
        wait_for_metric(h, "unrouted_responses", G_N_ELEMENTS(cids), IO_MS);
        g_assert_true(agent_harness_is_running(h));
        assert_round_trip(h, "still routing");

        /* A correlation id freed by its requester's departure can be used again. */
        {
                g_autoptr(RawConn) again = raw_client(h, "requester");
                g_autoptr(WireResponse) reply = NULL;

                raw_request(again, "requester", "procmond", OP(HEALTH_CHECK), "req-gone-0");
                g_free(expect_request(collector, "control.collector.procmond"));
                raw_reply(collector, "req-gone-0", STATUS(SUCCESS));
                reply = expect_reply(again, "req-gone-0");
                g_assert_cmpint(reply->status, ==, STATUS(SUCCESS));
        }
        stop_agent(h);
}

/*
 * A request nobody answers is forgotten after its deadline plus a grace
 * (5 s): the table cannot grow without bound. A reply after that is dropped.
 */
static void test_expiry(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) collector = raw_client(h, "procmond");
        g_autoptr(RawConn) requester = raw_client(h, "requester");
        g_autoptr(WireResponse) reply = NULL;
        g_autoptr(JsonObject) m = NULL;
        gint64 start = g_get_monotonic_time();

        raw_subscribe(collector, (const char *const[]){"control.collector.procmond", NULL}, "sub-collector");
        raw_request_due(requester, "requester", "procmond", OP(HEALTH_CHECK), "req-short", 100);
        raw_request_due(requester, "requester", "procmond", OP(HEALTH_CHECK), "req-long", 60000);
        g_free(expect_request(collector, "control.collector.procmond"));
        g_free(expect_request(collector, "control.collector.procmond"));
        wait_for_metric(h, "rpc_pending", 2, IO_MS);
        wait_for_metric(h, "rpc_expired", 1, 15000);
        g_assert_cmpint(g_get_monotonic_time() - start, >=, 5 * G_USEC_PER_SEC);
        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, 1);

        raw_reply(collector, "req-short", STATUS(SUCCESS));
        wait_for_metric(h, "unrouted_responses", 1, IO_MS);
        raw_reply(collector, "req-long", STATUS(SUCCESS));
        reply = expect_reply(requester, "req-long");
        g_assert_cmpint(reply->status, ==, STATUS(SUCCESS));
        stop_agent(h);
}

/*
 * At most rpc.max_pending_requests requests of one connection await replies:
 * one more is refused with a non-fatal Error naming the limit, not forwarded,
 * and a reply makes room again. Another connection has its own allowance.
 */
static void test_max_pending(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) collector = raw_client(h, "procmond");
        g_autoptr(RawConn) requester = raw_client(h, "requester");
        g_autoptr(RawConn) other = raw_client(h, "other");
        g_autoptr(RawConn) watcher = raw_client(h, "watcher");
        g_autoptr(WireResponse) reply = NULL;
        g_autoptr(JsonObject) m = NULL;
        g_auto(RawError) refused = {0};
        g_autofree char *first = NULL;

        raw_subscribe(collector, (const char *const[]){"control.collector.procmond", NULL}, "sub-collector");
        raw_subscribe(watcher, (const char *const[]){"control.collector.procmond", NULL}, "sub-watcher");
        for (guint i = 0; i < MAX_PENDING_DEFAULT; i++) {
                g_autofree char *cid = g_strdup_printf("req-max-%u", i);

                raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), cid);
        }
        raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), "req-max-over");
        raw_expect_error(requester, RAW_EC(QUEUE_FULL), FALSE, IO_MS, &refused);
        g_assert_cmpstr(refused.correlation_id, ==, "req-max-over");
        g_assert_nonnull(strstr(refused.message, "rpc.max_pending_requests"));
        g_assert_nonnull(strstr(refused.message, "1000"));

        /* Not forwarded: after the 1000 requests the watcher's next frame is the sentinel. */
        for (guint i = 0; i < MAX_PENDING_DEFAULT; i++)
                g_free(expect_request(watcher, "control.collector.procmond"));
        expect_only_sentinel(watcher, requester, "after the refusal");
        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, MAX_PENDING_DEFAULT);
        g_assert_cmpuint(metric(m, "rpc_refused"), ==, 1);
        g_clear_pointer(&m, json_object_unref);

        /* Another connection is not affected. */
        raw_request(other, "other", "procmond", OP(HEALTH_CHECK), "req-other");
        first = expect_request(collector, "control.collector.procmond");
        g_assert_cmpstr(first, ==, "req-max-0");

        /* One reply makes room for one more. */
        raw_reply(collector, "req-max-0", STATUS(SUCCESS));
        reply = expect_reply(requester, "req-max-0");
        raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), "req-max-after");
        raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), "req-max-over-2");
        raw_expect_error(requester, RAW_EC(QUEUE_FULL), FALSE, IO_MS, NULL);

        m = metrics_now(h);
        g_assert_cmpuint(metric(m, "rpc_pending"), ==, MAX_PENDING_DEFAULT + 1);
        g_assert_cmpuint(metric(m, "rpc_refused"), ==, 2);
        stop_agent(h);
}

/*
 * Requests the broker cannot route are refused with a non-fatal Error
 * carrying their correlation id; the connection stays usable.
 */
static void test_bad_requests(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) collector = raw_client(h, "procmond");
        g_autoptr(RawConn) requester = raw_client(h, "requester");
        g_autoptr(RawConn) other = raw_client(h, "other");
        g_autoptr(WireResponse) reply = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(RawError) e1 = {0};
        g_auto(RawError) e2 = {0};
        g_auto(RawError) e3 = {0};
        g_auto(RawError) e4 = {0};
        g_auto(RawError) e5 = {0};

        raw_subscribe(collector, (const char *const[]){"control.collector.procmond", NULL}, "sub-collector");

        /* Duplicate correlation id from the same connection: the first request stands, the second is
         * refused. */
        raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), "req-dup");
        raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), "req-dup");
        raw_expect_error(requester, RAW_EC(PROTOCOL), FALSE, IO_MS, &e1);
        g_assert_cmpstr(e1.correlation_id, ==, "req-dup");
        g_assert_nonnull(strstr(e1.message, "already awaits a reply"));
        /* …and from another connection: it cannot take over the reply. */
        raw_request(other, "other", "procmond", OP(HEALTH_CHECK), "req-dup");
        raw_expect_error(other, RAW_EC(PROTOCOL), FALSE, IO_MS, &e2);
        g_free(expect_request(collector, "control.collector.procmond"));
        expect_only_sentinel(collector, other, "one request forwarded");

        /* A correlation id that cannot name a reply topic. */
        raw_request(requester, "requester", "procmond", OP(HEALTH_CHECK), "not.one.level");
        raw_expect_error(requester, RAW_EC(PROTOCOL), FALSE, IO_MS, &e3);
        g_assert_cmpstr(e3.correlation_id, ==, "not.one.level");

        /* Not an RpcRequest at all. */
        raw_conn_send(requester, RAW_MT(RPC_REQUEST), "control.collector.procmond", "req-raw", NULL, "xyz",
                      3, &error);
        g_assert_no_error(error);
        raw_expect_error(requester, RAW_EC(PROTOCOL), FALSE, IO_MS, &e4);
        g_assert_cmpstr(e4.correlation_id, ==, "req-raw");

        /* A reply off its reply topic would reach subscribers: refused. */
        raw_reply_on(collector, "req-dup", "req-dup", STATUS(SUCCESS)); /* the real one, fine */
        reply = expect_reply(requester, "req-dup");
        g_assert_cmpint(reply->status, ==, STATUS(SUCCESS));
        {
                DebRpcResponse response = DAEMONEYE__EVENTBUS__RPC_RESPONSE__INIT;

                response.correlation_id = (char *)"x";
                response.status = STATUS(SUCCESS);
                raw_conn_send(collector, RAW_MT(RPC_RESPONSE), "control.health.status", "x", &response.base,
                              NULL, 0, &error);
                g_assert_no_error(error);
        }
        raw_expect_error(collector, RAW_EC(PROTOCOL), FALSE, IO_MS, &e5);
        g_assert_nonnull(strstr(e5.message, "response.<correlation id>"));

        assert_round_trip(h, "after bad requests");
        stop_agent(h);
}

/* ---- broker_adopt_fd(), on a broker in this process ------------------------ */

typedef struct {
        char *dir;
        Broker *broker;
        guint closed;
        guint destroyed;
} AdoptFixture;

static void adopt_fixture_init(AdoptFixture *fx)
{
        BrokerConfig config = {
                .startup_timeout_seconds = 10,
                .max_subscribers = 16,
                .message_buffer_size = 1000,
                .enable_metrics = TRUE,
                .drop_policy = DROP_POLICY_DROP_OLDEST,
                .max_frame_bytes = 1048576,
                .max_subscriptions_per_connection = 64,
                .socket_mode = 0600,
        };
        g_autoptr(GError) error = NULL;
        g_autofree char *path = NULL;

        fx->dir = g_dir_make_tmp("test-rpc-adopt-XXXXXX", &error);
        g_assert_no_error(error);
        path = g_build_filename(fx->dir, "eventbus.sock", NULL);
        config.socket_path = path;
        fx->broker = broker_new(&config, &error);
        g_assert_no_error(error);
}

static void adopt_fixture_clear(AdoptFixture *fx)
{
        g_clear_pointer(&fx->broker, broker_free);
        while (g_main_context_iteration(NULL, FALSE))
                ;
        g_rmdir(fx->dir);
        g_free(fx->dir);
}

static void on_adopted_closed(Broker *broker, gpointer user_data)
{
        ((AdoptFixture *)user_data)->closed++;
}

static void on_adopted_destroy(gpointer user_data)
{
        ((AdoptFixture *)user_data)->destroyed++;
}

static void iterate_until_done(gboolean *done)
{
        gint64 deadline = g_get_monotonic_time() + IO_MS * 1000;

        while (!*done) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_main_context_iteration(NULL, FALSE);
                g_usleep(500);
        }
}

static void iterate_until_count(guint *counter, guint value)
{
        gint64 deadline = g_get_monotonic_time() + IO_MS * 1000;

        while (*counter < value) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_main_context_iteration(NULL, FALSE);
                g_usleep(500);
        }
        g_assert_cmpuint(*counter, ==, value);
}

typedef struct {
        gboolean done;
        GError *error;
} ConnectResult;

static void on_connected(DebClient *client, const GError *error, gpointer user_data)
{
        ConnectResult *result = user_data;

        result->done = TRUE;
        result->error = error ? g_error_copy(error) : NULL;
}

/* Adopts one end of a socketpair and connects a DebClient named @client_id on the other. */
static DebClient *adopt_pair(AdoptFixture *fx, const char *expected, const char *client_id, guint64 *session,
                             GError **connect_error)
{
        g_autoptr(GError) error = NULL;
        ConnectResult result = {0};
        DebClient *client = deb_client_new(client_id);
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        *session = broker_adopt_fd(fx->broker, sv[0], expected, on_adopted_closed, fx, on_adopted_destroy,
                                   &error);
        g_assert_no_error(error);
        g_assert_cmpuint(*session, >, 0);
        g_assert_true(deb_client_connect_fd(client, sv[1], on_connected, &result, &error));
        g_assert_no_error(error);
        iterate_until_done(&result.done);
        if (result.error)
                g_propagate_error(connect_error, result.error);
        return client;
}

static void answer_health_check(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        DebRpcResponse response = DAEMONEYE__EVENTBUS__RPC_RESPONSE__INIT;
        DebPublishOptions options = {
                .message_type = RAW_MT(RPC_RESPONSE),
                .payload_type = DEB_RPC_RESPONSE_TYPE,
                .correlation_id = envelope->correlation->correlation_id,
        };
        g_autoptr(GError) error = NULL;
        g_autofree char *topic = g_strconcat("response.", envelope->correlation->correlation_id, NULL);
        g_autofree guint8 *packed = NULL;
        gsize len;

        response.correlation_id = envelope->correlation->correlation_id;
        response.status = STATUS(SUCCESS);
        len = protobuf_c_message_get_packed_size(&response.base);
        packed = g_malloc(len + 1);
        protobuf_c_message_pack(&response.base, packed);
        deb_client_publish(client, topic, packed, len, &options, &error);
        g_assert_no_error(error);
}

/*
 * The expected client id gets in and works as any client: an RPC from a
 * client on the broker's socket reaches it and its reply comes back. Its
 * close is reported once, at once.
 */
static void test_adopt_expected_id(void)
{
        AdoptFixture fx = {0};
        g_autoptr(GError) error = NULL;
        g_autoptr(DebClient) collector = NULL;
        g_autoptr(DebClient) caller = deb_client_new("caller");
        g_autoptr(WireResponse) response = NULL;
        g_autofree char *socket_path = NULL;
        DebRpcClient *rpc;
        guint64 session;

        adopt_fixture_init(&fx);
        collector = adopt_pair(&fx, "procmond", "procmond", &session, &error);
        g_assert_no_error(error);
        g_assert_true(deb_client_is_connected(collector));
        deb_client_subscribe(collector, "control.collector.procmond", answer_health_check, NULL, NULL,
                             &error);
        g_assert_no_error(error);
        deb_client_sync(collector, IO_MS, &error);
        g_assert_no_error(error);

        socket_path = g_build_filename(fx.dir, "eventbus.sock", NULL);
        deb_client_connect_sync(caller, socket_path, IO_MS, &error);
        g_assert_no_error(error);
        rpc = deb_rpc_client_new(caller, NULL, &error);
        g_assert_no_error(error);
        deb_rpc_client_call_sync(rpc, "procmond", OP(HEALTH_CHECK), NULL, IO_MS, &response, &error);
        g_assert_no_error(error);
        g_assert_cmpint(response->status, ==, STATUS(SUCCESS));
        deb_rpc_client_free(rpc);
        g_assert_cmpuint(fx.closed, ==, 0);

        deb_client_disconnect(collector, 1000);
        iterate_until_count(&fx.closed, 1);
        iterate_until_count(&fx.destroyed, 1);
        /* Forgotten once closed. */
        g_assert_false(broker_forget_closed_func(fx.broker, session));
        deb_client_disconnect(caller, 1000);
        adopt_fixture_clear(&fx);
        g_assert_cmpuint(fx.closed, ==, 1);
        g_assert_cmpuint(fx.destroyed, ==, 1);
}

/* Another client id is refused with a fatal PERMISSION_DENIED naming both; the close is reported. */
static void test_adopt_wrong_id(void)
{
        AdoptFixture fx = {0};
        g_autoptr(GError) error = NULL;
        g_autoptr(DebClient) impostor = NULL;
        guint64 session;

        /* The broker logs the refusal as a warning, which the test framework would make fatal. */
        GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);

        adopt_fixture_init(&fx);
        impostor = adopt_pair(&fx, "procmond", "netmond", &session, &error);
        g_assert_error(error, DEB_ERROR, DEB_ERROR_REFUSED);
        g_test_message("%s", error->message);
        g_assert_nonnull(strstr(error->message, "'netmond'"));
        g_assert_nonnull(strstr(error->message, "'procmond'"));
        g_assert_false(deb_client_is_connected(impostor));
        iterate_until_count(&fx.closed, 1);
        iterate_until_count(&fx.destroyed, 1);
        adopt_fixture_clear(&fx);
        g_log_set_always_fatal(fatal);
}

/* Without an expected id any client id goes; a forgotten callback never runs; a non-socket is refused. */
static void test_adopt_forget_and_errors(void)
{
        AdoptFixture fx = {0};
        g_autoptr(GError) error = NULL;
        g_autoptr(DebClient) client = NULL;
        guint64 session, session2;
        int pipe_fds[2];

        adopt_fixture_init(&fx);
        client = adopt_pair(&fx, NULL, "anyone", &session, &error);
        g_assert_no_error(error);
        g_assert_true(broker_forget_closed_func(fx.broker, session));
        g_assert_cmpuint(fx.destroyed, ==, 1);
        g_assert_false(broker_forget_closed_func(fx.broker, session));
        deb_client_disconnect(client, 1000);
        g_clear_pointer(&client, deb_client_unref);

        /* A second adoption gets its own session; its close is reported, the forgotten one's was not. */
        client = adopt_pair(&fx, NULL, "anyone", &session2, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(session2, >, session);
        deb_client_disconnect(client, 1000);
        iterate_until_count(&fx.closed, 1);

        g_assert_cmpint(pipe(pipe_fds), ==, 0);
        g_assert_cmpuint(broker_adopt_fd(fx.broker, pipe_fds[0], NULL, on_adopted_closed, &fx, NULL, &error),
                         ==, 0);
        g_assert_error(error, G_FILE_ERROR, (gint)g_file_error_from_errno(ENOTSOCK));
        g_test_message("%s", error->message);
        /* The broker closed it: the write end sees no reader. */
        g_assert_cmpint(fcntl(pipe_fds[1], F_SETFL, O_NONBLOCK), ==, 0);
        g_assert_cmpint(write(pipe_fds[1], "x", 1), ==, -1);
        g_assert_cmpint(errno, ==, EPIPE);
        close(pipe_fds[1]);
        adopt_fixture_clear(&fx);
        g_assert_cmpuint(fx.closed, ==, 1);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        /* A broken pipe is a test outcome, not a signal. */
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/rpc-routing/reply-only-to-requester", test_reply_only_to_requester);
        g_test_add_func("/rpc-routing/forged-replies", test_forged_replies);
        g_test_add_func("/rpc-routing/not-found", test_not_found);
        g_test_add_func("/rpc-routing/target-disconnects", test_target_disconnects);
        g_test_add_func("/rpc-routing/requester-disconnects", test_requester_disconnects);
        g_test_add_func("/rpc-routing/expiry", test_expiry);
        g_test_add_func("/rpc-routing/max-pending", test_max_pending);
        g_test_add_func("/rpc-routing/bad-requests", test_bad_requests);
        g_test_add_func("/rpc-routing/adopt/expected-id", test_adopt_expected_id);
        g_test_add_func("/rpc-routing/adopt/wrong-id", test_adopt_wrong_id);
        g_test_add_func("/rpc-routing/adopt/forget-and-errors", test_adopt_forget_and_errors);
        return g_test_run();
}
