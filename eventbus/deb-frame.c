/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The frame codec: a 4-byte little-endian length, then one encoded Envelope.
 *
 * The decoder is a single growable buffer with a read offset. Sockets are read
 * straight into its free tail (get_space + commit), complete frames are handed
 * out as pointers into it, and a length is checked against the limit before a
 * single byte of its body is asked for.
 */
#include <string.h>

#include "deb-envelope-encode.h"
#include "deb-error.h"
#include "deb-frame.h"

/* Buffers grow and shrink in whole pages so a few bytes more never cost a copy each. */
#define DECODER_ALLOC_STEP 4096u
/* A buffer above this, much larger than what the stream needs now, is given back. */
#define DECODER_KEEP_BYTES (256u * 1024u)

struct _DebFrameDecoder {
        guint8 *buf;
        gsize alloc;           /* bytes allocated at buf */
        gsize start;           /* first byte not yet returned as a frame */
        gsize end;             /* received bytes end here */
        gsize max_frame_bytes; /* bodies over this are refused */
};

void deb_frame_write_header(guint8 *out, guint32 body_len)
{
        /* Byte by byte: @out may be unaligned, and the result is little-endian on any host. */
        out[0] = (guint8)(body_len & 0xffu);
        out[1] = (guint8)((body_len >> 8) & 0xffu);
        out[2] = (guint8)((body_len >> 16) & 0xffu);
        out[3] = (guint8)((body_len >> 24) & 0xffu);
}

guint32 deb_frame_read_header(const guint8 *in)
{
        return (guint32)in[0] | ((guint32)in[1] << 8) | ((guint32)in[2] << 16) | ((guint32)in[3] << 24);
}

const char *deb_message_type_to_string(int message_type)
{
        switch (message_type) {
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_EVENT:
                return "event";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_CONTROL:
                return "control";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HEARTBEAT:
                return "heartbeat";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_REQUEST:
                return "rpc-request";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_RESPONSE:
                return "rpc-response";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_SUBSCRIBE:
                return "subscribe";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_UNSUBSCRIBE:
                return "unsubscribe";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HELLO:
                return "hello";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_WELCOME:
                return "welcome";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ERROR:
                return "error";
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ACK:
                return "ack";
        default:
                return "unknown";
        }
}

gboolean deb_frame_encode_envelope(GByteArray *buf, const DebEnvelope *env, gsize max_frame_bytes,
                                   GError **error)
{
        DebEnvelopeLayout layout;
        gsize body_len, offset;

        g_return_val_if_fail(buf != NULL, FALSE);
        g_return_val_if_fail(env != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (max_frame_bytes == 0)
                max_frame_bytes = DEB_DEFAULT_MAX_FRAME_BYTES;

        body_len = deb_envelope_measure(env, &layout);
        if (body_len > max_frame_bytes) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE,
                            "envelope for topic '%s': frame of %" G_GSIZE_FORMAT
                            " bytes exceeds the limit of %" G_GSIZE_FORMAT,
                            env->topic ? env->topic : "", body_len, max_frame_bytes);
                return FALSE;
        }
        /* The header holds 32 bits and a GByteArray indexes with a guint. */
        offset = buf->len;
        if (body_len > G_MAXUINT32 || (guint64)offset + DEB_FRAME_HEADER_SIZE + body_len > G_MAXUINT) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE,
                            "envelope for topic '%s': frame of %" G_GSIZE_FORMAT
                            " bytes does not fit the output buffer",
                            env->topic ? env->topic : "", body_len);
                return FALSE;
        }

        /* One resize, then the body is packed in place: no temporary body to copy. */
        g_byte_array_set_size(buf, (guint)(offset + DEB_FRAME_HEADER_SIZE + body_len));
        deb_frame_write_header(buf->data + offset, (guint32)body_len);
        deb_envelope_pack_measured(env, &layout, buf->data + offset + DEB_FRAME_HEADER_SIZE);
        return TRUE;
}

DebFrameDecoder *deb_frame_decoder_new(gsize max_frame_bytes)
{
        DebFrameDecoder *decoder = g_new0(DebFrameDecoder, 1);

        decoder->max_frame_bytes = max_frame_bytes > 0 ? max_frame_bytes : DEB_DEFAULT_MAX_FRAME_BYTES;
        return decoder;
}

void deb_frame_decoder_free(DebFrameDecoder *decoder)
{
        if (!decoder)
                return;
        g_free(decoder->buf);
        g_free(decoder);
}

gsize deb_frame_decoder_get_buffered(DebFrameDecoder *decoder)
{
        g_return_val_if_fail(decoder != NULL, 0);

        return decoder->end - decoder->start;
}

static gsize round_up_alloc(gsize n)
{
        return (n + DECODER_ALLOC_STEP - 1) / DECODER_ALLOC_STEP * DECODER_ALLOC_STEP;
}

