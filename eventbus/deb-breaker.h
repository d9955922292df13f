/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A circuit breaker per RPC target, so that calls to a collector that keeps
 * failing fail fast instead of each waiting for its deadline.
 *
 *   CLOSED    calls go through; failure_threshold consecutive failures
 *             open the breaker.
 *   OPEN      calls are refused until recovery_timeout_ms have passed
 *             since it opened; then it is HALF_OPEN.
 *   HALF_OPEN one call (the probe) goes through, the others are refused
 *             while it is in flight; its success closes the breaker, its
 *             failure opens it again for another recovery_timeout_ms.
 *
 * Outcomes are recorded by the caller; the breaker does not know which call
 * an outcome belongs to. While OPEN, outcomes of calls let through before it
 * opened are ignored; in HALF_OPEN, any outcome is taken as the probe's (a
 * late success is still proof the target answers). A probe whose outcome is never
 * recorded (a cancelled call) is taken as lost after recovery_timeout_ms and
 * another probe is allowed, so a breaker cannot stay half-open forever.
 *
 * Not thread-safe: a breaker lives on the main loop of the client that uses it.
 */

typedef enum {
        DEB_BREAKER_CLOSED,
        DEB_BREAKER_OPEN,
        DEB_BREAKER_HALF_OPEN,
} DebBreakerState;

typedef struct {
        /* Consecutive failures that open the breaker. >= 1. */
        guint failure_threshold;
        /* Time an open breaker refuses calls before it lets a probe through. */
        guint recovery_timeout_ms;
} DebBreakerPolicy;

/* Returns monotonic time in microseconds, as g_get_monotonic_time(). */
typedef gint64 (*DebClockFunc)(gpointer user_data);

typedef struct _DebBreaker DebBreaker;
typedef struct _DebBreakerRegistry DebBreakerRegistry;

/** deb_breaker_policy_default: Returns: 5 failures, 30 s recovery timeout. */
DebBreakerPolicy deb_breaker_policy_default(void);

/**
 * deb_breaker_new:
 * @policy: failure_threshold >= 1; copied
 * @clock: (nullable) time source; %NULL for g_get_monotonic_time()
 * @clock_data: passed to @clock
 *
 * Returns: (transfer full) a closed breaker.
 */
DebBreaker *deb_breaker_new(const DebBreakerPolicy *policy, DebClockFunc clock, gpointer clock_data);

void deb_breaker_free(DebBreaker *breaker);

/**
 * deb_breaker_allow:
 * @retry_after_ms: (out) (optional) when refused: milliseconds until the
 *   breaker lets a call through at the latest (rounded up; sooner if an
 *   in-flight probe succeeds), for the caller's error message
 *
 * Asks whether a call may be made now. In HALF_OPEN a %TRUE answer makes the
 * caller's call the probe, so ask only when about to call, and record its
 * outcome.
 * Returns: %TRUE if the call may go ahead.
 */
gboolean deb_breaker_allow(DebBreaker *breaker, guint *retry_after_ms);

/** deb_breaker_record_success: a call let through succeeded; closes a half-open breaker. */
void deb_breaker_record_success(DebBreaker *breaker);

/** deb_breaker_record_failure: a call let through failed; may open the breaker. */
void deb_breaker_record_failure(DebBreaker *breaker);

/**
 * deb_breaker_get_state:
 *
 * Moves an OPEN breaker whose recovery timeout has passed to HALF_OPEN, so
 * what it reports is what the next deb_breaker_allow() will act on.
 * Returns: the current state.
 */
DebBreakerState deb_breaker_get_state(DebBreaker *breaker);

/** deb_breaker_get_consecutive_failures: Returns: failures recorded since the last success. */
guint deb_breaker_get_consecutive_failures(DebBreaker *breaker);

/** deb_breaker_state_to_string: "closed", "open", "half-open" ("unknown" otherwise). */
const char *deb_breaker_state_to_string(DebBreakerState state);

/**
 * deb_breaker_registry_new:
 *
 * A set of breakers keyed by target (collector id), all with @policy and
 * @clock, created on first use.
 * Returns: (transfer full) an empty registry.
 */
DebBreakerRegistry *deb_breaker_registry_new(const DebBreakerPolicy *policy, DebClockFunc clock,
                                             gpointer clock_data);

void deb_breaker_registry_free(DebBreakerRegistry *registry);

/**
 * deb_breaker_registry_get:
 *
 * Returns: (transfer none) the breaker of @target, created closed if there was
 *   none; valid until removed or the registry is freed.
 */
DebBreaker *deb_breaker_registry_get(DebBreakerRegistry *registry, const char *target);

/**
 * deb_breaker_registry_remove:
 *
 * Forgets @target (a collector removed from the configuration), freeing its
 * breaker.
 * Returns: %TRUE if @target had a breaker.
 */
gboolean deb_breaker_registry_remove(DebBreakerRegistry *registry, const char *target);

/** deb_breaker_registry_get_size: Returns: the number of targets with a breaker. */
guint deb_breaker_registry_get_size(DebBreakerRegistry *registry);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebBreaker, deb_breaker_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebBreakerRegistry, deb_breaker_registry_free)

G_END_DECLS
