/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Human output of the D-Bus commands: table alignment, durations, values.
 */
#include "cli-print.h"

static void test_table(void)
{
        static const char *const headers[] = {"ID", "STATE", "PID", NULL};
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        g_autofree char *text = NULL;

        cli_table_add_row(table, "procmond", "running", "1234", NULL);
        cli_table_add_row(table, "fs", NULL, "", NULL);
        cli_table_add_row(table, "µmon", "stopped", "-", NULL);
        g_assert_cmpuint(cli_table_get_n_rows(table), ==, 3);
        text = cli_table_render(table);
        /* Columns two spaces apart, counted in characters; nothing after the last column. */
        g_assert_cmpstr(text, ==,
                        "ID        STATE    PID\n"
                        "procmond  running  1234\n"
                        "fs        -\n"
                        "µmon      stopped  -\n");
}

static void test_table_no_header_sanitized(void)
{
        g_autoptr(CliTable) table = cli_table_new(NULL, 2);
        g_autofree char *text = NULL;

        g_assert_cmpuint(cli_table_get_n_rows(table), ==, 0);
        cli_table_add_row(table, "Message:", "two\nlines\x1b[31m\ttab", NULL);
        cli_table_add_row(table, "Bad:", "caf\xc3", NULL);
        text = cli_table_render(table);
        /* Nothing the agent says reaches the terminal as a control sequence or a second line. */
        g_assert_cmpstr(text, ==,
                        "Message:  two lines?[31m tab\n"
                        "Bad:      caf?\n");
}

static void test_durations(void)
{
        static const struct {
                guint64 usec;
                const char *text;
        } cases[] = {
                {0, "0ms"},
                {350000, "350ms"},
                {G_USEC_PER_SEC, "1s"},
                {59 * G_USEC_PER_SEC, "59s"},
                {(4 * 60 + 9) * G_USEC_PER_SEC, "4m 09s"},
                {(guint64)(2 * 3600 + 5 * 60 + 30) * G_USEC_PER_SEC, "2h 05m"},
                {(guint64)(3 * 86400 + 4 * 3600) * G_USEC_PER_SEC, "3d 04h"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *text = cli_format_duration(cases[i].usec);

                g_assert_cmpstr(text, ==, cases[i].text);
        }
}

static void test_time_ago(void)
{
        guint64 now = G_GUINT64_CONSTANT(1700000000000000);
        g_autofree char *never = cli_format_time_ago(0, now);
        g_autofree char *just = cli_format_time_ago(now - 200000, now);
        g_autofree char *future = cli_format_time_ago(now + 5 * G_USEC_PER_SEC, now);
        g_autofree char *ago = cli_format_time_ago(now - 12 * G_USEC_PER_SEC, now);

        g_assert_cmpstr(never, ==, "never");
        g_assert_cmpstr(just, ==, "just now");
        g_assert_cmpstr(future, ==, "just now");
        g_assert_cmpstr(ago, ==, "12s ago");
}

static void test_values(void)
{
        static const struct {
                const char *key;
                const char *variant;
                const char *text;
        } cases[] = {
                {"event_types", "['a', 'b']", "a, b"},
                {"features", "@as []", "(none)"},
                {"min_memory_bytes", "uint64 67108864",
                 "64.0\u00a0MiB"}, /* g_format_size() keeps number and unit together */
                {"timeout_max_ms", "uint32 300000", "300000 ms"},
                {"p99_us", "uint64 180", "180 us"},
                {"min_cpu_percent", "uint32 5", "5%"},
                {"cpu_percent", "1.25", "1.2%"},
                {"max_concurrent_requests", "uint32 4", "4"},
                {"error_count", "int64 -1", "-1"},
                {"enabled", "true", "yes"},
                {NULL, "<'boxed'>", "boxed"},
                {NULL, "2.5", "2.5"},
                {NULL, "('a', 1)", "('a', 1)"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GVariant) value = g_variant_ref_sink(g_variant_new_parsed(cases[i].variant));
                g_autofree char *text = cli_format_value(cases[i].key, value);

                g_test_message("case %zu: %s", i, cases[i].variant);
                g_assert_cmpstr(text, ==, cases[i].text);
        }
}

static void test_labels(void)
{
        static const char *const cases[][2] = {
                {"max_concurrent_requests", "Max concurrent requests"},
                {"min_memory_bytes", "Min memory"},
                {"min_cpu_percent", "Min CPU"},
                {"timeout_default_ms", "Timeout default"},
                {"collector_status", "Collector status"},
                {"id", "ID"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *label = cli_format_label(cases[i][0]);

                g_assert_cmpstr(label, ==, cases[i][1]);
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli-print/table", test_table);
        g_test_add_func("/cli-print/table-no-header-sanitized", test_table_no_header_sanitized);
        g_test_add_func("/cli-print/durations", test_durations);
        g_test_add_func("/cli-print/time-ago", test_time_ago);
        g_test_add_func("/cli-print/values", test_values);
        g_test_add_func("/cli-print/labels", test_labels);
        return g_test_run();
}
