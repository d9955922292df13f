/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* bench-rpc's results and the report printed from them (bench-rpc-report.c). */

#include "bench-rpc.h"

G_BEGIN_DECLS

enum { SYS_DAEMONEYE, SYS_MOSQUITTO, N_SYSTEMS };
#define MAX_WINDOWS 4

extern const char *const bench_rpc_system_names[N_SYSTEMS];

typedef struct {
        gboolean ran; /* FALSE: skipped, or the session did not get this far */
        gboolean ok;  /* every call succeeded */
        char *error;
        guint window;
        guint64 calls;
        double seconds;
        double rate; /* calls/s */
        guint64 p50_ns, p90_ns, p99_ns, max_ns;
        double bg_rate;             /* background msgs/s delivered during the measurement */
        double srv_cpu_us;          /* server CPU per call, the background's own share taken out */
        double resp_cpu_us;         /* responder CPU per call */
        double req_cpu_us;          /* requester thread CPU per call */
        double bytes_out, bytes_in; /* requester connection, per call (0: unknown) */
} RpcResult;

/* The whole benchmark: options, the systems, the best run's figures and every run's. */
typedef struct {
        BenchRpcOptions opts;
        const BenchRpcSystem *systems[N_SYSTEMS]; /* NULL: not built or not selected */
        const char *skip_reason[N_SYSTEMS];
        guint64 calls;           /* scenario 1 */
        guint64 pipelined_calls; /* scenario 2, per window */
        guint64 warmup;          /* calls before each measured chunk, not counted */
        guint chunks;            /* each scenario's calls are made in this many turns per system */
        guint windows[MAX_WINDOWS];
        guint n_windows;
        guint bg_rate;
        guint64 baseline_ms; /* background alone, for the server's CPU share of it */
        guint repeat;
        gboolean verbose;
        RpcResult seq[N_SYSTEMS];
        RpcResult pipe[MAX_WINDOWS][N_SYSTEMS];
        /*
         * One double per run of each selected system (NAN: failed or not
         * run), for the spread and the ratios of the same run: p50 and p99
         * of (1) in µs, calls/s of (2).
         */
        GArray *seq_p50_us[N_SYSTEMS];
        GArray *seq_p99_us[N_SYSTEMS];
        GArray *pipe_rate[MAX_WINDOWS][N_SYSTEMS];
        char *bg_problem[N_SYSTEMS];
        gboolean failed;
        GString *targets;
} BenchRpc;

/** bench_rpc_format_count: Returns: @buf, @v rounded, with thousands separators. */
const char *bench_rpc_format_count(char *buf, gsize size, double v);

void bench_rpc_print_header(BenchRpc *b);
/**
 * bench_rpc_report:
 *
 * Prints (1) and (2): the best run's figures, every run's, the ratios
 * daemoneye/mosquitto of each run and their median; appends the targets'
 * lines (judged on the medians over runs) to b->targets.
 */
void bench_rpc_report(BenchRpc *b);

G_END_DECLS
