/* SPDX-License-Identifier: Apache-2.0 */
#include "raw-conn.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct _RawConn {
        int fd;
        DebFrameDecoder *decoder;
        DebUnpacker *unpacker;
        guint next_correlation;
        char *client_id; /* from Hello: the broker refuses envelopes from anybody else */
};

void raw_error_clear(RawError *e)
{
        g_clear_pointer(&e->message, g_free);
        g_clear_pointer(&e->correlation_id, g_free);
        e->code = 0;
        e->fatal = FALSE;
}

const char *raw_error_code_to_string(int code)
{
        const ProtobufCEnumValue *v =
                protobuf_c_enum_descriptor_get_value(&daemoneye__eventbus__error_code__descriptor, code);

        return v ? v->name : "(unknown code)";
}

RawConn *raw_conn_connect(const char *socket_path, GError **error)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        g_autoptr(RawConn) conn = NULL;

        if (strlen(socket_path) >= sizeof(addr.sun_path)) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "socket %s: path too long", socket_path);
                return NULL;
        }
        g_strlcpy(addr.sun_path, socket_path, sizeof(addr.sun_path));

        conn = g_new0(RawConn, 1);
        conn->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        conn->decoder = deb_frame_decoder_new(DEB_DEFAULT_MAX_FRAME_BYTES);
        conn->unpacker = deb_unpacker_new();
        if (conn->fd < 0 || connect(conn->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                int errsv = errno;
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "socket %s: connect: %s", socket_path,
                            g_strerror(errsv));
                return NULL;
        }
        return g_steal_pointer(&conn);
}

void raw_conn_free(RawConn *conn)
{
        if (!conn)
                return;
        if (conn->fd >= 0)
                close(conn->fd);
        g_clear_pointer(&conn->decoder, deb_frame_decoder_free);
        g_clear_pointer(&conn->unpacker, deb_unpacker_free);
        g_free(conn->client_id);
        g_free(conn);
}

gboolean raw_conn_write(RawConn *conn, const void *data, gsize len, GError **error)
{
        const guint8 *p = data;

        while (len > 0) {
                /* MSG_NOSIGNAL: a broker that hung up is a test outcome, not a SIGPIPE. */
                ssize_t n = send(conn->fd, p, len, MSG_NOSIGNAL);
                if (n < 0) {
                        int errsv = errno;
                        if (errsv == EINTR)
                                continue;
                        g_set_error(error, DEB_ERROR,
                                    errsv == EPIPE || errsv == ECONNRESET ? DEB_ERROR_CLOSED : DEB_ERROR_IO,
                                    "raw connection: write: %s", g_strerror(errsv));
                        return FALSE;
                }
                p += n;
                len -= (gsize)n;
        }
        return TRUE;
}

gboolean raw_conn_send(RawConn *conn, int message_type, const char *topic, const char *correlation_id,
                       const ProtobufCMessage *payload, const void *data, gsize data_len, GError **error)
{
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        DebCorrelation corr = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        g_autoptr(GByteArray) frame = g_byte_array_new();
        g_autofree guint8 *packed = NULL;
        g_autofree char *corr_id = NULL;

        corr_id = correlation_id ? g_strdup(correlation_id)
                                 : g_strdup_printf("raw-%d-%u", (int)getpid(), ++conn->next_correlation);
        corr.correlation_id = corr_id;
        corr.root_correlation_id = corr_id;
        corr.sequence_number = conn->next_correlation;

        env.message_type = message_type;
        env.topic = (char *)(topic ? topic : "");
        env.correlation = &corr;
        env.timestamp_us = (guint64)g_get_real_time();
        env.sender = conn->client_id ? conn->client_id : (char *)"";
        if (payload) {
                gsize size = protobuf_c_message_get_packed_size(payload);
                packed = g_malloc(MAX(size, 1));
                protobuf_c_message_pack(payload, packed);
                env.payload_type = (char *)payload->descriptor->name;
                env.payload.data = packed;
                env.payload.len = size;
        } else {
                env.payload.data = (guint8 *)data;
                env.payload.len = data ? data_len : 0;
        }

        if (!deb_frame_encode_envelope(frame, &env, 0, error))
                return FALSE;
        return raw_conn_write(conn, frame->data, frame->len, error);
}

gboolean raw_conn_send_hello(RawConn *conn, const char *client_id, GError **error)
{
        Daemoneye__Eventbus__Hello hello = DAEMONEYE__EVENTBUS__HELLO__INIT;

        g_free(conn->client_id);
        conn->client_id = g_strdup(client_id);
        hello.client_id = (char *)client_id;
        hello.protocol_version = DEB_PROTOCOL_VERSION;
        return raw_conn_send(conn, RAW_MT(HELLO), NULL, NULL, &hello.base, NULL, 0, error);
}

gboolean raw_conn_publish(RawConn *conn, const char *topic, const void *data, gsize len, GError **error)
{
        return raw_conn_send(conn, RAW_MT(EVENT), topic, NULL, NULL, data, len, error);
}

gboolean raw_conn_subscribe(RawConn *conn, const char *const *patterns, const char *correlation_id,
                            GError **error)
{
        Daemoneye__Eventbus__Subscribe sub = DAEMONEYE__EVENTBUS__SUBSCRIBE__INIT;

        sub.n_patterns = g_strv_length((char **)patterns);
        sub.patterns = (char **)patterns;
        return raw_conn_send(conn, RAW_MT(SUBSCRIBE), NULL, correlation_id, &sub.base, NULL, 0, error);
}

