/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NATS: `nats-server -a 127.0.0.1 -p <free port>` (TCP loopback: it has no
 * Unix socket listener), driven through the NATS C client. The publisher
 * calls natsConnection_Publish() in a loop; the library buffers and its
 * flusher thread writes, so output is batched without our help (paced runs
 * set SendAsap instead, so each message is written at once). Each subscriber
 * has its own connection and an async subscription whose pending limits are
 * lifted, so the client never drops.
 */
#include "bench-system.h"

#include <nats/nats.h>
#include <stdio.h>

#define NATS_SUBJECT "events.process.lifecycle"
#define NATS_PATTERN "events.process.*"
#define NATS_TIMEOUT_MS 10000

struct _BenchServer {
        pid_t pid;
        guint16 port;
        char *url;
        char *log_path;
};

static guint server_serial;

static gboolean nats_error(GError **error, const char *what, natsStatus st)
{
        g_set_error(error, BENCH_ERROR, 0, "nats %s: %s (%s)", what, natsStatus_GetText(st),
                    nats_GetLastError(NULL) ? nats_GetLastError(NULL) : "");
        return FALSE;
}

static BenchServer *nats_start(const BenchOptions *opts, GError **error)
{
        const char *tmp = bench_tmpdir(error);
        char port[16];
        BenchServer *s;

        if (!tmp)
                return NULL;
        if (!opts->nats_server_path || !g_file_test(opts->nats_server_path, G_FILE_TEST_IS_EXECUTABLE)) {
                g_set_error(error, BENCH_ERROR, 0, "nats-server not found (--nats-server PATH)");
                return NULL;
        }
        s = g_new0(BenchServer, 1);
        s->port = bench_free_port();
        s->url = g_strdup_printf("nats://127.0.0.1:%u", s->port);
        s->log_path = g_strdup_printf("%s/nats-server-%u.log", tmp, ++server_serial);
        g_snprintf(port, sizeof port, "%u", s->port);
        {
                const char *argv[] = {opts->nats_server_path, "-a", "127.0.0.1", "-p", port, NULL};

                s->pid = bench_spawn(argv, s->log_path, error);
        }
        if (s->pid < 0)
                goto fail;
        {
                g_autoptr(GError) inner = NULL;

                if (!bench_wait_tcp(s->port, s->pid, NATS_TIMEOUT_MS, &inner)) {
                        g_autofree char *tail = bench_log_tail(s->log_path, 2000);

                        g_set_error(error, BENCH_ERROR, 0, "%s -p %s: %s\n--- log ---\n%s",
                                    opts->nats_server_path, port, inner->message, tail);
                        goto fail;
                }
        }
        return s;

fail:
        if (s->pid > 0)
                bench_stop(s->pid);
        g_free(s->url);
        g_free(s->log_path);
        g_free(s);
        return NULL;
}

static void nats_stop(BenchServer *s)
{
        bench_stop(s->pid);
        g_free(s->url);
        g_free(s->log_path);
        g_free(s);
}

static pid_t nats_server_pid(BenchServer *s)
{
        return s->pid;
}

/* ---- connections ------------------------------------------------------------ */

typedef struct {
        natsConnection *nc;
        GMutex lock;
        char *async_error; /* from the error handler (slow consumer…) */
} Conn;

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
        Conn *c = closure;

        g_mutex_lock(&c->lock);
        if (!c->async_error)
                c->async_error = g_strdup(natsStatus_GetText(err));
        g_mutex_unlock(&c->lock);
}

static gboolean conn_open(Conn *c, BenchServer *s, gboolean send_asap, GError **error)
{
        natsOptions *opts = NULL;
        natsStatus st;

        g_mutex_init(&c->lock);
        st = natsOptions_Create(&opts);
        if (st == NATS_OK)
                st = natsOptions_SetURL(opts, s->url);
        if (st == NATS_OK)
                st = natsOptions_SetAllowReconnect(opts, false);
        if (st == NATS_OK)
                st = natsOptions_SetTimeout(opts, NATS_TIMEOUT_MS);
        if (st == NATS_OK)
                st = natsOptions_SetSendAsap(opts, send_asap);
        if (st == NATS_OK)
                st = natsOptions_SetErrorHandler(opts, on_async_error, c);
        if (st == NATS_OK)
                st = natsConnection_Connect(&c->nc, opts);
        natsOptions_Destroy(opts);
        if (st != NATS_OK)
                return nats_error(error, "connect", st);
        return TRUE;
}

static gboolean conn_check(Conn *c, GError **error)
{
        gboolean ok = TRUE;

        g_mutex_lock(&c->lock);
        if (c->async_error) {
                g_set_error(error, BENCH_ERROR, 0, "nats: %s", c->async_error);
                ok = FALSE;
        }
        g_mutex_unlock(&c->lock);
        if (ok && c->nc && natsConnection_Status(c->nc) == NATS_CONN_STATUS_CLOSED) {
                g_set_error(error, BENCH_ERROR, 0, "nats: connection closed");
                ok = FALSE;
        }
        return ok;
}

static void conn_close(Conn *c)
{
        if (c->nc) {
                natsConnection_Close(c->nc);
                natsConnection_Destroy(c->nc);
                c->nc = NULL;
        }
        g_free(c->async_error);
        g_mutex_clear(&c->lock);
}

/* ---- publisher ---------------------------------------------------------------- */

struct _BenchPub {
        Conn c;
        gboolean send_asap;
};

