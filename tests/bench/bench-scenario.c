/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The scenario runner: the same threads, window, pacing and accounting for
 * every system, so the figures differ only by what each system does.
 */
#include "bench-system.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

char *bench_idle_pattern(guint i, char sep, const char *one_level, const char *multi_level)
{
        /* 'other.<i>.#' and 'x.<i>.+' never match the benchmark topic */
        if (i % 2 == 0)
                return g_strdup_printf("other%c%u%c%s", sep, i, sep, multi_level);
        return g_strdup_printf("x%c%u%c%s", sep, i, sep, one_level);
}

void bench_result_clear(BenchResult *r)
{
        g_free(r->error);
        memset(r, 0, sizeof *r);
}

typedef struct {
        const BenchSystem *sys;
        const BenchOptions *opts;
        const BenchScenario *sc;
        BenchServer *server;
        BenchRun *run;

        GMutex lock; /* guards the fields below */
        GCond cond;
        guint n_ready;
        guint n_failed;
        BenchSub **subs; /* live endpoints, for sub_wakeup */
        gboolean pub_done;
} Runner;

typedef struct {
        Runner *runner;
        guint index;
} SubThreadArg;

static gpointer sub_thread(gpointer data)
{
        SubThreadArg *arg = data;
        Runner *r = arg->runner;
        BenchSubState *state = &r->run->subs[arg->index];
        g_autoptr(GError) error = NULL;
        BenchSub *sub;
        guint64 cpu0;

        sub = r->sys->sub_open(r->server, state, &error);
        g_mutex_lock(&r->lock);
        if (sub) {
                r->subs[arg->index] = sub;
                r->n_ready++;
        } else {
                r->n_failed++;
        }
        g_cond_broadcast(&r->cond);
        g_mutex_unlock(&r->lock);
        if (!sub) {
                bench_run_fail(r->run, "%s: subscriber %u: %s", r->sys->name, arg->index, error->message);
                return NULL;
        }

        cpu0 = bench_thread_cpu_ns();
        if (!r->sys->sub_run(sub, &error))
                bench_run_fail(r->run, "%s: subscriber %u: %s", r->sys->name, arg->index, error->message);
        atomic_fetch_add(&r->run->sub_cpu_ns, bench_thread_cpu_ns() - cpu0);

        g_mutex_lock(&r->lock);
        r->subs[arg->index] = NULL;
        g_mutex_unlock(&r->lock);
        r->sys->sub_close(sub);
        return NULL;
}

static guint64 run_progress(BenchRun *run)
{
        guint64 p = atomic_load(&run->published);

        for (guint i = 0; i < run->n_subs; i++)
                p += atomic_load(&run->subs[i].received);
        return p;
}

static gboolean run_all_done(BenchRun *run)
{
        for (guint i = 0; i < run->n_subs; i++)
                if (!atomic_load(&run->subs[i].done))
                        return FALSE;
        return TRUE;
}

static gboolean publish_paced(Runner *r, BenchPub *pub, GError **error)
{
        const BenchSystem *sys = r->sys;
        BenchRun *run = r->run;
        guint64 n = r->sc->n_messages;
        guint64 interval = 1000000000u / r->sc->rate_per_s;
        guint64 t0;
        guint8 payload[BENCH_PAYLOAD_SIZE];

        /* 50 µs default timer slack would be half the 100 µs period */
        prctl(PR_SET_TIMERSLACK, 1UL);
        t0 = bench_now_ns() + 1000000u;
        run->start_ns = t0;
        for (guint64 i = 0; i < n; i++) {
                if (bench_run_window_room(run, i) == 0 && !bench_run_window_wait(run, i))
                        return TRUE;
                bench_sleep_until_ns(t0 + i * interval);
                if (bench_run_aborted(run))
                        return TRUE;
                bench_payload_fill(payload, i, bench_now_ns());
                if (!sys->pub_send(pub, payload, sizeof payload, error) || !sys->pub_flush(pub, error))
                        return FALSE;
                atomic_store(&run->published, i + 1);
        }
        return TRUE;
}

