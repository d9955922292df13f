/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "message.h"

static Message *message_alloc(gsize size, MessageLane lane, gint64 ingress_us, BrokerTopicStats *stats)
{
        Message *m;

        g_assert(size <= G_MAXUINT32);
        m = g_malloc(sizeof(Message) + size);
        m->ref_count = 1;
        m->size = (guint32)size;
        m->lane = lane;
        m->ingress_us = ingress_us;
        m->stats = stats;
        return m;
}

/** message_new: Returns: (transfer full) a message holding a copy of @frame. */
Message *message_new(const guint8 *frame, gsize size, MessageLane lane, gint64 ingress_us,
                     BrokerTopicStats *stats)
{
        Message *m = message_alloc(size, lane, ingress_us, stats);

        memcpy(m->data, frame, size);
        return m;
}

/** message_new_envelope: Returns: (transfer full) @env encoded as a control-lane frame. */
Message *message_new_envelope(const DebEnvelope *env)
{
        gsize body_len = protobuf_c_message_get_packed_size(&env->base);
        Message *m = message_alloc(DEB_FRAME_HEADER_SIZE + body_len, MESSAGE_LANE_CONTROL, 0, NULL);

        deb_frame_write_header(m->data, (guint32)body_len);
        protobuf_c_message_pack(&env->base, m->data + DEB_FRAME_HEADER_SIZE);
        return m;
}

/** message_ref: Returns: @message with one more reference. */
Message *message_ref(Message *message)
{
        message->ref_count++;
        return message;
}

/** message_unref: drops one reference; frees the message with the last one. */
void message_unref(Message *message)
{
        if (!message)
                return;
        g_assert(message->ref_count > 0);
        if (--message->ref_count == 0)
                g_free(message);
}
