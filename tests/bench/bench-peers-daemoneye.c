/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Our broker: the build's daemoneye-agent on a socket in a temp dir, driven
 * through libdaemoneye-eventbus. Every endpoint has its own GMainContext,
 * pushed as thread default on the thread that uses it; the publisher queues
 * a burst of envelopes and then lets the client write them (one non-blocking
 * iteration), so output is batched the way the client library intends.
 */
#include "bench-system.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "deb-client.h"
#include "deb-error.h"

#define DEB_TOPIC "events.process.lifecycle"
#define DEB_PATTERN "events.process.+"
#define CONNECT_TIMEOUT_MS 10000
#define SYNC_TIMEOUT_MS 60000

struct _BenchServer {
        pid_t pid;
        char *socket_path;
        char *conf_path;
        char *log_path;
};

static guint server_serial;

static char *agent_config(const char *socket_path, guint message_buffer_size)
{
        /* message_buffer_size: the window (8192 by default) must fit in one
         * subscriber's queue with room to spare, or the broker would drop. */
        return g_strdup_printf("# written by bench-eventbus\n"
                               "[broker]\n"
                               "socket_path=%s\n"
                               "message_buffer_size=%u\n"
                               "max_subscriptions_per_connection=20000\n"
                               "max_subscribers=1024\n"
                               "enable_metrics=true\n",
                               socket_path, message_buffer_size);
}

BenchServer *bench_daemoneye_start(const BenchOptions *opts, GError **error)
{
        g_autofree char *conf = NULL;
        const char *tmp = bench_tmpdir(error);
        BenchServer *s;
        guint serial = ++server_serial;

        if (!tmp)
                return NULL;
        if (!opts->agent_path || !g_file_test(opts->agent_path, G_FILE_TEST_IS_EXECUTABLE)) {
                g_set_error(error, BENCH_ERROR, 0,
                            "daemoneye-agent not found (pass --agent or set DAEMONEYE_AGENT)");
                return NULL;
        }
        s = g_new0(BenchServer, 1);
        s->socket_path = g_strdup_printf("%s/eventbus-%u.sock", tmp, serial);
        s->conf_path = g_strdup_printf("%s/daemoneye-%u.conf", tmp, serial);
        s->log_path = g_strdup_printf("%s/daemoneye-agent-%u.log", tmp, serial);
        conf = agent_config(s->socket_path, opts->message_buffer_size);
        if (!g_file_set_contents(s->conf_path, conf, -1, error))
                goto fail;
        {
                const char *argv[] = {opts->agent_path, "--config", s->conf_path, NULL};

                s->pid = bench_spawn(argv, s->log_path, error);
        }
        if (s->pid < 0)
                goto fail;
        {
                g_autoptr(GError) inner = NULL;

                if (!bench_wait_unix(s->socket_path, s->pid, CONNECT_TIMEOUT_MS, &inner)) {
                        g_autofree char *tail = bench_log_tail(s->log_path, 2000);

                        g_set_error(error, BENCH_ERROR, 0,
                                    "%s --config %s: %s\n--- agent log (tail) ---\n%s", opts->agent_path,
                                    s->conf_path, inner->message, tail);
                        goto fail;
                }
        }
        return s;

fail:
        if (s->pid > 0)
                bench_stop(s->pid);
        g_free(s->socket_path);
        g_free(s->conf_path);
        g_free(s->log_path);
        g_free(s);
        return NULL;
}

const char *bench_daemoneye_socket_path(BenchServer *s)
{
        return s->socket_path;
}

static void deb_stop(BenchServer *s)
{
        bench_stop(s->pid);
        unlink(s->socket_path);
        unlink(s->conf_path);
        g_free(s->socket_path);
        g_free(s->conf_path);
        g_free(s->log_path);
        g_free(s);
}

static pid_t deb_server_pid(BenchServer *s)
{
        return s->pid;
}

gsize bench_daemoneye_envelope_size(void)
{
        /* what deb_client_publish() sends for one benchmark message: topic,
         * type, a UUID correlation (also the root), sequence, payload,
         * timestamp, sender */
        static char uuid[] = "0f8fad5b-d9cb-469f-a165-70867728950e";
        guint8 payload[BENCH_PAYLOAD_SIZE] = {0};
        DebCorrelation corr = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;

        corr.correlation_id = uuid;
        corr.root_correlation_id = uuid;
        corr.sequence_number = 1000000;
        env.topic = (char *)DEB_TOPIC;
        env.message_type = DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_EVENT;
        env.correlation = &corr;
        env.payload.data = payload;
        env.payload.len = sizeof payload;
        env.timestamp_us = (guint64)g_get_real_time();
        env.sender = (char *)"bench-pub";
        return daemoneye__eventbus__envelope__get_packed_size(&env);
}

/* ---- endpoints ------------------------------------------------------------ */

typedef struct {
        GMainContext *ctx;
        DebClient *client;
        GError *error; /* first fatal error reported by the client */
} Endpoint;

static void on_client_error(DebClient *client, const GError *error, gboolean fatal, gpointer user_data)
{
        Endpoint *ep = user_data;

        if (fatal && !ep->error)
                ep->error = g_error_copy(error);
}

static gboolean endpoint_open(Endpoint *ep, BenchServer *s, const char *id, GError **error)
{
        ep->ctx = g_main_context_new();
        g_main_context_push_thread_default(ep->ctx);
        ep->client = deb_client_new(id);
        deb_client_set_error_func(ep->client, on_client_error, ep);
        if (!deb_client_connect_sync(ep->client, s->socket_path, CONNECT_TIMEOUT_MS, error)) {
                g_prefix_error(error, "connect %s: ", s->socket_path);
                return FALSE;
        }
        return TRUE;
}

