/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscription trie, checked against the reference matcher
 * deb_pattern_match() on the shared table and on random patterns.
 */
#include <string.h>

#include "deb-topic-trie.h"
#include "deb-topic.h"
#include "topic-match-cases.h"

/* Values are small integers 1..n_counts; the collector counts how often each was reported. */
typedef struct {
        guint *counts;
        guint n_counts;
        guint total;
} Reported;

static void reported_init(Reported *r, guint n)
{
        r->counts = g_new0(guint, n + 1);
        r->n_counts = n;
        r->total = 0;
}

static void reported_reset(Reported *r)
{
        memset(r->counts, 0, (r->n_counts + 1) * sizeof(guint));
        r->total = 0;
}

static void reported_clear(Reported *r)
{
        g_clear_pointer(&r->counts, g_free);
}

static void collect(gpointer value, gpointer user_data)
{
        Reported *r = user_data;
        guint v = GPOINTER_TO_UINT(value);

        g_assert_cmpuint(v, >=, 1);
        g_assert_cmpuint(v, <=, r->n_counts);
        r->counts[v]++;
        r->total++;
}

static guint match_count(DebTopicTrie *trie, const char *topic, Reported *r)
{
        reported_reset(r);
        deb_topic_trie_match(trie, topic, collect, r);
        return r->total;
}

static void test_table_one_by_one(void)
{
        Reported r;

        reported_init(&r, 1);
        for (size_t i = 0; i < G_N_ELEMENTS(topic_match_cases); i++) {
                const TopicMatchCase *c = &topic_match_cases[i];
                g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();

                g_assert_true(deb_topic_trie_add(trie, c->pattern, GUINT_TO_POINTER(1)));
                if (match_count(trie, c->topic, &r) != (c->match ? 1u : 0u))
                        g_error("row %zu: '%s' vs '%s': reported %u times, expected %s", i, c->pattern,
                                c->topic, r.total, c->match ? "once" : "never");

                g_assert_true(deb_topic_trie_remove(trie, c->pattern, GUINT_TO_POINTER(1)));
                g_assert_cmpuint(match_count(trie, c->topic, &r), ==, 0);
        }
        reported_clear(&r);
}

static void test_table_all_at_once(void)
{
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        guint n = G_N_ELEMENTS(topic_match_cases);
        Reported r;

        /* Row i stores value i + 1 under its pattern; patterns repeat across rows, values do not. */
        for (guint i = 0; i < n; i++)
                g_assert_true(
                        deb_topic_trie_add(trie, topic_match_cases[i].pattern, GUINT_TO_POINTER(i + 1)));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, n);

        reported_init(&r, n);
        for (guint i = 0; i < n; i++) {
                const TopicMatchCase *c = &topic_match_cases[i];

                match_count(trie, c->topic, &r);
                g_assert_cmpuint(r.counts[i + 1], ==, c->match ? 1 : 0);
                /* And nothing else than what the other rows' patterns match. */
                for (guint j = 0; j < n; j++) {
                        guint expected = deb_pattern_match(topic_match_cases[j].pattern, c->topic) ? 1 : 0;

                        if (r.counts[j + 1] != expected)
                                g_error("topic '%s': pattern '%s' (row %u) reported %u times, expected %u",
                                        c->topic, topic_match_cases[j].pattern, j, r.counts[j + 1],
                                        expected);
                }
        }
        reported_clear(&r);
}

