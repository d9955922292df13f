/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of eventbus/deb-rpc-client.c and deb-rpc-call.c against a fake
 * broker living in the test: the broker end of a socketpair, read with the
 * frame decoder; the test sees every request the client sends and answers
 * (or not) by hand, all on one pushed main context. The breakers run on a
 * fake clock and the backoff jitter on fake random numbers; deadlines and
 * retry delays are real (short) timers, so time assertions are lower bounds
 * plus generous upper bounds.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>

#include "deb-error.h"
#include "deb-rpc-client.h"

#define MT(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name
#define EC(name) DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_##name
#define OP(name) DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_##name
#define STATUS(name) DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_##name
#define KIND(name) DAEMONEYE__EVENTBUS__ERROR_KIND__ERROR_KIND_##name
#define CATEGORY(name) DAEMONEYE__EVENTBUS__ERROR_CATEGORY__ERROR_CATEGORY_##name

#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* ---- fake broker -------------------------------------------------------- */

/* One request as the broker saw it. */
typedef struct {
        char *correlation_id;
        char *parent_correlation_id;
        char *root_correlation_id;
        char *topic;
        char *payload_type;
        char *sender;
        int message_type;
        DebRpcRequest *request; /* heap copy */
        gint64 received_us;     /* monotonic */
} SeenRequest;

typedef struct _FakeBroker FakeBroker;
typedef void (*FakeRequestFunc)(FakeBroker *broker, SeenRequest *seen, gpointer user_data);

struct _FakeBroker {
        GMainContext *context;
        int fd;
        GSource *source;
        DebFrameDecoder *decoder;
        DebUnpacker *unpacker;
        GPtrArray *requests; /* SeenRequest, in arrival order */
        gboolean eof;
        FakeRequestFunc on_request; /* (nullable) answers as requests arrive */
        gpointer on_request_data;
};

static void seen_request_free(SeenRequest *seen)
{
        g_free(seen->correlation_id);
        g_free(seen->parent_correlation_id);
        g_free(seen->root_correlation_id);
        g_free(seen->topic);
        g_free(seen->payload_type);
        g_free(seen->sender);
        if (seen->request)
                daemoneye__eventbus__rpc_request__free_unpacked(seen->request, NULL);
        g_free(seen);
}

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

static void fake_broker_send_control(FakeBroker *broker, int type, const ProtobufCMessage *message,
                                     const char *correlation_id)
{
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        DebEnvelope envelope = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        g_autofree guint8 *payload = g_malloc(protobuf_c_message_get_packed_size(message) + 1);

        correlation.correlation_id = (char *)(correlation_id ? correlation_id : "");
        envelope.message_type = type;
        envelope.correlation = &correlation;
        envelope.payload_type = (char *)message->descriptor->name;
        envelope.payload.len = protobuf_c_message_pack(message, payload);
        envelope.payload.data = payload;
        envelope.sender = (char *)"broker";
        fake_broker_send_envelope(broker, &envelope);
}

static void fake_broker_send_welcome(FakeBroker *broker)
{
        Daemoneye__Eventbus__Welcome welcome = DAEMONEYE__EVENTBUS__WELCOME__INIT;

        welcome.protocol_version = DEB_PROTOCOL_VERSION;
        welcome.session_id = (char *)"s1";
        fake_broker_send_control(broker, MT(WELCOME), &welcome.base, NULL);
}

/* A non-fatal Error refusing the request @correlation_id, as the broker's RPC router does. */
static void fake_broker_refuse(FakeBroker *broker, const char *correlation_id, const char *message)
{
        Daemoneye__Eventbus__Error error = DAEMONEYE__EVENTBUS__ERROR__INIT;

        error.code = EC(PROTOCOL);
        error.message = (char *)message;
        fake_broker_send_control(broker, MT(ERROR), &error.base, correlation_id);
}

/* Sends @response on response.<@topic_id> with envelope correlation id @topic_id. */
static void fake_broker_send_response(FakeBroker *broker, const char *topic_id,
                                      const DebRpcResponse *response)
{
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        DebEnvelope envelope = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        g_autofree char *topic = g_strconcat("response.", topic_id, NULL);
        g_autoptr(GBytes) payload = deb_rpc_response_pack(response);

        correlation.correlation_id = (char *)topic_id;
        envelope.topic = topic;
        envelope.message_type = MT(RPC_RESPONSE);
        envelope.correlation = &correlation;
        envelope.payload_type = (char *)DEB_RPC_RESPONSE_TYPE;
        envelope.payload.data = (guint8 *)g_bytes_get_data(payload, &envelope.payload.len);
        envelope.sender = (char *)"procmond";
        fake_broker_send_envelope(broker, &envelope);
}

/* A SUCCESS reply with a health result, as a collector would send. */
static void fake_broker_reply_success(FakeBroker *broker, const char *correlation_id)
{
        DebRpcResponse response = DAEMONEYE__EVENTBUS__RPC_RESPONSE__INIT;
        Daemoneye__Eventbus__HealthResult health = DAEMONEYE__EVENTBUS__HEALTH_RESULT__INIT;

        health.overall = DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY;
        health.uptime_ms = 4242;
        response.correlation_id = (char *)correlation_id;
        response.status = STATUS(SUCCESS);
        response.execution_time_us = 17;
        response.payload_case = DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_HEALTH;
        response.health = &health;
        fake_broker_send_response(broker, correlation_id, &response);
}

static void fake_broker_reply_error(FakeBroker *broker, const char *correlation_id, DebRpcErrorKind kind)
{
        g_autoptr(DebRpcResponse) response =
                deb_rpc_response_new_error(correlation_id, kind, CATEGORY(INTERNAL), "test.code",
                                           "fake failure of kind %s", deb_rpc_error_kind_to_string(kind));

        fake_broker_send_response(broker, correlation_id, response);
}

static void fake_broker_read(FakeBroker *broker)
{
        DebFrame frame;
        gsize avail;
        guint8 *space;
        ssize_t n;

        if (broker->eof)
                return;
        space = deb_frame_decoder_get_space(broker->decoder, 64 * 1024, &avail);
        n = recv(broker->fd, space, avail, MSG_DONTWAIT);
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
                g_autoptr(GError) error = NULL;
                const DebEnvelope *env =
                        deb_unpacker_envelope(broker->unpacker, frame.body, frame.body_len, &error);
                SeenRequest *seen;

                g_assert_no_error(error);
                if (env->message_type == MT(HELLO)) {
                        fake_broker_send_welcome(broker);
                        continue;
                }
                g_assert_cmpint(env->message_type, ==, MT(RPC_REQUEST));
                seen = g_new0(SeenRequest, 1);
                seen->message_type = env->message_type;
                seen->topic = g_strdup(env->topic);
                seen->payload_type = g_strdup(env->payload_type);
                seen->sender = g_strdup(env->sender);
                seen->correlation_id = g_strdup(env->correlation->correlation_id);
                seen->parent_correlation_id = g_strdup(env->correlation->parent_correlation_id);
                seen->root_correlation_id = g_strdup(env->correlation->root_correlation_id);
                seen->request =
                        daemoneye__eventbus__rpc_request__unpack(NULL, env->payload.len, env->payload.data);
                g_assert_nonnull(seen->request);
                seen->received_us = g_get_monotonic_time();
                g_ptr_array_add(broker->requests, seen);
                if (broker->on_request)
                        broker->on_request(broker, seen, broker->on_request_data);
        }
}

