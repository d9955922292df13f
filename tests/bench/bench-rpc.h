/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * bench-rpc: request/reply round trips through a broker, DaemonEye's RPC
 * (HealthCheck answered by a collector-core collector) beside a Mosquitto
 * request/echo pair, with event traffic flowing through the same broker
 * (README.md). A system under test is a BenchRpcSystem; its servers are
 * started by the bench-eventbus peers (bench-system.h), whose pub/sub
 * operations also carry the background traffic.
 */

#include "bench-system.h"

G_BEGIN_DECLS

typedef struct {
        BenchOptions events; /* agent and mosquitto paths, queue size: for the servers and the background */
        const char *collector_path; /* daemoneye-test-collector */
        guint timeout_ms;           /* deadline of one call */
        guint max_window;           /* the largest number of calls outstanding in this run */
} BenchRpcOptions;

/* A server, the responder on it and the requester's connection, all live. */
typedef struct _BenchRpcPeer BenchRpcPeer;

typedef struct {
        const char *name;
        /* one sentence for the report: requester, server, responder, transport */
        const char *description;
        /* the pub/sub side of the same server, for the background traffic */
        const BenchSystem *events;

        /*
         * Starts the server and the responder and connects the requester on
         * the calling thread, which makes every later call. Returns once one
         * round trip succeeded.
         */
        BenchRpcPeer *(*start)(const BenchRpcOptions *opts, GError **error);
        void (*stop)(BenchRpcPeer *peer);
        BenchServer *(*server)(BenchRpcPeer *peer);
        pid_t (*server_pid)(BenchRpcPeer *peer);
        /* CPU the responder (a process or a thread) has used so far, ns. */
        guint64 (*responder_cpu_ns)(BenchRpcPeer *peer);
        /* Bytes the requester has written and read on its connection so far (0: unknown). */
        void (*requester_bytes)(BenchRpcPeer *peer, guint64 *written, guint64 *read);

        /*
         * Makes @n calls with at most @window outstanding (1: one at a time),
         * topping the window up as replies come; adds each call's round trip
         * (call made → reply delivered) to @samples. Stops at the first
         * failed call: Returns: %FALSE with @error naming it.
         */
        gboolean (*run_calls)(BenchRpcPeer *peer, guint64 n, guint window, BenchSamples *samples,
                              GError **error);
} BenchRpcSystem;

extern const BenchRpcSystem bench_rpc_daemoneye;
#ifdef HAVE_MOSQUITTO
extern const BenchRpcSystem bench_rpc_mosquitto;
#endif

/* ---- background event traffic (bench-rpc-background.c) ------------------- */

typedef struct _BenchBackground BenchBackground;

/**
 * bench_background_start:
 * @rate_per_s: messages per second, paced with absolute deadlines
 *
 * One publisher thread and one subscriber thread on @sys's server, 64-byte
 * payloads, each message flushed on its own. Returns once the subscription
 * is live and the publisher started.
 * Returns: (transfer full) the running traffic, or %NULL with @error.
 */
BenchBackground *bench_background_start(const BenchSystem *sys, BenchServer *server,
                                        const BenchOptions *opts, guint rate_per_s, GError **error);

/**
 * bench_background_set_paused:
 *
 * While paused the publisher sends nothing (at most the message it was about
 * to send); on resume it paces afresh from then, without a catch-up burst.
 */
void bench_background_set_paused(BenchBackground *bg, gboolean paused);

/** bench_background_received: Returns: messages delivered to the subscriber so far. */
guint64 bench_background_received(BenchBackground *bg);

/**
 * bench_background_stop:
 * @lost: (out) (optional): sequence gaps, duplicates and reorderings seen
 *
 * Stops both threads and frees @bg.
 * Returns: %FALSE with @error if either thread failed meanwhile.
 */
gboolean bench_background_stop(BenchBackground *bg, guint64 *lost, GError **error);

G_END_DECLS
