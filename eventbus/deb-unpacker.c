/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Envelope decoding without a malloc per field.
 *
 * protobuf-c allocates every message, string, byte field and array it unpacks
 * through a ProtobufCAllocator. Ours bumps a pointer through an arena of
 * chunks; free() does nothing, and everything goes at once on the next reset.
 * A broker decodes every frame it receives, so this is on its hottest path.
 */
#include <stdint.h>
#include <string.h>

#include "deb-envelope-decode.h"
#include "deb-error.h"
#include "deb-frame.h"

/* Enough for any generated struct or scalar protobuf-c stores. */
#define ARENA_ALIGN 16u
#define ARENA_FIRST_CHUNK (16u * 1024u)
/*
 * When unpacks keep spilling out of the first chunk, it grows up to this size
 * so the steady state stays malloc-free; beyond, extras are freed at each reset.
 */
#define ARENA_FIRST_CHUNK_MAX (64u * 1024u)

typedef struct ArenaChunk ArenaChunk;
struct ArenaChunk {
        ArenaChunk *next;
        gsize size; /* bytes allocated, this header included */
        guint8 data[];
};

struct _DebUnpacker {
        ProtobufCAllocator allocator; /* allocator_data points back here */
        ArenaChunk *first;            /* kept across resets */
        ArenaChunk *extra;            /* added since the last reset, newest first */
        guint8 *pos;                  /* next free byte of the current chunk, aligned */
        guint8 *end;                  /* end of the current chunk */
};

static guint8 *align_up(guint8 *p)
{
        return (guint8 *)(((uintptr_t)p + (ARENA_ALIGN - 1)) & ~(uintptr_t)(ARENA_ALIGN - 1));
}

static ArenaChunk *arena_chunk_new(gsize size)
{
        ArenaChunk *chunk = g_malloc(size);

        chunk->next = NULL;
        chunk->size = size;
        return chunk;
}

static void arena_use_chunk(DebUnpacker *unpacker, ArenaChunk *chunk)
{
        unpacker->pos = align_up(chunk->data);
        unpacker->end = (guint8 *)chunk + chunk->size;
}

/* Starts a chunk holding at least @need aligned bytes, twice the previous one at least. */
static gboolean arena_add_chunk(DebUnpacker *unpacker, gsize need)
{
        const gsize overhead = sizeof(ArenaChunk) + ARENA_ALIGN;
        gsize previous = unpacker->extra ? unpacker->extra->size : unpacker->first->size;
        ArenaChunk *chunk;

        if (need > G_MAXSIZE / 2 - overhead)
                return FALSE;
        chunk = arena_chunk_new(MAX(previous * 2, need + overhead));
        chunk->next = unpacker->extra;
        unpacker->extra = chunk;
        arena_use_chunk(unpacker, chunk);
        return TRUE;
}

static void *arena_alloc(void *allocator_data, size_t size)
{
        DebUnpacker *unpacker = allocator_data;
        gsize need;
        void *p;

        /* protobuf-c treats NULL as failure and returns NULL from unpack. */
        if (size > G_MAXSIZE - ARENA_ALIGN)
                return NULL;
        need = (size + (ARENA_ALIGN - 1)) & ~(gsize)(ARENA_ALIGN - 1);
        if ((gsize)(unpacker->end - unpacker->pos) < need && !arena_add_chunk(unpacker, need))
                return NULL;

        p = unpacker->pos;
        unpacker->pos += need;
        return p;
}

static void arena_free(void *allocator_data, void *pointer)
{
        /* Everything is released at once by the next reset. */
}

/* Frees the chunks added since the last reset. Returns: the bytes they and the first chunk held. */
static gsize arena_free_extras(DebUnpacker *unpacker)
{
        gsize total = unpacker->first->size;

        while (unpacker->extra) {
                ArenaChunk *next = unpacker->extra->next;

                total += unpacker->extra->size;
                g_free(unpacker->extra);
                unpacker->extra = next;
        }
        return total;
}

/* Forgets every allocation; keeps the first chunk, frees the extras. */
static void arena_reset(DebUnpacker *unpacker)
{
        gsize total = arena_free_extras(unpacker);

        /* Moderate sizes that overflowed get a first chunk that fits them next time. */
        if (total > unpacker->first->size) {
                gsize grown = unpacker->first->size;

                while (grown < total && grown < ARENA_FIRST_CHUNK_MAX)
                        grown *= 2;
                if (grown >= total) {
                        g_free(unpacker->first);
                        unpacker->first = arena_chunk_new(grown);
                }
        }

        arena_use_chunk(unpacker, unpacker->first);
}

