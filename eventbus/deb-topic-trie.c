/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "deb-topic-trie.h"
#include "deb-topic.h"

/*
 * A node with more values than this keeps a value -> position index, so that
 * the duplicate check and removal stay O(1) when thousands of subscribers share
 * one pattern ("events.#"). Below it a linear scan of the array is cheaper.
 */
#define VALUE_INDEX_MIN 16

/*
 * Literal children live in a small unsorted array until there are more than
 * this many: comparing a few short levels beats hashing the level (measured
 * 33 vs 40 ns to match a 4-level topic), and most nodes have few children.
 */
#define SMALL_CHILDREN_MAX 8

/* Level lengths are stored in a byte. */
G_STATIC_ASSERT(DEB_TOPIC_MAX_LEN <= G_MAXUINT8);

typedef struct TrieNode TrieNode;

struct TrieNode {
        TrieNode **small;        /* literal children while there are at most SMALL_CHILDREN_MAX */
        GHashTable *children;    /* level string -> TrieNode *, replaces small when it would overflow */
        TrieNode *plus;          /* the '+' child */
        TrieNode *hash;          /* the '#' child; never has children since '#' is always last */
        gpointer *values;        /* values of the patterns that end here, unordered */
        GHashTable *value_index; /* value -> position + 1, only once n_values exceeded VALUE_INDEX_MIN */
        guint n_values;
        guint n_allocated;
        guint8 n_small;
        guint8 level_len;
        char level[]; /* the key in the parent's children; "" for the root and wildcards */
};

struct _DebTopicTrie {
        TrieNode *root;
        guint size;
};

static TrieNode *trie_node_new(const char *level, size_t len)
{
        TrieNode *node = g_malloc0(sizeof(TrieNode) + len + 1);

        memcpy(node->level, level, len);
        node->level_len = (guint8)len;
        return node;
}

static void trie_node_free(TrieNode *node)
{
        if (!node)
                return;

        if (node->children) {
                GHashTableIter iter;
                gpointer child;

                g_hash_table_iter_init(&iter, node->children);
                while (g_hash_table_iter_next(&iter, NULL, &child))
                        trie_node_free(child);
                g_hash_table_unref(node->children);
        }
        for (guint i = 0; i < node->n_small; i++)
                trie_node_free(node->small[i]);
        g_free(node->small);
        trie_node_free(node->plus);
        trie_node_free(node->hash);
        g_clear_pointer(&node->value_index, g_hash_table_unref);
        g_free(node->values);
        g_free(node);
}

static gboolean trie_node_is_empty(const TrieNode *node)
{
        return node->n_values == 0 && node->n_small == 0 && !node->children && !node->plus && !node->hash;
}

static gboolean trie_level_equal(const TrieNode *child, const char *level, size_t len)
{
        /* A byte loop: levels are too short for memcmp()'s setup to pay. */
        if (child->level_len != len)
                return FALSE;
        for (size_t i = 0; i < len; i++)
                if (child->level[i] != level[i])
                        return FALSE;
        return TRUE;
}

/* The literal child named @level (NUL-terminated, @len bytes), if any. */
static TrieNode *trie_node_literal_child(const TrieNode *node, const char *level, size_t len)
{
        if (node->children)
                return g_hash_table_lookup(node->children, level);
        for (guint i = 0; i < node->n_small; i++)
                if (trie_level_equal(node->small[i], level, len))
                        return node->small[i];
        return NULL;
}

static TrieNode *trie_node_child(const TrieNode *node, const char *level, size_t len)
{
        if (len == 1 && level[0] == '+')
                return node->plus;
        if (len == 1 && level[0] == '#')
                return node->hash;
        return trie_node_literal_child(node, level, len);
}

static void trie_node_add_literal_child(TrieNode *node, TrieNode *child)
{
        if (!node->children && node->n_small < SMALL_CHILDREN_MAX) {
                /* Grows 1, 2, 4, 8: most nodes have a single child. */
                if ((node->n_small & (node->n_small - 1)) == 0)
                        node->small = g_renew(TrieNode *, node->small, MAX(1u, node->n_small * 2u));
                node->small[node->n_small++] = child;
                return;
        }

        if (!node->children) {
                node->children = g_hash_table_new(g_str_hash, g_str_equal);
                for (guint i = 0; i < node->n_small; i++)
                        g_hash_table_insert(node->children, node->small[i]->level, node->small[i]);
                g_clear_pointer(&node->small, g_free);
                node->n_small = 0;
        }
        /* The key is the child's own copy of the level, so it lives exactly as long as the entry. */
        g_hash_table_insert(node->children, child->level, child);
}

