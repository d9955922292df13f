/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GetMetrics in the Prometheus text format: names, labels, grouping, types.
 */
#include <math.h>
#include <string.h>

#include "cli-prometheus.h"

static char *format(const char *metrics_text)
{
        g_autoptr(GVariant) metrics = g_variant_ref_sink(g_variant_new_parsed(metrics_text));

        return cli_prometheus_format(metrics);
}

static void test_flat(void)
{
        g_autofree char *text = format("{'published': <uint64 10>, 'queue_high_water': <uint32 4>, "
                                       "'metrics_enabled': <true>, 'ratio': <0.25>, 'name': <'ignored'>}");

        g_assert_cmpstr(text, ==,
                        "# TYPE daemoneye_published counter\n"
                        "daemoneye_published 10\n"
                        "# TYPE daemoneye_queue_high_water gauge\n"
                        "daemoneye_queue_high_water 4\n"
                        "# TYPE daemoneye_metrics_enabled gauge\n"
                        "daemoneye_metrics_enabled 1\n"
                        "# TYPE daemoneye_ratio gauge\n"
                        "daemoneye_ratio 0.25\n");
}

static void test_nested_path(void)
{
        g_autofree char *text = format("{'latency': <{'count': <uint64 3>, 'p50_us': <uint64 28>}>}");

        g_assert_cmpstr(text, ==,
                        "# TYPE daemoneye_latency_count counter\n"
                        "daemoneye_latency_count 3\n"
                        "# TYPE daemoneye_latency_p50_us gauge\n"
                        "daemoneye_latency_p50_us 28\n");
}

static void test_topics_become_labels(void)
{
        g_autofree char *text =
                format("{'topics': <{'events.process': <{'published': <uint64 5>, 'dropped': <uint64 1>}>, "
                       "'control': <{'published': <uint64 2>, 'dropped': <uint64 0>}>}>}");

        /* One family per counter, every topic's line under it. */
        g_assert_cmpstr(text, ==,
                        "# TYPE daemoneye_topic_published counter\n"
                        "daemoneye_topic_published{topic=\"events.process\"} 5\n"
                        "daemoneye_topic_published{topic=\"control\"} 2\n"
                        "# TYPE daemoneye_topic_dropped counter\n"
                        "daemoneye_topic_dropped{topic=\"events.process\"} 1\n"
                        "daemoneye_topic_dropped{topic=\"control\"} 0\n");
}

static void test_arrays_with_ids_become_labels(void)
{
        g_autofree char *text = format(
                "{'collectors': <[{'id': <'procmond'>, 'state': <'running'>, 'restart_count': <uint32 2>}, "
                "{'id': <'net\"mon'>, 'state': <'failed'>, 'restart_count': <uint32 5>}]>, "
                "'clients': <[{'client_id': <'cli-1'>, 'published': <uint64 9>}, {'published': <uint64 "
                "1>}]>}");

        g_assert_cmpstr(text, ==,
                        "# TYPE daemoneye_collector_restart_count counter\n"
                        "daemoneye_collector_restart_count{collector=\"procmond\"} 2\n"
                        "daemoneye_collector_restart_count{collector=\"net\\\"mon\"} 5\n"
                        "# TYPE daemoneye_collector_info gauge\n"
                        "daemoneye_collector_info{collector=\"procmond\",state=\"running\"} 1\n"
                        "daemoneye_collector_info{collector=\"net\\\"mon\",state=\"failed\"} 1\n"
                        "# TYPE daemoneye_client_published counter\n"
                        "daemoneye_client_published{client=\"cli-1\"} 9\n");
}

static void test_sanitize(void)
{
        g_autofree char *text = format("{'odd key-name.x': <uint32 1>, 'topics': <{'a\\\\b\\nc': "
                                       "<{'published': <uint64 1>}>}>}");
        g_autofree char *name = cli_prometheus_sanitize_name("a.b-c d:e_9");

        g_assert_cmpstr(name, ==, "a_b_c_d:e_9");
        g_assert_cmpstr(text, ==,
                        "# TYPE daemoneye_odd_key_name_x gauge\n"
                        "daemoneye_odd_key_name_x 1\n"
                        "# TYPE daemoneye_topic_published counter\n"
                        "daemoneye_topic_published{topic=\"a\\\\b\\nc\"} 1\n");
}

