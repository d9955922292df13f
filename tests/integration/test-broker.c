/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Broker integration tests: each test runs its own daemoneye-agent (see
 * agent-harness.h) and talks to it over the real socket, through broker-peer
 * processes built on libdaemoneye-eventbus and through raw connections that
 * send exactly the bytes a test needs.
 */
#include <signal.h>
#include <string.h>

#include "broker-test-util.h"

static void test_fan_out(void)
{
        const guint n_subs = 4;
        const guint64 count = 10000;
        g_autofree char *count_s = g_strdup_printf("%" G_GUINT64_FORMAT, count);
        g_autoptr(AgentHarness) h = start_agent((const char *const[]){"message_buffer_size", "20000", NULL});
        g_autoptr(JsonObject) m = NULL;
        HarnessPeer *subs[4], *pub;

        for (guint i = 0; i < n_subs; i++) {
                g_autofree char *name = g_strdup_printf("sub%u", i);
                subs[i] =
                        spawn_peer(h, name, "subscribe", "--pattern", "events.process.lifecycle", "--expect",
                                   count_s, "--end-topic", END_TOPIC, "--timeout-ms", PEER_TIMEOUT);
        }
        for (guint i = 0; i < n_subs; i++)
                wait_ready(subs[i]);
        pub = spawn_peer(h, "pub", "publish", "--topic", "events.process.lifecycle", "--count", count_s,
                         "--end-topic", END_TOPIC);
        finish_peer(pub, PEER_FINISH_MS);
        for (guint i = 0; i < n_subs; i++)
                assert_complete_stream(subs[i], count, 1);

        m = get_metrics(h);
        /* Every message (END included) routed once and written once to each subscriber. */
        g_assert_cmpuint(metric(m, METRIC_DROPPED), ==, 0);
        g_assert_cmpuint(metric(m, METRIC_PUBLISHED), ==, count + 1);
        g_assert_cmpuint(metric(m, METRIC_DELIVERED), ==, n_subs * (count + 1));
        stop_agent(h);
}

/* Which of the patterns below each topic matches: written out, not computed with the code under test. */
static const char *const wildcard_patterns[] = {
        "events.#", "events.+.lifecycle", "events.process.lifecycle", "control.#", "#",
};
static const struct {
        const char *topic;
        gboolean matches[G_N_ELEMENTS(wildcard_patterns)];
} wildcard_table[] = {
        {"events.process.lifecycle", {TRUE, TRUE, TRUE, FALSE, TRUE}},
        {"events.process.metadata", {TRUE, FALSE, FALSE, FALSE, TRUE}},
        {"events.network.lifecycle", {TRUE, TRUE, FALSE, FALSE, TRUE}},
        {"events", {TRUE, FALSE, FALSE, FALSE, TRUE}}, /* '#' matches zero levels */
        {"events.process.lifecycle.extra", {TRUE, FALSE, FALSE, FALSE, TRUE}},
        {"control.collector.lifecycle", {FALSE, FALSE, FALSE, TRUE, TRUE}},
        {"control", {FALSE, FALSE, FALSE, TRUE, TRUE}},
        {"eventsx.process.lifecycle", {FALSE, FALSE, FALSE, FALSE, TRUE}},
        {"lifecycle.events", {FALSE, FALSE, FALSE, FALSE, TRUE}},
};

/* One connection, overlapping subscriptions: each message arrives once. */
static void check_overlapping_subscriptions(AgentHarness *h)
{
        g_autoptr(RawConn) sub = raw_client(h, "overlap-sub");
        g_autoptr(RawConn) pub = raw_client(h, "overlap-pub");

        raw_subscribe(sub, (const char *const[]){"events.#", "events.process.+", NULL}, "overlap-1");
        raw_subscribe(sub, (const char *const[]){"events.process.lifecycle", "#", NULL}, "overlap-2");
        for (guint i = 1; i <= 20; i++) {
                g_autofree char *payload = g_strdup_printf("overlap-pub %u", i);
                raw_publish(pub, "events.process.lifecycle", payload);
        }
        raw_publish(pub, "events.network.lifecycle", "sentinel 1");
        raw_publish(pub, "events.filesystem.lifecycle", "sentinel 2");

        /* Per-publisher order: any duplicate would show up before the next distinct message. */
        for (guint i = 1; i <= 20; i++) {
                g_autofree char *payload = g_strdup_printf("overlap-pub %u", i);
                raw_expect_event(sub, "events.process.lifecycle", payload);
        }
        raw_expect_event(sub, "events.network.lifecycle", "sentinel 1");
        raw_expect_event(sub, "events.filesystem.lifecycle", "sentinel 2");
}

