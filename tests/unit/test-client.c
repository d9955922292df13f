/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of eventbus/deb-client*.c against a fake broker living in the test:
 * the broker end of a socketpair (or of a listening socket), read with the
 * frame decoder and answered by hand, all on one pushed main context.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "deb-client.h"
#include "deb-error.h"

#define MT(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name
#define EC(name) DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_##name

/* ---- fake broker -------------------------------------------------------- */

typedef struct {
        GMainContext *context;
        int fd;          /* broker end of the connection, -1 until accepted */
        int listen_fd;   /* when listening on a path, else -1 */
        GSource *source; /* reads the connection, or accepts on listen_fd */
        DebFrameDecoder *decoder;
        DebUnpacker *unpacker;
        GQueue frames; /* GBytes: bodies of frames the test has not looked at */
        GBytes *current;
        gsize chunk; /* bytes read per wakeup, 0 for all */
        gboolean auto_welcome;
        gboolean eof;
} FakeBroker;

static void fake_broker_send_envelope(FakeBroker *broker, const DebEnvelope *envelope)
{
        g_autoptr(GByteArray) buf = g_byte_array_new();
        g_autoptr(GError) error = NULL;
        gsize off = 0;

        g_assert_true(deb_frame_encode_envelope(buf, envelope, 0, &error));
        g_assert_no_error(error);
        while (off < buf->len) {
                ssize_t n = send(broker->fd, buf->data + off, buf->len - off, MSG_NOSIGNAL);

                g_assert_cmpint(n, >, 0);
                off += (gsize)n;
        }
}

static void fake_broker_send_control(FakeBroker *broker, int type, const char *payload_type,
                                     const ProtobufCMessage *message, const char *correlation_id)
{
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        DebEnvelope envelope = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        g_autofree guint8 *payload = g_malloc(protobuf_c_message_get_packed_size(message) + 1);

        correlation.correlation_id = (char *)(correlation_id ? correlation_id : "");
        envelope.message_type = type;
        envelope.correlation = &correlation;
        envelope.payload_type = (char *)payload_type;
        envelope.payload.len = protobuf_c_message_pack(message, payload);
        envelope.payload.data = payload;
        envelope.sender = (char *)"broker";
        fake_broker_send_envelope(broker, &envelope);
}

static void fake_broker_send_welcome(FakeBroker *broker, guint64 max_frame_bytes)
{
        Daemoneye__Eventbus__Welcome welcome = DAEMONEYE__EVENTBUS__WELCOME__INIT;

        welcome.protocol_version = DEB_PROTOCOL_VERSION;
        welcome.max_frame_bytes = max_frame_bytes;
        welcome.session_id = (char *)"session-1";
        fake_broker_send_control(broker, MT(WELCOME), "daemoneye.eventbus.Welcome", &welcome.base, NULL);
}

static void fake_broker_send_error(FakeBroker *broker, int code, const char *message, gboolean fatal,
                                   const char *correlation_id)
{
        Daemoneye__Eventbus__Error error = DAEMONEYE__EVENTBUS__ERROR__INIT;

        error.code = code;
        error.message = (char *)message;
        error.fatal = fatal;
        fake_broker_send_control(broker, MT(ERROR), "daemoneye.eventbus.Error", &error.base, correlation_id);
}

static void fake_broker_send_ack(FakeBroker *broker, const char *correlation_id)
{
        Daemoneye__Eventbus__Ack ack = DAEMONEYE__EVENTBUS__ACK__INIT;

        fake_broker_send_control(broker, MT(ACK), "daemoneye.eventbus.Ack", &ack.base, correlation_id);
}

static void fake_broker_send_event(FakeBroker *broker, const char *topic, const char *payload)
{
        DebEnvelope envelope = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;

        envelope.topic = (char *)topic;
        envelope.message_type = MT(EVENT);
        envelope.payload.data = (guint8 *)payload;
        envelope.payload.len = strlen(payload);
        fake_broker_send_envelope(broker, &envelope);
}

/* Reads what is there (at most @chunk bytes) and queues the frames. */
static void fake_broker_read(FakeBroker *broker)
{
        gsize want = broker->chunk ? broker->chunk : 64 * 1024;
        DebFrame frame;
        gsize avail;
        guint8 *space;
        ssize_t n;

        if (broker->eof)
                return;
        space = deb_frame_decoder_get_space(broker->decoder, want, &avail);
        n = recv(broker->fd, space, MIN(want, avail), MSG_DONTWAIT);
        if (n < 0) {
                g_assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
                return;
        }
        if (n == 0) {
                broker->eof = TRUE;
                return;
        }
        deb_frame_decoder_commit(broker->decoder, (gsize)n);
        while (deb_frame_decoder_next(broker->decoder, &frame, NULL) == 1) {
                g_queue_push_tail(&broker->frames, g_bytes_new(frame.body, frame.body_len));
                if (broker->auto_welcome) {
                        const DebEnvelope *env =
                                deb_unpacker_envelope(broker->unpacker, frame.body, frame.body_len, NULL);

                        g_assert_nonnull(env);
                        if (env->message_type == MT(HELLO))
                                fake_broker_send_welcome(broker, 0);
                }
        }
}

static gboolean fake_broker_read_cb(int fd, GIOCondition condition, gpointer user_data)
{
        FakeBroker *broker = user_data;

        fake_broker_read(broker);
        if (!broker->eof)
                return G_SOURCE_CONTINUE;
        broker->source = NULL; /* the context drops its last reference */
        return G_SOURCE_REMOVE;
}

static gboolean fake_broker_slow_read_cb(gpointer user_data)
{
        fake_broker_read(user_data);
        return G_SOURCE_CONTINUE;
}

static void fake_broker_watch(FakeBroker *broker)
{
        g_clear_pointer(&broker->source, g_source_destroy);
        broker->source = g_unix_fd_source_new(broker->fd, G_IO_IN | G_IO_HUP);
        g_source_set_callback(broker->source, G_SOURCE_FUNC(fake_broker_read_cb), broker, NULL);
        g_source_attach(broker->source, broker->context);
        g_source_unref(broker->source);
}

/* Reads @chunk bytes per @interval_ms instead of whenever data arrives. */
static void fake_broker_read_slowly(FakeBroker *broker, guint interval_ms, gsize chunk)
{
        g_clear_pointer(&broker->source, g_source_destroy);
        broker->chunk = chunk;
        broker->source = g_timeout_source_new(interval_ms);
        g_source_set_callback(broker->source, fake_broker_slow_read_cb, broker, NULL);
        g_source_attach(broker->source, broker->context);
        g_source_unref(broker->source);
}

static FakeBroker *fake_broker_new(GMainContext *context)
{
        FakeBroker *broker = g_new0(FakeBroker, 1);

        broker->context = context;
        broker->fd = -1;
        broker->listen_fd = -1;
        broker->decoder = deb_frame_decoder_new(0);
        broker->unpacker = deb_unpacker_new();
        g_queue_init(&broker->frames);
        return broker;
}

