/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include "deb-frame.h"

G_BEGIN_DECLS

/*
 * An EventBus client on a GLib main loop.
 *
 * A client belongs to the thread-default GMainContext current when it was
 * created; all its callbacks run there. Output is buffered and written when
 * the socket is writable, so publishing many messages costs few system calls;
 * deb_client_flush() waits for it to be written. Output is not bounded: a fast
 * publisher uses the drain callback to pace itself.
 *
 * Callbacks may publish, subscribe, unsubscribe, disconnect or drop the last
 * reference. While one of this client's callbacks runs the client reads
 * nothing, so a deb_client_sync() there that needs the broker's answers fails
 * at once with #DEB_ERROR_PROTOCOL instead of waiting for its timeout.
 */
typedef struct _DebClient DebClient;

/*
 * Called once when the handshake finished: @error is NULL on Welcome. When no
 * connect callback was given, a failed handshake goes to the error callback.
 */
typedef void (*DebClientConnectFunc)(DebClient *client, const GError *error, gpointer user_data);

/* Called per delivered message; @envelope is valid only during the call. */
typedef void (*DebClientMessageFunc)(DebClient *client, const DebEnvelope *envelope, gpointer user_data);

/*
 * Called for an Error frame from the broker and when the connection is lost or
 * closed by the peer. When @fatal is TRUE the client is closed already.
 * A refused Subscribe/Unsubscribe is reported here (not fatal) only when no
 * deb_client_sync() is waiting; otherwise that sync fails with it.
 */
typedef void (*DebClientErrorFunc)(DebClient *client, const GError *error, gboolean fatal, gpointer user_data);

/* Called when pending output fell to or below the drain watermark. */
typedef void (*DebClientDrainFunc)(DebClient *client, gpointer user_data);

/*
 * Hooks of the RPC client (deb-rpc-client.h), one set per client. Replies
 * reach it directly rather than through the local subscriptions: the broker
 * sends a reply only to the connection that made the request, so no pattern
 * is involved, and a '#' subscription of the same client must not see them.
 */
typedef struct {
        /* An RPC_RESPONSE envelope, valid only during the call; subscriptions never see it. */
        void (*response)(DebClient *client, const DebEnvelope *envelope, gpointer user_data);
        /*
         * A non-fatal Error from the broker carrying @correlation_id, which is
         * not that of one of this client's Subscribe/Unsubscribe: the refusal
         * of something published. Returns %TRUE if it refused an RPC request
         * of the hook's; %FALSE passes it on to the error callback.
         */
        gboolean (*refused)(DebClient *client, const char *correlation_id, const GError *error,
                            gpointer user_data);
        /*
         * The connection was lost, or closed by the broker (not by
         * deb_client_disconnect() or the last unref); runs before the error
         * or connect callback hears of it.
         */
        void (*closed)(DebClient *client, const GError *error, gpointer user_data);
} DebClientRpcHooks;

typedef struct {
        /* Envelope message_type; 0 means MESSAGE_TYPE_EVENT. */
        int message_type;
        /* Full protobuf name of the payload message; NULL for raw bytes. */
        const char *payload_type;
        /* Correlation of the message this one follows from, or NULL. */
        const char *parent_correlation_id;
        /*
         * Root of the workflow. NULL: the parent's id when a parent is given (right
         * when the parent is itself a root; pass the root for deeper chains), else
         * this message's own id.
         */
        const char *root_correlation_id;
        /* Set instead of a fresh UUID (RPC replies reuse the request's id); NULL: new UUID. */
        const char *correlation_id;
        const char *workflow_stage;
        /* NULL-terminated key, value, key, value… list, or NULL. */
        const char *const *tags;
} DebPublishOptions;

typedef struct {
        guint64 published;      /* envelopes queued for sending */
        guint64 received;       /* envelopes delivered to subscriptions */
        guint64 bytes_written;
        guint64 bytes_read;
} DebClientStats;

/**
 * deb_client_new:
 * @client_id: identity sent in Hello; NULL picks "client-<pid>"
 *
 * Returns: (transfer full) a disconnected client.
 */
DebClient *deb_client_new(const char *client_id);
DebClient *deb_client_ref(DebClient *client);
/**
 * deb_client_unref: dropping the last reference closes the connection abruptly
 * and runs the subscriptions' destroy notifies, which must not call into the client.
 */
void deb_client_unref(DebClient *client);

const char *deb_client_get_id(DebClient *client);
/**
 * deb_client_set_max_frame_bytes: limit for frames in both directions (default
 * 1 MiB); the broker's, when its Welcome gives a smaller one, is used for output.
 * The input limit applies from the next connect.
 */