static gboolean fake_broker_read_cb(int fd, GIOCondition condition, gpointer user_data)
{
        FakeBroker *broker = user_data;

        fake_broker_read(broker);
        if (!broker->eof)
                return G_SOURCE_CONTINUE;
        broker->source = NULL;
        return G_SOURCE_REMOVE;
}

/* Returns: (transfer full) a fake broker on one end of a socketpair; *@client_fd is the other end. */
static FakeBroker *fake_broker_new(GMainContext *context, int *client_fd)
{
        FakeBroker *broker = g_new0(FakeBroker, 1);
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        broker->context = context;
        broker->fd = sv[0];
        broker->decoder = deb_frame_decoder_new(0);
        broker->unpacker = deb_unpacker_new();
        broker->requests = g_ptr_array_new_with_free_func((GDestroyNotify)seen_request_free);
        broker->source = g_unix_fd_source_new(broker->fd, G_IO_IN | G_IO_HUP);
        g_source_set_callback(broker->source, G_SOURCE_FUNC(fake_broker_read_cb), broker, NULL);
        g_source_attach(broker->source, context);
        g_source_unref(broker->source);
        *client_fd = sv[1];
        return broker;
}

/* The connection is lost: the client sees end of stream. */
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
        g_ptr_array_unref(broker->requests);
        deb_frame_decoder_free(broker->decoder);
        deb_unpacker_free(broker->unpacker);
        g_free(broker);
}

static SeenRequest *fake_broker_request(FakeBroker *broker, guint i)
{
        g_assert_cmpuint(i, <, broker->requests->len);
        return broker->requests->pdata[i];
}

/* ---- fixture -------------------------------------------------------------- */

/* One callback run, copied out of the callback. */
typedef struct {
        GError *error;
        gboolean has_response;
        DebRpcStatus response_status;
        char *response_correlation_id;
        gboolean has_health;
        guint64 uptime_ms;
        guint call_id;
        char *correlation_id;
        char *last_correlation_id;
        char *client_id;
        char *target;
        char *topic;
        char *payload_sha256;
        DebRpcOperation operation;
        DebRpcStatus status;
        guint attempts;
        guint64 duration_us;
        guint64 round_trip_us;
        guint64 execution_time_us;
        gint64 at_us; /* monotonic time of the callback */
} Outcome;

typedef struct {
        GMainContext *context;
        FakeBroker *broker;
        DebClient *client;
        DebRpcClient *rpc;
        GPtrArray *outcomes; /* Outcome, in callback order */
        gint64 clock_us;     /* the breakers' clock */
        double random;       /* the jitter's random number */
        guint random_calls;
        /* What a callback does besides recording, for the re-entrancy tests. */
        void (*on_outcome)(gpointer fx, const Outcome *outcome);
} Fixture;

