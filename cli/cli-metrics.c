/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli metrics [--prometheus]: Agent1.GetMetrics as a summary, as
 * JSON (the whole a{sv}), or in the Prometheus text format.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli-bus.h"
#include "cli-print.h"
#include "cli-prometheus.h"
#include "cli-variant.h"

#define N(dict, key) cli_variant_lookup_uint64(dict, key, 0)

static gboolean has(GVariant *dict, const char *key)
{
        g_autoptr(GVariant) value = g_variant_lookup_value(dict, key, NULL);

        return value != NULL;
}

static void add_line(CliTable *table, const char *label, char *text)
{
        cli_table_add_row(table, label, text, NULL);
        g_free(text);
}

static void cli_metrics_print_broker(GVariant *metrics)
{
        g_autoptr(CliTable) table = cli_table_new(NULL, 2);
        g_autoptr(GVariant) latency = g_variant_lookup_value(metrics, "latency", G_VARIANT_TYPE_VARDICT);

        if (has(metrics, "published"))
                add_line(table, "Messages:",
                         g_strdup_printf("%" G_GUINT64_FORMAT " published, %" G_GUINT64_FORMAT
                                         " delivered, %" G_GUINT64_FORMAT " dropped",
                                         N(metrics, "published"), N(metrics, "delivered"),
                                         N(metrics, "dropped")));
        if (has(metrics, "connections"))
                add_line(table, "Connections:",
                         g_strdup_printf("%" G_GUINT64_FORMAT " open, %" G_GUINT64_FORMAT
                                         " accepted, %" G_GUINT64_FORMAT " refused",
                                         N(metrics, "connections"), N(metrics, "connections_accepted"),
                                         N(metrics, "connections_refused")));
        if (has(metrics, "subscriptions"))
                add_line(table, "Subscriptions:",
                         g_strdup_printf("%" G_GUINT64_FORMAT, N(metrics, "subscriptions")));
        if (has(metrics, "queue_high_water"))
                add_line(table, "Queue high water:",
                         g_strdup_printf("%" G_GUINT64_FORMAT " messages", N(metrics, "queue_high_water")));
        if (has(metrics, "protocol_errors"))
                add_line(table, "Errors:",
                         g_strdup_printf("%" G_GUINT64_FORMAT " protocol errors, %" G_GUINT64_FORMAT
                                         " unrouted responses",
                                         N(metrics, "protocol_errors"), N(metrics, "unrouted_responses")));
        if (latency && N(latency, "count") > 0)
                add_line(table, "Latency:",
                         g_strdup_printf("p50 %" G_GUINT64_FORMAT " us, p99 %" G_GUINT64_FORMAT
                                         " us, max %" G_GUINT64_FORMAT " us (%" G_GUINT64_FORMAT
                                         " messages)",
                                         N(latency, "p50_us"), N(latency, "p99_us"), N(latency, "max_us"),
                                         N(latency, "count")));
        if (has(metrics, "metrics_enabled"))
                add_line(table, "Detailed metrics:",
                         g_strdup(N(metrics, "metrics_enabled") ? "enabled"
                                                                : "disabled ([broker] enable_metrics)"));
        cli_table_print(table);
}

static void cli_metrics_print_topics(GVariant *metrics)
{
        static const char *const headers[] = {"TOPIC", "PUBLISHED", "DELIVERED", "DROPPED", NULL};
        g_autoptr(GVariant) topics = g_variant_lookup_value(metrics, "topics", G_VARIANT_TYPE_VARDICT);
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        GVariantIter iter;
        const char *prefix;
        GVariant *counts;

        if (!topics)
                return;
        g_variant_iter_init(&iter, topics);
        while (g_variant_iter_next(&iter, "{&sv}", &prefix, &counts)) {
                if (g_variant_is_of_type(counts, G_VARIANT_TYPE_VARDICT)) {
                        g_autofree char *published =
                                g_strdup_printf("%" G_GUINT64_FORMAT, N(counts, "published"));
                        g_autofree char *delivered =
                                g_strdup_printf("%" G_GUINT64_FORMAT, N(counts, "delivered"));
                        g_autofree char *dropped =
                                g_strdup_printf("%" G_GUINT64_FORMAT, N(counts, "dropped"));

                        cli_table_add_row(table, prefix, published, delivered, dropped, NULL);
                }
                g_variant_unref(counts);
        }
        cli_table_print_section(table);
}

static void cli_metrics_print_collectors(GVariant *metrics)
{
        static const char *const headers[] = {"COLLECTOR", "STATE", "RESTARTS", "EVENTS", NULL};
        g_autoptr(GVariant) collectors =
                g_variant_lookup_value(metrics, "collectors", G_VARIANT_TYPE("aa{sv}"));
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        GVariantIter iter;
        GVariant *collector;

        if (!collectors)
                return;
        g_variant_iter_init(&iter, collectors);
        while ((collector = g_variant_iter_next_value(&iter))) {
                g_autofree char *restarts =
                        g_strdup_printf("%" G_GUINT64_FORMAT, N(collector, "restart_count"));
                g_autofree char *events =
                        g_strdup_printf("%" G_GUINT64_FORMAT, N(collector, "events_published"));

                cli_table_add_row(table, cli_variant_lookup_string(collector, "id", NULL),
                                  cli_variant_lookup_string(collector, "state", NULL), restarts, events,
                                  NULL);
                g_variant_unref(collector);
        }
        cli_table_print_section(table);
}

gboolean cli_metrics(CliOptions *options, int argc, char **argv, GError **error)
{
        gboolean prometheus = FALSE;
        const GOptionEntry entries[] = {
                {"prometheus", 'p', 0, G_OPTION_ARG_NONE, &prometheus,
                 "Print the Prometheus text format (for a textfile collector or a scrape proxy)", NULL},
                {NULL},
        };
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) metrics = NULL;

        if (!cli_command_parse(options, "metrics",
                               "Show the broker's counters and each collector's figures.", entries, &argc,
                               &argv, 0, 0, error))
                return FALSE;
        if (prometheus && options->json) {
                g_set_error_literal(error, CLI_ERROR, CLI_ERROR_USAGE,
                                    "metrics: --json and --prometheus exclude each other");
                return FALSE;
        }
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        metrics = cli_bus_call_one(bus, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, "GetMetrics", NULL,
                                   "(a{sv})", CLI_BUS_TIMEOUT_DEFAULT, error);
        if (!metrics)
                return FALSE;

        if (options->json) {
                cli_print_json(cli_variant_to_json(metrics));
        } else if (prometheus) {
                g_autofree char *text = cli_prometheus_format(metrics);

                fputs(text, stdout);
        } else {
                cli_metrics_print_broker(metrics);
                cli_metrics_print_topics(metrics);
                cli_metrics_print_collectors(metrics);
        }
        return TRUE;
}
