/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of eventbus/deb-frame.c (framing) and eventbus/deb-unpacker.c (envelope decoding). */
#include <string.h>

#include "deb-error.h"
#include "deb-frame.h"

#define MT(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name

static const guint8 binary_payload[] = {0x00, 0x01, 0x00, 0xff, 'p', 0x00, 0x00, 0x7f, 0x80, 0x00};

/* Fills @env and @corr with every field set; @tags needs room for 3 entries. */
static void envelope_init_full(DebEnvelope *env, DebCorrelation *corr,
                               Daemoneye__Eventbus__CorrelationMetadata__TagsEntry *tags,
                               Daemoneye__Eventbus__CorrelationMetadata__TagsEntry **tag_ptrs)
{
        static const char *const kv[][2] = {{"host", "node-1"}, {"unit", "procmond"}, {"empty", ""}};

        daemoneye__eventbus__envelope__init(env);
        daemoneye__eventbus__correlation_metadata__init(corr);
        for (gsize i = 0; i < G_N_ELEMENTS(kv); i++) {
                daemoneye__eventbus__correlation_metadata__tags_entry__init(&tags[i]);
                tags[i].key = (char *)kv[i][0];
                tags[i].value = (char *)kv[i][1];
                tag_ptrs[i] = &tags[i];
        }
        corr->correlation_id = (char *)"8a4e1c2f-3b5d-4e6f-9a0b-1c2d3e4f5a6b";
        corr->parent_correlation_id = (char *)"parent-1";
        corr->root_correlation_id = (char *)"root-1";
        corr->sequence_number = G_GUINT64_CONSTANT(0x123456789abcdef0);
        corr->workflow_stage = (char *)"collect";
        corr->n_tags = G_N_ELEMENTS(kv);
        corr->tags = tag_ptrs;

        env->topic = (char *)"events.process.lifecycle";
        env->message_type = MT(RPC_REQUEST);
        env->correlation = corr;
        env->payload_type = (char *)"daemoneye.process.ProcessEvent";
        env->payload.data = (guint8 *)binary_payload;
        env->payload.len = sizeof(binary_payload);
        env->timestamp_us = G_GUINT64_CONSTANT(1700000000123456);
        env->sender = (char *)"procmond";
}

static void assert_envelope_full(const DebEnvelope *env)
{
        g_assert_nonnull(env);
        g_assert_cmpstr(env->topic, ==, "events.process.lifecycle");
        g_assert_cmpint(env->message_type, ==, MT(RPC_REQUEST));
        g_assert_cmpstr(env->payload_type, ==, "daemoneye.process.ProcessEvent");
        g_assert_cmpmem(env->payload.data, env->payload.len, binary_payload, sizeof(binary_payload));
        g_assert_cmpuint(env->timestamp_us, ==, G_GUINT64_CONSTANT(1700000000123456));
        g_assert_cmpstr(env->sender, ==, "procmond");
        g_assert_nonnull(env->correlation);
        g_assert_cmpstr(env->correlation->correlation_id, ==, "8a4e1c2f-3b5d-4e6f-9a0b-1c2d3e4f5a6b");
        g_assert_cmpstr(env->correlation->parent_correlation_id, ==, "parent-1");
        g_assert_cmpstr(env->correlation->root_correlation_id, ==, "root-1");
        g_assert_cmpuint(env->correlation->sequence_number, ==, G_GUINT64_CONSTANT(0x123456789abcdef0));
        g_assert_cmpstr(env->correlation->workflow_stage, ==, "collect");
        g_assert_cmpuint(env->correlation->n_tags, ==, 3);
        g_assert_cmpstr(env->correlation->tags[0]->key, ==, "host");
        g_assert_cmpstr(env->correlation->tags[0]->value, ==, "node-1");
        g_assert_cmpstr(env->correlation->tags[1]->key, ==, "unit");
        g_assert_cmpstr(env->correlation->tags[1]->value, ==, "procmond");
        g_assert_cmpstr(env->correlation->tags[2]->key, ==, "empty");
        g_assert_cmpstr(env->correlation->tags[2]->value, ==, "");
}

/* Appends the full envelope as one frame. */
static void encode_full(GByteArray *out)
{
        Daemoneye__Eventbus__CorrelationMetadata__TagsEntry tags[3], *tag_ptrs[3];
        DebCorrelation corr;
        DebEnvelope env;
        g_autoptr(GError) error = NULL;

        envelope_init_full(&env, &corr, tags, tag_ptrs);
        g_assert_true(deb_frame_encode_envelope(out, &env, 0, &error));
        g_assert_no_error(error);
}

