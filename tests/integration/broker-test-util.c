/* SPDX-License-Identifier: Apache-2.0 */
/* The broker tests' vocabulary: harness and raw-connection steps that assert their own success. */
#include <string.h>

#include "broker-test-util.h"

AgentHarness *start_agent(const char *const *config)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(AgentHarness) h = agent_harness_new(&error);

        g_assert_no_error(error);
        for (const char *const *kv = config; kv && kv[0]; kv += 2)
                agent_harness_set(h, kv[0], kv[1]);
        agent_harness_start(h, 10000, &error);
        g_assert_no_error(error);
        return g_steal_pointer(&h);
}

void stop_agent(AgentHarness *h)
{
        g_autoptr(GError) error = NULL;

        agent_harness_stop(h, 10000, &error);
        g_assert_no_error(error);
}

HarnessPeer *spawn_peer_argv(AgentHarness *h, const char *name, const char *const *args)
{
        g_autoptr(GError) error = NULL;
        HarnessPeer *p = agent_harness_spawn_peer(h, name, args, &error);

        g_assert_no_error(error);
        return p;
}

void wait_ready(HarnessPeer *p)
{
        g_autoptr(GError) error = NULL;

        harness_peer_wait_ready(p, READY_MS, &error);
        g_assert_no_error(error);
}

void finish_peer(HarnessPeer *p, guint timeout_ms)
{
        g_autoptr(GError) error = NULL;

        harness_peer_finish(p, timeout_ms, &error);
        g_assert_no_error(error);
}

guint64 peer_u64(HarnessPeer *p, const char *key)
{
        guint64 v = 0;

        if (!harness_peer_get_u64(p, key, &v)) {
                g_autofree char *desc = harness_peer_describe(p);
                g_test_message("no '%s=' in the output of %s", key, desc);
                g_assert_not_reached();
        }
        return v;
}

/* A subscriber that must have got @received messages from @publishers publishers, in order, without gaps. */
void assert_complete_stream(HarnessPeer *p, guint64 received, guint64 publishers)
{
        finish_peer(p, PEER_FINISH_MS);
        g_assert_cmpuint(peer_u64(p, "received"), ==, received);
        g_assert_cmpuint(peer_u64(p, "publishers"), ==, publishers);
        g_assert_cmpuint(peer_u64(p, "in_order"), ==, 1);
        g_assert_cmpuint(peer_u64(p, "gaps"), ==, 0);
}

/* A top-level counter of the metrics line (the per-topic and per-client ones are nested). */
guint64 metric(JsonObject *metrics, const char *name)
{
        JsonNode *node = json_object_get_member(metrics, name);

        if (!node || !JSON_NODE_HOLDS_VALUE(node)) {
                g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), metrics);
                g_autofree char *json = json_to_string(root, FALSE);
                g_test_message("no counter '%s' in the metrics %s", name, json);
                g_assert_not_reached();
        }
        return (guint64)json_node_get_int(node);
}

JsonObject *get_metrics(AgentHarness *h)
{
        g_autoptr(GError) error = NULL;
        JsonObject *m = agent_harness_get_metrics(h, 5000, &error);

        g_assert_no_error(error);
        return m;
}

/* Asks for metrics until counter @name equals @value: what the broker does on EOF is asynchronous. */
void wait_for_metric(AgentHarness *h, const char *name, guint64 value, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        guint64 v;

        for (;;) {
                g_autoptr(JsonObject) m = get_metrics(h);

                v = metric(m, name);
                if (v == value || g_get_monotonic_time() >= deadline)
                        break;
                /* Polling interval of the condition, so as not to flood the agent's log. */
                g_usleep(10 * 1000);
        }
        g_assert_cmpuint(v, ==, value);
}

RawConn *raw_connect(AgentHarness *h)
{
        g_autoptr(GError) error = NULL;
        RawConn *c = raw_conn_connect(agent_harness_get_socket_path(h), &error);

        g_assert_no_error(error);
        return c;
}

RawConn *raw_client(AgentHarness *h, const char *id)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(RawConn) c = raw_connect(h);

        raw_conn_handshake(c, id, 5000, &error);
        g_assert_no_error(error);
        return g_steal_pointer(&c);
}

void raw_subscribe(RawConn *c, const char *const *patterns, const char *correlation_id)
{
        g_autoptr(GError) error = NULL;

        raw_conn_subscribe(c, patterns, correlation_id, &error);
        g_assert_no_error(error);
        raw_conn_expect_ack(c, correlation_id, 5000, &error);
        g_assert_no_error(error);
}

void raw_publish(RawConn *c, const char *topic, const char *payload)
{
        g_autoptr(GError) error = NULL;

        raw_conn_publish(c, topic, payload, strlen(payload), &error);
        g_assert_no_error(error);
}

/* The next frame on @c must be an Event on @topic carrying @payload. */
void raw_expect_event(RawConn *c, const char *topic, const char *payload)
{
        g_autoptr(GError) error = NULL;
        const DebEnvelope *env = raw_conn_read(c, 5000, &error);

        g_assert_no_error(error);
        g_assert_cmpstr(deb_message_type_to_string(env->message_type), ==,
                        deb_message_type_to_string(RAW_MT(EVENT)));
        g_assert_cmpstr(env->topic, ==, topic);
        g_assert_cmpmem(env->payload.data, env->payload.len, payload, strlen(payload));
}

/* The next frame on @c must be an Error @code with @fatal; a fatal one must be followed by EOF. */
void raw_expect_error(RawConn *c, int code, gboolean fatal, guint timeout_ms, RawError *out)
{
        g_auto(RawError) e = {0};
        g_autoptr(GError) error = NULL;

        raw_conn_expect_error(c, timeout_ms, &e, &error);
        g_assert_no_error(error);
        g_test_message("broker said: %s%s: %s", raw_error_code_to_string(e.code), e.fatal ? " (fatal)" : "",
                       e.message);
        g_assert_cmpstr(raw_error_code_to_string(e.code), ==, raw_error_code_to_string(code));
        g_assert_cmpint(e.fatal, ==, fatal);
        if (fatal) {
                raw_conn_expect_eof(c, 2000, &error);
                g_assert_no_error(error);
        }
        if (out)
                *out = (RawError){.code = e.code,
                                  .fatal = e.fatal,
                                  .message = g_steal_pointer(&e.message),
                                  .correlation_id = g_steal_pointer(&e.correlation_id)};
}

/* A publish from one fresh connection reaches a subscription of another. */
void assert_round_trip(AgentHarness *h, const char *tag)
{
        g_autoptr(RawConn) sub = raw_client(h, "roundtrip-sub");
        g_autoptr(RawConn) pub = raw_client(h, "roundtrip-pub");

        raw_subscribe(sub, (const char *const[]){"test.roundtrip", NULL}, "roundtrip");
        raw_publish(pub, "test.roundtrip", tag);
        raw_expect_event(sub, "test.roundtrip", tag);
}