/*
 * protobuf-c only says that unpacking failed. On that (cold) path the input is
 * walked again to say where and why, so a protocol error in the log is useful.
 */
#define DIAGNOSE_MAX_DEPTH 8

static gboolean wire_read_varint(const guint8 *data, gsize len, gsize *pos, guint64 *out)
{
        guint64 value = 0;

        for (unsigned i = 0; i < 10 && *pos < len; i++) {
                guint8 b = data[(*pos)++];

                value |= (guint64)(b & 0x7f) << (7 * i);
                if (!(b & 0x80)) {
                        *out = value;
                        return TRUE;
                }
        }
        return FALSE;
}

static ProtobufCWireType wire_type_of(ProtobufCType type)
{
        switch (type) {
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_FIXED32:
        case PROTOBUF_C_TYPE_FLOAT:
                return PROTOBUF_C_WIRE_TYPE_32BIT;
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_FIXED64:
        case PROTOBUF_C_TYPE_DOUBLE:
                return PROTOBUF_C_WIRE_TYPE_64BIT;
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_BYTES:
        case PROTOBUF_C_TYPE_MESSAGE:
                return PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED;
        default:
                return PROTOBUF_C_WIRE_TYPE_VARINT;
        }
}

/*
 * Looks for the first defect in @data as a @desc message, @base being its
 * offset in the envelope. Returns: TRUE with @reason set ("correlation: tags:
 * key: ...", unknown fields as "#13") when one was found.
 */
static gboolean wire_diagnose(const ProtobufCMessageDescriptor *desc, const guint8 *data, gsize len,
                              gsize base, unsigned depth, GString *reason)
{
        gsize pos = 0;

        while (pos < len) {
                const ProtobufCFieldDescriptor *field;
                gsize at = pos, value_at;
                guint64 key, value_len = 0;
                unsigned number, wire;
                char label[16];
                const char *name;

                if (!wire_read_varint(data, len, &pos, &key)) {
                        g_string_printf(reason, "truncated field key at byte %" G_GSIZE_FORMAT, base + at);
                        return TRUE;
                }
                /* Field numbers are 1 to 2^29 - 1. */
                if (key >> 3 == 0 || key >> 3 > 536870911u) {
                        g_string_printf(reason, "invalid field number at byte %" G_GSIZE_FORMAT, base + at);
                        return TRUE;
                }
                number = (unsigned)(key >> 3);
                wire = (unsigned)(key & 7);
                field = protobuf_c_message_descriptor_get_field(desc, number);
                g_snprintf(label, sizeof(label), "#%u", number);
                name = field ? field->name : label;

                value_at = pos;
                if (wire == PROTOBUF_C_WIRE_TYPE_VARINT || wire == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
                        if (!wire_read_varint(data, len, &pos, &value_len)) {
                                g_string_printf(reason, "%s: truncated varint at byte %" G_GSIZE_FORMAT,
                                                name, base + value_at);
                                return TRUE;
                        }
                        if (wire == PROTOBUF_C_WIRE_TYPE_VARINT)
                                value_len = 0;
                } else if (wire == PROTOBUF_C_WIRE_TYPE_64BIT || wire == PROTOBUF_C_WIRE_TYPE_32BIT) {
                        value_len = wire == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
                } else {
                        g_string_printf(reason, "%s: unsupported wire type %u at byte %" G_GSIZE_FORMAT,
                                        name, wire, base + at);
                        return TRUE;
                }
                if (value_len > len - pos) {
                        g_string_printf(reason,
                                        "%s: %" G_GUINT64_FORMAT "-byte value at byte %" G_GSIZE_FORMAT
                                        " runs past the end (%" G_GSIZE_FORMAT " bytes left)",
                                        name, value_len, base + pos, len - pos);
                        return TRUE;
                }
                value_at = pos;
                pos += (gsize)value_len;

                /* Unknown fields are skipped and kept, as protobuf requires. */
                if (!field)
                        continue;
                if (wire != (unsigned)wire_type_of(field->type) &&
                    !(field->label == PROTOBUF_C_LABEL_REPEATED &&
                      wire == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)) {
                        g_string_printf(reason, "%s: wire type %u where %u was expected", name, wire,
                                        (unsigned)wire_type_of(field->type));
                        return TRUE;
                }
                if (field->type == PROTOBUF_C_TYPE_MESSAGE && depth < DIAGNOSE_MAX_DEPTH &&
                    wire_diagnose(field->descriptor, data + value_at, (gsize)value_len, base + value_at,
                                  depth + 1, reason)) {
                        g_string_prepend(reason, ": ");
                        g_string_prepend(reason, name);
                        return TRUE;
                }
        }
        return FALSE;
}

