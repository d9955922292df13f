/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli status, collectors, shutdown [ID] and reload: the agent as a
 * whole, through org.daemoneye.Agent1 and the collectors' properties.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli-bus.h"
#include "cli-collector.h"
#include "cli-print.h"
#include "cli-variant.h"

/* Agent1.GetHealth's overall status; "unknown" when the agent cannot say. */
static char *cli_agent_health(sd_bus *bus)
{
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        const char *status;

        reply = cli_bus_call(bus, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, "GetHealth", NULL, "(sa{sv})",
                             CLI_BUS_TIMEOUT_DEFAULT, &error);
        if (!reply)
                return g_strdup("unknown");
        g_variant_get(reply, "(&s@a{sv})", &status, NULL);
        return g_strdup(status);
}

static void cli_status_print(GVariant *properties, const char *health, guint n_collectors, guint n_running)
{
        g_autoptr(CliTable) table = cli_table_new(NULL, 2);
        guint64 start = cli_variant_lookup_uint64(properties, "StartTime", 0);
        guint64 now = (guint64)g_get_real_time();
        g_autofree char *started = NULL;
        g_autofree char *clients = NULL;
        g_autofree char *routed = NULL;
        g_autofree char *collectors = NULL;

        if (start) {
                g_autofree char *when = cli_format_timestamp(start);
                g_autofree char *up = cli_format_duration(now > start ? now - start : 0);

                started = g_strdup_printf("%s (up %s)", when, up);
        }
        clients = g_strdup_printf("%" G_GUINT64_FORMAT,
                                  cli_variant_lookup_uint64(properties, "ConnectedClients", 0));
        routed = g_strdup_printf("%" G_GUINT64_FORMAT,
                                 cli_variant_lookup_uint64(properties, "MessagesRouted", 0));
        collectors = g_strdup_printf("%u configured, %u running", n_collectors, n_running);

        cli_table_add_row(table, "Version:", cli_variant_lookup_string(properties, "Version", NULL), NULL);
        cli_table_add_row(table, "State:", cli_variant_lookup_string(properties, "State", NULL), NULL);
        cli_table_add_row(table, "Health:", health, NULL);
        cli_table_add_row(table, "Started:", started, NULL);
        cli_table_add_row(
                table, "Broker socket:", cli_variant_lookup_string(properties, "BrokerSocket", NULL), NULL);
        cli_table_add_row(table, "Connected clients:", clients, NULL);
        cli_table_add_row(table, "Messages routed:", routed, NULL);
        cli_table_add_row(table, "Collectors:", collectors, NULL);
        cli_table_print(table);
}

gboolean cli_status(CliOptions *options, int argc, char **argv, GError **error)
{
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) properties = NULL;
        g_autoptr(GVariant) collectors = NULL;
        g_autofree char *health = NULL;
        GVariantIter iter;
        const char *state;
        guint n_running = 0;

        if (!cli_command_parse(options, "status", "Show the agent's version, state, health and collectors.",
                               NULL, &argc, &argv, 0, 0, error))
                return FALSE;
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        properties = cli_bus_get_all(bus, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, error);
        if (!properties)
                return FALSE;
        collectors = cli_bus_list_collectors(bus, error);
        if (!collectors)
                return FALSE;
        health = cli_agent_health(bus);

        g_variant_iter_init(&iter, collectors);
        while (g_variant_iter_next(&iter, "(&s&s&o)", NULL, &state, NULL))
                if (strcmp(state, "running") == 0)
                        n_running++;

        if (options->json) {
                JsonNode *node = cli_properties_to_json(properties);
                JsonObject *object = json_node_get_object(node);

                json_object_set_string_member(object, "health", health);
                json_object_set_int_member(object, "collectors", (gint64)g_variant_n_children(collectors));
                json_object_set_int_member(object, "collectors_running", n_running);
                cli_print_json(node);
        } else {
                cli_status_print(properties, health, (guint)g_variant_n_children(collectors), n_running);
        }
        return TRUE;
}

