/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-rpc: DaemonEye's RPC round trip (HealthCheck through the agent's
 * broker to a collector-core collector and back) beside a Mosquitto
 * request/echo round trip, measured in the same run while 64-byte events
 * flow through the same broker at a fixed rate (see README.md). Prints
 * p50/p90/p99/max of calls made one at a time, calls/s of pipelined calls
 * from one client, the ratios against Mosquitto and whether the targets
 * were met. Exits 1 when any call failed or the background traffic lost a
 * message; a missed target is reported, not fatal.
 */
#include "bench-rpc-report.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef HAVE_MOSQUITTO
#include <mosquitto.h>
#endif

/* One system during a round: the peer, its background and the background's cost. */
typedef struct {
        BenchRpc *b;
        const BenchRpcSystem *sys;
        BenchRpcPeer *peer; /* NULL: not selected, or it did not start */
        BenchBackground *bg;
        double bg_srv_cpu_ns_per_s; /* server CPU the background alone costs */
        gboolean broken;            /* a call failed: no further scenario on this peer */
} Session;

/* What the chunks of one scenario on one system add up to. */
typedef struct {
        BenchSamples samples;
        guint64 ns, srv_ns, resp_ns, req_ns, bg_msgs, bytes_out, bytes_in;
        char *error;
} Accum;

static void rpc_result_clear(RpcResult *r)
{
        g_free(r->error);
        memset(r, 0, sizeof *r);
}

/* ---- measuring -------------------------------------------------------------- */

static guint64 server_cpu(Session *s)
{
        return bench_process_cpu_ns(s->sys->server_pid(s->peer));
}

/* The background alone for a while: the server's CPU per second for it. */
static void measure_baseline(Session *s)
{
        guint64 cpu0 = server_cpu(s), t0 = bench_now_ns();

        g_usleep(s->b->baseline_ms * 1000);
        s->bg_srv_cpu_ns_per_s = (double)(server_cpu(s) - cpu0) * 1e9 / (double)(bench_now_ns() - t0);
}

/* One turn of @s: its background on, a warm-up, @n measured calls added to @a, its background off. */
static gboolean measure_chunk(Session *s, guint window, guint64 n, Accum *a)
{
        const BenchRpcSystem *sys = s->sys;
        g_autoptr(GError) error = NULL;
        BenchSamples warm;
        guint64 srv0, srv1, resp0, resp1, req0, req1, t0, t1, bg0 = 0, bg1 = 0;
        guint64 out0 = 0, in0 = 0, out1 = 0, in1 = 0;
        gboolean ok;

        if (s->bg)
                bench_background_set_paused(s->bg, FALSE);
        bench_samples_init(&warm, s->b->warmup);
        ok = sys->run_calls(s->peer, s->b->warmup, window, &warm, &error);
        bench_samples_clear(&warm);
        if (!ok) {
                a->error = g_strdup_printf("warm-up: %s", error->message);
                goto out;
        }
        if (sys->requester_bytes)
                sys->requester_bytes(s->peer, &out0, &in0);
        if (s->bg)
                bg0 = bench_background_received(s->bg);
        srv0 = server_cpu(s);
        resp0 = sys->responder_cpu_ns(s->peer);
        req0 = bench_thread_cpu_ns();
        t0 = bench_now_ns();
        ok = sys->run_calls(s->peer, n, window, &a->samples, &error);
        t1 = bench_now_ns();
        req1 = bench_thread_cpu_ns();
        resp1 = sys->responder_cpu_ns(s->peer);
        srv1 = server_cpu(s);
        if (s->bg)
                bg1 = bench_background_received(s->bg);
        if (sys->requester_bytes)
                sys->requester_bytes(s->peer, &out1, &in1);
        a->ns += t1 - t0;
        a->srv_ns += srv1 - srv0;
        a->resp_ns += resp1 - resp0;
        a->req_ns += req1 - req0;
        a->bg_msgs += bg1 - bg0;
        a->bytes_out += out1 - out0;
        a->bytes_in += in1 - in0;
        if (!ok)
                a->error = g_strdup(error->message);
out:
        if (s->bg)
                bench_background_set_paused(s->bg, TRUE);
        return ok;
}

