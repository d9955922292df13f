/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-eventbus: the DaemonEye broker beside the raw socket floor,
 * Mosquitto and NATS, measured in the same run with the same harness
 * (see README.md). Exits non-zero when any run it attempted failed or lost,
 * duplicated or reordered a message; missed performance targets are
 * reported, not fatal.
 */
#include "bench-system.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifdef HAVE_MOSQUITTO
#include <mosquitto.h>
#endif
#ifdef HAVE_NATS
#include <nats/nats.h>
#endif

enum { SYS_DAEMONEYE, SYS_RAW, SYS_MOSQUITTO, SYS_NATS, N_SYSTEMS };
enum { SC_A, SC_B, SC_C, SC_D, N_SCENARIOS };

static const char *const system_names[N_SYSTEMS] = {"daemoneye", "raw", "mosquitto", "nats"};

typedef struct {
        BenchOptions opts;
        const BenchSystem *systems[N_SYSTEMS]; /* NULL: not built or not selected */
        const char *skip_reason[N_SYSTEMS];
        gboolean scenario[N_SCENARIOS];
        gboolean rss;
        guint64 messages;
        guint64 fanout_messages;
        guint fanout_subs;
        guint64 window;
        guint idle_subscriptions;
        guint latency_rate;
        guint64 latency_messages;
        guint load_seconds;
        guint stall_ms;
        guint repeat; /* best of this many runs */
        BenchResult results[N_SCENARIOS][N_SYSTEMS];
        BenchResult idle_rss[N_SYSTEMS];
        BenchLoadResult load_all, load_spread;
        gboolean failed;
        GString *targets; /* summary lines */
} Bench;

/* ---- formatting ------------------------------------------------------------ */

