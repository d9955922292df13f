/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One client connection: read, decode, handshake, dispatch (its output side
 * is broker-output.c). Input is read straight into the frame decoder, at most READ_CHUNK
 * bytes per wakeup, and every frame is decoded once with the broker's shared
 * unpacker (no allocation per frame once the arena has grown).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker-private.h"

#define READ_CHUNK (64u * 1024u)
/* How long a connection closed for an error may take to get its Error frame out. */
#define CLOSING_LINGER_US (1 * G_USEC_PER_SEC)
#define CLIENT_ID_MAX_LEN 255

#define ERROR_CODE(name) DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_##name
#define MESSAGE_TYPE(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name

/** broker_connection_get_client_id: Returns: the Hello client_id, or a placeholder before it. */
const char *broker_connection_get_client_id(const BrokerConnection *c)
{
        if (!c->client_id)
                return "(before Hello)";
        return c->client_id[0] ? c->client_id : "(anonymous)";
}

/** broker_connection_log: one structured line naming the client; for events, never per message. */
void broker_connection_log(BrokerConnection *c, GLogLevelFlags level, const char *fmt, ...)
{
        g_autofree char *text = NULL;
        char pid[16];
        va_list ap;

        va_start(ap, fmt);
        text = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_snprintf(pid, sizeof(pid), "%d", (int)c->pid);
        g_log_structured(G_LOG_DOMAIN, level, "SESSION_ID", c->session_id, "CLIENT_ID",
                         broker_connection_get_client_id(c), "CLIENT_PID", pid, "MESSAGE",
                         "client %s (session %s, pid %s): %s", broker_connection_get_client_id(c),
                         c->session_id, pid, text);
}

/** broker_connection_new: Returns: (transfer full) a connection in HANDSHAKE state owning @fd. */
BrokerConnection *broker_connection_new(Broker *broker, int fd, guint64 session)
{
        BrokerConnection *c = g_new0(BrokerConnection, 1);
        struct ucred cred;
        socklen_t len = sizeof(cred);

        c->broker = broker;
        c->link.data = c;
        c->fd = fd;
        c->state = CONNECTION_HANDSHAKE;
        c->max_frame_bytes = broker->config.max_frame_bytes;
        c->connected_us = g_get_monotonic_time();
        c->session = session;
        g_snprintf(c->session_id, sizeof(c->session_id), "s%" G_GUINT64_FORMAT, session);
        g_queue_init(&c->rpc_requests);
        g_queue_init(&c->rpc_serving);
        c->pid = -1;
        c->uid = (uid_t)-1;
        c->gid = (gid_t)-1;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
                c->pid = cred.pid;
                c->uid = cred.uid;
                c->gid = cred.gid;
        }
        subscriber_queue_init(&c->queue, &broker_connection_queue_hooks, c);
        return c;
}

/** broker_connection_free: frees a connection that is closed (or never registered). */
void broker_connection_free(BrokerConnection *c)
{
        if (!c)
                return;
        if (c->fd >= 0)
                close(c->fd);
        if (c->client_id)
                broker_connection_log(c, G_LOG_LEVEL_DEBUG,
                                      "disconnected (%s); published %" G_GUINT64_FORMAT
                                      ", delivered %" G_GUINT64_FORMAT ", dropped %" G_GUINT64_FORMAT,
                                      c->close_errno ? g_strerror(c->close_errno) : "closed", c->published,
                                      c->delivered, c->dropped);
        subscriber_queue_clear(&c->queue);
        g_clear_pointer(&c->decoder, deb_frame_decoder_free);
        g_assert(c->patterns == NULL);
        g_assert(g_queue_is_empty(&c->rpc_requests) && g_queue_is_empty(&c->rpc_serving));
        if (c->closed_destroy)
                c->closed_destroy(c->closed_data);
        g_free(c->expected_client_id);
        g_free(c->stream_pattern);
        g_free(c->client_id);
        g_free(c);
}

/**
 * broker_connection_close:
 * @err: why (an errno, or 0), for the debug log
 *
 * Closes at once: no more input or output. Subscriptions go now so routing
 * never sees @c again; the memory goes at the end of the dispatch.
 */