const DebEnvelope *raw_conn_read(RawConn *conn, guint timeout_ms, GError **error)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        for (;;) {
                DebFrame frame;
                struct pollfd pfd = {.fd = conn->fd, .events = POLLIN};
                gint64 remaining_ms;
                guint8 *space;
                gsize avail;
                ssize_t n;
                int r;

                r = deb_frame_decoder_next(conn->decoder, &frame, error);
                if (r < 0)
                        return NULL;
                if (r > 0)
                        return deb_unpacker_envelope(conn->unpacker, frame.body, frame.body_len, error);

                remaining_ms = (deadline - g_get_monotonic_time() + 999) / 1000;
                if (remaining_ms <= 0) {
                        g_set_error(error, DEB_ERROR, DEB_ERROR_TIMEOUT,
                                    "raw connection: no complete frame within %u ms", timeout_ms);
                        return NULL;
                }
                r = poll(&pfd, 1, (int)remaining_ms);
                if (r < 0 && errno != EINTR) {
                        int errsv = errno;
                        g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "raw connection: poll: %s",
                                    g_strerror(errsv));
                        return NULL;
                }
                if (r <= 0)
                        continue;

                space = deb_frame_decoder_get_space(conn->decoder, 4096, &avail);
                n = read(conn->fd, space, avail);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != ECONNRESET) {
                        int errsv = errno;
                        g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "raw connection: read: %s",
                                    g_strerror(errsv));
                        return NULL;
                }
                if (n <= 0 && deb_frame_decoder_get_buffered(conn->decoder) > 0) {
                        /* The broker must never cut a frame it sent in half. */
                        g_set_error(error, DEB_ERROR, DEB_ERROR_MALFORMED,
                                    "raw connection: closed by the broker in the middle of a frame "
                                    "(%zu bytes buffered)",
                                    deb_frame_decoder_get_buffered(conn->decoder));
                        return NULL;
                }
                if (n <= 0) {
                        g_set_error(error, DEB_ERROR, DEB_ERROR_CLOSED,
                                    "raw connection: closed by the broker");
                        return NULL;
                }
                deb_frame_decoder_commit(conn->decoder, (gsize)n);
        }
}

/* Fails with a description of @env when it is not of @type; decodes an Error for the message. */
static gboolean check_type(RawConn *conn, const DebEnvelope *env, int type, GError **error)
{
        if ((int)env->message_type == type)
                return TRUE;
        if ((int)env->message_type == RAW_MT(ERROR)) {
                const Daemoneye__Eventbus__Error *e =
                        (const Daemoneye__Eventbus__Error *)deb_unpacker_message(
                                conn->unpacker, &daemoneye__eventbus__error__descriptor, env->payload.data,
                                env->payload.len, NULL);
                g_set_error(error, DEB_ERROR, DEB_ERROR_REFUSED, "expected %s, got Error %s%s: %s",
                            deb_message_type_to_string(type), e ? raw_error_code_to_string(e->code) : "?",
                            e && e->fatal ? " (fatal)" : "", e ? e->message : "(undecodable payload)");
                return FALSE;
        }
        g_set_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL, "expected %s, got %s on topic '%s'",
                    deb_message_type_to_string(type), deb_message_type_to_string(env->message_type),
                    env->topic);
        return FALSE;
}

gboolean raw_conn_handshake(RawConn *conn, const char *client_id, guint timeout_ms, GError **error)
{
        const DebEnvelope *env;

        if (!raw_conn_send_hello(conn, client_id, error))
                return FALSE;
        env = raw_conn_read(conn, timeout_ms, error);
        return env && check_type(conn, env, RAW_MT(WELCOME), error);
}

gboolean raw_conn_expect_ack(RawConn *conn, const char *correlation_id, guint timeout_ms, GError **error)
{
        const DebEnvelope *env = raw_conn_read(conn, timeout_ms, error);
        const char *got;

        if (!env || !check_type(conn, env, RAW_MT(ACK), error))
                return FALSE;
        got = env->correlation ? env->correlation->correlation_id : "";
        if (correlation_id && g_strcmp0(got, correlation_id) != 0) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL, "Ack for correlation '%s', expected '%s'",
                            got, correlation_id);
                return FALSE;
        }
        return TRUE;
}

gboolean raw_conn_expect_error(RawConn *conn, guint timeout_ms, RawError *out, GError **error)
{
        const DebEnvelope *env = raw_conn_read(conn, timeout_ms, error);
        const Daemoneye__Eventbus__Error *e;

        if (!env)
                return FALSE;
        if ((int)env->message_type != RAW_MT(ERROR)) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL, "expected an Error, got %s on topic '%s'",
                            deb_message_type_to_string(env->message_type), env->topic);
                return FALSE;
        }
        e = (const Daemoneye__Eventbus__Error *)deb_unpacker_message(
                conn->unpacker, &daemoneye__eventbus__error__descriptor, env->payload.data, env->payload.len,
                error);
        if (!e)
                return FALSE;

        raw_error_clear(out);
        out->code = e->code;
        out->fatal = e->fatal;
        out->message = g_strdup(e->message);
        out->correlation_id = g_strdup(env->correlation ? env->correlation->correlation_id : "");
        return TRUE;
}

gboolean raw_conn_expect_eof(RawConn *conn, guint timeout_ms, GError **error)
{
        g_autoptr(GError) local = NULL;
        const DebEnvelope *env = raw_conn_read(conn, timeout_ms, &local);

        if (env) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL, "expected EOF, got %s on topic '%s'",
                            deb_message_type_to_string(env->message_type), env->topic);
                return FALSE;
        }
        if (g_error_matches(local, DEB_ERROR, DEB_ERROR_CLOSED))
                return TRUE;
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "expected EOF: ");
        return FALSE;
}
