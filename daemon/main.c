/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-agent [--config FILE] [--check-config] [--socket PATH]
 *                 [--bus=system|session|none] [--bus-address=ADDR] [--version] [--verbose]
 */
#include <glib.h>
#include <stdio.h>

#include "daemoneye-build-config.h"
#include "agent.h"

int main(int argc, char **argv)
{
        g_autoptr(GOptionContext) context = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *config_path = NULL;
        g_autofree char *socket_path = NULL;
        g_autofree char *bus = NULL;
        g_autofree char *bus_address = NULL;
        gboolean check_config = FALSE, version = FALSE, verbose = FALSE;
        const GOptionEntry entries[] = {
                {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
                 "Configuration file (default " DAEMONEYE_CONFIG_FILE ")", "FILE"},
                {"check-config", 0, 0, G_OPTION_ARG_NONE, &check_config,
                 "Validate the configuration and its drop-ins, then exit", NULL},
                {"socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
                 "EventBus socket (overrides socket_path)", "PATH"},
                {"bus", 0, 0, G_OPTION_ARG_STRING, &bus,
                 "D-Bus front on the system bus (default), the session bus, or none", "system|session|none"},
                {"bus-address", 0, 0, G_OPTION_ARG_STRING, &bus_address,
                 "D-Bus front on the bus at this address", "ADDRESS"},
                {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Show the version and exit", NULL},
                {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages too", NULL},
                {NULL},
        };
        AgentOptions options = {0};

        context = g_option_context_new(NULL);
        g_option_context_set_summary(context,
                                     "The DaemonEye agent: EventBus broker and collector supervisor.");
        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                fprintf(stderr, "daemoneye-agent: %s\n", error->message);
                return 2;
        }
        if (argc > 1) {
                fprintf(stderr, "daemoneye-agent: unexpected argument '%s'\n", argv[1]);
                return 2;
        }
        if (version) {
                printf("daemoneye-agent %s\n", DAEMONEYE_VERSION);
                return 0;
        }
        if (socket_path && !g_path_is_absolute(socket_path)) {
                fprintf(stderr, "daemoneye-agent: --socket %s: not an absolute path\n", socket_path);
                return 2;
        }

        if (bus && !g_strv_contains((const char *const[]){"system", "session", "none", NULL}, bus)) {
                fprintf(stderr, "daemoneye-agent: --bus=%s: expected system, session or none\n", bus);
                return 2;
        }
        if (bus && bus_address) {
                fprintf(stderr, "daemoneye-agent: --bus and --bus-address exclude each other\n");
                return 2;
        }

        options.config_explicit = config_path != NULL;
        options.bus = bus;
        options.bus_address = bus_address;
        options.config_path = config_path ? config_path : (char *)DAEMONEYE_CONFIG_FILE;
        options.socket_path = socket_path;
        options.verbose = verbose;
        if (check_config)
                return agent_check_config(&options);
        return agent_run(&options);
}
