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