static void test_wildcards(void)
{
        const guint64 count = 100;
        g_autofree char *count_s = g_strdup_printf("%" G_GUINT64_FORMAT, count);
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(GPtrArray) pub_args = g_ptr_array_new_with_free_func(g_free);
        HarnessPeer *subs[G_N_ELEMENTS(wildcard_patterns)], *pub;

        for (guint s = 0; s < G_N_ELEMENTS(wildcard_patterns); s++) {
                g_autofree char *name = g_strdup_printf("wild%u", s);
                guint64 expect = 0;
                g_autofree char *expect_s = NULL;

                for (guint t = 0; t < G_N_ELEMENTS(wildcard_table); t++)
                        expect += wildcard_table[t].matches[s] ? count : 0;
                expect_s = g_strdup_printf("%" G_GUINT64_FORMAT, expect);
                subs[s] = spawn_peer(h, name, "subscribe", "--pattern", wildcard_patterns[s], "--expect",
                                     expect_s, "--allow-gaps", "--end-topic", END_TOPIC, "--timeout-ms",
                                     PEER_TIMEOUT);
        }
        for (guint s = 0; s < G_N_ELEMENTS(wildcard_patterns); s++)
                wait_ready(subs[s]);

        g_ptr_array_add(pub_args, g_strdup("publish"));
        for (guint t = 0; t < G_N_ELEMENTS(wildcard_table); t++) {
                g_ptr_array_add(pub_args, g_strdup("--topic"));
                g_ptr_array_add(pub_args, g_strdup(wildcard_table[t].topic));
        }
        g_ptr_array_add(pub_args, g_strdup_printf("--count=%s", count_s));
        g_ptr_array_add(pub_args, g_strdup("--end-topic=" END_TOPIC));
        g_ptr_array_add(pub_args, NULL);
        pub = spawn_peer_argv(h, "pub", (const char *const *)pub_args->pdata);
        finish_peer(pub, PEER_FINISH_MS);

        for (guint s = 0; s < G_N_ELEMENTS(wildcard_patterns); s++) {
                g_test_message("pattern '%s'", wildcard_patterns[s]);
                finish_peer(subs[s], PEER_FINISH_MS);
                g_assert_cmpuint(peer_u64(subs[s], "in_order"), ==, 1);
                for (guint t = 0; t < G_N_ELEMENTS(wildcard_table); t++) {
                        g_autofree char *key = g_strdup_printf("topic:%s", wildcard_table[t].topic);
                        guint64 got = 0;

                        (void)harness_peer_get_u64(subs[s], key, &got);
                        g_test_message("  %s: %" G_GUINT64_FORMAT, wildcard_table[t].topic, got);
                        g_assert_cmpuint(got, ==, wildcard_table[t].matches[s] ? count : 0);
                }
        }
        /* '#' saw every message of the one publisher: no gaps allowed there. */
        g_assert_cmpuint(peer_u64(subs[4], "gaps"), ==, 0);

        check_overlapping_subscriptions(h);
        stop_agent(h);
}