void deb_client_set_max_frame_bytes(DebClient *client, gsize max_frame_bytes);
/** deb_client_set_capabilities: strings sent in Hello; copied. */
void deb_client_set_capabilities(DebClient *client, const char *const *capabilities);
void deb_client_set_error_func(DebClient *client, DebClientErrorFunc func, gpointer user_data);
/** deb_client_set_drain_func: see DebClientDrainFunc; for flow control of fast publishers. */
void deb_client_set_drain_func(DebClient *client, gsize low_watermark, DebClientDrainFunc func,
                               gpointer user_data);

/**
 * deb_client_set_rpc_hooks:
 * @hooks: (nullable) copied; %NULL removes the hooks, and replies then go to
 *   the subscriptions like any message
 *
 * For the RPC client, which installs them on the client it is built on.
 */
void deb_client_set_rpc_hooks(DebClient *client, const DebClientRpcHooks *hooks, gpointer user_data);

/**
 * deb_client_connect:
 * @socket_path: the broker's Unix socket
 * @func: (nullable) called when the handshake finished or failed
 *
 * Connects and sends Hello. Subscriptions and publications made before the
 * Welcome arrives are queued behind the Hello; subscriptions made before
 * connecting, or on an earlier connection, are sent again. A client that was
 * closed may connect again. A path starting with '@' is in the abstract namespace.
 * Returns: %FALSE if the socket could not be connected at all; errors then
 *   read "broker socket PATH: connection refused" or "…: No such file or directory".
 */
gboolean deb_client_connect(DebClient *client, const char *socket_path, DebClientConnectFunc func,
                            gpointer user_data, GError **error);

/**
 * deb_client_connect_fd: as deb_client_connect() on a connected stream socket;
 * takes ownership of @fd (closed on failure too) and makes it non-blocking.
 */
gboolean deb_client_connect_fd(DebClient *client, int fd, DebClientConnectFunc func, gpointer user_data,
                               GError **error);

/**
 * deb_client_connect_sync:
 *
 * deb_client_connect(), then iterates the client's main context until the
 * Welcome arrives, an Error does, or @timeout_ms passes (then the half-open
 * connection is closed). For tools and tests; a daemon uses deb_client_connect().
 */
gboolean deb_client_connect_sync(DebClient *client, const char *socket_path, guint timeout_ms, GError **error);

/** deb_client_is_connected: Returns: %TRUE between Welcome and close. */
gboolean deb_client_is_connected(DebClient *client);

/**
 * deb_client_subscribe:
 * @pattern: a pattern; validated here
 * @func: called for each message matching @pattern
 * @destroy: (nullable) called on @user_data when the subscription goes
 *
 * The broker is told once per distinct pattern; several subscriptions to one
 * pattern each get every matching message.
 * Returns: a subscription id (> 0), or 0 with an error.
 */
guint deb_client_subscribe(DebClient *client, const char *pattern, DebClientMessageFunc func, gpointer user_data,
                           GDestroyNotify destroy, GError **error);

/** deb_client_unsubscribe: Returns: %FALSE if @subscription_id is unknown. */
gboolean deb_client_unsubscribe(DebClient *client, guint subscription_id);

/**
 * deb_client_sync:
 *
 * Iterates the main context until the handshake finished, every
 * Subscribe/Unsubscribe sent so far is acknowledged by the broker and all
 * output is written: after it returns %TRUE, the subscriptions are live.
 * Fails with the broker's refusal (#DEB_ERROR_REFUSED) of any of them.
 */
gboolean deb_client_sync(DebClient *client, guint timeout_ms, GError **error);

/**
 * deb_client_publish:
 * @topic: a concrete topic; validated here
 * @options: (nullable) envelope fields; NULL for a plain event of raw bytes
 *
 * Queues one envelope with a fresh correlation id (UUID), this client's next
 * sequence number, the current time and this client's id as sender.
 * Returns: %FALSE on an invalid topic, an oversized envelope or a closed client.
 */
gboolean deb_client_publish(DebClient *client, const char *topic, const void *payload, gsize payload_len,
                            const DebPublishOptions *options, GError **error);

/** deb_client_get_pending_bytes: Returns: bytes queued and not yet written to the socket. */
gsize deb_client_get_pending_bytes(DebClient *client);

/** deb_client_flush: iterates the main context until all output is written, or @timeout_ms passes. */
gboolean deb_client_flush(DebClient *client, guint timeout_ms, GError **error);

/**
 * deb_client_disconnect:
 *
 * Clean disconnect: flushes pending output (up to @timeout_ms), shuts the
 * socket down and closes it. No callback runs after this returns.
 */
void deb_client_disconnect(DebClient *client, guint timeout_ms);

void deb_client_get_stats(DebClient *client, DebClientStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebClient, deb_client_unref)

G_END_DECLS
