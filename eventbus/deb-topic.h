/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Topics and patterns.
 *
 * A topic is 1..16 levels separated by '.', each level 1..64 bytes of
 * [A-Za-z0-9_-], 255 bytes in all. A pattern is a topic whose levels may also be
 * the wildcards '+' (exactly one level) or '#' (zero or more trailing levels,
 * only as the last level). A wildcard always occupies a whole level. "events.#"
 * matches "events" itself (the MQTT rule).
 */
#define DEB_TOPIC_MAX_LEN 255
#define DEB_TOPIC_MAX_LEVELS 16
#define DEB_TOPIC_MAX_LEVEL_LEN 64

/**
 * deb_topic_validate:
 * @topic: a NUL-terminated string, may be %NULL
 * @error: return location for a #DEB_ERROR_INVALID_TOPIC error
 *
 * Checks that @topic is a concrete topic one may publish to (no wildcards).
 * Returns: %TRUE if valid.
 */
gboolean deb_topic_validate(const char *topic, GError **error);

/**
 * deb_pattern_validate:
 * @pattern: a NUL-terminated string, may be %NULL
 * @error: return location for a #DEB_ERROR_INVALID_PATTERN error
 *
 * Checks that @pattern is a valid subscription pattern.
 * Returns: %TRUE if valid.
 */
gboolean deb_pattern_validate(const char *pattern, GError **error);

/**
 * deb_pattern_is_wildcard:
 * @pattern: a valid pattern
 *
 * Returns: %TRUE if @pattern has a '+' or '#' level.
 */
gboolean deb_pattern_is_wildcard(const char *pattern);

/**
 * deb_pattern_match:
 * @pattern: a valid pattern
 * @topic: a valid topic
 *
 * Straight-line matcher for one pattern against one topic; the reference the
 * trie is tested against, and handy for clients filtering locally.
 * Returns: %TRUE if @topic matches @pattern.
 */
gboolean deb_pattern_match(const char *pattern, const char *topic);

G_END_DECLS
