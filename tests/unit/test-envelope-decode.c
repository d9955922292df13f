/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of eventbus/deb-envelope-decode.c, differential against protobuf-c:
 *
 *  - everything protobuf-c packs (valid message types, no NUL in strings),
 *    the fast path must accept, and build a struct that protobuf-c packs
 *    back into exactly the same bytes;
 *  - for any other bytes (mutations, truncations, extensions, noise), the
 *    fast path may say "not mine" (NULL), but when it accepts, protobuf-c
 *    must accept too and the struct must pack back into the input: it never
 *    takes something the slow path would refuse, or reads it differently.
 *
 * The decoder allocates through the unpacker's arena; here a tracking
 * allocator stands in, so ASan sees every byte it touches.
 */
#include <string.h>

#include "deb-envelope-decode.h"
#include "envelope-gen.h"

#define RANDOM_ENVELOPES 3000
#define MUTATIONS_PER_ENVELOPE 8

typedef struct {
        ProtobufCAllocator allocator;
        GPtrArray *blocks;
} TrackingAllocator;

static void *tracking_alloc(void *data, size_t size)
{
        TrackingAllocator *t = data;
        void *p = g_malloc(size ? size : 1);

        g_ptr_array_add(t->blocks, p);
        return p;
}

/* Freed all at once by tracking_reset(), as the arena does. */
static void tracking_free(void *data, void *p)
{
        (void)data;
        (void)p;
}

static void tracking_init(TrackingAllocator *t)
{
        t->allocator.alloc = tracking_alloc;
        t->allocator.free = tracking_free;
        t->allocator.allocator_data = t;
        t->blocks = g_ptr_array_new_with_free_func(g_free);
}

static void tracking_reset(TrackingAllocator *t)
{
        g_ptr_array_set_size(t->blocks, 0);
}

static void tracking_clear(TrackingAllocator *t)
{
        g_ptr_array_unref(t->blocks);
}

static GByteArray *pack_with_protobuf_c(const DebEnvelope *env)
{
        GByteArray *bytes = g_byte_array_sized_new(64);
        gsize size = protobuf_c_message_get_packed_size(&env->base);

        g_byte_array_set_size(bytes, (guint)size);
        g_assert_cmpuint(protobuf_c_message_pack(&env->base, bytes->data), ==, size);
        return bytes;
}

/* @env, packed by protobuf-c, is exactly @data. */
static void assert_packs_back(const DebEnvelope *env, const guint8 *data, gsize len)
{
        g_autoptr(GByteArray) repacked = pack_with_protobuf_c(env);

        g_assert_cmpmem(repacked->data, repacked->len, data, len);
}

/* The fast path's verdict on arbitrary bytes is never wrong. */
static gboolean check_bytes(TrackingAllocator *t, const guint8 *data, gsize len)
{
        DebEnvelope *fast = deb_envelope_decode_canonical(&t->allocator, data, len);
        DebEnvelope *slow;

        if (!fast) {
                tracking_reset(t);
                return FALSE;
        }
        slow = daemoneye__eventbus__envelope__unpack(NULL, len, data);
        g_assert_nonnull(slow);
        assert_packs_back(fast, data, len);
        assert_packs_back(slow, data, len);
        g_assert_cmpint(fast->message_type, ==, slow->message_type);
        g_assert_cmpuint(fast->timestamp_us, ==, slow->timestamp_us);
        g_assert_cmpuint(fast->payload.len, ==, slow->payload.len);
        daemoneye__eventbus__envelope__free_unpacked(slow, NULL);
        tracking_reset(t);
        return TRUE;
}

