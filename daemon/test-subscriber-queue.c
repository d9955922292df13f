/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for subscriber-queue.c: lanes, drop policies, partial writes, storage. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "subscriber-queue.h"

typedef struct {
        GString *dropped; /* first byte of each dropped message */
        GString *written; /* first byte of each fully written message */
} Record;

static void record_dropped(Message *m, gpointer user_data)
{
        g_string_append_c(((Record *)user_data)->dropped, (char)m->data[0]);
}

static void record_written(Message *m, gint64 now_us, gpointer user_data)
{
        g_string_append_c(((Record *)user_data)->written, (char)m->data[0]);
}

static const SubscriberQueueHooks hooks = {record_dropped, record_written};

typedef struct {
        SubscriberQueue queue;
        Record record;
        int fds[2];
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
        f->record.dropped = g_string_new(NULL);
        f->record.written = g_string_new(NULL);
        subscriber_queue_init(&f->queue, &hooks, &f->record);
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->fds), ==, 0);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
        subscriber_queue_clear(&f->queue);
        g_string_free(f->record.dropped, TRUE);
        g_string_free(f->record.written, TRUE);
        close(f->fds[0]);
        close(f->fds[1]);
}

/* A message of @size bytes, all @tag, so a stream shows which message each byte came from. */
static Message *make(char tag, gsize size, MessageLane lane)
{
        g_autofree guint8 *buf = g_malloc(size);

        memset(buf, tag, size);
        return message_new(buf, size, lane, 1, NULL);
}

static SubscriberQueuePushResult push(Fixture *f, char tag, MessageLane lane, guint limit, DropPolicy policy)
{
        g_autoptr(Message) m = make(tag, 8, lane);

        return subscriber_queue_push(&f->queue, m, limit, policy);
}