static void test_add_remove_size(void)
{
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        gpointer v1 = GUINT_TO_POINTER(1), v2 = GUINT_TO_POINTER(2), v3 = GUINT_TO_POINTER(3);
        Reported r;

        reported_init(&r, 3);
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 0);
        g_assert_cmpuint(match_count(trie, "a.b", &r), ==, 0);

        g_assert_true(deb_topic_trie_add(trie, "a.b", v1));
        g_assert_false(deb_topic_trie_add(trie, "a.b", v1));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 1);
        g_assert_true(deb_topic_trie_add(trie, "a.b", v2));
        g_assert_true(deb_topic_trie_add(trie, "a.+", v1));
        g_assert_true(deb_topic_trie_add(trie, "a.#", v1));
        g_assert_false(deb_topic_trie_add(trie, "a.#", v1));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 4);

        g_assert_cmpuint(match_count(trie, "a.b", &r), ==, 4);
        g_assert_cmpuint(r.counts[1], ==, 3);
        g_assert_cmpuint(r.counts[2], ==, 1);

        /* Absent value, absent path, a path that exists only as a prefix. */
        g_assert_false(deb_topic_trie_remove(trie, "a.b", v3));
        g_assert_false(deb_topic_trie_remove(trie, "a.c", v1));
        g_assert_false(deb_topic_trie_remove(trie, "a", v1));
        g_assert_false(deb_topic_trie_remove(trie, "a.b.c", v1));
        g_assert_false(deb_topic_trie_remove(trie, "+.b", v1));
        g_assert_false(deb_topic_trie_remove(trie, "#", v1));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 4);

        g_assert_true(deb_topic_trie_remove(trie, "a.b", v1));
        g_assert_false(deb_topic_trie_remove(trie, "a.b", v1));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 3);
        g_assert_cmpuint(match_count(trie, "a.b", &r), ==, 3);
        g_assert_cmpuint(r.counts[1], ==, 2);

        /* Removing '+' leaves its '#' sibling, and the reverse. */
        g_assert_true(deb_topic_trie_remove(trie, "a.+", v1));
        g_assert_cmpuint(match_count(trie, "a", &r), ==, 1);
        g_assert_cmpuint(match_count(trie, "a.x", &r), ==, 1);
        g_assert_true(deb_topic_trie_add(trie, "a.+", v3));
        g_assert_true(deb_topic_trie_remove(trie, "a.#", v1));
        g_assert_cmpuint(match_count(trie, "a", &r), ==, 0);
        g_assert_cmpuint(match_count(trie, "a.x", &r), ==, 1);
        g_assert_cmpuint(r.counts[3], ==, 1);

        g_assert_true(deb_topic_trie_remove(trie, "a.+", v3));
        g_assert_true(deb_topic_trie_remove(trie, "a.b", v2));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 0);
        g_assert_cmpuint(match_count(trie, "a.b", &r), ==, 0);
        reported_clear(&r);
}

static void test_prune_keeps_shared_prefix(void)
{
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        gpointer v1 = GUINT_TO_POINTER(1), v2 = GUINT_TO_POINTER(2);
        Reported r;

        reported_init(&r, 2);
        g_assert_true(deb_topic_trie_add(trie, "a.b.c.d", v1));
        g_assert_true(deb_topic_trie_add(trie, "a.b", v2));

        /* Pruning a.b.c.d stops at a.b, which still holds a value. */
        g_assert_true(deb_topic_trie_remove(trie, "a.b.c.d", v1));
        g_assert_cmpuint(match_count(trie, "a.b", &r), ==, 1);
        g_assert_cmpuint(r.counts[2], ==, 1);
        g_assert_cmpuint(match_count(trie, "a.b.c.d", &r), ==, 0);
        g_assert_false(deb_topic_trie_remove(trie, "a.b.c", v1));

        /* Pruned nodes are recreated on demand; a.b's removal keeps the deeper pattern. */
        g_assert_true(deb_topic_trie_add(trie, "a.b.c.d", v1));
        g_assert_true(deb_topic_trie_remove(trie, "a.b", v2));
        g_assert_cmpuint(match_count(trie, "a.b", &r), ==, 0);
        g_assert_cmpuint(match_count(trie, "a.b.c.d", &r), ==, 1);

        /* Siblings under one parent: removing one leaves the other reachable. */
        g_assert_true(deb_topic_trie_add(trie, "a.b.c.e", v2));
        g_assert_true(deb_topic_trie_remove(trie, "a.b.c.d", v1));
        g_assert_cmpuint(match_count(trie, "a.b.c.e", &r), ==, 1);
        g_assert_true(deb_topic_trie_remove(trie, "a.b.c.e", v2));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 0);
        g_assert_cmpuint(match_count(trie, "a.b.c.e", &r), ==, 0);
        reported_clear(&r);
}