static void cli_collectors_add_row(CliTable *table, GVariant *properties, guint64 now)
{
        guint64 pid = cli_variant_lookup_uint64(properties, "Pid", 0);
        guint64 uptime = cli_variant_lookup_uint64(properties, "Uptime", 0);
        g_autofree char *pid_text = pid ? g_strdup_printf("%" G_GUINT64_FORMAT, pid) : NULL;
        g_autofree char *restarts = g_strdup_printf(
                "%" G_GUINT64_FORMAT, cli_variant_lookup_uint64(properties, "RestartCount", 0));
        g_autofree char *uptime_text = uptime ? cli_format_duration(uptime) : NULL;
        g_autofree char *heartbeat =
                cli_format_time_ago(cli_variant_lookup_uint64(properties, "LastHeartbeat", 0), now);

        cli_table_add_row(table, cli_variant_lookup_string(properties, "Id", NULL),
                          cli_variant_lookup_string(properties, "Type", NULL),
                          cli_variant_lookup_string(properties, "State", NULL),
                          cli_variant_lookup_string(properties, "Health", NULL), pid_text, restarts,
                          uptime_text, heartbeat, NULL);
}

gboolean cli_collectors(CliOptions *options, int argc, char **argv, GError **error)
{
        static const char *const headers[] = {"ID",       "TYPE",   "STATE",          "HEALTH", "PID",
                                              "RESTARTS", "UPTIME", "LAST-HEARTBEAT", NULL};
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) collectors = NULL;
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        g_autoptr(JsonNode) node = json_node_new(JSON_NODE_ARRAY);
        JsonArray *array = json_array_new();
        guint64 now = (guint64)g_get_real_time();
        GVariantIter iter;
        const char *path;

        json_node_take_array(node, array);
        if (!cli_command_parse(options, "collectors",
                               "List the collectors with their state, health and uptime.", NULL, &argc,
                               &argv, 0, 0, error))
                return FALSE;
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        collectors = cli_bus_list_collectors(bus, error);
        if (!collectors)
                return FALSE;

        g_variant_iter_init(&iter, collectors);
        while (g_variant_iter_next(&iter, "(&s&s&o)", NULL, NULL, &path)) {
                g_autoptr(GVariant) properties =
                        cli_bus_get_all(bus, path, CLI_BUS_COLLECTOR_INTERFACE, error);
                JsonNode *element;

                if (!properties)
                        return FALSE;
                element = cli_properties_to_json(properties);
                json_object_set_string_member(json_node_get_object(element), "path", path);
                json_array_add_element(array, element);
                cli_collectors_add_row(table, properties, now);
        }

        if (options->json)
                cli_print_json(g_steal_pointer(&node));
        else if (cli_table_get_n_rows(table) == 0)
                printf("No collectors configured.\n");
        else
                cli_table_print(table);
        return TRUE;
}

/* An agent-wide action's outcome: {"action", "target"} with --json, else "daemoneye-agent: TEXT". */
static void cli_agent_report(gboolean json, const char *action, const char *target, const char *text)
{
        JsonNode *node;
        JsonObject *object;

        if (!json) {
                printf("daemoneye-agent: %s\n", text);
                return;
        }
        node = json_node_new(JSON_NODE_OBJECT);
        object = json_object_new();
        json_node_take_object(node, object);
        json_object_set_string_member(object, "action", action);
        if (target)
                json_object_set_string_member(object, "target", target);
        cli_print_json(node);
}

static gboolean cli_agent_is_on_bus(sd_bus *bus)
{
        g_auto(sd_bus_error) bus_error = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        int has_owner = 1;

        if (sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", &bus_error, &reply, "s", CLI_BUS_SERVICE) < 0 ||
            sd_bus_message_read(reply, "b", &has_owner) < 0)
                return TRUE; /* cannot tell: assume the worst */
        return has_owner;
}

/*
 * Agent1.Shutdown. The agent may leave the bus before its reply leaves it
 * (the bus then answers NoReply): that is what was asked for, when the name
 * is gone afterwards.
 */