static void endpoint_close(Endpoint *ep)
{
        if (ep->client) {
                deb_client_disconnect(ep->client, 5000);
                g_clear_pointer(&ep->client, deb_client_unref);
        }
        if (ep->ctx) {
                g_main_context_pop_thread_default(ep->ctx);
                g_clear_pointer(&ep->ctx, g_main_context_unref);
        }
        g_clear_error(&ep->error);
}

static gboolean endpoint_check(Endpoint *ep, GError **error)
{
        if (ep->error) {
                g_propagate_error(error, g_error_copy(ep->error));
                return FALSE;
        }
        return TRUE;
}

struct _BenchPub {
        Endpoint ep;
        gboolean low_latency;
};

static BenchPub *deb_pub_open(BenchServer *s, gboolean low_latency, GError **error)
{
        BenchPub *p = g_new0(BenchPub, 1);

        p->low_latency = low_latency;
        if (!endpoint_open(&p->ep, s, "bench-pub", error)) {
                endpoint_close(&p->ep);
                g_free(p);
                return NULL;
        }
        return p;
}

static gboolean deb_pub_send(BenchPub *p, const guint8 *payload, gsize len, GError **error)
{
        return deb_client_publish(p->ep.client, DEB_TOPIC, payload, len, NULL, error);
}

static gboolean deb_pub_poll(BenchPub *p, GError **error)
{
        if (deb_client_get_pending_bytes(p->ep.client) > 0)
                g_main_context_iteration(p->ep.ctx, FALSE);
        return endpoint_check(&p->ep, error);
}

static gboolean deb_pub_flush(BenchPub *p, GError **error)
{
        if (!deb_client_flush(p->ep.client, 30000, error))
                return FALSE;
        return endpoint_check(&p->ep, error);
}

static void deb_pub_close(BenchPub *p)
{
        endpoint_close(&p->ep);
        g_free(p);
}

struct _BenchSub {
        Endpoint ep;
        BenchSubState *state;
};

static void on_message(DebClient *client, const DebEnvelope *env, gpointer user_data)
{
        BenchSub *sub = user_data;

        bench_sub_deliver(sub->state, env->payload.data, env->payload.len);
}

static BenchSub *deb_sub_open(BenchServer *s, BenchSubState *state, GError **error)
{
        BenchSub *sub = g_new0(BenchSub, 1);
        g_autofree char *id = g_strdup_printf("bench-sub-%u", state->index);

        sub->state = state;
        if (!endpoint_open(&sub->ep, s, id, error) ||
            !deb_client_subscribe(sub->ep.client, DEB_PATTERN, on_message, sub, NULL, error) ||
            !deb_client_sync(sub->ep.client, SYNC_TIMEOUT_MS, error)) {
                endpoint_close(&sub->ep);
                g_free(sub);
                return NULL;
        }
        return sub;
}

static gboolean deb_sub_run(BenchSub *sub, GError **error)
{
        BenchSubState *state = sub->state;

        while (!atomic_load(&state->done) && !bench_run_aborted(state->run) && !sub->ep.error)
                g_main_context_iteration(sub->ep.ctx, TRUE);
        return endpoint_check(&sub->ep, error);
}

static void deb_sub_wakeup(BenchSub *sub)
{
        g_main_context_wakeup(sub->ep.ctx);
}

static void deb_sub_close(BenchSub *sub)
{
        endpoint_close(&sub->ep);
        g_free(sub);
}

struct _BenchIdle {
        Endpoint ep;
};

static void on_never(DebClient *client, const DebEnvelope *env, gpointer user_data)
{
}

static BenchIdle *deb_idle_open(BenchServer *s, guint n, GError **error)
{
        BenchIdle *idle = g_new0(BenchIdle, 1);

        if (!endpoint_open(&idle->ep, s, "bench-idle", error))
                goto fail;
        for (guint i = 0; i < n; i++) {
                g_autofree char *pattern = bench_idle_pattern(i, '.', "+", "#");

                if (!deb_client_subscribe(idle->ep.client, pattern, on_never, NULL, NULL, error))
                        goto fail;
        }
        if (!deb_client_sync(idle->ep.client, SYNC_TIMEOUT_MS, error))
                goto fail;
        /* The connection stays open, unserviced, on this thread's context;
         * nothing is ever delivered to it. */
        g_main_context_pop_thread_default(idle->ep.ctx);
        return idle;

fail:
        endpoint_close(&idle->ep);
        g_free(idle);
        return NULL;
}

static void deb_idle_close(BenchIdle *idle)
{
        g_main_context_push_thread_default(idle->ep.ctx);
        endpoint_close(&idle->ep);
        g_free(idle);
}

const BenchSystem bench_system_daemoneye = {
        .name = "daemoneye",
        .description =
                "daemoneye-agent on a Unix socket, libdaemoneye-eventbus, one GMainContext per thread",
        .start = bench_daemoneye_start,
        .stop = deb_stop,
        .server_pid = deb_server_pid,
        .pub_open = deb_pub_open,
        .pub_send = deb_pub_send,
        .pub_poll = deb_pub_poll,
        .pub_flush = deb_pub_flush,
        .pub_close = deb_pub_close,
        .sub_open = deb_sub_open,
        .sub_run = deb_sub_run,
        .sub_wakeup = deb_sub_wakeup,
        .sub_close = deb_sub_close,
        .idle_open = deb_idle_open,
        .idle_close = deb_idle_close,
};
