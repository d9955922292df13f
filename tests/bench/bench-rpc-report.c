/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The report of bench-rpc: the tables of (1) and (2), the ratios against
 * Mosquitto, and the targets, met or not.
 */
#include "bench-rpc-report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

const char *const bench_rpc_system_names[N_SYSTEMS] = {"daemoneye", "mosquitto"};

const char *bench_rpc_format_count(char *buf, gsize size, double v)
{
        guint64 n;
        char tmp[32];
        gsize len, out = 0;

        if (isnan(v) || v < 0 || v > 1e18) {
                g_strlcpy(buf, "n/a", size);
                return buf;
        }
        n = (guint64)(v + 0.5);

        g_snprintf(tmp, sizeof tmp, "%" G_GUINT64_FORMAT, n);
        len = strlen(tmp);
        for (gsize i = 0; i < len && out + 2 < size; i++) {
                if (i > 0 && (len - i) % 3 == 0)
                        buf[out++] = ',';
                buf[out++] = tmp[i];
        }
        buf[out] = '\0';
        return buf;
}

/* ---- runs and their ratios ------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

/* Returns: the median of the values that are not NAN; NAN when there is none. */
static double median(const GArray *v)
{
        g_autofree double *x = g_new(double, MAX(v->len, 1));
        guint n = 0;

        for (guint i = 0; i < v->len; i++)
                if (!isnan(g_array_index(v, double, i)))
                        x[n++] = g_array_index(v, double, i);
        if (n == 0)
                return NAN;
        qsort(x, n, sizeof x[0], cmp_double);
        return n % 2 ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;
}

/* Returns: (transfer full) @num[i] / @den[i] per run, NAN where either is missing. */
static GArray *ratios(const GArray *num, const GArray *den)
{
        GArray *r = g_array_new(FALSE, FALSE, sizeof(double));

        for (guint i = 0; i < MIN(num->len, den->len); i++) {
                double a = g_array_index(num, double, i), b = g_array_index(den, double, i);
                double q = isnan(a) || isnan(b) || b <= 0 ? NAN : a / b;

                g_array_append_val(r, q);
        }
        return r;
}

/* "a / b / failed" */
static char *format_runs(const GArray *v, int decimals, gboolean count)
{
        GString *s = g_string_new(NULL);

        for (guint i = 0; i < v->len; i++) {
                double x = g_array_index(v, double, i);
                char buf[32];

                if (i > 0)
                        g_string_append(s, " / ");
                if (isnan(x))
                        g_string_append(s, "failed");
                else if (count)
                        g_string_append(s, bench_rpc_format_count(buf, sizeof buf, x));
                else
                        g_string_append_printf(s, "%.*f", decimals, x);
        }
        return g_string_free(s, FALSE);
}

/* One line: label, every run's value, their median, and the target when there is one. */
static void print_runs_line(const char *label, const GArray *v, int decimals, gboolean count,
                            const char *target_text, gboolean met)
{
        g_autofree char *runs = format_runs(v, decimals, count);
        double m = median(v);
        char buf[32];

        printf("  %-36s %s", label, runs);
        if (v->len > 1 && !isnan(m)) {
                if (count)
                        printf("; median %s", bench_rpc_format_count(buf, sizeof buf, m));
                else
                        printf("; median %.*f", decimals, m);
        }
        if (target_text)
                printf("   %s: %s", target_text, isnan(m) ? "n/a" : met ? "met" : "NOT met");
        printf("\n");
}

static void target_line(BenchRpc *b, const char *text, double value, gboolean met, const char *fmt_value)
{
        if (isnan(value))
                g_string_append_printf(b->targets, "  %-44s n/a (not measured)\n", text);
        else
                g_string_append_printf(b->targets, "  %-44s %-8s (%s)\n", text, met ? "met" : "NOT met",
                                       fmt_value);
}

/* ---- tables ------------------------------------------------------------------------ */

static void print_cpu(const RpcResult *r)
{
        printf(" %7.2f %7.2f %7.2f", r->srv_cpu_us, r->resp_cpu_us, r->req_cpu_us);
}