static void test_same_value_several_patterns(void)
{
        static const char *const patterns[] = {"a.b", "a.+",   "+.b", "+.+",  "#",
                                               "a.#", "a.b.#", "+.#", "+.b.#"};
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        Reported r;

        reported_init(&r, 2);
        for (size_t i = 0; i < G_N_ELEMENTS(patterns); i++)
                g_assert_true(deb_topic_trie_add(trie, patterns[i], GUINT_TO_POINTER(1)));
        g_assert_true(deb_topic_trie_add(trie, "a.c", GUINT_TO_POINTER(2)));

        /* Once per matching pattern: every pattern above matches a.b. */
        g_assert_cmpuint(match_count(trie, "a.b", &r), ==, G_N_ELEMENTS(patterns));
        g_assert_cmpuint(r.counts[1], ==, G_N_ELEMENTS(patterns));
        g_assert_cmpuint(r.counts[2], ==, 0);

        /* a.c: a.+, +.+, #, a.#, +.# for value 1, and a.c for value 2. */
        g_assert_cmpuint(match_count(trie, "a.c", &r), ==, 6);
        g_assert_cmpuint(r.counts[2], ==, 1);
        /* a: #, a.#, +.#. */
        g_assert_cmpuint(match_count(trie, "a", &r), ==, 3);
        reported_clear(&r);
}

static void test_many_values_one_pattern(void)
{
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        const guint n = 200;
        Reported r;

        /* Enough values on one node to go past the linear-scan size and back. */
        reported_init(&r, n);
        for (guint v = 1; v <= n; v++)
                g_assert_true(deb_topic_trie_add(trie, "events.#", GUINT_TO_POINTER(v)));
        for (guint v = 1; v <= n; v++)
                g_assert_false(deb_topic_trie_add(trie, "events.#", GUINT_TO_POINTER(v)));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, n);

        for (guint v = 1; v <= n; v += 2)
                g_assert_true(deb_topic_trie_remove(trie, "events.#", GUINT_TO_POINTER(v)));
        g_assert_cmpuint(match_count(trie, "events.process", &r), ==, n / 2);
        for (guint v = 1; v <= n; v++)
                g_assert_cmpuint(r.counts[v], ==, v % 2 == 0 ? 1 : 0);

        /* Removed values can come back; present ones are still refused. */
        g_assert_true(deb_topic_trie_add(trie, "events.#", GUINT_TO_POINTER(1)));
        g_assert_false(deb_topic_trie_add(trie, "events.#", GUINT_TO_POINTER(2)));
        g_assert_true(deb_topic_trie_remove(trie, "events.#", GUINT_TO_POINTER(1)));

        for (guint v = n; v >= 1; v--)
                g_assert_cmpint(deb_topic_trie_remove(trie, "events.#", GUINT_TO_POINTER(v)), ==,
                                v % 2 == 0);
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 0);
        g_assert_cmpuint(match_count(trie, "events", &r), ==, 0);
        reported_clear(&r);
}

