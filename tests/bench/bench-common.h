/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Shared pieces of bench-eventbus: clocks, the payload format, per-subscriber
 * delivery accounting, the publisher window, latency samples, child
 * processes (started and stopped by pid), temp dirs, free loopback ports and
 * RSS reading. Every system under test is a BenchSystem (bench-system.h).
 */

#include <glib.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* Errors of the harness itself; the message says what failed and why. */
#define BENCH_ERROR (bench_error_quark())
GQuark bench_error_quark(void);

/* ---- clocks ------------------------------------------------------------ */

/** bench_now_ns: Returns: CLOCK_MONOTONIC in nanoseconds. */
guint64 bench_now_ns(void);

/** bench_sleep_until_ns: absolute CLOCK_MONOTONIC sleep (for pacing). */
void bench_sleep_until_ns(guint64 deadline_ns);

/* ---- payload ----------------------------------------------------------- */

/*
 * Every benchmark message carries BENCH_PAYLOAD_SIZE bytes: a sequence number
 * and the CLOCK_MONOTONIC send time (little endian, host order is fine: both
 * ends are this process), then filler.
 */
#define BENCH_PAYLOAD_SIZE 64u

void bench_payload_fill(guint8 *payload, guint64 seq, guint64 send_ns);
guint64 bench_payload_seq(const guint8 *payload);
guint64 bench_payload_send_ns(const guint8 *payload);

/* ---- latency samples --------------------------------------------------- */

typedef struct {
        guint64 *ns;
        gsize n;
        gsize capacity;
} BenchSamples;

void bench_samples_init(BenchSamples *s, gsize capacity);
void bench_samples_clear(BenchSamples *s);
/** bench_samples_add: drops the sample when full (capacity is the message count). */
void bench_samples_add(BenchSamples *s, guint64 ns);
/** bench_samples_percentile: sorts in place on first use; @p in [0,100]. */
guint64 bench_samples_percentile(BenchSamples *s, double p);

/* ---- one run: subscribers, window, abort ------------------------------- */

typedef struct _BenchRun BenchRun;

/*
 * Delivery accounting of one subscriber. bench_sub_deliver() is called by the
 * system's client code for every message, on whatever thread the client
 * library delivers on.
 */
typedef struct {
        BenchRun *run;
        guint index;
        guint64 expected; /* messages this subscriber must get */
        atomic_uint_fast64_t received;
        guint64 next_seq;    /* only touched by the delivering thread */
        guint64 lost;        /* sequence gaps */
        guint64 disordered;  /* duplicates or out-of-order */
        guint64 bad_payload; /* wrong size */
        guint64 last_ns;     /* time of the last expected message */
        atomic_bool done;
        BenchSamples latency; /* used when the run measures latency */
        gboolean measure_latency;
} BenchSubState;

struct _BenchRun {
        guint n_subs;
        BenchSubState *subs;
        guint64 window;     /* publisher at most this many ahead */
        guint64 window_low; /* a blocked publisher resumes at this gap */

        /* The publisher sleeps until subscriber wait_sub reaches wait_target. */
        GMutex lock;
        GCond cond;
        atomic_int wait_sub; /* -1: nobody waits */
        atomic_uint_fast64_t wait_target;

        atomic_bool abort;
        atomic_uint_fast64_t published;
        guint64 pub_cpu_ns;              /* CPU of the publisher thread while publishing */
        atomic_uint_fast64_t sub_cpu_ns; /* CPU of the subscriber threads (not the library's own threads) */
        guint64 window_waits;            /* times the publisher blocked (publisher thread only) */
        guint64 window_timeouts;         /* of which lasted longer than one 10 ms wait */
        guint64 start_ns;                /* first publish */
        char *error;                     /* first error, under lock */
};

BenchRun *bench_run_new(guint n_subs, guint64 expected_per_sub, guint64 window, gboolean measure_latency);
void bench_run_free(BenchRun *run);

/** bench_run_fail: records the first error (printf format) and aborts the run. */
void bench_run_fail(BenchRun *run, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
gboolean bench_run_aborted(BenchRun *run);

/** bench_sub_deliver: accounts one delivered message (payload as published). */
void bench_sub_deliver(BenchSubState *sub, const void *payload, gsize len);

/** bench_run_min_received: Returns: the slowest subscriber's count and its index. */
guint64 bench_run_min_received(BenchRun *run, guint *out_index);

/**
 * bench_run_window_wait:
 * @published: messages the publisher has sent so far
 *
 * Blocks while @published is @window or more ahead of the slowest
 * subscriber, until that gap is down to window_low (or the run aborted).
 * Returns: %FALSE if the run aborted.
 */
gboolean bench_run_window_wait(BenchRun *run, guint64 published);

/** bench_run_window_room: Returns: how many more may be sent now without waiting. */
guint64 bench_run_window_room(BenchRun *run, guint64 published);

/* ---- child processes ----------------------------------------------------- */

/**
 * bench_spawn:
 * @argv: program and arguments
 * @log_path: stdout and stderr go here
 *
 * Forks and execs; the child dies with us (PR_SET_PDEATHSIG) and is also
 * stopped by bench_kill_all() on exit or on SIGINT/SIGTERM.
 * Returns: the pid, or -1 with @error.
 */
pid_t bench_spawn(const char *const *argv, const char *log_path, GError **error);

/** bench_child_alive: Returns: %FALSE (and reaps it) if @pid has exited. */
gboolean bench_child_alive(pid_t pid);

/** bench_stop: SIGTERM, wait up to 5 s, then SIGKILL; always reaps. */
void bench_stop(pid_t pid);

/** bench_kill_all: SIGKILL every child still registered (atexit and signals). */
void bench_kill_all(void);

/** bench_install_cleanup: kill children and remove the temp dir on exit/SIGINT/SIGTERM. */
void bench_install_cleanup(void);

/* ---- files, ports, memory ------------------------------------------------ */

/** bench_tmpdir: Returns: (transfer none) this process's temp dir, created on first use. */
const char *bench_tmpdir(GError **error);
void bench_tmpdir_remove(void);

/** bench_free_port: Returns: a TCP port free on 127.0.0.1 right now, or 0. */
guint16 bench_free_port(void);

/** bench_wait_tcp: waits until 127.0.0.1:@port accepts, @pid alive; %FALSE on timeout. */
gboolean bench_wait_tcp(guint16 port, pid_t pid, guint timeout_ms, GError **error);

/** bench_wait_unix: the same for a Unix socket path. */
gboolean bench_wait_unix(const char *path, pid_t pid, guint timeout_ms, GError **error);

/** bench_read_status_kib: Returns: the value of @field ("VmRSS", "VmHWM") of /proc/@pid/status in KiB, 0 if
 * unknown. */
guint64 bench_read_status_kib(pid_t pid, const char *field);

/** bench_process_cpu_ns: Returns: CPU time of @pid's threads in ns, 0 if unknown. */
guint64 bench_process_cpu_ns(pid_t pid);

/** bench_self_cpu_ns: Returns: user+system CPU of this process (every thread). */
guint64 bench_self_cpu_ns(void);

/** bench_thread_cpu_ns: Returns: CPU time of the calling thread. */
guint64 bench_thread_cpu_ns(void);

/** bench_log_tail: Returns: (transfer full) the last lines of @path, for error messages. */
char *bench_log_tail(const char *path, gsize max_bytes);

G_END_DECLS
