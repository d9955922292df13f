/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic and pattern validation, and the reference matcher deb_pattern_match().
 */
#include <string.h>

#include "deb-error.h"
#include "deb-topic.h"
#include "topic-match-cases.h"

/* 300 bytes in one level: over both the level and the topic limit. */
#define B300 L64 L64 L64 L64 L32 "abcdefghijkl"

typedef struct {
        const char *input;
        gboolean topic_ok;       /* accepted by deb_topic_validate() */
        gboolean pattern_ok;     /* accepted by deb_pattern_validate() */
        const char *topic_why;   /* substring of the topic error message, if any */
        const char *pattern_why; /* substring of the pattern error message, if any */
} ValidationCase;

static const ValidationCase validation_cases[] = {
        /* Plain topics: valid for both. */
        {"events", TRUE, TRUE, NULL, NULL},
        {"a", TRUE, TRUE, NULL, NULL},
        {"events.process.lifecycle", TRUE, TRUE, NULL, NULL},
        {"control.collector.config.procmond-2", TRUE, TRUE, NULL, NULL},
        {"A-Z_0-9.x", TRUE, TRUE, NULL, NULL},
        {"_", TRUE, TRUE, NULL, NULL},
        {"-", TRUE, TRUE, NULL, NULL},
        {"0.1.2", TRUE, TRUE, NULL, NULL},
        {"Events.PROCESS", TRUE, TRUE, NULL, NULL},
        /* Boundaries: 64-byte level, 16 levels, 255 bytes. */
        {L64, TRUE, TRUE, NULL, NULL},
        {"a." L64 ".b", TRUE, TRUE, NULL, NULL},
        {L65, FALSE, FALSE, "level 1 is 65 bytes, more than 64", "level 1 is 65 bytes, more than 64"},
        {"a." L65 ".b", FALSE, FALSE, "level 2 is 65 bytes", "level 2 is 65 bytes"},
        {LV16, TRUE, TRUE, NULL, NULL},
        {LV17, FALSE, FALSE, "17 levels, more than 16", "17 levels, more than 16"},
        {B255, TRUE, TRUE, NULL, NULL},
        {B256, FALSE, FALSE, "256 bytes, more than 255", "256 bytes, more than 255"},
        {B300, FALSE, FALSE, "300 bytes, more than 255", "300 bytes, more than 255"},
        /* Empty input and empty levels. */
        {NULL, FALSE, FALSE, "topic (null): no topic given", "pattern (null): no pattern given"},
        {"", FALSE, FALSE, "topic '': empty", "pattern '': empty"},
        {".", FALSE, FALSE, "level 1 is empty", "level 1 is empty"},
        {".a", FALSE, FALSE, "level 1 is empty", "level 1 is empty"},
        {"a.", FALSE, FALSE, "level 2 is empty", "level 2 is empty"},
        {"a..b", FALSE, FALSE, "level 2 is empty", "level 2 is empty"},
        {"events..x", FALSE, FALSE, "topic 'events..x': level 2 is empty",
         "pattern 'events..x': level 2 is empty"},
        /* Characters outside [A-Za-z0-9_-]. */
        {"a b", FALSE, FALSE, "level 1 has space at position 2", "level 1 has space"},
        {" a", FALSE, FALSE, "space at position 1", "space at position 1"},
        {"a/b", FALSE, FALSE, "level 1 has '/'", "'/'"},
        {"events/process", FALSE, FALSE, "'/'", "'/'"},
        {"a*", FALSE, FALSE, "'*'", "'*'"},
        {"*", FALSE, FALSE, "'*'", "'*'"},
        {"a.$SYS", FALSE, FALSE, "level 2 has '$'", "'$'"},
        {"a:b", FALSE, FALSE, "':'", "':'"},
        {"it's", FALSE, FALSE, "byte 0x27", "byte 0x27"},
        {"caf\xc3\xa9", FALSE, FALSE, "byte 0xc3 at position 4", "byte 0xc3"},
        {"\xff\xfe", FALSE, FALSE, "byte 0xff at position 1", "byte 0xff"},
        {"a\tb", FALSE, FALSE, "byte 0x09", "byte 0x09"},
        {"a\nb", FALSE, FALSE, "byte 0x0a", "byte 0x0a"},
        {"a\x01", FALSE, FALSE, "byte 0x01", "byte 0x01"},
        {"a\x7f", FALSE, FALSE, "byte 0x7f", "byte 0x7f"},
        /* Wildcards: valid patterns, never valid topics. */
        {"+", FALSE, TRUE, "level 1 is the wildcard '+'; wildcards are for subscription patterns", NULL},
        {"#", FALSE, TRUE, "one cannot publish to a wildcard topic", NULL},
        {"a.+", FALSE, TRUE, "level 2 is the wildcard '+'", NULL},
        {"+.a", FALSE, TRUE, "wildcard", NULL},
        {"a.+.b", FALSE, TRUE, "wildcard", NULL},
        {"a.#", FALSE, TRUE, "level 2 is the wildcard '#'", NULL},
        {"+.#", FALSE, TRUE, "wildcard", NULL},
        {"+.+.+", FALSE, TRUE, "wildcard", NULL},
        {LV15 ".#", FALSE, TRUE, "wildcard", NULL},
        {PLUS16, FALSE, TRUE, "wildcard", NULL},
        {LV16 ".#", FALSE, FALSE, "17 levels, more than 16", "17 levels, more than 16"},
        /* Wildcards that do not occupy a whole level. */
        {"a+", FALSE, FALSE, "contains the wildcard '+'", "mixes the wildcard '+' with other characters"},
        {"+a", FALSE, FALSE, "wildcard", "a wildcard must be a whole level"},
        {"#a", FALSE, FALSE, "wildcard", "mixes the wildcard '#'"},
        {"a#", FALSE, FALSE, "wildcard", "mixes the wildcard '#'"},
        {"a.b+.c", FALSE, FALSE, "level 2 contains the wildcard '+'", "level 2 mixes the wildcard '+'"},
        {"++", FALSE, FALSE, "wildcard", "must be a whole level"},
        {"##", FALSE, FALSE, "wildcard", "must be a whole level"},
        {"+#", FALSE, FALSE, "wildcard", "must be a whole level"},
        /* '#' anywhere but last. */
        {"a.#.b", FALSE, FALSE, "wildcard", "pattern 'a.#.b': '#' must be the last level"},
        {"#.#", FALSE, FALSE, "wildcard", "'#' must be the last level (it is level 1)"},
        {"#.a", FALSE, FALSE, "wildcard", "'#' must be the last level"},
        {"a.#.", FALSE, FALSE, "wildcard", "'#' must be the last level"},
        {"a.+.", FALSE, FALSE, "wildcard", "level 3 is empty"},
};

