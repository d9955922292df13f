/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How a collector built on collector-core gets its connection and keeps it
 * alive: socket activation on a listening socket (the agent dials it) and on
 * an already connected one, --connect PATH, the handshake, heartbeats, and
 * what happens when the broker goes away or the activation fd is wrong.
 * The test plays the agent; daemoneye-test-collector is the collector.
 */
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test-dcc-agent.h"

static void assert_strv_has(char **strv, const char *want)
{
        if (!g_strv_contains((const char *const *)strv, want))
                g_error("'%s' missing from the list", want);
}

/* Listening activation socket: the agent dials, the collector accepts and says Hello. */
static void test_activation_listening(void)
{
        const char *argv[] = {test_program_path("DCC_TEST_COLLECTOR"), NULL};
        g_autoptr(TestAgent) agent = test_agent_new("test");
        g_auto(GStrv) capabilities = NULL;
        g_autofree char *out = NULL;

        test_agent_spawn(agent, argv, TRUE);
        test_agent_dial(agent);
        capabilities = test_agent_handshake(agent);
        /* Hello lists every operation it serves and its features. */
        assert_strv_has(capabilities, "operation.start");
        assert_strv_has(capabilities, "operation.pause");
        assert_strv_has(capabilities, "operation.get_capabilities");
        assert_strv_has(capabilities, "operation.force_shutdown");
        assert_strv_has(capabilities, "feature.counter");
        g_assert_cmpint(test_agent_get_state(agent), ==, TEST_CSTATUS(STOPPED));

        g_free(test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 0);
}

/* An already connected socket as fd 3 is used as it is. */
static void test_activation_connected(void)
{
        const char *argv[] = {test_program_path("DCC_TEST_COLLECTOR"), "--id", "conn-1", NULL};
        g_autoptr(TestAgent) agent = test_agent_new("conn-1");
        g_auto(GStrv) capabilities = NULL;
        g_autoptr(TestResponse) response = NULL;

        test_agent_spawn_connected(agent, argv);
        capabilities = test_agent_handshake(agent);
        response = test_agent_call_op(agent, TEST_OP(START));
        test_assert_success(response);
        g_assert_cmpint(response->lifecycle->status, ==, TEST_CSTATUS(RUNNING));
        g_assert_cmpuint(response->lifecycle->pid, ==, (guint)test_agent_get_pid(agent));

        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

/* Without activation the collector dials the broker socket given with --connect. */
static void test_connect_path(void)
{
        g_autoptr(TestAgent) agent = test_agent_new("dialer");
        const char *argv[] = {test_program_path("DCC_TEST_COLLECTOR"), "--id", "dialer", "--connect",
                              test_agent_get_socket_path(agent), NULL};
        g_auto(GStrv) capabilities = NULL;
        g_autoptr(TestResponse) response = NULL;
        g_autofree char *id = NULL;
        g_autofree char *out = NULL;

        test_agent_spawn(agent, argv, FALSE);
        test_agent_accept(agent);
        capabilities = test_agent_handshake(agent);
        response = test_agent_call_op(agent, TEST_OP(START));
        test_assert_success(response);

        id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE);
        g_clear_pointer(&response, test_response_free);
        response = test_agent_wait_response(agent, id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(response);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 0);
        g_assert_nonnull(strstr(out, "order=1,2"));
}

/*
 * The agent's embedded backend passes the instance id and heartbeat interval
 * in the environment: they are the defaults of --id and --heartbeat-interval.
 */
