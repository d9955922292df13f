/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "deb-backoff.h"
#include "deb-breaker.h"
#include "deb-client.h"
#include "deb-rpc.h"

G_BEGIN_DECLS

/*
 * The RPC client: calls operations on collectors over a DebClient.
 *
 * Each call sends an RpcRequest on the target's request topic (see
 * deb_rpc_request_topic()) and waits for the reply the broker routes back to
 * this connection. Per call:
 *
 *  - a deadline per attempt (timeout_ms, also sent as the request's
 *    deadline_us so the service refuses work nobody waits for); a reply after
 *    it is ignored;
 *  - retries with exponential backoff and jitter (DebBackoff) for idempotent
 *    operations only (deb_rpc_operation_is_idempotent()), and only after a
 *    timeout or a communication failure (lost connection, the collector gone
 *    before answering): the outcome of the attempt is unknown and repeating it
 *    is harmless. Never after an answer that says the operation ran, was
 *    refused (invalid operation or argument) or has no collector (not found:
 *    the broker knows at once, retrying would only hide it). Worst case the
 *    callback runs max_attempts × timeout_ms plus the backoff delays after
 *    the call;
 *  - a circuit breaker per target: timeouts, communication failures,
 *    "not found" and malformed replies count as failures; any other answer
 *    proves the target responds and counts as a success. While a breaker is
 *    open, calls to its target fail at once with #DEB_RPC_ERROR_CIRCUIT_OPEN.
 *
 * At most max_pending calls are pending at once (waiting for a reply or for
 * a retry); beyond, deb_rpc_client_call() fails at once and sends nothing.
 *
 * Every call ends with exactly one run of its callback: with the reply, with
 * an error, or both (an error reply). Callbacks run on the DebClient's main
 * context and may make calls, cancel calls or free the RPC client.
 */
typedef struct _DebRpcClient DebRpcClient;

typedef struct {
        /* Calls pending at once, retries waiting included. >= 1; rpc.max_pending_requests. */
        guint max_pending;
        /* Deadline of an attempt when a call gives 0. >= 1. */
        guint default_timeout_ms;
        /* Must pass deb_backoff_policy_is_valid(); max_attempts = 1 disables retries. */
        DebBackoffPolicy retry;
        /* failure_threshold >= 1. */
        DebBreakerPolicy breaker;
        /* (nullable) the breakers' clock, for tests; NULL: g_get_monotonic_time(). */
        DebClockFunc clock;
        gpointer clock_data;
        /* (nullable) the backoff jitter's random numbers, for tests; NULL: g_random_double(). */
        DebRandomFunc random;
        gpointer random_data;
} DebRpcClientOptions;

/*
 * What a callback knows of the call, for logs and the audit log (time,
 * actor, action, target, payload hash, correlation id, status, duration).
 * Valid only during the callback.
 */
typedef struct {
        guint call_id;
        /* Id of the first attempt: the call's id in logs; retries carry it as their parent and root. */
        const char *correlation_id;
        /* Id of the attempt that produced the outcome (equal to correlation_id without retries). */
        const char *last_correlation_id;
        /* The DebClient's id: the actor as the broker and the collector see it. */
        const char *client_id;
        const char *target;
        DebRpcOperation operation;
        const char *topic;
        /* Lower-case hex SHA-256 of the request payload (the packed oneof alone, as sent). */
        const char *payload_sha256;
        /* The reply's status; TIMEOUT or ERROR when no reply came. */
        DebRpcStatus status;
        guint attempts;
        /* Wall clock when the call was made, microseconds since the epoch. */
        gint64 started_us;
        /* Call made → outcome, retries and their delays included. */
        guint64 duration_us;
        /* Last attempt: request queued → reply read; 0 without a reply. */
        guint64 round_trip_us;
        /* The reply's execution_time_us (the service's own time); 0 without a reply. */
        guint64 execution_time_us;
} DebRpcCallInfo;

/**
 * DebRpcCallback:
 * @response: (nullable) the reply, valid only during the call; set whenever
 *   one came, error replies included
 * @error: (nullable) %NULL on success (status SUCCESS or IN_PROGRESS), else
 *   a #DEB_RPC_ERROR
 */
typedef void (*DebRpcCallback)(DebRpcClient *rpc, const DebRpcResponse *response, const GError *error,
                               const DebRpcCallInfo *info, gpointer user_data);