static void accum_to_result(Session *s, guint window, guint64 n, Accum *a, RpcResult *r)
{
        double calls = (double)a->samples.n, seconds = (double)a->ns / 1e9;

        memset(r, 0, sizeof *r);
        r->ran = TRUE;
        r->window = window;
        r->calls = a->samples.n;
        r->seconds = seconds;
        r->ok = !a->error && a->samples.n == n;
        if (a->error)
                r->error = g_steal_pointer(&a->error);
        else if (!r->ok)
                r->error = g_strdup_printf("%zu of %" G_GUINT64_FORMAT " calls timed", a->samples.n, n);
        if (calls > 0 && seconds > 0) {
                r->rate = calls / seconds;
                r->p50_ns = bench_samples_percentile(&a->samples, 50);
                r->p90_ns = bench_samples_percentile(&a->samples, 90);
                r->p99_ns = bench_samples_percentile(&a->samples, 99);
                r->max_ns = bench_samples_percentile(&a->samples, 100);
                r->bg_rate = (double)a->bg_msgs / seconds;
                r->srv_cpu_us = MAX(0.0, (double)a->srv_ns - s->bg_srv_cpu_ns_per_s * seconds) / 1e3 / calls;
                r->resp_cpu_us = (double)a->resp_ns / 1e3 / calls;
                r->req_cpu_us = (double)a->req_ns / 1e3 / calls;
                r->bytes_out = (double)a->bytes_out / calls;
                r->bytes_in = (double)a->bytes_in / calls;
        }
}

static void log_run(BenchRpc *b, const char *name, guint rep, const RpcResult *r)
{
        if (!b->verbose)
                return;
        if (!r->ok) {
                g_printerr("bench-rpc: %s window %u run %u: FAILED: %s\n", name, r->window, rep + 1,
                           r->error ? r->error : "?");
                return;
        }
        g_printerr("bench-rpc: %s window %u run %u: %.0f calls/s, p50 %.1f p99 %.1f max %.1f µs; background "
                   "%.0f msgs/s; CPU µs/call: server %.2f (net), responder %.2f, requester %.2f\n",
                   name, r->window, rep + 1, r->rate, r->p50_ns / 1e3, r->p99_ns / 1e3, r->max_ns / 1e3,
                   r->bg_rate, r->srv_cpu_us, r->resp_cpu_us, r->req_cpu_us);
}

/* Keeps the better of @r and @best in @best: a failure always wins, since it fails the benchmark. */
static void keep_best(RpcResult *best, RpcResult *r, gboolean by_rate)
{
        gboolean better;

        if (!best->ran)
                better = TRUE;
        else if (!best->ok)
                better = FALSE;
        else if (!r->ok)
                better = TRUE;
        else
                better = by_rate ? r->rate > best->rate : r->p99_ns < best->p99_ns;
        if (better) {
                rpc_result_clear(best);
                *best = *r;
        } else {
                rpc_result_clear(r);
        }
}

/*
 * One scenario: @n calls per system, made in b->chunks turns, the systems
 * alternating (and taking turns to go first), so both see the same machine
 * over the same seconds; only the system whose turn it is has its
 * background traffic on.
 */
static void run_scenario(BenchRpc *b, Session *sessions, guint rep, guint window, guint64 n, RpcResult *best,
                         GArray **figure, GArray **p99_us, gboolean by_rate)
{
        Accum acc[N_SYSTEMS];
        guint chunks = (guint)MAX(MIN((guint64)b->chunks, n), 1);

        memset(acc, 0, sizeof acc);
        for (guint s = 0; s < N_SYSTEMS; s++)
                if (sessions[s].peer && !sessions[s].broken)
                        bench_samples_init(&acc[s].samples, n);
        for (guint k = 0; k < chunks; k++) {
                guint64 size = n / chunks + (k < n % chunks ? 1 : 0);

                for (guint i = 0; i < N_SYSTEMS; i++) {
                        guint s = (i + k + rep) % N_SYSTEMS;

                        if (!sessions[s].peer || sessions[s].broken || acc[s].error)
                                continue;
                        if (!measure_chunk(&sessions[s], window, size, &acc[s])) {
                                sessions[s].broken = TRUE;
                                b->failed = TRUE;
                        }
                }
        }
        for (guint s = 0; s < N_SYSTEMS; s++) {
                RpcResult r;
                double v = NAN, p99 = NAN;

                if (!b->systems[s])
                        continue;
                if (acc[s].samples.ns) {
                        accum_to_result(&sessions[s], window, n, &acc[s], &r);
                        bench_samples_clear(&acc[s].samples);
                        g_free(acc[s].error);
                        log_run(b, bench_rpc_system_names[s], rep, &r);
                        if (r.ok) {
                                v = by_rate ? r.rate : r.p50_ns / 1e3;
                                p99 = r.p99_ns / 1e3;
                        }
                        keep_best(&best[s], &r, by_rate);
                }
                g_array_append_val(figure[s], v);
                if (p99_us)
                        g_array_append_val(p99_us[s], p99);
        }
}

