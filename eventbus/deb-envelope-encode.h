/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include "deb-frame.h"

G_BEGIN_DECLS

/*
 * A hand-written encoder for the Envelope, which every publish encodes.
 *
 * protobuf-c's generic packer walks the field descriptors and measures every
 * string twice (size, then pack); it was over half of what a publish cost.
 * This writes the same bytes directly: fields in ascending number, a proto3
 * field left out when it is 0, NULL, "" or empty bytes, exactly as
 * protobuf-c 1.4 does, so the output is byte for byte what
 * protobuf_c_message_pack() writes (tests/unit/test-envelope-encode.c checks
 * it over tables and random envelopes). An envelope carrying unknown fields
 * (only ever a decoded one) is handed to protobuf-c.
 */

/* What deb_envelope_measure() found, so packing does not measure again. */
typedef struct {
        gsize size; /* the encoded body */
        gsize topic_len;
        gsize payload_type_len;
        gsize sender_len;
        gsize correlation_size; /* body of the correlation; meaningless when it is NULL */
        gsize correlation_id_len;
        gsize parent_correlation_id_len;
        gsize root_correlation_id_len;
        gsize workflow_stage_len;
        gboolean generic; /* unknown fields somewhere: protobuf-c packs it */
} DebEnvelopeLayout;

/**
 * deb_envelope_measure:
 * @layout: (out) filled for deb_envelope_pack_measured()
 *
 * Returns: the encoded size of @env, as protobuf_c_message_get_packed_size().
 */
gsize deb_envelope_measure(const DebEnvelope *env, DebEnvelopeLayout *layout);

/**
 * deb_envelope_pack_measured:
 * @layout: from deb_envelope_measure() on the unchanged @env
 * @out: room for @layout->size bytes
 *
 * Writes @env as protobuf_c_message_pack() would.
 */
void deb_envelope_pack_measured(const DebEnvelope *env, const DebEnvelopeLayout *layout, guint8 *out);

/** deb_envelope_get_packed_size: Returns: as protobuf_c_message_get_packed_size() on @env. */
gsize deb_envelope_get_packed_size(const DebEnvelope *env);

/** deb_envelope_pack: as protobuf_c_message_pack() on @env. Returns: the bytes written. */
gsize deb_envelope_pack(const DebEnvelope *env, guint8 *out);

G_END_DECLS