typedef struct {
        guint pending;
        guint64 calls;        /* accepted by deb_rpc_client_call() */
        guint64 succeeded;    /* callbacks without error */
        guint64 failed;       /* callbacks with an error, cancellations included */
        guint64 attempts;     /* requests sent, retries included */
        guint64 retries;      /* attempts scheduled after a failed one */
        guint64 timeouts;     /* attempts without a reply by their deadline */
        guint64 late_replies; /* replies matching no attempt in flight: late, cancelled, or unknown */
        guint64 refused;      /* calls refused at once: limit, open breaker, bad arguments, not connected */
} DebRpcClientStats;

/**
 * deb_rpc_client_options_default:
 *
 * Returns: max_pending 1000 and a 30 s timeout (the [rpc] defaults),
 *   deb_backoff_policy_default(), deb_breaker_policy_default(), real clock and randomness.
 */
DebRpcClientOptions deb_rpc_client_options_default(void);

/**
 * deb_rpc_client_new:
 * @client: the connection to call over; referenced. Its RPC hooks
 *   (deb_client_set_rpc_hooks()) are taken: one RPC client per DebClient.
 * @options: (nullable) copied; %NULL for deb_rpc_client_options_default()
 *
 * Create it on the main context of @client: its timers run there.
 * Returns: (transfer full) the RPC client, or %NULL with #DEB_RPC_ERROR_INVALID_ARGUMENT
 *   for options out of range or a client that already has one.
 */
DebRpcClient *deb_rpc_client_new(DebClient *client, const DebRpcClientOptions *options, GError **error);

/**
 * deb_rpc_client_free:
 *
 * Ends every pending call: its callback runs with #DEB_RPC_ERROR_CANCELLED,
 * and must not make calls then. Gives the DebClient's hooks back.
 */
void deb_rpc_client_free(DebRpcClient *rpc);

/** deb_rpc_client_get_client: Returns: (transfer none) the DebClient calls go over. */
DebClient *deb_rpc_client_get_client(DebRpcClient *rpc);

/**
 * deb_rpc_client_call:
 * @target: the collector id: one topic level
 * @payload: (nullable) only its payload oneof is taken (copied); the other
 *   fields are the client's to fill
 * @timeout_ms: deadline of each attempt; 0 for the default
 * @callback: runs exactly once with the outcome, never before this returns
 *
 * Returns: the call id (> 0), or 0 with an error when nothing was sent:
 *   #DEB_RPC_ERROR_INVALID_ARGUMENT (bad target, unknown operation, a payload
 *   that does not fit the operation), #DEB_RPC_ERROR_LIMIT (max_pending
 *   calls pending), #DEB_RPC_ERROR_CIRCUIT_OPEN (naming the target and when
 *   it lets calls through again), #DEB_RPC_ERROR_COMMUNICATION (the
 *   DebClient is not connected).
 */
guint deb_rpc_client_call(DebRpcClient *rpc, const char *target, DebRpcOperation operation,
                          const DebRpcRequest *payload, guint timeout_ms, DebRpcCallback callback,
                          gpointer user_data, GError **error);

/**
 * deb_rpc_client_cancel:
 *
 * Ends call @call_id now: its callback runs before this returns, with
 * #DEB_RPC_ERROR_CANCELLED; a reply arriving later is ignored. The request,
 * if sent, is not withdrawn: the collector may still carry it out.
 * Returns: %FALSE if @call_id is not pending.
 */
gboolean deb_rpc_client_cancel(DebRpcClient *rpc, guint call_id);

/**
 * deb_rpc_client_call_sync:
 * @response: (out) (optional) (transfer full): the reply whenever one came,
 *   error replies included; free with daemoneye__eventbus__rpc_response__free_unpacked(r, NULL)
 *
 * deb_rpc_client_call(), then iterates the DebClient's main context until the
 * call ends. For tools and tests; a daemon uses deb_rpc_client_call(). Fails
 * at once inside a callback of the DebClient, where no reply can be read.
 * Returns: %TRUE on success, else %FALSE with a #DEB_RPC_ERROR.
 */
gboolean deb_rpc_client_call_sync(DebRpcClient *rpc, const char *target, DebRpcOperation operation,
                                  const DebRpcRequest *payload, guint timeout_ms, DebRpcResponse **response,
                                  GError **error);

/**
 * deb_rpc_client_get_breaker:
 *
 * Returns: (transfer none) the circuit breaker of @target, created closed
 *   if calls never went there; valid as long as @rpc.
 */
DebBreaker *deb_rpc_client_get_breaker(DebRpcClient *rpc, const char *target);

void deb_rpc_client_get_stats(DebRpcClient *rpc, DebRpcClientStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebRpcClient, deb_rpc_client_free)

G_END_DECLS