static void test_ordering(void)
{
        static const char *const topics[] = {"events.process.lifecycle", "events.process.metadata",
                                             "events.process.tree"};
        static const char *const patterns[] = {"events.process.+", "#"};
        const guint n_pubs = 3;
        const guint64 count = 100000;
        g_autofree char *count_s = g_strdup_printf("%" G_GUINT64_FORMAT, count);
        g_autofree char *expect_s = g_strdup_printf("%" G_GUINT64_FORMAT, count * n_pubs);
        g_autofree char *pubs_s = g_strdup_printf("%u", n_pubs);
        /* Larger than everything published: any loss here is a broker bug, not a policy. */
        g_autoptr(AgentHarness) h =
                start_agent((const char *const[]){"message_buffer_size", "1000000", NULL});
        g_autoptr(JsonObject) m = NULL;
        HarnessPeer *subs[G_N_ELEMENTS(patterns)], *pubs[G_N_ELEMENTS(topics)];
        gint64 start;

        for (guint s = 0; s < G_N_ELEMENTS(patterns); s++) {
                g_autofree char *name = g_strdup_printf("ordered%u", s);
                subs[s] = spawn_peer(h, name, "subscribe", "--pattern", patterns[s], "--expect", expect_s,
                                     "--publishers", pubs_s, "--end-topic", END_TOPIC, "--timeout-ms",
                                     PEER_TIMEOUT);
        }
        for (guint s = 0; s < G_N_ELEMENTS(patterns); s++)
                wait_ready(subs[s]);

        start = g_get_monotonic_time();
        for (guint i = 0; i < n_pubs; i++) {
                g_autofree char *name = g_strdup_printf("pub%u", i);
                pubs[i] = spawn_peer(h, name, "publish", "--topic", topics[i], "--count", count_s,
                                     "--end-topic", END_TOPIC);
        }
        for (guint i = 0; i < n_pubs; i++)
                finish_peer(pubs[i], PEER_FINISH_MS);
        for (guint s = 0; s < G_N_ELEMENTS(patterns); s++)
                assert_complete_stream(subs[s], count * n_pubs, n_pubs);
        g_test_message("%u x %" G_GUINT64_FORMAT " messages to 2 subscribers in %.2f s", n_pubs, count,
                       (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);

        m = get_metrics(h);
        g_assert_cmpuint(metric(m, METRIC_DROPPED), ==, 0);
        g_assert_cmpuint(metric(m, METRIC_PUBLISHED), ==, n_pubs * (count + 1));
        g_assert_cmpuint(metric(m, METRIC_DELIVERED), ==, G_N_ELEMENTS(patterns) * n_pubs * (count + 1));
        stop_agent(h);
}

/* A handshake on a fresh connection must not wait for the stalled subscriber: the loop never blocks. */
static void assert_handshake_fast(AgentHarness *h)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(RawConn) c = raw_connect(h);
        gint64 start = g_get_monotonic_time();

        raw_conn_handshake(c, "probe", 1000, &error);
        g_assert_no_error(error);
        g_assert_cmpint(g_get_monotonic_time() - start, <, G_USEC_PER_SEC);
}

static void run_slow_subscriber(const char *drop_policy)
{
        const guint64 count = 200000;
        const guint64 buffer = 1000;
        g_autofree char *count_s = g_strdup_printf("%" G_GUINT64_FORMAT, count);
        g_autofree char *buffer_s = g_strdup_printf("%" G_GUINT64_FORMAT, buffer);
        g_autoptr(AgentHarness) h = start_agent(
                (const char *const[]){"message_buffer_size", buffer_s, "drop_policy", drop_policy, NULL});
        g_autoptr(JsonObject) m = NULL;
        HarnessPeer *stalled, *normal, *pub;
        guint64 stalled_received;
        guint probes = 0;

        stalled = spawn_peer(h, "stalled", "stall", "--pattern", "events.process.batch", "--end-topic",
                             END_TOPIC, "--timeout-ms", PEER_TIMEOUT);
        normal = spawn_peer(h, "normal", "subscribe", "--pattern", "events.process.batch", "--expect",
                            count_s, "--end-topic", END_TOPIC, "--progress-topic", "test.progress",
                            "--timeout-ms", PEER_TIMEOUT);
        wait_ready(stalled);
        wait_ready(normal);

        /*
         * The publisher stays within a window of what the normal subscriber has
         * reported, below its queue size: any loss there is the broker's, not
         * the scheduler's. The stalled one reports nothing and overflows.
         */
        pub = spawn_peer(h, "pub", "publish", "--topic", "events.process.batch", "--count", count_s,
                         "--window", "500", "--progress-topic", "test.progress", "--end-topic", END_TOPIC);
        /* Probe the loop while the publisher runs and the stalled queue overflows. */
        while (!harness_peer_wait(pub, 20)) {
                assert_handshake_fast(h);
                probes++;
        }
        finish_peer(pub, 0);
        assert_handshake_fast(h);
        g_test_message("%u handshakes probed while publishing", probes);

        assert_complete_stream(normal, count, 1);
        /* Only the stalled peer may still be connected; with disconnect the broker has closed it already. */
        wait_for_metric(h, METRIC_CONNECTIONS, g_str_equal(drop_policy, "disconnect") ? 0 : 1, 5000);
        m = get_metrics(h);
        g_test_message("dropped=%" G_GUINT64_FORMAT, metric(m, METRIC_DROPPED));

        /* Let the stalled peer read what the broker kept for it. */
        g_assert_true(harness_peer_signal(stalled, SIGUSR1, NULL));
        finish_peer(stalled, PEER_FINISH_MS);
        stalled_received = peer_u64(stalled, "received");
        g_test_message("stalled peer received %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT, stalled_received,
                       count);
        g_assert_cmpuint(peer_u64(stalled, "in_order"), ==, 1);
        g_assert_cmpuint(stalled_received, <, count);

        if (g_str_equal(drop_policy, "disconnect")) {
                g_assert_cmpuint(peer_u64(stalled, "closed"), ==, 1);
                g_assert_cmpuint(peer_u64(stalled, "ended"), ==, 0);
        } else {
                /* drop-oldest keeps the newest: the END marker and the queue's worth before it. */
                g_assert_cmpuint(peer_u64(stalled, "closed"), ==, 0);
                g_assert_cmpuint(peer_u64(stalled, "ended"), ==, 1);
                g_assert_cmpuint(stalled_received, >=, buffer - 1);
                g_assert_cmpuint(peer_u64(stalled, "gaps"), >=, 1);
                /* Every message for it was either delivered or counted as dropped (END included). */
                g_assert_cmpuint(metric(m, METRIC_DROPPED), ==, count - stalled_received);
        }
        stop_agent(h);
}

