/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "deb-frame.h"
#include "deb-rpc.h"

G_BEGIN_DECLS

/*
 * The agent's side of a collector, played by a test: it binds the
 * collector's listening socket in a temporary directory, forks the
 * collector with that socket as fd 3, LISTEN_FDS=1 and LISTEN_PID=<the
 * child's pid> exactly as systemd (or the agent's embedded backend) does,
 * dials the socket, answers the collector's Hello with Welcome and its
 * Subscribes with Acks, sends RpcRequest envelopes and reads what comes
 * back. Blocking I/O with deadlines, no main loop: what the collector sends
 * while the test waits for something else is kept in an inbox, in order.
 *
 * Every child is reaped by pid: by test_agent_wait_exit(), else killed and
 * reaped by test_agent_free().
 */
typedef struct _TestAgent TestAgent;

/* One envelope the collector sent, copied out of the frame. */
typedef struct {
        char *topic;
        int message_type;
        char *payload_type;
        char *correlation_id;
        char *sender;
        guint64 sequence_number; /* of the envelope's correlation */
        GBytes *payload;
        gint64 received_us; /* monotonic, when the test read it */
} TestMessage;

void test_message_free(TestMessage *message);

/* An RpcResponse decoded by protobuf-c (deb_rpc_response_free() is for ones built by deb-rpc.c). */
typedef Daemoneye__Eventbus__RpcResponse TestResponse;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestMessage, test_message_free)

/* Default wait for anything the collector should do promptly; generous for sanitizers and loaded CI. */
#define TEST_AGENT_TIMEOUT_MS 15000u

#define TEST_MT(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name
#define TEST_OP(name) DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_##name
#define TEST_STATUS(name) DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_##name
#define TEST_KIND(name) DAEMONEYE__EVENTBUS__ERROR_KIND__ERROR_KIND_##name
#define TEST_CATEGORY(name) DAEMONEYE__EVENTBUS__ERROR_CATEGORY__ERROR_CATEGORY_##name
#define TEST_CSTATUS(name) DAEMONEYE__EVENTBUS__COLLECTOR_STATUS__COLLECTOR_STATUS_##name

/**
 * test_agent_new:
 * @collector_id: the id the collector must say in Hello, and the RPC target
 *
 * Creates a temporary directory and binds and listens on
 * <dir>/collector.sock. Returns: (transfer full) the agent.
 */
TestAgent *test_agent_new(const char *collector_id);

/** test_agent_free: closes everything, kills and reaps a child still running, removes the directory. */
void test_agent_free(TestAgent *agent);

/** test_agent_get_socket_path: Returns: (transfer none) the listening socket's path. */
const char *test_agent_get_socket_path(TestAgent *agent);

/** test_agent_get_dir: Returns: (transfer none) the temporary directory, for files the test wants. */
const char *test_agent_get_dir(TestAgent *agent);

/** test_agent_get_pid: Returns: the child's pid, 0 once reaped. */
GPid test_agent_get_pid(TestAgent *agent);

/**
 * test_agent_spawn:
 * @argv: NULL-terminated; argv[0] an absolute path
 * @activated: %TRUE: the listening socket becomes fd 3 with LISTEN_FDS=1 and
 *   LISTEN_PID=<the child's pid> (set in the child after fork, before exec);
 *   %FALSE: no activation (the collector is expected to dial with --connect)
 *
 * Forks the collector. Its stdout goes to a pipe the test reads with
 * test_agent_wait_exit(); its stderr is the test's. Aborts the test if fork or exec fail.
 */
void test_agent_spawn(TestAgent *agent, const char *const *argv, gboolean activated);

/**
 * test_agent_spawn_connected:
 *
 * Socket activation with an already connected socket: one end of a
 * socketpair becomes the child's fd 3 (LISTEN_FDS=1, LISTEN_PID), the
 * agent keeps the other as its connection.
 */
void test_agent_spawn_connected(TestAgent *agent, const char *const *argv);

/** test_agent_dial: connects to the listening socket, as the agent dials a collector's socket. */
void test_agent_dial(TestAgent *agent);

/** test_agent_accept: accepts the connection a collector started with --connect makes. */
void test_agent_accept(TestAgent *agent);

/**
 * test_agent_handshake:
 *
 * Reads Hello (client id must be the collector's id), sends Welcome, then
 * reads the collector's Subscribes, checks they are exactly its three
 * request topics and acks each.
 * Returns: (transfer full) the capabilities the Hello listed.
 */
GStrv test_agent_handshake(TestAgent *agent);

/**
 * test_agent_start_activated:
 *
 * test_agent_spawn() activated + test_agent_dial() + test_agent_handshake():
 * the collector as the agent starts it under systemd.
 */
void test_agent_start_activated(TestAgent *agent, const char *const *argv);

/** test_agent_close: closes the connection (the collector sees the broker go away). */
void test_agent_close(TestAgent *agent);

