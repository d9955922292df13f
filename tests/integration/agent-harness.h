/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/*
 * One daemoneye-agent for one test: a fresh temp dir holding its config, its
 * socket, its log (stdout and stderr) and the output of every peer process
 * the test starts. Every process started here is stopped by pid: by the test
 * (agent_harness_stop()), by agent_harness_free(), or, when an assertion
 * aborts the test program, by a fatal-signal handler and PR_SET_PDEATHSIG.
 *
 * The agent is found through $DAEMONEYE_AGENT, broker-peer through
 * $DAEMONEYE_BROKER_PEER.
 */
typedef struct _AgentHarness AgentHarness;
typedef struct _HarnessPeer HarnessPeer;

/** agent_harness_new: Returns: (transfer full) a harness with a fresh temp dir and a default config. */
AgentHarness *agent_harness_new(GError **error);

/** agent_harness_free: kills what is still running (SIGKILL), removes the temp dir unless the test failed.
 */
void agent_harness_free(AgentHarness *h);

/** agent_harness_set: sets a [broker] key of the config written by agent_harness_start(). */
void agent_harness_set(AgentHarness *h, const char *key, const char *value);

const char *agent_harness_get_socket_path(AgentHarness *h);

/**
 * agent_harness_start:
 *
 * Writes the config and spawns the agent, then waits until its socket
 * completes a handshake (Hello → Welcome), or @timeout_ms passes, or the
 * agent dies (the error then carries the tail of its log).
 */
gboolean agent_harness_start(AgentHarness *h, guint timeout_ms, GError **error);

/** agent_harness_is_running: Returns: %FALSE once the agent exited (it is then reaped). */
gboolean agent_harness_is_running(AgentHarness *h);

gboolean agent_harness_signal(AgentHarness *h, int sig, GError **error);

/**
 * agent_harness_get_metrics:
 *
 * Sends SIGUSR1 and waits for the next "metrics: {json}" line in the log.
 * Returns: (transfer full) the JSON object, or NULL on timeout or bad JSON.
 */
JsonObject *agent_harness_get_metrics(AgentHarness *h, guint timeout_ms, GError **error);

/**
 * agent_harness_stop:
 *
 * SIGTERM, then waits @timeout_ms for the agent to exit (SIGKILL after that).
 * Returns: %TRUE only if it exited with status 0 and removed its socket.
 */
gboolean agent_harness_stop(AgentHarness *h, guint timeout_ms, GError **error);

/** agent_harness_get_log_tail: Returns: (transfer full) the last @max_bytes of the agent's log. */
char *agent_harness_get_log_tail(AgentHarness *h, gsize max_bytes);

/**
 * agent_harness_spawn_peer:
 * @name: unique within the test; names the peer's output files and client id
 * @args: broker-peer MODE and its options; --socket, --ready-file and
 *   --client-id are added here
 *
 * Returns: (transfer none) the peer, owned by @h.
 */
HarnessPeer *agent_harness_spawn_peer(AgentHarness *h, const char *name, const char *const *args,
                                      GError **error);

/** harness_peer_wait_ready: waits for the peer's ready file; fails early if the peer exits. */
gboolean harness_peer_wait_ready(HarnessPeer *p, guint timeout_ms, GError **error);

/**
 * harness_peer_wait:
 *
 * Waits up to @timeout_ms for the peer to exit and parses its key=value
 * output. Returns: %FALSE (without error) if it is still running.
 */
gboolean harness_peer_wait(HarnessPeer *p, guint timeout_ms);

/**
 * harness_peer_finish:
 *
 * Waits for the peer to exit; fails, killing it, when it does not within
 * @timeout_ms, and fails when it exits other than with status 0. Errors carry
 * the peer's stdout and stderr.
 */
gboolean harness_peer_finish(HarnessPeer *p, guint timeout_ms, GError **error);

gboolean harness_peer_signal(HarnessPeer *p, int sig, GError **error);

/** harness_peer_get_exit_status: Returns: the exit status, or -1 (running, or killed by a signal). */
int harness_peer_get_exit_status(HarnessPeer *p);

/** harness_peer_get_u64: looks up a "key=value" token of the peer's output (after it exited). */
gboolean harness_peer_get_u64(HarnessPeer *p, const char *key, guint64 *out);

/** harness_peer_describe: Returns: (transfer full) name, pid, status, stdout and stderr for messages. */
char *harness_peer_describe(HarnessPeer *p);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AgentHarness, agent_harness_free)

G_END_DECLS
