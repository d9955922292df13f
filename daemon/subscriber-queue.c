/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "subscriber-queue.h"

#define RING_MIN_CAPACITY 16u

static inline Message *ring_at(const MessageRing *ring, guint i)
{
        return ring->items[(ring->head + i) & (ring->capacity - 1)];
}

static void ring_grow(MessageRing *ring)
{
        guint capacity = ring->capacity ? ring->capacity * 2 : RING_MIN_CAPACITY;
        Message **items = g_new(Message *, capacity);

        /* Unwrap into the new array so the head starts at 0. */
        for (guint i = 0; i < ring->length; i++)
                items[i] = ring_at(ring, i);
        g_free(ring->items);
        ring->items = items;
        ring->capacity = capacity;
        ring->head = 0;
}

static void ring_push(MessageRing *ring, Message *message)
{
        if (ring->length == ring->capacity)
                ring_grow(ring);
        ring->items[(ring->head + ring->length) & (ring->capacity - 1)] = message;
        ring->length++;
}

static Message *ring_pop(MessageRing *ring)
{
        Message *m;

        g_assert(ring->length > 0);
        m = ring->items[ring->head];
        ring->head = (ring->head + 1) & (ring->capacity - 1);
        ring->length--;
        return m;
}

/* Removes the second element, keeping the (partly written) head in place. */
static Message *ring_pop_second(MessageRing *ring)
{
        Message *head, *second;

        g_assert(ring->length >= 2);
        head = ring_pop(ring);
        second = ring->items[ring->head];
        ring->items[ring->head] = head;
        return second;
}

static void ring_free(MessageRing *ring)
{
        while (ring->length > 0)
                message_unref(ring_pop(ring));
        g_clear_pointer(&ring->items, g_free);
        ring->capacity = 0;
        ring->head = 0;
}

/** subscriber_queue_init: see subscriber-queue.h. */
void subscriber_queue_init(SubscriberQueue *queue, const SubscriberQueueHooks *hooks, gpointer user_data)
{
        memset(queue, 0, sizeof(*queue));
        queue->partial_lane = -1;
        queue->hooks = hooks;
        queue->user_data = user_data;
}

/** subscriber_queue_clear: see subscriber-queue.h. */
void subscriber_queue_clear(SubscriberQueue *queue)
{
        ring_free(&queue->lanes[MESSAGE_LANE_CONTROL]);
        ring_free(&queue->lanes[MESSAGE_LANE_DATA]);
        queue->partial_lane = -1;
        queue->partial_offset = 0;
        queue->bytes = 0;
}

static void queue_drop(SubscriberQueue *queue, Message *message)
{
        queue->bytes -= message->size;
        if (queue->hooks && queue->hooks->dropped)
                queue->hooks->dropped(message, queue->user_data);
        message_unref(message);
}

static void queue_append(SubscriberQueue *queue, MessageRing *ring, Message *message)
{
        ring_push(ring, message_ref(message));
        queue->bytes += message->size;
}

/** subscriber_queue_push: see subscriber-queue.h. */
SubscriberQueuePushResult subscriber_queue_push(SubscriberQueue *queue, Message *message, guint limit,
                                                DropPolicy policy)
{
        MessageRing *ring = &queue->lanes[message->lane];
        gboolean head_partial;

        g_assert(limit > 0);

        if (message->lane == MESSAGE_LANE_CONTROL) {
                if (ring->length >= MAX(limit, SUBSCRIBER_QUEUE_CONTROL_MIN_LIMIT))
                        return SUBSCRIBER_QUEUE_FULL;
                queue_append(queue, ring, message);
                return SUBSCRIBER_QUEUE_PUSHED;
        }

        if (ring->length >= limit) {
                switch (policy) {
                case DROP_POLICY_DISCONNECT:
                        return SUBSCRIBER_QUEUE_FULL;
                case DROP_POLICY_DROP_NEWEST:
                        if (queue->hooks && queue->hooks->dropped)
                                queue->hooks->dropped(message, queue->user_data);
                        return SUBSCRIBER_QUEUE_DROPPED;
                case DROP_POLICY_DROP_OLDEST:
                        /* A partly written head must be finished, or the stream would be corrupt. */
                        head_partial = queue->partial_lane == MESSAGE_LANE_DATA;
                        if (head_partial && ring->length == 1) {
                                if (queue->hooks && queue->hooks->dropped)
                                        queue->hooks->dropped(message, queue->user_data);
                                return SUBSCRIBER_QUEUE_DROPPED;
                        }
                        /* A loop, not one drop: the limit may have been lowered by a reload. */
                        while (ring->length >= limit && ring->length > (head_partial ? 1u : 0u))
                                queue_drop(queue, head_partial ? ring_pop_second(ring) : ring_pop(ring));
                        break;
                }
        }

        queue_append(queue, ring, message);
        queue->high_water = MAX(queue->high_water, ring->length);
        return SUBSCRIBER_QUEUE_PUSHED;
}