/**
 * test_agent_send_bytes:
 * @payload_type: (nullable) the envelope's payload_type
 *
 * Sends one envelope exactly as given, for requests no well-behaved agent sends.
 */
void test_agent_send_bytes(TestAgent *agent, int message_type, const char *topic, const char *correlation_id,
                          const char *payload_type, const void *data, gsize len);

/** test_agent_send_message: test_agent_send_bytes() of @payload packed, payload_type its full name. */
void test_agent_send_message(TestAgent *agent, int message_type, const char *topic, const char *correlation_id,
                            const ProtobufCMessage *payload);

/**
 * test_agent_send:
 * @request: its correlation_id, client_id, target and timestamp_us are filled
 *   in when empty
 * @topic: (nullable) %NULL: deb_rpc_request_topic() for its operation
 *
 * Sends an RpcRequest envelope. Returns: (transfer full) the correlation id.
 */
char *test_agent_send(TestAgent *agent, DebRpcRequest *request, const char *topic);

/**
 * test_agent_wait_response:
 *
 * Waits for the RpcResponse on response.<@correlation_id>, which must also
 * carry that correlation id in its envelope and in the response.
 * Returns: (transfer full) the response (protobuf_c_message_free_unpacked()).
 */
TestResponse *test_agent_wait_response(TestAgent *agent, const char *correlation_id, guint timeout_ms);

/**
 * test_agent_call:
 *
 * test_agent_send() + test_agent_wait_response().
 */
TestResponse *test_agent_call(TestAgent *agent, DebRpcRequest *request);

/** test_agent_call_op: a request of @operation with the payload it needs (empty ones). */
TestResponse *test_agent_call_op(TestAgent *agent, DebRpcOperation operation);

/**
 * test_agent_call_config:
 *
 * UPDATE_CONFIG with @changes_json and the three flags.
 */
TestResponse *test_agent_call_config(TestAgent *agent, const char *changes_json, gboolean validate_only,
                                       gboolean rollback_on_failure, gboolean restart_required);

/** test_agent_send_shutdown: sends GRACEFUL_SHUTDOWN (or FORCE_SHUTDOWN); Returns: (transfer full) its correlation id. */
char *test_agent_send_shutdown(TestAgent *agent, DebRpcOperation operation, guint graceful_timeout_ms,
                               gboolean force_after_timeout);

/** test_agent_get_state: Returns: the CollectorStatus a HEALTH_CHECK reports. */
int test_agent_get_state(TestAgent *agent);

/**
 * test_agent_new_test_collector:
 * @first_arg: extra arguments of daemoneye-test-collector, NULL-terminated
 *
 * Returns: (transfer full) the agent of a socket-activated
 *   daemoneye-test-collector (id "test", $DCC_TEST_COLLECTOR), welcomed and subscribed.
 */
TestAgent *test_agent_new_test_collector(const char *first_arg, ...);

/**
 * test_agent_wait_message:
 * @topic_prefix: messages whose topic starts with this
 *
 * Returns: (transfer full) the first such message, from the inbox or read
 *   now; %NULL after @timeout_ms (not a test failure: the caller decides).
 */
TestMessage *test_agent_wait_message(TestAgent *agent, const char *topic_prefix, guint timeout_ms);

/**
 * test_agent_expect_closed:
 *
 * The collector must close the connection within @timeout_ms; what it
 * sends before is kept in the inbox.
 */
void test_agent_expect_closed(TestAgent *agent, guint timeout_ms);

/** test_agent_drop_messages: forgets inbox messages whose topic starts with @topic_prefix. */
void test_agent_drop_messages(TestAgent *agent, const char *topic_prefix);

/**
 * test_agent_wait_exit:
 *
 * Waits for the child to exit (at most @timeout_ms, else the test fails),
 * reaps it by pid, and reads what it wrote on stdout.
 * Returns: its exit status; the test fails if it was killed by a signal.
 */
int test_agent_wait_exit(TestAgent *agent, guint timeout_ms, char **out_stdout);

/** test_agent_kill: sends @signum to the child. */
void test_agent_kill(TestAgent *agent, int signum);

/** test_unpack: Returns: (transfer full) @message's payload decoded as @desc (the test fails otherwise). */
ProtobufCMessage *test_unpack(const TestMessage *message, const ProtobufCMessageDescriptor *desc);

/** test_assert_error: @response is ERROR (or @status) with @kind, and its message contains @needle. */
void test_assert_error(const TestResponse *response, int status, int kind, const char *needle);

/** test_assert_success: @response is SUCCESS (the test fails with its error message otherwise). */
void test_assert_success(const TestResponse *response);

/** test_collector_path: Returns: the program named by environment variable @var (set by meson). */
const char *test_program_path(const char *var);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestAgent, test_agent_free)

static inline void test_response_free(TestResponse *response)
{
        if (response)
                protobuf_c_message_free_unpacked(&response->base, NULL);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestResponse, test_response_free)

G_END_DECLS