static void outcome_free(Outcome *o)
{
        g_clear_error(&o->error);
        g_free(o->response_correlation_id);
        g_free(o->correlation_id);
        g_free(o->last_correlation_id);
        g_free(o->client_id);
        g_free(o->target);
        g_free(o->topic);
        g_free(o->payload_sha256);
        g_free(o);
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
                GSource *tick_ = g_timeout_source_new(5);                                                   \
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

static gint64 fake_clock(gpointer user_data)
{
        return ((Fixture *)user_data)->clock_us;
}

static double fake_random(gpointer user_data)
{
        Fixture *fx = user_data;

        fx->random_calls++;
        return fx->random;
}

static void record_outcome(DebRpcClient *rpc, const DebRpcResponse *response, const GError *error,
                           const DebRpcCallInfo *info, gpointer user_data)
{
        Fixture *fx = user_data;
        Outcome *o = g_new0(Outcome, 1);

        o->error = error ? g_error_copy(error) : NULL;
        if (response) {
                o->has_response = TRUE;
                o->response_status = response->status;
                o->response_correlation_id = g_strdup(response->correlation_id);
                o->has_health = response->payload_case == DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_HEALTH;
                if (o->has_health)
                        o->uptime_ms = response->health->uptime_ms;
        }
        o->call_id = info->call_id;
        o->correlation_id = g_strdup(info->correlation_id);
        o->last_correlation_id = g_strdup(info->last_correlation_id);
        o->client_id = g_strdup(info->client_id);
        o->target = g_strdup(info->target);
        o->topic = g_strdup(info->topic);
        o->payload_sha256 = g_strdup(info->payload_sha256);
        o->operation = info->operation;
        o->status = info->status;
        o->attempts = info->attempts;
        o->duration_us = info->duration_us;
        o->round_trip_us = info->round_trip_us;
        o->execution_time_us = info->execution_time_us;
        o->at_us = g_get_monotonic_time();
        g_ptr_array_add(fx->outcomes, o);
        if (fx->on_outcome)
                fx->on_outcome(fx, o);
}

static void fixture_set_up(Fixture *fx, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        int client_fd;

        fx->context = g_main_context_new();
        g_main_context_push_thread_default(fx->context);
        fx->broker = fake_broker_new(fx->context, &client_fd);
        fx->client = deb_client_new("rpc-test");
        g_assert_true(deb_client_connect_fd(fx->client, client_fd, NULL, NULL, &error));
        g_assert_no_error(error);
        ITERATE_UNTIL(fx->context, deb_client_is_connected(fx->client));
        fx->outcomes = g_ptr_array_new_with_free_func((GDestroyNotify)outcome_free);
        fx->clock_us = 1000 * G_USEC_PER_SEC;
}

static void fixture_tear_down(Fixture *fx, gconstpointer data)
{
        g_clear_pointer(&fx->rpc, deb_rpc_client_free);
        g_clear_pointer(&fx->client, deb_client_unref);
        fake_broker_free(fx->broker);
        g_ptr_array_unref(fx->outcomes);
        /* Sources the test left behind go with the context. */
        while (g_main_context_iteration(fx->context, FALSE))
                ;
        g_main_context_pop_thread_default(fx->context);
        g_main_context_unref(fx->context);
}

/* Options with the fake clock and random numbers; quick timers. */
static DebRpcClientOptions test_options(Fixture *fx)
{
        DebRpcClientOptions options = deb_rpc_client_options_default();

        options.default_timeout_ms = 5000;
        options.retry = (DebBackoffPolicy){.max_attempts = 1,
                                           .base_delay_ms = 10,
                                           .max_delay_ms = 1000,
                                           .multiplier = 2.0,
                                           .jitter = 0.5};
        options.breaker = (DebBreakerPolicy){.failure_threshold = 100, .recovery_timeout_ms = 1000};
        options.clock = fake_clock;
        options.clock_data = fx;
        options.random = fake_random;
        options.random_data = fx;
        return options;
}

static void fixture_start(Fixture *fx, const DebRpcClientOptions *options)
{
        g_autoptr(GError) error = NULL;

        fx->rpc = deb_rpc_client_new(fx->client, options, &error);
        g_assert_no_error(error);
        g_assert_nonnull(fx->rpc);
}

static guint call(Fixture *fx, const char *target, DebRpcOperation operation, guint timeout_ms)
{
        g_autoptr(GError) error = NULL;
        guint id = deb_rpc_client_call(fx->rpc, target, operation, NULL, timeout_ms, record_outcome, fx,
                                       &error);

        g_assert_no_error(error);
        g_assert_cmpuint(id, >, 0);
        return id;
}

/* The call fails at once with @code and sends nothing. */
static void call_refused(Fixture *fx, const char *target, DebRpcOperation operation,
                         const DebRpcRequest *payload, DebRpcError code)
{
        g_autoptr(GError) error = NULL;
        guint sent = fx->broker->requests->len;
        guint outcomes = fx->outcomes->len;
        guint id = deb_rpc_client_call(fx->rpc, target, operation, payload, 50, record_outcome, fx, &error);

        g_assert_cmpuint(id, ==, 0);
        g_assert_error(error, DEB_RPC_ERROR, (gint)code);
        g_test_message("refused as expected: %s", error->message);
        iterate_for(fx->context, 20);
        g_assert_cmpuint(fx->broker->requests->len, ==, sent);
        g_assert_cmpuint(fx->outcomes->len, ==, outcomes);
}

static Outcome *outcome(Fixture *fx, guint i)
{
        g_assert_cmpuint(i, <, fx->outcomes->len);
        return fx->outcomes->pdata[i];
}

static void wait_requests(Fixture *fx, guint n)
{
        ITERATE_UNTIL(fx->context, fx->broker->requests->len >= n);
}

static void wait_outcomes(Fixture *fx, guint n)
{
        ITERATE_UNTIL(fx->context, fx->outcomes->len >= n);
}

/* ---- tests ---------------------------------------------------------------- */

/* A call goes out as the protocol says and its reply comes back with everything the audit log needs. */
static void test_call_success(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcClientStats stats;
        gint64 before = g_get_real_time();
        SeenRequest *seen;
        Outcome *o;
        guint id;

        fixture_start(fx, &options);
        id = call(fx, "procmond", OP(HEALTH_CHECK), 3000);
        wait_requests(fx, 1);
        seen = fake_broker_request(fx->broker, 0);
        g_assert_cmpint(seen->message_type, ==, MT(RPC_REQUEST));
        g_assert_cmpstr(seen->topic, ==, "control.collector.procmond");
        g_assert_cmpstr(seen->payload_type, ==, DEB_RPC_REQUEST_TYPE);
        g_assert_cmpstr(seen->sender, ==, "rpc-test");
        g_assert_true(g_uuid_string_is_valid(seen->correlation_id));
        g_assert_cmpstr(seen->request->correlation_id, ==, seen->correlation_id);
        g_assert_cmpstr(seen->request->client_id, ==, "rpc-test");
        g_assert_cmpstr(seen->request->target, ==, "procmond");
        g_assert_cmpint(seen->request->operation, ==, OP(HEALTH_CHECK));
        g_assert_cmpint(seen->request->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD__NOT_SET);
        /* The deadline travels with the request (wall clock), so the service can refuse stale work. */
        g_assert_cmpuint(seen->request->deadline_us, >=, (guint64)before + 3000 * 1000);
        g_assert_cmpuint(seen->request->deadline_us, <=, (guint64)g_get_real_time() + 3000 * 1000);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.pending, ==, 1);

        fake_broker_reply_success(fx->broker, seen->correlation_id);
        wait_outcomes(fx, 1);
        o = outcome(fx, 0);
        g_assert_no_error(o->error);
        g_assert_true(o->has_response);
        g_assert_true(o->has_health);
        g_assert_cmpuint(o->uptime_ms, ==, 4242);
        g_assert_cmpuint(o->call_id, ==, id);
        g_assert_cmpstr(o->correlation_id, ==, seen->correlation_id);
        g_assert_cmpstr(o->last_correlation_id, ==, seen->correlation_id);
        g_assert_cmpstr(o->client_id, ==, "rpc-test");
        g_assert_cmpstr(o->target, ==, "procmond");
        g_assert_cmpstr(o->topic, ==, "control.collector.procmond");
        g_assert_cmpstr(o->payload_sha256, ==, SHA256_EMPTY);
        g_assert_cmpint(o->status, ==, STATUS(SUCCESS));
        g_assert_cmpuint(o->attempts, ==, 1);
        g_assert_cmpuint(o->execution_time_us, ==, 17);
        g_assert_cmpuint(o->round_trip_us, >, 0);
        g_assert_cmpuint(o->duration_us, >=, o->round_trip_us);

        iterate_for(fx->context, 20);
        g_assert_cmpuint(fx->outcomes->len, ==, 1);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.pending, ==, 0);
        g_assert_cmpuint(stats.calls, ==, 1);
        g_assert_cmpuint(stats.succeeded, ==, 1);
        g_assert_cmpuint(stats.failed, ==, 0);
        g_assert_cmpuint(stats.attempts, ==, 1);
        g_assert_cmpuint(stats.retries, ==, 0);
}