/*
 * The write order: the partly written head (if any), then the control lane,
 * then the data lane. subscriber_queue_write() builds and consumes the iovec
 * in this same order, so each consumed message is the head of its lane.
 */
typedef struct {
        SubscriberQueue *queue;
        int phase; /* 0: partial head, 1: control lane, 2: data lane, 3: done */
        guint index;
} QueueCursor;

static Message *cursor_next(QueueCursor *c, MessageLane *out_lane, gsize *out_offset)
{
        SubscriberQueue *q = c->queue;

        for (;;) {
                if (c->phase == 0) {
                        c->phase = 1;
                        c->index = 0;
                        if (q->partial_lane >= 0) {
                                *out_lane = (MessageLane)q->partial_lane;
                                *out_offset = q->partial_offset;
                                return ring_at(&q->lanes[q->partial_lane], 0);
                        }
                        continue;
                }
                if (c->phase == 3)
                        return NULL;

                MessageLane lane = c->phase == 1 ? MESSAGE_LANE_CONTROL : MESSAGE_LANE_DATA;
                MessageRing *ring = &q->lanes[lane];
                guint skip = q->partial_lane == (int)lane ? 1 : 0;

                if (c->index + skip < ring->length) {
                        *out_lane = lane;
                        *out_offset = 0;
                        return ring_at(ring, skip + c->index++);
                }
                c->phase++;
                c->index = 0;
        }
}

/** subscriber_queue_write: see subscriber-queue.h. */
gssize subscriber_queue_write(SubscriberQueue *queue, int fd, gint64 now_us)
{
        struct iovec iov[IOV_MAX];
        struct msghdr msg = {.msg_iov = iov};
        QueueCursor cursor = {.queue = queue};
        MessageLane lane;
        gsize offset;
        Message *m;
        gssize n;
        gsize left;

        while (msg.msg_iovlen < IOV_MAX && (m = cursor_next(&cursor, &lane, &offset))) {
                iov[msg.msg_iovlen].iov_base = m->data + offset;
                iov[msg.msg_iovlen].iov_len = m->size - offset;
                msg.msg_iovlen++;
        }
        if (msg.msg_iovlen == 0)
                return 0;

        n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
                return -errno;

        /* Consume what went out, in the order it was gathered. */
        left = (gsize)n;
        cursor = (QueueCursor){.queue = queue};
        while (left > 0 && (m = cursor_next(&cursor, &lane, &offset))) {
                gsize remaining = m->size - offset;

                if (left < remaining) {
                        queue->partial_lane = (int)lane;
                        queue->partial_offset = offset + left;
                        queue->bytes -= left;
                        break;
                }
                left -= remaining;
                queue->bytes -= remaining;
                /* Each fully written message is the head of its lane: restart the cursor after popping. */
                m = ring_pop(&queue->lanes[lane]);
                queue->partial_lane = -1;
                queue->partial_offset = 0;
                cursor = (QueueCursor){.queue = queue};
                if (queue->hooks && queue->hooks->written)
                        queue->hooks->written(m, now_us, queue->user_data);
                message_unref(m);
        }
        return n;
}

/** subscriber_queue_drop_data: see subscriber-queue.h. */
guint subscriber_queue_drop_data(SubscriberQueue *queue)
{
        MessageRing *ring = &queue->lanes[MESSAGE_LANE_DATA];
        guint keep = queue->partial_lane == MESSAGE_LANE_DATA ? 1 : 0;
        guint removed = 0;

        while (ring->length > keep) {
                Message *m = keep ? ring_pop_second(ring) : ring_pop(ring);

                queue->bytes -= m->size;
                message_unref(m);
                removed++;
        }
        return removed;
}

/** subscriber_queue_shrink: frees the storage of empty lanes. */
void subscriber_queue_shrink(SubscriberQueue *queue)
{
        for (guint i = 0; i < G_N_ELEMENTS(queue->lanes); i++)
                if (queue->lanes[i].length == 0)
                        ring_free(&queue->lanes[i]);
}

/** subscriber_queue_is_empty: Returns: %TRUE when nothing is left to write. */
gboolean subscriber_queue_is_empty(const SubscriberQueue *queue)
{
        return queue->lanes[MESSAGE_LANE_CONTROL].length == 0 && queue->lanes[MESSAGE_LANE_DATA].length == 0;
}

/** subscriber_queue_get_length: Returns: messages queued in @lane. */
guint subscriber_queue_get_length(const SubscriberQueue *queue, MessageLane lane)
{
        return queue->lanes[lane].length;
}
