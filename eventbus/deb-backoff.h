/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include "eventbus.pb-c.h"

G_BEGIN_DECLS

/*
 * Exponential backoff with jitter, for retrying idempotent RPCs (and anything
 * else that retries: the process manager's restart spacing is the same curve).
 *
 * The delay before retry n (n = 1 for the second attempt) is
 *
 *     d(n) = min(max_delay_ms, base_delay_ms * multiplier^(n-1))
 *     delay = d(n) - jitter * d(n) * r,      r uniform in [0, 1)
 *
 * so a delay always lies in [d(n) * (1 - jitter), d(n)]. jitter = 1 is "full
 * jitter", jitter = 0.5 is "equal jitter"; the default is equal jitter: it
 * still spreads out clients that failed together (every caller of a collector
 * that just died), but keeps half of the delay as a floor, so a retry never
 * lands a few microseconds after the failure on a collector still restarting.
 * Jitter only ever shortens a delay, so max_delay_ms is a hard cap.
 *
 * A DebBackoff knows nothing of deadlines: the RPC client must not sleep past
 * its call's deadline, and gives up instead.
 */

typedef struct {
        /* Attempts in all, the first included: 1 means never retry. >= 1. */
        guint max_attempts;
        /* d(1), the delay before the second attempt. */
        guint base_delay_ms;
        /* Cap on d(n). >= base_delay_ms. */
        guint max_delay_ms;
        /* Growth of d(n) per retry. >= 1.0. */
        double multiplier;
        /* Fraction of d(n) that is randomized, 0..1; see above. */
        double jitter;
} DebBackoffPolicy;

/* Returns a uniformly distributed number in [0, 1). */
typedef double (*DebRandomFunc)(gpointer user_data);

typedef struct _DebBackoff DebBackoff;

/**
 * deb_backoff_policy_default:
 *
 * Returns: 3 attempts, 100 ms doubling up to 5 s, equal jitter (0.5).
 */
DebBackoffPolicy deb_backoff_policy_default(void);

/**
 * deb_backoff_policy_is_valid:
 *
 * The ranges documented on #DebBackoffPolicy; whoever builds a policy from
 * configuration checks them first, since deb_backoff_new() treats a bad policy
 * as a programmer error.
 * Returns: %TRUE if @policy can be used.
 */
gboolean deb_backoff_policy_is_valid(const DebBackoffPolicy *policy);

/**
 * deb_backoff_new:
 * @policy: a valid policy; copied
 *
 * Random numbers come from g_random_double() until
 * deb_backoff_set_random_func() says otherwise.
 * Returns: (transfer full) a backoff with no attempt failed yet.
 */
DebBackoff *deb_backoff_new(const DebBackoffPolicy *policy);

/**
 * deb_backoff_new_for_rpc:
 * @policy: a valid policy; copied
 * @operation: the operation being called
 *
 * As deb_backoff_new(), but limited to a single attempt when @operation is
 * not idempotent (see deb_rpc_operation_is_idempotent()), so the RPC client
 * has one retry loop for every operation and cannot retry the wrong one.
 * Returns: (transfer full) a backoff.
 */
DebBackoff *deb_backoff_new_for_rpc(const DebBackoffPolicy *policy,
                                    Daemoneye__Eventbus__RpcOperation operation);

void deb_backoff_free(DebBackoff *backoff);

/**
 * deb_backoff_set_random_func:
 * @func: (nullable) source of numbers in [0, 1); %NULL restores g_random_double()
 *
 * For tests, which need exact delays. Values outside [0, 1] are clamped.
 */
void deb_backoff_set_random_func(DebBackoff *backoff, DebRandomFunc func, gpointer user_data);

/**
 * deb_backoff_next_delay:
 * @delay_ms: (out) how long to wait before the next attempt
 *
 * Call after an attempt failed.
 * Returns: %TRUE and sets @delay_ms if another attempt is allowed; %FALSE
 *   when max_attempts attempts have been made (@delay_ms is then untouched).
 */
gboolean deb_backoff_next_delay(DebBackoff *backoff, guint *delay_ms);

/** deb_backoff_get_attempts: Returns: attempts made so far, counting the first (1 before any retry). */
guint deb_backoff_get_attempts(DebBackoff *backoff);

/** deb_backoff_reset: back to the state after deb_backoff_new(), e.g. after a success. */
void deb_backoff_reset(DebBackoff *backoff);

/**
 * deb_rpc_operation_is_idempotent:
 *
 * Whether repeating @operation after an unknown outcome (a timeout, a lost
 * connection) is harmless, hence whether the RPC client may retry it:
 *
 *  - HEALTH_CHECK, GET_CAPABILITIES: read-only.
 *  - START, STOP, PAUSE, RESUME: they set a state ("be running"), and a
 *    collector already in that state answers SUCCESS, so twice is once.
 *  - RESTART: each one restarts again, killing the instance the previous
 *    one started, and counts against max_restart_attempts.
 *  - UPDATE_CONFIG: may have been applied (or rolled back) in part; a blind
 *    repeat can undo a concurrent update. The caller re-reads and decides.
 *  - GRACEFUL_SHUTDOWN, FORCE_SHUTDOWN: escalation belongs to the process
 *    manager (graceful timeout, then SIGKILL/KillUnit), not to RPC retries.
 *
 * Unknown operations are not idempotent.
 */
gboolean deb_rpc_operation_is_idempotent(Daemoneye__Eventbus__RpcOperation operation);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebBackoff, deb_backoff_free)

G_END_DECLS