static gboolean publish_windowed(Runner *r, BenchPub *pub, GError **error)
{
        const BenchSystem *sys = r->sys;
        BenchRun *run = r->run;
        guint64 n = r->sc->n_messages;
        guint burst = MAX(r->opts->burst, 1);
        guint64 sent = 0;
        guint8 payload[BENCH_PAYLOAD_SIZE];

        run->start_ns = bench_now_ns();
        while (sent < n) {
                guint64 room = bench_run_window_room(run, sent);
                guint64 now;

                if (bench_run_aborted(run))
                        return TRUE;
                if (room == 0) {
                        /* what we hold back must reach the subscriber, or it never catches up */
                        if (!sys->pub_flush(pub, error))
                                return FALSE;
                        if (!bench_run_window_wait(run, sent))
                                return TRUE;
                        continue;
                }
                room = MIN(room, MIN((guint64)burst, n - sent));
                now = bench_now_ns();
                for (guint64 k = 0; k < room; k++) {
                        bench_payload_fill(payload, sent, now);
                        if (!sys->pub_send(pub, payload, sizeof payload, error))
                                return FALSE;
                        sent++;
                }
                atomic_store(&run->published, sent);
                if (!sys->pub_poll(pub, error))
                        return FALSE;
        }
        return sys->pub_flush(pub, error);
}

static gpointer pub_thread(gpointer data)
{
        Runner *r = data;
        g_autoptr(GError) error = NULL;
        BenchPub *pub;
        gboolean ok;
        guint64 cpu0;

        pub = r->sys->pub_open(r->server, r->sc->rate_per_s > 0, &error);
        if (!pub) {
                bench_run_fail(r->run, "%s: publisher: %s", r->sys->name, error->message);
                goto out;
        }
        cpu0 = bench_thread_cpu_ns();
        if (r->sc->rate_per_s > 0)
                ok = publish_paced(r, pub, &error);
        else
                ok = publish_windowed(r, pub, &error);
        r->run->pub_cpu_ns = bench_thread_cpu_ns() - cpu0;
        if (!ok)
                bench_run_fail(r->run, "%s: publisher: %s", r->sys->name, error->message);
        /* Keep the connection until the subscribers are done: closing early
         * may discard what the client still buffers. */
        while (!bench_run_aborted(r->run) && !run_all_done(r->run))
                g_usleep(2000);
        r->sys->pub_close(pub);
out:
        g_mutex_lock(&r->lock);
        r->pub_done = TRUE;
        g_cond_broadcast(&r->cond);
        g_mutex_unlock(&r->lock);
        return NULL;
}

static void wake_subscribers(Runner *r)
{
        g_mutex_lock(&r->lock);
        for (guint i = 0; i < r->sc->n_subs; i++)
                if (r->subs[i])
                        r->sys->sub_wakeup(r->subs[i]);
        g_mutex_unlock(&r->lock);
}

