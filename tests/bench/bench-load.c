/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's memory with many clients: 1 publisher paced at a fixed rate
 * and n-1 subscribers, all in this process. The subscribers share one thread
 * and one GMainContext (each DebClient is its own connection); the publisher
 * has its own thread and publishes to 'events.load.<i mod (n-1)>'.
 *   all:    every subscriber has 'events.load.+': each message goes to all
 *           n-1 subscribers (10k/s × 99 deliveries, more than one subscriber
 *           thread can read on a small machine: the agent's queues fill and
 *           it drops per policy, which is what its memory must survive).
 *   spread: subscriber k has 'events.load.<k>': each message goes to one.
 * VmRSS of the agent is sampled every 100 ms while the load runs.
 */
#include "bench-system.h"

#include <string.h>
#include <sys/prctl.h>

#include "deb-client.h"

#define LOAD_TIMEOUT_MS 10000

typedef struct {
        const BenchLoad *load;
        BenchServer *server;
        GMutex lock;
        GCond cond;
        int subs_state; /* 0 connecting, 1 ready, -1 failed */
        char *error;
        atomic_bool stop;
        atomic_bool pub_done;
        atomic_uint_fast64_t delivered;
        atomic_uint_fast64_t published;
        GMainContext *sub_ctx;
} Load;

static void load_fail(Load *l, const char *what, const GError *error)
{
        g_mutex_lock(&l->lock);
        if (!l->error)
                l->error = g_strdup_printf("%s: %s", what, error ? error->message : "failed");
        g_mutex_unlock(&l->lock);
        atomic_store(&l->stop, true);
}

static void on_load_message(DebClient *client, const DebEnvelope *env, gpointer user_data)
{
        guint64 *count = user_data;

        (*count)++;
}

static gpointer subscribers_thread(gpointer data)
{
        Load *l = data;
        guint n = l->load->n_clients - 1;
        DebClient **clients = g_new0(DebClient *, n);
        guint64 count = 0;
        g_autoptr(GError) error = NULL;
        gboolean ok = TRUE;

        g_main_context_push_thread_default(l->sub_ctx);
        for (guint k = 0; k < n && ok; k++) {
                g_autofree char *id = g_strdup_printf("bench-load-sub-%u", k);
                g_autofree char *pattern =
                        l->load->spread ? g_strdup_printf("events.load.%u", k) : g_strdup("events.load.+");

                clients[k] = deb_client_new(id);
                ok = deb_client_connect_sync(clients[k], bench_daemoneye_socket_path(l->server),
                                             LOAD_TIMEOUT_MS, &error) &&
                     deb_client_subscribe(clients[k], pattern, on_load_message, &count, NULL, &error) > 0;
        }
        for (guint k = 0; k < n && ok; k++)
                ok = deb_client_sync(clients[k], LOAD_TIMEOUT_MS, &error);

        g_mutex_lock(&l->lock);
        l->subs_state = ok ? 1 : -1;
        g_cond_broadcast(&l->cond);
        g_mutex_unlock(&l->lock);
        if (!ok)
                load_fail(l, "load subscribers", error);

        while (ok && !atomic_load(&l->stop)) {
                g_main_context_iteration(l->sub_ctx, TRUE);
                atomic_store(&l->delivered, count);
        }
        atomic_store(&l->delivered, count);
        for (guint k = 0; k < n; k++)
                if (clients[k]) {
                        deb_client_disconnect(clients[k], 1000);
                        deb_client_unref(clients[k]);
                }
        g_main_context_pop_thread_default(l->sub_ctx);
        g_free(clients);
        return NULL;
}