static void session_start(BenchRpc *b, guint sys_id, Session *s)
{
        g_autoptr(GError) error = NULL;
        RpcResult r = {.ran = TRUE};

        s->b = b;
        s->sys = b->systems[sys_id];
        s->peer = s->sys->start(&b->opts, &error);
        if (!s->peer) {
                r.error = g_strdup_printf("start: %s", error->message);
        } else if (b->bg_rate > 0) {
                s->bg = bench_background_start(s->sys->events, s->sys->server(s->peer), &b->opts.events,
                                               b->bg_rate, &error);
                if (!s->bg) {
                        r.error = g_strdup_printf("background traffic: %s", error->message);
                        s->sys->stop(g_steal_pointer(&s->peer));
                } else {
                        measure_baseline(s);
                        bench_background_set_paused(s->bg, TRUE);
                }
        }
        if (!s->peer) {
                g_printerr("bench-rpc: %s: %s\n", s->sys->name, r.error);
                keep_best(&b->seq[sys_id], &r, FALSE);
                b->failed = TRUE;
        }
}

static void session_stop(BenchRpc *b, guint sys_id, guint rep, Session *s)
{
        g_autoptr(GError) error = NULL;
        guint64 lost = 0;

        if (!s->peer)
                return;
        if (s->broken)
                g_printerr("bench-rpc: %s run %u: a call failed; the remaining scenarios of this run were "
                           "skipped\n",
                           s->sys->name, rep + 1);
        if (s->bg && (!bench_background_stop(s->bg, &lost, &error) || lost > 0)) {
                b->failed = TRUE;
                if (!b->bg_problem[sys_id])
                        b->bg_problem[sys_id] = error ? g_strdup(error->message)
                                                      : g_strdup_printf("run %u: %" G_GUINT64_FORMAT
                                                                        " background messages lost, "
                                                                        "duplicated or reordered",
                                                                        rep + 1, lost);
        }
        s->sys->stop(s->peer);
}

/* One round: every system started fresh, every scenario, everything stopped. */
static void run_round(BenchRpc *b, guint rep)
{
        Session sessions[N_SYSTEMS];

        memset(sessions, 0, sizeof sessions);
        if (b->verbose)
                g_printerr("bench-rpc: run %u…\n", rep + 1);
        for (guint s = 0; s < N_SYSTEMS; s++)
                if (b->systems[s])
                        session_start(b, s, &sessions[s]);
        run_scenario(b, sessions, rep, 1, b->calls, b->seq, b->seq_p50_us, b->seq_p99_us, FALSE);
        for (guint w = 0; w < b->n_windows; w++)
                run_scenario(b, sessions, rep, b->windows[w], b->pipelined_calls, b->pipe[w],
                             b->pipe_rate[w], NULL, TRUE);
        for (guint s = 0; s < N_SYSTEMS; s++)
                session_stop(b, s, rep, &sessions[s]);
}

/* ---- main ---------------------------------------------------------------------- */

/* Servers live in sbin on Debian, often not on a user's PATH. */
static char *find_server(const char *name)
{
        static const char *const dirs[] = {"/usr/sbin", "/usr/local/sbin"};
        char *found = g_find_program_in_path(name);

        for (guint i = 0; !found && i < G_N_ELEMENTS(dirs); i++) {
                found = g_build_filename(dirs[i], name, NULL);
                if (!g_file_test(found, G_FILE_TEST_IS_EXECUTABLE))
                        g_clear_pointer(&found, g_free);
        }
        return found;
}

