/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Decoding the canonical Envelope without protobuf-c's generic parser.
 *
 * Every frame is decoded once by the broker and once by each subscriber;
 * protobuf-c scans the message twice (count, then parse) and the unpacker
 * then re-measures it for the canonical-size check. Our own encoder and any
 * conforming one write a single form, so this parser accepts exactly that
 * form in one pass and hands everything else, well-formed or not, to
 * protobuf-c and the checks in deb-unpacker.c: it can only say "yes" to bytes
 * those would also accept, and builds the same struct they would.
 */
#include <string.h>

#include "deb-envelope-decode.h"

#define KEY_VARINT(number) ((guint8)((number) << 3))
#define KEY_LENGTH_PREFIXED(number) ((guint8)(((number) << 3) | 2))

typedef Daemoneye__Eventbus__CorrelationMetadata__TagsEntry DebTagsEntry;

typedef struct {
        const guint8 *p;
        const guint8 *end;
        ProtobufCAllocator *allocator;
} Reader;

static inline void *reader_alloc(Reader *r, gsize size)
{
        return r->allocator->alloc(r->allocator->allocator_data, size);
}

/* A varint as protobuf-c writes it: no trailing zero byte, at most 64 bits. */
static inline gboolean read_varint(Reader *r, guint64 *out)
{
        guint64 v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                guint8 b;

                if (r->p == r->end)
                        return FALSE;
                b = *r->p++;
                v |= (guint64)(b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        if ((b == 0 && shift > 0) || (shift == 63 && b > 1))
                                return FALSE;
                        *out = v;
                        return TRUE;
                }
        }
        return FALSE;
}

/*
 * The key of the next field, or 0 (no field's key) when its number is not
 * above @last: a repeated or out-of-order field is for protobuf-c to judge.
 */
static inline guint8 read_key(Reader *r, guint *last)
{
        guint8 key = *r->p++;

        if ((guint)(key >> 3) <= *last)
                return 0;
        *last = key >> 3;
        return key;
}

/* A non-zero varint: zero is the default, which an encoder leaves out. */
static inline gboolean read_nonzero(Reader *r, guint64 *out)
{
        return read_varint(r, out) && *out != 0;
}

/* A length prefix whose bytes are all there. */
static inline gboolean read_length(Reader *r, gsize *out)
{
        guint64 len;

        if (!read_varint(r, &len) || len > (guint64)(r->end - r->p))
                return FALSE;
        *out = (gsize)len;
        return TRUE;
}

/* A non-empty string without NUL (protobuf-c would cut it there), copied NUL-terminated. */
static gboolean read_string(Reader *r, char **out)
{
        gsize len;
        char *s;

        if (!read_length(r, &len) || len == 0 || memchr(r->p, '\0', len))
                return FALSE;
        s = reader_alloc(r, len + 1);
        if (!s)
                return FALSE;
        memcpy(s, r->p, len);
        s[len] = '\0';
        r->p += len;
        *out = s;
        return TRUE;
}

static gboolean read_bytes(Reader *r, ProtobufCBinaryData *out)
{
        gsize len;
        guint8 *data;

        if (!read_length(r, &len) || len == 0)
                return FALSE;
        data = reader_alloc(r, len);
        if (!data)
                return FALSE;
        memcpy(data, r->p, len);
        r->p += len;
        out->len = len;
        out->data = data;
        return TRUE;
}

/* Starts a reader on the length-prefixed body at @r, and skips it in @r. */
static gboolean read_submessage(Reader *r, Reader *sub)
{
        gsize len;

        if (!read_length(r, &len))
                return FALSE;
        *sub = (Reader){.p = r->p, .end = r->p + len, .allocator = r->allocator};
        r->p += len;
        return TRUE;
}

static DebTagsEntry *read_tags_entry(Reader *r)
{
        DebTagsEntry *entry;
        guint last = 0;
        Reader sub;

        if (!read_submessage(r, &sub))
                return NULL;
        entry = reader_alloc(r, sizeof(*entry));
        if (!entry)
                return NULL;
        daemoneye__eventbus__correlation_metadata__tags_entry__init(entry);
        while (sub.p < sub.end) {
                switch (read_key(&sub, &last)) {
                case KEY_LENGTH_PREFIXED(1):
                        if (!read_string(&sub, &entry->key))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(2):
                        if (!read_string(&sub, &entry->value))
                                return NULL;
                        break;
                default:
                        return NULL;
                }
        }
        return entry;
}