/* Appends an event frame with @seq as its sequence number and a payload of @payload_len bytes. */
static void encode_event(GByteArray *out, guint64 seq, gsize payload_len)
{
        DebCorrelation corr = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        g_autofree guint8 *payload = g_malloc0(MAX(payload_len, 1u));
        g_autoptr(GError) error = NULL;

        for (gsize i = 0; i < payload_len; i++)
                payload[i] = (guint8)(seq + i);
        corr.correlation_id = (char *)"0b1e3c5a-6d7f-4e8a-9b0c-d1e2f3a4b5c6";
        corr.sequence_number = seq;
        env.topic = (char *)"events.process.metadata";
        env.message_type = MT(EVENT);
        env.correlation = &corr;
        env.payload.data = payload;
        env.payload.len = payload_len;
        env.timestamp_us = 1700000000000000u + seq;
        env.sender = (char *)"procmond";
        g_assert_true(deb_frame_encode_envelope(out, &env, G_MAXSIZE, &error));
        g_assert_no_error(error);
}

/* Checks @frame is the event encode_event() made for @seq. */
static void assert_event_frame(DebUnpacker *unpacker, const DebFrame *frame, guint64 seq)
{
        g_autoptr(GError) error = NULL;
        const DebEnvelope *env;

        g_assert_true(frame->body == frame->data + DEB_FRAME_HEADER_SIZE);
        g_assert_cmpuint(frame->size, ==, frame->body_len + DEB_FRAME_HEADER_SIZE);
        g_assert_cmpuint(deb_frame_read_header(frame->data), ==, frame->body_len);
        env = deb_unpacker_envelope(unpacker, frame->body, frame->body_len, &error);
        g_assert_no_error(error);
        g_assert_cmpint(env->message_type, ==, MT(EVENT));
        g_assert_cmpuint(env->correlation->sequence_number, ==, seq);
        g_assert_cmpuint(env->timestamp_us, ==, 1700000000000000u + seq);
        for (gsize i = 0; i < env->payload.len; i++)
                g_assert_cmpuint(env->payload.data[i], ==, (guint8)(seq + i));
}

static void test_header(void)
{
        static const guint32 values[] = {0, 1, 0xff, 0x100, 0x01020304, 0x80000000u, G_MAXUINT32};
        guint8 raw[DEB_FRAME_HEADER_SIZE + 1];

        /* Odd offsets: the codec must not assume alignment. */
        for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
                deb_frame_write_header(raw + 1, values[i]);
                g_assert_cmpuint(deb_frame_read_header(raw + 1), ==, values[i]);
        }
        deb_frame_write_header(raw + 1, 0x01020304);
        g_assert_cmpmem(raw + 1, 4, "\x04\x03\x02\x01", 4);
}

static void test_message_type_names(void)
{
        /* Indexed by MessageType value; 0 (unspecified) has no name of its own. */
        static const char *const names[] = {"unknown",     "event",        "control",   "heartbeat",
                                            "rpc-request", "rpc-response", "subscribe", "unsubscribe",
                                            "hello",       "welcome",      "error",     "ack"};

        G_STATIC_ASSERT(G_N_ELEMENTS(names) == MT(ACK) + 1);
        for (int type = 0; type < (int)G_N_ELEMENTS(names); type++)
                g_assert_cmpstr(deb_message_type_to_string(type), ==, names[type]);
        g_assert_cmpstr(deb_message_type_to_string(MT(ACK) + 1), ==, "unknown");
        g_assert_cmpstr(deb_message_type_to_string(-1), ==, "unknown");
}

static void test_round_trip(void)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(0);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        g_autoptr(GError) error = NULL;
        DebFrame frame;

        g_byte_array_append(out, (const guint8 *)"xy", 2);
        encode_full(out);
        /* Appending leaves what was in the array alone. */
        g_assert_cmpmem(out->data, 2, "xy", 2);
        g_assert_cmpuint(deb_frame_read_header(out->data + 2), ==, out->len - 2 - DEB_FRAME_HEADER_SIZE);

        deb_frame_decoder_feed(decoder, out->data + 2, out->len - 2);
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 1);
        g_assert_no_error(error);
        g_assert_cmpmem(frame.data, frame.size, out->data + 2, out->len - 2);
        assert_envelope_full(deb_unpacker_envelope(unpacker, frame.body, frame.body_len, &error));
        g_assert_no_error(error);
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 0);
        g_assert_cmpuint(deb_frame_decoder_get_buffered(decoder), ==, 0);
}