static void test_types(void)
{
        static const char *const cases[][2] = {
                {"'published': <uint64 1>", "counter"},
                {"'rpc_requests': <uint64 1>", "counter"},
                {"'p50_us': <uint64 1>", "gauge"},
                {"'queued_bytes': <uint64 1>", "gauge"},
                {"'connected_seconds': <uint64 1>", "gauge"},
                {"'queue_high_water': <uint64 1>", "gauge"},
                {"'rpc_pending': <uint64 1>", "gauge"},
                {"'connections': <uint32 1>", "gauge"},
                {"'restart_count': <uint32 1>", "counter"},
                {"'bytes_total': <uint32 1>", "counter"},
                {"'pid': <int32 1>", "gauge"},
                {"'ratio': <1.0>", "gauge"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *metrics = g_strdup_printf("{%s}", cases[i][0]);
                g_autofree char *text = format(metrics);
                g_auto(GStrv) words = g_strsplit(text, " ", 4);

                g_test_message("case %zu: %s", i, cases[i][0]);
                g_assert_cmpstr(words[0], ==, "#");
                g_assert_true(g_str_has_prefix(words[3], cases[i][1]));
        }
}

static void test_special_numbers(void)
{
        g_autoptr(GVariant) metrics = NULL;
        g_autofree char *text = NULL;
        GVariantBuilder builder;

        g_variant_builder_init(&builder, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&builder, "{sv}", "a", g_variant_new_double(INFINITY));
        g_variant_builder_add(&builder, "{sv}", "b", g_variant_new_double(-INFINITY));
        g_variant_builder_add(&builder, "{sv}", "c", g_variant_new_double(NAN));
        g_variant_builder_add(&builder, "{sv}", "d", g_variant_new_int64(-5));
        g_variant_builder_add(&builder, "{sv}", "e", g_variant_new_uint64(G_MAXUINT64));
        metrics = g_variant_ref_sink(g_variant_builder_end(&builder));
        text = cli_prometheus_format(metrics);
        g_assert_nonnull(strstr(text, "daemoneye_a +Inf\n"));
        g_assert_nonnull(strstr(text, "daemoneye_b -Inf\n"));
        g_assert_nonnull(strstr(text, "daemoneye_c NaN\n"));
        g_assert_nonnull(strstr(text, "daemoneye_d -5\n"));
        g_assert_nonnull(strstr(text, "daemoneye_e 18446744073709551615\n"));
}

/* Whatever the input, every line is a # TYPE or a valid sample, and each family is declared once. */
static void test_well_formed(void)
{
        g_autoptr(GRegex) sample =
                g_regex_new("^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
                            "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})? \\S+$",
                            0, 0, NULL);
        g_autoptr(GHashTable) declared = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autofree char *text = format(
                "{'published': <uint64 1>, 'topics': <{'x.y': <{'published': <uint64 1>}>}>, "
                "'latency': <{'count': <uint64 1>, '9lives': <uint64 2>}>, "
                "'collectors': <[{'id': <'p'>, '__reserved': <'r'>, 'events_published': <uint64 3>}]>, "
                "'clients': <@aa{sv} []>, 'nums': <[1, 2]>}");
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        g_assert_true(g_str_has_suffix(text, "\n"));
        for (guint i = 0; lines[i] && *lines[i]; i++) {
                if (g_str_has_prefix(lines[i], "# TYPE ")) {
                        g_auto(GStrv) parts = g_strsplit(lines[i] + strlen("# TYPE "), " ", 2);

                        g_assert_true(g_hash_table_add(declared, g_strdup(parts[0])));
                        continue;
                }
                g_test_message("line: %s", lines[i]);
                g_assert_true(g_regex_match(sample, lines[i], 0, NULL));
        }
        g_assert_true(g_hash_table_contains(declared, "daemoneye_latency_9lives"));
        g_assert_nonnull(strstr(text, "daemoneye_collector_info{collector=\"p\",l___reserved=\"r\"} 1\n"));
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli-prometheus/flat", test_flat);
        g_test_add_func("/cli-prometheus/nested-path", test_nested_path);
        g_test_add_func("/cli-prometheus/topics-become-labels", test_topics_become_labels);
        g_test_add_func("/cli-prometheus/arrays-with-ids-become-labels", test_arrays_with_ids_become_labels);
        g_test_add_func("/cli-prometheus/sanitize", test_sanitize);
        g_test_add_func("/cli-prometheus/types", test_types);
        g_test_add_func("/cli-prometheus/special-numbers", test_special_numbers);
        g_test_add_func("/cli-prometheus/well-formed", test_well_formed);
        return g_test_run();
}