static void report_sequential(BenchRpc *b)
{
        const RpcResult *d = &b->seq[SYS_DAEMONEYE];
        g_autoptr(GArray) p50_ratio = ratios(b->seq_p50_us[SYS_DAEMONEYE], b->seq_p50_us[SYS_MOSQUITTO]);
        g_autoptr(GArray) p99_ratio = ratios(b->seq_p99_us[SYS_DAEMONEYE], b->seq_p99_us[SYS_MOSQUITTO]);
        double p50_med = median(p50_ratio), p99_med = median(b->seq_p99_us[SYS_DAEMONEYE]);
        char n1[32], n2[32], value[64];

        printf("\n(1) sequential round trips (one call outstanding), %s calls, background %s msgs/s; µs, "
               "best of %u run%s (lowest p99)\n",
               bench_rpc_format_count(n1, sizeof n1, (double)b->calls),
               bench_rpc_format_count(n2, sizeof n2, b->bg_rate), b->repeat, b->repeat == 1 ? "" : "s");
        printf("  %-10s %8s %8s %8s %8s %9s %10s %7s %7s %7s  %s\n", "system", "p50", "p90", "p99", "max",
               "calls/s", "bg msgs/s", "srv CPU", "rsp CPU", "req CPU", "status");
        for (guint s = 0; s < N_SYSTEMS; s++) {
                const RpcResult *r = &b->seq[s];
                char rate[32], bg[32];

                if (!b->systems[s]) {
                        printf("  %-10s %8s   %s\n", bench_rpc_system_names[s], "skipped",
                               b->skip_reason[s]);
                        continue;
                }
                if (!r->ran || r->calls == 0) {
                        printf("  %-10s %8s   %s\n", bench_rpc_system_names[s], "FAILED",
                               r->error ? r->error : "not run");
                        continue;
                }
                printf("  %-10s %8.1f %8.1f %8.1f %8.1f %9s %10s", bench_rpc_system_names[s],
                       r->p50_ns / 1e3, r->p90_ns / 1e3, r->p99_ns / 1e3, r->max_ns / 1e3,
                       bench_rpc_format_count(rate, sizeof rate, r->rate),
                       bench_rpc_format_count(bg, sizeof bg, r->bg_rate));
                print_cpu(r);
                printf("  %s\n", r->ok ? "ok" : r->error);
        }
        printf("  each run (systems interleaved within a run):\n");
        for (guint s = 0; s < N_SYSTEMS; s++)
                if (b->systems[s]) {
                        g_autofree char *label = g_strdup_printf("%s p50 µs", bench_rpc_system_names[s]);

                        print_runs_line(label, b->seq_p50_us[s], 1, FALSE, NULL, FALSE);
                }
        print_runs_line("p50 daemoneye/mosquitto", p50_ratio, 2, FALSE, "target <= 0.50", p50_med <= 0.5);
        print_runs_line("p99 daemoneye/mosquitto", p99_ratio, 2, FALSE, NULL, FALSE);
        print_runs_line("daemoneye p99 µs", b->seq_p99_us[SYS_DAEMONEYE], 1, FALSE, "target < 1000 µs",
                        p99_med < 1000);
        if (d->ok && d->bytes_out > 0)
                printf("  daemoneye requester connection: %.0f bytes out, %.0f bytes in per call "
                       "(framed envelopes; mosquitto: 64-byte payloads each way)\n",
                       d->bytes_out, d->bytes_in);

        g_snprintf(value, sizeof value, "median of %u run%s: %.2f", p50_ratio->len,
                   p50_ratio->len == 1 ? "" : "s", p50_med);
        target_line(b, "(1) p50 <= 0.5 x mosquitto's, same run", p50_med, p50_med <= 0.5, value);
        g_snprintf(value, sizeof value, "median of %u run%s: %.1f µs", b->seq_p99_us[SYS_DAEMONEYE]->len,
                   b->seq_p99_us[SYS_DAEMONEYE]->len == 1 ? "" : "s", p99_med);
        target_line(b, "(1) p99 < 1 ms", p99_med, p99_med < 1000, value);
}

