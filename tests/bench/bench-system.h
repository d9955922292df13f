/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A system under test (daemoneye, raw socket floor, Mosquitto, NATS) is a
 * table of operations the scenario runner (bench-scenario.c) drives the same
 * way for every system:
 *
 *   main thread:       start → [idle_open] → … → [idle_close] → stop
 *   subscriber thread: sub_open (returns once the subscription is live) →
 *                      sub_run (until its BenchSubState is done or the run
 *                      aborted) → sub_close
 *   publisher thread:  pub_open → pub_send × burst, pub_poll … → pub_flush → pub_close
 *
 * Each endpoint is created, used and closed on one thread; sub_wakeup is the
 * only call made from another thread (the monitor, to end sub_run early).
 */

#include "bench-common.h"

G_BEGIN_DECLS

typedef struct {
        const char *agent_path; /* daemoneye-agent */
        const char *mosquitto_path;
        const char *nats_server_path;
        guint burst;               /* messages published between pub_poll calls */
        gsize raw_record_size;     /* raw floor: envelope-sized record after the 4-byte length */
        guint message_buffer_size; /* daemoneye [broker] message_buffer_size */
        gboolean verbose;
} BenchOptions;

typedef struct _BenchServer BenchServer;
typedef struct _BenchPub BenchPub;
typedef struct _BenchSub BenchSub;
typedef struct _BenchIdle BenchIdle;

typedef struct {
        const char *name;
        /* one sentence for the report: transport, client library, how it is driven */
        const char *description;

        /* Starts a fresh server (a process, or nothing for the raw floor). */
        BenchServer *(*start)(const BenchOptions *opts, GError **error);
        void (*stop)(BenchServer *server);
        /* The server process, for RSS; 0 when there is none. */
        pid_t (*server_pid)(BenchServer *server);

        /* @low_latency: every pub_send is followed by pub_flush (paced runs). */
        BenchPub *(*pub_open)(BenchServer *server, gboolean low_latency, GError **error);
        gboolean (*pub_send)(BenchPub *pub, const guint8 *payload, gsize len, GError **error);
        /* Lets the client write what it has without blocking. */
        gboolean (*pub_poll)(BenchPub *pub, GError **error);
        /* Blocks until everything published is handed to the kernel. */
        gboolean (*pub_flush)(BenchPub *pub, GError **error);
        void (*pub_close)(BenchPub *pub);

        /* Connects and subscribes to the benchmark pattern; deliveries go to
         * bench_sub_deliver(@state). */
        BenchSub *(*sub_open)(BenchServer *server, BenchSubState *state, GError **error);
        gboolean (*sub_run)(BenchSub *sub, GError **error);
        void (*sub_wakeup)(BenchSub *sub);
        void (*sub_close)(BenchSub *sub);

        /* One extra connection holding @n non-matching subscriptions (NULL: not supported). */
        BenchIdle *(*idle_open)(BenchServer *server, guint n, GError **error);
        void (*idle_close)(BenchIdle *idle);
} BenchSystem;

/* Non-matching pattern number @i, with the system's separators and wildcards. */
char *bench_idle_pattern(guint i, char sep, const char *one_level, const char *multi_level);

extern const BenchSystem bench_system_daemoneye;
extern const BenchSystem bench_system_raw;
#ifdef HAVE_MOSQUITTO
extern const BenchSystem bench_system_mosquitto;
#endif
#ifdef HAVE_NATS
extern const BenchSystem bench_system_nats;
#endif

/* ---- scenarios (bench-scenario.c) --------------------------------------- */

typedef struct {
        gboolean ran;   /* FALSE: skipped or failed to start */
        gboolean valid; /* every message delivered once, in order */
        char *error;    /* why it failed or is invalid */
        guint n_subs;
        guint64 published;
        guint64 expected; /* deliveries, summed over subscribers */
        guint64 delivered;
        guint64 lost;
        guint64 disordered;
        double seconds;
        double rate;             /* deliveries per second, summed over subscribers */
        double server_cpu_us;    /* server CPU per delivered message, µs (0: no server) */
        double client_cpu_us;    /* this process's CPU (all client threads) per delivered message */
        guint64 pub_cpu_ns;      /* publisher thread CPU */
        guint64 sub_cpu_ns;      /* subscriber threads' CPU (without client library threads) */
        guint64 window_waits;    /* publisher blocked on the window */
        guint64 window_timeouts; /* … of them longer than 10 ms */
        /* latency runs */
        guint64 p50_ns, p90_ns, p99_ns, p999_ns, max_ns;
        /* memory of the server process, KiB */
        guint64 rss_kib, hwm_kib;
} BenchResult;

void bench_result_clear(BenchResult *r);

typedef struct {
        guint n_subs;
        guint64 n_messages; /* published */
        guint64 window;
        guint n_idle_patterns; /* scenario (c) */
        guint rate_per_s;      /* > 0: paced latency run */
        guint stall_ms;        /* no progress for this long: abort */
} BenchScenario;

/**
 * bench_scenario_run:
 *
 * Starts a fresh server of @sys, runs @sc and stops the server (also on
 * errors). Fills @result; returns %FALSE if the run could not be completed
 * or is invalid (lost, duplicated or reordered messages).
 */
gboolean bench_scenario_run(const BenchSystem *sys, const BenchOptions *opts, const BenchScenario *sc,
                            BenchResult *result);

/** bench_idle_rss: starts a server of @sys, lets it settle, reads VmRSS, stops it. */
gboolean bench_idle_rss(const BenchSystem *sys, const BenchOptions *opts, BenchResult *result);

/* ---- daemoneye under load (bench-load.c) -------------------------------- */

typedef struct {
        guint n_clients; /* publisher included */
        guint rate_per_s;
        guint seconds;
        gboolean spread; /* each subscriber matches 1/(n-1) of the topics */
} BenchLoad;

typedef struct {
        gboolean ran;
        char *error;
        guint64 idle_rss_kib;
        guint64 max_rss_kib; /* sampled every 100 ms during the load */
        guint64 hwm_kib;     /* VmHWM at the end */
        guint64 published;
        guint64 expected; /* deliveries if nothing was dropped */
        guint64 delivered;
        double seconds;
} BenchLoadResult;

gboolean bench_daemoneye_load(const BenchOptions *opts, const BenchLoad *load, BenchLoadResult *result);

/* For the load run: starts the agent; Returns: its server handle. */
BenchServer *bench_daemoneye_start(const BenchOptions *opts, GError **error);
const char *bench_daemoneye_socket_path(BenchServer *server);
/* Size of the encoded envelope the daemoneye client publishes for one benchmark message. */
gsize bench_daemoneye_envelope_size(void);

G_END_DECLS