static void test_environment_defaults(void)
{
        /* env(1) execs in place: the pid, hence LISTEN_PID, stays the collector's. */
        const char *argv[] = {"/usr/bin/env", "DAEMONEYE_COLLECTOR_ID=procmond-2",
                              "DAEMONEYE_HEARTBEAT_INTERVAL_MS=50", test_program_path("DCC_TEST_COLLECTOR"), NULL};
        g_autoptr(TestAgent) agent = test_agent_new("procmond-2");
        g_autoptr(TestMessage) first = NULL;
        g_autoptr(TestMessage) second = NULL;

        test_agent_start_activated(agent, argv);
        first = test_agent_wait_message(agent, "control.health.heartbeat.procmond-2", TEST_AGENT_TIMEOUT_MS);
        second = test_agent_wait_message(agent, "control.health.heartbeat.procmond-2", 2000);
        g_assert_nonnull(first);
        g_assert_nonnull(second);
        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

/* --connect to a socket nobody listens on: exit status 1 and a message, at once. */
static void test_connect_refused(void)
{
        g_autoptr(TestAgent) agent = test_agent_new("test");
        g_autofree char *missing = g_build_filename(test_agent_get_dir(agent), "nobody.sock", NULL);
        const char *argv[] = {test_program_path("DCC_TEST_COLLECTOR"), "--connect", missing, NULL};

        test_agent_spawn(agent, argv, FALSE);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 1);
}

/* A bad id or option is a usage error (2) before anything is connected. */
static void test_usage_errors(void)
{
        const char *bad[][4] = {
                {"--id", "a.b", NULL},
                {"--set", "nope=1", NULL},
                {"--set", "interval_ms=5", NULL},
                {"--set", "interval_ms", NULL},
                {"--heartbeat-interval", "5", NULL},
                {"stray-argument", NULL},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(TestAgent) agent = test_agent_new("test");
                const char *argv[5] = {test_program_path("DCC_TEST_COLLECTOR"), bad[i][0], bad[i][1], bad[i][2]};

                test_agent_spawn(agent, argv, TRUE);
                g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 2);
        }
}

/* fd 3 that is not a Unix stream socket: refused with status 1, not served. */
static void test_activation_bad_fd(void)
{
        g_autoptr(TestAgent) agent = test_agent_new("test");
        const char *argv[] = {"/bin/sh", "-c", "exec 3</dev/null; LISTEN_PID=$$ exec \"$0\"",
                              test_program_path("DCC_TEST_COLLECTOR"), NULL};

        /* The shell puts /dev/null on fd 3 and execs the collector with its own pid as LISTEN_PID. */
        test_agent_spawn(agent, argv, TRUE);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 1);
}

static Daemoneye__Eventbus__Heartbeat *take_heartbeat(TestAgent *agent, TestMessage **out_message)
{
        g_autoptr(TestMessage) message = test_agent_wait_message(agent, "control.health.heartbeat.",
                                                                 TEST_AGENT_TIMEOUT_MS);
        Daemoneye__Eventbus__Heartbeat *heartbeat;

        g_assert_nonnull(message);
        g_assert_cmpstr(message->topic, ==, "control.health.heartbeat.hb");
        g_assert_cmpint(message->message_type, ==, TEST_MT(HEARTBEAT));
        heartbeat = (Daemoneye__Eventbus__Heartbeat *)test_unpack(message,
                                                                  &daemoneye__eventbus__heartbeat__descriptor);
        g_assert_cmpstr(heartbeat->collector_id, ==, "hb");
        g_assert_cmpuint(heartbeat->timestamp_us, >, 0);
        if (out_message)
                *out_message = g_steal_pointer(&message);
        return heartbeat;
}

