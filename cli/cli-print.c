/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tables, the JSON document, and values in words for the D-Bus commands.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli-print.h"
#include "cli-variant.h"

struct _CliTable {
        guint n_columns;
        gboolean has_header;
        GPtrArray *cells; /* row after row, n_columns each, header first */
};

/* What the agent sends ends up on a terminal: no escape sequences, one line per cell. */
static char *cli_text_sanitize(const char *text)
{
        const char *p, *end;
        GString *s;

        if (!text)
                return g_strdup("-");
        s = g_string_sized_new(strlen(text));
        p = text;
        end = text + strlen(text);
        while (p < end) {
                gunichar c = g_utf8_get_char_validated(p, end - p);

                if (c == (gunichar)-1 || c == (gunichar)-2) {
                        g_string_append_c(s, '?');
                        p++;
                        continue;
                }
                if (g_unichar_iscntrl(c))
                        g_string_append_c(s, c == '\t' || c == '\n' ? ' ' : '?');
                else
                        g_string_append_unichar(s, c);
                p = g_utf8_next_char(p);
        }
        return g_string_free(s, FALSE);
}

CliTable *cli_table_new(const char *const *headers, guint n_columns)
{
        CliTable *table = g_new0(CliTable, 1);

        table->cells = g_ptr_array_new_with_free_func(g_free);
        if (headers) {
                table->n_columns = g_strv_length((char **)headers);
                table->has_header = TRUE;
                cli_table_add_rowv(table, headers);
        } else {
                table->n_columns = n_columns;
        }
        return table;
}

void cli_table_free(CliTable *table)
{
        if (!table)
                return;
        g_ptr_array_unref(table->cells);
        g_free(table);
}

void cli_table_add_rowv(CliTable *table, const char *const *cells)
{
        for (guint i = 0; i < table->n_columns; i++)
                g_ptr_array_add(table->cells, cli_text_sanitize(cells[i]));
}

void cli_table_add_row(CliTable *table, ...)
{
        g_autoptr(GPtrArray) cells = g_ptr_array_new();
        va_list ap;

        va_start(ap, table);
        for (guint i = 0; i < table->n_columns; i++)
                g_ptr_array_add(cells, va_arg(ap, char *));
        va_end(ap);
        cli_table_add_rowv(table, (const char *const *)cells->pdata);
}

guint cli_table_get_n_rows(CliTable *table)
{
        guint rows = table->n_columns ? table->cells->len / table->n_columns : 0;

        return table->has_header ? rows - 1 : rows;
}

char *cli_table_render(CliTable *table)
{
        g_autofree glong *widths = g_new0(glong, MAX(table->n_columns, 1));
        GString *out = g_string_new(NULL);

        for (guint i = 0; i < table->cells->len; i++) {
                glong len = g_utf8_strlen(table->cells->pdata[i], -1);
                guint column = i % table->n_columns;

                widths[column] = MAX(widths[column], len);
        }
        for (guint i = 0; i < table->cells->len; i++) {
                const char *cell = table->cells->pdata[i];
                guint column = i % table->n_columns;

                g_string_append(out, cell);
                if (column + 1 == table->n_columns) {
                        /* An empty last cell leaves padding behind: no line ends in blanks. */
                        while (out->len > 0 && out->str[out->len - 1] == ' ')
                                g_string_truncate(out, out->len - 1);
                        g_string_append_c(out, '\n');
                        continue;
                }
                for (glong pad = widths[column] - g_utf8_strlen(cell, -1) + 2; pad > 0; pad--)
                        g_string_append_c(out, ' ');
        }
        return g_string_free(out, FALSE);
}

void cli_table_print(CliTable *table)
{
        g_autofree char *text = cli_table_render(table);

        fputs(text, stdout);
}

void cli_table_print_section(CliTable *table)
{
        if (cli_table_get_n_rows(table) == 0)
                return;
        printf("\n");
        cli_table_print(table);
}

void cli_print_json(JsonNode *node)
{
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autofree char *text = NULL;

        json_generator_set_pretty(generator, isatty(STDOUT_FILENO));
        json_generator_set_indent(generator, 2);
        json_generator_set_root(generator, node);
        text = json_generator_to_data(generator, NULL);
        fputs(text, stdout);
        fputc('\n', stdout);
        json_node_unref(node);
}

char *cli_format_duration(guint64 usec)
{
        guint64 s = usec / G_USEC_PER_SEC;

        if (s == 0)
                return g_strdup_printf("%" G_GUINT64_FORMAT "ms", usec / 1000);
        if (s < 60)
                return g_strdup_printf("%" G_GUINT64_FORMAT "s", s);
        if (s < 3600)
                return g_strdup_printf("%" G_GUINT64_FORMAT "m %02" G_GUINT64_FORMAT "s", s / 60, s % 60);
        if (s < 86400)
                return g_strdup_printf("%" G_GUINT64_FORMAT "h %02" G_GUINT64_FORMAT "m", s / 3600,
                                       s / 60 % 60);
        return g_strdup_printf("%" G_GUINT64_FORMAT "d %02" G_GUINT64_FORMAT "h", s / 86400, s / 3600 % 24);
}