/* What our encoder writes for a publish, accepted, every field as sent. */
static void test_publish_shape(void)
{
        static const guint8 payload[] = {0x00, 0x01, 0xfe, 0xff};
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        DebCorrelation c = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        GenTagsEntry tag = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__TAGS_ENTRY__INIT;
        GenTagsEntry *tags[] = {&tag};
        g_autoptr(GByteArray) bytes = NULL;
        TrackingAllocator t;
        DebEnvelope *decoded;

        tag.key = (char *)"host";
        tag.value = (char *)"node-1";
        c.correlation_id = (char *)"0f8fad5b-d9cb-469f-a165-70867728950e";
        c.root_correlation_id = c.correlation_id;
        c.sequence_number = 1000000;
        c.workflow_stage = (char *)"scan";
        c.n_tags = 1;
        c.tags = tags;
        env.topic = (char *)"events.process.lifecycle";
        env.message_type = DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_EVENT;
        env.correlation = &c;
        env.payload_type = (char *)"daemoneye.eventbus.ProcessLifecycleEvent";
        env.payload.data = (guint8 *)payload;
        env.payload.len = sizeof(payload);
        env.timestamp_us = G_GUINT64_CONSTANT(1700000000123456);
        env.sender = (char *)"procmond";
        bytes = pack_with_protobuf_c(&env);

        tracking_init(&t);
        decoded = deb_envelope_decode_canonical(&t.allocator, bytes->data, bytes->len);
        g_assert_nonnull(decoded);
        g_assert_cmpstr(decoded->topic, ==, env.topic);
        g_assert_cmpint(decoded->message_type, ==, env.message_type);
        g_assert_cmpstr(decoded->payload_type, ==, env.payload_type);
        g_assert_cmpmem(decoded->payload.data, decoded->payload.len, payload, sizeof(payload));
        g_assert_cmpuint(decoded->timestamp_us, ==, env.timestamp_us);
        g_assert_cmpstr(decoded->sender, ==, env.sender);
        g_assert_nonnull(decoded->correlation);
        g_assert_cmpstr(decoded->correlation->correlation_id, ==, c.correlation_id);
        g_assert_cmpstr(decoded->correlation->root_correlation_id, ==, c.root_correlation_id);
        g_assert_cmpuint(decoded->correlation->sequence_number, ==, c.sequence_number);
        g_assert_cmpstr(decoded->correlation->workflow_stage, ==, c.workflow_stage);
        g_assert_cmpuint(decoded->correlation->n_tags, ==, 1);
        g_assert_cmpstr(decoded->correlation->tags[0]->key, ==, "host");
        g_assert_cmpstr(decoded->correlation->tags[0]->value, ==, "node-1");
        /* Absent strings read as protobuf-c's default, "", never NULL. */
        g_assert_cmpstr(decoded->correlation->parent_correlation_id, ==, "");
        tracking_clear(&t);
}

/* The empty message, and each field alone. */
static void test_empty(void)
{
        TrackingAllocator t;
        DebEnvelope *decoded;

        tracking_init(&t);
        decoded = deb_envelope_decode_canonical(&t.allocator, (const guint8 *)"", 0);
        /* Either "not mine" or the empty envelope; never anything else. */
        if (decoded) {
                g_assert_cmpstr(decoded->topic, ==, "");
                g_assert_cmpuint(decoded->payload.len, ==, 0);
                g_assert_null(decoded->correlation);
        }
        tracking_clear(&t);
}

/* Forms protobuf-c accepts but never writes go to the slow path. */
static void test_non_canonical_refused(void)
{
        static const struct {
                const char *what;
                guint8 bytes[16];
                gsize len;
        } cases[] = {
                /* message_type 1 as a two-byte varint */
                {"overlong varint", {0x10, 0x81, 0x00}, 3},
                /* timestamp_us = 5, then topic: fields out of order */
                {"fields out of order", {0x30, 0x05, 0x0a, 0x01, 'a'}, 5},
                /* topic twice */
                {"repeated scalar", {0x0a, 0x01, 'a', 0x0a, 0x01, 'b'}, 6},
                /* message_type explicitly 0 */
                {"explicit default", {0x10, 0x00}, 2},
                /* field 15, unknown */
                {"unknown field", {0x78, 0x01}, 2},
                /* topic with a NUL inside */
                {"NUL in string", {0x0a, 0x03, 'a', 0x00, 'b'}, 5},
                /* topic length past the end */
                {"truncated string", {0x0a, 0x05, 'a', 'b'}, 4},
                /* a varint cut short */
                {"truncated varint", {0x30, 0x80}, 2},
                /* message_type 999, unknown to the schema */
                {"unknown message type", {0x10, 0xe7, 0x07}, 3},
        };
        TrackingAllocator t;

        tracking_init(&t);
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_test_message("case: %s", cases[i].what);
                g_assert_null(deb_envelope_decode_canonical(&t.allocator, cases[i].bytes, cases[i].len));
                tracking_reset(&t);
        }
        tracking_clear(&t);
}

