/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The output side of a connection: queueing routed messages per the drop
 * policy, the broker's own frames (Welcome, Ack, Error) on the control lane,
 * flushing, and the per-message accounting (drops, deliveries, latency).
 */
#include <errno.h>
#include <sys/epoll.h>

#include "broker-private.h"

/* Writes per flush; more waits for the next EPOLLOUT so others get their turn. */
#define FLUSH_MAX_WRITES 16
#define BROKER_SENDER "daemoneye-agent"

#define ERROR_CODE(name) DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_##name
#define MESSAGE_TYPE(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name

static void connection_dropped(Message *message, gpointer user_data);
static void connection_written(Message *message, gint64 now_us, gpointer user_data);

const SubscriberQueueHooks broker_connection_queue_hooks = {
        .dropped = connection_dropped,
        .written = connection_written,
};

/** broker_connection_send_control: queues one of the broker's own frames on the control lane. */
void broker_connection_send_control(BrokerConnection *c, int message_type, const ProtobufCMessage *payload,
                                    const char *correlation_id)
{
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        g_autofree guint8 *buf = g_malloc(protobuf_c_message_get_packed_size(payload) + 1);
        g_autoptr(Message) message = NULL;
        const BrokerConfig *config = &c->broker->config;

        env.message_type = message_type;
        env.payload_type = (char *)payload->descriptor->name;
        env.payload.len = protobuf_c_message_pack(payload, buf);
        env.payload.data = buf;
        env.timestamp_us = (guint64)g_get_real_time();
        env.sender = (char *)BROKER_SENDER;
        if (correlation_id) {
                correlation.correlation_id = (char *)correlation_id;
                env.correlation = &correlation;
        }
        message = message_new_envelope(&env);
        if (subscriber_queue_push(&c->queue, message, config->message_buffer_size, config->drop_policy) !=
            SUBSCRIBER_QUEUE_PUSHED) {
                /* Even our replies do not fit: the peer is not reading at all. */
                broker_connection_log(c, G_LOG_LEVEL_WARNING,
                                      "closing: control lane full, the client is not reading");
                broker_connection_close(c, 0);
                return;
        }
        broker_mark_dirty(c->broker, c);
}

/**
 * broker_connection_send_error:
 * @correlation_id: (nullable) of the request that failed
 * @fatal: close after this frame; the reason is logged once, naming the client
 *
 * Queues an Error frame for @c.
 */
void broker_connection_send_error(BrokerConnection *c, int code, const char *correlation_id, gboolean fatal,
                                  const char *fmt, ...)
{
        Daemoneye__Eventbus__Error err = DAEMONEYE__EVENTBUS__ERROR__INIT;
        g_autofree char *text = NULL;
        va_list ap;

        if (c->state == CONNECTION_CLOSING || c->state == CONNECTION_CLOSED)
                return;

        va_start(ap, fmt);
        text = g_strdup_vprintf(fmt, ap);
        va_end(ap);

        err.code = code;
        err.message = text;
        err.fatal = fatal;
        broker_connection_send_control(c, MESSAGE_TYPE(ERROR), &err.base, correlation_id);
        if (!fatal || c->state == CONNECTION_CLOSED)
                return;

        if (code != ERROR_CODE(SHUTTING_DOWN)) {
                c->broker->metrics->protocol_errors++;
                broker_connection_log(c, G_LOG_LEVEL_WARNING, "closing: %s", text);
        }
        broker_connection_enter_closing(c, TRUE);
}

/** broker_connection_send_ack: acknowledges a Subscribe/Unsubscribe with its patterns and correlation id. */
void broker_connection_send_ack(BrokerConnection *c, char **patterns, gsize n_patterns,
                                const char *correlation_id)
{
        Daemoneye__Eventbus__Ack ack = DAEMONEYE__EVENTBUS__ACK__INIT;

        ack.patterns = patterns;
        ack.n_patterns = n_patterns;
        broker_connection_send_control(c, MESSAGE_TYPE(ACK), &ack.base, correlation_id);
}

