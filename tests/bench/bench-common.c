/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Clocks, the payload format, latency samples, and one run's delivery
 * accounting and publisher window.
 */
#include "bench-common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

G_DEFINE_QUARK(bench - error - quark, bench_error)

/* ---- clocks ------------------------------------------------------------ */

guint64 bench_now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + (guint64)ts.tv_nsec;
}

void bench_sleep_until_ns(guint64 deadline_ns)
{
        struct timespec ts = {
                .tv_sec = (time_t)(deadline_ns / 1000000000u),
                .tv_nsec = (long)(deadline_ns % 1000000000u),
        };

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

/* ---- payload ----------------------------------------------------------- */

void bench_payload_fill(guint8 *payload, guint64 seq, guint64 send_ns)
{
        memcpy(payload, &seq, sizeof seq);
        memcpy(payload + 8, &send_ns, sizeof send_ns);
        memset(payload + 16, 0xab, BENCH_PAYLOAD_SIZE - 16);
}

guint64 bench_payload_seq(const guint8 *payload)
{
        guint64 v;

        memcpy(&v, payload, sizeof v);
        return v;
}

guint64 bench_payload_send_ns(const guint8 *payload)
{
        guint64 v;

        memcpy(&v, payload + 8, sizeof v);
        return v;
}

/* ---- latency samples --------------------------------------------------- */

void bench_samples_init(BenchSamples *s, gsize capacity)
{
        s->ns = g_new(guint64, MAX(capacity, 1));
        s->n = 0;
        s->capacity = capacity;
}

void bench_samples_clear(BenchSamples *s)
{
        g_clear_pointer(&s->ns, g_free);
        s->n = s->capacity = 0;
}

void bench_samples_add(BenchSamples *s, guint64 ns)
{
        if (s->n < s->capacity)
                s->ns[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
        guint64 x = *(const guint64 *)a, y = *(const guint64 *)b;

        return x < y ? -1 : x > y;
}

guint64 bench_samples_percentile(BenchSamples *s, double p)
{
        gsize i;

        if (s->n == 0)
                return 0;
        /* sorting is idempotent; cheap enough for 50k samples */
        qsort(s->ns, s->n, sizeof s->ns[0], cmp_u64);
        i = (gsize)(p / 100.0 * (double)(s->n - 1) + 0.5);
        return s->ns[MIN(i, s->n - 1)];
}

/* ---- one run ------------------------------------------------------------- */

BenchRun *bench_run_new(guint n_subs, guint64 expected_per_sub, guint64 window, gboolean measure_latency)
{
        BenchRun *run = g_new0(BenchRun, 1);

        run->n_subs = n_subs;
        run->subs = g_new0(BenchSubState, n_subs);
        run->window = MAX(window, 2);
        run->window_low = run->window / 2;
        g_mutex_init(&run->lock);
        g_cond_init(&run->cond);
        atomic_init(&run->wait_sub, -1);
        atomic_init(&run->wait_target, 0);
        atomic_init(&run->abort, false);
        atomic_init(&run->published, 0);
        for (guint i = 0; i < n_subs; i++) {
                BenchSubState *sub = &run->subs[i];

                sub->run = run;
                sub->index = i;
                sub->expected = expected_per_sub;
                atomic_init(&sub->received, 0);
                atomic_init(&sub->done, expected_per_sub == 0);
                sub->measure_latency = measure_latency;
                if (measure_latency)
                        bench_samples_init(&sub->latency, expected_per_sub);
        }
        return run;
}

void bench_run_free(BenchRun *run)
{
        if (!run)
                return;
        for (guint i = 0; i < run->n_subs; i++)
                bench_samples_clear(&run->subs[i].latency);
        g_free(run->subs);
        g_mutex_clear(&run->lock);
        g_cond_clear(&run->cond);
        g_free(run->error);
        g_free(run);
}

void bench_run_fail(BenchRun *run, const char *fmt, ...)
{
        va_list ap;
        char *msg;

        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_mutex_lock(&run->lock);
        if (!run->error)
                run->error = g_steal_pointer(&msg);
        atomic_store(&run->abort, true);
        g_cond_broadcast(&run->cond);
        g_mutex_unlock(&run->lock);
        g_free(msg);
}

gboolean bench_run_aborted(BenchRun *run)
{
        return atomic_load_explicit(&run->abort, memory_order_relaxed);
}

void bench_sub_deliver(BenchSubState *sub, const void *payload, gsize len)
{
        BenchRun *run = sub->run;
        guint64 seq, received;

        if (len != BENCH_PAYLOAD_SIZE) {
                sub->bad_payload++;
                return;
        }
        seq = bench_payload_seq(payload);
        if (seq == sub->next_seq) {
                sub->next_seq++;
        } else if (seq > sub->next_seq) {
                sub->lost += seq - sub->next_seq;
                sub->next_seq = seq + 1;
        } else {
                sub->disordered++;
        }
        if (sub->measure_latency) {
                guint64 now = bench_now_ns();
                guint64 sent = bench_payload_send_ns(payload);

                bench_samples_add(&sub->latency, now > sent ? now - sent : 0);
        }
        received = atomic_load_explicit(&sub->received, memory_order_relaxed) + 1;
        atomic_store(&sub->received, received);

        /* Order is preserved per publisher, so the last sequence number ends it
         * (with any loss already counted). */
        if (seq + 1 == sub->expected) {
                sub->last_ns = bench_now_ns();
                atomic_store(&sub->done, true);
        }

        if (atomic_load(&run->wait_sub) == (int)sub->index && received >= atomic_load(&run->wait_target)) {
                g_mutex_lock(&run->lock);
                if (atomic_load(&run->wait_sub) == (int)sub->index) {
                        atomic_store(&run->wait_sub, -1);
                        g_cond_signal(&run->cond);
                }
                g_mutex_unlock(&run->lock);
        }
}

guint64 bench_run_min_received(BenchRun *run, guint *out_index)
{
        guint64 min = G_MAXUINT64;
        guint idx = 0;

        for (guint i = 0; i < run->n_subs; i++) {
                guint64 r = atomic_load(&run->subs[i].received);

                if (r < min) {
                        min = r;
                        idx = i;
                }
        }
        if (out_index)
                *out_index = idx;
        return run->n_subs ? min : 0;
}

guint64 bench_run_window_room(BenchRun *run, guint64 published)
{
        guint64 gap = published - bench_run_min_received(run, NULL);

        return gap >= run->window ? 0 : run->window - gap;
}

gboolean bench_run_window_wait(BenchRun *run, guint64 published)
{
        for (;;) {
                guint idx;
                guint64 min, target;

                if (bench_run_aborted(run))
                        return FALSE;
                min = bench_run_min_received(run, &idx);
                if (published - min <= run->window_low)
                        return TRUE;
                target = published - run->window_low;

                /* Dekker-style: publish who we wait for, then re-read its
                 * counter; the subscriber stores its counter, then reads
                 * wait_sub. Both seq_cst, so one of them sees the other. */
                run->window_waits++;
                g_mutex_lock(&run->lock);
                atomic_store(&run->wait_target, target);
                atomic_store(&run->wait_sub, (int)idx);
                if (atomic_load(&run->subs[idx].received) < target && !bench_run_aborted(run) &&
                    !g_cond_wait_until(&run->cond, &run->lock,
                                       g_get_monotonic_time() + 10 * G_TIME_SPAN_MILLISECOND))
                        run->window_timeouts++;
                atomic_store(&run->wait_sub, -1);
                g_mutex_unlock(&run->lock);
        }
}
