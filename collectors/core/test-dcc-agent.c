/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's side of a collector for the collector-core tests (see
 * test-dcc-agent.h): its listening socket, its connection, frames both
 * ways, the inbox of what the collector sent, and the handshake. Children
 * are in test-dcc-agent-spawn.c, RPC in test-dcc-agent-rpc.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "test-dcc-agent-private.h"

void test_message_free(TestMessage *message)
{
        if (!message)
                return;
        g_free(message->topic);
        g_free(message->payload_type);
        g_free(message->correlation_id);
        g_free(message->sender);
        g_bytes_unref(message->payload);
        g_free(message);
}

/* Moves @fd to >= 4, so the child's dup2() onto 1 and 3 cannot clobber it. */
int test_agent_fd_above_3(int fd)
{
        int moved;

        g_assert_cmpint(fd, >=, 0);
        if (fd > 3)
                return fd;
        moved = fcntl(fd, F_DUPFD_CLOEXEC, 4);
        g_assert_cmpint(moved, >, 3);
        close(fd);
        return moved;
}

TestAgent *test_agent_new(const char *collector_id)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        g_autoptr(GError) error = NULL;
        TestAgent *agent = g_new0(TestAgent, 1);

        agent->collector_id = g_strdup(collector_id);
        agent->fd = -1;
        agent->stdout_fd = -1;
        agent->dir = g_dir_make_tmp("dcc-test-XXXXXX", &error);
        g_assert_no_error(error);
        agent->socket_path = g_build_filename(agent->dir, "collector.sock", NULL);
        g_assert_cmpuint(strlen(agent->socket_path), <, sizeof(addr.sun_path));
        g_strlcpy(addr.sun_path, agent->socket_path, sizeof(addr.sun_path));
        agent->listen_fd = test_agent_fd_above_3(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        g_assert_cmpint(bind(agent->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
        g_assert_cmpint(listen(agent->listen_fd, 8), ==, 0);
        agent->decoder = deb_frame_decoder_new(0);
        agent->unpacker = deb_unpacker_new();
        g_queue_init(&agent->inbox);
        return agent;
}

void test_agent_free(TestAgent *agent)
{
        if (!agent)
                return;
        test_agent_close(agent);
        test_agent_reap_now(agent);
        if (agent->stdout_fd >= 0)
                close(agent->stdout_fd);
        close(agent->listen_fd);
        (void)g_unlink(agent->socket_path);
        (void)g_rmdir(agent->dir);
        g_queue_clear_full(&agent->inbox, (GDestroyNotify)test_message_free);
        deb_frame_decoder_free(agent->decoder);
        deb_unpacker_free(agent->unpacker);
        g_free(agent->socket_path);
        g_free(agent->dir);
        g_free(agent->collector_id);
        g_free(agent);
}

const char *test_agent_get_socket_path(TestAgent *agent)
{
        return agent->socket_path;
}

const char *test_agent_get_dir(TestAgent *agent)
{
        return agent->dir;
}

GPid test_agent_get_pid(TestAgent *agent)
{
        return agent->pid;
}

void test_agent_take_fd(TestAgent *agent, int fd)
{
        g_assert_cmpint(agent->fd, <, 0);
        agent->fd = fd;
        agent->closed = FALSE;
        deb_frame_decoder_free(agent->decoder);
        agent->decoder = deb_frame_decoder_new(0);
}

void test_agent_dial(TestAgent *agent)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_strlcpy(addr.sun_path, agent->socket_path, sizeof(addr.sun_path));
        /* Completes at once: the listening socket queues it until the collector accepts. */
        g_assert_cmpint(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
        test_agent_take_fd(agent, fd);
}

void test_agent_accept(TestAgent *agent)
{
        struct pollfd pfd = {.fd = agent->listen_fd, .events = POLLIN};
        int fd, r;

        do
                r = poll(&pfd, 1, (int)TEST_AGENT_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r == 0)
                g_error("the collector did not connect to %s within %u ms", agent->socket_path,
                        TEST_AGENT_TIMEOUT_MS);
        fd = accept4(agent->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        test_agent_take_fd(agent, fd);
}

void test_agent_close(TestAgent *agent)
{
        if (agent->fd < 0)
                return;
        close(agent->fd);
        agent->fd = -1;
}

static void agent_write(TestAgent *agent, const guint8 *data, gsize len)
{
        while (len > 0) {
                ssize_t n = send(agent->fd, data, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        g_error("writing to the collector: %s", g_strerror(errno));
                data += n;
                len -= (gsize)n;
        }
}

void test_agent_send_bytes(TestAgent *agent, int message_type, const char *topic, const char *correlation_id,
                          const char *payload_type, const void *data, gsize len)
{
        DebEnvelope envelope = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        g_autoptr(GByteArray) frame = g_byte_array_new();
        g_autoptr(GError) error = NULL;

        correlation.correlation_id = (char *)correlation_id;
        correlation.root_correlation_id = (char *)correlation_id;
        correlation.sequence_number = ++agent->next_id;
        envelope.message_type = message_type;
        envelope.topic = (char *)(topic ? topic : "");
        envelope.correlation = &correlation;
        envelope.payload_type = (char *)(payload_type ? payload_type : "");
        envelope.payload.data = (guint8 *)data;
        envelope.payload.len = len;
        envelope.timestamp_us = (guint64)g_get_real_time();
        envelope.sender = (char *)"test-agent";
        g_assert_true(deb_frame_encode_envelope(frame, &envelope, 0, &error));
        g_assert_no_error(error);
        agent_write(agent, frame->data, frame->len);
}

void test_agent_send_message(TestAgent *agent, int message_type, const char *topic, const char *correlation_id,
                            const ProtobufCMessage *payload)
{
        gsize size = protobuf_c_message_get_packed_size(payload);
        g_autofree guint8 *packed = g_malloc(MAX(size, 1));

        protobuf_c_message_pack(payload, packed);
        test_agent_send_bytes(agent, message_type, topic, correlation_id, payload->descriptor->name, packed, size);
}

/* Reads one frame into the inbox. Returns: FALSE on timeout or once the collector closed. */
static gboolean agent_pump(TestAgent *agent, gint64 deadline_us)
{
        g_assert_cmpint(agent->fd, >=, 0);
        for (;;) {
                struct pollfd pfd = {.fd = agent->fd, .events = POLLIN};
                g_autoptr(GError) error = NULL;
                const DebEnvelope *envelope;
                TestMessage *message;
                DebFrame frame;
                gint64 remaining_ms;
                guint8 *space;
                gsize avail;
                ssize_t n;
                int r;

                r = deb_frame_decoder_next(agent->decoder, &frame, &error);
                g_assert_no_error(error);
                if (r > 0) {
                        envelope = deb_unpacker_envelope(agent->unpacker, frame.body, frame.body_len, &error);
                        g_assert_no_error(error);
                        message = g_new0(TestMessage, 1);
                        message->topic = g_strdup(envelope->topic);
                        message->message_type = envelope->message_type;
                        message->payload_type = g_strdup(envelope->payload_type);
                        message->correlation_id =
                                g_strdup(envelope->correlation ? envelope->correlation->correlation_id : "");
                        message->sequence_number =
                                envelope->correlation ? envelope->correlation->sequence_number : 0;
                        message->sender = g_strdup(envelope->sender);
                        message->payload = g_bytes_new(envelope->payload.data, envelope->payload.len);
                        message->received_us = g_get_monotonic_time();
                        g_queue_push_tail(&agent->inbox, message);
                        return TRUE;
                }
                if (agent->closed)
                        return FALSE;
                remaining_ms = (deadline_us - g_get_monotonic_time() + 999) / 1000;
                if (remaining_ms <= 0)
                        return FALSE;
                r = poll(&pfd, 1, (int)remaining_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(r, >=, 0);
                if (r == 0)
                        continue;
                space = deb_frame_decoder_get_space(agent->decoder, 64 * 1024, &avail);
                n = read(agent->fd, space, avail);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != ECONNRESET)
                        g_error("reading from the collector: %s", g_strerror(errno));
                if (n <= 0) {
                        /* A collector never cuts one of its frames in half. */
                        g_assert_cmpuint(deb_frame_decoder_get_buffered(agent->decoder), ==, 0);
                        agent->closed = TRUE;
                        return FALSE;
                }
                deb_frame_decoder_commit(agent->decoder, (gsize)n);
        }
}

/* Returns: (transfer full) the first inbox message @match accepts, reading more as needed; NULL after the deadline. */
TestMessage *test_agent_take(TestAgent *agent, TestMessageMatch match, gconstpointer data, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        GList *l = agent->inbox.head;

        for (;;) {
                for (; l; l = l->next) {
                        if (match(l->data, data)) {
                                TestMessage *message = l->data;

                                g_queue_delete_link(&agent->inbox, l);
                                return message;
                        }
                }
                if (!agent_pump(agent, deadline))
                        return NULL;
                l = agent->inbox.tail;
        }
}

static gboolean match_prefix(const TestMessage *message, gconstpointer data)
{
        return g_str_has_prefix(message->topic, data);
}

static gboolean match_type(const TestMessage *message, gconstpointer data)
{
        return message->message_type == GPOINTER_TO_INT(data);
}

gboolean test_agent_match_topic(const TestMessage *message, gconstpointer data)
{
        return g_str_equal(message->topic, data);
}

TestMessage *test_agent_wait_message(TestAgent *agent, const char *topic_prefix, guint timeout_ms)
{
        return test_agent_take(agent, match_prefix, topic_prefix, timeout_ms);
}

void test_agent_drop_messages(TestAgent *agent, const char *topic_prefix)
{
        GList *l = agent->inbox.head;

        while (l) {
                GList *next = l->next;

                if (match_prefix(l->data, topic_prefix)) {
                        test_message_free(l->data);
                        g_queue_delete_link(&agent->inbox, l);
                }
                l = next;
        }
}

void test_agent_expect_closed(TestAgent *agent, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        while (agent_pump(agent, deadline))
                ;
        if (!agent->closed)
                g_error("the collector did not close its connection within %u ms", timeout_ms);
}

ProtobufCMessage *test_unpack(const TestMessage *message, const ProtobufCMessageDescriptor *desc)
{
        gsize len;
        const guint8 *data = g_bytes_get_data(message->payload, &len);
        ProtobufCMessage *decoded;

        g_assert_cmpstr(message->payload_type, ==, desc->name);
        decoded = protobuf_c_message_unpack(desc, NULL, len, data);
        g_assert_nonnull(decoded);
        return decoded;
}

static gboolean strv_contains_all(char **have, gsize n_have, const char *const *want)
{
        for (gsize i = 0; want[i]; i++) {
                gboolean found = FALSE;

                for (gsize j = 0; j < n_have && !found; j++)
                        found = g_str_equal(have[j], want[i]);
                if (!found)
                        return FALSE;
        }
        return TRUE;
}

GStrv test_agent_handshake(TestAgent *agent)
{
        Daemoneye__Eventbus__Welcome welcome = DAEMONEYE__EVENTBUS__WELCOME__INIT;
        Daemoneye__Eventbus__Ack ack = DAEMONEYE__EVENTBUS__ACK__INIT;
        g_autoptr(TestMessage) hello_message = NULL;
        g_autofree char *topic_control = g_strconcat("control.collector.", agent->collector_id, NULL);
        g_autofree char *topic_config = g_strconcat("control.collector.config.", agent->collector_id, NULL);
        g_autofree char *topic_shutdown = g_strconcat("control.shutdown.", agent->collector_id, NULL);
        const char *const want[] = {topic_control, topic_config, topic_shutdown, NULL};
        g_autoptr(GPtrArray) subscribed = g_ptr_array_new_with_free_func(g_free);
        Daemoneye__Eventbus__Hello *hello;
        GStrv capabilities;

        /* Nothing is accepted before Hello: it must be the very first frame. */
        g_assert_true(g_queue_is_empty(&agent->inbox));
        g_assert_true(agent_pump(agent, g_get_monotonic_time() + TEST_AGENT_TIMEOUT_MS * 1000));
        hello_message = g_queue_pop_head(&agent->inbox);
        g_assert_cmpint(hello_message->message_type, ==, TEST_MT(HELLO));
        hello = (Daemoneye__Eventbus__Hello *)test_unpack(hello_message, &daemoneye__eventbus__hello__descriptor);
        g_assert_cmpstr(hello->client_id, ==, agent->collector_id);
        g_assert_cmpuint(hello->protocol_version, ==, DEB_PROTOCOL_VERSION);
        capabilities = g_new0(char *, hello->n_capabilities + 1);
        for (gsize i = 0; i < hello->n_capabilities; i++)
                capabilities[i] = g_strdup(hello->capabilities[i]);
        protobuf_c_message_free_unpacked(&hello->base, NULL);

        welcome.broker_version = (char *)"test";
        welcome.protocol_version = DEB_PROTOCOL_VERSION;
        welcome.max_frame_bytes = DEB_DEFAULT_MAX_FRAME_BYTES;
        welcome.session_id = (char *)"test-session";
        test_agent_send_message(agent, TEST_MT(WELCOME), NULL, hello_message->correlation_id, &welcome.base);

        while (subscribed->len < 3) {
                g_autoptr(TestMessage) message = test_agent_take(agent, match_type, GINT_TO_POINTER(TEST_MT(SUBSCRIBE)),
                                                            TEST_AGENT_TIMEOUT_MS);
                Daemoneye__Eventbus__Subscribe *subscribe;

                g_assert_nonnull(message);
                subscribe = (Daemoneye__Eventbus__Subscribe *)test_unpack(
                        message, &daemoneye__eventbus__subscribe__descriptor);
                for (gsize i = 0; i < subscribe->n_patterns; i++)
                        g_ptr_array_add(subscribed, g_strdup(subscribe->patterns[i]));
                ack.n_patterns = subscribe->n_patterns;
                ack.patterns = subscribe->patterns;
                test_agent_send_message(agent, TEST_MT(ACK), NULL, message->correlation_id, &ack.base);
                protobuf_c_message_free_unpacked(&subscribe->base, NULL);
        }
        /* Exactly its three request topics: no wildcard, nothing else. */
        g_assert_cmpuint(subscribed->len, ==, 3);
        g_assert_true(strv_contains_all((char **)subscribed->pdata, subscribed->len, want));
        return capabilities;
}