static gboolean cli_shutdown_agent(sd_bus *bus, gboolean json, GError **error)
{
        g_auto(sd_bus_error) bus_error = SD_BUS_ERROR_NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        int r;

        /* The agent may stop its collectors before it answers. */
        (void)sd_bus_set_method_call_timeout(bus, CLI_BUS_TIMEOUT_LONG);
        r = sd_bus_call_method(bus, CLI_BUS_SERVICE, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, "Shutdown",
                               &bus_error, &reply, "");
        if (r < 0 &&
            !(sd_bus_error_has_name(&bus_error, SD_BUS_ERROR_NO_REPLY) && !cli_agent_is_on_bus(bus))) {
                cli_bus_set_call_error(error, bus, &bus_error, r);
                return FALSE;
        }
        cli_agent_report(json, "shutdown", "daemoneye-agent", "shutting down");
        return TRUE;
}

gboolean cli_shutdown(CliOptions *options, int argc, char **argv, GError **error)
{
        gboolean emergency = FALSE;
        gint64 timeout_ms = G_MININT64; /* not given */
        g_autofree char *reason = NULL;
        const GOptionEntry entries[] = {
                {"emergency", 0, 0, G_OPTION_ARG_NONE, &emergency,
                 "Stop the collector at once instead of gracefully", NULL},
                {"timeout", 0, 0, G_OPTION_ARG_INT64, &timeout_ms,
                 "Give a graceful shutdown this long (default: the agent's configured timeout)", "MS"},
                {"reason", 0, 0, G_OPTION_ARG_STRING, &reason,
                 "Why, for the collector's and the agent's logs", "TEXT"},
                {NULL},
        };
        g_autoptr(sd_bus) bus = NULL;
        g_autofree char *path = NULL;
        g_autoptr(GVariant) reply = NULL;
        guint64 call_timeout;

        if (!cli_command_parse(options, "shutdown [ID]",
                               "Without ID, shut the agent down (it stops its collectors gracefully).\n"
                               "With ID, shut collector ID down.",
                               entries, &argc, &argv, 0, 1, error))
                return FALSE;
        if (timeout_ms != G_MININT64 && (timeout_ms > G_MAXUINT32 || timeout_ms < 0)) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                            "shutdown: --timeout %" G_GINT64_FORMAT " is out of range (0 to %u ms)",
                            timeout_ms, G_MAXUINT32);
                return FALSE;
        }
        if (argc < 2 && (emergency || timeout_ms != G_MININT64 || reason)) {
                g_set_error_literal(error, CLI_ERROR, CLI_ERROR_USAGE,
                                    "shutdown: --emergency, --timeout and --reason need a collector ID");
                return FALSE;
        }
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        if (argc < 2)
                return cli_shutdown_agent(bus, options->json, error);

        path = cli_bus_find_collector(bus, argv[1], error);
        if (!path)
                return FALSE;
        /* The call lasts as long as the shutdown may, plus the agent's own escalation. */
        call_timeout = MAX(CLI_BUS_TIMEOUT_LONG, (guint64)MAX(timeout_ms, 0) * 1000 + 30 * G_USEC_PER_SEC);
        reply = cli_bus_call(bus, path, CLI_BUS_COLLECTOR_INTERFACE, "Shutdown",
                             g_variant_new("(sus)", emergency ? "emergency" : "graceful",
                                           (guint32)MAX(timeout_ms, 0), reason ? reason : ""),
                             NULL, call_timeout, error);
        if (!reply)
                return FALSE;
        return cli_collector_report(bus, path, "shutdown", options->json, error);
}

gboolean cli_reload(CliOptions *options, int argc, char **argv, GError **error)
{
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) reply = NULL;

        if (!cli_command_parse(options, "reload", "Make the agent reload its configuration files.", NULL,
                               &argc, &argv, 0, 0, error))
                return FALSE;
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        reply = cli_bus_call(bus, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, "Reload", NULL, NULL,
                             CLI_BUS_TIMEOUT_LONG, error);
        if (!reply)
                return FALSE;
        cli_agent_report(options->json, "reload", NULL, "configuration reloaded");
        return TRUE;
}