/* A payload is sent as given and its hash is that of the packed oneof alone. */
static void test_call_payload(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcRequest payload = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__ConfigUpdatePayload update = DAEMONEYE__EVENTBUS__CONFIG_UPDATE_PAYLOAD__INIT;
        DebRpcRequest only = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        g_autofree guint8 *packed = NULL;
        g_autofree char *sha = NULL;
        g_autoptr(GError) error = NULL;
        SeenRequest *seen;
        gsize len;

        fixture_start(fx, &options);
        update.changes_json = (char *)"{\"scan_interval_ms\":500}";
        update.validate_only = TRUE;
        payload.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_CONFIG_UPDATE;
        payload.config_update = &update;
        payload.target = (char *)"ignored: the client fills it";
        g_assert_cmpuint(deb_rpc_client_call(fx->rpc, "procmond", OP(UPDATE_CONFIG), &payload, 1000,
                                             record_outcome, fx, &error),
                         >, 0);
        g_assert_no_error(error);
        wait_requests(fx, 1);
        seen = fake_broker_request(fx->broker, 0);
        g_assert_cmpstr(seen->topic, ==, "control.collector.config.procmond");
        g_assert_cmpstr(seen->request->target, ==, "procmond");
        g_assert_cmpint(seen->request->payload_case, ==,
                        DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_CONFIG_UPDATE);
        g_assert_cmpstr(seen->request->config_update->changes_json, ==, update.changes_json);
        g_assert_true(seen->request->config_update->validate_only);

        only.payload_case = payload.payload_case;
        only.config_update = &update;
        len = protobuf_c_message_get_packed_size(&only.base);
        packed = g_malloc(len);
        protobuf_c_message_pack(&only.base, packed);
        sha = g_compute_checksum_for_data(G_CHECKSUM_SHA256, packed, len);

        fake_broker_reply_success(fx->broker, seen->correlation_id);
        wait_outcomes(fx, 1);
        g_assert_no_error(outcome(fx, 0)->error);
        g_assert_cmpstr(outcome(fx, 0)->payload_sha256, ==, sha);
}

/* Bad arguments are refused at once and nothing is sent. */
static void test_call_invalid(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcRequest payload = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        Daemoneye__Eventbus__ShutdownPayload shutdown = DAEMONEYE__EVENTBUS__SHUTDOWN_PAYLOAD__INIT;
        DebRpcClientStats stats;

        fixture_start(fx, &options);
        call_refused(fx, "", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_INVALID_ARGUMENT);
        call_refused(fx, "proc.mond", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_INVALID_ARGUMENT);
        call_refused(fx, "procmond", OP(UNSPECIFIED), NULL, DEB_RPC_ERROR_INVALID_ARGUMENT);
        call_refused(fx, "procmond", (DebRpcOperation)99, NULL, DEB_RPC_ERROR_INVALID_ARGUMENT);
        payload.payload_case = DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_SHUTDOWN;
        payload.shutdown = &shutdown;
        call_refused(fx, "procmond", OP(START), &payload, DEB_RPC_ERROR_INVALID_ARGUMENT);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.refused, ==, 5);
        g_assert_cmpuint(stats.calls, ==, 0);
        g_assert_null(deb_rpc_client_new(fx->client, NULL, NULL)); /* one RPC client per DebClient */
}

/* An error reply ends the call with its kind, the reply included, and is not retried. */
static void test_error_reply(Fixture *fx, gconstpointer data)
{
        static const struct {
                DebRpcErrorKind kind;
                DebRpcError code;
        } table[] = {
                {KIND(INVALID_OPERATION), DEB_RPC_ERROR_INVALID_OPERATION},
                {KIND(EXECUTION_ERROR), DEB_RPC_ERROR_EXECUTION},
                {KIND(INVALID_ARGUMENT), DEB_RPC_ERROR_INVALID_ARGUMENT},
                {KIND(NOT_FOUND), DEB_RPC_ERROR_NOT_FOUND},
                {KIND(UNSPECIFIED), DEB_RPC_ERROR_FAILED},
        };
        DebRpcClientOptions options = test_options(fx);

        options.retry.max_attempts = 3;
        fixture_start(fx, &options);
        for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
                SeenRequest *seen;
                Outcome *o;

                /* Idempotent, retries allowed: still one attempt, since the target answered. */
                call(fx, "procmond", OP(HEALTH_CHECK), 2000);
                wait_requests(fx, i + 1);
                seen = fake_broker_request(fx->broker, i);
                fake_broker_reply_error(fx->broker, seen->correlation_id, table[i].kind);
                wait_outcomes(fx, i + 1);
                o = outcome(fx, i);
                g_assert_error(o->error, DEB_RPC_ERROR, (gint)table[i].code);
                g_assert_nonnull(strstr(o->error->message, "fake failure"));
                g_assert_nonnull(strstr(o->error->message, "test.code"));
                g_assert_true(o->has_response);
                g_assert_cmpint(o->status, ==, STATUS(ERROR));
                g_assert_cmpuint(o->attempts, ==, 1);
        }
        iterate_for(fx->context, 60);
        g_assert_cmpuint(fx->broker->requests->len, ==, G_N_ELEMENTS(table));
}

/* A reply that does not fit its request (another correlation id inside, a wrong payload type) is a protocol
 * error. */
static void test_protocol_reply(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcResponse response = DAEMONEYE__EVENTBUS__RPC_RESPONSE__INIT;
        SeenRequest *seen;

        fixture_start(fx, &options);
        call(fx, "procmond", OP(STOP), 2000);
        wait_requests(fx, 1);
        seen = fake_broker_request(fx->broker, 0);
        response.correlation_id = (char *)"someone-else";
        response.status = STATUS(SUCCESS);
        fake_broker_send_response(fx->broker, seen->correlation_id, &response);
        wait_outcomes(fx, 1);
        g_assert_error(outcome(fx, 0)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL);

        /* A status that is no outcome. */
        call(fx, "procmond", OP(STOP), 2000);
        wait_requests(fx, 2);
        seen = fake_broker_request(fx->broker, 1);
        response.correlation_id = seen->correlation_id;
        response.status = STATUS(UNSPECIFIED);
        fake_broker_send_response(fx->broker, seen->correlation_id, &response);
        wait_outcomes(fx, 2);
        g_assert_error(outcome(fx, 1)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL);
}

/* No reply by the deadline: TIMEOUT, after the deadline and not long after; a late reply is ignored. */
static void test_timeout_and_late_reply(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcClientStats stats;
        SeenRequest *seen;
        Outcome *o;

        fixture_start(fx, &options);
        call(fx, "procmond", OP(RESTART), 80);
        wait_requests(fx, 1);
        seen = fake_broker_request(fx->broker, 0);
        wait_outcomes(fx, 1);
        o = outcome(fx, 0);
        g_assert_error(o->error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT);
        g_test_message("%s", o->error->message);
        g_assert_false(o->has_response);
        g_assert_cmpint(o->status, ==, STATUS(TIMEOUT));
        g_assert_cmpuint(o->attempts, ==, 1);
        g_assert_cmpint(o->at_us - seen->received_us, >=, 80 * 1000 - 2000);
        g_assert_cmpint(o->at_us - seen->received_us, <, 5 * G_USEC_PER_SEC);

        fake_broker_reply_success(fx->broker, seen->correlation_id);
        ITERATE_UNTIL(fx->context, (deb_rpc_client_get_stats(fx->rpc, &stats), stats.late_replies == 1));
        iterate_for(fx->context, 20);
        g_assert_cmpuint(fx->outcomes->len, ==, 1);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.timeouts, ==, 1);
        g_assert_cmpuint(stats.failed, ==, 1);
        g_assert_cmpuint(stats.pending, ==, 0);
        /* A reply nobody asked for is a late reply too. */
        fake_broker_reply_success(fx->broker, "00000000-0000-4000-8000-000000000000");
        ITERATE_UNTIL(fx->context, (deb_rpc_client_get_stats(fx->rpc, &stats), stats.late_replies == 2));
}