static BenchPub *nats_pub_open(BenchServer *s, gboolean low_latency, GError **error)
{
        BenchPub *p = g_new0(BenchPub, 1);

        p->send_asap = low_latency;
        if (!conn_open(&p->c, s, low_latency, error)) {
                conn_close(&p->c);
                g_free(p);
                return NULL;
        }
        return p;
}

static gboolean nats_pub_send(BenchPub *p, const guint8 *payload, gsize len, GError **error)
{
        natsStatus st = natsConnection_Publish(p->c.nc, NATS_SUBJECT, payload, (int)len);

        return st == NATS_OK || nats_error(error, "publish", st);
}

static gboolean nats_pub_poll(BenchPub *p, GError **error)
{
        /* the library's flusher thread writes the buffer */
        return conn_check(&p->c, error);
}

static gboolean nats_pub_flush(BenchPub *p, GError **error)
{
        natsStatus st;

        if (p->send_asap) /* already written by Publish; a Flush is a round trip */
                return conn_check(&p->c, error);
        st = natsConnection_FlushTimeout(p->c.nc, 30000);
        return st == NATS_OK || nats_error(error, "flush", st);
}

static void nats_pub_close(BenchPub *p)
{
        conn_close(&p->c);
        g_free(p);
}

/* ---- subscriber -------------------------------------------------------------- */

struct _BenchSub {
        Conn c;
        natsSubscription *sub;
        BenchSubState *state;
};

static void on_msg(natsConnection *nc, natsSubscription *nsub, natsMsg *msg, void *closure)
{
        BenchSub *sub = closure;

        bench_sub_deliver(sub->state, natsMsg_GetData(msg), (gsize)natsMsg_GetDataLength(msg));
        natsMsg_Destroy(msg);
}

static void nats_sub_close(BenchSub *sub)
{
        if (sub->sub) {
                natsSubscription_Unsubscribe(sub->sub);
                natsSubscription_Destroy(sub->sub);
        }
        conn_close(&sub->c);
        g_free(sub);
}

static BenchSub *nats_sub_open(BenchServer *s, BenchSubState *state, GError **error)
{
        BenchSub *sub = g_new0(BenchSub, 1);
        natsStatus st;

        sub->state = state;
        if (!conn_open(&sub->c, s, FALSE, error))
                goto fail;
        st = natsConnection_Subscribe(&sub->sub, sub->c.nc, NATS_PATTERN, on_msg, sub);
        if (st == NATS_OK)
                st = natsSubscription_SetPendingLimits(sub->sub, -1, -1);
        if (st == NATS_OK) /* the server has the subscription once it answered the PING */
                st = natsConnection_FlushTimeout(sub->c.nc, NATS_TIMEOUT_MS);
        if (st != NATS_OK) {
                nats_error(error, "subscribe", st);
                goto fail;
        }
        return sub;

fail:
        nats_sub_close(sub);
        return NULL;
}

static gboolean nats_sub_run(BenchSub *sub, GError **error)
{
        /* messages arrive on the subscription's own delivery thread */
        while (!atomic_load(&sub->state->done) && !bench_run_aborted(sub->state->run)) {
                if (!conn_check(&sub->c, error))
                        return FALSE;
                g_usleep(2000);
        }
        return TRUE;
}

static void nats_sub_wakeup(BenchSub *sub)
{
}

/* ---- the idle connection with many subscriptions ------------------------------ */

struct _BenchIdle {
        Conn c;
        natsSubscription **subs;
        guint n;
};

static void nats_idle_close(BenchIdle *idle)
{
        for (guint i = 0; i < idle->n; i++)
                natsSubscription_Destroy(idle->subs[i]);
        g_free(idle->subs);
        conn_close(&idle->c);
        g_free(idle);
}

static BenchIdle *nats_idle_open(BenchServer *s, guint n, GError **error)
{
        BenchIdle *idle = g_new0(BenchIdle, 1);
        natsStatus st = NATS_OK;

        idle->subs = g_new0(natsSubscription *, n);
        if (!conn_open(&idle->c, s, FALSE, error))
                goto fail;
        /* synchronous subscriptions: no delivery thread each */
        for (guint i = 0; i < n && st == NATS_OK; i++) {
                g_autofree char *pattern = bench_idle_pattern(i, '.', "*", ">");

                st = natsConnection_SubscribeSync(&idle->subs[i], idle->c.nc, pattern);
                if (st == NATS_OK)
                        idle->n++;
        }
        if (st == NATS_OK)
                st = natsConnection_FlushTimeout(idle->c.nc, 60000);
        if (st != NATS_OK) {
                nats_error(error, "subscribe", st);
                goto fail;
        }
        return idle;

fail:
        nats_idle_close(idle);
        return NULL;
}

const BenchSystem bench_system_nats = {
        .name = "nats",
        .description = "nats-server on 127.0.0.1 TCP, NATS C client, async subscriber, unlimited pending",
        .start = nats_start,
        .stop = nats_stop,
        .server_pid = nats_server_pid,
        .pub_open = nats_pub_open,
        .pub_send = nats_pub_send,
        .pub_poll = nats_pub_poll,
        .pub_flush = nats_pub_flush,
        .pub_close = nats_pub_close,
        .sub_open = nats_sub_open,
        .sub_run = nats_sub_run,
        .sub_wakeup = nats_sub_wakeup,
        .sub_close = nats_sub_close,
        .idle_open = nats_idle_open,
        .idle_close = nats_idle_close,
};