static void set_malformed(GError **error, const char *what, const ProtobufCMessageDescriptor *desc,
                          const guint8 *data, gsize len)
{
        g_autoptr(GString) reason = g_string_new(NULL);

        if (wire_diagnose(desc, data, len, 0, 0, reason))
                g_set_error(error, DEB_ERROR, DEB_ERROR_MALFORMED,
                            "%s of %" G_GSIZE_FORMAT " bytes does not decode as %s: %s", what, len,
                            desc->name, reason->str);
        else
                g_set_error(error, DEB_ERROR, DEB_ERROR_MALFORMED,
                            "%s of %" G_GSIZE_FORMAT " bytes does not decode as %s", what, len, desc->name);
}

DebUnpacker *deb_unpacker_new(void)
{
        DebUnpacker *unpacker = g_new0(DebUnpacker, 1);

        unpacker->allocator.alloc = arena_alloc;
        unpacker->allocator.free = arena_free;
        unpacker->allocator.allocator_data = unpacker;
        unpacker->first = arena_chunk_new(ARENA_FIRST_CHUNK);
        arena_use_chunk(unpacker, unpacker->first);
        return unpacker;
}

void deb_unpacker_free(DebUnpacker *unpacker)
{
        if (!unpacker)
                return;
        arena_free_extras(unpacker);
        g_free(unpacker->first);
        g_free(unpacker);
}

/*
 * protobuf-c hands strings back NUL-terminated without checking for a NUL
 * inside them, so "events.x\0control.y" would be validated and routed as
 * "events.x" while the forwarded bytes say something else to other decoders.
 * Re-measuring the decoded message catches that (and any other non-canonical
 * encoding, which no conforming encoder produces) at the cost of one size walk.
 */
static gboolean check_canonical_size(const ProtobufCMessage *message, const char *what, gsize len,
                                     GError **error)
{
        gsize packed = protobuf_c_message_get_packed_size(message);

        if (packed == len)
                return TRUE;
        g_set_error(error, DEB_ERROR, DEB_ERROR_MALFORMED,
                    "%s of %" G_GSIZE_FORMAT " bytes is not canonically encoded (it re-encodes to %"
                    G_GSIZE_FORMAT " bytes): a string holds a NUL byte, or a field is repeated",
                    what, len, packed);
        return FALSE;
}

const DebEnvelope *deb_unpacker_envelope(DebUnpacker *unpacker, const guint8 *data, gsize len,
                                         GError **error)
{
        const DebEnvelope *env;

        g_return_val_if_fail(unpacker != NULL, NULL);
        g_return_val_if_fail(data != NULL || len == 0, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        arena_reset(unpacker);
        /* What any conforming encoder writes takes one pass; protobuf-c judges everything else. */
        env = deb_envelope_decode_canonical(&unpacker->allocator, data, len);
        if (env)
                return env;
        env = (const DebEnvelope *)protobuf_c_message_unpack(&daemoneye__eventbus__envelope__descriptor,
                                                             &unpacker->allocator, len, data);
        if (!env) {
                set_malformed(error, "envelope", &daemoneye__eventbus__envelope__descriptor, data, len);
                return NULL;
        }

        /* protobuf-c stores any varint in an enum field; the broker routes on this one. */
        if (!protobuf_c_enum_descriptor_get_value(&daemoneye__eventbus__message_type__descriptor,
                                                  (int)env->message_type)) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_MALFORMED,
                            "envelope of %" G_GSIZE_FORMAT " bytes: unknown message_type %d", len,
                            (int)env->message_type);
                return NULL;
        }
        if (!check_canonical_size(&env->base, "envelope", len, error))
                return NULL;
        return env;
}

ProtobufCMessage *deb_unpacker_message(DebUnpacker *unpacker, const ProtobufCMessageDescriptor *desc,
                                       const guint8 *data, gsize len, GError **error)
{
        ProtobufCMessage *message;

        g_return_val_if_fail(unpacker != NULL, NULL);
        g_return_val_if_fail(desc != NULL, NULL);
        g_return_val_if_fail(data != NULL || len == 0, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        message = protobuf_c_message_unpack(desc, &unpacker->allocator, len, data);
        if (!message) {
                set_malformed(error, "payload", desc, data, len);
                return NULL;
        }
        if (!check_canonical_size(message, desc->name, len, error))
                return NULL;
        return message;
}
