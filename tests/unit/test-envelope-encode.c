/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of eventbus/deb-envelope-encode.c: for every envelope, the size and
 * the bytes must be exactly protobuf-c's, since both encoders feed the same
 * wire and the broker forwards bytes as they are.
 */
#include <string.h>

#include "deb-envelope-encode.h"
#include "envelope-gen.h"

#define MT(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name
#define RANDOM_ENVELOPES 5000
#define CANARY 0xa5

static const guint64 varint_boundaries[] = {
        0,
        1,
        127,
        128,
        16383,
        16384,
        G_GUINT64_CONSTANT(0xffffffff),
        G_GUINT64_CONSTANT(0x100000000),
        G_GUINT64_CONSTANT(0x7ffffffff),
        G_GUINT64_CONSTANT(0x800000000),
        G_GUINT64_CONSTANT(1700000000123456),
        G_GUINT64_CONSTANT(0x7fffffffffffffff),
        G_GUINT64_CONSTANT(0x8000000000000000),
        G_MAXUINT64,
};

/* Our size and bytes against protobuf-c's, and the frame encoder on top. */
static void assert_encodes_like_protobuf_c(const DebEnvelope *env)
{
        gsize expected_size = protobuf_c_message_get_packed_size(&env->base);
        g_autofree guint8 *expected = g_malloc(expected_size + 1);
        g_autofree guint8 *actual = g_malloc(expected_size + 1);
        g_autoptr(GByteArray) frame = g_byte_array_new();
        g_autoptr(GError) error = NULL;
        DebEnvelopeLayout layout;

        g_assert_cmpuint(protobuf_c_message_pack(&env->base, expected), ==, expected_size);

        g_assert_cmpuint(deb_envelope_get_packed_size(env), ==, expected_size);
        g_assert_cmpuint(deb_envelope_measure(env, &layout), ==, expected_size);
        memset(actual, CANARY, expected_size + 1);
        deb_envelope_pack_measured(env, &layout, actual);
        g_assert_cmpmem(actual, expected_size, expected, expected_size);
        g_assert_cmpuint(actual[expected_size], ==, CANARY);

        memset(actual, CANARY, expected_size + 1);
        g_assert_cmpuint(deb_envelope_pack(env, actual), ==, expected_size);
        g_assert_cmpmem(actual, expected_size, expected, expected_size);
        g_assert_cmpuint(actual[expected_size], ==, CANARY);

        /* Appended after what is already in the buffer, with its header. */
        g_byte_array_append(frame, (const guint8 *)"xy", 2);
        g_assert_true(deb_frame_encode_envelope(frame, env, G_MAXUINT32, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(frame->len, ==, 2 + DEB_FRAME_HEADER_SIZE + expected_size);
        g_assert_cmpuint(deb_frame_read_header(frame->data + 2), ==, expected_size);
        g_assert_cmpmem(frame->data + 2 + DEB_FRAME_HEADER_SIZE, expected_size, expected, expected_size);
}

/* Every field set, as deb_client_publish() fills it, with @n_tags tags. */
static void envelope_fill(DebEnvelope *env, DebCorrelation *c, GenTagsEntry *tags, GenTagsEntry **tag_ptrs,
                          gsize n_tags)
{
        static guint8 payload[64];

        daemoneye__eventbus__envelope__init(env);
        daemoneye__eventbus__correlation_metadata__init(c);
        for (gsize i = 0; i < n_tags; i++) {
                daemoneye__eventbus__correlation_metadata__tags_entry__init(&tags[i]);
                tags[i].key = (char *)"host";
                tags[i].value = (char *)"node-1";
                tag_ptrs[i] = &tags[i];
        }
        c->correlation_id = (char *)"0f8fad5b-d9cb-469f-a165-70867728950e";
        c->root_correlation_id = c->correlation_id;
        c->sequence_number = 1000000;
        c->n_tags = n_tags;
        c->tags = n_tags ? tag_ptrs : NULL;
        env->topic = (char *)"events.process.lifecycle";
        env->message_type = MT(EVENT);
        env->correlation = c;
        env->payload.data = payload;
        env->payload.len = sizeof(payload);
        env->timestamp_us = G_GUINT64_CONSTANT(1700000000123456);
        env->sender = (char *)"bench-pub";
}

static void test_empty(void)
{
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        DebCorrelation c = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;

        assert_encodes_like_protobuf_c(&env);
        g_assert_cmpuint(deb_envelope_get_packed_size(&env), ==, 0);
        /* An empty correlation is still written: a key and a zero length. */
        env.correlation = &c;
        assert_encodes_like_protobuf_c(&env);
        g_assert_cmpuint(deb_envelope_get_packed_size(&env), ==, 2);
}

static void test_publish_shape(void)
{
        DebEnvelope env;
        DebCorrelation c;
        GenTagsEntry tags[1];
        GenTagsEntry *tag_ptrs[1];

        envelope_fill(&env, &c, tags, tag_ptrs, 0);
        assert_encodes_like_protobuf_c(&env);
        envelope_fill(&env, &c, tags, tag_ptrs, 1);
        c.parent_correlation_id = (char *)"parent";
        c.workflow_stage = (char *)"collect";
        env.payload_type = (char *)"daemoneye.process.ProcessEvent";
        assert_encodes_like_protobuf_c(&env);
}

/* NULL and "" are both "not set" in proto3; each string field separately. */
static void test_strings_null_or_empty(void)
{
        for (guint field = 0; field < 8; field++) {
                for (guint variant = 0; variant < 2; variant++) {
                        char *value = variant ? (char *)"" : NULL;
                        DebEnvelope env;
                        DebCorrelation c;
                        GenTagsEntry tags[1];
                        GenTagsEntry *tag_ptrs[1];
                        char **targets[] = {&env.topic,
                                            &env.payload_type,
                                            &env.sender,
                                            &c.correlation_id,
                                            &c.parent_correlation_id,
                                            &c.root_correlation_id,
                                            &c.workflow_stage,
                                            &tags[0].key};

                        envelope_fill(&env, &c, tags, tag_ptrs, 1);
                        *targets[field] = value;
                        tags[0].value = value;
                        assert_encodes_like_protobuf_c(&env);
                }
        }
}

static void test_message_types(void)
{
        static const int types[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 127, 128, -1, G_MININT32, G_MAXINT32};

        for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
                DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;

                env.message_type = (Daemoneye__Eventbus__MessageType)types[i];
                assert_encodes_like_protobuf_c(&env);
                env.topic = (char *)"a.b";
                env.sender = (char *)"s";
                assert_encodes_like_protobuf_c(&env);
        }
}

static void test_integers(void)
{
        for (gsize i = 0; i < G_N_ELEMENTS(varint_boundaries); i++) {
                for (gsize j = 0; j < G_N_ELEMENTS(varint_boundaries); j++) {
                        DebEnvelope env;
                        DebCorrelation c;
                        GenTagsEntry tags[1];
                        GenTagsEntry *tag_ptrs[1];

                        envelope_fill(&env, &c, tags, tag_ptrs, 0);
                        c.sequence_number = varint_boundaries[i];
                        env.timestamp_us = varint_boundaries[j];
                        assert_encodes_like_protobuf_c(&env);
                }
        }
}

static void test_lengths(void)
{
        static const gsize lengths[] = {0, 1, 127, 128, 16383, 16384, 2097151, 2097152};
        g_autofree guint8 *data = g_malloc(2097152);
        g_autofree char *text = g_malloc(2097152 + 1);

        memset(data, 0, 2097152);
        for (gsize i = 0; i < G_N_ELEMENTS(lengths); i++) {
                DebEnvelope env;
                DebCorrelation c;
                GenTagsEntry tags[1];
                GenTagsEntry *tag_ptrs[1];

                envelope_fill(&env, &c, tags, tag_ptrs, 1);
                /* Length 0 with a pointer set: still "not set" for bytes. */
                env.payload.data = data;
                env.payload.len = lengths[i];
                assert_encodes_like_protobuf_c(&env);

                memset(text, 'x', lengths[i]);
                text[lengths[i]] = '\0';
                env.topic = text;
                c.workflow_stage = text;
                tags[0].value = text;
                assert_encodes_like_protobuf_c(&env);
        }
}

static void test_tags(void)
{
        static const gsize counts[] = {0, 1, 2, 8, 9, 200};

        for (gsize i = 0; i < G_N_ELEMENTS(counts); i++) {
                g_autofree GenTagsEntry *tags = g_new(GenTagsEntry, counts[i] + 1);
                g_autofree GenTagsEntry **tag_ptrs = g_new(GenTagsEntry *, counts[i] + 1);
                g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func(g_free);
                DebEnvelope env;
                DebCorrelation c;

                envelope_fill(&env, &c, tags, tag_ptrs, counts[i]);
                for (gsize t = 0; t < counts[i]; t++) {
                        char *key = g_strdup_printf("key-%zu", t);

                        g_ptr_array_add(strings, key);
                        /* Empty and NULL keys and values too: an entry may be empty on the wire. */
                        tags[t].key = t % 5 == 1 ? NULL : t % 5 == 2 ? (char *)"" : key;
                        tags[t].value = t % 7 == 3 ? NULL : (char *)"ünïcødé 值";
                }
                assert_encodes_like_protobuf_c(&env);
        }
}

static void test_unicode(void)
{
        DebEnvelope env;
        DebCorrelation c;
        GenTagsEntry tags[1];
        GenTagsEntry *tag_ptrs[1];

        envelope_fill(&env, &c, tags, tag_ptrs, 1);
        env.topic = (char *)"événements.进程";
        env.sender = (char *)"🔥 sender";
        env.payload_type = (char *)"\xff\xfe not UTF-8";
        c.workflow_stage = (char *)"ステージ";
        tags[0].key = (char *)"ключ";
        assert_encodes_like_protobuf_c(&env);
}

/* Unknown fields only come from decoding; protobuf-c writes them, and so must we. */
static void test_unknown_fields(void)
{
        static guint8 value[] = {0x05};
        ProtobufCMessageUnknownField unknown = {
                .tag = 100, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT, .len = 1, .data = value};
        DebEnvelope env;
        DebCorrelation c;
        GenTagsEntry tags[1];
        GenTagsEntry *tag_ptrs[1];

        envelope_fill(&env, &c, tags, tag_ptrs, 1);
        env.base.n_unknown_fields = 1;
        env.base.unknown_fields = &unknown;
        assert_encodes_like_protobuf_c(&env);

        envelope_fill(&env, &c, tags, tag_ptrs, 1);
        c.base.n_unknown_fields = 1;
        c.base.unknown_fields = &unknown;
        assert_encodes_like_protobuf_c(&env);

        envelope_fill(&env, &c, tags, tag_ptrs, 1);
        tags[0].base.n_unknown_fields = 1;
        tags[0].base.unknown_fields = &unknown;
        assert_encodes_like_protobuf_c(&env);
}

static void test_random(void)
{
        EnvelopeGen g;

        envelope_gen_init(&g, 0x5eed0001, FALSE);
        for (guint i = 0; i < RANDOM_ENVELOPES; i++) {
                assert_encodes_like_protobuf_c(gen_envelope(&g));
                /* Keep memory flat over thousands of envelopes. */
                g_ptr_array_set_size(g.owned, 0);
        }
        envelope_gen_clear(&g);
}

/* The codec knows the schema field by field: a change to it must come with a change here. */
static void test_schema(void)
{
        static const struct {
                const ProtobufCMessageDescriptor *desc;
                unsigned n_fields;
                ProtobufCType types[7];
        } known[] = {
                {&daemoneye__eventbus__envelope__descriptor,
                 7,
                 {PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_ENUM, PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_TYPE_STRING,
                  PROTOBUF_C_TYPE_BYTES, PROTOBUF_C_TYPE_UINT64, PROTOBUF_C_TYPE_STRING}},
                {&daemoneye__eventbus__correlation_metadata__descriptor,
                 6,
                 {PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_UINT64,
                  PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_MESSAGE}},
                {&daemoneye__eventbus__correlation_metadata__tags_entry__descriptor,
                 2,
                 {PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_STRING}},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(known); i++) {
                g_assert_cmpuint(known[i].desc->n_fields, ==, known[i].n_fields);
                for (unsigned f = 0; f < known[i].n_fields; f++) {
                        const ProtobufCFieldDescriptor *field = &known[i].desc->fields[f];

                        g_assert_cmpuint(field->id, ==, f + 1);
                        g_assert_cmpint(field->type, ==, known[i].types[f]);
                        g_assert_cmpint(field->label, ==,
                                        known[i].desc == &daemoneye__eventbus__correlation_metadata__descriptor &&
                                                        f == 5
                                                ? PROTOBUF_C_LABEL_REPEATED
                                                : PROTOBUF_C_LABEL_NONE);
                        g_assert_cmpuint(field->flags & PROTOBUF_C_FIELD_FLAG_PACKED, ==, 0);
                }
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/envelope-encode/schema", test_schema);
        g_test_add_func("/envelope-encode/empty", test_empty);
        g_test_add_func("/envelope-encode/publish-shape", test_publish_shape);
        g_test_add_func("/envelope-encode/strings-null-or-empty", test_strings_null_or_empty);
        g_test_add_func("/envelope-encode/message-types", test_message_types);
        g_test_add_func("/envelope-encode/integers", test_integers);
        g_test_add_func("/envelope-encode/lengths", test_lengths);
        g_test_add_func("/envelope-encode/tags", test_tags);
        g_test_add_func("/envelope-encode/unicode", test_unicode);
        g_test_add_func("/envelope-encode/unknown-fields", test_unknown_fields);
        g_test_add_func("/envelope-encode/random", test_random);

        return g_test_run();
}
