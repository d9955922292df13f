/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include "eventbus.pb-c.h"

G_BEGIN_DECLS

/*
 * Stream framing: a 4-byte little-endian length, then that many bytes of one
 * encoded Envelope. A length is checked against max_frame_bytes before a single
 * byte of the body is buffered.
 */
#define DEB_FRAME_HEADER_SIZE 4u
#define DEB_DEFAULT_MAX_FRAME_BYTES (1024u * 1024u)
#define DEB_PROTOCOL_VERSION 1u

typedef Daemoneye__Eventbus__Envelope DebEnvelope;
typedef Daemoneye__Eventbus__CorrelationMetadata DebCorrelation;

/* A complete frame inside a decoder's buffer; valid until the decoder is fed again. */
typedef struct {
        const guint8 *data; /* header + body, ready to be forwarded as is */
        gsize size;         /* DEB_FRAME_HEADER_SIZE + body_len */
        const guint8 *body;
        gsize body_len;
} DebFrame;

typedef struct _DebFrameDecoder DebFrameDecoder;

/**
 * deb_frame_decoder_new: Returns: (transfer full) a decoder refusing bodies over
 * @max_frame_bytes (0: DEB_DEFAULT_MAX_FRAME_BYTES).
 */
DebFrameDecoder *deb_frame_decoder_new(gsize max_frame_bytes);
void deb_frame_decoder_free(DebFrameDecoder *decoder);

/**
 * deb_frame_decoder_get_space:
 * @min_size: at least this many bytes are wanted
 * @out_avail: (out) bytes writable at the returned address (>= @min_size)
 *
 * For reading from a socket straight into the decoder: read(fd, space, avail),
 * then deb_frame_decoder_commit(). Invalidates frames returned earlier.
 */
guint8 *deb_frame_decoder_get_space(DebFrameDecoder *decoder, gsize min_size, gsize *out_avail);

/** deb_frame_decoder_commit: marks @n bytes written at the space as received. */
void deb_frame_decoder_commit(DebFrameDecoder *decoder, gsize n);

/** deb_frame_decoder_feed: copies @len bytes in (get_space + memcpy + commit). */
void deb_frame_decoder_feed(DebFrameDecoder *decoder, const void *data, gsize len);

/**
 * deb_frame_decoder_next:
 * @frame: (out) the next complete frame
 *
 * Returns: 1 and fills @frame when a whole frame is buffered; 0 when more bytes
 *   are needed; -1 with #DEB_ERROR_FRAME_TOO_LARGE when the next length is over
 *   the limit (the stream cannot be resynchronised: close it).
 */
int deb_frame_decoder_next(DebFrameDecoder *decoder, DebFrame *frame, GError **error);

/** deb_frame_decoder_get_buffered: Returns: bytes received and not yet returned as frames. */
gsize deb_frame_decoder_get_buffered(DebFrameDecoder *decoder);

/**
 * deb_frame_encode_envelope:
 * @buf: the frame (header + body) is appended here
 * @max_frame_bytes: bodies over this are refused (0: DEB_DEFAULT_MAX_FRAME_BYTES)
 *
 * Returns: %FALSE with #DEB_ERROR_FRAME_TOO_LARGE if the envelope is too big.
 */
gboolean deb_frame_encode_envelope(GByteArray *buf, const DebEnvelope *env, gsize max_frame_bytes,
                                   GError **error);

/** deb_frame_write_header: writes @body_len little-endian into @out[0..3]. */
void deb_frame_write_header(guint8 *out, guint32 body_len);

/** deb_frame_read_header: Returns: the length stored little-endian at @in[0..3]. */
guint32 deb_frame_read_header(const guint8 *in);

/*
 * Decoding envelopes without a malloc per field: an unpacker owns an arena
 * that protobuf-c allocates from; everything it returns lives until the next
 * unpack or reset.
 */
typedef struct _DebUnpacker DebUnpacker;

DebUnpacker *deb_unpacker_new(void);
void deb_unpacker_free(DebUnpacker *unpacker);

/**
 * deb_unpacker_envelope:
 *
 * Decodes @len bytes as an Envelope. Resets the arena first, so the previous
 * result is invalid. Also checks what protobuf-c does not: message_type is a
 * known value (MESSAGE_TYPE_UNSPECIFIED included; refusing it is the caller's
 * protocol decision). The error message says where and why the bytes do not decode.
 * Returns: (transfer none) the envelope, or %NULL with #DEB_ERROR_MALFORMED.
 */
const DebEnvelope *deb_unpacker_envelope(DebUnpacker *unpacker, const guint8 *data, gsize len, GError **error);

/**
 * deb_unpacker_message:
 *
 * Decodes a control payload (Hello, Subscribe, …) with the same arena, without
 * resetting it, so the envelope it came from stays valid. Its memory is
 * reclaimed by the next deb_unpacker_envelope().
 * Returns: (transfer none) the message, or %NULL with #DEB_ERROR_MALFORMED.
 */
ProtobufCMessage *deb_unpacker_message(DebUnpacker *unpacker, const ProtobufCMessageDescriptor *desc,
                                       const guint8 *data, gsize len, GError **error);

/** deb_message_type_to_string: "event", "control", … ("unknown" otherwise). */
const char *deb_message_type_to_string(int message_type);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebFrameDecoder, deb_frame_decoder_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebUnpacker, deb_unpacker_free)

G_END_DECLS