/* Many calls with different deadlines: each times out on its own, earliest first. */
static void test_deadlines_ordered(Fixture *fx, gconstpointer data)
{
        static const guint timeouts[] = {120, 40, 80, 40};
        DebRpcClientOptions options = test_options(fx);
        guint ids[G_N_ELEMENTS(timeouts)];

        fixture_start(fx, &options);
        for (guint i = 0; i < G_N_ELEMENTS(timeouts); i++)
                ids[i] = call(fx, "procmond", OP(RESTART), timeouts[i]);
        wait_outcomes(fx, G_N_ELEMENTS(timeouts));
        g_assert_cmpuint(outcome(fx, 0)->call_id, ==, ids[1]);
        g_assert_cmpuint(outcome(fx, 1)->call_id, ==, ids[3]);
        g_assert_cmpuint(outcome(fx, 2)->call_id, ==, ids[2]);
        g_assert_cmpuint(outcome(fx, 3)->call_id, ==, ids[0]);
        for (guint i = 0; i < G_N_ELEMENTS(timeouts); i++)
                g_assert_error(outcome(fx, i)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT);
}

/* max_pending calls at once; one more is refused without sending, and room comes back when one ends. */
static void test_max_pending(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcClientStats stats;

        options.max_pending = 2;
        fixture_start(fx, &options);
        call(fx, "procmond", OP(HEALTH_CHECK), 5000);
        call(fx, "netmond", OP(HEALTH_CHECK), 5000);
        wait_requests(fx, 2);
        call_refused(fx, "fsmond", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_LIMIT);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.pending, ==, 2);
        g_assert_cmpuint(stats.refused, ==, 1);

        fake_broker_reply_success(fx->broker, fake_broker_request(fx->broker, 0)->correlation_id);
        wait_outcomes(fx, 1);
        call(fx, "fsmond", OP(HEALTH_CHECK), 5000);
        wait_requests(fx, 3);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.pending, ==, 2);
}

/* An idempotent call is retried after a timeout with a new correlation id, chained to the first. */
static void test_retry_idempotent(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcClientStats stats;
        SeenRequest *first, *second;
        Outcome *o;

        options.retry.max_attempts = 3;
        fixture_start(fx, &options);
        call(fx, "procmond", OP(HEALTH_CHECK), 40);
        wait_requests(fx, 2);
        first = fake_broker_request(fx->broker, 0);
        second = fake_broker_request(fx->broker, 1);
        g_assert_cmpstr(first->correlation_id, !=, second->correlation_id);
        g_assert_cmpstr(second->parent_correlation_id, ==, first->correlation_id);
        g_assert_cmpstr(second->root_correlation_id, ==, first->correlation_id);
        g_assert_cmpstr(second->request->correlation_id, ==, second->correlation_id);
        g_assert_cmpuint(fx->outcomes->len, ==, 0);

        /* The first attempt's reply comes late: ignored, the second one's counts. */
        fake_broker_reply_success(fx->broker, first->correlation_id);
        fake_broker_reply_success(fx->broker, second->correlation_id);
        wait_outcomes(fx, 1);
        o = outcome(fx, 0);
        g_assert_no_error(o->error);
        g_assert_cmpuint(o->attempts, ==, 2);
        g_assert_cmpstr(o->correlation_id, ==, first->correlation_id);
        g_assert_cmpstr(o->last_correlation_id, ==, second->correlation_id);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.attempts, ==, 2);
        g_assert_cmpuint(stats.retries, ==, 1);
        g_assert_cmpuint(stats.timeouts, ==, 1);
        g_assert_cmpuint(stats.late_replies, ==, 1);
        g_assert_cmpuint(fx->random_calls, ==, 1);
}

/* Retries stop at max_attempts; the outcome is the last attempt's. */
static void test_retry_exhausted(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        Outcome *o;

        options.retry.max_attempts = 3;
        fixture_start(fx, &options);
        call(fx, "procmond", OP(START), 30);
        wait_outcomes(fx, 1);
        o = outcome(fx, 0);
        g_assert_error(o->error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT);
        g_assert_cmpuint(o->attempts, ==, 3);
        g_assert_cmpuint(fx->broker->requests->len, ==, 3);
        g_assert_cmpstr(o->last_correlation_id, ==, fake_broker_request(fx->broker, 2)->correlation_id);
        iterate_for(fx->context, 60);
        g_assert_cmpuint(fx->broker->requests->len, ==, 3);
}

/* Non-idempotent operations get exactly one attempt, whatever the policy. */
static void test_no_retry_non_idempotent(Fixture *fx, gconstpointer data)
{
        static const DebRpcOperation operations[] = {OP(RESTART), OP(UPDATE_CONFIG), OP(GRACEFUL_SHUTDOWN),
                                                     OP(FORCE_SHUTDOWN)};
        DebRpcClientOptions options = test_options(fx);

        options.retry.max_attempts = 5;
        fixture_start(fx, &options);
        for (guint i = 0; i < G_N_ELEMENTS(operations); i++)
                call(fx, "procmond", operations[i], 30);
        wait_outcomes(fx, G_N_ELEMENTS(operations));
        iterate_for(fx->context, 80);
        g_assert_cmpuint(fx->broker->requests->len, ==, G_N_ELEMENTS(operations));
        for (guint i = 0; i < G_N_ELEMENTS(operations); i++) {
                g_assert_error(outcome(fx, i)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT);
                g_assert_cmpuint(outcome(fx, i)->attempts, ==, 1);
        }
        g_assert_cmpuint(fx->random_calls, ==, 0);
}

/*
 * A communication failure reported by the broker (the target's connection
 * closed before it answered) is retried for idempotent operations: the
 * outcome is unknown. A refusal by the broker is not: nothing was forwarded.
 */
