/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Random envelopes for test-envelope-encode.c and test-envelope-decode.c:
 * every field set or not, strings empty, NULL, ASCII, UTF-8 or arbitrary
 * bytes, integers at every varint width and its boundaries, payloads up to
 * 64 KiB, up to 40 tags. Seeded, so a failure replays.
 */
#include <string.h>

#include "deb-frame.h"

typedef Daemoneye__Eventbus__CorrelationMetadata__TagsEntry GenTagsEntry;

typedef struct {
        GRand *rand;
        GPtrArray *owned; /* everything generated, g_free()d by envelope_gen_clear() */
        /* Only types the broker accepts (the decoder refuses others), or any int32. */
        gboolean valid_types_only;
} EnvelopeGen;

static inline void envelope_gen_init(EnvelopeGen *g, guint32 seed, gboolean valid_types_only)
{
        g->rand = g_rand_new_with_seed(seed);
        g->owned = g_ptr_array_new_with_free_func(g_free);
        g->valid_types_only = valid_types_only;
}

static inline void envelope_gen_clear(EnvelopeGen *g)
{
        g_rand_free(g->rand);
        g_ptr_array_unref(g->owned);
}

static inline gpointer gen_keep(EnvelopeGen *g, gpointer p)
{
        g_ptr_array_add(g->owned, p);
        return p;
}

static inline guint32 gen_int(EnvelopeGen *g, guint32 below)
{
        return (guint32)g_rand_int_range(g->rand, 0, (gint32)below);
}

/* 0, a boundary of some varint width, or a random value of a random width. */
static inline guint64 gen_u64(EnvelopeGen *g)
{
        guint width = gen_int(g, 65);
        guint64 v = ((guint64)g_rand_int(g->rand) << 32) | g_rand_int(g->rand);

        switch (gen_int(g, 4)) {
        case 0:
                return 0;
        case 1:
                /* 2^(7k) - 1 and 2^(7k): the last value of one varint length and the first of the next. */
                return width == 64 ? G_MAXUINT64 : ((guint64)1 << width) - (gen_int(g, 2) ? 1 : 0);
        default:
                return width == 64 ? v : v & (((guint64)1 << width) - 1);
        }
}

/* Length for a string or payload: mostly short, sometimes past one- and two-byte prefixes. */
static inline gsize gen_len(EnvelopeGen *g)
{
        switch (gen_int(g, 10)) {
        case 0:
                return 0;
        case 1:
                return 120 + gen_int(g, 20); /* around 127/128 */
        case 2:
                return 16380 + gen_int(g, 10); /* around 16383/16384 */
        case 3:
                return gen_int(g, 3) == 0 ? 65536 + gen_int(g, 100) : 1 + gen_int(g, 4000);
        default:
                return 1 + gen_int(g, 40);
        }
}

/* A string protobuf-c can carry (no NUL inside), or NULL when @allow_null. */
static inline char *gen_string(EnvelopeGen *g, gboolean allow_null)
{
        static const char *const samples[] = {
                "events.process.lifecycle", "événement", "事件.进程", "🔥.💾", "a", "with space",
                "8a4e1c2f-3b5d-4e6f-9a0b-1c2d3e4f5a6b",
        };
        gsize len;
        char *s;

        switch (gen_int(g, 8)) {
        case 0:
                if (allow_null)
                        return NULL;
                return gen_keep(g, g_strdup(""));
        case 1:
                return gen_keep(g, g_strdup(""));
        case 2:
        case 3:
                return gen_keep(g, g_strdup(samples[gen_int(g, G_N_ELEMENTS(samples))]));
        default:
                break;
        }
        len = gen_len(g);
        s = gen_keep(g, g_malloc(len + 1));
        for (gsize i = 0; i < len; i++)
                s[i] = gen_int(g, 4) == 0 ? (char)(1 + gen_int(g, 255)) : (char)('a' + gen_int(g, 26));
        s[len] = '\0';
        return s;
}

static inline GenTagsEntry *gen_tags_entry(EnvelopeGen *g)
{
        GenTagsEntry *entry = gen_keep(g, g_new(GenTagsEntry, 1));

        daemoneye__eventbus__correlation_metadata__tags_entry__init(entry);
        entry->key = gen_string(g, TRUE);
        entry->value = gen_string(g, TRUE);
        return entry;
}

static inline DebCorrelation *gen_correlation(EnvelopeGen *g)
{
        DebCorrelation *c = gen_keep(g, g_new(DebCorrelation, 1));

        daemoneye__eventbus__correlation_metadata__init(c);
        c->correlation_id = gen_string(g, TRUE);
        c->parent_correlation_id = gen_string(g, TRUE);
        c->root_correlation_id = gen_string(g, TRUE);
        c->sequence_number = gen_u64(g);
        c->workflow_stage = gen_string(g, TRUE);
        switch (gen_int(g, 4)) {
        case 0:
                c->n_tags = 1 + gen_int(g, 3);
                break;
        case 1:
                c->n_tags = gen_int(g, 41);
                break;
        default:
                c->n_tags = 0;
                break;
        }
        if (c->n_tags > 0) {
                c->tags = gen_keep(g, g_new(GenTagsEntry *, c->n_tags));
                for (gsize i = 0; i < c->n_tags; i++)
                        c->tags[i] = gen_tags_entry(g);
        }
        return c;
}

static inline DebEnvelope *gen_envelope(EnvelopeGen *g)
{
        DebEnvelope *env = gen_keep(g, g_new(DebEnvelope, 1));

        daemoneye__eventbus__envelope__init(env);
        env->topic = gen_string(g, TRUE);
        if (g->valid_types_only)
                env->message_type = (Daemoneye__Eventbus__MessageType)gen_int(g, 12);
        else
                env->message_type = (Daemoneye__Eventbus__MessageType)(gint32)g_rand_int(g->rand);
        if (gen_int(g, 10) < 7)
                env->correlation = gen_correlation(g);
        env->payload_type = gen_string(g, TRUE);
        env->payload.len = gen_len(g);
        if (env->payload.len > 0) {
                env->payload.data = gen_keep(g, g_malloc(env->payload.len));
                for (gsize i = 0; i < env->payload.len; i++)
                        env->payload.data[i] = (guint8)g_rand_int(g->rand);
        }
        env->timestamp_us = gen_u64(g);
        env->sender = gen_string(g, TRUE);
        return env;
}
