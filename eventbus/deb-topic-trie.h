/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A trie of subscription patterns, one node per level, so matching a topic
 * costs O(levels) hash lookups whatever the number of subscriptions.
 * Each (pattern, value) pair is stored once; values are opaque to the trie
 * (the broker stores subscriber pointers, the client stores callbacks).
 */
typedef struct _DebTopicTrie DebTopicTrie;

typedef void (*DebTopicTrieFunc)(gpointer value, gpointer user_data);

/** deb_topic_trie_new: Returns: (transfer full) an empty trie. */
DebTopicTrie *deb_topic_trie_new(void);

/** deb_topic_trie_free: frees the trie; the values are not touched. */
void deb_topic_trie_free(DebTopicTrie *trie);

/**
 * deb_topic_trie_add:
 * @pattern: a valid pattern (checked by the caller with deb_pattern_validate())
 *
 * Returns: %TRUE if added, %FALSE if (@pattern, @value) was already present.
 */
gboolean deb_topic_trie_add(DebTopicTrie *trie, const char *pattern, gpointer value);

/**
 * deb_topic_trie_remove:
 *
 * Removes (@pattern, @value) and prunes nodes left empty.
 * Returns: %TRUE if it was present.
 */
gboolean deb_topic_trie_remove(DebTopicTrie *trie, const char *pattern, gpointer value);

/**
 * deb_topic_trie_match:
 * @topic: a valid concrete topic
 * @func: called once per stored (pattern, value) whose pattern matches @topic;
 *   a value stored under several matching patterns is reported once for each
 *
 * @func must not modify the trie.
 */
void deb_topic_trie_match(DebTopicTrie *trie, const char *topic, DebTopicTrieFunc func, gpointer user_data);

/** deb_topic_trie_size: Returns: the number of stored (pattern, value) pairs. */
guint deb_topic_trie_size(DebTopicTrie *trie);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebTopicTrie, deb_topic_trie_free)

G_END_DECLS
