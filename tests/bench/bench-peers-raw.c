/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The floor: no broker at all. One Unix socketpair per subscriber, written
 * directly by the publisher thread with the same framing and about the same
 * bytes per message as an EventBus envelope (4-byte length + record), with
 * batched writes and 256 KiB reads. Nothing here can be beaten by a broker
 * that sits between two such sockets.
 */
#include "bench-system.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _BenchServer {
        GMutex lock;
        GArray *write_fds; /* one per subscriber, taken by the publisher */
        gsize record_size;
};

struct _BenchPub {
        GArray *fds;
        GByteArray *out;
        gsize record_size;
        gboolean low_latency;
};

struct _BenchSub {
        int fd;
        BenchSubState *state;
        guint8 *buf;
        gsize cap;
};

static BenchServer *raw_start(const BenchOptions *opts, GError **error)
{
        BenchServer *s = g_new0(BenchServer, 1);

        g_mutex_init(&s->lock);
        s->write_fds = g_array_new(FALSE, FALSE, sizeof(int));
        s->record_size = MAX(opts->raw_record_size, BENCH_PAYLOAD_SIZE);
        return s;
}

static void close_fds(GArray *fds)
{
        for (guint i = 0; i < fds->len; i++)
                close(g_array_index(fds, int, i));
        g_array_set_size(fds, 0);
}

static void raw_stop(BenchServer *s)
{
        close_fds(s->write_fds);
        g_array_unref(s->write_fds);
        g_mutex_clear(&s->lock);
        g_free(s);
}

static BenchPub *raw_pub_open(BenchServer *s, gboolean low_latency, GError **error)
{
        BenchPub *p = g_new0(BenchPub, 1);

        g_mutex_lock(&s->lock);
        p->fds = g_array_copy(s->write_fds);
        g_array_set_size(s->write_fds, 0);
        g_mutex_unlock(&s->lock);
        p->out = g_byte_array_sized_new(1 << 20);
        p->record_size = s->record_size;
        p->low_latency = low_latency;
        return p;
}

static gboolean raw_pub_send(BenchPub *p, const guint8 *payload, gsize len, GError **error)
{
        guint32 n = (guint32)p->record_size;
        guint8 hdr[4] = {n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >> 24};
        guint off;

        g_byte_array_append(p->out, hdr, sizeof hdr);
        off = p->out->len;
        g_byte_array_set_size(p->out, off + n);
        memcpy(p->out->data + off, payload, len);
        memset(p->out->data + off + len, 0, n - len);
        return TRUE;
}

static gboolean write_all(int fd, const guint8 *data, gsize len, GError **error)
{
        while (len > 0) {
                ssize_t w = write(fd, data, len);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        g_set_error(error, BENCH_ERROR, 0, "write: %s", g_strerror(errno));
                        return FALSE;
                }
                data += w;
                len -= (gsize)w;
        }
        return TRUE;
}

static gboolean raw_pub_flush(BenchPub *p, GError **error)
{
        /* blocking sockets: one write per subscriber per batch, the best case */
        for (guint i = 0; i < p->fds->len; i++)
                if (!write_all(g_array_index(p->fds, int, i), p->out->data, p->out->len, error))
                        return FALSE;
        g_byte_array_set_size(p->out, 0);
        return TRUE;
}

static gboolean raw_pub_poll(BenchPub *p, GError **error)
{
        return raw_pub_flush(p, error);
}

static void raw_pub_close(BenchPub *p)
{
        close_fds(p->fds);
        g_array_unref(p->fds);
        g_byte_array_unref(p->out);
        g_free(p);
}

static BenchSub *raw_sub_open(BenchServer *s, BenchSubState *state, GError **error)
{
        BenchSub *sub;
        int sv[2];

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                g_set_error(error, BENCH_ERROR, 0, "socketpair: %s", g_strerror(errno));
                return NULL;
        }
        g_mutex_lock(&s->lock);
        g_array_append_val(s->write_fds, sv[1]);
        g_mutex_unlock(&s->lock);
        sub = g_new0(BenchSub, 1);
        sub->fd = sv[0];
        sub->state = state;
        sub->cap = 256 * 1024;
        sub->buf = g_malloc(sub->cap);
        return sub;
}

static gboolean raw_sub_run(BenchSub *sub, GError **error)
{
        BenchSubState *state = sub->state;
        gsize have = 0;

        while (!atomic_load(&state->done) && !bench_run_aborted(state->run)) {
                ssize_t r = read(sub->fd, sub->buf + have, sub->cap - have);
                gsize off = 0;

                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        g_set_error(error, BENCH_ERROR, 0, "read: %s", g_strerror(errno));
                        return FALSE;
                }
                if (r == 0) {
                        /* sub_wakeup shut the socket down, or the publisher went away early */
                        if (bench_run_aborted(state->run))
                                return TRUE;
                        g_set_error(error, BENCH_ERROR, 0, "publisher closed the socket");
                        return FALSE;
                }
                have += (gsize)r;
                while (have - off >= 4) {
                        const guint8 *h = sub->buf + off;
                        guint32 n = (guint32)h[0] | (guint32)h[1] << 8 | (guint32)h[2] << 16 |
                                    (guint32)h[3] << 24;

                        if (have - off < 4 + (gsize)n)
                                break;
                        bench_sub_deliver(state, h + 4, BENCH_PAYLOAD_SIZE);
                        off += 4 + n;
                }
                memmove(sub->buf, sub->buf + off, have - off);
                have -= off;
        }
        return TRUE;
}

static void raw_sub_wakeup(BenchSub *sub)
{
        /* a blocked read() returns 0 */
        shutdown(sub->fd, SHUT_RDWR);
}

static void raw_sub_close(BenchSub *sub)
{
        close(sub->fd);
        g_free(sub->buf);
        g_free(sub);
}

const BenchSystem bench_system_raw = {
        .name = "raw",
        .description =
                "socketpair per subscriber written by the publisher thread, batched writes/reads, no broker",
        .start = raw_start,
        .stop = raw_stop,
        .pub_open = raw_pub_open,
        .pub_send = raw_pub_send,
        .pub_poll = raw_pub_poll,
        .pub_flush = raw_pub_flush,
        .pub_close = raw_pub_close,
        .sub_open = raw_sub_open,
        .sub_run = raw_sub_run,
        .sub_wakeup = raw_sub_wakeup,
        .sub_close = raw_sub_close,
};
