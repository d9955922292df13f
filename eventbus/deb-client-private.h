/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Internals shared by deb-client.c (API, subscriptions, publishing, waiting)
 * and deb-client-io.c (socket, GSource, reading and writing frames).
 * Not installed.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include "deb-client.h"
#include "deb-topic-trie.h"

G_BEGIN_DECLS

#define DEB_CLIENT_READ_CHUNK (64u * 1024u)
/* Bytes read per dispatch, so one busy connection cannot starve the loop. */
#define DEB_CLIENT_READ_BUDGET (256u * 1024u)
/* Pending output above this is written at once rather than at the next poll. */
#define DEB_CLIENT_WRITE_EAGER (256u * 1024u)
/* After an eager write left output behind, the next waits for this much more. */
#define DEB_CLIENT_WRITE_EAGER_STEP (64u * 1024u)

#define DEB_PAYLOAD_TYPE_HELLO "daemoneye.eventbus.Hello"
#define DEB_PAYLOAD_TYPE_WELCOME "daemoneye.eventbus.Welcome"
#define DEB_PAYLOAD_TYPE_ERROR "daemoneye.eventbus.Error"
#define DEB_PAYLOAD_TYPE_SUBSCRIBE "daemoneye.eventbus.Subscribe"
#define DEB_PAYLOAD_TYPE_UNSUBSCRIBE "daemoneye.eventbus.Unsubscribe"
#define DEB_PAYLOAD_TYPE_ACK "daemoneye.eventbus.Ack"

typedef enum {
        DEB_CLIENT_IDLE,       /* never connected */
        DEB_CLIENT_CONNECTING, /* socket connect() not finished */
        DEB_CLIENT_HANDSHAKE,  /* Hello queued or sent, Welcome awaited */
        DEB_CLIENT_CONNECTED,  /* Welcome received */
        DEB_CLIENT_CLOSED,
} DebClientState;

typedef struct _DebPatternEntry DebPatternEntry;

typedef struct {
        guint id;
        /* Held by the client's table and by each delivery in flight. */
        guint ref_count;
        /* Set on unsubscribe; a delivery in flight skips it from then on. */
        gboolean removed;
        DebPatternEntry *entry;
        DebClientMessageFunc func;
        gpointer user_data;
        GDestroyNotify destroy;
} DebSubscription;

/*
 * One per distinct pattern: the broker is told about a pattern once, however
 * many local subscriptions share it, so unsubscribing one of them never
 * removes the broker's subscription under the others.
 */
struct _DebPatternEntry {
        char *pattern;
        GPtrArray *subscriptions; /* DebSubscription *, in subscription order */
        /* In the trie unless the broker refused it: its callbacks must then stay quiet. */
        gboolean in_trie;
        gboolean refused;
        /* Correlation id of the Subscribe awaiting its answer, or NULL. */
        char *subscribe_id;
};

typedef enum {
        DEB_REQUEST_SUBSCRIBE,
        DEB_REQUEST_UNSUBSCRIBE,
} DebRequestKind;

typedef struct {
        DebRequestKind kind;
        char *pattern;
} DebRequest;

struct _DebClient {
        gint ref_count;
        char *id;
        GMainContext *context;
        char **capabilities;

        DebClientState state;
        /* Bumped on every close, so a loop interrupted by a callback can tell. */
        guint generation;
        int fd;
        char *peer_name; /* socket path or "fd N", for error messages */
        struct sockaddr_un address;
        socklen_t address_len;
        /* connect() said EAGAIN (listen backlog full): retry it on a timer. */
        gboolean connect_retry;
        GSource *source;
        gpointer fd_tag;
        GIOCondition events;
        /* Input is being processed: a nested dispatch must not touch the decoder. */
        gboolean reading;
        /* A nested dispatch saw input and left it; G_IO_IN is off until reading ends. */
        gboolean input_deferred;
        guint dispatching;
        /* References held by dispatch and the wait helpers, not by the user. */
        guint holds;
        GError *close_error;

        gsize max_frame_bytes;    /* own limit */
        gsize broker_frame_bytes; /* Welcome's limit, 0 when unknown */
        DebFrameDecoder *decoder;
        DebUnpacker *unpacker;
        GPtrArray *deliveries; /* scratch: subscriptions matching the current message */

        GByteArray *out;
        gsize out_pos;  /* bytes of @out already written */
        gsize out_peak; /* largest @out since it was last emptied */
        /* A full socket must not cost a failed send() per publish: eager writes wait for this. */
        gsize eager_write_at;
        GByteArray *scratch;

        DebClientConnectFunc connect_func;
        gpointer connect_data;
        DebClientErrorFunc error_func;
        gpointer error_data;
        DebClientRpcHooks rpc_hooks; /* all NULL when unset */
        gpointer rpc_data;
        DebClientDrainFunc drain_func;
        gpointer drain_data;
        gsize low_watermark;
        gboolean above_watermark;

        GHashTable *subscriptions; /* id → DebSubscription */
        GHashTable *patterns;      /* pattern → DebPatternEntry */
        DebTopicTrie *trie;        /* pattern → DebPatternEntry */
        guint next_subscription_id;
        GHashTable *requests; /* correlation id → DebRequest, awaiting Ack or Error */
        /* deb_client_sync() calls waiting; a refused request goes to them. */
        guint sync_waiters;
        GError *request_error;

        guint64 sequence;
        DebClientStats stats;
        /* Correlation ids come from here: seeded from /dev/urandom, no global lock. */
        GRand *rand;
};

#define DEB_UUID_STRING_LEN 36

/* deb-client.c */
void deb_client_new_uuid(DebClient *client, char out[static DEB_UUID_STRING_LEN + 1]);
void deb_client_hold(DebClient *client);
void deb_client_release(DebClient *client);
gboolean deb_client_is_abandoned(DebClient *client);
void deb_client_subscription_unref(DebSubscription *subscription);
gsize deb_client_frame_limit(DebClient *client);
gboolean deb_client_queue_control(DebClient *client, int message_type, const char *payload_type,
                                  const ProtobufCMessage *message, const char *correlation_id,
                                  GError **error);
gboolean deb_client_queue_subscriptions(DebClient *client, GError **error);
void deb_client_forget_requests(DebClient *client);

/* deb-client-dispatch.c */
void deb_client_handle_envelope(DebClient *client, const DebEnvelope *envelope);
ProtobufCMessage *deb_client_unpack_payload(DebClient *client, const DebEnvelope *envelope,
                                            const ProtobufCMessageDescriptor *desc, GError **error);

/* deb-client-io.c */
gboolean deb_client_io_start(DebClient *client, int fd, gboolean pending, DebClientConnectFunc func,
                             gpointer user_data, GError **error);
void deb_client_io_update_events(DebClient *client);
void deb_client_io_write(DebClient *client, gboolean from_dispatch);
void deb_client_io_close(DebClient *client, GError *error);
void deb_client_io_abort(DebClient *client);
gboolean deb_client_io_is_open(DebClient *client);

G_END_DECLS