static GString *drain(Fixture *f)
{
        GString *out = g_string_new(NULL);
        guint8 buf[65536];
        gssize n;

        while ((n = subscriber_queue_write(&f->queue, f->fds[0], 0)) > 0)
                ;
        g_assert_cmpint(n, ==, 0);
        while ((n = recv(f->fds[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                g_string_append_len(out, (char *)buf, n);
        return out;
}

static void test_lanes(Fixture *f, gconstpointer data)
{
        g_autoptr(GString) out = NULL;

        g_assert_cmpint(push(f, 'a', MESSAGE_LANE_DATA, 10, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'b', MESSAGE_LANE_DATA, 10, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'X', MESSAGE_LANE_CONTROL, 10, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'c', MESSAGE_LANE_DATA, 10, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'Y', MESSAGE_LANE_CONTROL, 10, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpuint(f->queue.bytes, ==, 40);
        g_assert_false(subscriber_queue_is_empty(&f->queue));

        out = drain(f);
        /* Control overtakes data; each lane keeps its order. */
        g_assert_cmpstr(f->record.written->str, ==, "XYabc");
        g_assert_cmpuint(out->len, ==, 40);
        g_assert_cmpint(out->str[0], ==, 'X');
        g_assert_cmpint(out->str[39], ==, 'c');
        g_assert_true(subscriber_queue_is_empty(&f->queue));
        g_assert_cmpuint(f->queue.bytes, ==, 0);
        g_assert_cmpuint(f->queue.high_water, ==, 3);
}

static void test_drop_oldest(Fixture *f, gconstpointer data)
{
        for (char t = 'a'; t <= 'e'; t++)
                g_assert_cmpint(push(f, t, MESSAGE_LANE_DATA, 3, DROP_POLICY_DROP_OLDEST), ==,
                                SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpstr(f->record.dropped->str, ==, "ab");
        g_assert_cmpuint(subscriber_queue_get_length(&f->queue, MESSAGE_LANE_DATA), ==, 3);
        g_string_free(drain(f), TRUE);
        g_assert_cmpstr(f->record.written->str, ==, "cde");
}

static void test_drop_newest(Fixture *f, gconstpointer data)
{
        g_assert_cmpint(push(f, 'a', MESSAGE_LANE_DATA, 2, DROP_POLICY_DROP_NEWEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'b', MESSAGE_LANE_DATA, 2, DROP_POLICY_DROP_NEWEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'c', MESSAGE_LANE_DATA, 2, DROP_POLICY_DROP_NEWEST), ==,
                        SUBSCRIBER_QUEUE_DROPPED);
        g_assert_cmpint(push(f, 'd', MESSAGE_LANE_DATA, 2, DROP_POLICY_DROP_NEWEST), ==,
                        SUBSCRIBER_QUEUE_DROPPED);
        /* The control lane is not subject to the policy. */
        g_assert_cmpint(push(f, 'X', MESSAGE_LANE_CONTROL, 2, DROP_POLICY_DROP_NEWEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpstr(f->record.dropped->str, ==, "cd");
        g_string_free(drain(f), TRUE);
        g_assert_cmpstr(f->record.written->str, ==, "Xab");
}

static void test_disconnect(Fixture *f, gconstpointer data)
{
        g_assert_cmpint(push(f, 'a', MESSAGE_LANE_DATA, 1, DROP_POLICY_DISCONNECT), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'b', MESSAGE_LANE_DATA, 1, DROP_POLICY_DISCONNECT), ==,
                        SUBSCRIBER_QUEUE_FULL);
        /* FULL leaves counting to the caller. */
        g_assert_cmpstr(f->record.dropped->str, ==, "");
        g_assert_cmpuint(subscriber_queue_get_length(&f->queue, MESSAGE_LANE_DATA), ==, 1);
}

static void test_control_cap(Fixture *f, gconstpointer data)
{
        guint i;

        for (i = 0; i < SUBSCRIBER_QUEUE_CONTROL_MIN_LIMIT; i++)
                g_assert_cmpint(push(f, 'X', MESSAGE_LANE_CONTROL, 1, DROP_POLICY_DROP_OLDEST), ==,
                                SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(push(f, 'X', MESSAGE_LANE_CONTROL, 1, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_FULL);
        g_assert_cmpstr(f->record.dropped->str, ==, "");
}

static void test_lowered_limit(Fixture *f, gconstpointer data)
{
        for (char t = 'a'; t <= 'j'; t++)
                push(f, t, MESSAGE_LANE_DATA, 10, DROP_POLICY_DROP_OLDEST);
        g_assert_cmpstr(f->record.dropped->str, ==, "");
        /* A reload lowered the limit to 3: one push brings the lane back under it. */
        push(f, 'k', MESSAGE_LANE_DATA, 3, DROP_POLICY_DROP_OLDEST);
        g_assert_cmpstr(f->record.dropped->str, ==, "abcdefgh");
        g_assert_cmpuint(subscriber_queue_get_length(&f->queue, MESSAGE_LANE_DATA), ==, 3);
        g_string_free(drain(f), TRUE);
        g_assert_cmpstr(f->record.written->str, ==, "ijk");
}

static GString *drain_slowly(Fixture *f)
{
        GString *out = g_string_new(NULL);
        guint8 buf[65536];
        gssize n, r;

        do {
                n = subscriber_queue_write(&f->queue, f->fds[0], 0);
                g_assert_true(n >= 0 || n == -EAGAIN);
                while ((r = recv(f->fds[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                        g_string_append_len(out, (char *)buf, r);
        } while (n != 0);
        return out;
}

/* Fills the socket until a message is written only in part. */
static void test_partial_write(Fixture *f, gconstpointer data)
{
        int sndbuf = 4096;
        const gsize size = 10000;
        g_autoptr(GString) rest = NULL;
        g_autoptr(Message) late = make('z', size, MESSAGE_LANE_DATA);
        MessageRing *data_lane = &f->queue.lanes[MESSAGE_LANE_DATA];
        char head, second;
        gssize n;

        g_assert_cmpint(setsockopt(f->fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), ==, 0);
        for (char t = 'a'; t <= 'h'; t++) {
                g_autoptr(Message) m = make(t, size, MESSAGE_LANE_DATA);

                g_assert_cmpint(subscriber_queue_push(&f->queue, m, 100, DROP_POLICY_DROP_OLDEST), ==,
                                SUBSCRIBER_QUEUE_PUSHED);
        }
        while ((n = subscriber_queue_write(&f->queue, f->fds[0], 0)) > 0)
                ;
        g_assert_cmpint(n, ==, -EAGAIN);
        g_assert_cmpint(f->queue.partial_lane, ==, MESSAGE_LANE_DATA);
        g_assert_cmpuint(f->queue.partial_offset, >, 0);
        head = (char)data_lane->items[data_lane->head]->data[0];
        second = (char)head + 1;

        /* Neither a control message nor drop-oldest may cut into the partly written head. */
        g_assert_cmpint(push(f, 'X', MESSAGE_LANE_CONTROL, 100, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpint(subscriber_queue_push(&f->queue, late, data_lane->length, DROP_POLICY_DROP_OLDEST),
                        ==, SUBSCRIBER_QUEUE_PUSHED);
        g_assert_cmpuint(f->record.dropped->len, ==, 1);
        g_assert_cmpint(f->record.dropped->str[0], ==, second);

        g_string_truncate(f->record.written, 0);
        rest = drain_slowly(f);
        g_assert_true(subscriber_queue_is_empty(&f->queue));
        /* The head is finished first, then the control message overtakes the remaining data. */
        g_assert_cmpint(f->record.written->str[0], ==, head);
        g_assert_cmpint(f->record.written->str[1], ==, 'X');
        g_assert_cmpint(f->record.written->str[f->record.written->len - 1], ==, 'z');
        g_assert_null(strchr(f->record.written->str, second));
}

/* Byte-exact check of the stream: frames are never interleaved. */
static void test_stream_integrity(Fixture *f, gconstpointer data)
{
        int sndbuf = 4096;
        g_autoptr(GString) stream = g_string_new(NULL);
        guint8 buf[65536];
        gssize n, r;
        const gsize size = 3000;
        guint pushed = 0;

        g_assert_cmpint(setsockopt(f->fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), ==, 0);
        for (guint round = 0; round < 50; round++) {
                g_autoptr(Message) d = make((char)('a' + round % 26), size, MESSAGE_LANE_DATA);
                g_autoptr(Message) c = make((char)('A' + round % 26), size / 3, MESSAGE_LANE_CONTROL);

                subscriber_queue_push(&f->queue, d, 1000, DROP_POLICY_DROP_OLDEST);
                if (round % 3 == 0)
                        subscriber_queue_push(&f->queue, c, 1000, DROP_POLICY_DROP_OLDEST);
                pushed++;
                n = subscriber_queue_write(&f->queue, f->fds[0], 0);
                g_assert_true(n >= 0 || n == -EAGAIN);
                /* Read a little only, so writes keep ending mid-message. */
                r = recv(f->fds[1], buf, 1500, MSG_DONTWAIT);
                if (r > 0)
                        g_string_append_len(stream, (char *)buf, r);
        }
        while (!subscriber_queue_is_empty(&f->queue)) {
                n = subscriber_queue_write(&f->queue, f->fds[0], 0);
                g_assert_true(n >= 0 || n == -EAGAIN);
                while ((r = recv(f->fds[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                        g_string_append_len(stream, (char *)buf, r);
        }
        while ((r = recv(f->fds[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                g_string_append_len(stream, (char *)buf, r);

        /* Split the stream into runs of one byte value: each run must be one whole message. */
        for (gsize i = 0; i < stream->len;) {
                char t = stream->str[i];
                gsize j = i;

                while (j < stream->len && stream->str[j] == t)
                        j++;
                g_assert_cmpuint(j - i, ==, g_ascii_islower(t) ? size : size / 3);
                i = j;
        }
        g_assert_cmpuint(f->record.written->len, ==, 50 + 17);
        g_assert_cmpuint(pushed, ==, 50);
}

static void test_shared_and_shrink(Fixture *f, gconstpointer data)
{
        SubscriberQueue other;
        g_autoptr(Message) m = make('s', 16, MESSAGE_LANE_DATA);

        subscriber_queue_init(&other, NULL, NULL);
        subscriber_queue_push(&f->queue, m, 10, DROP_POLICY_DROP_OLDEST);
        subscriber_queue_push(&other, m, 10, DROP_POLICY_DROP_OLDEST);
        /* One allocation, three holders: this test, and each queue. */
        g_assert_cmpuint(m->ref_count, ==, 3);
        g_string_free(drain(f), TRUE);
        g_assert_cmpuint(m->ref_count, ==, 2);
        subscriber_queue_clear(&other);
        g_assert_cmpuint(m->ref_count, ==, 1);

        g_assert_nonnull(f->queue.lanes[MESSAGE_LANE_DATA].items);
        subscriber_queue_shrink(&f->queue);
        g_assert_null(f->queue.lanes[MESSAGE_LANE_DATA].items);
        g_assert_cmpuint(f->queue.lanes[MESSAGE_LANE_DATA].capacity, ==, 0);
        /* And it grows again on demand. */
        g_assert_cmpint(push(f, 'n', MESSAGE_LANE_DATA, 10, DROP_POLICY_DROP_OLDEST), ==,
                        SUBSCRIBER_QUEUE_PUSHED);
}

static void test_write_errors(Fixture *f, gconstpointer data)
{
        push(f, 'a', MESSAGE_LANE_DATA, 10, DROP_POLICY_DROP_OLDEST);
        close(f->fds[1]);
        f->fds[1] = socket(AF_UNIX, SOCK_STREAM, 0); /* keep tear-down simple */
        g_assert_cmpint(subscriber_queue_write(&f->queue, f->fds[0], 0), ==, -EPIPE);
        g_assert_cmpuint(subscriber_queue_get_length(&f->queue, MESSAGE_LANE_DATA), ==, 1);
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        ADD("/subscriber-queue/lanes", test_lanes);
        ADD("/subscriber-queue/drop-oldest", test_drop_oldest);
        ADD("/subscriber-queue/drop-newest", test_drop_newest);
        ADD("/subscriber-queue/disconnect", test_disconnect);
        ADD("/subscriber-queue/control-cap", test_control_cap);
        ADD("/subscriber-queue/lowered-limit", test_lowered_limit);
        ADD("/subscriber-queue/partial-write", test_partial_write);
        ADD("/subscriber-queue/stream-integrity", test_stream_integrity);
        ADD("/subscriber-queue/shared-and-shrink", test_shared_and_shrink);
        ADD("/subscriber-queue/write-errors", test_write_errors);
        return g_test_run();
}
