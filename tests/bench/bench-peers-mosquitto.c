/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mosquitto: `mosquitto -c <tmp conf>` on a free 127.0.0.1 port, QoS 0,
 * unlimited queues, driven through libmosquitto without its background
 * thread: the publisher calls mosquitto_publish() (which writes at once when
 * the client is not threaded) and services the socket between bursts; a
 * subscriber calls mosquitto_loop_read() back to back while messages come
 * and only polls when a read produced nothing. That is as much batching as
 * libmosquitto allows: it reads a packet at a time and writes one per call.
 */
#include "bench-system.h"

#include <mosquitto.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#define MQ_TOPIC "events/process/lifecycle"
#define MQ_PATTERN "events/process/+"
#define MQ_TIMEOUT_MS 10000
#define MQ_CHUNK 100 /* topic filters per SUBSCRIBE packet for the idle connection */

struct _BenchServer {
        pid_t pid;
        guint16 port;
        char *conf_path;
        char *log_path;
};

static guint server_serial;

static BenchServer *mq_start(const BenchOptions *opts, GError **error)
{
        const char *tmp = bench_tmpdir(error);
        g_autofree char *conf = NULL;
        BenchServer *s;
        guint serial = ++server_serial;

        if (!tmp)
                return NULL;
        if (!opts->mosquitto_path || !g_file_test(opts->mosquitto_path, G_FILE_TEST_IS_EXECUTABLE)) {
                g_set_error(error, BENCH_ERROR, 0, "mosquitto not found (--mosquitto PATH)");
                return NULL;
        }
        s = g_new0(BenchServer, 1);
        s->port = bench_free_port();
        s->conf_path = g_strdup_printf("%s/mosquitto-%u.conf", tmp, serial);
        s->log_path = g_strdup_printf("%s/mosquitto-%u.log", tmp, serial);
        conf = g_strdup_printf("# written by bench-eventbus\n"
                               "listener %u 127.0.0.1\n"
                               "allow_anonymous true\n"
                               "max_queued_messages 0\n"
                               "max_inflight_messages 0\n"
                               "persistence false\n"
                               "set_tcp_nodelay true\n"
                               "log_dest stderr\n"
                               "log_type error\n"
                               "log_type warning\n",
                               s->port);
        if (!g_file_set_contents(s->conf_path, conf, -1, error))
                goto fail;
        {
                const char *argv[] = {opts->mosquitto_path, "-c", s->conf_path, NULL};

                s->pid = bench_spawn(argv, s->log_path, error);
        }
        if (s->pid < 0)
                goto fail;
        {
                g_autoptr(GError) inner = NULL;

                if (!bench_wait_tcp(s->port, s->pid, MQ_TIMEOUT_MS, &inner)) {
                        g_autofree char *tail = bench_log_tail(s->log_path, 2000);

                        g_set_error(error, BENCH_ERROR, 0, "%s -c %s: %s\n--- log ---\n%s",
                                    opts->mosquitto_path, s->conf_path, inner->message, tail);
                        goto fail;
                }
        }
        return s;

fail:
        if (s->pid > 0)
                bench_stop(s->pid);
        g_free(s->conf_path);
        g_free(s->log_path);
        g_free(s);
        return NULL;
}

static void mq_stop(BenchServer *s)
{
        bench_stop(s->pid);
        unlink(s->conf_path);
        g_free(s->conf_path);
        g_free(s->log_path);
        g_free(s);
}

static pid_t mq_server_pid(BenchServer *s)
{
        return s->pid;
}

/* ---- a client --------------------------------------------------------------- */

typedef struct {
        struct mosquitto *mosq;
        int connack; /* -1 until CONNACK */
        guint subacks;
        BenchSubState *state;
        gboolean lost;
} Client;

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
        ((Client *)obj)->connack = rc;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
        ((Client *)obj)->lost = TRUE;
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted_qos)
{
        ((Client *)obj)->subacks++;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
        Client *c = obj;

        if (c->state)
                bench_sub_deliver(c->state, msg->payload, (gsize)msg->payloadlen);
}

static gboolean mq_error(GError **error, const char *what, int rc)
{
        g_set_error(error, BENCH_ERROR, 0, "mosquitto %s: %s", what, mosquitto_strerror(rc));
        return FALSE;
}