static gboolean parse_windows(BenchRpc *b, const char *arg, GError **error)
{
        g_auto(GStrv) items = g_strsplit(arg, ",", -1);

        b->n_windows = 0;
        for (char **it = items; *it; it++) {
                guint64 w;

                if (b->n_windows == MAX_WINDOWS ||
                    !g_ascii_string_to_unsigned(g_strstrip(*it), 10, 2, 1000, &w, NULL)) {
                        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                                    "--windows %s: up to %d numbers in 2..1000 (the agent's "
                                    "rpc.max_pending_requests is 1000)",
                                    arg, MAX_WINDOWS);
                        return FALSE;
                }
                b->windows[b->n_windows++] = (guint)w;
        }
        return b->n_windows > 0;
}

int main(int argc, char **argv)
{
        static BenchRpc bench;
        BenchRpc *b = &bench;
        g_autoptr(GOptionContext) octx = NULL;
        g_autoptr(GError) error = NULL;
        gboolean quick = FALSE;
        gint64 calls = 0, pipelined = 0, warmup = -1;
        gint repeat = 1, bg_rate = 10000, timeout_ms = 5000, chunks = 0;
        g_autofree char *only = NULL, *windows = NULL;
        g_autofree char *agent = NULL, *collector = NULL, *mosq = NULL;
        gboolean selected[N_SYSTEMS] = {TRUE, TRUE};
        GOptionEntry entries[] = {
                {"calls", 'n', 0, G_OPTION_ARG_INT64, &calls, "Calls in (1) (default 20000)", "N"},
                {"pipelined-calls", 0, 0, G_OPTION_ARG_INT64, &pipelined,
                 "Calls per window in (2) (default 100000)", "N"},
                {"chunks", 0, 0, G_OPTION_ARG_INT, &chunks,
                 "Turns per system and scenario, systems alternating (default 10)", "K"},
                {"warmup", 0, 0, G_OPTION_ARG_INT64, &warmup,
                 "Calls before each turn, not counted (default 200)", "N"},
                {"windows", 0, 0, G_OPTION_ARG_STRING, &windows, "Calls outstanding in (2) (default 64,256)",
                 "LIST"},
                {"background-rate", 0, 0, G_OPTION_ARG_INT, &bg_rate,
                 "Event traffic, msgs/s; 0: none (10000)", "R"},
                {"timeout-ms", 0, 0, G_OPTION_ARG_INT, &timeout_ms, "Deadline of one call (5000)", "MS"},
                {"only", 0, 0, G_OPTION_ARG_STRING, &only, "Systems to run: daemoneye,mosquitto", "LIST"},
                {"quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Small counts (smoke test)", NULL},
                {"repeat", 'r', 0, G_OPTION_ARG_INT, &repeat,
                 "Run everything N times, fresh servers each time; report the best run (1)", "N"},
                {"agent", 0, 0, G_OPTION_ARG_FILENAME, &agent, "daemoneye-agent (default $DAEMONEYE_AGENT)",
                 "PATH"},
                {"test-collector", 0, 0, G_OPTION_ARG_FILENAME, &collector,
                 "daemoneye-test-collector (default $DAEMONEYE_TEST_COLLECTOR)", "PATH"},
                {"mosquitto", 0, 0, G_OPTION_ARG_FILENAME, &mosq, "mosquitto broker (default: PATH or sbin)",
                 "PATH"},
                {"verbose", 'v', 0, G_OPTION_ARG_NONE, &b->verbose, "Every run on stderr", NULL},
                {NULL},
        };

        setlocale(LC_ALL, "");
        octx = g_option_context_new("- DaemonEye RPC round trips vs Mosquitto request/echo");
        g_option_context_add_main_entries(octx, entries, NULL);
        if (!g_option_context_parse(octx, &argc, &argv, &error) ||
            !parse_windows(b, windows ? windows : "64,256", &error)) {
                g_printerr("bench-rpc: %s\n", error ? error->message : "--windows: empty");
                return 2;
        }
        if (only) {
                g_auto(GStrv) items = g_strsplit(only, ",", -1);

                selected[SYS_DAEMONEYE] = selected[SYS_MOSQUITTO] = FALSE;
                for (char **it = items; *it; it++) {
                        guint s;

                        for (s = 0; s < N_SYSTEMS; s++)
                                if (g_ascii_strcasecmp(g_strstrip(*it), bench_rpc_system_names[s]) == 0)
                                        break;
                        if (s == N_SYSTEMS) {
                                g_printerr("bench-rpc: --only: unknown system '%s'\n", *it);
                                return 2;
                        }
                        selected[s] = TRUE;
                }
        }

        b->calls = calls > 0 ? (guint64)calls : quick ? 300 : 20000;
        b->pipelined_calls = pipelined > 0 ? (guint64)pipelined : quick ? 2000 : 100000;
        b->warmup = warmup >= 0 ? (guint64)warmup : quick ? 20 : 200;
        b->chunks = chunks > 0 ? (guint)chunks : quick ? 2 : 10;
        b->bg_rate = (guint)MAX(bg_rate, 0);
        b->baseline_ms = quick ? 100 : 500;
        b->repeat = (guint)MAX(repeat, 1);
        b->opts.timeout_ms = (guint)MAX(timeout_ms, 1);
        b->opts.collector_path = collector ? collector : g_getenv("DAEMONEYE_TEST_COLLECTOR");
        b->opts.events.agent_path = agent ? agent : g_getenv("DAEMONEYE_AGENT");
        b->opts.events.mosquitto_path = mosq ? mosq : find_server("mosquitto");
        b->opts.events.message_buffer_size = 65536;
        b->opts.events.burst = 1;
        for (guint w = 0; w < b->n_windows; w++)
                b->opts.max_window = MAX(b->opts.max_window, b->windows[w]);
        b->targets = g_string_new(NULL);
        for (guint s = 0; s < N_SYSTEMS; s++) {
                b->seq_p50_us[s] = g_array_new(FALSE, FALSE, sizeof(double));
                b->seq_p99_us[s] = g_array_new(FALSE, FALSE, sizeof(double));
                for (guint w = 0; w < MAX_WINDOWS; w++)
                        b->pipe_rate[w][s] = g_array_new(FALSE, FALSE, sizeof(double));
        }

        b->systems[SYS_DAEMONEYE] = &bench_rpc_daemoneye;
        b->skip_reason[SYS_MOSQUITTO] = "built without libmosquitto";
#ifdef HAVE_MOSQUITTO
        mosquitto_lib_init();
        if (b->opts.events.mosquitto_path &&
            g_file_test(b->opts.events.mosquitto_path, G_FILE_TEST_IS_EXECUTABLE))
                b->systems[SYS_MOSQUITTO] = &bench_rpc_mosquitto;
        else
                b->skip_reason[SYS_MOSQUITTO] = "mosquitto broker not installed";
#endif
        for (guint s = 0; s < N_SYSTEMS; s++)
                if (!selected[s]) {
                        b->systems[s] = NULL;
                        b->skip_reason[s] = "not selected (--only)";
                }

        bench_install_cleanup();
        bench_rpc_print_header(b);
        for (guint rep = 0; rep < b->repeat; rep++)
                run_round(b, rep);
        bench_rpc_report(b);
        for (guint s = 0; s < N_SYSTEMS; s++)
                if (b->bg_problem[s])
                        printf("  %s background traffic: %s\n", bench_rpc_system_names[s], b->bg_problem[s]);

        printf("\nTargets (daemoneye)%s\n%s", quick ? " -- --quick counts are too small to judge them" : "",
               b->targets->str);
        printf("\n%s\n", b->failed ? "RESULT: some runs FAILED (see above)"
                                   : "RESULT: every call succeeded; no background message lost");

        for (guint s = 0; s < N_SYSTEMS; s++) {
                rpc_result_clear(&b->seq[s]);
                g_array_unref(b->seq_p50_us[s]);
                g_array_unref(b->seq_p99_us[s]);
                for (guint w = 0; w < MAX_WINDOWS; w++) {
                        rpc_result_clear(&b->pipe[w][s]);
                        g_array_unref(b->pipe_rate[w][s]);
                }
                g_free(b->bg_problem[s]);
        }
        g_string_free(b->targets, TRUE);
#ifdef HAVE_MOSQUITTO
        mosquitto_lib_cleanup();
#endif
        return b->failed ? 1 : 0;
}
