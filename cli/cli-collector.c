/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli start|stop|restart|pause|resume ID and capabilities ID:
 * org.daemoneye.Collector1 methods on the object ListCollectors names.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli-bus.h"
#include "cli-collector.h"
#include "cli-print.h"
#include "cli-variant.h"

typedef struct {
        const char *command;
        const char *method;
        const char *summary;
} CliCollectorAction;

static const CliCollectorAction cli_collector_actions[] = {
        {"start", "Start", "Start collector ID and wait until it runs."},
        {"stop", "Stop", "Stop collector ID gracefully and wait until it stopped."},
        {"restart", "Restart", "Restart collector ID."},
        {"pause", "Pause", "Pause collector ID: it stays connected but stops collecting."},
        {"resume", "Resume", "Resume paused collector ID."},
};

static GVariant *cli_collector_action_args(const char *method)
{
        if (strcmp(method, "Start") == 0 || strcmp(method, "Restart") == 0)
                return g_variant_new("(@a{sv})", g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
        if (strcmp(method, "Stop") == 0)
                return g_variant_new("(b)", TRUE); /* graceful */
        return NULL;
}

gboolean cli_collector_report(sd_bus *bus, const char *path, const char *action, gboolean json,
                              GError **error)
{
        g_autoptr(GVariant) properties = cli_bus_get_all(bus, path, CLI_BUS_COLLECTOR_INTERFACE, error);
        const char *id, *state;
        guint64 pid;

        if (!properties)
                return FALSE;
        if (json) {
                JsonNode *node = cli_properties_to_json(properties);

                json_object_set_string_member(json_node_get_object(node), "action", action);
                cli_print_json(node);
                return TRUE;
        }
        id = cli_variant_lookup_string(properties, "Id", "?");
        state = cli_variant_lookup_string(properties, "State", "unknown");
        pid = cli_variant_lookup_uint64(properties, "Pid", 0);
        if (pid != 0)
                printf("%s: %s (pid %" G_GUINT64_FORMAT ")\n", id, state, pid);
        else
                printf("%s: %s\n", id, state);
        return TRUE;
}

gboolean cli_collector_action(CliOptions *options, int argc, char **argv, GError **error)
{
        const CliCollectorAction *action = NULL;
        g_autofree char *parameters = NULL;
        g_autofree char *path = NULL;
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) reply = NULL;

        for (gsize i = 0; i < G_N_ELEMENTS(cli_collector_actions); i++)
                if (strcmp(argv[0], cli_collector_actions[i].command) == 0)
                        action = &cli_collector_actions[i];
        g_return_val_if_fail(action != NULL, FALSE);

        parameters = g_strdup_printf("%s ID", action->command);
        if (!cli_command_parse(options, parameters, action->summary, NULL, &argc, &argv, 1, 1, error))
                return FALSE;
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        path = cli_bus_find_collector(bus, argv[1], error);
        if (!path)
                return FALSE;
        reply = cli_bus_call(bus, path, CLI_BUS_COLLECTOR_INTERFACE, action->method,
                             cli_collector_action_args(action->method), NULL, CLI_BUS_TIMEOUT_LONG, error);
        if (!reply)
                return FALSE;
        return cli_collector_report(bus, path, action->command, options->json, error);
}

/* The keys GetCapabilities documents first, in a sensible order; any others after them. */
static const char *const cli_capability_keys[] = {
        "event_types",        "operations",      "platforms",
        "features",           "capabilities",    "max_concurrent_requests",
        "min_memory_bytes",   "min_cpu_percent", "timeout_min_ms",
        "timeout_default_ms", "timeout_max_ms",
};

static void cli_capabilities_add_row(CliTable *table, const char *key, GVariant *value)
{
        g_autofree char *label = cli_format_label(key);
        g_autofree char *label_colon = g_strconcat(label, ":", NULL);
        g_autofree char *text = cli_format_value(key, value);

        cli_table_add_row(table, label_colon, text, NULL);
}

static void cli_capabilities_print(const char *id, GVariant *capabilities)
{
        g_autoptr(CliTable) table = cli_table_new(NULL, 2);
        GVariantIter iter;
        const char *key;
        GVariant *value;

        for (gsize i = 0; i < G_N_ELEMENTS(cli_capability_keys); i++) {
                g_autoptr(GVariant) known =
                        g_variant_lookup_value(capabilities, cli_capability_keys[i], NULL);

                if (known)
                        cli_capabilities_add_row(table, cli_capability_keys[i], known);
        }
        g_variant_iter_init(&iter, capabilities);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                if (!g_strv_contains(cli_capability_keys, key))
                        cli_capabilities_add_row(table, key, value);
                g_variant_unref(value);
        }
        printf("Capabilities of %s:\n", id);
        cli_table_print(table);
}

gboolean cli_capabilities(CliOptions *options, int argc, char **argv, GError **error)
{
        g_autofree char *path = NULL;
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) capabilities = NULL;

        if (!cli_command_parse(options, "capabilities ID",
                               "Show the event types, operations and limits of collector ID.", NULL, &argc,
                               &argv, 1, 1, error))
                return FALSE;
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        path = cli_bus_find_collector(bus, argv[1], error);
        if (!path)
                return FALSE;
        capabilities = cli_bus_call_one(bus, path, CLI_BUS_COLLECTOR_INTERFACE, "GetCapabilities", NULL,
                                        "(a{sv})", CLI_BUS_TIMEOUT_LONG, error);
        if (!capabilities)
                return FALSE;
        if (options->json) {
                JsonNode *node = cli_variant_to_json(capabilities);

                json_object_set_string_member(json_node_get_object(node), "id", argv[1]);
                cli_print_json(node);
        } else {
                cli_capabilities_print(argv[1], capabilities);
        }
        return TRUE;
}
