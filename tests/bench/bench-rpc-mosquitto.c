/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request/reply over Mosquitto, the usual way to do it with MQTT: the
 * requester publishes to a request topic with a correlation id in the
 * payload, an echo client (a thread with its own connection, standing in
 * for the collector) republishes the payload to response/<id>, to which the
 * requester is subscribed. QoS 0, MQTT 3.1.1, payloads of 64 bytes each way.
 *
 * The server is started by bench-peers-mosquitto.c. libmosquitto is driven
 * without its background thread, as well as it allows: a publish outside a
 * callback is written at once; reads go packet by packet
 * (mosquitto_loop_read() reads one QoS 0 packet per call), back to back
 * while they produce messages, and the socket is polled only when one
 * produced nothing. The echo publishes from its message callback (queued
 * there) and writes the queue after every read.
 */
#include "bench-rpc.h"

#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define REQUEST_TOPIC "rpc/request/bench"
#define RESPONSE_PREFIX "response/"
#define RESPONSE_PATTERN "response/+"
#define MQ_TIMEOUT_MS 10000

typedef struct {
        struct mosquitto *mosq;
        void *owner; /* what the message callback is for; every callback gets the Client */
        int connack; /* -1 until CONNACK */
        gboolean subscribed;
        gboolean lost;
} Client;

struct _BenchRpcPeer {
        const BenchRpcOptions *opts;
        BenchServer *server;
        guint16 port;
        Client req;

        /* the echo thread */
        GThread *echo_thread;
        Client echo;
        atomic_bool echo_stop;
        GMutex lock;
        GCond cond;
        gboolean echo_ready;
        char *echo_error; /* under lock */
        clockid_t echo_clock;
        guint64 echoed;

        /* the run in progress (requester thread only) */
        guint64 n, issued, completed;
        guint64 *start_ns; /* by call index */
        BenchSamples *samples;
        char *bad_reply; /* first reply that matched no call */
};

static gboolean mq_error(GError **error, const char *what, int rc)
{
        g_set_error(error, BENCH_ERROR, 0, "mosquitto %s: %s", what, mosquitto_strerror(rc));
        return FALSE;
}

/* ---- the server's port ------------------------------------------------------ */

/*
 * The listening TCP port of @pid: the peer that started the server keeps it
 * to itself, so find the socket inode among @pid's fds in /proc/net/tcp.
 */
static guint16 listening_port(pid_t pid)
{
        g_autofree char *fd_dir = g_strdup_printf("/proc/%d/fd", (int)pid);
        g_autofree char *tcp = NULL;
        g_autoptr(GHashTable) inodes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_auto(GStrv) lines = NULL;
        GDir *dir = g_dir_open(fd_dir, 0, NULL);
        const char *name;
        g_autofree char *tcp_path = g_strdup_printf("/proc/%d/net/tcp", (int)pid);

        if (!dir)
                return 0;
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *link = g_build_filename(fd_dir, name, NULL);
                g_autofree char *target = g_file_read_link(link, NULL);

                if (target && g_str_has_prefix(target, "socket:[") && g_str_has_suffix(target, "]"))
                        g_hash_table_add(inodes, g_strndup(target + 8, strlen(target) - 9));
        }
        g_dir_close(dir);
        if (!g_file_get_contents(tcp_path, &tcp, NULL, NULL))
                return 0;
        lines = g_strsplit(tcp, "\n", -1);
        for (char **l = lines + 1; *l; l++) {
                /* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
                g_auto(GStrv) f = g_strsplit_set(g_strstrip(*l), " ", -1);
                GPtrArray *fields = g_ptr_array_new();
                const char *colon;

                for (char **x = f; *x; x++)
                        if (**x)
                                g_ptr_array_add(fields, *x);
                if (fields->len >= 10 && g_str_equal(fields->pdata[3], "0A") &&
                    g_hash_table_contains(inodes, fields->pdata[9]) &&
                    (colon = strchr(fields->pdata[1], ':'))) {
                        guint16 port = (guint16)g_ascii_strtoull(colon + 1, NULL, 16);

                        g_ptr_array_free(fields, TRUE);
                        return port;
                }
                g_ptr_array_free(fields, TRUE);
        }
        return 0;
}

/* ---- a connection ------------------------------------------------------------- */

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
        ((Client *)obj)->subscribed = TRUE;
}

