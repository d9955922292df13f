/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The pattern/topic matching table shared by test-topic.c (the reference
 * matcher) and test-topic-trie.c (the trie), so both answer the same questions.
 */

#include <glib.h>

/* Levels of exact sizes, for the 64-byte level and 255-byte topic limits. */
#define L8 "abcdefgh"
#define L32 L8 L8 L8 L8
#define L63 L32 L8 L8 L8 "abcdefg"
#define L64 L32 L32
#define L65 L64 "x"

/* 4 levels of 63 bytes and 3 dots: 255 bytes, the longest valid topic. */
#define B255 L63 "." L63 "." L63 "." L63
/* One byte more, still with every level under 64 bytes. */
#define B256 L64 "." L63 "." L63 "." L63

#define LV15 "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o"
#define LV16 LV15 ".p"
#define LV17 LV16 ".q"
#define PLUS16 "+.+.+.+.+.+.+.+.+.+.+.+.+.+.+.+"

typedef struct {
        const char *pattern;
        const char *topic;
        gboolean match;
} TopicMatchCase;

static const TopicMatchCase topic_match_cases[] = {
        /* Exact patterns. */
        {"a", "a", TRUE},
        {"a", "b", FALSE},
        {"a.b", "a.b", TRUE},
        {"a.b", "a", FALSE},
        {"a", "a.b", FALSE},
        {"a.b.c", "a.b.c", TRUE},
        {"a.b.c", "a.b", FALSE},
        {"a.b.c", "a.b.d", FALSE},
        {"a.b.c", "a.x.c", FALSE},
        {"a.b.c", "x.b.c", FALSE},
        {"0", "0", TRUE},
        {"events.process.lifecycle", "events.process.lifecycle", TRUE},
        /* Levels that share a prefix are still different levels. */
        {"events.process", "events.proc", FALSE},
        {"events.proc", "events.process", FALSE},
        {"events.process", "events.processes", FALSE},
        {"events", "events2", FALSE},
        {"ab.c", "a.bc", FALSE},
        /* Case sensitivity, '-' and '_'. */
        {"Events", "events", FALSE},
        {"events", "EVENTS", FALSE},
        {"Events.X", "Events.X", TRUE},
        {"a-b_c", "a-b_c", TRUE},
        {"a-b", "a_b", FALSE},
        {"-._", "-._", TRUE},
        /* '+' at each position, exactly one level. */
        {"+", "a", TRUE},
        {"+", "-", TRUE},
        {"+", "a.b", FALSE},
        {"+.b.c", "a.b.c", TRUE},
        {"+.b.c", "a.x.c", FALSE},
        {"a.+.c", "a.b.c", TRUE},
        {"a.b.+", "a.b.c", TRUE},
        {"a.b.+", "a.x.c", FALSE},
        {"a.+.c", "a.c", FALSE},
        {"a.+.c", "a.b.b.c", FALSE},
        {"a.+", "a", FALSE},
        {"a.+", "a.b", TRUE},
        {"a.+", "a.b.c", FALSE},
        {"a.+", "ab", FALSE},
        {"+.b", "a.c", FALSE},
        {"+.+", "a", FALSE},
        {"+.+", "a.b", TRUE},
        {"+.+", "a.b.c", FALSE},
        {"+.+.+", "x.y.z", TRUE},
        {"a.+.c.+", "a.b.c.d", TRUE},
        {"a.+.c.+", "a.b.x.d", FALSE},
        {"a.+.c.+", "a.b.c", FALSE},
        {"events.+.lifecycle", "events.process.lifecycle", TRUE},
        {"events.+.lifecycle", "events.process.lifecycles", FALSE},
        {"events.+", "events.process.lifecycle", FALSE},
        {"control.collector.+", "control.collector.procmond", TRUE},
        /* '#': zero or more trailing levels. */
        {"#", "a", TRUE},
        {"#", "a.b.c", TRUE},
        {"#", LV16, TRUE},
        {"#", B255, TRUE},
        {"a.#", "a", TRUE},
        {"a.#", "a.b", TRUE},
        {"a.#", "a.b.c.d", TRUE},
        {"a.#", "ab", FALSE},
        {"a.#", "ab.c", FALSE},
        {"a.#", "b", FALSE},
        {"a.#", "b.a", FALSE},
        {"A.#", "a.b", FALSE},
        {"a.b.#", "a", FALSE},
        {"a.b.#", "a.b", TRUE},
        {"a.b.#", "a.b.c", TRUE},
        {"a.b.#", "a.bc", FALSE},
        {"a.b.#", "a.c.b", FALSE},
        {"events.#", "events", TRUE},
        {"events.#", "events.process.lifecycle", TRUE},
        {"events.proc.#", "events.process.x", FALSE},
        {"response.#", "response.1234", TRUE},
        /* '+' and '#' together. */
        {"+.#", "a", TRUE},
        {"+.#", "a.b.c", TRUE},
        {"+.+.#", "a", FALSE},
        {"+.+.#", "a.b", TRUE},
        {"+.+.#", "a.b.c.d", TRUE},
        {"a.+.#", "a", FALSE},
        {"a.+.#", "a.b", TRUE},
        {"a.+.#", "a.b.c.d", TRUE},
        {"a.+.#", "b.b", FALSE},
        {"+.b.#", "a.b", TRUE},
        {"+.b.#", "a.c.b", FALSE},
        {"+.process.#", "events.process", TRUE},
        /* Limits: 16 levels, 64-byte levels, 255-byte topics. */
        {LV16, LV16, TRUE},
        {LV15 ".#", LV16, TRUE},
        {LV15 ".#", LV15, TRUE},
        {LV15 ".+", LV16, TRUE},
        {LV15 ".+", LV15, FALSE},
        {PLUS16, LV16, TRUE},
        {PLUS16, LV15, FALSE},
        {L64, L64, TRUE},
        {L64, L63, FALSE},
        {L63, L64, FALSE},
        {B255, B255, TRUE},
        {L63 ".#", B255, TRUE},
        {"+.+.+." L63, B255, TRUE},
};
