/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes topic/pattern validation and checks the trie against the reference
 * matcher. Input: "<pattern>\n<topic>"; without a newline the whole input is
 * used as both.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deb-error.h"
#include "deb-topic-trie.h"
#include "deb-topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stored next to the fuzzed pattern so the trie has siblings and wildcard children to get wrong. */
static const char *const fixed_patterns[] = {
        "#", "+", "+.#", "+.+", "events.#", "events.+.lifecycle", "a.b", "a.+.#",
};

typedef struct {
        guint counts[G_N_ELEMENTS(fixed_patterns) + 2];
} Reported;

static void collect(gpointer value, gpointer user_data)
{
        Reported *r = user_data;
        guint v = GPOINTER_TO_UINT(value);

        if (v == 0 || v >= G_N_ELEMENTS(r->counts))
                abort();
        r->counts[v]++;
}

/* An error must exist, be of the right code, and be printable UTF-8 whatever the input. */
static void check_error(const GError *error, int code)
{
        if (!error || error->domain != DEB_ERROR || error->code != code)
                abort();
        if (!g_utf8_validate(error->message, -1, NULL) || strlen(error->message) > 512)
                abort();
        for (const char *p = error->message; *p; p++)
                if ((unsigned char)*p < 0x20)
                        abort();
}

static gboolean validate(const char *s, gboolean pattern)
{
        g_autoptr(GError) error = NULL;
        gboolean ok = pattern ? deb_pattern_validate(s, &error) : deb_topic_validate(s, &error);

        if (ok != (error == NULL))
                abort();
        if (!ok)
                check_error(error, pattern ? DEB_ERROR_INVALID_PATTERN : DEB_ERROR_INVALID_TOPIC);
        if (ok != (pattern ? deb_pattern_validate(s, NULL) : deb_topic_validate(s, NULL)))
                abort();
        return ok;
}

static void check_trie(const char *pattern, const char *topic)
{
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        const guint fuzzed = G_N_ELEMENTS(fixed_patterns) + 1;
        Reported r = {{0}};

        for (guint i = 0; i < G_N_ELEMENTS(fixed_patterns); i++)
                if (!deb_topic_trie_add(trie, fixed_patterns[i], GUINT_TO_POINTER(i + 1)))
                        abort();
        if (!deb_topic_trie_add(trie, pattern, GUINT_TO_POINTER(fuzzed)))
                abort();
        if (deb_topic_trie_add(trie, pattern, GUINT_TO_POINTER(fuzzed)))
                abort();

        deb_topic_trie_match(trie, topic, collect, &r);
        for (guint i = 0; i < G_N_ELEMENTS(fixed_patterns); i++)
                if (r.counts[i + 1] != (deb_pattern_match(fixed_patterns[i], topic) ? 1u : 0u))
                        abort();
        if (r.counts[fuzzed] != (deb_pattern_match(pattern, topic) ? 1u : 0u))
                abort();

        /* Removing the fuzzed pattern must prune without disturbing the fixed ones. */
        if (!deb_topic_trie_remove(trie, pattern, GUINT_TO_POINTER(fuzzed)))
                abort();
        memset(&r, 0, sizeof(r));
        deb_topic_trie_match(trie, topic, collect, &r);
        if (r.counts[fuzzed] != 0 || r.counts[1] != 1) /* "#" matches every topic */
                abort();
        if (deb_topic_trie_size(trie) != G_N_ELEMENTS(fixed_patterns))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *newline = size > 0 ? memchr(data, '\n', size) : NULL;
        size_t pattern_len = newline ? (size_t)(newline - data) : size;
        g_autofree char *pattern = g_strndup((const char *)data, pattern_len);
        g_autofree char *topic =
                newline ? g_strndup((const char *)newline + 1, size - pattern_len - 1) : g_strdup(pattern);
        gboolean pattern_ok = validate(pattern, TRUE);
        gboolean topic_ok = validate(topic, FALSE);

        /* A topic is exactly a valid pattern without wildcards, for both strings. */
        if (pattern_ok && validate(pattern, FALSE) == deb_pattern_is_wildcard(pattern))
                abort();
        if (validate(topic, TRUE) ? topic_ok == deb_pattern_is_wildcard(topic) : topic_ok)
                abort();

        if (topic_ok) {
                if (!deb_pattern_match(topic, topic) || !deb_pattern_match("#", topic))
                        abort();
        }
        if (pattern_ok && topic_ok)
                check_trie(pattern, topic);
        return 0;
}