static void fill_result(Runner *r, BenchResult *res)
{
        BenchRun *run = r->run;
        guint64 last = 0;

        res->n_subs = run->n_subs;
        res->window_waits = run->window_waits;
        res->pub_cpu_ns = run->pub_cpu_ns;
        res->sub_cpu_ns = atomic_load(&run->sub_cpu_ns);
        res->window_timeouts = run->window_timeouts;
        res->published = atomic_load(&run->published);
        res->expected = r->sc->n_messages * run->n_subs;
        for (guint i = 0; i < run->n_subs; i++) {
                BenchSubState *s = &run->subs[i];
                guint64 got = atomic_load(&s->received);

                res->delivered += got;
                /* gaps seen, plus whatever never arrived after the last one */
                res->lost += s->lost + (s->expected > s->next_seq ? s->expected - s->next_seq : 0);
                res->disordered += s->disordered + s->bad_payload;
                last = MAX(last, s->last_ns);
        }
        if (last > run->start_ns) {
                res->seconds = (double)(last - run->start_ns) / 1e9;
                res->rate = (double)res->delivered / res->seconds;
        }
        if (r->sc->rate_per_s > 0 && run->n_subs > 0) {
                BenchSamples *s = &run->subs[0].latency;

                res->p50_ns = bench_samples_percentile(s, 50);
                res->p90_ns = bench_samples_percentile(s, 90);
                res->p99_ns = bench_samples_percentile(s, 99);
                res->p999_ns = bench_samples_percentile(s, 99.9);
                res->max_ns = bench_samples_percentile(s, 100);
        }
        res->valid =
                !run->error && res->delivered == res->expected && res->lost == 0 && res->disordered == 0;
        if (run->error)
                res->error = g_strdup(run->error);
        else if (!res->valid)
                res->error = g_strdup_printf("INVALID: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                                             " delivered, %" G_GUINT64_FORMAT " lost, %" G_GUINT64_FORMAT
                                             " duplicated/reordered",
                                             res->delivered, res->expected, res->lost, res->disordered);
}