static void test_many_children(void)
{
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        const guint n = 40;
        Reported r;

        /* Enough siblings on one node (and on the root) to outgrow a small child array. */
        reported_init(&r, 2 * n + 2);
        for (guint i = 0; i < n; i++) {
                g_autofree char *child = g_strdup_printf("a.c%u", i);
                g_autofree char *root_child = g_strdup_printf("r%u", i);

                g_assert_true(deb_topic_trie_add(trie, child, GUINT_TO_POINTER(i + 1)));
                g_assert_true(deb_topic_trie_add(trie, root_child, GUINT_TO_POINTER(n + i + 1)));
        }
        g_assert_true(deb_topic_trie_add(trie, "a.+", GUINT_TO_POINTER(2 * n + 1)));
        g_assert_true(deb_topic_trie_add(trie, "a.#", GUINT_TO_POINTER(2 * n + 2)));

        for (guint i = 0; i < n; i++) {
                g_autofree char *child = g_strdup_printf("a.c%u", i);
                g_autofree char *root_child = g_strdup_printf("r%u", i);

                g_assert_cmpuint(match_count(trie, child, &r), ==, 3);
                g_assert_cmpuint(r.counts[i + 1], ==, 1);
                g_assert_cmpuint(match_count(trie, root_child, &r), ==, 1);
                g_assert_cmpuint(r.counts[n + i + 1], ==, 1);
        }
        g_assert_cmpuint(match_count(trie, "a.c", &r), ==, 2);
        g_assert_cmpuint(match_count(trie, "r", &r), ==, 0);

        /* Remove all but every fifth sibling, then check both kinds of lookup again. */
        for (guint i = 0; i < n; i++) {
                g_autofree char *child = g_strdup_printf("a.c%u", i);
                g_autofree char *root_child = g_strdup_printf("r%u", i);

                if (i % 5 == 0)
                        continue;
                g_assert_true(deb_topic_trie_remove(trie, child, GUINT_TO_POINTER(i + 1)));
                g_assert_true(deb_topic_trie_remove(trie, root_child, GUINT_TO_POINTER(n + i + 1)));
        }
        for (guint i = 0; i < n; i++) {
                g_autofree char *child = g_strdup_printf("a.c%u", i);
                g_autofree char *root_child = g_strdup_printf("r%u", i);

                g_assert_cmpuint(match_count(trie, child, &r), ==, i % 5 == 0 ? 3 : 2);
                g_assert_cmpuint(match_count(trie, root_child, &r), ==, i % 5 == 0 ? 1 : 0);
        }

        for (guint i = 0; i < n; i += 5) {
                g_autofree char *child = g_strdup_printf("a.c%u", i);
                g_autofree char *root_child = g_strdup_printf("r%u", i);

                g_assert_true(deb_topic_trie_remove(trie, child, GUINT_TO_POINTER(i + 1)));
                g_assert_true(deb_topic_trie_remove(trie, root_child, GUINT_TO_POINTER(n + i + 1)));
        }
        g_assert_true(deb_topic_trie_remove(trie, "a.+", GUINT_TO_POINTER(2 * n + 1)));
        g_assert_true(deb_topic_trie_remove(trie, "a.#", GUINT_TO_POINTER(2 * n + 2)));
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 0);
        g_assert_cmpuint(match_count(trie, "a.c0", &r), ==, 0);

        /* Nodes that grew a hash table and emptied it work as new ones. */
        g_assert_true(deb_topic_trie_add(trie, "a.c3", GUINT_TO_POINTER(1)));
        g_assert_cmpuint(match_count(trie, "a.c3", &r), ==, 1);
        reported_clear(&r);
}

/* A small alphabet, so random patterns and topics collide often; over 8 levels so some nodes hash. */
static const char *const random_levels[] = {"a", "b", "c", "ab", "events", "x-y", "d", "e", "F", "g0"};

static char *random_name(GRand *rand, gboolean pattern)
{
        guint n = g_rand_int_range(rand, 1, pattern ? 6 : 7);
        g_autoptr(GPtrArray) parts = g_ptr_array_new();

        for (guint i = 0; i < n; i++) {
                const char *level = random_levels[g_rand_int_range(rand, 0, G_N_ELEMENTS(random_levels))];

                if (pattern && i == n - 1 && g_rand_int_range(rand, 0, 6) == 0)
                        level = "#";
                else if (pattern && g_rand_int_range(rand, 0, 4) == 0)
                        level = "+";
                g_ptr_array_add(parts, (gpointer)level);
        }
        g_ptr_array_add(parts, NULL);
        return g_strjoinv(".", (char **)parts->pdata);
}

static void check_against_reference(DebTopicTrie *trie, char **patterns, const gboolean *present, guint n,
                                    char **topics, guint n_topics, Reported *r)
{
        for (guint t = 0; t < n_topics; t++) {
                match_count(trie, topics[t], r);
                for (guint i = 0; i < n; i++) {
                        guint expected = present[i] && deb_pattern_match(patterns[i], topics[t]) ? 1 : 0;

                        if (r->counts[i + 1] != expected)
                                g_error("topic '%s': pattern '%s' (value %u) reported %u times, expected %u",
                                        topics[t], patterns[i], i + 1, r->counts[i + 1], expected);
                }
        }
}