void broker_connection_close(BrokerConnection *c, int err)
{
        Broker *broker = c->broker;

        if (c->state == CONNECTION_CLOSED)
                return;
        broker_connection_remove_subscriptions(c);
        epoll_ctl(broker->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        c->state = CONNECTION_CLOSED;
        c->close_errno = err;
        c->deadline_us = 0;
        broker_connection_detach(broker, c);
        /* Its requests are forgotten; requesters waiting on it hear it is gone. */
        broker_rpc_connection_closed(c);
}

/* Discards what the peer sent and we will never read, so it sees EOF after our last frame, not a reset. */
static void connection_discard_input(BrokerConnection *c)
{
        guint8 buf[4096];

        for (int i = 0; i < 16 && recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
                ;
}

/** broker_connection_finish_closing: output is done for a CLOSING connection: close it. */
void broker_connection_finish_closing(BrokerConnection *c)
{
        shutdown(c->fd, SHUT_WR);
        connection_discard_input(c);
        broker_connection_close(c, 0);
}

/** broker_connection_stop_reading: no more input from @c (shutdown); its queue still drains. */
void broker_connection_stop_reading(BrokerConnection *c)
{
        if (c->state == CONNECTION_CLOSED)
                return;
        /* HUP/ERR are always reported, so a peer that goes away is still noticed. */
        broker_connection_set_events(c, subscriber_queue_is_empty(&c->queue) ? 0 : EPOLLOUT);
        if (c->state == CONNECTION_HANDSHAKE)
                c->deadline_us = 0;
        broker_mark_dirty(c->broker, c);
}

/**
 * broker_connection_enter_closing:
 * @drop_data: after a fatal Error nothing more is owed to the client; after
 *   its EOF, what is queued still goes out
 *
 * Stops input and routing to @c, flushes (for at most CLOSING_LINGER_US), then closes.
 */
void broker_connection_enter_closing(BrokerConnection *c, gboolean drop_data)
{
        broker_connection_remove_subscriptions(c);
        /* A partly written frame is finished either way. */
        if (drop_data)
                subscriber_queue_drop_data(&c->queue);
        c->state = CONNECTION_CLOSING;
        c->deadline_us = g_get_monotonic_time() + CLOSING_LINGER_US;
        broker_schedule_deadline(c->broker, c->deadline_us);
        broker_connection_set_events(c, EPOLLOUT);
        broker_mark_dirty(c->broker, c);
}

/** envelope_correlation_id: Returns: the correlation id of @env, or %NULL when it has none. */
const char *envelope_correlation_id(const DebEnvelope *env)
{
        if (env->correlation && env->correlation->correlation_id && env->correlation->correlation_id[0])
                return env->correlation->correlation_id;
        return NULL;
}

/* Control payloads must say what they are, or nothing (raw); anything else is a confused client. */
static gboolean payload_type_matches(const DebEnvelope *env, const ProtobufCMessageDescriptor *desc)
{
        return !env->payload_type || !env->payload_type[0] || g_str_equal(env->payload_type, desc->name);
}

/** broker_connection_decode_payload: Returns: (transfer none) the payload, or %NULL after a fatal Error. */
ProtobufCMessage *broker_connection_decode_payload(BrokerConnection *c, const DebEnvelope *env,
                                                   const ProtobufCMessageDescriptor *desc)
{
        g_autoptr(GError) error = NULL;
        ProtobufCMessage *m;

        if (!payload_type_matches(env, desc)) {
                broker_connection_send_error(c, ERROR_CODE(PROTOCOL), envelope_correlation_id(env), TRUE,
                                             "frame %" G_GUINT64_FORMAT
                                             ": %s with payload_type '%s', expected '%s'",
                                             c->frames_in, deb_message_type_to_string(env->message_type),
                                             env->payload_type, desc->name);
                return NULL;
        }
        m = deb_unpacker_message(c->broker->unpacker, desc, env->payload.data, env->payload.len, &error);
        if (!m)
                broker_connection_send_error(c, ERROR_CODE(MALFORMED), envelope_correlation_id(env), TRUE,
                                             "frame %" G_GUINT64_FORMAT ": %s payload: %s", c->frames_in,
                                             desc->name, error->message);
        return m;
}

static gboolean client_id_is_printable(const char *id)
{
        if (strlen(id) > CLIENT_ID_MAX_LEN || !g_utf8_validate(id, -1, NULL))
                return FALSE;
        for (const char *p = id; *p; p = g_utf8_next_char(p))
                if (g_unichar_iscntrl(g_utf8_get_char(p)))
                        return FALSE;
        return TRUE;
}

static void connection_handle_hello(BrokerConnection *c, const DebEnvelope *env)
{
        Daemoneye__Eventbus__Welcome welcome = DAEMONEYE__EVENTBUS__WELCOME__INIT;
        Daemoneye__Eventbus__Hello *hello;
        const char *correlation_id = envelope_correlation_id(env);

        if (env->message_type != MESSAGE_TYPE(HELLO)) {
                broker_connection_send_error(c, ERROR_CODE(PROTOCOL), correlation_id, TRUE,
                                             "expected Hello as the first frame, got %s",
                                             deb_message_type_to_string(env->message_type));
                return;
        }
        hello = (Daemoneye__Eventbus__Hello *)broker_connection_decode_payload(
                c, env, &daemoneye__eventbus__hello__descriptor);
        if (!hello)
                return;
        if (hello->protocol_version != DEB_PROTOCOL_VERSION) {
                broker_connection_send_error(
                        c, ERROR_CODE(VERSION), correlation_id, TRUE,
                        "Hello: protocol version %u is not supported (this broker speaks %u)",
                        hello->protocol_version, DEB_PROTOCOL_VERSION);
                return;
        }
        /* It ends up in logs, metrics and the sender check: keep it printable and short. */
        if (!client_id_is_printable(hello->client_id)) {
                broker_connection_send_error(c, ERROR_CODE(PROTOCOL), correlation_id, TRUE,
                                             "Hello: client_id must be printable UTF-8 of at most %d bytes",
                                             CLIENT_ID_MAX_LEN);
                return;
        }
        /* An adopted connection was opened to one peer: it may not pose as another. */
        if (c->expected_client_id && g_strcmp0(hello->client_id, c->expected_client_id) != 0) {
                broker_connection_send_error(c, ERROR_CODE(PERMISSION_DENIED), correlation_id, TRUE,
                                             "Hello: client_id '%s' is refused on this connection: it was "
                                             "opened to '%s'",
                                             hello->client_id, c->expected_client_id);
                return;
        }

        c->client_id = g_strdup(hello->client_id);
        c->state = CONNECTION_OPEN;
        c->deadline_us = 0;

        welcome.broker_version = (char *)DAEMONEYE_VERSION;
        welcome.protocol_version = DEB_PROTOCOL_VERSION;
        welcome.max_frame_bytes = c->max_frame_bytes;
        welcome.max_subscriptions = c->broker->config.max_subscriptions_per_connection;
        welcome.session_id = c->session_id;
        broker_connection_send_control(c, MESSAGE_TYPE(WELCOME), &welcome.base, correlation_id);
        broker_connection_log(c, G_LOG_LEVEL_DEBUG, "connected (uid %u)", (guint)c->uid);
        if (c->stream_pattern)
                broker_connection_subscribe_stream(c);
}

static void connection_handle_publish(BrokerConnection *c, const DebEnvelope *env, const DebFrame *frame,
                                      gint64 ingress_us)
{
        g_autoptr(GError) error = NULL;
        BrokerMetrics *metrics = c->broker->metrics;

        if (c->last_topic[0] == '\0' || c->last_metrics_epoch != metrics->epoch ||
            strcmp(env->topic, c->last_topic) != 0) {
                if (!deb_topic_validate(env->topic, &error)) {
                        broker_connection_send_error(c, ERROR_CODE(INVALID_TOPIC),
                                                     envelope_correlation_id(env), FALSE, "publish: %s",
                                                     error->message);
                        return;
                }
                /* Valid, so it fits; the prefix table never drops entries, so the pointer stays good. */
                g_strlcpy(c->last_topic, env->topic, sizeof(c->last_topic));
                /* One prefix for every reply: "response.<id>" would take a table entry per request. */
                c->last_stats = broker_metrics_topic(
                        metrics, broker_topic_is_rpc_response(env->topic) ? "response" : env->topic);
                c->last_metrics_epoch = metrics->epoch;
        }
        /*
         * Subscribers get the publisher's bytes unchanged (no re-encode), so
         * the broker cannot stamp the sender: it verifies it instead. An empty
         * sender is allowed and means "not stated".
         */
        if (env->sender && env->sender[0] && g_strcmp0(env->sender, c->client_id) != 0) {
                broker_connection_send_error(
                        c, ERROR_CODE(PERMISSION_DENIED), envelope_correlation_id(env), FALSE,
                        "publish to '%s': sender '%s' is not this connection's client id "
                        "'%s'; message dropped",
                        env->topic, env->sender, c->client_id);
                return;
        }
        broker_route_publish(c->broker, c, env, frame, ingress_us, c->last_stats);
}

static void connection_handle_frame(BrokerConnection *c, const DebFrame *frame, gint64 ingress_us)
{
        g_autoptr(GError) error = NULL;
        const DebEnvelope *env;

        c->frames_in++;
        env = deb_unpacker_envelope(c->broker->unpacker, frame->body, frame->body_len, &error);
        if (!env) {
                broker_connection_send_error(c, ERROR_CODE(MALFORMED), NULL, TRUE,
                                             "frame %" G_GUINT64_FORMAT ": %s", c->frames_in,
                                             error->message);
                return;
        }
        if (c->state == CONNECTION_HANDSHAKE) {
                connection_handle_hello(c, env);
                return;
        }

        switch (env->message_type) {
        case MESSAGE_TYPE(EVENT):
        case MESSAGE_TYPE(CONTROL):
        case MESSAGE_TYPE(HEARTBEAT):
        case MESSAGE_TYPE(RPC_REQUEST):
        case MESSAGE_TYPE(RPC_RESPONSE):
                if (c->stream_pattern) {
                        broker_connection_send_error(c, ERROR_CODE(PERMISSION_DENIED),
                                                     envelope_correlation_id(env), FALSE,
                                                     "publish to '%s': an event stream from "
                                                     "OpenEventStream is read-only; message dropped",
                                                     env->topic);
                        break;
                }
                connection_handle_publish(c, env, frame, ingress_us);
                break;
        case MESSAGE_TYPE(SUBSCRIBE):
                broker_connection_handle_subscribe(c, env);
                break;
        case MESSAGE_TYPE(UNSUBSCRIBE):
                broker_connection_handle_unsubscribe(c, env);
                break;
        case MESSAGE_TYPE(HELLO):
                broker_connection_send_error(
                        c, ERROR_CODE(PROTOCOL), envelope_correlation_id(env), TRUE,
                        "frame %" G_GUINT64_FORMAT ": a second Hello (the handshake is done)", c->frames_in);
                break;
        default:
                broker_connection_send_error(c, ERROR_CODE(PROTOCOL), envelope_correlation_id(env), TRUE,
                                             "frame %" G_GUINT64_FORMAT
                                             ": message type %s is not accepted from "
                                             "clients",
                                             c->frames_in, deb_message_type_to_string(env->message_type));
                break;
        }
}

/* The peer closed its side: send what is queued, then close. */
static void connection_end_of_input(BrokerConnection *c)
{
        if (c->decoder && deb_frame_decoder_get_buffered(c->decoder) > 0)
                broker_connection_log(c, G_LOG_LEVEL_DEBUG,
                                      "closed the connection in the middle of a frame");
        if (subscriber_queue_is_empty(&c->queue) || c->state == CONNECTION_HANDSHAKE) {
                broker_connection_close(c, 0);
                return;
        }
        broker_connection_enter_closing(c, FALSE);
}

static void connection_read(BrokerConnection *c, gint64 ingress_us)
{
        g_autoptr(GError) error = NULL;
        DebFrame frame;
        guint8 *space;
        gsize avail;
        ssize_t n;
        int r;

        if (!c->decoder)
                c->decoder = deb_frame_decoder_new(c->max_frame_bytes);
        space = deb_frame_decoder_get_space(c->decoder, READ_CHUNK, &avail);
        n = recv(c->fd, space, MIN(avail, READ_CHUNK), MSG_DONTWAIT);
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return;
                if (errno != ECONNRESET)
                        broker_connection_log(c, G_LOG_LEVEL_WARNING, "read: %s", g_strerror(errno));
                broker_connection_close(c, errno);
                return;
        }
        if (n == 0) {
                connection_end_of_input(c);
                return;
        }
        deb_frame_decoder_commit(c->decoder, (gsize)n);
        c->read_since_housekeeping = TRUE;

        while (c->state == CONNECTION_OPEN || c->state == CONNECTION_HANDSHAKE) {
                r = deb_frame_decoder_next(c->decoder, &frame, &error);
                if (r == 0)
                        break;
                if (r < 0) {
                        broker_connection_send_error(c, ERROR_CODE(FRAME_TOO_LARGE), NULL, TRUE,
                                                     "frame %" G_GUINT64_FORMAT ": %s", c->frames_in + 1,
                                                     error->message);
                        break;
                }
                connection_handle_frame(c, &frame, ingress_us);
        }
}

/** broker_connection_handle_io: handles the epoll @events of @c. */
void broker_connection_handle_io(BrokerConnection *c, guint32 events, gint64 now_us)
{
        if (c->state == CONNECTION_CLOSED)
                return;
        if (events & EPOLLOUT)
                broker_connection_flush(c);
        if (c->state == CONNECTION_OPEN || c->state == CONNECTION_HANDSHAKE) {
                /* HUP/ERR: the read reports EOF or the error. */
                if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && (c->epoll_events & EPOLLIN))
                        connection_read(c, now_us);
                else if (events & (EPOLLHUP | EPOLLERR))
                        broker_connection_close(c, (events & EPOLLERR) ? EIO : 0);
        } else if (c->state == CONNECTION_CLOSING && (events & (EPOLLHUP | EPOLLERR))) {
                broker_connection_close(c, 0);
        }
}