/* Connects and subscribes to @pattern; messages go to @on_message with @obj. */
static gboolean client_open(Client *c, guint16 port, const char *id, const char *pattern,
                            void (*on_message)(struct mosquitto *, void *, const struct mosquitto_message *),
                            void *obj, GError **error)
{
        guint64 deadline = bench_now_ns() + (guint64)MQ_TIMEOUT_MS * 1000000u;
        int rc;

        c->connack = -1;
        c->owner = obj;
        c->mosq = mosquitto_new(id, true, c);
        if (!c->mosq)
                return mq_error(error, "new", MOSQ_ERR_NOMEM);
        mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        mosquitto_connect_callback_set(c->mosq, on_connect);
        mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
        mosquitto_subscribe_callback_set(c->mosq, on_subscribe);
        mosquitto_message_callback_set(c->mosq, on_message);
        rc = mosquitto_connect(c->mosq, "127.0.0.1", port, 60);
        if (rc != MOSQ_ERR_SUCCESS)
                return mq_error(error, "connect", rc);
        while (c->connack < 0 || !c->subscribed) {
                rc = mosquitto_loop(c->mosq, 100, 1);
                if (rc != MOSQ_ERR_SUCCESS)
                        return mq_error(error, "loop", rc);
                if (c->connack > 0)
                        return mq_error(error, "CONNACK", MOSQ_ERR_CONN_REFUSED);
                if (c->connack == 0 && !c->subscribed && pattern) {
                        rc = mosquitto_subscribe(c->mosq, NULL, pattern, 0);
                        if (rc != MOSQ_ERR_SUCCESS)
                                return mq_error(error, "subscribe", rc);
                        pattern = NULL; /* sent; wait for SUBACK */
                }
                if (bench_now_ns() > deadline) {
                        g_set_error(error, BENCH_ERROR, 0,
                                    "mosquitto 127.0.0.1:%u: no CONNACK/SUBACK in %u ms", port,
                                    MQ_TIMEOUT_MS);
                        return FALSE;
                }
        }
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

static short wait_fd(struct mosquitto *mosq, short events, int timeout_ms)
{
        struct pollfd pfd = {.fd = mosquitto_socket(mosq), .events = events};

        return poll(&pfd, 1, timeout_ms) > 0 ? pfd.revents : 0;
}

/* ---- the echo (the responder) --------------------------------------------------- */

static void on_request(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
        BenchRpcPeer *p = ((Client *)obj)->owner;
        char topic[64];

        if (msg->payloadlen != BENCH_PAYLOAD_SIZE)
                return;
        g_snprintf(topic, sizeof topic, RESPONSE_PREFIX "%" G_GUINT64_FORMAT,
                   bench_payload_seq(msg->payload));
        /* inside a callback this only queues; echo_thread writes after the read */
        mosquitto_publish(mosq, NULL, topic, msg->payloadlen, msg->payload, 0, false);
        p->echoed++;
}

static void echo_fail(BenchRpcPeer *p, const char *what, int rc)
{
        g_mutex_lock(&p->lock);
        if (!p->echo_error)
                p->echo_error = g_strdup_printf("echo: %s: %s", what, mosquitto_strerror(rc));
        g_cond_broadcast(&p->cond);
        g_mutex_unlock(&p->lock);
}

static gpointer echo_thread(gpointer data)
{
        BenchRpcPeer *p = data;
        g_autoptr(GError) error = NULL;
        guint64 last_misc = bench_now_ns();

        if (!client_open(&p->echo, p->port, "bench-rpc-echo", REQUEST_TOPIC, on_request, p, &error)) {
                g_mutex_lock(&p->lock);
                p->echo_error = g_strdup_printf("echo: %s", error->message);
                g_cond_broadcast(&p->cond);
                g_mutex_unlock(&p->lock);
                return NULL;
        }
        pthread_getcpuclockid(pthread_self(), &p->echo_clock);
        g_mutex_lock(&p->lock);
        p->echo_ready = TRUE;
        g_cond_broadcast(&p->cond);
        g_mutex_unlock(&p->lock);

        while (!atomic_load(&p->echo_stop)) {
                struct mosquitto *mosq = p->echo.mosq;
                short ev = wait_fd(mosq, POLLIN | (mosquitto_want_write(mosq) ? POLLOUT : 0), 100);
                int rc = MOSQ_ERR_SUCCESS;

                if (ev & (POLLIN | POLLHUP | POLLERR)) {
                        guint64 before;

                        do {
                                before = p->echoed;
                                rc = mosquitto_loop_read(mosq, 1);
                                if (rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(mosq))
                                        rc = mosquitto_loop_write(mosq, 1);
                        } while (rc == MOSQ_ERR_SUCCESS && p->echoed != before);
                } else if (ev & POLLOUT) {
                        rc = mosquitto_loop_write(mosq, 1);
                }
                if (rc != MOSQ_ERR_SUCCESS || p->echo.lost) {
                        echo_fail(p, "connection", rc != MOSQ_ERR_SUCCESS ? rc : MOSQ_ERR_CONN_LOST);
                        break;
                }
                if (bench_now_ns() - last_misc > 1000000000u) {
                        mosquitto_loop_misc(mosq); /* keepalive */
                        last_misc = bench_now_ns();
                }
        }
        client_close(&p->echo);
        return NULL;
}

/* ---- the requester -------------------------------------------------------------- */

static void on_response(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
        BenchRpcPeer *p = ((Client *)obj)->owner;
        guint64 now = bench_now_ns();
        const char *id =
                g_str_has_prefix(msg->topic, RESPONSE_PREFIX) ? msg->topic + strlen(RESPONSE_PREFIX) : "";
        char *end = NULL;
        guint64 index = g_ascii_strtoull(id, &end, 10);

        if (!p->start_ns) /* a late reply of a run that failed */
                return;
        if (!*id || *end || index >= p->issued || p->start_ns[index] == 0 ||
            msg->payloadlen != BENCH_PAYLOAD_SIZE || bench_payload_seq(msg->payload) != index) {
                if (!p->bad_reply)
                        p->bad_reply = g_strdup_printf("reply on '%s' (%d bytes) matches no call in flight",
                                                       msg->topic, msg->payloadlen);
                return;
        }
        bench_samples_add(p->samples, now - p->start_ns[index]);
        p->start_ns[index] = 0;
        p->completed++;
}

static gboolean request_send(BenchRpcPeer *p, GError **error)
{
        guint8 payload[BENCH_PAYLOAD_SIZE];
        guint64 index = p->issued;
        int rc;

        p->start_ns[index] = bench_now_ns();
        bench_payload_fill(payload, index, p->start_ns[index]);
        p->issued++;
        rc = mosquitto_publish(p->req.mosq, NULL, REQUEST_TOPIC, sizeof payload, payload, 0, false);
        return rc == MOSQ_ERR_SUCCESS || mq_error(error, "publish", rc);
}

static gboolean top_up(BenchRpcPeer *p, guint window, GError **error)
{
        while (p->issued < p->n && p->issued - p->completed < window)
                if (!request_send(p, error))
                        return FALSE;
        return TRUE;
}

static gboolean echo_check(BenchRpcPeer *p, GError **error)
{
        gboolean ok;

        g_mutex_lock(&p->lock);
        ok = p->echo_error == NULL;
        if (!ok)
                g_set_error(error, BENCH_ERROR, 0, "%s", p->echo_error);
        g_mutex_unlock(&p->lock);
        return ok;
}

static gboolean mq_rpc_run_calls(BenchRpcPeer *p, guint64 n, guint window, BenchSamples *samples,
                                 GError **error)
{
        struct mosquitto *mosq = p->req.mosq;
        guint64 last_progress = bench_now_ns(), last_misc = last_progress;
        gboolean ok = TRUE;

        window = MAX(window, 1);
        p->n = n;
        p->issued = p->completed = 0;
        p->samples = samples;
        p->start_ns = g_new0(guint64, MAX(n, 1));
        ok = top_up(p, window, error);
        while (ok && p->completed < n) {
                guint64 before = p->completed, now;
                short ev = wait_fd(mosq, POLLIN | (mosquitto_want_write(mosq) ? POLLOUT : 0), 100);
                int rc = MOSQ_ERR_SUCCESS;

                if (ev & (POLLIN | POLLHUP | POLLERR)) {
                        /*
                         * Read on while reads complete calls, unless every call
                         * sent before this read is answered: replies to the
                         * ones just sent cannot be there yet.
                         */
                        for (;;) {
                                guint64 got = p->completed;
                                gboolean older_in_flight;

                                rc = mosquitto_loop_read(mosq, 1);
                                if (rc != MOSQ_ERR_SUCCESS || p->completed == got)
                                        break;
                                older_in_flight = p->issued > p->completed;
                                if (!top_up(p, window, error)) {
                                        ok = FALSE;
                                        break;
                                }
                                if (!older_in_flight || p->completed >= n)
                                        break;
                        }
                }
                if (ok && rc == MOSQ_ERR_SUCCESS && mosquitto_want_write(mosq))
                        rc = mosquitto_loop_write(mosq, 1);
                if (!ok)
                        break;
                if (rc != MOSQ_ERR_SUCCESS || p->req.lost) {
                        ok = mq_error(error, "requester connection",
                                      rc != MOSQ_ERR_SUCCESS ? rc : MOSQ_ERR_CONN_LOST);
                        break;
                }
                if (p->bad_reply) {
                        g_set_error(error, BENCH_ERROR, 0, "%s", p->bad_reply);
                        ok = FALSE;
                        break;
                }
                if (!echo_check(p, error)) {
                        ok = FALSE;
                        break;
                }
                now = bench_now_ns();
                if (p->completed != before) {
                        last_progress = now;
                } else if (now - last_progress > (guint64)p->opts->timeout_ms * 1000000u) {
                        g_set_error(error, BENCH_ERROR, 0,
                                    "no reply for %u ms: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                                    " calls answered, %" G_GUINT64_FORMAT " outstanding",
                                    p->opts->timeout_ms, p->completed, n, p->issued - p->completed);
                        ok = FALSE;
                        break;
                }
                if (now - last_misc > 1000000000u) {
                        mosquitto_loop_misc(mosq); /* keepalive */
                        last_misc = now;
                }
        }
        g_clear_pointer(&p->bad_reply, g_free);
        g_clear_pointer(&p->start_ns, g_free);
        p->samples = NULL;
        if (!ok)
                g_prefix_error(error, "call %" G_GUINT64_FORMAT ": ", p->completed + 1);
        return ok;
}

/* ---- start and stop --------------------------------------------------------------- */

static void mq_rpc_stop(BenchRpcPeer *p)
{
        if (p->echo_thread) {
                atomic_store(&p->echo_stop, true);
                g_thread_join(p->echo_thread);
        }
        client_close(&p->req);
        if (p->server)
                bench_system_mosquitto.stop(p->server);
        g_free(p->echo_error);
        g_mutex_clear(&p->lock);
        g_cond_clear(&p->cond);
        g_free(p);
}

static BenchRpcPeer *mq_rpc_start(const BenchRpcOptions *opts, GError **error)
{
        BenchRpcPeer *p = g_new0(BenchRpcPeer, 1);
        gint64 deadline = g_get_monotonic_time() + (gint64)MQ_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

        p->opts = opts;
        g_mutex_init(&p->lock);
        g_cond_init(&p->cond);
        atomic_init(&p->echo_stop, false);
        p->server = bench_system_mosquitto.start(&opts->events, error);
        if (!p->server)
                goto fail;
        p->port = listening_port(bench_system_mosquitto.server_pid(p->server));
        if (p->port == 0) {
                g_set_error(error, BENCH_ERROR, 0,
                            "mosquitto pid %d: no listening TCP socket found in /proc",
                            (int)bench_system_mosquitto.server_pid(p->server));
                goto fail;
        }
        p->echo_thread = g_thread_new("bench-rpc-echo", echo_thread, p);
        g_mutex_lock(&p->lock);
        while (!p->echo_ready && !p->echo_error)
                if (!g_cond_wait_until(&p->cond, &p->lock, deadline))
                        break;
        g_mutex_unlock(&p->lock);
        if (!echo_check(p, error))
                goto fail;
        if (!p->echo_ready) {
                g_set_error(error, BENCH_ERROR, 0, "echo: not subscribed after %u ms", MQ_TIMEOUT_MS);
                goto fail;
        }
        if (!client_open(&p->req, p->port, "bench-rpc-requester", RESPONSE_PATTERN, on_response, p, error))
                goto fail;
        {
                BenchSamples s;

                /* one round trip, as the daemoneye peer does before it returns */
                bench_samples_init(&s, 1);
                if (!mq_rpc_run_calls(p, 1, 1, &s, error)) {
                        bench_samples_clear(&s);
                        goto fail;
                }
                bench_samples_clear(&s);
        }
        return p;

fail:
        mq_rpc_stop(p);
        return NULL;
}

static BenchServer *mq_rpc_server(BenchRpcPeer *p)
{
        return p->server;
}

static pid_t mq_rpc_server_pid(BenchRpcPeer *p)
{
        return bench_system_mosquitto.server_pid(p->server);
}

static guint64 mq_rpc_responder_cpu_ns(BenchRpcPeer *p)
{
        struct timespec ts;

        if (!p->echo_ready || clock_gettime(p->echo_clock, &ts) != 0)
                return 0;
        return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + (guint64)ts.tv_nsec;
}

const BenchRpcSystem bench_rpc_mosquitto = {
        .name = "mosquitto",
        .description = "requester -> mosquitto (127.0.0.1 TCP, QoS 0, libmosquitto) -> echo thread (its own "
                       "connection) republishes to response/<id> -> requester",
        .events = &bench_system_mosquitto,
        .start = mq_rpc_start,
        .stop = mq_rpc_stop,
        .server = mq_rpc_server,
        .server_pid = mq_rpc_server_pid,
        .responder_cpu_ns = mq_rpc_responder_cpu_ns,
        .requester_bytes = NULL,
        .run_calls = mq_rpc_run_calls,
};
