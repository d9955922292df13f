/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event traffic flowing through the broker while calls are measured: one
 * publisher thread paced at a fixed rate (absolute deadlines, each message
 * flushed on its own, as in bench-eventbus (d)) and one subscriber thread,
 * both driven through the system's BenchSystem operations. It runs until
 * stopped; the caller reads the subscriber's count to get the rate achieved.
 */
#include "bench-rpc.h"

#include <sys/prctl.h>

#define BG_WINDOW 8192 /* the publisher waits when this far ahead of the subscriber */

struct _BenchBackground {
        const BenchSystem *sys;
        BenchServer *server;
        guint rate_per_s;
        BenchRun *run; /* one subscriber that is never "done": it stops on abort */
        atomic_bool stop;
        atomic_bool paused;

        GMutex lock;
        GCond cond;
        BenchSub *sub; /* live endpoint, for sub_wakeup */
        gboolean sub_ready, sub_failed;
        GThread *sub_thread, *pub_thread;
};

static gpointer bg_sub_thread(gpointer data)
{
        BenchBackground *bg = data;
        BenchSubState *state = &bg->run->subs[0];
        g_autoptr(GError) error = NULL;
        BenchSub *sub = bg->sys->sub_open(bg->server, state, &error);

        g_mutex_lock(&bg->lock);
        bg->sub = sub;
        bg->sub_ready = sub != NULL;
        bg->sub_failed = sub == NULL;
        g_cond_broadcast(&bg->cond);
        g_mutex_unlock(&bg->lock);
        if (!sub) {
                bench_run_fail(bg->run, "background subscriber: %s", error->message);
                return NULL;
        }
        if (!bg->sys->sub_run(sub, &error) && !atomic_load(&bg->stop))
                bench_run_fail(bg->run, "background subscriber: %s", error->message);
        g_mutex_lock(&bg->lock);
        bg->sub = NULL;
        g_mutex_unlock(&bg->lock);
        bg->sys->sub_close(sub);
        return NULL;
}

static gpointer bg_pub_thread(gpointer data)
{
        BenchBackground *bg = data;
        BenchRun *run = bg->run;
        g_autoptr(GError) error = NULL;
        guint64 interval = 1000000000u / bg->rate_per_s, t0 = 0, i0 = 0;
        gboolean rebase = TRUE;
        guint8 payload[BENCH_PAYLOAD_SIZE];
        BenchPub *pub = bg->sys->pub_open(bg->server, TRUE, &error);

        if (!pub) {
                bench_run_fail(run, "background publisher: %s", error->message);
                return NULL;
        }
        /* 50 µs default timer slack would be half the 100 µs period */
        prctl(PR_SET_TIMERSLACK, 1UL);
        run->start_ns = bench_now_ns();
        for (guint64 i = 0; !atomic_load(&bg->stop) && !bench_run_aborted(run);) {
                if (atomic_load(&bg->paused)) {
                        g_usleep(500);
                        rebase = TRUE;
                        continue;
                }
                /* after a pause the schedule starts afresh: no burst to catch up */
                if (rebase) {
                        t0 = bench_now_ns();
                        i0 = i;
                        rebase = FALSE;
                }
                if (bench_run_window_room(run, i) == 0 && !bench_run_window_wait(run, i))
                        break;
                bench_sleep_until_ns(t0 + (i - i0) * interval);
                bench_payload_fill(payload, i, bench_now_ns());
                if (!bg->sys->pub_send(pub, payload, sizeof payload, &error) ||
                    !bg->sys->pub_flush(pub, &error)) {
                        bench_run_fail(run, "background publisher: %s", error->message);
                        break;
                }
                atomic_store(&run->published, ++i);
        }
        bg->sys->pub_close(pub);
        return NULL;
}

static void bg_free(BenchBackground *bg)
{
        bench_run_free(bg->run);
        g_mutex_clear(&bg->lock);
        g_cond_clear(&bg->cond);
        g_free(bg);
}

/*
 * Ends both threads: the subscriber is never done by count, so the run is
 * aborted, which also frees a publisher waiting on the window.
 */
static void bg_join(BenchBackground *bg)
{
        atomic_store(&bg->stop, true);
        g_mutex_lock(&bg->run->lock);
        atomic_store(&bg->run->abort, true);
        g_cond_broadcast(&bg->run->cond);
        g_mutex_unlock(&bg->run->lock);
        if (bg->pub_thread)
                g_thread_join(g_steal_pointer(&bg->pub_thread));
        if (bg->sub_thread) {
                g_mutex_lock(&bg->lock);
                if (bg->sub)
                        bg->sys->sub_wakeup(bg->sub);
                g_mutex_unlock(&bg->lock);
                g_thread_join(g_steal_pointer(&bg->sub_thread));
        }
}

BenchBackground *bench_background_start(const BenchSystem *sys, BenchServer *server,
                                        const BenchOptions *opts, guint rate_per_s, GError **error)
{
        BenchBackground *bg = g_new0(BenchBackground, 1);
        gint64 deadline = g_get_monotonic_time() + 30 * G_TIME_SPAN_SECOND;

        bg->sys = sys;
        bg->server = server;
        bg->rate_per_s = MAX(rate_per_s, 1);
        /* expected G_MAXUINT64: the subscriber never completes by count */
        bg->run = bench_run_new(1, G_MAXUINT64, BG_WINDOW, FALSE);
        atomic_init(&bg->stop, false);
        atomic_init(&bg->paused, false);
        g_mutex_init(&bg->lock);
        g_cond_init(&bg->cond);

        bg->sub_thread = g_thread_new("bench-bg-sub", bg_sub_thread, bg);
        g_mutex_lock(&bg->lock);
        while (!bg->sub_ready && !bg->sub_failed)
                if (!g_cond_wait_until(&bg->cond, &bg->lock, deadline))
                        break;
        g_mutex_unlock(&bg->lock);
        if (!bg->sub_ready) {
                g_set_error(error, BENCH_ERROR, 0, "%s: %s", sys->name,
                            bg->run->error ? bg->run->error : "background subscriber not ready after 30 s");
                bg_join(bg);
                bg_free(bg);
                return NULL;
        }
        bg->pub_thread = g_thread_new("bench-bg-pub", bg_pub_thread, bg);
        return bg;
}

void bench_background_set_paused(BenchBackground *bg, gboolean paused)
{
        atomic_store(&bg->paused, paused);
}

guint64 bench_background_received(BenchBackground *bg)
{
        return atomic_load(&bg->run->subs[0].received);
}

gboolean bench_background_stop(BenchBackground *bg, guint64 *lost, GError **error)
{
        BenchSubState *s = &bg->run->subs[0];
        gboolean ok;

        /* a failure is recorded before the threads see the stop: read it first */
        g_mutex_lock(&bg->run->lock);
        ok = bg->run->error == NULL;
        if (!ok)
                g_set_error(error, BENCH_ERROR, 0, "%s: %s", bg->sys->name, bg->run->error);
        g_mutex_unlock(&bg->run->lock);
        bg_join(bg);
        if (lost)
                *lost = s->lost + s->disordered + s->bad_payload;
        bg_free(bg);
        return ok;
}
