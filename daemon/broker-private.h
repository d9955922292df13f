/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * What broker.c (listener, routing, limits) and broker-connection.c (one
 * client) share. Nothing outside the broker includes this.
 */
#include <glib.h>
#include <sys/types.h>

#include "broker-metrics.h"
#include "broker-socket.h"
#include "broker.h"
#include "config.h"
#include "deb-frame.h"
#include "deb-topic.h"
#include "deb-topic-trie.h"
#include "subscriber-queue.h"

typedef struct _BrokerConnection BrokerConnection;
typedef struct _BrokerRpc BrokerRpc;

/* The broker's own frames (Welcome, Ack, Error, its RPC answers) name this sender. */
#define BROKER_SENDER_ID "daemoneye-agent"

typedef enum {
        CONNECTION_HANDSHAKE, /* accepted, waiting for Hello */
        CONNECTION_OPEN,      /* Welcome sent */
        CONNECTION_CLOSING,   /* input ignored, flushing its last frames (a fatal Error) */
        CONNECTION_CLOSED,    /* fd closed, freed at the end of the current dispatch */
} ConnectionState;

struct _Broker {
        BrokerConfig config; /* own copy; socket_path owned */
        BrokerMetrics *metrics;
        DebTopicTrie *trie; /* pattern → BrokerConnection* */
        DebUnpacker *unpacker;
        BrokerSocket socket;

        int epoll_fd;
        GSource *io_source;    /* polls epoll_fd on the GLib loop */
        GSource *timer_source; /* the earliest connection deadline */
        GSource *accept_pause; /* accepting paused after EMFILE/ENFILE */
        GSource *housekeeping; /* gives idle buffers back */
        gboolean accepting;

        GQueue connections; /* of BrokerConnection, linked through ->link; CLOSED ones leave it */
        guint n_open;       /* connections holding an fd (HANDSHAKE, OPEN, CLOSING) */
        guint64 next_session;
        guint64 generation; /* one per routed publish, see BrokerConnection.generation */

        GPtrArray *matched; /* scratch: connections matched by the current publish */
        GPtrArray *dirty;   /* connections whose queue got data during this dispatch */
        GPtrArray *dead;    /* CLOSED connections, freed at the end of the dispatch */

        BrokerShutdownFunc shutdown_func;
        gpointer shutdown_data;
        gint64 shutdown_deadline;
        GSource *shutdown_source;
        gboolean shutting_down;  /* no more input from anyone */
        gboolean freeing;        /* broker_free(): closed callbacks of adopted connections stay quiet */
        gboolean in_io_dispatch; /* broker_io_dispatch() is running: a nested iteration does nothing */

        BrokerRpc *rpc; /* RPC routing: requests awaiting replies (broker-rpc.c) */
};

struct _BrokerConnection {
        Broker *broker;
        GList link;
        int fd;
        ConnectionState state;
        guint32 epoll_events; /* what epoll watches now */

        guint64 session; /* unique per broker, > 0; session_id is its text */
        char session_id[24];
        char *client_id; /* from Hello; NULL before */
        pid_t pid;       /* SO_PEERCRED, -1 if unknown */
        uid_t uid;
        gid_t gid;

        DebFrameDecoder *decoder; /* NULL while idle: created on the first read */
        gsize max_frame_bytes;    /* fixed at accept: it is what Welcome announced */
        SubscriberQueue queue;
        GHashTable *patterns; /* char* → itself; NULL until the first Subscribe */

        /* Equal to Broker.generation when this connection was already matched by the publish being routed.
         */
        guint64 generation;
        gint64 deadline_us; /* handshake or closing deadline; 0 for none */
        gboolean dirty;
        gboolean read_since_housekeeping;
        gboolean drop_logged;
        int close_errno; /* why the connection ended; logged at debug level on free */

        /* Publishers tend to repeat a topic: the last one validated, and its counters. */
        char last_topic[DEB_TOPIC_MAX_LEN + 1];
        BrokerTopicStats *last_stats;
        guint last_metrics_epoch;

        /* broker_adopt_fd(): a Hello must give this client id; NULL for accepted connections. */
        char *expected_client_id;
        char *stream_pattern;         /* a D-Bus event stream: subscribed to this at its Hello, read-only */
        BrokerClosedFunc closed_func; /* runs once, at the end of the dispatch that closed it */
        gpointer closed_data;
        GDestroyNotify closed_destroy;