/* Every error message names the input, is printable UTF-8 and stays short. */
static void check_error(const GError *error, int code, const char *kind, const char *input, const char *why)
{
        g_autofree char *prefix = g_strdup_printf("%s ", kind);

        g_assert_error(error, DEB_ERROR, code);
        g_assert_true(g_str_has_prefix(error->message, prefix));
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
        for (const char *p = error->message; *p; p++)
                g_assert_cmpint((unsigned char)*p, >=, 0x20);
        g_assert_cmpuint(strlen(error->message), <, 256);

        if (input && strlen(input) <= 40) {
                g_autofree char *escaped = g_strescape(input, NULL);
                g_autofree char *quoted = g_strdup_printf("'%s'", escaped);

                g_assert_nonnull(strstr(error->message, quoted));
        }
        if (why && !strstr(error->message, why))
                g_error("error message \"%s\" lacks \"%s\"", error->message, why);
}

static void test_validate_table(void)
{
        for (size_t i = 0; i < G_N_ELEMENTS(validation_cases); i++) {
                const ValidationCase *c = &validation_cases[i];
                g_autoptr(GError) topic_error = NULL;
                g_autoptr(GError) pattern_error = NULL;
                gboolean ok;

                g_autofree char *shown = c->input ? g_strescape(c->input, NULL) : g_strdup("(null)");

                g_test_message("row %zu: '%s'", i, shown);

                ok = deb_topic_validate(c->input, &topic_error);
                g_assert_cmpint(ok, ==, c->topic_ok);
                g_assert_cmpint(deb_topic_validate(c->input, NULL), ==, c->topic_ok);
                if (ok)
                        g_assert_no_error(topic_error);
                else
                        check_error(topic_error, DEB_ERROR_INVALID_TOPIC, "topic", c->input, c->topic_why);

                ok = deb_pattern_validate(c->input, &pattern_error);
                g_assert_cmpint(ok, ==, c->pattern_ok);
                g_assert_cmpint(deb_pattern_validate(c->input, NULL), ==, c->pattern_ok);
                if (ok)
                        g_assert_no_error(pattern_error);
                else
                        check_error(pattern_error, DEB_ERROR_INVALID_PATTERN, "pattern", c->input,
                                    c->pattern_why);

                /* A valid pattern is a publishable topic exactly when it has no wildcard. */
                if (c->pattern_ok)
                        g_assert_cmpint(deb_pattern_is_wildcard(c->input), ==, !c->topic_ok);
                /* Every valid topic is also a valid pattern. */
                if (c->topic_ok)
                        g_assert_true(c->pattern_ok);
        }
}