static void test_random_cross_check(void)
{
        const guint n = 3000, n_topics = 400;
        g_autoptr(GRand) rand = g_rand_new_with_seed(0x5eed7013);
        g_autoptr(DebTopicTrie) trie = deb_topic_trie_new();
        g_auto(GStrv) patterns = g_new0(char *, n + 1);
        g_auto(GStrv) topics = g_new0(char *, n_topics + 1);
        g_autofree gboolean *present = g_new0(gboolean, n);
        g_autofree guint *order = g_new(guint, n);
        guint n_matches = 0;
        Reported r;

        for (guint i = 0; i < n; i++) {
                patterns[i] = random_name(rand, TRUE);
                g_assert_true(deb_pattern_validate(patterns[i], NULL));
                g_assert_true(deb_topic_trie_add(trie, patterns[i], GUINT_TO_POINTER(i + 1)));
                present[i] = TRUE;
                order[i] = i;
        }
        for (guint t = 0; t < n_topics; t++) {
                topics[t] = random_name(rand, FALSE);
                g_assert_true(deb_topic_validate(topics[t], NULL));
        }
        g_assert_cmpuint(deb_topic_trie_size(trie), ==, n);

        reported_init(&r, n);
        check_against_reference(trie, patterns, present, n, topics, n_topics, &r);

        /* The generator must produce both outcomes often, or the check proves little. */
        for (guint t = 0; t < n_topics; t++)
                n_matches += match_count(trie, topics[t], &r);
        g_test_message("%u matches over %u topics", n_matches, n_topics);
        g_assert_cmpuint(n_matches, >, n_topics * 10);
        g_assert_cmpuint(n_matches, <, n_topics * n / 2);

        /* Remove in random order, cross-checking at a few points on the way down. */
        for (guint i = n - 1; i > 0; i--) {
                guint j = g_rand_int_range(rand, 0, i + 1);
                guint tmp = order[i];

                order[i] = order[j];
                order[j] = tmp;
        }
        for (guint k = 0; k < n; k++) {
                guint i = order[k];

                g_assert_true(deb_topic_trie_remove(trie, patterns[i], GUINT_TO_POINTER(i + 1)));
                g_assert_false(deb_topic_trie_remove(trie, patterns[i], GUINT_TO_POINTER(i + 1)));
                present[i] = FALSE;
                g_assert_cmpuint(deb_topic_trie_size(trie), ==, n - k - 1);
                if (k == n / 2 || k == n - 10)
                        check_against_reference(trie, patterns, present, n, topics, n_topics, &r);
        }

        g_assert_cmpuint(deb_topic_trie_size(trie), ==, 0);
        for (guint t = 0; t < n_topics; t++)
                g_assert_cmpuint(match_count(trie, topics[t], &r), ==, 0);
        reported_clear(&r);
}

static void test_free_non_empty(void)
{
        DebTopicTrie *trie = deb_topic_trie_new();

        /* Freeing with values still stored must release every node (ASan checks the leaks). */
        g_assert_true(deb_topic_trie_add(trie, "a.b.c", GUINT_TO_POINTER(1)));
        g_assert_true(deb_topic_trie_add(trie, "a.+.#", GUINT_TO_POINTER(2)));
        g_assert_true(deb_topic_trie_add(trie, "#", GUINT_TO_POINTER(3)));
        for (guint v = 1; v <= 40; v++)
                g_assert_true(deb_topic_trie_add(trie, "x", GUINT_TO_POINTER(v)));
        deb_topic_trie_free(trie);
        deb_topic_trie_free(NULL);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/topic-trie/table/one-by-one", test_table_one_by_one);
        g_test_add_func("/topic-trie/table/all-at-once", test_table_all_at_once);
        g_test_add_func("/topic-trie/add-remove-size", test_add_remove_size);
        g_test_add_func("/topic-trie/prune-keeps-shared-prefix", test_prune_keeps_shared_prefix);
        g_test_add_func("/topic-trie/same-value-several-patterns", test_same_value_several_patterns);
        g_test_add_func("/topic-trie/many-values-one-pattern", test_many_values_one_pattern);
        g_test_add_func("/topic-trie/many-children", test_many_children);
        g_test_add_func("/topic-trie/random-cross-check", test_random_cross_check);
        g_test_add_func("/topic-trie/free-non-empty", test_free_non_empty);

        return g_test_run();
}