static const char *fmt_count(char *buf, gsize size, double v)
{
        /* thousands separators via the C locale's ' flag would need a locale */
        guint64 n = (guint64)(v + 0.5);
        char tmp[32];
        gsize len, out = 0;

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

static void print_ratio(const char *label, double num, double den, double target, gboolean have_target,
                        Bench *b, const char *target_text)
{
        if (num <= 0 || den <= 0) {
                printf("  %-24s %8s\n", label, "n/a");
                if (have_target)
                        g_string_append_printf(b->targets, "  %-44s n/a (not measured)\n", target_text);
                return;
        }
        if (have_target) {
                gboolean met = num / den >= target;

                printf("  %-24s %8.2f   target >= %.2f: %s\n", label, num / den, target,
                       met ? "met" : "NOT met");
                g_string_append_printf(b->targets, "  %-44s %-8s (%.2f)\n", target_text,
                                       met ? "met" : "NOT met", num / den);
        } else {
                printf("  %-24s %8.2f\n", label, num / den);
        }
}

static void print_throughput_row(const char *name, const BenchResult *r, double extra, gboolean show_extra)
{
        char rate[32], del[32], exp_[32], srv[16];

        if (!r->ran) {
                printf("  %-10s %14s   %s\n", name, "FAILED", r->error ? r->error : "");
                return;
        }
        if (r->server_cpu_us > 0)
                g_snprintf(srv, sizeof srv, "%.2f", r->server_cpu_us);
        else
                g_strlcpy(srv, "-", sizeof srv);
        printf("  %-10s %14s %9.3f %13s/%-13s %8s %8.2f", name,
               r->valid ? fmt_count(rate, sizeof rate, r->rate) : "INVALID", r->seconds,
               fmt_count(del, sizeof del, (double)r->delivered),
               fmt_count(exp_, sizeof exp_, (double)r->expected), srv, r->client_cpu_us);
        if (show_extra)
                printf(" %8.2f", extra);
        printf("  %s\n", r->valid ? "ok" : (r->error ? r->error : "invalid"));
}

/* ---- scenarios ------------------------------------------------------------- */

/*
 * One run of a scenario on one system into @r. With --repeat the caller
 * keeps the best valid run of each system (runs of all systems interleaved,
 * so each sees the same background); a failed or invalid run always wins,
 * since it makes the whole benchmark fail.
 */
static void run_one(Bench *b, guint sc_id, guint sys_id, const BenchScenario *sc, guint rep)
{
        BenchResult *best = &b->results[sc_id][sys_id];
        const BenchSystem *sys = b->systems[sys_id];
        BenchResult r = {0};

        if (!sys || (rep > 0 && best->ran && !best->valid))
                return;
        if (b->opts.verbose)
                g_printerr("bench: scenario %c, %s, run %u…\n", 'a' + sc_id, sys->name, rep + 1);
        if (!bench_scenario_run(sys, &b->opts, sc, &r)) {
                b->failed = TRUE;
                g_printerr("bench: scenario (%c) %s: %s\n", 'a' + sc_id, sys->name,
                           r.error ? r.error : "failed");
        }
        if (b->opts.verbose)
                g_printerr("bench: scenario %c, %s: %.0f msgs/s, p99 %.1f µs; CPU µs/msg: server %.3f, "
                           "publisher "
                           "thread %.3f, subscriber threads %.3f; publisher blocked on the window "
                           "%" G_GUINT64_FORMAT " times (%" G_GUINT64_FORMAT
                           " of them over 10 ms); server VmHWM %" G_GUINT64_FORMAT " KiB\n",
                           'a' + sc_id, sys->name, r.rate, r.p99_ns / 1e3, r.server_cpu_us,
                           r.delivered ? r.pub_cpu_ns / 1e3 / (double)r.delivered : 0.0,
                           r.delivered ? r.sub_cpu_ns / 1e3 / (double)r.delivered : 0.0, r.window_waits,
                           r.window_timeouts, r.hwm_kib);
        if (rep == 0 || !r.valid || (sc->rate_per_s > 0 ? r.p99_ns < best->p99_ns : r.rate > best->rate)) {
                bench_result_clear(best);
                *best = r;
        } else {
                bench_result_clear(&r);
        }
}

static void run_throughput(Bench *b, guint sc_id)
{
        BenchScenario sc = {
                .n_subs = sc_id == SC_B ? b->fanout_subs : 1,
                .n_messages = sc_id == SC_B ? b->fanout_messages : b->messages,
                .window = b->window,
                .n_idle_patterns = sc_id == SC_C ? b->idle_subscriptions : 0,
                .stall_ms = b->stall_ms,
        };

        for (guint rep = 0; rep < b->repeat; rep++)
                for (guint s = 0; s < N_SYSTEMS; s++) {
                        /* no subscriptions without a broker: (c) equals (a) for the floor */
                        if (sc_id == SC_C && s == SYS_RAW)
                                continue;
                        run_one(b, sc_id, s, &sc, rep);
                }
}

static void report_throughput(Bench *b, guint sc_id)
{
        BenchResult *res = b->results[sc_id];
        BenchResult *a = b->results[SC_A];
        char n1[32], n2[32];
        const BenchResult *d = &res[SYS_DAEMONEYE];

        switch (sc_id) {
        case SC_A:
                printf("\n(a) 1 publisher -> 1 subscriber: delivered msgs/s, %s messages, window %s\n",
                       fmt_count(n1, sizeof n1, (double)b->messages),
                       fmt_count(n2, sizeof n2, (double)b->window));
                break;
        case SC_B:
                printf("\n(b) 1 publisher -> %u subscribers: delivered msgs/s summed over subscribers, "
                       "%s messages published, window on the slowest\n",
                       b->fanout_subs, fmt_count(n1, sizeof n1, (double)b->fanout_messages));
                break;
        case SC_C:
                printf("\n(c) as (a) with %s non-matching subscriptions on one extra connection\n",
                       fmt_count(n1, sizeof n1, (double)b->idle_subscriptions));
                break;
        }
        printf("  %-10s %14s %9s %27s %8s %8s%s  %s\n", "system", "msgs/s", "seconds", "delivered/expected",
               "srv CPU", "cli CPU", sc_id == SC_C ? "  (c)/(a)" : "", "status");
        for (guint s = 0; s < N_SYSTEMS; s++) {
                double ca = 0;

                if (sc_id == SC_C && s == SYS_RAW)
                        continue;
                if (!b->systems[s]) {
                        printf("  %-10s %14s   %s\n", system_names[s], "skipped", b->skip_reason[s]);
                        continue;
                }
                if (sc_id == SC_C && res[s].valid && a[s].valid)
                        ca = res[s].rate / a[s].rate;
                print_throughput_row(system_names[s], &res[s], ca, sc_id == SC_C);
        }

        {
                double dv = d->valid ? d->rate : 0;
                double raw = res[SYS_RAW].valid ? res[SYS_RAW].rate : 0;
                double mq = res[SYS_MOSQUITTO].valid ? res[SYS_MOSQUITTO].rate : 0;
                double nt = res[SYS_NATS].valid ? res[SYS_NATS].rate : 0;

                if (sc_id == SC_A) {
                        print_ratio("daemoneye/mosquitto", dv, mq, 10.0, TRUE, b,
                                    "(a) daemoneye >= 10x mosquitto");
                        print_ratio("daemoneye/nats", dv, nt, 1.0, TRUE, b, "(a) daemoneye >= nats");
                        print_ratio("daemoneye/raw", dv, raw, 0, FALSE, b, NULL);
                } else if (sc_id == SC_B) {
                        print_ratio("daemoneye/mosquitto", dv, mq, 0, FALSE, b, NULL);
                        print_ratio("daemoneye/nats", dv, nt, 0, FALSE, b, NULL);
                        print_ratio("daemoneye/raw", dv, raw, 0, FALSE, b, NULL);
                } else {
                        double da = a[SYS_DAEMONEYE].valid ? a[SYS_DAEMONEYE].rate : 0;

                        print_ratio("daemoneye/mosquitto", dv, mq, 0, FALSE, b, NULL);
                        print_ratio("daemoneye/nats", dv, nt, 0, FALSE, b, NULL);
                        print_ratio("daemoneye (c)/(a)", dv, da, 0.90, TRUE, b,
                                    "(c)/(a) daemoneye within 10%");
                        /* CPU per message does not depend on what else the machine runs */
                        if (d->server_cpu_us > 0 && a[SYS_DAEMONEYE].server_cpu_us > 0)
                                printf("  %-24s %8.2f   (agent CPU per message, (c) over (a); 1.00 = no "
                                       "cost)\n",
                                       "daemoneye CPU (c)/(a)",
                                       d->server_cpu_us / a[SYS_DAEMONEYE].server_cpu_us);
                }
        }
}

static void run_latency(Bench *b)
{
        BenchScenario sc = {
                .n_subs = 1,
                .n_messages = b->latency_messages,
                .window = b->window,
                .rate_per_s = b->latency_rate,
                .stall_ms = b->stall_ms,
        };

        for (guint rep = 0; rep < b->repeat; rep++)
                for (guint s = 0; s < N_SYSTEMS; s++)
                        run_one(b, SC_D, s, &sc, rep);
}

static void report_latency(Bench *b)
{
        BenchResult *res = b->results[SC_D];
        char n1[32], n2[32];

        printf("\n(d) publish->deliver latency, paced at %s msgs/s, %s messages (µs, CLOCK_MONOTONIC)\n",
               fmt_count(n1, sizeof n1, b->latency_rate),
               fmt_count(n2, sizeof n2, (double)b->latency_messages));
        printf("  %-10s %9s %9s %9s %9s %9s  %s\n", "system", "p50", "p90", "p99", "p99.9", "max", "status");
        for (guint s = 0; s < N_SYSTEMS; s++) {
                const BenchResult *r = &res[s];

                if (!b->systems[s]) {
                        printf("  %-10s %9s   %s\n", system_names[s], "skipped", b->skip_reason[s]);
                        continue;
                }
                if (!r->ran) {
                        printf("  %-10s %9s   %s\n", system_names[s], "FAILED", r->error ? r->error : "");
                        continue;
                }
                printf("  %-10s %9.1f %9.1f %9.1f %9.1f %9.1f  %s\n", system_names[s], r->p50_ns / 1e3,
                       r->p90_ns / 1e3, r->p99_ns / 1e3, r->p999_ns / 1e3, r->max_ns / 1e3,
                       r->valid ? "ok" : (r->error ? r->error : "invalid"));
        }
        {
                const BenchResult *d = &res[SYS_DAEMONEYE];
                double dp99 = d->valid ? (double)d->p99_ns : 0;

                /* lower is better: print X/daemoneye so > 1 means we are faster */
                for (guint s = SYS_RAW; s < N_SYSTEMS; s++) {
                        char label[48];

                        g_snprintf(label, sizeof label, "p99 daemoneye/%s", system_names[s]);
                        print_ratio(label, dp99, res[s].valid ? (double)res[s].p99_ns : 0, 0, FALSE, b,
                                    NULL);
                }
                if (d->valid) {
                        gboolean met = d->p99_ns < 1000000;

                        printf("  %-24s %8.1f µs target < 1000 µs: %s\n", "daemoneye p99", d->p99_ns / 1e3,
                               met ? "met" : "NOT met");
                        g_string_append_printf(b->targets, "  %-44s %-8s (%.1f µs)\n",
                                               "(d) daemoneye p99 < 1 ms", met ? "met" : "NOT met",
                                               d->p99_ns / 1e3);
                } else {
                        g_string_append_printf(b->targets, "  %-44s n/a (not measured)\n",
                                               "(d) daemoneye p99 < 1 ms");
                }
        }
}

static void run_rss(Bench *b)
{
        for (guint s = 0; s < N_SYSTEMS; s++)
                if (b->systems[s] && b->systems[s]->server_pid &&
                    !bench_idle_rss(b->systems[s], &b->opts, &b->idle_rss[s])) {
                        b->failed = TRUE;
                        g_printerr("bench: idle RSS %s: %s\n", system_names[s],
                                   b->idle_rss[s].error ? b->idle_rss[s].error : "failed");
                }
        if (b->systems[SYS_DAEMONEYE]) {
                BenchLoad all = {.n_clients = 100, .rate_per_s = 10000, .seconds = b->load_seconds};
                BenchLoad spread = all;

                spread.spread = TRUE;
                if (!bench_daemoneye_load(&b->opts, &spread, &b->load_spread) ||
                    !bench_daemoneye_load(&b->opts, &all, &b->load_all)) {
                        b->failed = TRUE;
                        g_printerr("bench: load RSS: %s\n",
                                   b->load_spread.error ? b->load_spread.error : b->load_all.error);
                }
        }
}

static void report_load_row(Bench *b, const char *label, const BenchLoadResult *r)
{
        char n1[32], n2[32];
        gboolean met;

        if (!r->ran) {
                printf("  %-38s FAILED %s\n", label, r->error ? r->error : "");
                g_string_append_printf(b->targets, "  %-44s n/a (not measured)\n",
                                       "RSS daemoneye < 32 MiB at load");
                return;
        }
        met = r->max_rss_kib > 0 && r->max_rss_kib < 32 * 1024;
        printf("  %-38s %8.1f %8.1f   %s/%s delivered in %.1f s  target < 32 MiB: %s\n", label,
               r->max_rss_kib / 1024.0, r->hwm_kib / 1024.0, fmt_count(n1, sizeof n1, (double)r->delivered),
               fmt_count(n2, sizeof n2, (double)r->expected), r->seconds, met ? "met" : "NOT met");
        g_string_append_printf(b->targets, "  %-44s %-8s (%.1f MiB, %s)\n", "RSS daemoneye < 32 MiB at load",
                               met ? "met" : "NOT met", r->max_rss_kib / 1024.0, label);
}

static void report_rss(Bench *b)
{
        printf("\nServer memory (VmRSS, MiB), idle = 0.5 s after it accepts connections\n");
        for (guint s = 0; s < N_SYSTEMS; s++) {
                const BenchResult *r = &b->idle_rss[s];

                if (!b->systems[s] || !b->systems[s]->server_pid)
                        continue;
                if (!r->valid) {
                        printf("  %-38s FAILED %s\n", system_names[s], r->error ? r->error : "");
                        continue;
                }
                if (s == SYS_DAEMONEYE) {
                        gboolean met = r->rss_kib < 8 * 1024;

                        printf("  %-38s %8.1f            target < 8 MiB: %s\n", "daemoneye idle",
                               r->rss_kib / 1024.0, met ? "met" : "NOT met");
                        g_string_append_printf(b->targets, "  %-44s %-8s (%.1f MiB)\n",
                                               "RSS daemoneye idle < 8 MiB", met ? "met" : "NOT met",
                                               r->rss_kib / 1024.0);
                } else {
                        g_autofree char *label = g_strdup_printf("%s idle", system_names[s]);

                        printf("  %-38s %8.1f\n", label, r->rss_kib / 1024.0);
                }
        }
        if (!b->systems[SYS_DAEMONEYE])
                return;
        printf("  daemoneye, 100 clients (1 publisher at 10,000 msgs/s, 99 subscribers on one thread), %u "
               "s:\n",
               b->load_seconds);
        printf("  %-38s %8s %8s\n", "", "max RSS", "VmHWM");
        report_load_row(b, "spread: each sub 'events.load.<k>'", &b->load_spread);
        report_load_row(b, "all: every sub 'events.load.+'", &b->load_all);
}

/* ---- main ------------------------------------------------------------------ */

static gboolean parse_list(const char *arg, const char *const *names, guint n, gboolean *out,
                           const char *what, GError **error)
{
        g_auto(GStrv) items = g_strsplit(arg, ",", -1);

        for (guint i = 0; i < n; i++)
                out[i] = FALSE;
        for (char **it = items; *it; it++) {
                guint i;

                for (i = 0; i < n; i++)
                        if (g_ascii_strcasecmp(g_strstrip(*it), names[i]) == 0)
                                break;
                if (i == n) {
                        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "unknown %s '%s'", what,
                                    *it);
                        return FALSE;
                }
                out[i] = TRUE;
        }
        return TRUE;
}

