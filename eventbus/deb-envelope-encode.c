/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Envelope encoder: protobuf-c's output, written without descriptors.
 * Every field number of Envelope, CorrelationMetadata and its tags entries is
 * below 16, so each key is one byte: (number << 3) | wire type.
 */
#include <string.h>

#include "deb-envelope-encode.h"

#define KEY_VARINT(number) ((guint8)((number) << 3))
#define KEY_LENGTH_PREFIXED(number) ((guint8)(((number) << 3) | 2))

static inline gsize varint_size(guint64 v)
{
        gsize n = 1;

        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

static inline guint8 *varint_put(guint8 *p, guint64 v)
{
        while (v >= 0x80) {
                *p++ = (guint8)(v | 0x80);
                v >>= 7;
        }
        *p++ = (guint8)v;
        return p;
}

/* An enum is an int32: protobuf-c writes a negative one sign-extended, in 10 bytes. */
static inline guint64 enum_wire_value(int value)
{
        return (guint64)(gint64)value;
}

/* proto3 leaves out NULL and "": the length, or 0 for "not on the wire". */
static inline gsize string_len(const char *s)
{
        return s ? strlen(s) : 0;
}

/* Size of a length-prefixed field with a one-byte key, 0 when empty (left out). */
static inline gsize field_size(gsize len)
{
        return len > 0 ? 1 + varint_size(len) + len : 0;
}

/* Size of a varint field with a one-byte key, 0 when it is 0 (left out). */
static inline gsize varint_field_size(guint64 v)
{
        return v != 0 ? 1 + varint_size(v) : 0;
}

static inline guint8 *put_bytes(guint8 *p, guint8 key, const void *data, gsize len)
{
        if (len == 0)
                return p;
        *p++ = key;
        p = varint_put(p, len);
        memcpy(p, data, len);
        return p + len;
}

static inline guint8 *put_uint64(guint8 *p, guint8 key, guint64 v)
{
        if (v == 0)
                return p;
        *p++ = key;
        return varint_put(p, v);
}

/* A field added to the schema and not to this file must not vanish silently: protobuf-c packs then. */
static gboolean schema_is_known(void)
{
        return daemoneye__eventbus__envelope__descriptor.n_fields == 7 &&
               daemoneye__eventbus__correlation_metadata__descriptor.n_fields == 6 &&
               daemoneye__eventbus__correlation_metadata__tags_entry__descriptor.n_fields == 2;
}

static gboolean correlation_has_unknown_fields(const DebCorrelation *c)
{
        if (c->base.n_unknown_fields > 0)
                return TRUE;
        for (gsize i = 0; i < c->n_tags; i++)
                if (c->tags[i]->base.n_unknown_fields > 0)
                        return TRUE;
        return FALSE;
}

gsize deb_envelope_measure(const DebEnvelope *env, DebEnvelopeLayout *layout)
{
        const DebCorrelation *c = env->correlation;
        gsize size = 0;

        memset(layout, 0, sizeof(*layout));
        if (env->base.n_unknown_fields > 0 || (c && correlation_has_unknown_fields(c)) || !schema_is_known()) {
                layout->generic = TRUE;
                layout->size = protobuf_c_message_get_packed_size(&env->base);
                return layout->size;
        }

        layout->topic_len = string_len(env->topic);
        layout->payload_type_len = string_len(env->payload_type);
        layout->sender_len = string_len(env->sender);
        size += field_size(layout->topic_len);
        size += varint_field_size(enum_wire_value(env->message_type));
        if (c) {
                gsize csize = 0;

                layout->correlation_id_len = string_len(c->correlation_id);
                layout->parent_correlation_id_len = string_len(c->parent_correlation_id);
                layout->root_correlation_id_len = string_len(c->root_correlation_id);
                layout->workflow_stage_len = string_len(c->workflow_stage);
                csize += field_size(layout->correlation_id_len);
                csize += field_size(layout->parent_correlation_id_len);
                csize += field_size(layout->root_correlation_id_len);
                csize += varint_field_size(c->sequence_number);
                csize += field_size(layout->workflow_stage_len);
                /* A repeated message: every entry is written, an empty one as key + zero length. */
                for (gsize i = 0; i < c->n_tags; i++) {
                        gsize entry = field_size(string_len(c->tags[i]->key)) +
                                      field_size(string_len(c->tags[i]->value));

                        csize += 1 + varint_size(entry) + entry;
                }
                layout->correlation_size = csize;
                size += 1 + varint_size(csize) + csize;
        }
        size += field_size(layout->payload_type_len);
        size += field_size(env->payload.len);
        size += varint_field_size(env->timestamp_us);
        size += field_size(layout->sender_len);
        layout->size = size;
        return size;
}

static guint8 *correlation_pack(const DebCorrelation *c, const DebEnvelopeLayout *layout, guint8 *p)
{
        *p++ = KEY_LENGTH_PREFIXED(3);
        p = varint_put(p, layout->correlation_size);
        p = put_bytes(p, KEY_LENGTH_PREFIXED(1), c->correlation_id, layout->correlation_id_len);
        p = put_bytes(p, KEY_LENGTH_PREFIXED(2), c->parent_correlation_id, layout->parent_correlation_id_len);
        p = put_bytes(p, KEY_LENGTH_PREFIXED(3), c->root_correlation_id, layout->root_correlation_id_len);
        p = put_uint64(p, KEY_VARINT(4), c->sequence_number);
        p = put_bytes(p, KEY_LENGTH_PREFIXED(5), c->workflow_stage, layout->workflow_stage_len);
        for (gsize i = 0; i < c->n_tags; i++) {
                const Daemoneye__Eventbus__CorrelationMetadata__TagsEntry *entry = c->tags[i];
                gsize key_len = string_len(entry->key), value_len = string_len(entry->value);

                *p++ = KEY_LENGTH_PREFIXED(6);
                p = varint_put(p, field_size(key_len) + field_size(value_len));
                p = put_bytes(p, KEY_LENGTH_PREFIXED(1), entry->key, key_len);
                p = put_bytes(p, KEY_LENGTH_PREFIXED(2), entry->value, value_len);
        }
        return p;
}

void deb_envelope_pack_measured(const DebEnvelope *env, const DebEnvelopeLayout *layout, guint8 *out)
{
        guint8 *p = out;

        if (layout->generic) {
                protobuf_c_message_pack(&env->base, out);
                return;
        }

        p = put_bytes(p, KEY_LENGTH_PREFIXED(1), env->topic, layout->topic_len);
        p = put_uint64(p, KEY_VARINT(2), enum_wire_value(env->message_type));
        if (env->correlation)
                p = correlation_pack(env->correlation, layout, p);
        p = put_bytes(p, KEY_LENGTH_PREFIXED(4), env->payload_type, layout->payload_type_len);
        p = put_bytes(p, KEY_LENGTH_PREFIXED(5), env->payload.data, env->payload.len);
        p = put_uint64(p, KEY_VARINT(6), env->timestamp_us);
        p = put_bytes(p, KEY_LENGTH_PREFIXED(7), env->sender, layout->sender_len);
        g_assert((gsize)(p - out) == layout->size);
}

gsize deb_envelope_get_packed_size(const DebEnvelope *env)
{
        DebEnvelopeLayout layout;

        return deb_envelope_measure(env, &layout);
}

gsize deb_envelope_pack(const DebEnvelope *env, guint8 *out)
{
        DebEnvelopeLayout layout;

        deb_envelope_measure(env, &layout);
        deb_envelope_pack_measured(env, &layout, out);
        return layout.size;
}