static void test_split_one_byte(void)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(0);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        gsize ends[3], n_frames = 0;

        for (guint64 seq = 0; seq < G_N_ELEMENTS(ends); seq++) {
                encode_event(out, seq, 64);
                ends[seq] = out->len;
        }
        for (gsize i = 0; i < out->len; i++) {
                g_autoptr(GError) error = NULL;
                DebFrame frame;
                int r;

                deb_frame_decoder_feed(decoder, out->data + i, 1);
                r = deb_frame_decoder_next(decoder, &frame, &error);
                g_assert_no_error(error);
                /* A frame appears exactly when its last byte arrives, not before. */
                if (n_frames < G_N_ELEMENTS(ends) && i + 1 == ends[n_frames]) {
                        g_assert_cmpint(r, ==, 1);
                        assert_event_frame(unpacker, &frame, n_frames);
                        n_frames++;
                } else {
                        g_assert_cmpint(r, ==, 0);
                }
        }
        g_assert_cmpuint(n_frames, ==, G_N_ELEMENTS(ends));
        g_assert_cmpuint(deb_frame_decoder_get_buffered(decoder), ==, 0);
}

static gsize drain_events(DebFrameDecoder *decoder, DebUnpacker *unpacker, guint64 first_seq)
{
        g_autoptr(GError) error = NULL;
        DebFrame frame;
        gsize n = 0;
        int r;

        while ((r = deb_frame_decoder_next(decoder, &frame, &error)) == 1)
                assert_event_frame(unpacker, &frame, first_seq + n++);
        g_assert_no_error(error);
        g_assert_cmpint(r, ==, 0);
        return n;
}

static void test_split_every_point(void)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();

        encode_event(out, 7, 64);
        encode_event(out, 8, 0);
        for (gsize split = 0; split <= out->len; split++) {
                g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(0);
                gsize n;

                deb_frame_decoder_feed(decoder, out->data, split);
                n = drain_events(decoder, unpacker, 7);
                deb_frame_decoder_feed(decoder, out->data + split, out->len - split);
                n += drain_events(decoder, unpacker, 7 + n);
                g_assert_cmpuint(n, ==, 2);
                g_assert_cmpuint(deb_frame_decoder_get_buffered(decoder), ==, 0);
        }
}

static void test_coalesced(void)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(0);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();

        for (guint64 seq = 0; seq < 1000; seq++)
                encode_event(out, seq, seq % 97);
        deb_frame_decoder_feed(decoder, out->data, out->len);
        g_assert_cmpuint(drain_events(decoder, unpacker, 0), ==, 1000);
        g_assert_cmpuint(deb_frame_decoder_get_buffered(decoder), ==, 0);
}

static void test_oversize(void)
{
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(1024);
        g_autoptr(DebFrameDecoder) decoder_default = deb_frame_decoder_new(0);
        g_autoptr(GError) error = NULL;
        guint8 header[DEB_FRAME_HEADER_SIZE];
        g_autofree guint8 *body = g_malloc0(1024);
        DebFrame frame;
        gsize avail;

        /* Exactly the limit is accepted, and only once the whole body is in. */
        deb_frame_write_header(header, 1024);
        deb_frame_decoder_feed(decoder, header, sizeof(header));
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 0);
        deb_frame_decoder_feed(decoder, body, 1023);
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 0);
        deb_frame_decoder_feed(decoder, body, 1);
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 1);
        g_assert_no_error(error);
        g_assert_cmpuint(frame.body_len, ==, 1024);

        /* One more is refused on the header alone: three bytes are not enough to tell. */
        deb_frame_write_header(header, 1025);
        deb_frame_decoder_feed(decoder, header, 3);
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 0);
        g_assert_no_error(error);
        deb_frame_decoder_feed(decoder, header + 3, 1);
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, -1);
        g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
        g_assert_cmpstr(error->message, ==, "frame of 1025 bytes exceeds the limit of 1024");
        g_clear_error(&error);
        /* The stream cannot resynchronise: the verdict stays. */
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, -1);
        g_clear_error(&error);

        deb_frame_write_header(header, 5000000);
        deb_frame_decoder_feed(decoder_default, header, sizeof(header));
        g_assert_cmpint(deb_frame_decoder_next(decoder_default, &frame, &error), ==, -1);
        g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
        g_assert_cmpstr(error->message, ==, "frame of 5000000 bytes exceeds the limit of 1048576");
        /* A refused length must not make get_space() reserve room for its body. */
        deb_frame_decoder_get_space(decoder_default, 4096, &avail);
        g_assert_cmpuint(avail, <, 64 * 1024);
}