/* Returns: the client end of a socketpair whose other end is @broker's. */
static int fake_broker_pair(FakeBroker *broker)
{
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        broker->fd = sv[0];
        fake_broker_watch(broker);
        return sv[1];
}

static void fake_broker_close(FakeBroker *broker)
{
        g_clear_pointer(&broker->source, g_source_destroy);
        if (broker->fd >= 0)
                close(broker->fd);
        broker->fd = -1;
}

static void fake_broker_free(FakeBroker *broker)
{
        fake_broker_close(broker);
        if (broker->listen_fd >= 0)
                close(broker->listen_fd);
        g_queue_clear_full(&broker->frames, (GDestroyNotify)g_bytes_unref);
        g_clear_pointer(&broker->current, g_bytes_unref);
        deb_frame_decoder_free(broker->decoder);
        deb_unpacker_free(broker->unpacker);
        g_free(broker);
}

static gboolean tick_cb(gpointer user_data)
{
        return G_SOURCE_CONTINUE;
}

/* Iterates @ctx until @cond holds; a ticking source bounds each wait. */
#define ITERATE_UNTIL(ctx, cond)                                                                            \
        G_STMT_START                                                                                        \
        {                                                                                                   \
                gint64 deadline_ = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;                            \
                GSource *tick_ = g_timeout_source_new(20);                                                  \
                g_source_set_callback(tick_, tick_cb, NULL, NULL);                                          \
                g_source_attach(tick_, (ctx));                                                              \
                while (!(cond)) {                                                                           \
                        if (g_get_monotonic_time() > deadline_)                                             \
                                g_error("%s:%d: timed out waiting for %s", __FILE__, __LINE__, #cond);      \
                        g_main_context_iteration((ctx), TRUE);                                              \
                }                                                                                           \
                g_source_destroy(tick_);                                                                    \
                g_source_unref(tick_);                                                                      \
        }                                                                                                   \
        G_STMT_END

/* Iterates for @ms milliseconds, to show that something does not happen. */
static void iterate_for(GMainContext *context, guint ms)
{
        gint64 end = g_get_monotonic_time() + ms * G_TIME_SPAN_MILLISECOND;

        ITERATE_UNTIL(context, g_get_monotonic_time() >= end);
}

/* Returns: (transfer none) the next frame the client sent, valid until the next call. */
static const DebEnvelope *fake_broker_next(FakeBroker *broker)
{
        const DebEnvelope *envelope;
        g_autoptr(GError) error = NULL;

        ITERATE_UNTIL(broker->context, !g_queue_is_empty(&broker->frames));
        g_clear_pointer(&broker->current, g_bytes_unref);
        broker->current = g_queue_pop_head(&broker->frames);
        envelope = deb_unpacker_envelope(broker->unpacker, g_bytes_get_data(broker->current, NULL),
                                         g_bytes_get_size(broker->current), &error);
        g_assert_no_error(error);
        return envelope;
}

static const ProtobufCMessage *fake_broker_payload(FakeBroker *broker, const DebEnvelope *envelope,
                                                   const ProtobufCMessageDescriptor *desc)
{
        g_autoptr(GError) error = NULL;
        const ProtobufCMessage *message;

        g_assert_cmpstr(envelope->payload_type, ==, desc->name);
        message = deb_unpacker_message(broker->unpacker, desc, envelope->payload.data, envelope->payload.len,
                                       &error);
        g_assert_no_error(error);
        return message;
}

/*
 * Takes the next frame, which must be a Subscribe or Unsubscribe of @pattern.
 * Acks it if @ack; Returns: (transfer full) its correlation id.
 */
static char *fake_broker_take_request(FakeBroker *broker, int type, const char *pattern, gboolean ack)
{
        const DebEnvelope *envelope = fake_broker_next(broker);
        const Daemoneye__Eventbus__Subscribe *request; /* Unsubscribe has the same layout */
        g_autofree char *correlation_id = NULL;

        g_assert_cmpint(envelope->message_type, ==, type);
        request = (const void *)fake_broker_payload(broker, envelope,
                                                    type == MT(SUBSCRIBE)
                                                            ? &daemoneye__eventbus__subscribe__descriptor
                                                            : &daemoneye__eventbus__unsubscribe__descriptor);
        g_assert_cmpuint(request->n_patterns, ==, 1);
        g_assert_cmpstr(request->patterns[0], ==, pattern);
        g_assert_true(g_uuid_string_is_valid(envelope->correlation->correlation_id));
        correlation_id = g_strdup(envelope->correlation->correlation_id);
        if (ack)
                fake_broker_send_ack(broker, correlation_id);
        return g_steal_pointer(&correlation_id);
}

static void fake_broker_expect_request(FakeBroker *broker, int type, const char *pattern, gboolean ack)
{
        g_free(fake_broker_take_request(broker, type, pattern, ack));
}

/* ---- fixture ------------------------------------------------------------- */

typedef struct {
        GMainContext *context;
        FakeBroker *broker;
        DebClient *client;
        int client_fd; /* client end of the pair until the client takes it */
        guint connects;
        GError *connect_error;
        guint errors;
        guint fatal_errors;
        GError *last_error;
} Fixture;

static void fixture_set_up(Fixture *fx, gconstpointer data)
{
        fx->context = g_main_context_new();
        g_main_context_push_thread_default(fx->context);
        fx->broker = fake_broker_new(fx->context);
        fx->client_fd = fake_broker_pair(fx->broker);
        fx->client = deb_client_new("test-client");
}

static void fixture_tear_down(Fixture *fx, gconstpointer data)
{
        g_clear_pointer(&fx->client, deb_client_unref);
        if (fx->client_fd >= 0)
                close(fx->client_fd);
        fake_broker_free(fx->broker);
        g_clear_error(&fx->connect_error);
        g_clear_error(&fx->last_error);
        g_main_context_pop_thread_default(fx->context);
        g_main_context_unref(fx->context);
}

static void on_connect(DebClient *client, const GError *error, gpointer user_data)
{
        Fixture *fx = user_data;

        fx->connects++;
        g_clear_error(&fx->connect_error);
        if (error)
                fx->connect_error = g_error_copy(error);
}

static void on_error(DebClient *client, const GError *error, gboolean fatal, gpointer user_data)
{
        Fixture *fx = user_data;

        fx->errors++;
        fx->fatal_errors += fatal ? 1 : 0;
        g_clear_error(&fx->last_error);
        fx->last_error = g_error_copy(error);
}

/* Hands the pair to the client and runs the handshake; returns the Hello frame's sender check done. */
static void fixture_connect(Fixture *fx, guint64 welcome_max_frame_bytes)
{
        g_autoptr(GError) error = NULL;
        const DebEnvelope *hello;

        deb_client_set_error_func(fx->client, on_error, fx);
        g_assert_true(deb_client_connect_fd(fx->client, fx->client_fd, on_connect, fx, &error));
        g_assert_no_error(error);
        fx->client_fd = -1;
        hello = fake_broker_next(fx->broker);
        g_assert_cmpint(hello->message_type, ==, MT(HELLO));
        fake_broker_send_welcome(fx->broker, welcome_max_frame_bytes);
        ITERATE_UNTIL(fx->context, fx->connects == 1);
        g_assert_no_error(fx->connect_error);
        g_assert_true(deb_client_is_connected(fx->client));
}

typedef struct {
        guint calls;
        guint destroyed;
        char *last_topic;
        GBytes *last_payload;
        DebClient *client;
        guint self_id;
        guint other_id;
        gpointer extra;
} Counter;

static void counter_clear(Counter *counter)
{
        g_clear_pointer(&counter->last_topic, g_free);
        g_clear_pointer(&counter->last_payload, g_bytes_unref);
}

static void on_message(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        Counter *counter = user_data;

        counter->calls++;
        g_free(counter->last_topic);
        counter->last_topic = g_strdup(envelope->topic);
        g_clear_pointer(&counter->last_payload, g_bytes_unref);
        counter->last_payload = g_bytes_new(envelope->payload.data, envelope->payload.len);
}

static void on_destroy(gpointer user_data)
{
        ((Counter *)user_data)->destroyed++;
}

/* Subscribes, answers the Subscribe with Ack, waits until it is live. */
static guint subscribe_live_full(Fixture *fx, const char *pattern, DebClientMessageFunc func,
                                 gpointer user_data, GDestroyNotify destroy)
{
        g_autoptr(GError) error = NULL;
        guint id = deb_client_subscribe(fx->client, pattern, func, user_data, destroy, &error);

        g_assert_no_error(error);
        g_assert_cmpuint(id, >, 0);
        fake_broker_expect_request(fx->broker, MT(SUBSCRIBE), pattern, TRUE);
        g_assert_true(deb_client_sync(fx->client, 5000, &error));
        g_assert_no_error(error);
        return id;
}

static guint subscribe_live(Fixture *fx, const char *pattern, DebClientMessageFunc func, Counter *counter)
{
        return subscribe_live_full(fx, pattern, func, counter, on_destroy);
}

/* ---- handshake ------------------------------------------------------------ */

static void test_hello(Fixture *fx, gconstpointer data)
{
        static const char *const capabilities[] = {"publish", "subscribe.wildcards", NULL};
        g_autoptr(DebClient) anonymous = deb_client_new(NULL);
        g_autofree char *default_id = g_strdup_printf("client-%d", (int)getpid());
        g_autoptr(GError) error = NULL;
        const Daemoneye__Eventbus__Hello *hello;
        const DebEnvelope *envelope;

        g_assert_cmpstr(deb_client_get_id(anonymous), ==, default_id);
        g_assert_cmpstr(deb_client_get_id(fx->client), ==, "test-client");

        deb_client_set_capabilities(fx->client, capabilities);
        g_assert_true(deb_client_connect_fd(fx->client, fx->client_fd, on_connect, fx, &error));
        g_assert_no_error(error);
        fx->client_fd = -1;

        envelope = fake_broker_next(fx->broker);
        g_assert_cmpint(envelope->message_type, ==, MT(HELLO));
        g_assert_cmpstr(envelope->sender, ==, "test-client");
        g_assert_true(g_uuid_string_is_valid(envelope->correlation->correlation_id));
        hello = (const void *)fake_broker_payload(fx->broker, envelope,
                                                  &daemoneye__eventbus__hello__descriptor);
        g_assert_cmpstr(hello->client_id, ==, "test-client");
        g_assert_cmpuint(hello->protocol_version, ==, DEB_PROTOCOL_VERSION);
        g_assert_cmpuint(hello->n_capabilities, ==, 2);
        g_assert_cmpstr(hello->capabilities[0], ==, "publish");
        g_assert_cmpstr(hello->capabilities[1], ==, "subscribe.wildcards");

        /* Connected only once the Welcome is in. */
        iterate_for(fx->context, 30);
        g_assert_cmpuint(fx->connects, ==, 0);
        g_assert_false(deb_client_is_connected(fx->client));
        g_assert_true(g_queue_is_empty(&fx->broker->frames));
}

static void test_connect_welcome(Fixture *fx, gconstpointer data)
{
        g_autofree char *big = g_malloc0(5000);
        g_autoptr(GError) error = NULL;

        /* The broker's smaller limit wins over our 1 MiB. */
        fixture_connect(fx, 4096);
        g_assert_cmpuint(fx->errors, ==, 0);
        g_assert_false(deb_client_publish(fx->client, "events.test", big, 5000, NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
        g_clear_error(&error);
        g_assert_true(deb_client_publish(fx->client, "events.test", big, 3000, NULL, &error));
        g_assert_no_error(error);
}

static void test_connect_refused(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        deb_client_set_error_func(fx->client, on_error, fx);
        g_assert_true(deb_client_connect_fd(fx->client, fx->client_fd, on_connect, fx, &error));
        fx->client_fd = -1;
        g_assert_cmpint(fake_broker_next(fx->broker)->message_type, ==, MT(HELLO));
        fake_broker_send_error(fx->broker, EC(VERSION), "protocol 1 is not supported", TRUE, NULL);
        fake_broker_close(fx->broker);

        ITERATE_UNTIL(fx->context, fx->connects == 1);
        g_assert_error(fx->connect_error, DEB_ERROR, DEB_ERROR_REFUSED);
        g_assert_nonnull(strstr(fx->connect_error->message, "protocol 1 is not supported"));
        g_assert_nonnull(strstr(fx->connect_error->message, "test-client"));
        /* The connect callback had it; the error func is for established connections. */
        g_assert_cmpuint(fx->errors, ==, 0);
        g_assert_false(deb_client_is_connected(fx->client));

        g_assert_false(deb_client_publish(fx->client, "events.test", "x", 1, NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_CLOSED);
        g_assert_nonnull(strstr(error->message, "protocol 1 is not supported"));
}

static void test_frame_before_welcome(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        g_assert_true(deb_client_connect_fd(fx->client, fx->client_fd, on_connect, fx, &error));
        fx->client_fd = -1;
        fake_broker_send_event(fx->broker, "events.early", "x");
        ITERATE_UNTIL(fx->context, fx->connects == 1);
        g_assert_error(fx->connect_error, DEB_ERROR, DEB_ERROR_PROTOCOL);
        g_assert_nonnull(strstr(fx->connect_error->message, "before Welcome"));
}

/* ---- subscriptions -------------------------------------------------------- */

static void test_subscribe_ack(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *correlation_id = NULL;
        const Daemoneye__Eventbus__Subscribe *subscribe;
        const DebEnvelope *envelope;
        Counter counter = {0};
        guint id;

        fixture_connect(fx, 0);
        id = deb_client_subscribe(fx->client, "events.process.+", on_message, &counter, on_destroy, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(id, >, 0);

        envelope = fake_broker_next(fx->broker);
        g_assert_cmpint(envelope->message_type, ==, MT(SUBSCRIBE));
        g_assert_true(g_uuid_string_is_valid(envelope->correlation->correlation_id));
        correlation_id = g_strdup(envelope->correlation->correlation_id);
        subscribe = (const void *)fake_broker_payload(fx->broker, envelope,
                                                      &daemoneye__eventbus__subscribe__descriptor);
        g_assert_cmpuint(subscribe->n_patterns, ==, 1);
        g_assert_cmpstr(subscribe->patterns[0], ==, "events.process.+");

        /* Not acknowledged yet: sync must wait, and say for what. */
        g_assert_false(deb_client_sync(fx->client, 50, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_TIMEOUT);
        g_assert_nonnull(strstr(error->message, "acknowledge 1 Subscribe/Unsubscribe request"));
        g_clear_error(&error);

        /* An Ack for someone else's request changes nothing. */
        fake_broker_send_ack(fx->broker, "00000000-0000-4000-8000-000000000000");
        g_assert_false(deb_client_sync(fx->client, 50, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_TIMEOUT);
        g_clear_error(&error);

        fake_broker_send_ack(fx->broker, correlation_id);
        g_assert_true(deb_client_sync(fx->client, 5000, &error));
        g_assert_no_error(error);

        g_assert_false(deb_client_subscribe(fx->client, "events..x", on_message, &counter, NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_INVALID_PATTERN);
        g_clear_error(&error);
        g_assert_true(deb_client_unsubscribe(fx->client, id));
        g_assert_false(deb_client_unsubscribe(fx->client, id));
        g_assert_cmpuint(counter.destroyed, ==, 1);
        fake_broker_expect_request(fx->broker, MT(UNSUBSCRIBE), "events.process.+", TRUE);
        g_assert_true(deb_client_sync(fx->client, 5000, &error));
        g_assert_cmpuint(fx->errors, ==, 0);
}

static void test_subscribe_refused(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *correlation_id = NULL;
        Counter refused = {0}, accepted = {0};
        const DebEnvelope *envelope;

        fixture_connect(fx, 0);
        g_assert_cmpuint(deb_client_subscribe(fx->client, "events.#", on_message, &refused, NULL, &error), >,
                         0);
        envelope = fake_broker_next(fx->broker);
        correlation_id = g_strdup(envelope->correlation->correlation_id);
        fake_broker_send_error(fx->broker, EC(TOO_MANY_SUBSCRIPTIONS), "limit of 0 subscriptions reached",
                               FALSE, correlation_id);

        g_assert_false(deb_client_sync(fx->client, 5000, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_REFUSED);
        g_assert_nonnull(strstr(error->message, "limit of 0 subscriptions reached"));
        g_assert_nonnull(strstr(error->message, "'events.#'"));
        g_clear_error(&error);
        /* Only the request failed, and sync was the one to hear of it. */
        g_assert_true(deb_client_is_connected(fx->client));
        g_assert_cmpuint(fx->errors, ==, 0);

        /* The refused subscription stays quiet even when another pattern brings a match. */
        subscribe_live(fx, "events.+", on_message, &accepted);
        fake_broker_send_event(fx->broker, "events.x", "payload");
        ITERATE_UNTIL(fx->context, accepted.calls == 1);
        iterate_for(fx->context, 20);
        g_assert_cmpuint(refused.calls, ==, 0);

        /* An Error answering nothing we asked goes to the error func, not fatal. */
        fake_broker_send_error(fx->broker, EC(PERMISSION_DENIED), "publish to control.x denied", FALSE,
                               "11111111-1111-4111-8111-111111111111");
        ITERATE_UNTIL(fx->context, fx->errors == 1);
        g_assert_cmpuint(fx->fatal_errors, ==, 0);
        g_assert_error(fx->last_error, DEB_ERROR, DEB_ERROR_REFUSED);
        g_assert_nonnull(strstr(fx->last_error->message, "publish to control.x denied"));
        g_assert_true(deb_client_is_connected(fx->client));
        counter_clear(&accepted);
}

static void test_subscribe_before_connect(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *correlation_id = NULL;
        Counter counter = {0};

        g_assert_cmpuint(deb_client_subscribe(fx->client, "control.#", on_message, &counter, NULL, &error),
                         >, 0);
        g_assert_true(deb_client_connect_fd(fx->client, fx->client_fd, on_connect, fx, &error));
        fx->client_fd = -1;
        g_assert_cmpint(fake_broker_next(fx->broker)->message_type, ==, MT(HELLO));
        /* Queued right behind the Hello; the broker answers it after its Welcome. */
        correlation_id = fake_broker_take_request(fx->broker, MT(SUBSCRIBE), "control.#", FALSE);
        fake_broker_send_welcome(fx->broker, 0);
        fake_broker_send_ack(fx->broker, correlation_id);
        g_assert_true(deb_client_sync(fx->client, 5000, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(fx->connects, ==, 1);
}

static void test_delivery(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        Counter a = {0}, b = {0}, c = {0}, d1 = {0}, d2 = {0}, e = {0};
        DebClientStats stats;
        guint id_d1, id_d2;

        fixture_connect(fx, 0);
        subscribe_live(fx, "events.process.+", on_message, &a);
        subscribe_live(fx, "events.#", on_message, &b);
        subscribe_live(fx, "events.network.connection", on_message, &c);
        id_d1 = subscribe_live(fx, "events.process.lifecycle", on_message, &d1);
        /* A pattern already subscribed is not sent again. */
        id_d2 = deb_client_subscribe(fx->client, "events.process.lifecycle", on_message, &d2, on_destroy,
                                     &error);
        g_assert_cmpuint(id_d2, >, 0);
        g_assert_cmpuint(id_d2, !=, id_d1);
        subscribe_live(fx, "control.#", on_message, &e);

        fake_broker_send_event(fx->broker, "events.process.lifecycle", "one");
        fake_broker_send_event(fx->broker, "events.network.connection", "two");
        fake_broker_send_event(fx->broker, "events", "three");
        ITERATE_UNTIL(fx->context, b.calls == 3);
        g_assert_cmpuint(a.calls, ==, 1);
        g_assert_cmpuint(c.calls, ==, 1);
        g_assert_cmpuint(d1.calls, ==, 1);
        g_assert_cmpuint(d2.calls, ==, 1);
        g_assert_cmpuint(e.calls, ==, 0);
        g_assert_cmpstr(a.last_topic, ==, "events.process.lifecycle");
        g_assert_cmpmem(g_bytes_get_data(a.last_payload, NULL), g_bytes_get_size(a.last_payload), "one", 3);
        g_assert_cmpstr(c.last_topic, ==, "events.network.connection");
        g_assert_cmpstr(b.last_topic, ==, "events");
        deb_client_get_stats(fx->client, &stats);
        g_assert_cmpuint(stats.received, ==, 3);
        g_assert_cmpuint(stats.bytes_read, >, 0);

        /* The broker's subscription goes only with the last local one. */
        g_assert_true(deb_client_unsubscribe(fx->client, id_d1));
        g_assert_cmpuint(d1.destroyed, ==, 1);
        g_assert_true(deb_client_unsubscribe(fx->client, id_d2));
        fake_broker_expect_request(fx->broker, MT(UNSUBSCRIBE), "events.process.lifecycle", TRUE);
        g_assert_true(deb_client_sync(fx->client, 5000, &error));
        g_assert_true(g_queue_is_empty(&fx->broker->frames));

        fake_broker_send_event(fx->broker, "events.process.lifecycle", "four");
        ITERATE_UNTIL(fx->context, a.calls == 2);
        g_assert_cmpuint(d1.calls + d2.calls, ==, 2);
        counter_clear(&a);
        counter_clear(&b);
        counter_clear(&c);
        counter_clear(&d1);
        counter_clear(&d2);
}

static void on_message_unsubscribe_both(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        Counter *counter = user_data;
        Counter *shared = counter->extra;

        shared->calls++;
        g_assert_true(deb_client_unsubscribe(client, counter->other_id));
        g_assert_true(deb_client_unsubscribe(client, counter->self_id));
        g_assert_false(deb_client_unsubscribe(client, counter->self_id));
}

static void test_unsubscribe_in_callback(Fixture *fx, gconstpointer data)
{
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        Counter shared = {0}, one = {.extra = &shared}, two = {.extra = &shared};

        fixture_connect(fx, 0);
        one.self_id = two.other_id = subscribe_live(fx, "events.#", on_message_unsubscribe_both, &one);
        two.self_id = one.other_id =
                subscribe_live(fx, "events.process.+", on_message_unsubscribe_both, &two);

        /* Whichever runs first removes the other, which must then not run. */
        fake_broker_send_event(fx->broker, "events.process.exec", "x");
        fake_broker_send_event(fx->broker, "events.process.exit", "y");
        ITERATE_UNTIL(fx->context, one.destroyed == 1 && two.destroyed == 1);
        iterate_for(fx->context, 20);
        g_assert_cmpuint(shared.calls, ==, 1);

        /* Both patterns leave the broker, in whichever order the callback removed them. */
        for (guint i = 0; i < 2; i++) {
                const DebEnvelope *envelope = fake_broker_next(fx->broker);
                const Daemoneye__Eventbus__Unsubscribe *unsubscribe;

                g_assert_cmpint(envelope->message_type, ==, MT(UNSUBSCRIBE));
                unsubscribe = (const void *)fake_broker_payload(
                        fx->broker, envelope, &daemoneye__eventbus__unsubscribe__descriptor);
                g_assert_cmpuint(unsubscribe->n_patterns, ==, 1);
                g_assert_true(g_hash_table_add(seen, g_strdup(unsubscribe->patterns[0])));
        }
        g_assert_true(g_hash_table_contains(seen, "events.#"));
        g_assert_true(g_hash_table_contains(seen, "events.process.+"));
}

/* ---- publishing ----------------------------------------------------------- */

static const char *tag_value(const DebCorrelation *correlation, const char *key)
{
        for (gsize i = 0; i < correlation->n_tags; i++)
                if (g_str_equal(correlation->tags[i]->key, key))
                        return correlation->tags[i]->value;
        return NULL;
}

static void test_publish_fields(Fixture *fx, gconstpointer data)
{
        static const char payload[] = {'a', '\0', 'b', '\0', '\0', 'c'};
        static const char *const tags[] = {"host", "node-1", "unit", "procmond", NULL};
        static const char *const many_tags[] = {"k0", "v0", "k1", "v1", "k2", "v2", "k3",
                                                "v3", "k4", "v4", "k5", "v5", "k6", "v6",
                                                "k7", "v7", "k8", "v8", "k9", "v9", NULL};
        const DebPublishOptions with_parent = {
                .payload_type = "daemoneye.process.ProcessEvent",
                .parent_correlation_id = "parent-1",
                .workflow_stage = "scan",
                .tags = tags,
        };
        const DebPublishOptions with_root = {
                .message_type = MT(HEARTBEAT),
                .parent_correlation_id = "parent-2",
                .root_correlation_id = "root-0",
                .correlation_id = "fixed-id",
                .tags = many_tags,
        };
        g_autoptr(GError) error = NULL;
        g_autofree char *first_id = NULL;
        const DebEnvelope *envelope;
        DebClientStats stats;
        gint64 before, after;

        fixture_connect(fx, 0);
        before = g_get_real_time();
        g_assert_true(deb_client_publish(fx->client, "events.process.lifecycle", payload, sizeof(payload),
                                         NULL, &error));
        g_assert_true(deb_client_publish(fx->client, "events.process.tree", "", 0, &with_parent, &error));
        g_assert_true(deb_client_publish(fx->client, "control.health.heartbeat.procmond", NULL, 0,
                                         &with_root, &error));
        g_assert_no_error(error);
        after = g_get_real_time();

        /* No options: a plain event, its own root. */
        envelope = fake_broker_next(fx->broker);
        g_assert_cmpint(envelope->message_type, ==, MT(EVENT));
        g_assert_cmpstr(envelope->topic, ==, "events.process.lifecycle");
        g_assert_cmpstr(envelope->sender, ==, "test-client");
        g_assert_cmpstr(envelope->payload_type, ==, "");
        g_assert_cmpmem(envelope->payload.data, envelope->payload.len, payload, sizeof(payload));
        g_assert_cmpuint(envelope->timestamp_us, >=, (guint64)before);
        g_assert_cmpuint(envelope->timestamp_us, <=, (guint64)after);
        g_assert_true(g_uuid_string_is_valid(envelope->correlation->correlation_id));
        first_id = g_strdup(envelope->correlation->correlation_id);
        g_assert_cmpstr(envelope->correlation->parent_correlation_id, ==, "");
        g_assert_cmpstr(envelope->correlation->root_correlation_id, ==, first_id);
        g_assert_cmpuint(envelope->correlation->sequence_number, ==, 1);
        g_assert_cmpuint(envelope->correlation->n_tags, ==, 0);

        /* A parent without a root: the parent is the root. */
        envelope = fake_broker_next(fx->broker);
        g_assert_true(g_uuid_string_is_valid(envelope->correlation->correlation_id));
        g_assert_cmpstr(envelope->correlation->correlation_id, !=, first_id);
        g_assert_cmpstr(envelope->correlation->parent_correlation_id, ==, "parent-1");
        g_assert_cmpstr(envelope->correlation->root_correlation_id, ==, "parent-1");
        g_assert_cmpuint(envelope->correlation->sequence_number, ==, 2);
        g_assert_cmpstr(envelope->correlation->workflow_stage, ==, "scan");
        g_assert_cmpstr(envelope->payload_type, ==, "daemoneye.process.ProcessEvent");
        g_assert_cmpuint(envelope->payload.len, ==, 0);
        g_assert_cmpuint(envelope->correlation->n_tags, ==, 2);
        g_assert_cmpstr(tag_value(envelope->correlation, "host"), ==, "node-1");
        g_assert_cmpstr(tag_value(envelope->correlation, "unit"), ==, "procmond");

        /* Everything given is used as given. */
        envelope = fake_broker_next(fx->broker);
        g_assert_cmpint(envelope->message_type, ==, MT(HEARTBEAT));
        g_assert_cmpstr(envelope->correlation->correlation_id, ==, "fixed-id");
        g_assert_cmpstr(envelope->correlation->parent_correlation_id, ==, "parent-2");
        g_assert_cmpstr(envelope->correlation->root_correlation_id, ==, "root-0");
        g_assert_cmpuint(envelope->correlation->sequence_number, ==, 3);
        g_assert_cmpuint(envelope->correlation->n_tags, ==, 10);
        for (guint i = 0; i < 10; i++) {
                g_autofree char *key = g_strdup_printf("k%u", i);
                g_autofree char *value = g_strdup_printf("v%u", i);

                g_assert_cmpstr(tag_value(envelope->correlation, key), ==, value);
        }

        deb_client_get_stats(fx->client, &stats);
        g_assert_cmpuint(stats.published, ==, 3);
        g_assert_cmpuint(stats.bytes_written, >, 0);
}

static void test_publish_refused(Fixture *fx, gconstpointer data)
{
        static const char *const odd_tags[] = {"host", NULL};
        static const char *const bad_topics[] = {"events..x", "events.#", "events.+.x", "", ".events", NULL};
        const DebPublishOptions hello_type = {.message_type = MT(HELLO)};
        const DebPublishOptions bad_tags = {.tags = odd_tags};
        g_autofree char *huge = g_malloc0(DEB_DEFAULT_MAX_FRAME_BYTES + 1);
        g_autoptr(GError) error = NULL;

        /* Before connect there is nowhere to publish to. */
        g_assert_false(deb_client_publish(fx->client, "events.x", "x", 1, NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_CLOSED);
        g_assert_nonnull(strstr(error->message, "not connected"));
        g_clear_error(&error);

        fixture_connect(fx, 0);
        g_assert_true(deb_client_flush(fx->client, 5000, &error));

        for (guint i = 0; bad_topics[i]; i++) {
                g_assert_false(deb_client_publish(fx->client, bad_topics[i], "x", 1, NULL, &error));
                g_assert_error(error, DEB_ERROR, DEB_ERROR_INVALID_TOPIC);
                g_clear_error(&error);
        }
        g_assert_false(deb_client_publish(fx->client, NULL, "x", 1, NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_INVALID_TOPIC);
        g_clear_error(&error);
        g_assert_false(deb_client_publish(fx->client, "events.x", "x", 1, &hello_type, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL);
        g_clear_error(&error);
        g_assert_false(deb_client_publish(fx->client, "events.x", "x", 1, &bad_tags, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
        g_clear_error(&error);

        /* Over the default 1 MiB, then over a limit set by hand. */
        g_assert_false(deb_client_publish(fx->client, "events.x", huge, DEB_DEFAULT_MAX_FRAME_BYTES + 1,
                                          NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
        g_assert_nonnull(strstr(error->message, "'events.x'"));
        g_clear_error(&error);
        deb_client_set_max_frame_bytes(fx->client, 1024);
        g_assert_false(deb_client_publish(fx->client, "events.x", huge, 2000, NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
        g_clear_error(&error);

        /* Nothing refused was queued, and no sequence number was spent on it. */
        g_assert_cmpuint(deb_client_get_pending_bytes(fx->client), ==, 0);
        g_assert_true(deb_client_publish(fx->client, "events.x", huge, 500, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(fake_broker_next(fx->broker)->correlation->sequence_number, ==, 1);
        g_assert_true(g_queue_is_empty(&fx->broker->frames));
}

static void on_drain(DebClient *client, gpointer user_data)
{
        guint *drains = user_data;

        (*drains)++;
        g_assert_cmpuint(deb_client_get_pending_bytes(client), <=, 64 * 1024);
}

static void test_publish_backpressure(Fixture *fx, gconstpointer data)
{
        const guint n = 10000;
        int tiny = 4096;
        g_autoptr(GError) error = NULL;
        gsize peak_pending = 0;
        guint drains = 0;

        g_assert_cmpint(setsockopt(fx->client_fd, SOL_SOCKET, SO_SNDBUF, &tiny, sizeof(tiny)), ==, 0);
        g_assert_cmpint(setsockopt(fx->broker->fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)), ==, 0);
        fixture_connect(fx, 0);
        deb_client_set_drain_func(fx->client, 64 * 1024, on_drain, &drains);
        fake_broker_read_slowly(fx->broker, 1, 16 * 1024);

        for (guint i = 0; i < n; i++) {
                char payload[96] = {0};

                g_snprintf(payload, sizeof(payload),
                           "message %u of a slow stream, padded to look like an event", i);
                g_assert_true(deb_client_publish(fx->client, "events.bench.stream", payload, sizeof(payload),
                                                 NULL, &error));
                peak_pending = MAX(peak_pending, deb_client_get_pending_bytes(fx->client));
        }
        g_assert_no_error(error);
        g_assert_cmpuint(peak_pending, >, 256 * 1024);
        g_assert_cmpuint(drains, ==, 0);

        g_assert_true(deb_client_flush(fx->client, 60000, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(deb_client_get_pending_bytes(fx->client), ==, 0);
        g_assert_cmpuint(drains, ==, 1);

        for (guint i = 0; i < n; i++) {
                const DebEnvelope *envelope = fake_broker_next(fx->broker);
                char expected[96] = {0};

                g_snprintf(expected, sizeof(expected),
                           "message %u of a slow stream, padded to look like an event", i);
                g_assert_cmpuint(envelope->correlation->sequence_number, ==, i + 1);
                g_assert_cmpmem(envelope->payload.data, envelope->payload.len, expected, sizeof(expected));
        }
        g_assert_cmpuint(fx->errors, ==, 0);
}

/* ---- failures and lifecycle ----------------------------------------------- */

static void test_peer_closes(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        fixture_connect(fx, 0);
        fake_broker_close(fx->broker);
        ITERATE_UNTIL(fx->context, fx->errors == 1);
        g_assert_cmpuint(fx->fatal_errors, ==, 1);
        g_assert_error(fx->last_error, DEB_ERROR, DEB_ERROR_CLOSED);
        g_assert_nonnull(strstr(fx->last_error->message, "closed the connection"));
        g_assert_false(deb_client_is_connected(fx->client));

        g_assert_false(deb_client_publish(fx->client, "events.x", "x", 1, NULL, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_CLOSED);
        g_clear_error(&error);
        g_assert_false(deb_client_sync(fx->client, 1000, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_CLOSED);
}

static void test_broker_fatal_error(Fixture *fx, gconstpointer data)
{
        fixture_connect(fx, 0);
        fake_broker_send_error(fx->broker, EC(SHUTTING_DOWN), "agent is stopping", TRUE, NULL);
        ITERATE_UNTIL(fx->context, fx->errors == 1);
        g_assert_cmpuint(fx->fatal_errors, ==, 1);
        g_assert_error(fx->last_error, DEB_ERROR, DEB_ERROR_REFUSED);
        g_assert_nonnull(strstr(fx->last_error->message, "agent is stopping"));
        g_assert_false(deb_client_is_connected(fx->client));
        /* Closed on our side too: the broker reads end-of-stream. */
        ITERATE_UNTIL(fx->context, fx->broker->eof);
}

static void test_bad_frames(Fixture *fx, gconstpointer data)
{
        /* A body that does not decode, and a length over the limit. */
        static const guint8 garbage[] = {3, 0, 0, 0, 0xff, 0xff, 0xff};
        static const guint8 too_long[] = {0x00, 0x00, 0x20, 0x00};
        const guint8 *frame = data ? too_long : garbage;
        gsize len = data ? sizeof(too_long) : sizeof(garbage);

        fixture_connect(fx, 0);
        g_assert_cmpint(send(fx->broker->fd, frame, len, 0), ==, (ssize_t)len);
        ITERATE_UNTIL(fx->context, fx->errors == 1);
        g_assert_cmpuint(fx->fatal_errors, ==, 1);
        g_assert_error(fx->last_error, DEB_ERROR, (data ? DEB_ERROR_FRAME_TOO_LARGE : DEB_ERROR_MALFORMED));
        g_assert_false(deb_client_is_connected(fx->client));
}

static void on_message_unref(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        Counter *counter = user_data;
        Fixture *fx = counter->extra;

        counter->calls++;
        g_clear_pointer(&fx->client, deb_client_unref);
}

static void test_unref_in_callback(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        Counter unref = {.extra = fx}, same = {0}, next = {0};

        fixture_connect(fx, 0);
        subscribe_live(fx, "events.a", on_message_unref, &unref);
        /* Same pattern, subscribed later: called after the one that drops the client. */
        g_assert_cmpuint(deb_client_subscribe(fx->client, "events.a", on_message, &same, on_destroy, &error),
                         >, 0);
        subscribe_live(fx, "events.b", on_message, &next);

        /* Both in one read: nothing may run on a client nobody holds any more. */
        fake_broker_send_event(fx->broker, "events.a", "1");
        fake_broker_send_event(fx->broker, "events.b", "2");
        ITERATE_UNTIL(fx->context, fx->client == NULL);
        ITERATE_UNTIL(fx->context, fx->broker->eof);
        g_assert_cmpuint(unref.calls, ==, 1);
        g_assert_cmpuint(same.calls, ==, 0);
        g_assert_cmpuint(next.calls, ==, 0);
        g_assert_cmpuint(unref.destroyed + same.destroyed + next.destroyed, ==, 3);
        g_assert_cmpuint(fx->errors, ==, 0);
}

typedef struct {
        Fixture *fx;
        guint calls;
        guint depth;
        guint max_depth;
        char *topics[2];
} FlushInCallback;

static void on_message_flush(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        FlushInCallback *state = user_data;
        g_autoptr(GError) error = NULL;
        g_autofree char *topic = g_strdup(envelope->topic);

        state->depth++;
        state->max_depth = MAX(state->max_depth, state->depth);
        g_assert_cmpuint(state->calls, <, 2);
        state->topics[state->calls++] = g_strdup(envelope->topic);
        if (state->calls == 1) {
                /* More input arrives while the callback waits on the loop for its output. */
                fake_broker_send_event(state->fx->broker, "events.second", "2");
                g_assert_true(deb_client_publish(client, "events.reply", "r", 1, NULL, &error));
                g_assert_true(deb_client_flush(client, 5000, &error));
                g_assert_no_error(error);
                /* The message being handled is untouched by what the nested iteration saw. */
                g_assert_cmpstr(envelope->topic, ==, topic);
        }
        state->depth--;
}

static void test_flush_in_callback(Fixture *fx, gconstpointer data)
{
        FlushInCallback state = {.fx = fx};

        fixture_connect(fx, 0);
        subscribe_live_full(fx, "events.#", on_message_flush, &state, NULL);
        fake_broker_send_event(fx->broker, "events.first", "1");
        ITERATE_UNTIL(fx->context, state.calls == 2);
        g_assert_cmpuint(state.max_depth, ==, 1);
        g_assert_cmpstr(state.topics[0], ==, "events.first");
        g_assert_cmpstr(state.topics[1], ==, "events.second");
        g_assert_cmpstr(fake_broker_next(fx->broker)->topic, ==, "events.reply");
        g_free(state.topics[0]);
        g_free(state.topics[1]);
}

static void on_message_disconnect(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        Counter *counter = user_data;
        g_autoptr(GError) error = NULL;

        counter->calls++;
        g_assert_true(deb_client_publish(client, "events.reply", "bye", 3, NULL, &error));
        /* Answers cannot be read inside a callback: a clear error rather than a timeout. */
        g_assert_true(deb_client_subscribe(client, "control.x", on_message, counter, NULL, &error) > 0);
        g_assert_false(deb_client_sync(client, 5000, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL);
        deb_client_disconnect(client, 5000);
        g_assert_false(deb_client_is_connected(client));
}

static void test_disconnect_in_callback(Fixture *fx, gconstpointer data)
{
        Counter counter = {0};
        const DebEnvelope *envelope;

        fixture_connect(fx, 0);
        subscribe_live(fx, "events.#", on_message_disconnect, &counter);
        fake_broker_send_event(fx->broker, "events.a", "1");
        fake_broker_send_event(fx->broker, "events.b", "2");
        ITERATE_UNTIL(fx->context, fx->broker->eof);
        iterate_for(fx->context, 20);
        g_assert_cmpuint(counter.calls, ==, 1);
        /* What the callback queued was flushed before the close. */
        envelope = fake_broker_next(fx->broker);
        g_assert_cmpstr(envelope->topic, ==, "events.reply");
        g_assert_cmpint(fake_broker_next(fx->broker)->message_type, ==, MT(SUBSCRIBE));
        g_assert_true(g_queue_is_empty(&fx->broker->frames));
        g_assert_cmpuint(fx->errors, ==, 0);
}

/* ---- connecting by path --------------------------------------------------- */

typedef struct {
        char *dir;
        char *path;
} TempSocket;

static void temp_socket_init(TempSocket *temp)
{
        g_autoptr(GError) error = NULL;

        temp->dir = g_dir_make_tmp("test-client-XXXXXX", &error);
        g_assert_no_error(error);
        temp->path = g_build_filename(temp->dir, "eventbus.sock", NULL);
}

static void temp_socket_clear(TempSocket *temp)
{
        g_unlink(temp->path);
        g_rmdir(temp->dir);
        g_free(temp->path);
        g_free(temp->dir);
}

/* Returns: a socket bound to @path, listening with @backlog unless it is negative. */
static int bind_unix(const char *path, int backlog)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
        g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
        if (backlog >= 0)
                g_assert_cmpint(listen(fd, backlog), ==, 0);
        return fd;
}

static gboolean fake_broker_accept_cb(int fd, GIOCondition condition, gpointer user_data)
{
        FakeBroker *broker = user_data;

        broker->fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(broker->fd, >=, 0);
        broker->source = NULL; /* destroyed by returning G_SOURCE_REMOVE */
        fake_broker_watch(broker);
        return G_SOURCE_REMOVE;
}

/* Accepts one connection on @listen_fd (taken) and answers its Hello with Welcome. */
static void fake_broker_accept(FakeBroker *broker, int listen_fd)
{
        fake_broker_close(broker);
        broker->listen_fd = listen_fd;
        broker->auto_welcome = TRUE;
        broker->source = g_unix_fd_source_new(listen_fd, G_IO_IN);
        g_source_set_callback(broker->source, G_SOURCE_FUNC(fake_broker_accept_cb), broker, NULL);
        g_source_attach(broker->source, broker->context);
        g_source_unref(broker->source);
}

static void test_connect_path_errors(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *long_path = g_strnfill(200, 'x');
        g_autofree char *expected = NULL;
        TempSocket temp;
        int fd;

        temp_socket_init(&temp);
        g_assert_false(deb_client_connect(fx->client, temp.path, on_connect, fx, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_IO);
        expected = g_strdup_printf("broker socket %s: No such file or directory", temp.path);
        g_assert_cmpstr(error->message, ==, expected);
        g_clear_error(&error);

        /* Bound but not listening: nobody there. */
        fd = bind_unix(temp.path, -1);
        g_assert_false(deb_client_connect(fx->client, temp.path, on_connect, fx, &error));
        g_clear_pointer(&expected, g_free);
        expected = g_strdup_printf("broker socket %s: connection refused", temp.path);
        g_assert_cmpstr(error->message, ==, expected);
        g_clear_error(&error);
        close(fd);

        g_assert_false(deb_client_connect(fx->client, long_path, on_connect, fx, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_IO);
        g_assert_nonnull(strstr(error->message, long_path));
        g_assert_nonnull(strstr(error->message, "too long"));
        g_assert_cmpuint(fx->connects, ==, 0);
        temp_socket_clear(&temp);
}

static void test_connect_sync(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        TempSocket temp;

        temp_socket_init(&temp);
        fake_broker_accept(fx->broker, bind_unix(temp.path, 4));
        g_assert_true(deb_client_connect_sync(fx->client, temp.path, 5000, &error));
        g_assert_no_error(error);
        g_assert_true(deb_client_is_connected(fx->client));
        g_assert_false(deb_client_connect_sync(fx->client, temp.path, 5000, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL);
        g_clear_error(&error);

        /* A clean disconnect reaches the broker as end-of-stream; then it can connect again. */
        deb_client_disconnect(fx->client, 1000);
        g_assert_false(deb_client_is_connected(fx->client));
        ITERATE_UNTIL(fx->context, fx->broker->eof);
        fx->broker->eof = FALSE;
        fake_broker_accept(fx->broker, dup(fx->broker->listen_fd));
        g_assert_true(deb_client_connect_sync(fx->client, temp.path, 5000, &error));
        g_assert_no_error(error);
        temp_socket_clear(&temp);
}

static void test_connect_sync_timeout(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        TempSocket temp;
        gint64 start, elapsed;
        int listen_fd, fd;

        /* The kernel completes the connect into the backlog; nobody ever answers the Hello. */
        temp_socket_init(&temp);
        listen_fd = bind_unix(temp.path, 4);
        start = g_get_monotonic_time();
        g_assert_false(deb_client_connect_sync(fx->client, temp.path, 200, &error));
        elapsed = g_get_monotonic_time() - start;
        g_assert_error(error, DEB_ERROR, DEB_ERROR_TIMEOUT);
        g_assert_nonnull(strstr(error->message, "Welcome"));
        g_assert_nonnull(strstr(error->message, temp.path));
        g_assert_nonnull(strstr(error->message, "200 ms"));
        g_assert_cmpint(elapsed, >=, 200 * G_TIME_SPAN_MILLISECOND);
        g_assert_cmpint(elapsed, <, 5 * G_USEC_PER_SEC);
        g_assert_false(deb_client_is_connected(fx->client));

        /* It gave up for good: the connection it left is closed. */
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        fx->broker->fd = fd;
        fake_broker_watch(fx->broker);
        ITERATE_UNTIL(fx->context, fx->broker->eof);
        close(listen_fd);
        temp_socket_clear(&temp);
}

static void test_connect_backlog_full(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        TempSocket temp;
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int listen_fd, filler;

        /* Backlog 0 holds one pending connection: the filler takes it, our connect gets EAGAIN. */
        temp_socket_init(&temp);
        listen_fd = bind_unix(temp.path, 0);
        g_strlcpy(addr.sun_path, temp.path, sizeof(addr.sun_path));
        filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        g_assert_cmpint(connect(filler, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);

        g_assert_true(deb_client_connect(fx->client, temp.path, on_connect, fx, &error));
        g_assert_no_error(error);
        iterate_for(fx->context, 50);
        g_assert_cmpuint(fx->connects, ==, 0);

        /* Room in the backlog again: the retry gets in, the handshake completes. */
        close(accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC));
        fake_broker_accept(fx->broker, listen_fd);
        ITERATE_UNTIL(fx->context, fx->connects == 1);
        g_assert_no_error(fx->connect_error);
        g_assert_true(deb_client_is_connected(fx->client));
        close(filler);
        temp_socket_clear(&temp);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

#define ADD(path, func, data) g_test_add(path, Fixture, data, fixture_set_up, func, fixture_tear_down)
        ADD("/client/handshake/hello", test_hello, NULL);
        ADD("/client/handshake/welcome", test_connect_welcome, NULL);
        ADD("/client/handshake/refused", test_connect_refused, NULL);
        ADD("/client/handshake/frame-before-welcome", test_frame_before_welcome, NULL);
        ADD("/client/subscribe/ack", test_subscribe_ack, NULL);
        ADD("/client/subscribe/refused", test_subscribe_refused, NULL);
        ADD("/client/subscribe/before-connect", test_subscribe_before_connect, NULL);
        ADD("/client/subscribe/delivery", test_delivery, NULL);
        ADD("/client/subscribe/unsubscribe-in-callback", test_unsubscribe_in_callback, NULL);
        ADD("/client/publish/fields", test_publish_fields, NULL);
        ADD("/client/publish/refused", test_publish_refused, NULL);
        ADD("/client/publish/backpressure", test_publish_backpressure, NULL);
        ADD("/client/close/peer-closes", test_peer_closes, NULL);
        ADD("/client/close/broker-fatal-error", test_broker_fatal_error, NULL);
        ADD("/client/close/malformed-frame", test_bad_frames, NULL);
        ADD("/client/close/oversized-frame", test_bad_frames, GINT_TO_POINTER(1));
        ADD("/client/close/unref-in-callback", test_unref_in_callback, NULL);
        ADD("/client/close/disconnect-in-callback", test_disconnect_in_callback, NULL);
        ADD("/client/close/flush-in-callback", test_flush_in_callback, NULL);
        ADD("/client/connect/path-errors", test_connect_path_errors, NULL);
        ADD("/client/connect/sync", test_connect_sync, NULL);
        ADD("/client/connect/sync-timeout", test_connect_sync_timeout, NULL);
        ADD("/client/connect/backlog-full", test_connect_backlog_full, NULL);
#undef ADD

        return g_test_run();
}
