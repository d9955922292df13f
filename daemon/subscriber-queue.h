/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <sys/types.h>

#include "config.h"
#include "message.h"

G_BEGIN_DECLS

/*
 * The output queue of one connection: two FIFO lanes of shared messages.
 *
 * The data lane (events, control-topic messages) is bounded; when it is full
 * the drop policy decides what goes. The control lane (heartbeats, RPC, the
 * broker's own Welcome/Ack/Error) is never dropped: a peer that lets it grow
 * past its cap is not reading at all and is disconnected instead.
 *
 * Writing takes the lanes control-first, so a control message may overtake
 * queued data, but each lane stays in order, and a message already partly
 * written is always finished before anything else goes.
 *
 * Lanes are ring buffers of message pointers growing on demand (no node per
 * message); subscriber_queue_shrink() gives the memory of idle lanes back.
 */

typedef struct {
        Message **items;
        guint capacity; /* 0 or a power of two */
        guint head;
        guint length;
} MessageRing;

typedef struct {
        /* A message is dropped: counted by the owner, then unreferenced by the queue. */
        void (*dropped)(Message *message, gpointer user_data);
        /* A message was fully written to the socket. */
        void (*written)(Message *message, gint64 now_us, gpointer user_data);
} SubscriberQueueHooks;

typedef struct {
        MessageRing lanes[2]; /* indexed by MessageLane */
        int partial_lane;     /* lane whose head is partly written, or -1 */
        gsize partial_offset; /* bytes of that head already written */
        guint high_water;     /* longest the data lane has been */
        gsize bytes;          /* bytes queued in both lanes, not yet written */
        const SubscriberQueueHooks *hooks;
        gpointer user_data;
} SubscriberQueue;

typedef enum {
        SUBSCRIBER_QUEUE_PUSHED,  /* queued, possibly after dropping per policy */
        SUBSCRIBER_QUEUE_DROPPED, /* the new message itself was dropped (drop-newest) */
        SUBSCRIBER_QUEUE_FULL,    /* nothing queued: disconnect the subscriber */
} SubscriberQueuePushResult;

/* Control lane cap: never below this, else message_buffer_size. */
#define SUBSCRIBER_QUEUE_CONTROL_MIN_LIMIT 4096u

/** subscriber_queue_init: an empty queue calling @hooks (static storage) with @user_data. */
void subscriber_queue_init(SubscriberQueue *queue, const SubscriberQueueHooks *hooks, gpointer user_data);

/** subscriber_queue_clear: unreferences every queued message (no hooks run); the queue is empty after. */
void subscriber_queue_clear(SubscriberQueue *queue);

/**
 * subscriber_queue_push:
 * @message: queued with a new reference (the caller keeps its own)
 * @limit: data lane capacity in messages (message_buffer_size)
 *
 * Never blocks and never fails for lack of room but by policy. With
 * drop-oldest the oldest data message not partly written goes (all of them
 * over @limit if the limit was lowered); when the only queued data message is
 * partly written, the new one is dropped instead.
 * Returns: what happened; the dropped hook has run for every dropped message.
 */
SubscriberQueuePushResult subscriber_queue_push(SubscriberQueue *queue, Message *message, guint limit,
                                                DropPolicy policy);

/**
 * subscriber_queue_write:
 *
 * One sendmsg(MSG_NOSIGNAL|MSG_DONTWAIT) of up to IOV_MAX queued messages.
 * Returns: bytes written, 0 when the queue is empty, or a negative errno
 *   (-EAGAIN when the socket is full).
 */
gssize subscriber_queue_write(SubscriberQueue *queue, int fd, gint64 now_us);

/**
 * subscriber_queue_drop_data:
 *
 * Unreferences the data lane but a partly written head (closing connections
 * send their final Error after it). No hooks run.
 * Returns: the number of messages removed.
 */
guint subscriber_queue_drop_data(SubscriberQueue *queue);

/** subscriber_queue_shrink: frees the storage of empty lanes. */
void subscriber_queue_shrink(SubscriberQueue *queue);

/** subscriber_queue_is_empty: Returns: %TRUE when nothing is left to write. */
gboolean subscriber_queue_is_empty(const SubscriberQueue *queue);

/** subscriber_queue_get_length: Returns: messages queued in @lane. */
guint subscriber_queue_get_length(const SubscriberQueue *queue, MessageLane lane);

G_END_DECLS