        /* RPC (broker-rpc.c): requests of this connection awaiting replies, and requests it must answer. */
        GQueue rpc_requests; /* of BrokerRpcRecord, linked through their own GList */
        GQueue rpc_serving;  /* of the records' target entries naming this connection */

        guint64 frames_in;
        guint64 published;
        guint64 delivered;
        guint64 dropped;
        gint64 connected_us;
};

/* broker.c */
void broker_connection_set_events(BrokerConnection *c, guint32 events);
void broker_deliver(Broker *broker, BrokerConnection *sender, const DebEnvelope *env, const DebFrame *frame,
                    gint64 ingress_us, BrokerTopicStats *stats);
void broker_schedule_deadline(Broker *broker, gint64 deadline_us);
void broker_mark_dirty(Broker *broker, BrokerConnection *c);
void broker_route_publish(Broker *broker, BrokerConnection *sender, const DebEnvelope *env,
                          const DebFrame *frame, gint64 ingress_us, BrokerTopicStats *stats);
void broker_connection_detach(Broker *broker, BrokerConnection *c);

/* broker-connection.c */
void broker_connection_log(BrokerConnection *c, GLogLevelFlags level, const char *fmt, ...)
        G_GNUC_PRINTF(3, 4);
void broker_connection_enter_closing(BrokerConnection *c, gboolean drop_data);
void broker_connection_finish_closing(BrokerConnection *c);
BrokerConnection *broker_connection_new(Broker *broker, int fd, guint64 session);
void broker_connection_free(BrokerConnection *c);
void broker_connection_handle_io(BrokerConnection *c, guint32 events, gint64 now_us);
void broker_connection_deadline(BrokerConnection *c, gint64 now_us);
void broker_connection_close(BrokerConnection *c, int err);
void broker_connection_stop_reading(BrokerConnection *c);
void broker_connection_housekeeping(BrokerConnection *c);
const char *broker_connection_get_client_id(const BrokerConnection *c);
const char *envelope_correlation_id(const DebEnvelope *env);
ProtobufCMessage *broker_connection_decode_payload(BrokerConnection *c, const DebEnvelope *env,
                                                   const ProtobufCMessageDescriptor *desc);

/* broker-output.c */
extern const SubscriberQueueHooks broker_connection_queue_hooks;
void broker_connection_flush(BrokerConnection *c);
void broker_connection_send_control(BrokerConnection *c, int message_type, const ProtobufCMessage *payload,
                                    const char *correlation_id);
void broker_connection_enqueue(BrokerConnection *c, Message *message);
void broker_connection_send_error(BrokerConnection *c, int code, const char *correlation_id, gboolean fatal,
                                  const char *fmt, ...) G_GNUC_PRINTF(5, 6);
void broker_connection_send_ack(BrokerConnection *c, char **patterns, gsize n_patterns,
                                const char *correlation_id);
GVariant *broker_connection_to_variant(const BrokerConnection *c);

/* broker-subscriptions.c */
void broker_connection_handle_subscribe(BrokerConnection *c, const DebEnvelope *env);
void broker_connection_handle_unsubscribe(BrokerConnection *c, const DebEnvelope *env);
void broker_connection_remove_subscriptions(BrokerConnection *c);
void broker_connection_subscribe_stream(BrokerConnection *c);
gboolean broker_topic_is_rpc_response(const char *topic);

/* broker-rpc.c */
BrokerRpc *broker_rpc_new(Broker *broker);
void broker_rpc_free(BrokerRpc *rpc);
void broker_rpc_apply_config(BrokerRpc *rpc, const RpcConfig *config);
void broker_rpc_route_request(Broker *broker, BrokerConnection *sender, const DebEnvelope *env,
                              const DebFrame *frame, gint64 ingress_us, BrokerTopicStats *stats);
void broker_rpc_route_response(Broker *broker, BrokerConnection *sender, const DebEnvelope *env,
                               const DebFrame *frame, gint64 ingress_us, BrokerTopicStats *stats);
void broker_rpc_connection_closed(BrokerConnection *c);
void broker_rpc_add_metrics(BrokerRpc *rpc, GVariantBuilder *builder);