static void test_retry_communication(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        Outcome *o;

        options.retry.max_attempts = 3;
        fixture_start(fx, &options);
        call(fx, "procmond", OP(STOP), 2000);
        wait_requests(fx, 1);
        fake_broker_reply_error(fx->broker, fake_broker_request(fx->broker, 0)->correlation_id,
                                KIND(COMMUNICATION_ERROR));
        wait_requests(fx, 2);
        fake_broker_reply_success(fx->broker, fake_broker_request(fx->broker, 1)->correlation_id);
        wait_outcomes(fx, 1);
        o = outcome(fx, 0);
        g_assert_no_error(o->error);
        g_assert_cmpuint(o->attempts, ==, 2);

        call(fx, "procmond", OP(STOP), 2000);
        wait_requests(fx, 3);
        fake_broker_refuse(
                fx->broker, fake_broker_request(fx->broker, 2)->correlation_id,
                "RPC stop to 'procmond' refused: this connection has 1000 requests awaiting replies");
        wait_outcomes(fx, 2);
        o = outcome(fx, 1);
        g_assert_error(o->error, DEB_RPC_ERROR, DEB_RPC_ERROR_REFUSED);
        g_assert_nonnull(strstr(o->error->message, "1000 requests awaiting replies"));
        g_assert_cmpuint(o->attempts, ==, 1);
        iterate_for(fx->context, 60);
        g_assert_cmpuint(fx->broker->requests->len, ==, 3);
}

/* Time from a timed-out attempt's send to the next attempt's arrival at the broker, per retry. */
static void measure_retry_gaps(Fixture *fx, double random, gint64 gaps_us[2])
{
        DebRpcClientOptions options = test_options(fx);

        fx->random = random;
        options.retry = (DebBackoffPolicy){.max_attempts = 3,
                                           .base_delay_ms = 150,
                                           .max_delay_ms = 1000,
                                           .multiplier = 2.0,
                                           .jitter = 0.5};
        fixture_start(fx, &options);
        call(fx, "procmond", OP(HEALTH_CHECK), 20);
        wait_outcomes(fx, 1);
        g_assert_cmpuint(fx->broker->requests->len, ==, 3);
        for (guint i = 0; i < 2; i++)
                gaps_us[i] = fake_broker_request(fx->broker, i + 1)->received_us -
                             fake_broker_request(fx->broker, i)->received_us;
        g_test_message("random %.3f: gaps %" G_GINT64_FORMAT " us, %" G_GINT64_FORMAT " us", random,
                       gaps_us[0], gaps_us[1]);
        g_assert_cmpuint(fx->random_calls, ==, 2);
}

/*
 * Delays double (150 ms, 300 ms) and jitter only shortens them, by at most
 * jitter × delay: with r = 0 each gap is at least timeout + d(n); with
 * r → 1 at least timeout + d(n)/2 and less than timeout + d(n). The upper
 * bounds leave d(n)/2 of slack for a loaded machine.
 */
static void test_backoff_no_jitter(Fixture *fx, gconstpointer data)
{
        gint64 gaps[2];

        measure_retry_gaps(fx, 0.0, gaps);
        g_assert_cmpint(gaps[0], >=, (20 + 150) * 1000);
        g_assert_cmpint(gaps[1], >=, (20 + 300) * 1000);
        g_assert_cmpint(gaps[1] - gaps[0], >=, 150 * 1000 - 20 * 1000);
}

static void test_backoff_full_jitter_draw(Fixture *fx, gconstpointer data)
{
        gint64 gaps[2];

        measure_retry_gaps(fx, 0.9999, gaps);
        g_assert_cmpint(gaps[0], >=, (20 + 75) * 1000);
        g_assert_cmpint(gaps[0], <, (20 + 150) * 1000);
        g_assert_cmpint(gaps[1], >=, (20 + 150) * 1000);
        g_assert_cmpint(gaps[1], <, (20 + 300) * 1000);
}

/* Failures open a target's breaker; open, it refuses at once; other targets are not affected. */
static void test_breaker_opens(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebBreaker *breaker;

        options.breaker.failure_threshold = 3;
        fixture_start(fx, &options);
        breaker = deb_rpc_client_get_breaker(fx->rpc, "procmond");
        /* Timeouts, NOT_FOUND and malformed replies count as failures… */
        call(fx, "procmond", OP(RESTART), 20);
        wait_outcomes(fx, 1);
        call(fx, "procmond", OP(RESTART), 2000);
        wait_requests(fx, 2);
        fake_broker_reply_error(fx->broker, fake_broker_request(fx->broker, 1)->correlation_id,
                                KIND(NOT_FOUND));
        wait_outcomes(fx, 2);
        g_assert_cmpuint(deb_breaker_get_consecutive_failures(breaker), ==, 2);
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_CLOSED);
        /* …an answer, even an error, proves the target is there… */
        call(fx, "procmond", OP(RESTART), 2000);
        wait_requests(fx, 3);
        fake_broker_reply_error(fx->broker, fake_broker_request(fx->broker, 2)->correlation_id,
                                KIND(EXECUTION_ERROR));
        wait_outcomes(fx, 3);
        g_assert_cmpuint(deb_breaker_get_consecutive_failures(breaker), ==, 0);
        /* …three in a row open it. */
        for (guint i = 0; i < 3; i++)
                call(fx, "procmond", OP(RESTART), 20);
        wait_outcomes(fx, 6);
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_OPEN);

        call_refused(fx, "procmond", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_CIRCUIT_OPEN);
        fx->clock_us += 999 * G_TIME_SPAN_MILLISECOND;
        call_refused(fx, "procmond", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_CIRCUIT_OPEN);
        /* Per target. */
        call(fx, "netmond", OP(HEALTH_CHECK), 2000);
        wait_requests(fx, 7);
        g_assert_cmpstr(fake_broker_request(fx->broker, 6)->request->target, ==, "netmond");
}

/* After the recovery timeout one probe goes through; others wait for it; its success closes the breaker. */
static void test_breaker_half_open_probe(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebBreaker *breaker;

        options.breaker.failure_threshold = 1;
        fixture_start(fx, &options);
        breaker = deb_rpc_client_get_breaker(fx->rpc, "procmond");
        call(fx, "procmond", OP(HEALTH_CHECK), 20);
        wait_outcomes(fx, 1);
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_OPEN);
        call_refused(fx, "procmond", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_CIRCUIT_OPEN);

        fx->clock_us += 1000 * G_TIME_SPAN_MILLISECOND;
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_HALF_OPEN);
        call(fx, "procmond", OP(HEALTH_CHECK), 2000); /* the probe */
        wait_requests(fx, 2);
        call_refused(fx, "procmond", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_CIRCUIT_OPEN);
        fake_broker_reply_success(fx->broker, fake_broker_request(fx->broker, 1)->correlation_id);
        wait_outcomes(fx, 2);
        g_assert_no_error(outcome(fx, 1)->error);
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_CLOSED);
        call(fx, "procmond", OP(HEALTH_CHECK), 2000);
        call(fx, "procmond", OP(HEALTH_CHECK), 2000);
        wait_requests(fx, 4);
}

