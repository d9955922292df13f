/* SPDX-License-Identifier: Apache-2.0 */
/* daemoneye-agent [--config FILE] [--check-config] [--socket PATH] [--version] [--verbose] */
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
        gboolean check_config = FALSE, version = FALSE, verbose = FALSE;
        const GOptionEntry entries[] = {
                {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
                 "Configuration file (default " DAEMONEYE_CONFIG_FILE ")", "FILE"},
                {"check-config", 0, 0, G_OPTION_ARG_NONE, &check_config,
                 "Validate the configuration and its drop-ins, then exit", NULL},
                {"socket", 's', 0, G_OPTION_ARG_FILENAME, &socket_path,
                 "EventBus socket (overrides socket_path)", "PATH"},
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

        options.config_explicit = config_path != NULL;
        options.config_path = config_path ? config_path : (char *)DAEMONEYE_CONFIG_FILE;
        options.socket_path = socket_path;
        options.verbose = verbose;
        if (check_config)
                return agent_check_config(&options);
        return agent_run(&options);
}
