/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "deb-frame.h"

G_BEGIN_DECLS

typedef struct _BrokerTopicStats BrokerTopicStats;

/* Which lane of a subscriber queue a message travels in. */
typedef enum {
        MESSAGE_LANE_DATA,    /* events and control-topic messages: bounded, dropped per policy */
        MESSAGE_LANE_CONTROL, /* heartbeats, RPC, the broker's own frames: never dropped */
} MessageLane;

/*
 * One encoded frame (header + body, exactly as it goes on the wire) in one
 * allocation, shared by every subscriber queue it sits in. The broker runs on
 * one thread, so the reference count is a plain integer.
 */
typedef struct {
        guint ref_count;
        guint32 size; /* bytes in data[] */
        MessageLane lane;
        gint64 ingress_us;       /* monotonic time the frame was read, for latency */
        BrokerTopicStats *stats; /* (nullable) per-prefix counters; outlives the message */
        guint8 data[];
} Message;

/**
 * message_new:
 * @frame: header + body to copy
 *
 * Returns: (transfer full) a message holding a copy of @frame.
 */
Message *message_new(const guint8 *frame, gsize size, MessageLane lane, gint64 ingress_us,
                     BrokerTopicStats *stats);

/**
 * message_new_envelope:
 *
 * Encodes @env (the broker's own Welcome/Ack/Error envelopes) into a new
 * control-lane message. These are small and built by the broker, so the
 * frame size limit does not apply.
 * Returns: (transfer full) the message.
 */
Message *message_new_envelope(const DebEnvelope *env);

/** message_ref: Returns: @message with one more reference. */
Message *message_ref(Message *message);

/** message_unref: drops one reference; frees the message with the last one. */
void message_unref(Message *message);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Message, message_unref)

G_END_DECLS