static void test_slow_subscriber_drop_oldest(void)
{
        run_slow_subscriber("drop-oldest");
}

static void test_slow_subscriber_disconnect(void)
{
        run_slow_subscriber("disconnect");
}

static void test_max_subscribers(void)
{
        g_autoptr(AgentHarness) h = start_agent((const char *const[]){"max_subscribers", "3", NULL});
        g_autoptr(RawConn) extra = NULL;
        g_autoptr(RawConn) again = NULL;
        RawConn *clients[3];

        /* The harness's readiness probe must be gone before counting. */
        wait_for_metric(h, METRIC_CONNECTIONS, 0, 5000);
        for (guint i = 0; i < G_N_ELEMENTS(clients); i++) {
                g_autofree char *id = g_strdup_printf("client%u", i);
                clients[i] = raw_client(h, id);
        }

        extra = raw_connect(h);
        /* The broker may refuse before reading the Hello: a failed write is fine, the Error counts. */
        (void)raw_conn_send_hello(extra, "one-too-many", NULL);
        raw_expect_error(extra, RAW_EC(TOO_MANY_CLIENTS), TRUE, 5000, NULL);

        raw_conn_free(clients[0]);
        wait_for_metric(h, METRIC_CONNECTIONS, 2, 5000);
        again = raw_client(h, "again");

        /* The survivors and the newcomer all work. */
        raw_subscribe(clients[1], (const char *const[]){"test.max", NULL}, "max-sub");
        raw_publish(again, "test.max", "again 1");
        raw_publish(clients[2], "test.max", "client2 1");
        raw_expect_event(clients[1], "test.max", "again 1");
        raw_expect_event(clients[1], "test.max", "client2 1");

        raw_conn_free(clients[1]);
        raw_conn_free(clients[2]);
        stop_agent(h);
}

static void test_handshake_timeout(void)
{
        g_autoptr(AgentHarness) h = start_agent((const char *const[]){"startup_timeout_seconds", "1", NULL});
        g_autoptr(RawConn) silent = raw_connect(h);
        g_autoptr(RawConn) publish_first = NULL;
        g_autoptr(RawConn) subscribe_first = NULL;
        g_autoptr(GError) error = NULL;
        gint64 start = g_get_monotonic_time(), elapsed;

        raw_expect_error(silent, RAW_EC(HANDSHAKE_TIMEOUT), TRUE, 5000, NULL);
        elapsed = g_get_monotonic_time() - start;
        g_test_message("handshake timeout after %.2f s", (double)elapsed / G_USEC_PER_SEC);
        g_assert_cmpint(elapsed, >=, 900 * 1000);
        g_assert_cmpint(elapsed, <=, 3 * G_USEC_PER_SEC);

        /* Nothing but Hello is accepted first (sent at once: well within the handshake deadline). */
        publish_first = raw_connect(h);
        raw_publish(publish_first, "events.process.lifecycle", "early 1");
        raw_expect_error(publish_first, RAW_EC(PROTOCOL), TRUE, 5000, NULL);
        subscribe_first = raw_connect(h);
        raw_conn_subscribe(subscribe_first, (const char *const[]){"events.#", NULL}, "early", &error);
        g_assert_no_error(error);
        raw_expect_error(subscribe_first, RAW_EC(PROTOCOL), TRUE, 5000, NULL);

        /* Clients that do say Hello in time are unaffected. */
        assert_round_trip(h, "after-timeouts 1");
        stop_agent(h);
}