static void test_zero_length(void)
{
        static const guint8 zero[DEB_FRAME_HEADER_SIZE] = {0};
        DebEnvelope empty = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(0);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        g_autoptr(GError) error = NULL;
        const DebEnvelope *env;
        DebFrame frame;

        g_assert_true(deb_frame_encode_envelope(out, &empty, 0, &error));
        g_assert_cmpmem(out->data, out->len, zero, sizeof(zero));

        deb_frame_decoder_feed(decoder, zero, sizeof(zero));
        deb_frame_decoder_feed(decoder, zero, sizeof(zero));
        for (int i = 0; i < 2; i++) {
                g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 1);
                g_assert_cmpuint(frame.size, ==, DEB_FRAME_HEADER_SIZE);
                g_assert_cmpuint(frame.body_len, ==, 0);
                env = deb_unpacker_envelope(unpacker, frame.body, frame.body_len, &error);
                g_assert_no_error(error);
                g_assert_cmpstr(env->topic, ==, "");
                g_assert_null(env->correlation);
                g_assert_cmpuint(env->payload.len, ==, 0);
        }
        g_assert_cmpint(deb_frame_decoder_next(decoder, &frame, &error), ==, 0);
        g_assert_no_error(error);
}

static void test_encode_oversize(void)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(GError) error = NULL;
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        g_autofree guint8 *payload = g_malloc0(DEB_DEFAULT_MAX_FRAME_BYTES);
        gsize packed;

        env.topic = (char *)"events.process.batch";
        env.payload.data = payload;
        env.payload.len = 2000;
        packed = protobuf_c_message_get_packed_size(&env.base);

        g_assert_false(deb_frame_encode_envelope(out, &env, packed - 1, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
        g_assert_nonnull(strstr(error->message, "events.process.batch"));
        g_assert_cmpuint(out->len, ==, 0);
        g_clear_error(&error);

        g_assert_true(deb_frame_encode_envelope(out, &env, packed, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(out->len, ==, packed + DEB_FRAME_HEADER_SIZE);

        /* 0 means the default limit, which a whole MiB of payload plus the topic exceeds. */
        env.payload.len = DEB_DEFAULT_MAX_FRAME_BYTES;
        g_assert_false(deb_frame_encode_envelope(out, &env, 0, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_FRAME_TOO_LARGE);
        g_assert_cmpuint(out->len, ==, packed + DEB_FRAME_HEADER_SIZE);
}

static void test_get_space(void)
{
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(4 * 1024 * 1024);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        g_autoptr(GByteArray) big = g_byte_array_new();
        guint8 *space;
        gsize avail;

        /* Large requests are honoured, and growth keeps the bytes already buffered. */
        space = deb_frame_decoder_get_space(decoder, 1024 * 1024, &avail);
        g_assert_cmpuint(avail, >=, 1024 * 1024);
        encode_event(big, 1, 3 * 1024 * 1024);
        memcpy(space, big->data, 1000);
        deb_frame_decoder_commit(decoder, 1000);
        space = deb_frame_decoder_get_space(decoder, 3 * 1024 * 1024, &avail);
        g_assert_cmpuint(avail, >=, 3 * 1024 * 1024);
        memcpy(space, big->data + 1000, big->len - 1000);
        deb_frame_decoder_commit(decoder, big->len - 1000);
        g_assert_cmpuint(drain_events(decoder, unpacker, 1), ==, 1);
        g_assert_cmpuint(deb_frame_decoder_get_buffered(decoder), ==, 0);

        /* Back to 64 KiB reads, the buffer of the big frame is given back. */
        deb_frame_decoder_get_space(decoder, 64 * 1024, &avail);
        g_assert_cmpuint(avail, >=, 64 * 1024);
        g_assert_cmpuint(avail, <=, 256 * 1024);
}

static void test_buffer_reuse(void)
{
        g_autoptr(DebFrameDecoder) decoder = deb_frame_decoder_new(0);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        g_autoptr(GByteArray) stream = g_byte_array_new();
        gsize pos = 0, n = 0, max_avail = 0;

        for (guint64 seq = 0; seq < 20000; seq++)
                encode_event(stream, seq, seq % 300);

        /* Socket-like reads of odd sizes: frames straddle every read boundary. */
        while (pos < stream->len) {
                gsize avail, len;
                guint8 *space = deb_frame_decoder_get_space(decoder, 64 * 1024, &avail);

                max_avail = MAX(max_avail, avail);
                len = MIN(MIN(avail, 7919 + pos % 4099), stream->len - pos);
                memcpy(space, stream->data + pos, len);
                deb_frame_decoder_commit(decoder, len);
                pos += len;
                n += drain_events(decoder, unpacker, n);
        }
        g_assert_cmpuint(n, ==, 20000);
        g_assert_cmpuint(deb_frame_decoder_get_buffered(decoder), ==, 0);
        /* Frames are at most ~400 bytes: one 64 KiB read plus a frame and a page of slack. */
        g_assert_cmpuint(max_avail, <=, 64 * 1024 + 8192);
}

static void test_garbage_random(void)
{
        g_autoptr(GRand) rand = g_rand_new_with_seed(20240611);
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        guint8 buf[512];

        for (int i = 0; i < 20000; i++) {
                g_autoptr(GError) error = NULL;
                gsize len = (gsize)g_rand_int_range(rand, 0, sizeof(buf) + 1);

                for (gsize j = 0; j < len; j++)
                        buf[j] = (guint8)g_rand_int_range(rand, 0, 256);
                if (!deb_unpacker_envelope(unpacker, buf, len, &error))
                        g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
        }
}

static void test_garbage_truncated(void)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        const guint8 *body;
        gsize body_len, refused = 0;

        encode_full(out);
        body = out->data + DEB_FRAME_HEADER_SIZE;
        body_len = out->len - DEB_FRAME_HEADER_SIZE;
        for (gsize len = 0; len < body_len; len++) {
                g_autoptr(GError) error = NULL;
                /* A copy of exactly @len bytes, so ASan sees any read past the end. */
                g_autofree guint8 *copy = g_memdup2(body, MAX(len, 1u));

                if (!deb_unpacker_envelope(unpacker, copy, len, &error)) {
                        g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
                        refused++;
                }
        }
        /* Cutting inside the last field (sender) can never decode. */
        g_assert_cmpuint(refused, >=, strlen("procmond"));
}

static void test_garbage_flipped(void)
{
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        gsize body_len, decoded = 0, refused = 0;
        guint8 *body;

        encode_full(out);
        body = out->data + DEB_FRAME_HEADER_SIZE;
        body_len = out->len - DEB_FRAME_HEADER_SIZE;
        for (gsize pos = 0; pos < body_len; pos++) {
                for (guint mask = 1; mask <= 0x80; mask <<= 1) {
                        g_autoptr(GError) error = NULL;

                        body[pos] ^= (guint8)mask;
                        if (deb_unpacker_envelope(unpacker, body, body_len, &error)) {
                                decoded++;
                        } else {
                                g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
                                refused++;
                        }
                        body[pos] ^= (guint8)mask;
                }
        }
        /* Flips inside strings still decode; flips of tags and lengths do not. */
        g_assert_cmpuint(decoded, >, 0);
        g_assert_cmpuint(refused, >, 0);
        assert_envelope_full(deb_unpacker_envelope(unpacker, body, body_len, NULL));
}

static void test_malformed_reasons(void)
{
        /* Hand-made bodies, each with one defect, and the reason the error must give. */
        static const struct {
                guint8 body[12];
                gsize len;
                const char *reason;
        } table[] = {
                {{0x0a, 0x05, 'a', 'b'},
                 4,
                 "topic: 5-byte value at byte 2 runs past the end (2 bytes left)"},
                {{0x1a, 0x04, 0x32, 0x05, 0x0a, 0x01},
                 6,
                 "correlation: tags: 5-byte value at byte 4 runs past the end (2 bytes left)"},
                {{0x10}, 1, "message_type: truncated varint at byte 1"},
                {{0x0b}, 1, "topic: unsupported wire type 3 at byte 0"},
                {{0x15, 1, 2, 3, 4}, 5, "message_type: wire type 5 where 0 was expected"},
                {{0x80}, 1, "truncated field key at byte 0"},
                {{0x00}, 1, "invalid field number at byte 0"},
                {{0x10, 0x0c}, 2, "unknown message_type 12"},
                {{0x10, 0x63}, 2, "unknown message_type 99"},
                {{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
                 11,
                 "unknown message_type -1"},
        };
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();

        for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *copy = g_memdup2(table[i].body, table[i].len);

                g_assert_null(deb_unpacker_envelope(unpacker, (const guint8 *)copy, table[i].len, &error));
                g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
                g_assert_true(g_str_has_prefix(error->message, "envelope of "));
                g_assert_true(g_str_has_suffix(error->message, table[i].reason));
        }
}

static void test_arena_reuse(void)
{
        g_autoptr(GByteArray) small = g_byte_array_new();
        g_autoptr(GByteArray) big = g_byte_array_new();
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        const DebEnvelope *first = NULL;

        encode_event(small, 42, 64);
        encode_event(big, 43, 512 * 1024);
        for (int i = 0; i < 100000; i++) {
                GByteArray *in = (i % 1000 == 999) ? big : small;
                g_autoptr(GError) error = NULL;
                const DebEnvelope *env = deb_unpacker_envelope(unpacker, in->data + DEB_FRAME_HEADER_SIZE,
                                                               in->len - DEB_FRAME_HEADER_SIZE, &error);

                g_assert_no_error(error);
                g_assert_cmpuint(env->correlation->sequence_number, ==, in == big ? 43 : 42);
                g_assert_cmpuint(env->payload.len, ==, in == big ? 512 * 1024 : 64);
                /* Every reset starts over at the same address: nothing accumulates. */
                if (!first)
                        first = env;
                g_assert_true(env == first);
        }
}

static void test_message_keeps_envelope(void)
{
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        static const char *const caps[] = {"rpc", "batch"};
        /* client_id announced as 5 bytes, 2 present. */
        static const guint8 cut_hello[] = {0x0a, 0x05, 'a', 'b'};
        Daemoneye__Eventbus__Hello hello = DAEMONEYE__EVENTBUS__HELLO__INIT;
        Daemoneye__Eventbus__Subscribe sub = DAEMONEYE__EVENTBUS__SUBSCRIBE__INIT;
        g_autofree char **patterns = g_new0(char *, 3000);
        g_autofree guint8 *hello_buf = NULL, *sub_buf = NULL;
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autoptr(GError) error = NULL;
        const DebEnvelope *decoded;
        const Daemoneye__Eventbus__Hello *hello_out;
        const Daemoneye__Eventbus__Subscribe *sub_out;

        hello.client_id = (char *)"procmond";
        hello.protocol_version = DEB_PROTOCOL_VERSION;
        hello.n_capabilities = G_N_ELEMENTS(caps);
        hello.capabilities = (char **)caps;
        hello_buf = g_malloc(protobuf_c_message_get_packed_size(&hello.base));
        env.topic = (char *)"control.collector.lifecycle";
        env.message_type = MT(HELLO);
        env.payload_type = (char *)daemoneye__eventbus__hello__descriptor.name;
        env.payload.data = hello_buf;
        env.payload.len = protobuf_c_message_pack(&hello.base, hello_buf);
        g_assert_true(deb_frame_encode_envelope(out, &env, 0, NULL));

        decoded = deb_unpacker_envelope(unpacker, out->data + 4, out->len - 4, &error);
        g_assert_no_error(error);
        hello_out = (const Daemoneye__Eventbus__Hello *)deb_unpacker_message(
                unpacker, &daemoneye__eventbus__hello__descriptor, decoded->payload.data,
                decoded->payload.len, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(hello_out->client_id, ==, "procmond");
        g_assert_cmpuint(hello_out->protocol_version, ==, DEB_PROTOCOL_VERSION);
        g_assert_cmpuint(hello_out->n_capabilities, ==, 2);
        g_assert_cmpstr(hello_out->capabilities[1], ==, "batch");

        /* A Subscribe big enough to take new arena chunks: nothing earlier may move or go. */
        for (gsize i = 0; i < 3000; i++)
                patterns[i] = g_strdup_printf("events.process.p%" G_GSIZE_FORMAT ".#", i);
        sub.n_patterns = 3000;
        sub.patterns = patterns;
        sub_buf = g_malloc(protobuf_c_message_get_packed_size(&sub.base));
        sub_out = (const Daemoneye__Eventbus__Subscribe *)deb_unpacker_message(
                unpacker, &daemoneye__eventbus__subscribe__descriptor, sub_buf,
                protobuf_c_message_pack(&sub.base, sub_buf), &error);
        g_assert_no_error(error);
        g_assert_cmpuint(sub_out->n_patterns, ==, 3000);
        for (gsize i = 0; i < 3000; i++) {
                g_assert_cmpstr(sub_out->patterns[i], ==, patterns[i]);
                g_free(patterns[i]);
        }
        g_assert_cmpstr(decoded->topic, ==, "control.collector.lifecycle");
        g_assert_cmpstr(decoded->payload_type, ==, "daemoneye.eventbus.Hello");
        g_assert_cmpstr(hello_out->client_id, ==, "procmond");
        g_assert_cmpstr(hello_out->capabilities[0], ==, "rpc");

        /* A payload that does not decode names the type it was meant to be. */
        g_assert_null(deb_unpacker_message(unpacker, &daemoneye__eventbus__hello__descriptor, cut_hello,
                                           sizeof(cut_hello), &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
        g_assert_cmpstr(error->message, ==,
                        "payload of 4 bytes does not decode as daemoneye.eventbus.Hello: "
                        "client_id: 5-byte value at byte 2 runs past the end (2 bytes left)");
        g_clear_error(&error);

        /* An empty payload is a message with every field at its default. */
        hello_out = (const Daemoneye__Eventbus__Hello *)deb_unpacker_message(
                unpacker, &daemoneye__eventbus__hello__descriptor, NULL, 0, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(hello_out->client_id, ==, "");
        g_assert_cmpuint(hello_out->n_capabilities, ==, 0);
}

/* A NUL inside a string would make C readers see a shorter topic than others do. */
static void test_nul_in_string(void)
{
        g_autoptr(GByteArray) buf = g_byte_array_new();
        g_autoptr(DebUnpacker) unpacker = deb_unpacker_new();
        g_autoptr(GError) error = NULL;
        const char *needle = "process.metadata";
        guint8 *body;
        gsize body_len;
        guint8 *hit = NULL;

        encode_event(buf, 1, 8);
        body = buf->data + DEB_FRAME_HEADER_SIZE;
        body_len = buf->len - DEB_FRAME_HEADER_SIZE;
        g_assert_nonnull(deb_unpacker_envelope(unpacker, body, body_len, &error));
        g_assert_no_error(error);

        hit = memmem(body, body_len, needle, strlen(needle));
        g_assert_nonnull(hit);
        hit[7] = '\0'; /* "events.process\0metadata" */
        g_assert_null(deb_unpacker_envelope(unpacker, body, body_len, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_MALFORMED);
        g_assert_nonnull(strstr(error->message, "NUL"));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/frame/header", test_header);
        g_test_add_func("/frame/message-type-names", test_message_type_names);
        g_test_add_func("/frame/round-trip", test_round_trip);
        g_test_add_func("/frame/split/one-byte", test_split_one_byte);
        g_test_add_func("/frame/split/every-point", test_split_every_point);
        g_test_add_func("/frame/coalesced", test_coalesced);
        g_test_add_func("/frame/oversize", test_oversize);
        g_test_add_func("/frame/zero-length", test_zero_length);
        g_test_add_func("/frame/encode-oversize", test_encode_oversize);
        g_test_add_func("/frame/get-space", test_get_space);
        g_test_add_func("/frame/buffer-reuse", test_buffer_reuse);
        g_test_add_func("/unpacker/garbage/random", test_garbage_random);
        g_test_add_func("/unpacker/garbage/truncated", test_garbage_truncated);
        g_test_add_func("/unpacker/garbage/flipped", test_garbage_flipped);
        g_test_add_func("/unpacker/malformed-reasons", test_malformed_reasons);
        g_test_add_func("/unpacker/arena-reuse", test_arena_reuse);
        g_test_add_func("/unpacker/nul-in-string", test_nul_in_string);
        g_test_add_func("/unpacker/message-keeps-envelope", test_message_keeps_envelope);

        return g_test_run();
}