gboolean bench_scenario_run(const BenchSystem *sys, const BenchOptions *opts, const BenchScenario *sc,
                            BenchResult *result)
{
        g_autoptr(GError) error = NULL;
        Runner r = {.sys = sys, .opts = opts, .sc = sc};
        BenchIdle *idle = NULL;
        GThread **threads = NULL;
        SubThreadArg *args = NULL;
        GThread *pub = NULL;
        guint64 last_progress = 0, last_change;
        guint n_started = 0;
        guint64 server_cpu0 = 0, server_cpu1 = 0, client_cpu0 = 0, client_cpu1 = 0;

        bench_result_clear(result);
        r.server = sys->start(opts, &error);
        if (!r.server) {
                result->error = g_strdup_printf("%s: start: %s", sys->name, error->message);
                return FALSE;
        }
        result->ran = TRUE;
        g_mutex_init(&r.lock);
        g_cond_init(&r.cond);
        r.run = bench_run_new(sc->n_subs, sc->n_messages, sc->window, sc->rate_per_s > 0);
        r.subs = g_new0(BenchSub *, sc->n_subs);

        if (sc->n_idle_patterns > 0) {
                if (!sys->idle_open) {
                        bench_run_fail(r.run, "%s: no idle subscriptions support", sys->name);
                        goto out;
                }
                idle = sys->idle_open(r.server, sc->n_idle_patterns, &error);
                if (!idle) {
                        bench_run_fail(r.run, "%s: %u idle subscriptions: %s", sys->name,
                                       sc->n_idle_patterns, error->message);
                        goto out;
                }
        }

        threads = g_new0(GThread *, sc->n_subs);
        args = g_new0(SubThreadArg, sc->n_subs);
        for (guint i = 0; i < sc->n_subs; i++) {
                args[i] = (SubThreadArg){.runner = &r, .index = i};
                threads[i] = g_thread_new("bench-sub", sub_thread, &args[i]);
                n_started++;
        }
        g_mutex_lock(&r.lock);
        {
                gint64 deadline = g_get_monotonic_time() + 60 * G_TIME_SPAN_SECOND;

                while (r.n_ready + r.n_failed < sc->n_subs)
                        if (!g_cond_wait_until(&r.cond, &r.lock, deadline))
                                break;
        }
        g_mutex_unlock(&r.lock);
        if (r.n_ready < sc->n_subs) {
                bench_run_fail(r.run, "%s: only %u of %u subscribers connected", sys->name, r.n_ready,
                               sc->n_subs);
                goto out;
        }

        if (sys->server_pid)
                server_cpu0 = bench_process_cpu_ns(sys->server_pid(r.server));
        client_cpu0 = bench_self_cpu_ns();
        pub = g_thread_new("bench-pub", pub_thread, &r);

        /* monitor: stop at completion, on error, or when nothing moves */
        last_change = bench_now_ns();
        while (!bench_run_aborted(r.run) && !run_all_done(r.run)) {
                guint64 p = run_progress(r.run), now = bench_now_ns();

                if (p != last_progress) {
                        last_progress = p;
                        last_change = now;
                } else if (now - last_change > (guint64)sc->stall_ms * 1000000u) {
                        guint idx;
                        guint64 min = bench_run_min_received(r.run, &idx);

                        bench_run_fail(r.run,
                                       "%s: stalled for %u ms: published %" G_GUINT64_FORMAT
                                       ", slowest subscriber %u has %" G_GUINT64_FORMAT " (messages lost?)",
                                       sys->name, sc->stall_ms, (guint64)atomic_load(&r.run->published), idx,
                                       min);
                        break;
                }
                g_usleep(5000);
        }
        if (sys->server_pid)
                server_cpu1 = bench_process_cpu_ns(sys->server_pid(r.server));
        client_cpu1 = bench_self_cpu_ns();

out:
        /* done or failed: everything still running must stop */
        if (!run_all_done(r.run) && !bench_run_aborted(r.run))
                bench_run_fail(r.run, "%s: aborted", sys->name);
        if (pub) {
                if (!run_all_done(r.run))
                        atomic_store(&r.run->abort, true);
                g_thread_join(pub);
        }
        atomic_store(&r.run->abort, true);
        for (guint i = 0; i < n_started; i++) {
                /* a subscriber may still be in sub_open; wake until it leaves */
                while (TRUE) {
                        gboolean gone;

                        wake_subscribers(&r);
                        g_mutex_lock(&r.lock);
                        gone = r.subs[i] == NULL && (r.n_ready + r.n_failed >= n_started);
                        g_mutex_unlock(&r.lock);
                        if (gone)
                                break;
                        g_usleep(1000);
                }
                g_thread_join(threads[i]);
        }
        if (idle)
                sys->idle_close(idle);
        if (sys->server_pid && sys->server_pid(r.server)) {
                result->rss_kib = bench_read_status_kib(sys->server_pid(r.server), "VmRSS");
                result->hwm_kib = bench_read_status_kib(sys->server_pid(r.server), "VmHWM");
        }
        sys->stop(r.server);

        fill_result(&r, result);
        if (result->delivered > 0 && client_cpu1 > 0) {
                result->server_cpu_us =
                        (double)(server_cpu1 - server_cpu0) / 1e3 / (double)result->delivered;
                result->client_cpu_us =
                        (double)(client_cpu1 - client_cpu0) / 1e3 / (double)result->delivered;
        }
        bench_run_free(r.run);
        g_free(r.subs);
        g_free(threads);
        g_free(args);
        g_mutex_clear(&r.lock);
        g_cond_clear(&r.cond);
        return result->valid;
}

gboolean bench_idle_rss(const BenchSystem *sys, const BenchOptions *opts, BenchResult *result)
{
        g_autoptr(GError) error = NULL;
        BenchServer *server;
        pid_t pid;

        bench_result_clear(result);
        if (!sys->server_pid)
                return FALSE;
        server = sys->start(opts, &error);
        if (!server) {
                result->error = g_strdup_printf("%s: start: %s", sys->name, error->message);
                return FALSE;
        }
        result->ran = TRUE;
        /* let it finish whatever it does after it starts listening */
        g_usleep(500 * 1000);
        pid = sys->server_pid(server);
        result->rss_kib = bench_read_status_kib(pid, "VmRSS");
        result->hwm_kib = bench_read_status_kib(pid, "VmHWM");
        result->valid = result->rss_kib > 0;
        sys->stop(server);
        return result->valid;
}
