/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/*
 * What the D-Bus commands print: one JSON document with --json, otherwise
 * aligned tables and "Key:  value" lists.
 */

typedef struct _CliTable CliTable;

/**
 * cli_table_new:
 * @headers: (nullable) %NULL-terminated column titles; %NULL: @n_columns
 *   columns and no header line
 *
 * Returns: (transfer full) an empty table.
 */
CliTable *cli_table_new(const char *const *headers, guint n_columns);
void cli_table_free(CliTable *table);

/** cli_table_add_row: one row of exactly the table's number of cells (NULL prints "-"); copied. */
void cli_table_add_row(CliTable *table, ...) G_GNUC_NULL_TERMINATED;
void cli_table_add_rowv(CliTable *table, const char *const *cells);

/** cli_table_get_n_rows: Returns: the number of rows, header not counted. */
guint cli_table_get_n_rows(CliTable *table);

/**
 * cli_table_render:
 *
 * Columns two spaces apart, padded to the widest cell in characters; no line
 * ends in blanks.
 * Returns: (transfer full) the lines, each ending in '\n'.
 */
char *cli_table_render(CliTable *table);

/** cli_table_print: renders @table to stdout. */
void cli_table_print(CliTable *table);

/** cli_table_print_section: a blank line, then @table, when it has rows; nothing otherwise. */
void cli_table_print_section(CliTable *table);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CliTable, cli_table_free)

/**
 * cli_print_json:
 * @node: (transfer full)
 *
 * Prints @node as the one JSON document of a command's output: indented on a
 * terminal, one line otherwise.
 */
void cli_print_json(JsonNode *node);

/** cli_format_duration: Returns: (transfer full) "3d 04h", "2h 05m", "4m 09s", "12s", "350ms" for @usec. */
char *cli_format_duration(guint64 usec);

/**
 * cli_format_time_ago:
 * @usec: microseconds since the epoch; 0 for never
 * @now_usec: the present, in the same unit
 *
 * Returns: (transfer full) "never", "just now", "12s ago", "5m 02s ago"…
 */
char *cli_format_time_ago(guint64 usec, guint64 now_usec);

/** cli_format_timestamp: Returns: (transfer full) @usec since the epoch as local "YYYY-MM-DD HH:MM:SS". */
char *cli_format_timestamp(guint64 usec);

/**
 * cli_format_value:
 * @key: (nullable) the name the value goes by, for its unit: *_bytes sizes,
 *   *_ms / *_us durations, *_percent percentages
 *
 * One line of text for a D-Bus value: string arrays joined by ", ", numbers
 * with their unit, booleans yes/no, anything else printed by GVariant.
 * Returns: (transfer full) the text.
 */
char *cli_format_value(const char *key, GVariant *value);

/** cli_format_label: Returns: (transfer full) "max_concurrent_requests" → "Max concurrent requests". */
char *cli_format_label(const char *key);

G_END_DECLS