static TrieNode *trie_node_child_ensure(TrieNode *node, const char *level, size_t len)
{
        TrieNode *child = trie_node_child(node, level, len);

        if (child)
                return child;

        if (len == 1 && level[0] == '+')
                return (node->plus = trie_node_new("", 0));
        if (len == 1 && level[0] == '#')
                return (node->hash = trie_node_new("", 0));

        child = trie_node_new(level, len);
        trie_node_add_literal_child(node, child);
        return child;
}

/* Unlinks the empty @child from @parent and frees it. */
static void trie_node_detach(TrieNode *parent, TrieNode *child)
{
        if (parent->plus == child)
                parent->plus = NULL;
        else if (parent->hash == child)
                parent->hash = NULL;
        else if (parent->children) {
                /* Stays a hash table until empty: no flip-flopping at the limit. */
                g_hash_table_remove(parent->children, child->level);
                if (g_hash_table_size(parent->children) == 0)
                        g_clear_pointer(&parent->children, g_hash_table_unref);
        } else {
                for (guint i = 0; i < parent->n_small; i++)
                        if (parent->small[i] == child) {
                                parent->small[i] = parent->small[--parent->n_small];
                                break;
                        }
                if (parent->n_small == 0)
                        g_clear_pointer(&parent->small, g_free);
        }
        trie_node_free(child);
}

static gboolean trie_node_find_value(const TrieNode *node, gconstpointer value, guint *ret_pos)
{
        if (node->value_index) {
                gpointer pos1;

                if (!g_hash_table_lookup_extended(node->value_index, value, NULL, &pos1))
                        return FALSE;
                *ret_pos = GPOINTER_TO_UINT(pos1) - 1;
                return TRUE;
        }

        for (guint i = 0; i < node->n_values; i++)
                if (node->values[i] == value) {
                        *ret_pos = i;
                        return TRUE;
                }
        return FALSE;
}

static gboolean trie_node_add_value(TrieNode *node, gpointer value)
{
        guint pos;

        if (trie_node_find_value(node, value, &pos))
                return FALSE;

        if (node->n_values == node->n_allocated) {
                node->n_allocated = MAX(2u, node->n_allocated * 2);
                node->values = g_renew(gpointer, node->values, node->n_allocated);
        }
        node->values[node->n_values++] = value;

        if (node->value_index)
                g_hash_table_insert(node->value_index, value, GUINT_TO_POINTER(node->n_values));
        else if (node->n_values > VALUE_INDEX_MIN) {
                node->value_index = g_hash_table_new(g_direct_hash, g_direct_equal);
                for (guint i = 0; i < node->n_values; i++)
                        g_hash_table_insert(node->value_index, node->values[i], GUINT_TO_POINTER(i + 1));
        }
        return TRUE;
}

static gboolean trie_node_remove_value(TrieNode *node, gconstpointer value)
{
        guint pos;

        if (!trie_node_find_value(node, value, &pos))
                return FALSE;

        /* Swap with the last value: order between different values carries no meaning. */
        node->n_values--;
        node->values[pos] = node->values[node->n_values];
        if (node->value_index) {
                g_hash_table_remove(node->value_index, value);
                if (pos != node->n_values)
                        g_hash_table_insert(node->value_index, node->values[pos], GUINT_TO_POINTER(pos + 1));
        }

        if (node->n_values == 0) {
                g_clear_pointer(&node->values, g_free);
                g_clear_pointer(&node->value_index, g_hash_table_unref);
                node->n_allocated = 0;
        } else if (node->n_values * 4 <= node->n_allocated && node->n_allocated > 8) {
                node->n_allocated /= 2;
                node->values = g_renew(gpointer, node->values, node->n_allocated);
        }
        return TRUE;
}

/* A topic or pattern split in place: levels point into buf, lengths save strlen() calls. */
typedef struct {
        char buf[DEB_TOPIC_MAX_LEN + 1];
        const char *name[DEB_TOPIC_MAX_LEVELS];
        guint8 len[DEB_TOPIC_MAX_LEVELS];
        guint n;
} TrieLevels;

/*
 * Copies @s into @levels->buf and splits it at '.', so the levels are
 * NUL-terminated strings usable as hash keys without allocating. One byte loop:
 * levels are a few bytes long, too short for strchr()'s vector setup to pay.
 * Returns: FALSE if @s is empty or does not fit the limits.
 */
