/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * The EventBus broker: listens on the eventbus socket, runs the handshake,
 * routes each published frame (decoded once, forwarded as the same bytes) to
 * every matching connection's queue. It lives on the thread-default main
 * context at creation and never blocks it.
 */
typedef struct _Broker Broker;

typedef void (*BrokerShutdownFunc)(Broker *broker, gpointer user_data);

/**
 * BrokerClosedFunc:
 * @user_data: what was given to broker_adopt_fd()
 *
 * An adopted connection closed, whatever the reason: the peer closed it or
 * died, a refused Hello, a handshake timeout, a fatal protocol error,
 * broker_shutdown(). Runs on the broker's main context at the end of the
 * dispatch that closed it, so within the loop iteration that saw the end of
 * the connection. It may call into the broker (adopt another fd, for
 * instance) but must not free it. Not called by broker_free().
 */
typedef void (*BrokerClosedFunc)(Broker *broker, gpointer user_data);

/**
 * broker_new:
 * @config: copied
 *
 * Opens the listening socket (see broker_socket_open()) and starts accepting.
 * Returns: (transfer full) the broker, or %NULL with an error naming the socket.
 */
Broker *broker_new(const BrokerConfig *config, GError **error);

/** broker_free: closes every connection at once and the listening socket (unlinked if we bound it). */
void broker_free(Broker *broker);

/**
 * broker_apply_config:
 *
 * Applies what can change while running: message_buffer_size, max_subscribers,
 * drop_policy, startup_timeout_seconds, max_subscriptions_per_connection,
 * enable_metrics, and max_frame_bytes for connections accepted from now on.
 * socket_path and socket_mode need a restart; they are left as they are.
 */
void broker_apply_config(Broker *broker, const BrokerConfig *config);

/**
 * broker_apply_rpc_config:
 *
 * The [rpc] keys the broker enforces, at start and after a reload:
 * max_pending_requests (per requesting connection: requests it sent that
 * await a reply; beyond, a request is refused with a non-fatal Error and not
 * forwarded) and default_timeout_seconds (how long the reply to a request
 * without a deadline_us is waited for). Until this is called the broker uses
 * the [rpc] defaults, 1000 and 30 s.
 */
void broker_apply_rpc_config(Broker *broker, const RpcConfig *config);

/**
 * broker_adopt_fd:
 * @fd: (transfer full) a connected stream socket (a collector's socket the
 *   agent dialed, one end of a socketpair); closed on failure too
 * @expected_client_id: (nullable) when set, a Hello naming another client id
 *   is refused with a fatal PERMISSION_DENIED Error and the connection closed:
 *   whoever is at the other end of @fd cannot pose as someone else
 * @closed_func: (nullable) called once when the connection closes
 * @user_data: for @closed_func
 * @destroy: (nullable) frees @user_data when the broker forgets the
 *   connection (after @closed_func, broker_forget_closed_func(), broker_free());
 *   not called on failure
 *
 * Serves @fd exactly as an accepted connection: handshake first (within
 * startup_timeout_seconds), then publish and subscribe. It does not count
 * against max_subscribers: the agent's own connections (collectors, D-Bus
 * event streams) are not to be locked out by other local clients.
 * Returns: the connection's session id (> 0; the Welcome's session_id is
 *   "s<id>"), or 0 with a G_FILE_ERROR when @fd is not a stream socket or the
 *   broker is shutting down.
 */
guint64 broker_adopt_fd(Broker *broker, int fd, const char *expected_client_id, BrokerClosedFunc closed_func,
                        gpointer user_data, GDestroyNotify destroy, GError **error);

/**
 * broker_adopt_stream_fd:
 * @fd: (transfer full) our end of a socketpair handed to a D-Bus caller; closed on failure too
 * @pattern: what the stream delivers; validated here
 * @owner: (nullable) who it is for, as the logs should name them
 *
 * As broker_adopt_fd(), for an event stream from OpenEventStream: once the
 * peer's Hello is answered the connection is subscribed to @pattern; it may
 * subscribe again to @pattern and unsubscribe, but other patterns and any
 * publish are refused with a non-fatal PERMISSION_DENIED Error.
 * Returns: the session id, or 0 with an error (a #DEB_ERROR for a bad pattern).
 */
guint64 broker_adopt_stream_fd(Broker *broker, int fd, const char *pattern, const char *owner,
                               GError **error);

/**
 * broker_forget_closed_func:
 *
 * The closed callback of connection @session_id will not run; its destroy
 * notify runs now. The connection itself is left alone.
 * Returns: %FALSE when no connection with that id has a callback pending.
 */
gboolean broker_forget_closed_func(Broker *broker, guint64 session_id);

/** broker_get_config: Returns: (transfer none) the configuration in force. */
const BrokerConfig *broker_get_config(Broker *broker);

/** broker_get_socket_description: Returns: the socket path, or how it was obtained. */
const char *broker_get_socket_description(Broker *broker);

/**
 * broker_get_metrics:
 *
 * What the D-Bus GetMetrics() returns, and SIGUSR1 logs as "metrics: {json}":
 * - connections (u), subscriptions (u): now
 * - published, delivered, dropped (t): since start; delivered counts copies
 *   fully written to a subscriber, dropped copies a full queue dropped
 * - connections_accepted, connections_refused, protocol_errors,
 *   unrouted_responses (t); queue_high_water (u); metrics_enabled (b)
 * - rpc_pending (u): requests awaiting a reply now; rpc_requests, rpc_not_found
 *   (answered NOT_FOUND by the broker), rpc_refused (limit, duplicate or bad
 *   correlation id, undecodable request), rpc_expired (no reply by the
 *   deadline plus a grace), rpc_target_lost (the target closed before
 *   answering) (t)
 * - topics (a{sv}): prefix ("events.process") → {published, delivered, dropped}
 * - latency (a{sv}): read → fully written, µs: count, mean_us, p50_us, p90_us,
 *   p99_us, max_us, buckets a(tt) (exclusive upper bound, samples)
 * - clients (aa{sv}): session_id, client_id, pid, uid, state, subscriptions,
 *   published, delivered, dropped, queued, queued_bytes, queue_high_water,
 *   connected_seconds
 * Returns: (transfer full) a non-floating a{sv}.
 */
GVariant *broker_get_metrics(Broker *broker);

/** broker_get_metrics_json: Returns: (transfer full) broker_get_metrics() as one line of JSON. */
char *broker_get_metrics_json(Broker *broker);

/** broker_get_messages_routed: Returns: messages accepted for routing since the broker started. */
guint64 broker_get_messages_routed(Broker *broker);

/** broker_get_n_connections: Returns: connections currently open. */
guint broker_get_n_connections(Broker *broker);

/**
 * broker_shutdown:
 * @timeout_ms: how long queued output may take to drain
 * @func: called once everything is closed
 *
 * Graceful stop: closes (and unlinks) the listening socket, stops reading,
 * lets the queues drain for at most @timeout_ms, then sends each client a
 * fatal SHUTTING_DOWN Error when it can and closes every connection.
 */
void broker_shutdown(Broker *broker, guint timeout_ms, BrokerShutdownFunc func, gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Broker, broker_free)

G_END_DECLS