/** broker_connection_flush: writes what is queued; watches EPOLLOUT only while something is left. */
void broker_connection_flush(BrokerConnection *c)
{
        gint64 now = g_get_monotonic_time();
        guint32 events;
        gssize n = 0;

        for (int i = 0; i < FLUSH_MAX_WRITES; i++) {
                n = subscriber_queue_write(&c->queue, c->fd, now);
                if (n <= 0)
                        break;
        }
        if (n < 0 && n != -EAGAIN) {
                /* The peer went away: nothing to report to it. */
                if (n != -EPIPE && n != -ECONNRESET)
                        broker_connection_log(c, G_LOG_LEVEL_WARNING, "write: %s", g_strerror((int)-n));
                broker_connection_close(c, (int)-n);
                return;
        }
        if (c->state == CONNECTION_CLOSING && subscriber_queue_is_empty(&c->queue)) {
                broker_connection_finish_closing(c);
                return;
        }

        events = subscriber_queue_is_empty(&c->queue) ? 0 : EPOLLOUT;
        if (c->state != CONNECTION_CLOSING && !c->broker->shutting_down)
                events |= EPOLLIN;
        broker_connection_set_events(c, events);
}

/** broker_connection_enqueue: queues @message for @c per the drop policy. */
void broker_connection_enqueue(BrokerConnection *c, Message *message)
{
        const BrokerConfig *config = &c->broker->config;
        BrokerMetrics *metrics = c->broker->metrics;

        if (c->state != CONNECTION_OPEN)
                return;
        switch (subscriber_queue_push(&c->queue, message, config->message_buffer_size,
                                      config->drop_policy)) {
        case SUBSCRIBER_QUEUE_PUSHED:
                metrics->queue_high_water = MAX(metrics->queue_high_water, c->queue.high_water);
                broker_mark_dirty(c->broker, c);
                break;
        case SUBSCRIBER_QUEUE_DROPPED:
                break;
        case SUBSCRIBER_QUEUE_FULL:
                if (message->lane == MESSAGE_LANE_DATA) {
                        connection_dropped(message, c);
                        broker_connection_send_error(
                                c, ERROR_CODE(QUEUE_FULL), NULL, TRUE,
                                "subscriber queue full (%u messages, message_buffer_size); "
                                "disconnecting per drop_policy=disconnect",
                                config->message_buffer_size);
                } else {
                        broker_connection_send_error(
                                c, ERROR_CODE(PROTOCOL), NULL, TRUE,
                                "control lane full (%u messages): the client is not "
                                "reading; heartbeats and RPC are never dropped",
                                subscriber_queue_get_length(&c->queue, MESSAGE_LANE_CONTROL));
                }
                break;
        }
}

static void connection_dropped(Message *message, gpointer user_data)
{
        BrokerConnection *c = user_data;
        BrokerMetrics *metrics = c->broker->metrics;

        c->dropped++;
        metrics->total.dropped++;
        if (message->stats)
                message->stats->dropped++;
        if (!c->drop_logged) {
                c->drop_logged = TRUE;
                broker_connection_log(
                        c, G_LOG_LEVEL_INFO,
                        "queue full (%u messages), dropping per drop_policy=%s; further drops are only "
                        "counted",
                        c->broker->config.message_buffer_size,
                        drop_policy_to_string(c->broker->config.drop_policy));
        }
}

static void connection_written(Message *message, gint64 now_us, gpointer user_data)
{
        BrokerConnection *c = user_data;
        BrokerMetrics *metrics = c->broker->metrics;

        /* The broker's own frames have no ingress time and are not deliveries. */
        if (message->ingress_us == 0)
                return;
        c->delivered++;
        metrics->total.delivered++;
        if (message->stats)
                message->stats->delivered++;
        if (metrics->enabled)
                latency_histogram_add(&metrics->latency, (guint64)MAX(now_us - message->ingress_us, 0));
}
