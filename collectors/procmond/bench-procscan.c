/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-procscan: CPU cost of one procmond scan with N live processes.
 *
 * Spawns N `sleep 60` children (1,000 by default), then times steady-state
 * scans (no changes, so no events: the cost of watching) without hashing
 * and with hashing on a warm cache, plus a scan that also publishes the
 * whole table as batches. CPU time is CLOCK_PROCESS_CPUTIME_ID around
 * procmond_engine_scan(), user and system time together: /proc is read in
 * the kernel on our behalf. The target is under 20 ms per scan for 1,000
 * processes; the run fails when the median misses it (not with --quick,
 * which only checks that everything works, for CI).
 *
 * Every child is killed by pid at the end, on failure, and on SIGINT/TERM;
 * PR_SET_PDEATHSIG kills them if this program is killed outright.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procmond-engine.h"

#define TARGET_CPU_US 20000

static pid_t *children;
static volatile sig_atomic_t n_children;

static void kill_children(void)
{
        for (sig_atomic_t i = 0; i < n_children; i++)
                kill(children[i], SIGKILL);
        for (sig_atomic_t i = 0; i < n_children; i++)
                while (waitpid(children[i], NULL, 0) < 0 && errno == EINTR)
                        ;
        n_children = 0;
}

static void on_signal(int sig)
{
        /* Async-signal-safe: kill only; the kernel reaps after our exit. */
        for (sig_atomic_t i = 0; i < n_children; i++)
                kill(children[i], SIGKILL);
        _exit(128 + sig);
}

static gboolean spawn_children(guint n, GError **error)
{
        pid_t parent = getpid();

        children = g_new0(pid_t, n);
        for (guint i = 0; i < n; i++) {
                pid_t pid = fork();

                if (pid < 0) {
                        int errsv = errno;

                        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                                    "bench-procscan: fork of child %u: %s", i, g_strerror(errsv));
                        return FALSE;
                }
                if (pid == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                        if (getppid() != parent)
                                _exit(1);
                        execl("/bin/sleep", "sleep", "60", (char *)NULL);
                        _exit(127);
                }
                children[n_children++] = pid;
        }
        return TRUE;
}

/* Children are counted only once they run sleep, not a copy of this program. */
static gboolean wait_for_exec(GError **error)
{
        for (sig_atomic_t i = 0; i < n_children; i++) {
                g_autofree char *path = g_strdup_printf("/proc/%d/comm", children[i]);
                guint tries = 0;

                for (;;) {
                        g_autofree char *comm = NULL;

                        if (g_file_get_contents(path, &comm, NULL, NULL) && g_str_equal(comm, "sleep\n"))
                                break;
                        if (++tries > 1000) {
                                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                                            "bench-procscan: child %d did not exec sleep", children[i]);
                                return FALSE;
                        }
                        g_usleep(1000);
                }
        }
        return TRUE;
}

static guint64 cpu_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return (guint64)ts.tv_sec * G_USEC_PER_SEC + (guint64)ts.tv_nsec / 1000;
}

static void count_bytes(const char *topic, const char *type, const guint8 *payload, gsize len,
                        gpointer user_data)
{
        *(guint64 *)user_data += len;
}

static gint compare_u64(gconstpointer a, gconstpointer b)
{
        guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

        return (x > y) - (x < y);
}

typedef struct {
        guint64 min, median, max;
        guint64 processes;
        guint64 bytes;
} Result;

/*
 * Times @iterations scans of an engine after a baseline scan (and, with
 * hashing, a warm-up that fills the cache). Verifies every child is seen.
 */