/* Everything protobuf-c writes is taken, and read back exactly. */
static void test_random_canonical(void)
{
        EnvelopeGen g;
        TrackingAllocator t;

        envelope_gen_init(&g, 0x5eed0002, TRUE);
        tracking_init(&t);
        for (guint i = 0; i < RANDOM_ENVELOPES; i++) {
                g_autoptr(GByteArray) bytes = pack_with_protobuf_c(gen_envelope(&g));

                g_assert_true(check_bytes(&t, bytes->data, bytes->len));
                g_ptr_array_set_size(g.owned, 0);
        }
        tracking_clear(&t);
        envelope_gen_clear(&g);
}

/* Damaged bytes: the fast path accepts only what protobuf-c reads the same way. */
static void test_random_mutations(void)
{
        EnvelopeGen g;
        TrackingAllocator t;
        guint accepted = 0, refused = 0;

        envelope_gen_init(&g, 0x5eed0003, TRUE);
        tracking_init(&t);
        for (guint i = 0; i < RANDOM_ENVELOPES; i++) {
                g_autoptr(GByteArray) bytes = pack_with_protobuf_c(gen_envelope(&g));

                for (guint m = 0; m < MUTATIONS_PER_ENVELOPE; m++) {
                        g_autoptr(GByteArray) copy = g_byte_array_sized_new(bytes->len + 8);
                        guint32 at;

                        g_byte_array_append(copy, bytes->data, bytes->len);
                        switch (gen_int(&g, 4)) {
                        case 0: /* flip a byte */
                                if (copy->len > 0) {
                                        at = gen_int(&g, copy->len);
                                        copy->data[at] ^= (guint8)(1 + gen_int(&g, 255));
                                }
                                break;
                        case 1: /* truncate */
                                g_byte_array_set_size(copy, gen_int(&g, copy->len + 1));
                                break;
                        case 2: /* append noise */
                                for (guint k = 1 + gen_int(&g, 8); k > 0; k--) {
                                        guint8 b = (guint8)g_rand_int(g.rand);

                                        g_byte_array_append(copy, &b, 1);
                                }
                                break;
                        default: /* set a byte to a key-like value */
                                if (copy->len > 0) {
                                        static const guint8 keys[] = {0x08, 0x0a, 0x10, 0x12, 0x1a, 0x22,
                                                                      0x28, 0x30, 0x3a, 0x80, 0xff, 0x00};

                                        at = gen_int(&g, copy->len);
                                        copy->data[at] = keys[gen_int(&g, G_N_ELEMENTS(keys))];
                                }
                                break;
                        }
                        if (check_bytes(&t, copy->data, copy->len))
                                accepted++;
                        else
                                refused++;
                }
                g_ptr_array_set_size(g.owned, 0);
        }
        g_test_message("mutations: %u accepted by the fast path, %u left to protobuf-c", accepted, refused);
        g_assert_cmpuint(refused, >, 0);
        tracking_clear(&t);
        envelope_gen_clear(&g);
}

/* Pure noise never crashes it, and whatever it takes is right. */
static void test_noise(void)
{
        g_autoptr(GRand) rand = g_rand_new_with_seed(0x5eed0004);
        TrackingAllocator t;
        guint8 buf[256];

        tracking_init(&t);
        for (guint i = 0; i < 20000; i++) {
                gsize len = (gsize)g_rand_int_range(rand, 0, sizeof(buf) + 1);

                for (gsize k = 0; k < len; k++)
                        buf[k] = (guint8)g_rand_int(rand);
                check_bytes(&t, buf, len);
        }
        tracking_clear(&t);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/envelope-decode/publish-shape", test_publish_shape);
        g_test_add_func("/envelope-decode/empty", test_empty);
        g_test_add_func("/envelope-decode/non-canonical-refused", test_non_canonical_refused);
        g_test_add_func("/envelope-decode/random-canonical", test_random_canonical);
        g_test_add_func("/envelope-decode/random-mutations", test_random_mutations);
        g_test_add_func("/envelope-decode/noise", test_noise);

        return g_test_run();
}
