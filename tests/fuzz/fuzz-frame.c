/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes the frame decoder and the envelope unpacker together, the way the
 * broker uses them: the input is a byte stream arriving in reads of varying
 * size, every frame is decoded as an Envelope and its payload as the control
 * message its message_type implies.
 */
#include <stdint.h>
#include <string.h>

#include "deb-error.h"
#include "deb-frame.h"

#define FUZZ_MAX_FRAME_BYTES (64u * 1024u)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *payload_descriptor(int message_type)
{
        switch (message_type) {
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HELLO:
                return &daemoneye__eventbus__hello__descriptor;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_SUBSCRIBE:
                return &daemoneye__eventbus__subscribe__descriptor;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_UNSUBSCRIBE:
                return &daemoneye__eventbus__unsubscribe__descriptor;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_WELCOME:
                return &daemoneye__eventbus__welcome__descriptor;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ERROR:
                return &daemoneye__eventbus__error__descriptor;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ACK:
                return &daemoneye__eventbus__ack__descriptor;
        default:
                return NULL;
        }
}

/* Reads every string of @env, so ASan sees one the payload decode overwrote or freed. */
static gsize envelope_touch(const DebEnvelope *env)
{
        gsize n = strlen(env->topic) + strlen(env->payload_type) + strlen(env->sender) + env->payload.len;

        if (env->payload.len > 0)
                n += env->payload.data[0] + env->payload.data[env->payload.len - 1];
        if (env->correlation) {
                n += strlen(env->correlation->correlation_id) + strlen(env->correlation->workflow_stage);
                for (gsize i = 0; i < env->correlation->n_tags; i++)
                        n += strlen(env->correlation->tags[i]->key) +
                             strlen(env->correlation->tags[i]->value);
        }
        return n;
}

static void frame_check(DebUnpacker *unpacker, const DebFrame *frame)
{
        g_autoptr(GError) error = NULL;
        const ProtobufCMessageDescriptor *desc;
        const DebEnvelope *env;
        gsize before;

        g_assert_true(frame->body == frame->data + DEB_FRAME_HEADER_SIZE);
        g_assert_cmpuint(frame->size, ==, frame->body_len + DEB_FRAME_HEADER_SIZE);
        g_assert_cmpuint(deb_frame_read_header(frame->data), ==, frame->body_len);
        g_assert_cmpuint(frame->body_len, <=, FUZZ_MAX_FRAME_BYTES);

        env = deb_unpacker_envelope(unpacker, frame->body, frame->body_len, &error);
        if (!env) {
                g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
                return;
        }
        /* Every type the unpacker accepts has a name, except "not set". */
        if (env->message_type != DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_UNSPECIFIED)
                g_assert_cmpstr(deb_message_type_to_string(env->message_type), !=, "unknown");
        before = envelope_touch(env);

        /* The unpacker's fast path never reads bytes differently from protobuf-c. */
        {
                DebEnvelope *slow = daemoneye__eventbus__envelope__unpack(NULL, frame->body_len, frame->body);

                g_assert_nonnull(slow);
                g_assert_cmpstr(slow->topic, ==, env->topic);
                g_assert_cmpint(slow->message_type, ==, env->message_type);
                g_assert_cmpstr(slow->sender, ==, env->sender);
                g_assert_cmpmem(slow->payload.data, slow->payload.len, env->payload.data, env->payload.len);
                g_assert_cmpuint(slow->timestamp_us, ==, env->timestamp_us);
                g_assert_true((slow->correlation == NULL) == (env->correlation == NULL));
                daemoneye__eventbus__envelope__free_unpacked(slow, NULL);
        }

        desc = payload_descriptor(env->message_type);
        if (desc) {
                ProtobufCMessage *message =
                        deb_unpacker_message(unpacker, desc, env->payload.data, env->payload.len, &error);

                if (message)
                        g_assert_true(message->descriptor == desc);
                else
                        g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
        }
        /* Decoding the payload into the same arena must leave the envelope intact. */
        g_assert_cmpuint(envelope_touch(env), ==, before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(FUZZ_MAX_FRAME_BYTES);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        size_t pos = 0;

        while (pos < size) {
                /*
                 * The byte at the read position sets the read size and is part of
                 * the stream too, so seeds stay plain frame streams.
                 */
                uint8_t control = data[pos];
                size_t len = (control & 0x80) ? size - pos : (size_t)(control & 0x3f) + 1;
                DebFrame frame;
                int r;

                len = MIN(len, size - pos);
                if (control & 0x40) {
                        gsize avail;
                        guint8 *space = deb_frame_decoder_get_space(decoder, len, &avail);

                        g_assert_cmpuint(avail, >=, len);
                        memcpy(space, data + pos, len);
                        deb_frame_decoder_commit(decoder, len);
                } else {
                        deb_frame_decoder_feed(decoder, data + pos, len);
                }
                pos += len;

                for (;;) {
                        g_autoptr(GError) error = NULL;

                        r = deb_frame_decoder_next(decoder, &frame, &error);
                        if (r == 0)
                                break;
                        if (r < 0) {
                                g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
                                return 0;
                        }
                        frame_check(unpacker, &frame);
                }
        }
        return 0;
}
