/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The unpacker's fast path for envelopes. Not installed. */
#include <glib.h>
#include "deb-frame.h"

G_BEGIN_DECLS

/**
 * deb_envelope_decode_canonical:
 * @allocator: where the envelope and everything in it is allocated
 *
 * Decodes @data if it is an Envelope exactly as protobuf-c's packer writes
 * one: known fields only, each once and in ascending field number, minimal
 * varints, no field holding its default (0, "", empty), no NUL inside a
 * string, a known message_type. Such bytes are what protobuf-c would decode
 * and re-encode to the same length, so this is the full validation the
 * broker needs; the result is the struct protobuf_c_message_unpack() builds.
 *
 * Returns: the envelope, or %NULL when @data is anything else, malformed or
 *   merely unusual (unknown fields, say): protobuf-c then decides.
 */
DebEnvelope *deb_envelope_decode_canonical(ProtobufCAllocator *allocator, const guint8 *data, gsize len);

G_END_DECLS