/** broker_connection_deadline: the handshake or closing deadline of @c has passed. */
void broker_connection_deadline(BrokerConnection *c, gint64 now_us)
{
        switch (c->state) {
        case CONNECTION_HANDSHAKE:
                broker_connection_send_error(c, ERROR_CODE(HANDSHAKE_TIMEOUT), NULL, TRUE,
                                             "no Hello within %u s (startup_timeout_seconds)",
                                             c->broker->config.startup_timeout_seconds);
                break;
        case CONNECTION_CLOSING:
                broker_connection_log(c, G_LOG_LEVEL_DEBUG, "not reading its last frames; closing");
                broker_connection_close(c, ETIMEDOUT);
                break;
        default:
                c->deadline_us = 0;
                break;
        }
}

/** broker_connection_housekeeping: frees the read buffer and queue storage of an idle @c. */
void broker_connection_housekeeping(BrokerConnection *c)
{
        if (c->state != CONNECTION_OPEN)
                return;
        if (!c->read_since_housekeeping && c->decoder && deb_frame_decoder_get_buffered(c->decoder) == 0)
                g_clear_pointer(&c->decoder, deb_frame_decoder_free);
        c->read_since_housekeeping = FALSE;
        subscriber_queue_shrink(&c->queue);
}

static const char *connection_state_to_string(ConnectionState state)
{
        switch (state) {
        case CONNECTION_HANDSHAKE:
                return "handshake";
        case CONNECTION_OPEN:
                return "open";
        case CONNECTION_CLOSING:
                return "closing";
        case CONNECTION_CLOSED:
                return "closed";
        }
        return "unknown";
}