static gpointer publisher_thread(gpointer data)
{
        Load *l = data;
        GMainContext *ctx = g_main_context_new();
        g_autoptr(DebClient) client = NULL;
        g_autoptr(GError) error = NULL;
        guint n_topics = l->load->n_clients - 1;
        guint64 total = (guint64)l->load->rate_per_s * l->load->seconds;
        guint per_tick = MAX(l->load->rate_per_s / 1000, 1); /* a tick is 1 ms */
        guint64 t0, i = 0;
        guint8 payload[BENCH_PAYLOAD_SIZE];
        char topic[64];

        g_main_context_push_thread_default(ctx);
        prctl(PR_SET_TIMERSLACK, 1UL);
        client = deb_client_new("bench-load-pub");
        if (!deb_client_connect_sync(client, bench_daemoneye_socket_path(l->server), LOAD_TIMEOUT_MS,
                                     &error)) {
                load_fail(l, "load publisher", error);
                goto out;
        }
        t0 = bench_now_ns();
        for (guint64 tick = 0; i < total && !atomic_load(&l->stop); tick++) {
                bench_sleep_until_ns(t0 + tick * 1000000u);
                for (guint k = 0; k < per_tick && i < total; k++, i++) {
                        g_snprintf(topic, sizeof topic, "events.load.%u", (guint)(i % n_topics));
                        bench_payload_fill(payload, i, bench_now_ns());
                        if (!deb_client_publish(client, topic, payload, sizeof payload, NULL, &error)) {
                                load_fail(l, "load publish", error);
                                goto out;
                        }
                }
                if (!deb_client_flush(client, LOAD_TIMEOUT_MS, &error)) {
                        load_fail(l, "load flush", error);
                        goto out;
                }
                atomic_store(&l->published, i);
        }
        deb_client_disconnect(client, 1000);
out:
        atomic_store(&l->pub_done, true);
        g_clear_pointer(&client, deb_client_unref);
        g_main_context_pop_thread_default(ctx);
        g_main_context_unref(ctx);
        return NULL;
}

gboolean bench_daemoneye_load(const BenchOptions *opts, const BenchLoad *load, BenchLoadResult *result)
{
        g_autoptr(GError) error = NULL;
        Load l = {.load = load};
        GThread *subs = NULL, *pub = NULL;
        pid_t pid;
        guint64 start_ns, expected_per_msg = load->spread ? 1 : load->n_clients - 1;

        memset(result, 0, sizeof *result);
        l.server = bench_daemoneye_start(opts, &error);
        if (!l.server) {
                result->error = g_strdup_printf("daemoneye: start: %s", error->message);
                return FALSE;
        }
        result->ran = TRUE;
        pid = bench_system_daemoneye.server_pid(l.server);
        g_usleep(500 * 1000);
        result->idle_rss_kib = bench_read_status_kib(pid, "VmRSS");

        g_mutex_init(&l.lock);
        g_cond_init(&l.cond);
        l.sub_ctx = g_main_context_new();
        subs = g_thread_new("bench-load-subs", subscribers_thread, &l);
        g_mutex_lock(&l.lock);
        while (l.subs_state == 0)
                g_cond_wait(&l.cond, &l.lock);
        g_mutex_unlock(&l.lock);

        if (l.subs_state > 0) {
                start_ns = bench_now_ns();
                pub = g_thread_new("bench-load-pub", publisher_thread, &l);
                while (!atomic_load(&l.pub_done)) {
                        result->max_rss_kib = MAX(result->max_rss_kib, bench_read_status_kib(pid, "VmRSS"));
                        g_usleep(100 * 1000);
                }
                g_thread_join(pub);
                result->seconds = (double)(bench_now_ns() - start_ns) / 1e9;
                /* let the subscribers drain what the agent still queues */
                for (guint i = 0; i < 40; i++) {
                        guint64 before = atomic_load(&l.delivered);

                        result->max_rss_kib = MAX(result->max_rss_kib, bench_read_status_kib(pid, "VmRSS"));
                        g_usleep(50 * 1000);
                        if (atomic_load(&l.delivered) == before)
                                break;
                }
        }
        result->hwm_kib = bench_read_status_kib(pid, "VmHWM");
        atomic_store(&l.stop, true);
        g_main_context_wakeup(l.sub_ctx);
        g_thread_join(subs);

        bench_system_daemoneye.stop(l.server);
        result->published = atomic_load(&l.published);
        result->expected = result->published * expected_per_msg;
        result->delivered = atomic_load(&l.delivered);
        result->error = l.error;
        g_main_context_unref(l.sub_ctx);
        g_mutex_clear(&l.lock);
        g_cond_clear(&l.cond);
        return result->error == NULL;
}