/* Servers live in sbin on Debian, often not on a user's PATH. */
static const char *find_server(const char *name)
{
        static const char *const dirs[] = {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"};
        char *found = g_find_program_in_path(name);

        if (found)
                return found; /* leaked once, on purpose: lives for the whole run */
        for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
                char *p = g_build_filename(dirs[i], name, NULL);

                if (g_file_test(p, G_FILE_TEST_IS_EXECUTABLE))
                        return p;
                g_free(p);
        }
        return NULL;
}

static void print_header(Bench *b)
{
        struct utsname u;
        g_autofree char *loadavg = NULL;

        uname(&u);
        g_file_get_contents("/proc/loadavg", &loadavg, NULL, NULL);
        printf("DaemonEye EventBus benchmark: %u-byte payloads, window %" G_GUINT64_FORMAT
               " messages, burst %u, "
               "best of %u run%s per figure\n",
               BENCH_PAYLOAD_SIZE, b->window, b->opts.burst, b->repeat, b->repeat == 1 ? "" : "s");
        printf("columns: srv CPU = server CPU µs per delivered message, cli CPU = this process (all client "
               "threads)\n");
        printf("machine: %ld CPUs, %s %s, load average %s", sysconf(_SC_NPROCESSORS_ONLN), u.sysname,
               u.release, loadavg ? loadavg : "?\n");
        for (guint s = 0; s < N_SYSTEMS; s++) {
                if (b->systems[s])
                        printf("  %-10s %s\n", system_names[s], b->systems[s]->description);
                else
                        printf("  %-10s skipped: %s\n", system_names[s], b->skip_reason[s]);
        }
        printf("  raw records: 4-byte length + %zu bytes (the size of a daemoneye envelope)\n",
               b->opts.raw_record_size);
        fflush(stdout);
}