static void report_pipelined(BenchRpc *b)
{
        g_autoptr(GArray) best_rate = g_array_new(FALSE, FALSE, sizeof(double));
        char n1[32], n2[32], value[96], rate[32];
        double best_med;

        printf("\n(2) pipelined calls from one client, %s calls per window, background %s msgs/s; "
               "best of %u run%s (highest calls/s)\n",
               bench_rpc_format_count(n1, sizeof n1, (double)b->pipelined_calls),
               bench_rpc_format_count(n2, sizeof n2, b->bg_rate), b->repeat, b->repeat == 1 ? "" : "s");
        printf("  %-10s %6s %9s %8s %8s %10s %7s %7s %7s  %s\n", "system", "window", "calls/s", "p50 µs",
               "p99 µs", "bg msgs/s", "srv CPU", "rsp CPU", "req CPU", "status");
        for (guint s = 0; s < N_SYSTEMS; s++)
                for (guint w = 0; w < b->n_windows; w++) {
                        const RpcResult *r = &b->pipe[w][s];
                        char bg[32];

                        if (!b->systems[s]) {
                                if (w == 0)
                                        printf("  %-10s %6s   skipped: %s\n", bench_rpc_system_names[s], "",
                                               b->skip_reason[s]);
                                continue;
                        }
                        if (!r->ran || r->calls == 0) {
                                printf("  %-10s %6u %9s   %s\n", bench_rpc_system_names[s], b->windows[w],
                                       "FAILED", r->error ? r->error : "not run");
                                continue;
                        }
                        printf("  %-10s %6u %9s %8.1f %8.1f %10s", bench_rpc_system_names[s], b->windows[w],
                               bench_rpc_format_count(rate, sizeof rate, r->rate), r->p50_ns / 1e3,
                               r->p99_ns / 1e3, bench_rpc_format_count(bg, sizeof bg, r->bg_rate));
                        print_cpu(r);
                        printf("  %s\n", r->ok ? "ok" : r->error);
                }

        printf("  each run (systems interleaved within a run):\n");
        for (guint w = 0; w < b->n_windows; w++) {
                g_autoptr(GArray) q = ratios(b->pipe_rate[w][SYS_DAEMONEYE], b->pipe_rate[w][SYS_MOSQUITTO]);
                char label[64];

                for (guint s = 0; s < N_SYSTEMS; s++)
                        if (b->systems[s]) {
                                g_snprintf(label, sizeof label, "%s calls/s, window %u",
                                           bench_rpc_system_names[s], b->windows[w]);
                                print_runs_line(label, b->pipe_rate[w][s], 0, TRUE, NULL, FALSE);
                        }
                g_snprintf(label, sizeof label, "calls/s daemoneye/mosq., window %u", b->windows[w]);
                print_runs_line(label, q, 2, FALSE, NULL, FALSE);
        }
        /* the target: daemoneye's best window in each run */
        for (guint i = 0; i < b->pipe_rate[0][SYS_DAEMONEYE]->len; i++) {
                double best = NAN;

                for (guint w = 0; w < b->n_windows; w++) {
                        double x = g_array_index(b->pipe_rate[w][SYS_DAEMONEYE], double, i);

                        if (!isnan(x) && (isnan(best) || x > best))
                                best = x;
                }
                g_array_append_val(best_rate, best);
        }
        best_med = median(best_rate);
        print_runs_line("daemoneye calls/s, best window", best_rate, 0, TRUE, "target >= 20,000",
                        best_med >= 20000);
        g_snprintf(value, sizeof value, "median of %u run%s: %s calls/s", best_rate->len,
                   best_rate->len == 1 ? "" : "s", bench_rpc_format_count(rate, sizeof rate, best_med));
        target_line(b, "(2) >= 20,000 calls/s from one client", best_med, best_med >= 20000, value);
}

void bench_rpc_print_header(BenchRpc *b)
{
        struct utsname u;
        g_autofree char *loadavg = NULL;
        char n1[32];

        uname(&u);
        g_file_get_contents("/proc/loadavg", &loadavg, NULL, NULL);
        printf("DaemonEye RPC benchmark: HealthCheck round trips through the broker beside Mosquitto "
               "request/echo, %u run%s\n",
               b->repeat, b->repeat == 1 ? "" : "s");
        printf("background: %s msgs/s of %u-byte events, 1 publisher thread -> 1 subscriber thread through "
               "the same broker, during every measurement\n",
               bench_rpc_format_count(n1, sizeof n1, b->bg_rate), BENCH_PAYLOAD_SIZE);
        printf("interleaving: each scenario in %u turns per system, the systems alternating, "
               "%" G_GUINT64_FORMAT
               " warm-up calls before each turn; only the measured system's background runs\n",
               b->chunks, b->warmup);
        printf("columns: latency from the call to its reply callback (CLOCK_MONOTONIC); CPU in µs per call: "
               "srv = server minus the background's share (measured alone for %" G_GUINT64_FORMAT
               " ms), rsp = responder, req = requester thread\n",
               b->baseline_ms);
        printf("machine: %ld CPUs, %s %s, load average %s", sysconf(_SC_NPROCESSORS_ONLN), u.sysname,
               u.release, loadavg ? loadavg : "?\n");
        for (guint s = 0; s < N_SYSTEMS; s++) {
                if (b->systems[s])
                        printf("  %-10s %s\n", bench_rpc_system_names[s], b->systems[s]->description);
                else
                        printf("  %-10s skipped: %s\n", bench_rpc_system_names[s], b->skip_reason[s]);
        }
        fflush(stdout);
}

void bench_rpc_report(BenchRpc *b)
{
        report_sequential(b);
        report_pipelined(b);
}