/* Runs the client's loop on this thread until *done != 0 changes or the timeout. */
static gboolean loop_until(Client *c, const guint *counter, guint want, const int *flag, GError **error)
{
        guint64 deadline = bench_now_ns() + (guint64)MQ_TIMEOUT_MS * 1000000u;

        while ((counter && *counter < want) || (flag && *flag < 0)) {
                int rc = mosquitto_loop(c->mosq, 100, 1);

                if (rc != MOSQ_ERR_SUCCESS)
                        return mq_error(error, "loop", rc);
                if (bench_now_ns() > deadline) {
                        g_set_error(error, BENCH_ERROR, 0, "mosquitto: no answer in %u ms", MQ_TIMEOUT_MS);
                        return FALSE;
                }
        }
        return TRUE;
}

static gboolean client_open(Client *c, BenchServer *s, const char *id, GError **error)
{
        int rc;

        c->connack = -1;
        c->mosq = mosquitto_new(id, true, c);
        if (!c->mosq)
                return mq_error(error, "new", MOSQ_ERR_NOMEM);
        mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(c->mosq, on_connect);
        mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
        mosquitto_subscribe_callback_set(c->mosq, on_subscribe);
        mosquitto_message_callback_set(c->mosq, on_message);
        rc = mosquitto_connect(c->mosq, "127.0.0.1", s->port, 60);
        if (rc != MOSQ_ERR_SUCCESS)
                return mq_error(error, "connect", rc);
        if (!loop_until(c, NULL, 0, &c->connack, error))
                return FALSE;
        if (c->connack != 0)
                return mq_error(error, "CONNACK", MOSQ_ERR_CONN_REFUSED);
        return TRUE;
}

static void client_close(Client *c)
{
        if (c->mosq) {
                mosquitto_disconnect(c->mosq);
                mosquitto_destroy(c->mosq);
                c->mosq = NULL;
        }
}

static gboolean wait_fd(struct mosquitto *mosq, short events, int timeout_ms)
{
        struct pollfd pfd = {.fd = mosquitto_socket(mosq), .events = events};

        return poll(&pfd, 1, timeout_ms) > 0;
}

/* ---- publisher ---------------------------------------------------------------- */

struct _BenchPub {
        Client c;
};

static BenchPub *mq_pub_open(BenchServer *s, gboolean low_latency, GError **error)
{
        BenchPub *p = g_new0(BenchPub, 1);

        if (!client_open(&p->c, s, "bench-pub", error)) {
                client_close(&p->c);
                g_free(p);
                return NULL;
        }
        return p;
}

static gboolean mq_pub_send(BenchPub *p, const guint8 *payload, gsize len, GError **error)
{
        int rc = mosquitto_publish(p->c.mosq, NULL, MQ_TOPIC, (int)len, payload, 0, false);

        return rc == MOSQ_ERR_SUCCESS || mq_error(error, "publish", rc);
}

static gboolean mq_pub_poll(BenchPub *p, GError **error)
{
        int rc;

        if (!mosquitto_want_write(p->c.mosq))
                return TRUE;
        rc = mosquitto_loop_write(p->c.mosq, 1);
        return rc == MOSQ_ERR_SUCCESS || mq_error(error, "write", rc);
}

static gboolean mq_pub_flush(BenchPub *p, GError **error)
{
        while (mosquitto_want_write(p->c.mosq)) {
                int rc;

                wait_fd(p->c.mosq, POLLOUT, 100);
                rc = mosquitto_loop_write(p->c.mosq, 1);
                if (rc != MOSQ_ERR_SUCCESS)
                        return mq_error(error, "write", rc);
        }
        return TRUE;
}

static void mq_pub_close(BenchPub *p)
{
        client_close(&p->c);
        g_free(p);
}

/* ---- subscriber -------------------------------------------------------------- */

struct _BenchSub {
        Client c;
};

static BenchSub *mq_sub_open(BenchServer *s, BenchSubState *state, GError **error)
{
        BenchSub *sub = g_new0(BenchSub, 1);
        g_autofree char *id = g_strdup_printf("bench-sub-%u", state->index);
        int rc;

        if (!client_open(&sub->c, s, id, error))
                goto fail;
        rc = mosquitto_subscribe(sub->c.mosq, NULL, MQ_PATTERN, 0);
        if (rc != MOSQ_ERR_SUCCESS) {
                mq_error(error, "subscribe", rc);
                goto fail;
        }
        if (!loop_until(&sub->c, &sub->c.subacks, 1, NULL, error))
                goto fail;
        sub->c.state = state;
        return sub;

fail:
        client_close(&sub->c);
        g_free(sub);
        return NULL;
}