/* A frame whose body the library's own decoder rejects: garbage by the protocol's definition. */
static GByteArray *make_garbage_frame(void)
{
        g_autoptr(GRand) rand = g_rand_new_with_seed(0xdae3e7e);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        GByteArray *frame = g_byte_array_new();
        guint8 body[64];

        for (guint attempt = 0;; attempt++) {
                g_autoptr(GError) error = NULL;

                g_assert_cmpuint(attempt, <, 1000);
                for (gsize i = 0; i < sizeof(body); i++)
                        body[i] = (guint8)g_rand_int_range(rand, 0, 256);
                if (!deb_unpacker_envelope(unpacker, body, sizeof(body), &error))
                        break;
        }
        g_byte_array_set_size(frame, DEB_FRAME_HEADER_SIZE);
        deb_frame_write_header(frame->data, sizeof(body));
        g_byte_array_append(frame, body, sizeof(body));
        return frame;
}

/* One more message for the subscriber process that watches the whole test. */
static void tick(RawConn *tester, guint *ticks)
{
        g_autofree char *payload = g_strdup_printf("tester %u", ++*ticks);

        raw_publish(tester, "test.live", payload);
}

static void test_garbage(void)
{
        const guint max_frame = 65536;
        g_autofree char *max_frame_s = g_strdup_printf("%u", max_frame);
        g_autoptr(AgentHarness) h = start_agent((const char *const[]){"max_frame_bytes", max_frame_s, NULL});
        g_autoptr(RawConn) tester = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(RawError) e = {0};
        HarnessPeer *live;
        guint ticks = 0;

        /* A subscriber process that must keep receiving through every abuse below. */
        live = spawn_peer(h, "live", "subscribe", "--pattern", "test.live", "--expect", "4", "--end-topic",
                          END_TOPIC, "--timeout-ms", PEER_TIMEOUT);
        wait_ready(live);
        tester = raw_client(h, "tester");
        raw_subscribe(tester, (const char *const[]){"test.echo", NULL}, "tester-sub");

        {
                g_autoptr(RawConn) c = raw_client(h, "garbage");
                g_autoptr(GByteArray) frame = make_garbage_frame();

                raw_conn_write(c, frame->data, frame->len, &error);
                g_assert_no_error(error);
                raw_expect_error(c, RAW_EC(MALFORMED), TRUE, 5000, NULL);
                tick(tester, &ticks);
        }
        {
                g_autoptr(RawConn) c = raw_client(h, "oversize");
                guint8 header[DEB_FRAME_HEADER_SIZE + 16] = {0};

                deb_frame_write_header(header, max_frame + 1);
                raw_conn_write(c, header, sizeof(header), &error);
                g_assert_no_error(error);
                raw_expect_error(c, RAW_EC(FRAME_TOO_LARGE), TRUE, 5000, NULL);
                tick(tester, &ticks);
        }
        {
                g_autoptr(RawConn) c = raw_client(h, "wildcard");

                raw_subscribe(c, (const char *const[]){"test.back", NULL}, "wildcard-sub");
                raw_publish(c, "events.+.lifecycle", "wildcard 1");
                raw_expect_error(c, RAW_EC(INVALID_TOPIC), FALSE, 5000, NULL);
                raw_publish(c, "events.#", "wildcard 2");
                raw_expect_error(c, RAW_EC(INVALID_TOPIC), FALSE, 5000, NULL);
                /* Still usable both ways. */
                raw_publish(c, "test.echo", "wildcard 3");
                raw_expect_event(tester, "test.echo", "wildcard 3");
                raw_publish(tester, "test.back", "tester-back 1");
                raw_expect_event(c, "test.back", "tester-back 1");
                tick(tester, &ticks);
        }
        {
                g_autoptr(RawConn) c = raw_client(h, "bad-pattern");

                raw_conn_subscribe(c, (const char *const[]){"events.#.process", NULL}, "corr-bad-pattern",
                                   &error);
                g_assert_no_error(error);
                raw_expect_error(c, RAW_EC(INVALID_PATTERN), FALSE, 5000, &e);
                g_assert_cmpstr(e.correlation_id, ==, "corr-bad-pattern");
                raw_subscribe(c, (const char *const[]){"test.after", NULL}, "corr-good-pattern");
                raw_publish(tester, "test.after", "tester-after 1");
                raw_expect_event(c, "test.after", "tester-after 1");
                tick(tester, &ticks);
        }
        raw_publish(tester, END_TOPIC, "END tester");
        assert_complete_stream(live, ticks, 1);
        stop_agent(h);
}