/* Heartbeats: from 1, one more each time, every interval, and at once on a state change. */
static void test_heartbeats(void)
{
        const char *argv[] = {test_program_path("DCC_TEST_COLLECTOR"), "--id", "hb", "--heartbeat-interval", "100",
                              "--set", "interval_ms=20", NULL};
        g_autoptr(TestAgent) agent = test_agent_new("hb");
        g_autoptr(TestResponse) response = NULL;
        gint64 first_us = 0, previous_us = 0;
        guint64 events = 0;

        test_agent_start_activated(agent, argv);
        for (guint64 seq = 1; seq <= 6; seq++) {
                g_autoptr(TestMessage) message = NULL;
                Daemoneye__Eventbus__Heartbeat *heartbeat = take_heartbeat(agent, &message);

                g_assert_cmpuint(heartbeat->sequence, ==, seq);
                g_assert_cmpint(heartbeat->status, ==, TEST_CSTATUS(STOPPED));
                if (seq == 1)
                        first_us = message->received_us;
                else
                        /* Never early: a timer, not a busy loop. */
                        g_assert_cmpint(message->received_us - previous_us, >=, 50 * 1000);
                previous_us = message->received_us;
                protobuf_c_message_free_unpacked(&heartbeat->base, NULL);
        }
        /* Five intervals of 100 ms: not faster, and not grossly slower even under sanitizers. */
        g_assert_cmpint(previous_us - first_us, >=, 450 * 1000);
        g_assert_cmpint(previous_us - first_us, <=, 3000 * 1000);

        /* A state change is announced at once, with the next sequence numbers. */
        response = test_agent_call_op(agent, TEST_OP(START));
        test_assert_success(response);
        for (guint64 seq = 7;; seq++) {
                Daemoneye__Eventbus__Heartbeat *heartbeat = take_heartbeat(agent, NULL);
                gboolean running = heartbeat->status == TEST_CSTATUS(RUNNING);

                g_assert_cmpuint(heartbeat->sequence, ==, seq);
                protobuf_c_message_free_unpacked(&heartbeat->base, NULL);
                if (running)
                        break;
        }
        /* events_published grows while it runs. */
        for (guint i = 0; i < 50 && events < 3; i++) {
                Daemoneye__Eventbus__Heartbeat *heartbeat = take_heartbeat(agent, NULL);

                g_assert_cmpuint(heartbeat->events_published, >=, events);
                events = heartbeat->events_published;
                protobuf_c_message_free_unpacked(&heartbeat->base, NULL);
        }
        g_assert_cmpuint(events, >=, 3);

        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

/* The broker closing the connection ends the collector: stop, cleanup hooks, exit 4. */
static void test_broker_closes(void)
{
        g_autoptr(TestAgent) agent = test_agent_new_test_collector(NULL);
        g_autoptr(TestResponse) response = test_agent_call_op(agent, TEST_OP(START));
        g_autofree char *out = NULL;

        test_assert_success(response);
        test_agent_close(agent);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, &out), ==, 4);
        g_assert_nonnull(strstr(out, "cleanup=2 order=1,2"));
}

/* Closed during the handshake (no Welcome): exit 1. */
static void test_broker_closes_in_handshake(void)
{
        const char *argv[] = {test_program_path("DCC_TEST_COLLECTOR"), NULL};
        g_autoptr(TestAgent) agent = test_agent_new("test");
        g_autoptr(TestMessage) hello = NULL;

        test_agent_spawn(agent, argv, TRUE);
        test_agent_dial(agent);
        hello = test_agent_wait_message(agent, "", TEST_AGENT_TIMEOUT_MS);
        g_assert_nonnull(hello);
        g_assert_cmpint(hello->message_type, ==, TEST_MT(HELLO));
        test_agent_close(agent);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 1);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        /* A collector that died must be a test failure, not a SIGPIPE of the test. */
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/dcc/connection/activation-listening", test_activation_listening);
        g_test_add_func("/dcc/connection/activation-connected", test_activation_connected);
        g_test_add_func("/dcc/connection/activation-bad-fd", test_activation_bad_fd);
        g_test_add_func("/dcc/connection/connect-path", test_connect_path);
        g_test_add_func("/dcc/connection/connect-refused", test_connect_refused);
        g_test_add_func("/dcc/connection/environment-defaults", test_environment_defaults);
        g_test_add_func("/dcc/connection/usage-errors", test_usage_errors);
        g_test_add_func("/dcc/connection/heartbeats", test_heartbeats);
        g_test_add_func("/dcc/connection/broker-closes", test_broker_closes);
        g_test_add_func("/dcc/connection/broker-closes-in-handshake", test_broker_closes_in_handshake);
        return g_test_run();
}
