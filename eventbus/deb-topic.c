/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "deb-error.h"
#include "deb-topic.h"

/* Longest slice of an offending string quoted in an error message. */
#define QUOTE_MAX_BYTES 48

typedef enum {
        TOPIC_KIND_TOPIC,
        TOPIC_KIND_PATTERN,
} TopicKind;

static const char *topic_kind_name(TopicKind kind)
{
        return kind == TOPIC_KIND_TOPIC ? "topic" : "pattern";
}

static gboolean topic_char_is_valid(char c)
{
        /* Not g_ascii_isalnum(): the accepted set is fixed by the protocol, not the locale. */
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-';
}

/*
 * Quotes untrusted input for an error message: control characters and bytes
 * over 0x7e become octal escapes (so the message stays printable UTF-8), and
 * long input is cut with an ellipsis so a 64 KiB topic does not flood the log.
 */
static char *topic_quote(const char *s)
{
        size_t len = strnlen(s, QUOTE_MAX_BYTES + 1);
        g_autofree char *head = g_strndup(s, MIN(len, (size_t)QUOTE_MAX_BYTES));
        g_autofree char *escaped = g_strescape(head, NULL);

        return g_strdup_printf("'%s%s'", escaped, len > QUOTE_MAX_BYTES ? "…" : "");
}

/* Describes one byte for a message: "' '" for printable ASCII, "0x0a" otherwise. */
static void topic_describe_byte(unsigned char c, char buf[static 16])
{
        if (c > 0x20 && c < 0x7f && c != '\'')
                g_snprintf(buf, 16, "'%c'", c);
        else if (c == ' ')
                g_snprintf(buf, 16, "space");
        else
                g_snprintf(buf, 16, "byte 0x%02x", c);
}

G_GNUC_PRINTF(4, 5)
static gboolean topic_fail(GError **error, TopicKind kind, const char *s, const char *format, ...)
{
        g_autofree char *quoted = NULL;
        g_autofree char *reason = NULL;
        va_list ap;

        if (!error)
                return FALSE;

        va_start(ap, format);
        reason = g_strdup_vprintf(format, ap);
        va_end(ap);

        quoted = s ? topic_quote(s) : g_strdup("(null)");
        g_set_error(error, DEB_ERROR,
                    kind == TOPIC_KIND_TOPIC ? DEB_ERROR_INVALID_TOPIC : DEB_ERROR_INVALID_PATTERN,
                    "%s %s: %s", topic_kind_name(kind), quoted, reason);
        return FALSE;
}

/* Checks one level [level, level + len) of @s, which is level number @index (1-based). */
static gboolean topic_check_level(TopicKind kind, const char *s, const char *level, size_t len, guint index,
                                  gboolean is_last, GError **error)
{
        if (len == 0)
                return topic_fail(error, kind, s, "level %u is empty", index);
        if (len > DEB_TOPIC_MAX_LEVEL_LEN)
                return topic_fail(error, kind, s, "level %u is %zu bytes, more than %d", index, len,
                                  DEB_TOPIC_MAX_LEVEL_LEN);

        if (len == 1 && (level[0] == '+' || level[0] == '#')) {
                if (kind == TOPIC_KIND_TOPIC)
                        return topic_fail(error, kind, s,
                                          "level %u is the wildcard '%c'; wildcards are for subscription "
                                          "patterns, one cannot publish to a wildcard topic",
                                          index, level[0]);
                if (level[0] == '#' && !is_last)
                        return topic_fail(error, kind, s, "'#' must be the last level (it is level %u)",
                                          index);
                return TRUE;
        }

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)level[i];
                char what[16];

                if (topic_char_is_valid((char)c))
                        continue;

                if (c == '+' || c == '#') {
                        if (kind == TOPIC_KIND_TOPIC)
                                return topic_fail(
                                        error, kind, s,
                                        "level %u contains the wildcard '%c'; one cannot publish to a "
                                        "wildcard topic",
                                        index, c);
                        return topic_fail(
                                error, kind, s,
                                "level %u mixes the wildcard '%c' with other characters; a wildcard "
                                "must be a whole level",
                                index, c);
                }

                topic_describe_byte(c, what);
                return topic_fail(error, kind, s,
                                  "level %u has %s at position %zu; levels may only contain [A-Za-z0-9_-]",
                                  index, what, i + 1);
        }

        return TRUE;
}

static gboolean topic_check(TopicKind kind, const char *s, GError **error)
{
        size_t len;
        guint n_levels = 1;
        guint index = 1;
        const char *level;

        if (!s)
                return topic_fail(error, kind, NULL, "no %s given", topic_kind_name(kind));

        len = strnlen(s, DEB_TOPIC_MAX_LEN + 1);
        if (len == 0)
                return topic_fail(error, kind, s, "empty, a %s needs at least one level",
                                  topic_kind_name(kind));
        if (len > DEB_TOPIC_MAX_LEN)
                return topic_fail(error, kind, s, "%zu bytes, more than %d", strlen(s), DEB_TOPIC_MAX_LEN);

        for (const char *p = s; *p; p++)
                if (*p == '.')
                        n_levels++;
        if (n_levels > DEB_TOPIC_MAX_LEVELS)
                return topic_fail(error, kind, s, "%u levels, more than %d", n_levels, DEB_TOPIC_MAX_LEVELS);

        level = s;
        for (;;) {
                size_t level_len = strcspn(level, ".");
                gboolean is_last = level[level_len] == '\0';

                if (!topic_check_level(kind, s, level, level_len, index, is_last, error))
                        return FALSE;
                if (is_last)
                        return TRUE;
                level += level_len + 1;
                index++;
        }
}

gboolean deb_topic_validate(const char *topic, GError **error)
{
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        return topic_check(TOPIC_KIND_TOPIC, topic, error);
}

gboolean deb_pattern_validate(const char *pattern, GError **error)
{
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        return topic_check(TOPIC_KIND_PATTERN, pattern, error);
}

gboolean deb_pattern_is_wildcard(const char *pattern)
{
        /* In a valid pattern '+' and '#' can only appear as whole levels. */
        return pattern && strpbrk(pattern, "+#") != NULL;
}

gboolean deb_pattern_match(const char *pattern, const char *topic)
{
        const char *p = pattern;
        const char *t = topic;
        gboolean topic_done = FALSE;

        if (!pattern || !topic)
                return FALSE;

        /* p and t each point at the start of a level; topic_done once t has no level left. */
        for (;;) {
                size_t plen, tlen;

                if (p[0] == '#' && p[1] == '\0')
                        return TRUE; /* zero or more trailing levels, including none ("a.#" vs "a") */
                if (topic_done)
                        return FALSE;

                plen = strcspn(p, ".");
                tlen = strcspn(t, ".");
                if (!(plen == 1 && p[0] == '+') && (plen != tlen || memcmp(p, t, plen) != 0))
                        return FALSE;

                p += plen;
                t += tlen;
                if (*p == '\0')
                        return *t == '\0';

                p++;
                if (*t == '\0')
                        topic_done = TRUE;
                else
                        t++;
        }
}