static gboolean measure(gboolean hashing, gboolean batches, guint iterations, Result *result, GError **error)
{
        g_autoptr(ProcmondEngine) engine = NULL;
        g_autofree guint64 *samples = g_new0(guint64, iterations);
        ProcmondEngineConfig config;
        guint64 bytes = 0;

        procmond_engine_config_init(&config);
        config.enable_hash_verification = hashing;
        engine = procmond_engine_new(&config, error);
        if (!engine)
                return FALSE;
        if (!procmond_engine_scan(engine, count_bytes, &bytes, error) ||
            !procmond_engine_scan(engine, count_bytes, &bytes, error))
                return FALSE;
        for (sig_atomic_t i = 0; i < n_children; i++) {
                const ProcInfo *info = proc_snapshot_find_pid(procmond_engine_get_snapshot(engine), children[i]);

                if (!info || !g_str_equal(info->comm, "sleep") || (hashing && !info->exe_sha256)) {
                        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                                    "bench-procscan: child %d missing from the scan or not hashed", children[i]);
                        return FALSE;
                }
        }

        bytes = 0;
        for (guint i = 0; i < iterations; i++) {
                guint64 start;

                if (batches)
                        procmond_engine_request_batch(engine);
                start = cpu_us();
                if (!procmond_engine_scan(engine, count_bytes, &bytes, error))
                        return FALSE;
                samples[i] = cpu_us() - start;
        }
        qsort(samples, iterations, sizeof(*samples), (int (*)(const void *, const void *))compare_u64);
        result->min = samples[0];
        result->median = samples[iterations / 2];
        result->max = samples[iterations - 1];
        result->processes = procmond_engine_get_stats(engine).processes_seen;
        result->bytes = bytes / iterations;
        return TRUE;
}

static void print_result(const char *name, const Result *r)
{
        printf("%-34s %6" G_GUINT64_FORMAT " processes  CPU/scan median %6.2f ms  min %6.2f  max %6.2f",
               name, r->processes, r->median / 1000.0, r->min / 1000.0, r->max / 1000.0);
        if (r->bytes)
                printf("  %" G_GUINT64_FORMAT " bytes emitted/scan", r->bytes);
        printf("\n");
}

static int run(gboolean quick, guint n, guint iterations)
{
        g_autoptr(GError) error = NULL;
        Result plain, hashed, batched;
        gboolean met;

        if (!spawn_children(n, &error) || !wait_for_exec(&error) ||
            !measure(FALSE, FALSE, iterations, &plain, &error) || !measure(TRUE, FALSE, iterations, &hashed, &error) ||
            !measure(FALSE, TRUE, iterations, &batched, &error)) {
                fprintf(stderr, "%s\n", error->message);
                return 1;
        }
        printf("bench-procscan: %u children of sleep 60, %u scans each, CLK_TCK %ld\n", n, iterations,
               sysconf(_SC_CLK_TCK));
        print_result("scan, no hashing", &plain);
        print_result("scan, hashing (warm cache)", &hashed);
        print_result("scan + full table as batches", &batched);

        met = plain.median < TARGET_CPU_US && hashed.median < TARGET_CPU_US;
        printf("target: under %.0f ms of CPU per scan of 1,000 processes: %s\n", TARGET_CPU_US / 1000.0,
               quick ? "not checked (--quick)" : met ? "met" : "MISSED");
        return quick || met ? 0 : 1;
}

int main(int argc, char **argv)
{
        gboolean quick = FALSE;
        gint processes = 0;
        gint iterations = 0;
        const GOptionEntry entries[] = {
                {"quick", 0, 0, G_OPTION_ARG_NONE, &quick, "Few processes, few scans, no target check", NULL},
                {"processes", 'n', 0, G_OPTION_ARG_INT, &processes, "Children to spawn (1000)", "N"},
                {"iterations", 'i', 0, G_OPTION_ARG_INT, &iterations, "Timed scans per case (21)", "N"},
                {NULL},
        };
        g_autoptr(GOptionContext) context = g_option_context_new("- procmond scan cost");
        g_autoptr(GError) error = NULL;
        struct sigaction sa = {.sa_handler = on_signal};
        int status;

        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                fprintf(stderr, "bench-procscan: %s\n", error->message);
                return 2;
        }
        if (processes <= 0)
                processes = quick ? 50 : 1000;
        if (iterations <= 0)
                iterations = quick ? 3 : 21;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);

        status = run(quick, (guint)processes, (guint)iterations);
        kill_children();
        g_free(children);
        return status;
}