static gboolean mq_sub_run(BenchSub *sub, GError **error)
{
        BenchSubState *state = sub->c.state;

        while (!atomic_load(&state->done) && !bench_run_aborted(state->run)) {
                guint64 before = atomic_load_explicit(&state->received, memory_order_relaxed);
                int rc = mosquitto_loop_read(sub->c.mosq, 1);

                if (rc != MOSQ_ERR_SUCCESS)
                        return mq_error(error, "read", rc);
                if (sub->c.lost) {
                        g_set_error(error, BENCH_ERROR, 0, "mosquitto: connection lost");
                        return FALSE;
                }
                if (atomic_load_explicit(&state->received, memory_order_relaxed) == before) {
                        /* nothing (or only part of a packet) was there */
                        mosquitto_loop_misc(sub->c.mosq);
                        wait_fd(sub->c.mosq, POLLIN, 100);
                }
        }
        return TRUE;
}

static void mq_sub_wakeup(BenchSub *sub)
{
        /* sub_run polls with a 100 ms timeout and checks the abort flag */
}

static void mq_sub_close(BenchSub *sub)
{
        client_close(&sub->c);
        g_free(sub);
}

/* ---- the idle connection with many subscriptions ------------------------------ */

struct _BenchIdle {
        Client c;
};

static BenchIdle *mq_idle_open(BenchServer *s, guint n, GError **error)
{
        BenchIdle *idle = g_new0(BenchIdle, 1);
        guint packets = 0;
        int rc;

        if (!client_open(&idle->c, s, "bench-idle", error))
                goto fail;
        for (guint i = 0; i < n; i += MQ_CHUNK) {
                guint k = MIN(MQ_CHUNK, n - i);
                char *patterns[MQ_CHUNK];

                for (guint j = 0; j < k; j++)
                        patterns[j] = bench_idle_pattern(i + j, '/', "+", "#");
                rc = mosquitto_subscribe_multiple(idle->c.mosq, NULL, (int)k, patterns, 0, 0, NULL);
                for (guint j = 0; j < k; j++)
                        g_free(patterns[j]);
                if (rc != MOSQ_ERR_SUCCESS) {
                        mq_error(error, "subscribe", rc);
                        goto fail;
                }
                packets++;
                /* keep the output queue short */
                if (!loop_until(&idle->c, &idle->c.subacks, packets > 8 ? packets - 8 : 0, NULL, error))
                        goto fail;
        }
        if (!loop_until(&idle->c, &idle->c.subacks, packets, NULL, error))
                goto fail;
        /* libmosquitto's own thread answers keepalives from now on */
        rc = mosquitto_loop_start(idle->c.mosq);
        if (rc != MOSQ_ERR_SUCCESS) {
                mq_error(error, "loop_start", rc);
                goto fail;
        }
        return idle;

fail:
        client_close(&idle->c);
        g_free(idle);
        return NULL;
}

static void mq_idle_close(BenchIdle *idle)
{
        mosquitto_disconnect(idle->c.mosq);
        mosquitto_loop_stop(idle->c.mosq, false);
        mosquitto_destroy(idle->c.mosq);
        g_free(idle);
}

const BenchSystem bench_system_mosquitto = {
        .name = "mosquitto",
        .description =
                "mosquitto on 127.0.0.1 TCP, QoS 0, libmosquitto (direct writes, loop_read per packet)",
        .start = mq_start,
        .stop = mq_stop,
        .server_pid = mq_server_pid,
        .pub_open = mq_pub_open,
        .pub_send = mq_pub_send,
        .pub_poll = mq_pub_poll,
        .pub_flush = mq_pub_flush,
        .pub_close = mq_pub_close,
        .sub_open = mq_sub_open,
        .sub_run = mq_sub_run,
        .sub_wakeup = mq_sub_wakeup,
        .sub_close = mq_sub_close,
        .idle_open = mq_idle_open,
        .idle_close = mq_idle_close,
};