static gboolean trie_split(const char *s, TrieLevels *levels)
{
        size_t start = 0;
        size_t i;

        levels->n = 0;
        for (i = 0;; i++) {
                char c = s[i];

                if (i > DEB_TOPIC_MAX_LEN)
                        return FALSE;
                if (c != '.' && c != '\0') {
                        levels->buf[i] = c;
                        continue;
                }
                if (levels->n == DEB_TOPIC_MAX_LEVELS)
                        return FALSE;
                levels->buf[i] = '\0';
                levels->name[levels->n] = levels->buf + start;
                levels->len[levels->n] = (guint8)(i - start);
                levels->n++;
                start = i + 1;
                if (c == '\0')
                        return i > 0;
        }
}

DebTopicTrie *deb_topic_trie_new(void)
{
        DebTopicTrie *trie = g_new0(DebTopicTrie, 1);

        trie->root = trie_node_new("", 0);
        return trie;
}

void deb_topic_trie_free(DebTopicTrie *trie)
{
        if (!trie)
                return;

        trie_node_free(trie->root);
        g_free(trie);
}

gboolean deb_topic_trie_add(DebTopicTrie *trie, const char *pattern, gpointer value)
{
        TrieLevels levels;
        TrieNode *node;

        g_return_val_if_fail(trie != NULL, FALSE);
        g_return_val_if_fail(deb_pattern_validate(pattern, NULL), FALSE);

        if (!trie_split(pattern, &levels))
                return FALSE;
        node = trie->root;
        for (guint i = 0; i < levels.n; i++)
                node = trie_node_child_ensure(node, levels.name[i], levels.len[i]);

        /* A duplicate's nodes were already there for the first copy: nothing to prune. */
        if (!trie_node_add_value(node, value))
                return FALSE;

        trie->size++;
        return TRUE;
}

gboolean deb_topic_trie_remove(DebTopicTrie *trie, const char *pattern, gpointer value)
{
        TrieLevels levels;
        TrieNode *path[DEB_TOPIC_MAX_LEVELS + 1];
        guint n;

        g_return_val_if_fail(trie != NULL, FALSE);
        g_return_val_if_fail(pattern != NULL, FALSE);

        if (!trie_split(pattern, &levels))
                return FALSE;
        n = levels.n;

        path[0] = trie->root;
        for (guint i = 0; i < n; i++) {
                path[i + 1] = trie_node_child(path[i], levels.name[i], levels.len[i]);
                if (!path[i + 1])
                        return FALSE;
        }

        if (!trie_node_remove_value(path[n], value))
                return FALSE;
        trie->size--;

        for (guint i = n; i > 0 && trie_node_is_empty(path[i]); i--)
                trie_node_detach(path[i - 1], path[i]);
        return TRUE;
}

static void trie_node_report(const TrieNode *node, DebTopicTrieFunc func, gpointer user_data)
{
        for (guint i = 0; i < node->n_values; i++)
                func(node->values[i], user_data);
}

/*
 * Matches levels [i, levels->n) below @node. Each stored pattern is one path
 * from the root, and a topic follows a path in at most one way, so every
 * matching (pattern, value) is reported once.
 */
static void trie_node_match(const TrieNode *node, const TrieLevels *levels, guint i, DebTopicTrieFunc func,
                            gpointer user_data)
{
        for (;;) {
                /* '#' matches the remaining levels, also when there are none ("a.#" vs "a"). */
                if (node->hash)
                        trie_node_report(node->hash, func, user_data);
                if (i == levels->n) {
                        trie_node_report(node, func, user_data);
                        return;
                }
                if (node->plus)
                        trie_node_match(node->plus, levels, i + 1, func, user_data);
                node = trie_node_literal_child(node, levels->name[i], levels->len[i]);
                if (!node)
                        return;
                i++;
        }
}

void deb_topic_trie_match(DebTopicTrie *trie, const char *topic, DebTopicTrieFunc func, gpointer user_data)
{
        TrieLevels levels;

        g_return_if_fail(trie != NULL);
        g_return_if_fail(topic != NULL);
        g_return_if_fail(func != NULL);

        /* Only what memory safety needs is checked here: the broker validated the topic on ingress. */
        if (!trie_split(topic, &levels))
                g_return_if_reached();

        trie_node_match(trie->root, &levels, 0, func, user_data);
}

guint deb_topic_trie_size(DebTopicTrie *trie)
{
        g_return_val_if_fail(trie != NULL, 0);

        return trie->size;
}
