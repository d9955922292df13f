/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli health [ID]: Agent1.GetHealth, or Collector1.HealthCheck of
 * one collector.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli-bus.h"
#include "cli-print.h"
#include "cli-variant.h"

static JsonNode *cli_health_json(const char *id, const char *status, const char *details_name,
                                 GVariant *details)
{
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);
        JsonObject *object = json_object_new();

        json_node_take_object(node, object);
        if (id)
                json_object_set_string_member(object, "id", id);
        json_object_set_string_member(object, "status", status);
        json_object_set_member(object, details_name, cli_variant_to_json(details));
        return node;
}

static void cli_health_print_agent(const char *status, GVariant *checks)
{
        static const char *const headers[] = {"CHECK", "STATUS", "MESSAGE", NULL};
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        GVariantIter iter;
        const char *name;
        GVariant *check;

        g_variant_iter_init(&iter, checks);
        while (g_variant_iter_next(&iter, "{&sv}", &name, &check)) {
                if (g_variant_is_of_type(check, G_VARIANT_TYPE_VARDICT))
                        cli_table_add_row(table, name, cli_variant_lookup_string(check, "status", NULL),
                                          cli_variant_lookup_string(check, "message", ""), NULL);
                g_variant_unref(check);
        }
        printf("Health: %s\n", status);
        cli_table_print_section(table);
}

static void cli_health_print_components(GVariant *components)
{
        static const char *const headers[] = {"COMPONENT", "STATUS", "MESSAGE", NULL};
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        GVariantIter iter;
        GVariant *component;

        if (!g_variant_is_of_type(components, G_VARIANT_TYPE("aa{sv}")))
                return;
        g_variant_iter_init(&iter, components);
        while ((component = g_variant_iter_next_value(&iter))) {
                cli_table_add_row(table, cli_variant_lookup_string(component, "name", NULL),
                                  cli_variant_lookup_string(component, "status", NULL),
                                  cli_variant_lookup_string(component, "message", ""), NULL);
                g_variant_unref(component);
        }
        cli_table_print_section(table);
}

static int cli_compare_entries(gconstpointer a, gconstpointer b)
{
        const char *key_a, *key_b;

        g_variant_get_child(*(GVariant *const *)a, 0, "&s", &key_a);
        g_variant_get_child(*(GVariant *const *)b, 0, "&s", &key_b);
        return strcmp(key_a, key_b);
}

/* The collector's figures, sorted by name so that related ones ("eventbus.*") stand together. */
static void cli_health_print_metrics(GVariant *metrics)
{
        static const char *const headers[] = {"METRIC", "VALUE", NULL};
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        GVariantIter iter;
        GVariant *entry;

        if (!g_variant_type_is_subtype_of(g_variant_get_type(metrics), G_VARIANT_TYPE("a{s*}")))
                return;
        g_variant_iter_init(&iter, metrics);
        while ((entry = g_variant_iter_next_value(&iter)))
                g_ptr_array_add(entries, entry);
        g_ptr_array_sort(entries, cli_compare_entries);
        for (guint i = 0; i < entries->len; i++) {
                g_autoptr(GVariant) value = g_variant_get_child_value(entries->pdata[i], 1);
                g_autofree char *text = cli_format_value(NULL, value);
                const char *name;

                g_variant_get_child(entries->pdata[i], 0, "&s", &name);
                cli_table_add_row(table, name, text, NULL);
        }
        cli_table_print_section(table);
}

static void cli_health_print_collector(const char *id, const char *status, GVariant *details)
{
        g_autoptr(CliTable) table = cli_table_new(NULL, 2);
        g_autoptr(GVariant) components = g_variant_lookup_value(details, "components", NULL);
        g_autoptr(GVariant) metrics = g_variant_lookup_value(details, "metrics", NULL);
        guint64 now = (guint64)g_get_real_time();
        GVariantIter iter;
        const char *key;
        GVariant *value;

        printf("%s: %s\n", id, status);
        g_variant_iter_init(&iter, details);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_autofree char *text = NULL;
                g_autofree char *label = NULL;

                if (strcmp(key, "last_heartbeat_us") == 0) {
                        text = cli_format_time_ago(cli_variant_get_uint64(value, 0), now);
                        label = g_strdup("Last heartbeat:");
                } else if (strcmp(key, "uptime_ms") == 0) {
                        guint64 ms = cli_variant_get_uint64(value, 0);

                        text = ms ? cli_format_duration(ms * 1000) : g_strdup("-");
                        label = g_strdup("Uptime:");
                } else if (strcmp(key, "components") != 0 && strcmp(key, "metrics") != 0) {
                        g_autofree char *base = cli_format_label(key);

                        text = cli_format_value(key, value);
                        label = g_strconcat(base, ":", NULL);
                }
                if (label)
                        cli_table_add_row(table, label, text, NULL);
                g_variant_unref(value);
        }
        cli_table_print(table);
        if (components)
                cli_health_print_components(components);
        if (metrics)
                cli_health_print_metrics(metrics);
}

gboolean cli_health(CliOptions *options, int argc, char **argv, GError **error)
{
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) details = NULL;
        g_autofree char *path = NULL;
        const char *status, *id = NULL;

        if (!cli_command_parse(options, "health [ID]",
                               "Without ID, the agent's health and each of its checks.\n"
                               "With ID, collector ID's own health check: components and figures.",
                               NULL, &argc, &argv, 0, 1, error))
                return FALSE;
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        if (argc < 2) {
                reply = cli_bus_call(bus, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, "GetHealth", NULL,
                                     "(sa{sv})", CLI_BUS_TIMEOUT_DEFAULT, error);
        } else {
                id = argv[1];
                path = cli_bus_find_collector(bus, id, error);
                if (!path)
                        return FALSE;
                /* One RPC to the collector, within the agent's RPC timeout: longer than sd-bus's default. */
                reply = cli_bus_call(bus, path, CLI_BUS_COLLECTOR_INTERFACE, "HealthCheck", NULL, "(sa{sv})",
                                     CLI_BUS_TIMEOUT_LONG, error);
        }
        if (!reply)
                return FALSE;
        g_variant_get(reply, "(&s@a{sv})", &status, &details);

        if (options->json)
                cli_print_json(cli_health_json(id, status, id ? "details" : "checks", details));
        else if (id)
                cli_health_print_collector(id, status, details);
        else
                cli_health_print_agent(status, details);
        return TRUE;
}