/* A failed probe opens the breaker again for another recovery timeout. */
static void test_breaker_probe_fails(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebBreaker *breaker;

        options.breaker.failure_threshold = 2;
        fixture_start(fx, &options);
        breaker = deb_rpc_client_get_breaker(fx->rpc, "procmond");
        call(fx, "procmond", OP(RESTART), 20);
        call(fx, "procmond", OP(RESTART), 20);
        wait_outcomes(fx, 2);
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_OPEN);
        fx->clock_us += 1000 * G_TIME_SPAN_MILLISECOND;
        call(fx, "procmond", OP(RESTART), 20);
        wait_outcomes(fx, 3);
        g_assert_error(outcome(fx, 2)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT);
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_OPEN);
        call_refused(fx, "procmond", OP(RESTART), NULL, DEB_RPC_ERROR_CIRCUIT_OPEN);
        fx->clock_us += 1000 * G_TIME_SPAN_MILLISECOND;
        g_assert_cmpint(deb_breaker_get_state(breaker), ==, DEB_BREAKER_HALF_OPEN);
}

/* A retry that finds the breaker open fails at once instead of waiting for another deadline. */
static void test_breaker_stops_retries(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        Outcome *o;

        options.breaker.failure_threshold = 1;
        options.retry.max_attempts = 5;
        fixture_start(fx, &options);
        call(fx, "procmond", OP(HEALTH_CHECK), 20);
        wait_outcomes(fx, 1);
        o = outcome(fx, 0);
        g_assert_error(o->error, DEB_RPC_ERROR, DEB_RPC_ERROR_CIRCUIT_OPEN);
        g_assert_cmpuint(fx->broker->requests->len, ==, 1);
}

/* Losing the connection fails what is in flight at once; idempotent calls retry and fail to send too. */
static void test_connection_loss(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcClientStats stats;
        gint64 lost_at;

        options.retry.max_attempts = 2;
        fixture_start(fx, &options);
        call(fx, "procmond", OP(RESTART), 10000);
        call(fx, "procmond", OP(HEALTH_CHECK), 10000);
        wait_requests(fx, 2);
        lost_at = g_get_monotonic_time();
        fake_broker_close(fx->broker);
        wait_outcomes(fx, 2);
        for (guint i = 0; i < 2; i++) {
                Outcome *o = outcome(fx, i);

                g_assert_error(o->error, DEB_RPC_ERROR, DEB_RPC_ERROR_COMMUNICATION);
                g_test_message("%s (attempts %u)", o->error->message, o->attempts);
                /* Long before the 10 s deadlines. */
                g_assert_cmpint(o->at_us - lost_at, <, 5 * G_USEC_PER_SEC);
        }
        g_assert_cmpint(outcome(fx, 0)->operation, ==, OP(RESTART));
        g_assert_cmpuint(outcome(fx, 0)->attempts, ==, 1);
        g_assert_cmpuint(outcome(fx, 1)->attempts, ==, 2);
        deb_rpc_client_get_stats(fx->rpc, &stats);
        g_assert_cmpuint(stats.pending, ==, 0);

        /* Not connected: refused at once, and the target's breaker hears nothing of it. */
        call_refused(fx, "netmond", OP(HEALTH_CHECK), NULL, DEB_RPC_ERROR_COMMUNICATION);
        g_assert_cmpuint(
                deb_breaker_get_consecutive_failures(deb_rpc_client_get_breaker(fx->rpc, "netmond")), ==, 0);
}

/* Cancel ends the call before it returns; its reply is ignored; unknown ids are refused. */
static void test_cancel(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        DebRpcClientStats stats;
        guint id;

        fixture_start(fx, &options);
        id = call(fx, "procmond", OP(HEALTH_CHECK), 5000);
        wait_requests(fx, 1);
        g_assert_true(deb_rpc_client_cancel(fx->rpc, id));
        g_assert_cmpuint(fx->outcomes->len, ==, 1);
        g_assert_error(outcome(fx, 0)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED);
        g_assert_false(deb_rpc_client_cancel(fx->rpc, id));
        g_assert_false(deb_rpc_client_cancel(fx->rpc, 12345));

        fake_broker_reply_success(fx->broker, fake_broker_request(fx->broker, 0)->correlation_id);
        ITERATE_UNTIL(fx->context, (deb_rpc_client_get_stats(fx->rpc, &stats), stats.late_replies == 1));
        g_assert_cmpuint(fx->outcomes->len, ==, 1);
        g_assert_cmpuint(stats.pending, ==, 0);
        /* A cancelled call says nothing about the target. */
        g_assert_cmpuint(
                deb_breaker_get_consecutive_failures(deb_rpc_client_get_breaker(fx->rpc, "procmond")), ==,
                0);
}

/* A call waiting for its retry can be cancelled too: no further attempt is sent. */
static void test_cancel_waiting_retry(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        guint id;

        options.retry = (DebBackoffPolicy){.max_attempts = 3,
                                           .base_delay_ms = 200,
                                           .max_delay_ms = 1000,
                                           .multiplier = 2.0,
                                           .jitter = 0};
        fixture_start(fx, &options);
        id = call(fx, "procmond", OP(HEALTH_CHECK), 20);
        iterate_for(fx->context, 60);
        g_assert_cmpuint(fx->broker->requests->len, ==, 1);
        g_assert_true(deb_rpc_client_cancel(fx->rpc, id));
        iterate_for(fx->context, 300);
        g_assert_cmpuint(fx->broker->requests->len, ==, 1);
        g_assert_cmpuint(fx->outcomes->len, ==, 1);
        g_assert_error(outcome(fx, 0)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED);
}

static void answer_success(FakeBroker *broker, SeenRequest *seen, gpointer user_data)
{
        fake_broker_reply_success(broker, seen->correlation_id);
}

static void answer_execution_error(FakeBroker *broker, SeenRequest *seen, gpointer user_data)
{
        fake_broker_reply_error(broker, seen->correlation_id, KIND(EXECUTION_ERROR));
}