static void test_validate_long_input_quoted(void)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *huge = g_strnfill(100000, 'x');

        g_assert_false(deb_topic_validate(B300, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_INVALID_TOPIC);
        /* The input is cut with an ellipsis, not copied whole into the message. */
        g_assert_nonnull(strstr(error->message, "…': 300 bytes, more than 255"));
        g_assert_null(strstr(error->message, L64 L64));
        g_clear_error(&error);

        g_assert_false(deb_pattern_validate(huge, &error));
        g_assert_error(error, DEB_ERROR, DEB_ERROR_INVALID_PATTERN);
        g_assert_nonnull(strstr(error->message, "100000 bytes, more than 255"));
        g_assert_cmpuint(strlen(error->message), <, 200);
        g_clear_error(&error);

        /* Cutting inside a multi-byte character must still give valid UTF-8. */
        huge[47] = '\xc3';
        huge[48] = '\xa9';
        g_assert_false(deb_topic_validate(huge, &error));
        g_assert_true(g_utf8_validate(error->message, -1, NULL));
}

static void test_validate_escapes_quotes(void)
{
        g_autoptr(GError) error = NULL;

        g_assert_false(deb_topic_validate("a\"b\\c\x1b[2J", &error));
        g_assert_nonnull(strstr(error->message, "'a\\\"b\\\\c\\033[2J'"));
        g_assert_null(strchr(error->message, '\x1b'));
}

static void test_is_wildcard(void)
{
        g_assert_false(deb_pattern_is_wildcard("events"));
        g_assert_false(deb_pattern_is_wildcard("events.process.lifecycle"));
        g_assert_false(deb_pattern_is_wildcard(LV16));
        g_assert_true(deb_pattern_is_wildcard("+"));
        g_assert_true(deb_pattern_is_wildcard("#"));
        g_assert_true(deb_pattern_is_wildcard("events.#"));
        g_assert_true(deb_pattern_is_wildcard("events.+.lifecycle"));
        g_assert_true(deb_pattern_is_wildcard("+.b"));
        g_assert_false(deb_pattern_is_wildcard(NULL));
}

static void test_match_table(void)
{
        for (size_t i = 0; i < G_N_ELEMENTS(topic_match_cases); i++) {
                const TopicMatchCase *c = &topic_match_cases[i];

                g_test_message("row %zu: '%s' vs '%s'", i, c->pattern, c->topic);

                /* The table itself must only hold valid inputs. */
                g_assert_true(deb_pattern_validate(c->pattern, NULL));
                g_assert_true(deb_topic_validate(c->topic, NULL));

                if (deb_pattern_match(c->pattern, c->topic) != c->match)
                        g_error("row %zu: '%s' vs '%s': expected %s", i, c->pattern, c->topic,
                                c->match ? "a match" : "no match");

                /* Without wildcards, matching is string equality. */
                if (!deb_pattern_is_wildcard(c->pattern))
                        g_assert_cmpint(c->match, ==, strcmp(c->pattern, c->topic) == 0);
                /* A topic used as a pattern matches itself, and '#' matches everything. */
                g_assert_true(deb_pattern_match(c->topic, c->topic));
                g_assert_true(deb_pattern_match("#", c->topic));
        }
}

static void test_match_table_covers_both_outcomes(void)
{
        guint n_match = 0;
        guint n_miss = 0;

        for (size_t i = 0; i < G_N_ELEMENTS(topic_match_cases); i++) {
                if (topic_match_cases[i].match)
                        n_match++;
                else
                        n_miss++;
        }
        g_assert_cmpuint(G_N_ELEMENTS(topic_match_cases), >=, 60);
        g_assert_cmpuint(n_match, >=, 25);
        g_assert_cmpuint(n_miss, >=, 25);
}

static void test_match_null(void)
{
        g_assert_false(deb_pattern_match(NULL, "a"));
        g_assert_false(deb_pattern_match("a", NULL));
        g_assert_false(deb_pattern_match("#", NULL));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/topic/validate/table", test_validate_table);
        g_test_add_func("/topic/validate/long-input-quoted", test_validate_long_input_quoted);
        g_test_add_func("/topic/validate/escapes-quotes", test_validate_escapes_quotes);
        g_test_add_func("/topic/is-wildcard", test_is_wildcard);
        g_test_add_func("/topic/match/table", test_match_table);
        g_test_add_func("/topic/match/table-covers-both-outcomes", test_match_table_covers_both_outcomes);
        g_test_add_func("/topic/match/null", test_match_null);

        return g_test_run();
}