/* Bytes the frame at the read offset needs in total, as far as is known yet. */
static gsize decoder_current_frame_size(const DebFrameDecoder *decoder)
{
        guint32 body_len;

        if (decoder->end - decoder->start < DEB_FRAME_HEADER_SIZE)
                return DEB_FRAME_HEADER_SIZE;
        body_len = deb_frame_read_header(decoder->buf + decoder->start);
        /* A frame that next() refuses gets no room: its body is never read. */
        if (body_len > decoder->max_frame_bytes)
                return DEB_FRAME_HEADER_SIZE;
        return DEB_FRAME_HEADER_SIZE + (gsize)body_len;
}

/* Moves the unread bytes to a buffer of @new_alloc bytes, at offset 0. */
static void decoder_reallocate(DebFrameDecoder *decoder, gsize new_alloc)
{
        gsize buffered = decoder->end - decoder->start;
        guint8 *buf = g_malloc(new_alloc);

        if (buffered > 0)
                memcpy(buf, decoder->buf + decoder->start, buffered);
        g_free(decoder->buf);
        decoder->buf = buf;
        decoder->alloc = new_alloc;
        decoder->start = 0;
        decoder->end = buffered;
}

guint8 *deb_frame_decoder_get_space(DebFrameDecoder *decoder, gsize min_size, gsize *out_avail)
{
        gsize buffered, need, limit, target;
        gboolean inflated;

        g_return_val_if_fail(decoder != NULL, NULL);
        g_return_val_if_fail(out_avail != NULL, NULL);
        g_return_val_if_fail(min_size <= G_MAXSIZE / 4, NULL);

        min_size = MAX(min_size, 1u);
        buffered = decoder->end - decoder->start;
        need = buffered + min_size;
        /* What the current frame needs plus one read: growing beyond would only waste memory. */
        limit = round_up_alloc(MAX(decoder_current_frame_size(decoder), buffered) + min_size);
        /* Memory taken by one big frame is given back once the stream is back to small ones. */
        inflated = decoder->alloc > DECODER_KEEP_BYTES && limit <= decoder->alloc / 4;

        if (!inflated && decoder->alloc - decoder->end >= min_size)
                goto done;

        if (!inflated && need <= decoder->alloc) {
                /* Compaction moves only the unread tail, usually part of one frame. */
                memmove(decoder->buf, decoder->buf + decoder->start, buffered);
                decoder->start = 0;
                decoder->end = buffered;
                goto done;
        }

        if (inflated)
                target = limit;
        else
                target = CLAMP(MAX(decoder->alloc * 2, (gsize)DECODER_ALLOC_STEP), need, limit);
        decoder_reallocate(decoder, target);

done:
        *out_avail = decoder->alloc - decoder->end;
        return decoder->buf + decoder->end;
}

void deb_frame_decoder_commit(DebFrameDecoder *decoder, gsize n)
{
        g_return_if_fail(decoder != NULL);
        g_return_if_fail(n <= decoder->alloc - decoder->end);

        decoder->end += n;
}

void deb_frame_decoder_feed(DebFrameDecoder *decoder, const void *data, gsize len)
{
        guint8 *space;
        gsize avail;

        g_return_if_fail(decoder != NULL);
        g_return_if_fail(data != NULL || len == 0);

        if (len == 0)
                return;
        space = deb_frame_decoder_get_space(decoder, len, &avail);
        memcpy(space, data, len);
        deb_frame_decoder_commit(decoder, len);
}

int deb_frame_decoder_next(DebFrameDecoder *decoder, DebFrame *frame, GError **error)
{
        const guint8 *header;
        gsize buffered;
        guint32 body_len;

        g_return_val_if_fail(decoder != NULL, -1);
        g_return_val_if_fail(frame != NULL, -1);
        g_return_val_if_fail(error == NULL || *error == NULL, -1);

        buffered = decoder->end - decoder->start;
        if (buffered < DEB_FRAME_HEADER_SIZE)
                return 0;

        header = decoder->buf + decoder->start;
        body_len = deb_frame_read_header(header);
        if ((gsize)body_len > decoder->max_frame_bytes) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE,
                            "frame of %" G_GUINT32_FORMAT " bytes exceeds the limit of %" G_GSIZE_FORMAT,
                            body_len, decoder->max_frame_bytes);
                return -1;
        }
        if (buffered - DEB_FRAME_HEADER_SIZE < (gsize)body_len)
                return 0;

        frame->data = header;
        frame->size = DEB_FRAME_HEADER_SIZE + (gsize)body_len;
        frame->body = header + DEB_FRAME_HEADER_SIZE;
        frame->body_len = body_len;

        decoder->start += frame->size;
        /* Only the offsets rewind; the bytes stay until the next get_space(), as documented. */
        if (decoder->start == decoder->end)
                decoder->start = decoder->end = 0;
        return 1;
}