/** broker_connection_to_variant: Returns: (transfer floating) the a{sv} of @c in the metrics "clients" list.
 */
GVariant *broker_connection_to_variant(const BrokerConnection *c)
{
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "session_id", g_variant_new_string(c->session_id));
        g_variant_builder_add(&b, "{sv}", "client_id",
                              g_variant_new_string(c->client_id ? c->client_id : ""));
        g_variant_builder_add(&b, "{sv}", "pid", g_variant_new_int32(c->pid));
        g_variant_builder_add(&b, "{sv}", "uid", g_variant_new_uint32(c->uid));
        g_variant_builder_add(&b, "{sv}", "state",
                              g_variant_new_string(connection_state_to_string(c->state)));
        g_variant_builder_add(&b, "{sv}", "subscriptions",
                              g_variant_new_uint32(c->patterns ? g_hash_table_size(c->patterns) : 0));
        g_variant_builder_add(&b, "{sv}", "published", g_variant_new_uint64(c->published));
        g_variant_builder_add(&b, "{sv}", "delivered", g_variant_new_uint64(c->delivered));
        g_variant_builder_add(&b, "{sv}", "dropped", g_variant_new_uint64(c->dropped));
        g_variant_builder_add(
                &b, "{sv}", "queued",
                g_variant_new_uint32(subscriber_queue_get_length(&c->queue, MESSAGE_LANE_DATA) +
                                     subscriber_queue_get_length(&c->queue, MESSAGE_LANE_CONTROL)));
        g_variant_builder_add(&b, "{sv}", "queued_bytes", g_variant_new_uint64(c->queue.bytes));
        g_variant_builder_add(&b, "{sv}", "queue_high_water", g_variant_new_uint32(c->queue.high_water));
        g_variant_builder_add(
                &b, "{sv}", "connected_seconds",
                g_variant_new_uint64((guint64)(g_get_monotonic_time() - c->connected_us) / G_USEC_PER_SEC));
        return g_variant_builder_end(&b);
}