char *cli_format_time_ago(guint64 usec, guint64 now_usec)
{
        g_autofree char *duration = NULL;

        if (usec == 0)
                return g_strdup("never");
        /* A clock that went back, or a sub-second difference, is "now" to a reader. */
        if (usec >= now_usec || now_usec - usec < G_USEC_PER_SEC)
                return g_strdup("just now");
        duration = cli_format_duration(now_usec - usec);
        return g_strdup_printf("%s ago", duration);
}

char *cli_format_timestamp(guint64 usec)
{
        g_autoptr(GDateTime) time = NULL;

        if (usec / G_USEC_PER_SEC > (guint64)G_MAXINT64)
                return g_strdup("-");
        time = g_date_time_new_from_unix_local((gint64)(usec / G_USEC_PER_SEC));
        return time ? g_date_time_format(time, "%Y-%m-%d %H:%M:%S") : g_strdup("-");
}

/* Units that cli_format_value() prints after the number, so the label drops them. */
static const char *const cli_unit_suffixes[] = {"_bytes", "_ms", "_us", "_percent"};

static const char *cli_unit_of(const char *key)
{
        for (gsize i = 0; key && i < G_N_ELEMENTS(cli_unit_suffixes); i++)
                if (g_str_has_suffix(key, cli_unit_suffixes[i]))
                        return cli_unit_suffixes[i];
        return NULL;
}

static char *cli_format_unsigned(const char *unit, guint64 v)
{
        if (!unit)
                return g_strdup_printf("%" G_GUINT64_FORMAT, v);
        if (strcmp(unit, "_bytes") == 0)
                return g_format_size_full(v, G_FORMAT_SIZE_IEC_UNITS);
        if (strcmp(unit, "_percent") == 0)
                return g_strdup_printf("%" G_GUINT64_FORMAT "%%", v);
        return g_strdup_printf("%" G_GUINT64_FORMAT " %s", v, unit + 1);
}

static char *cli_format_strings(GVariant *value)
{
        g_autofree const char **strings = g_variant_get_strv(value, NULL);

        return strings[0] ? g_strjoinv(", ", (char **)strings) : g_strdup("(none)");
}

char *cli_format_value(const char *key, GVariant *value)
{
        const char *unit = cli_unit_of(key);

        switch (g_variant_classify(value)) {
        case G_VARIANT_CLASS_VARIANT: {
                g_autoptr(GVariant) child = g_variant_get_variant(value);

                return cli_format_value(key, child);
        }
        case G_VARIANT_CLASS_STRING:
        case G_VARIANT_CLASS_OBJECT_PATH:
        case G_VARIANT_CLASS_SIGNATURE:
                return g_strdup(g_variant_get_string(value, NULL));
        case G_VARIANT_CLASS_BOOLEAN:
                return g_strdup(g_variant_get_boolean(value) ? "yes" : "no");
        case G_VARIANT_CLASS_BYTE:
        case G_VARIANT_CLASS_UINT16:
        case G_VARIANT_CLASS_UINT32:
        case G_VARIANT_CLASS_UINT64:
                return cli_format_unsigned(unit, cli_variant_get_uint64(value, 0));
        case G_VARIANT_CLASS_INT16:
        case G_VARIANT_CLASS_INT32:
        case G_VARIANT_CLASS_INT64: {
                gint64 x = g_variant_is_of_type(value, G_VARIANT_TYPE_INT64)   ? g_variant_get_int64(value)
                           : g_variant_is_of_type(value, G_VARIANT_TYPE_INT32) ? g_variant_get_int32(value)
                                                                               : g_variant_get_int16(value);

                if (x >= 0)
                        return cli_format_unsigned(unit, (guint64)x);
                return g_strdup_printf("%" G_GINT64_FORMAT, x);
        }
        case G_VARIANT_CLASS_DOUBLE:
                if (unit && strcmp(unit, "_percent") == 0)
                        return g_strdup_printf("%.1f%%", g_variant_get_double(value));
                return g_strdup_printf("%.6g", g_variant_get_double(value));
        case G_VARIANT_CLASS_ARRAY:
                if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING_ARRAY) ||
                    g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH_ARRAY))
                        return cli_format_strings(value);
                if (g_variant_n_children(value) == 0)
                        return g_strdup("(none)");
                break;
        default:
                break;
        }
        return g_variant_print(value, FALSE);
}

char *cli_format_label(const char *key)
{
        static const char *const upper[] = {"cpu", "id", "pid", "rpc", "io"};
        const char *unit = cli_unit_of(key);
        g_autofree char *base = g_strndup(key, strlen(key) - (unit ? strlen(unit) : 0));
        g_auto(GStrv) words = g_strsplit(base, "_", -1);
        g_autofree char *joined = NULL;

        for (guint i = 0; words[i]; i++)
                for (gsize u = 0; u < G_N_ELEMENTS(upper); u++)
                        if (strcmp(words[i], upper[u]) == 0) {
                                g_free(words[i]);
                                words[i] = g_ascii_strup(upper[u], -1);
                        }
        joined = g_strjoinv(" ", words);
        if (joined[0])
                joined[0] = g_ascii_toupper(joined[0]);
        return g_steal_pointer(&joined);
}