int main(int argc, char **argv)
{
        static Bench bench;
        Bench *b = &bench;
        g_autoptr(GOptionContext) octx = NULL;
        g_autoptr(GError) error = NULL;
        gboolean quick = FALSE;
        g_autofree char *only = NULL, *scenarios = NULL;
        gint64 messages = 0, fanout_messages = 0;
        gint repeat = 1;
        gint window = 8192, burst = 256, buffer = 0, idle = 10000, lat_rate = 10000, load_seconds = 0;
        gint64 lat_messages = 0;
        g_autofree char *agent = NULL, *mosq = NULL, *nats = NULL;
        GOptionEntry entries[] = {
                {"messages", 'n', 0, G_OPTION_ARG_INT64, &messages,
                 "Messages for (a) and (c) (default 1000000)", "N"},
                {"fanout-messages", 0, 0, G_OPTION_ARG_INT64, &fanout_messages,
                 "Messages published in (b) (default messages/8)", "N"},
                {"only", 0, 0, G_OPTION_ARG_STRING, &only, "Systems to run: daemoneye,raw,mosquitto,nats",
                 "LIST"},
                {"scenario", 0, 0, G_OPTION_ARG_STRING, &scenarios, "Scenarios to run: a,b,c,d,rss", "LIST"},
                {"quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Small counts (smoke test)", NULL},
                {"repeat", 'r', 0, G_OPTION_ARG_INT, &repeat,
                 "Run each scenario N times, systems interleaved; report the best run (1)", "N"},
                {"window", 0, 0, G_OPTION_ARG_INT, &window, "Max messages the publisher is ahead (8192)",
                 "W"},
                {"message-buffer-size", 0, 0, G_OPTION_ARG_INT, &buffer,
                 "daemoneye message_buffer_size (default 8 x window, at least 65536)", "N"},
                {"burst", 0, 0, G_OPTION_ARG_INT, &burst, "Messages published between polls (256)", "B"},
                {"idle-subscriptions", 0, 0, G_OPTION_ARG_INT, &idle, "Non-matching subscriptions in (c)",
                 "N"},
                {"latency-rate", 0, 0, G_OPTION_ARG_INT, &lat_rate, "Paced rate of (d), msgs/s (10000)",
                 "R"},
                {"latency-messages", 0, 0, G_OPTION_ARG_INT64, &lat_messages, "Messages in (d) (50000)",
                 "N"},
                {"load-seconds", 0, 0, G_OPTION_ARG_INT, &load_seconds, "Duration of the RSS load runs (3)",
                 "S"},
                {"agent", 0, 0, G_OPTION_ARG_FILENAME, &agent, "daemoneye-agent (default $DAEMONEYE_AGENT)",
                 "PATH"},
                {"mosquitto", 0, 0, G_OPTION_ARG_FILENAME, &mosq,
                 "mosquitto broker (default: found in PATH or sbin)", "PATH"},
                {"nats-server", 0, 0, G_OPTION_ARG_FILENAME, &nats,
                 "nats-server (default: found in PATH or sbin)", "PATH"},
                {"verbose", 'v', 0, G_OPTION_ARG_NONE, &b->opts.verbose, "Progress on stderr", NULL},
                {NULL},
        };
        gboolean sys_selected[N_SYSTEMS] = {TRUE, TRUE, TRUE, TRUE};
        static const char *const sc_names[] = {"a", "b", "c", "d", "rss"};
        gboolean sc_selected[5] = {TRUE, TRUE, TRUE, TRUE, TRUE};

        setlocale(LC_ALL, "");
        octx = g_option_context_new("- DaemonEye broker vs raw sockets, Mosquitto and NATS");
        g_option_context_add_main_entries(octx, entries, NULL);
        if (!g_option_context_parse(octx, &argc, &argv, &error) ||
            (only && !parse_list(only, system_names, N_SYSTEMS, sys_selected, "system", &error)) ||
            (scenarios && !parse_list(scenarios, sc_names, 5, sc_selected, "scenario", &error))) {
                g_printerr("bench-eventbus: %s\n", error->message);
                return 2;
        }

        b->messages = messages > 0 ? (guint64)messages : quick ? 20000 : 1000000;
        b->fanout_messages = fanout_messages > 0 ? (guint64)fanout_messages : MAX(b->messages / 8, 1);
        b->fanout_subs = 16;
        b->window = (guint64)MAX(window, 2);
        b->idle_subscriptions = (guint)MAX(idle, 0);
        if (quick && idle == 10000)
                b->idle_subscriptions = 1000;
        b->latency_rate = (guint)MAX(lat_rate, 1);
        b->latency_messages = lat_messages > 0 ? (guint64)lat_messages : quick ? 2000 : 50000;
        b->load_seconds = load_seconds > 0 ? (guint)load_seconds : quick ? 1 : 3;
        b->stall_ms = 10000;
        b->repeat = (guint)MAX(repeat, 1);
        b->opts.burst = (guint)MAX(burst, 1);
        b->opts.message_buffer_size =
                buffer > 0 ? (guint)buffer : (guint)CLAMP(8 * b->window, 65536, 10000000);
        b->opts.agent_path = agent ? agent : g_getenv("DAEMONEYE_AGENT");
        b->opts.mosquitto_path = mosq ? mosq : find_server("mosquitto");
        b->opts.nats_server_path = nats ? nats : find_server("nats-server");
        b->opts.raw_record_size = bench_daemoneye_envelope_size();
        for (guint i = 0; i < N_SCENARIOS; i++)
                b->scenario[i] = sc_selected[i];
        b->rss = sc_selected[4];
        b->targets = g_string_new(NULL);

        b->systems[SYS_DAEMONEYE] = &bench_system_daemoneye;
        b->systems[SYS_RAW] = &bench_system_raw;
        b->skip_reason[SYS_MOSQUITTO] = "built without libmosquitto";
        b->skip_reason[SYS_NATS] = "built without libnats";
#ifdef HAVE_MOSQUITTO
        mosquitto_lib_init();
        if (b->opts.mosquitto_path && g_file_test(b->opts.mosquitto_path, G_FILE_TEST_IS_EXECUTABLE))
                b->systems[SYS_MOSQUITTO] = &bench_system_mosquitto;
        else
                b->skip_reason[SYS_MOSQUITTO] = "mosquitto broker not installed";
#endif
#ifdef HAVE_NATS
        if (b->opts.nats_server_path && g_file_test(b->opts.nats_server_path, G_FILE_TEST_IS_EXECUTABLE))
                b->systems[SYS_NATS] = &bench_system_nats;
        else
                b->skip_reason[SYS_NATS] = "nats-server not installed";
#endif
        for (guint s = 0; s < N_SYSTEMS; s++)
                if (!sys_selected[s]) {
                        b->systems[s] = NULL;
                        b->skip_reason[s] = "not selected (--only)";
                }

        bench_install_cleanup();
        print_header(b);

        if (b->scenario[SC_A]) {
                run_throughput(b, SC_A);
                report_throughput(b, SC_A);
        }
        if (b->scenario[SC_B]) {
                run_throughput(b, SC_B);
                report_throughput(b, SC_B);
        }
        if (b->scenario[SC_C]) {
                if (!b->scenario[SC_A]) {
                        run_throughput(b, SC_A); /* (c)/(a) needs (a) */
                        report_throughput(b, SC_A);
                }
                run_throughput(b, SC_C);
                report_throughput(b, SC_C);
        }
        if (b->scenario[SC_D]) {
                run_latency(b);
                report_latency(b);
        }
        if (b->rss) {
                run_rss(b);
                report_rss(b);
        }

        printf("\nTargets (daemoneye)%s\n%s", quick ? " -- --quick counts are too small to judge them" : "",
               b->targets->len ? b->targets->str : "  (none measured)\n");
        printf("\n%s\n", b->failed ? "RESULT: some runs FAILED or lost messages (see above)"
                                   : "RESULT: every run delivered every message exactly once, in order");

        for (guint sc = 0; sc < N_SCENARIOS; sc++)
                for (guint s = 0; s < N_SYSTEMS; s++)
                        bench_result_clear(&b->results[sc][s]);
        for (guint s = 0; s < N_SYSTEMS; s++)
                bench_result_clear(&b->idle_rss[s]);
        g_free(b->load_all.error);
        g_free(b->load_spread.error);
        g_string_free(b->targets, TRUE);
#ifdef HAVE_MOSQUITTO
        mosquitto_lib_cleanup();
#endif
#ifdef HAVE_NATS
        nats_Close();
#endif
        return b->failed ? 1 : 0;
}