/* call_sync iterates until the outcome: the reply (error replies included), or the deadline. */
static void test_call_sync(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);
        g_autoptr(GError) error = NULL;
        DebRpcResponse *response = NULL;

        fixture_start(fx, &options);
        fx->broker->on_request = answer_success;
        g_assert_true(deb_rpc_client_call_sync(fx->rpc, "procmond", OP(HEALTH_CHECK), NULL, 2000, &response,
                                               &error));
        g_assert_no_error(error);
        g_assert_nonnull(response);
        g_assert_cmpint(response->status, ==, STATUS(SUCCESS));
        g_assert_cmpuint(response->health->uptime_ms, ==, 4242);
        daemoneye__eventbus__rpc_response__free_unpacked(response, NULL);
        response = NULL;

        fx->broker->on_request = answer_execution_error;
        g_assert_false(deb_rpc_client_call_sync(fx->rpc, "procmond", OP(HEALTH_CHECK), NULL, 2000, &response,
                                                &error));
        g_assert_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_EXECUTION);
        g_assert_nonnull(response);
        g_assert_cmpint(response->status, ==, STATUS(ERROR));
        g_assert_cmpstr(response->error->code, ==, "test.code");
        daemoneye__eventbus__rpc_response__free_unpacked(response, NULL);
        response = NULL;
        g_clear_error(&error);

        fx->broker->on_request = NULL;
        g_assert_false(
                deb_rpc_client_call_sync(fx->rpc, "procmond", OP(HEALTH_CHECK), NULL, 50, NULL, &error));
        g_assert_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT);
        g_clear_error(&error);

        /* Refused at once: no waiting at all. */
        g_assert_false(
                deb_rpc_client_call_sync(fx->rpc, "no.such", OP(HEALTH_CHECK), NULL, 50, &response, &error));
        g_assert_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT);
        g_assert_null(response);
}

/* Freeing the RPC client ends every pending call with CANCELLED. */
static void test_free_pending(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);

        options.retry.max_attempts = 3;
        fixture_start(fx, &options);
        call(fx, "procmond", OP(HEALTH_CHECK), 5000);
        call(fx, "procmond", OP(HEALTH_CHECK), 20); /* will be waiting for its retry */
        iterate_for(fx->context, 40);
        g_clear_pointer(&fx->rpc, deb_rpc_client_free);
        g_assert_cmpuint(fx->outcomes->len, ==, 2);
        for (guint i = 0; i < 2; i++)
                g_assert_error(outcome(fx, i)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED);
        /* The DebClient is usable again, with a new RPC client. */
        fixture_start(fx, &options);
}

static void free_rpc_in_callback(gpointer data, const Outcome *o)
{
        Fixture *fx = data;

        g_clear_pointer(&fx->rpc, deb_rpc_client_free);
}

/* A callback may free the RPC client: the other calls end CANCELLED, nothing touches freed memory. */
static void test_free_in_callback(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);

        fixture_start(fx, &options);
        call(fx, "procmond", OP(RESTART), 20);
        call(fx, "procmond", OP(RESTART), 5000);
        fx->on_outcome = free_rpc_in_callback;
        wait_outcomes(fx, 2);
        g_assert_error(outcome(fx, 0)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT);
        g_assert_error(outcome(fx, 1)->error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED);
        g_assert_null(fx->rpc);
        fx->on_outcome = NULL;
        iterate_for(fx->context, 30);
}

static void call_again_in_callback(gpointer data, const Outcome *o)
{
        Fixture *fx = data;

        if (fx->outcomes->len == 1)
                call(fx, "procmond", OP(HEALTH_CHECK), 2000);
}

/* A callback may make the next call. */
static void test_call_in_callback(Fixture *fx, gconstpointer data)
{
        DebRpcClientOptions options = test_options(fx);

        fixture_start(fx, &options);
        fx->on_outcome = call_again_in_callback;
        fx->broker->on_request = answer_success;
        call(fx, "procmond", OP(HEALTH_CHECK), 2000);
        wait_outcomes(fx, 2);
        g_assert_no_error(outcome(fx, 0)->error);
        g_assert_no_error(outcome(fx, 1)->error);
        g_assert_cmpuint(fx->broker->requests->len, ==, 2);
}

static void test_options_invalid(void)
{
        DebRpcClientOptions options = deb_rpc_client_options_default();
        g_autoptr(DebClient) client = deb_client_new("x");
        g_autoptr(GError) error = NULL;

        g_assert_cmpuint(options.max_pending, ==, 1000);
        g_assert_cmpuint(options.default_timeout_ms, ==, 30000);
        options.max_pending = 0;
        g_assert_null(deb_rpc_client_new(client, &options, &error));
        g_assert_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        options = deb_rpc_client_options_default();
        options.retry.multiplier = 0.5;
        g_assert_null(deb_rpc_client_new(client, &options, &error));
        g_assert_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

#define ADD(path, func) g_test_add(path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
        ADD("/rpc-client/call/success", test_call_success);
        ADD("/rpc-client/call/payload", test_call_payload);
        ADD("/rpc-client/call/invalid", test_call_invalid);
        ADD("/rpc-client/call/error-reply", test_error_reply);
        ADD("/rpc-client/call/protocol-reply", test_protocol_reply);
        ADD("/rpc-client/deadline/timeout-and-late-reply", test_timeout_and_late_reply);
        ADD("/rpc-client/deadline/ordered", test_deadlines_ordered);
        ADD("/rpc-client/max-pending", test_max_pending);
        ADD("/rpc-client/retry/idempotent", test_retry_idempotent);
        ADD("/rpc-client/retry/exhausted", test_retry_exhausted);
        ADD("/rpc-client/retry/not-idempotent", test_no_retry_non_idempotent);
        ADD("/rpc-client/retry/communication-and-refusal", test_retry_communication);
        ADD("/rpc-client/backoff/no-jitter", test_backoff_no_jitter);
        ADD("/rpc-client/backoff/jitter-bounds", test_backoff_full_jitter_draw);
        ADD("/rpc-client/breaker/opens", test_breaker_opens);
        ADD("/rpc-client/breaker/half-open-probe", test_breaker_half_open_probe);
        ADD("/rpc-client/breaker/probe-fails", test_breaker_probe_fails);
        ADD("/rpc-client/breaker/stops-retries", test_breaker_stops_retries);
        ADD("/rpc-client/connection-loss", test_connection_loss);
        ADD("/rpc-client/cancel/in-flight", test_cancel);
        ADD("/rpc-client/cancel/waiting-retry", test_cancel_waiting_retry);
        ADD("/rpc-client/call-sync", test_call_sync);
        ADD("/rpc-client/free/pending", test_free_pending);
        ADD("/rpc-client/free/in-callback", test_free_in_callback);
        ADD("/rpc-client/callback/call-again", test_call_in_callback);
        g_test_add_func("/rpc-client/options/invalid", test_options_invalid);
        return g_test_run();
}