/*
 * Tags are the last field, so every remaining entry of @r is one: counts them
 * (the key of the first is already consumed) to size the array at once.
 */
static gboolean read_tags(Reader *r, DebCorrelation *c)
{
        Reader scan = *r;
        gsize n = 0;

        for (;;) {
                gsize len;

                if (!read_length(&scan, &len))
                        return FALSE;
                scan.p += len;
                n++;
                if (scan.p == scan.end)
                        break;
                if (*scan.p++ != KEY_LENGTH_PREFIXED(6))
                        return FALSE;
        }

        c->tags = reader_alloc(r, n * sizeof(DebTagsEntry *));
        if (!c->tags)
                return FALSE;
        for (gsize i = 0; i < n; i++) {
                if (i > 0)
                        r->p++; /* the key, checked by the scan */
                c->tags[i] = read_tags_entry(r);
                if (!c->tags[i])
                        return FALSE;
        }
        c->n_tags = n;
        return TRUE;
}

static DebCorrelation *read_correlation(Reader *r)
{
        DebCorrelation *c;
        guint last = 0;
        Reader sub;

        if (!read_submessage(r, &sub))
                return NULL;
        c = reader_alloc(r, sizeof(*c));
        if (!c)
                return NULL;
        daemoneye__eventbus__correlation_metadata__init(c);
        while (sub.p < sub.end) {
                switch (read_key(&sub, &last)) {
                case KEY_LENGTH_PREFIXED(1):
                        if (!read_string(&sub, &c->correlation_id))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(2):
                        if (!read_string(&sub, &c->parent_correlation_id))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(3):
                        if (!read_string(&sub, &c->root_correlation_id))
                                return NULL;
                        break;
                case KEY_VARINT(4):
                        if (!read_nonzero(&sub, &c->sequence_number))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(5):
                        if (!read_string(&sub, &c->workflow_stage))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(6):
                        if (!read_tags(&sub, c))
                                return NULL;
                        break;
                default:
                        return NULL;
                }
        }
        return c;
}

static gboolean read_message_type(Reader *r, Daemoneye__Eventbus__MessageType *out)
{
        guint64 v;

        /* protobuf-c keeps any int32 in an enum field; the broker routes on this one. */
        if (!read_nonzero(r, &v) || v > G_MAXINT32 ||
            !protobuf_c_enum_descriptor_get_value(&daemoneye__eventbus__message_type__descriptor, (int)v))
                return FALSE;
        *out = (Daemoneye__Eventbus__MessageType)v;
        return TRUE;
}

DebEnvelope *deb_envelope_decode_canonical(ProtobufCAllocator *allocator, const guint8 *data, gsize len)
{
        Reader r = {.p = data, .end = data + len, .allocator = allocator};
        DebEnvelope *env;
        guint last = 0;

        env = reader_alloc(&r, sizeof(*env));
        if (!env)
                return NULL;
        daemoneye__eventbus__envelope__init(env);
        while (r.p < r.end) {
                switch (read_key(&r, &last)) {
                case KEY_LENGTH_PREFIXED(1):
                        if (!read_string(&r, &env->topic))
                                return NULL;
                        break;
                case KEY_VARINT(2):
                        if (!read_message_type(&r, &env->message_type))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(3):
                        env->correlation = read_correlation(&r);
                        if (!env->correlation)
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(4):
                        if (!read_string(&r, &env->payload_type))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(5):
                        if (!read_bytes(&r, &env->payload))
                                return NULL;
                        break;
                case KEY_VARINT(6):
                        if (!read_nonzero(&r, &env->timestamp_us))
                                return NULL;
                        break;
                case KEY_LENGTH_PREFIXED(7):
                        if (!read_string(&r, &env->sender))
                                return NULL;
                        break;
                default:
                        return NULL;
                }
        }
        return env;
}