static void kill_mid_frame(AgentHarness *h, const char *name, const char *body)
{
        HarnessPeer *p = spawn_peer(h, name, "partial", "--announce", "1000", "--body", body);

        wait_ready(p);
        wait_for_metric(h, METRIC_CONNECTIONS, 1, 5000);
        g_assert_true(harness_peer_signal(p, SIGKILL, NULL));
        g_assert_true(harness_peer_wait(p, 5000));
        g_assert_cmpint(harness_peer_get_exit_status(p), ==, -1);
        /* The connection is gone from the broker, not leaked half-read. */
        wait_for_metric(h, METRIC_CONNECTIONS, 0, 5000);
}

static void test_killed_mid_frame(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);

        wait_for_metric(h, METRIC_CONNECTIONS, 0, 5000);
        kill_mid_frame(h, "partial-body", "10");
        kill_mid_frame(h, "partial-header", "0");
        assert_round_trip(h, "after-kill 1");
        wait_for_metric(h, METRIC_CONNECTIONS, 0, 5000);
        g_assert_true(agent_harness_is_running(h));
        stop_agent(h);
}

static void test_shutdown(void)
{
        g_autoptr(AgentHarness) h = start_agent(NULL);
        g_autoptr(RawConn) raw = NULL;
        g_autoptr(GError) error = NULL;
        HarnessPeer *holds[3];

        for (guint i = 0; i < G_N_ELEMENTS(holds); i++) {
                g_autofree char *name = g_strdup_printf("hold%u", i);
                holds[i] = spawn_peer(h, name, "hold", "--pattern", "#", "--timeout-ms", "30000");
        }
        for (guint i = 0; i < G_N_ELEMENTS(holds); i++)
                wait_ready(holds[i]);
        raw = raw_client(h, "raw-hold");

        stop_agent(h);

        for (guint i = 0; i < G_N_ELEMENTS(holds); i++) {
                finish_peer(holds[i], 10000);
                g_assert_cmpuint(peer_u64(holds[i], "closed"), ==, 1);
        }
        /* A goodbye Error is allowed before EOF; it can only say SHUTTING_DOWN. */
        for (;;) {
                g_auto(RawError) e = {0};

                if (!raw_conn_expect_error(raw, 5000, &e, &error))
                        break;
                g_assert_cmpstr(raw_error_code_to_string(e.code), ==,
                                raw_error_code_to_string(RAW_EC(SHUTTING_DOWN)));
        }
        g_assert_error(error, DEB_ERROR, DEB_ERROR_CLOSED);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        /* In sanitizer builds a UBSan report must fail the process it happens in, as ASan's do. */
        g_setenv("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1", FALSE);

        g_test_add_func("/broker/fan-out", test_fan_out);
        g_test_add_func("/broker/wildcards", test_wildcards);
        g_test_add_func("/broker/ordering", test_ordering);
        g_test_add_func("/broker/slow-subscriber/drop-oldest", test_slow_subscriber_drop_oldest);
        g_test_add_func("/broker/slow-subscriber/disconnect", test_slow_subscriber_disconnect);
        g_test_add_func("/broker/max-subscribers", test_max_subscribers);
        g_test_add_func("/broker/handshake-timeout", test_handshake_timeout);
        g_test_add_func("/broker/garbage", test_garbage);
        g_test_add_func("/broker/killed-mid-frame", test_killed_mid_frame);
        g_test_add_func("/broker/shutdown", test_shutdown);
        return g_test_run();
}
