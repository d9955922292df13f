/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli: command dispatch and global options; the exit code comes
 * from the error (cli_error_to_exit()).
 */
#include <errno.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
        const char *name;
        const char *summary;
        gboolean (*run)(CliOptions *options, int argc, char **argv, GError **error);
} CliCommand;

static const CliCommand cli_commands[] = {
        {"status", "Show the agent's state, version and health", cli_status},
        {"collectors", "List the collectors and their state", cli_collectors},
        {"start", "Start a collector", cli_collector_action},
        {"stop", "Stop a collector gracefully", cli_collector_action},
        {"restart", "Restart a collector", cli_collector_action},
        {"pause", "Pause a collector", cli_collector_action},
        {"resume", "Resume a paused collector", cli_collector_action},
        {"health", "Show the agent's or one collector's health", cli_health},
        {"config", "Change a collector's settings", cli_config},
        {"capabilities", "Show what a collector can do", cli_capabilities},
        {"metrics", "Show the broker's and collectors' metrics", cli_metrics},
        {"shutdown", "Shut down the agent or one collector", cli_shutdown},
        {"reload", "Make the agent reload its configuration", cli_reload},
        {"publish", "Publish messages to a topic", cli_publish},
        {"watch", "Print the messages matching patterns", cli_watch},
};

static const CliCommand *cli_command_find(const char *name)
{
        for (gsize i = 0; i < G_N_ELEMENTS(cli_commands); i++)
                if (strcmp(cli_commands[i].name, name) == 0)
                        return &cli_commands[i];
        return NULL;
}

static char *cli_describe_commands(void)
{
        GString *s = g_string_new("Commands:\n");

        for (gsize i = 0; i < G_N_ELEMENTS(cli_commands); i++)
                g_string_append_printf(s, "  %-13s %s\n", cli_commands[i].name, cli_commands[i].summary);
        g_string_append(s, "\nRun 'daemoneye-cli COMMAND --help' for a command's options.\n\n"
                           "Exit status: 0 success, 1 failure, 2 usage error, 3 not authorized,\n"
                           "4 daemoneye-agent not running.");
        return g_string_free(s, FALSE);
}

static gboolean cli_run(int argc, char **argv, GError **error)
{
        g_autoptr(GOptionContext) context = g_option_context_new("COMMAND [ARGUMENT…]");
        g_autofree char *description = cli_describe_commands();
        g_auto(CliOptions) options = {0};
        gboolean version = FALSE;
        const GOptionEntry entries[] = {
                {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
                {NULL},
        };
        const CliCommand *command;

        g_option_context_set_summary(context,
                                     "Administer DaemonEye over D-Bus; publish to and watch its EventBus.");
        g_option_context_set_description(context, description);
        g_option_context_add_main_entries(context, entries, NULL);
        /* Stop at the command name: what follows belongs to the command's own parser. */
        g_option_context_set_strict_posix(context, TRUE);
        if (!cli_options_parse(&options, context, &argc, &argv, error))
                return FALSE;

        if (version) {
                printf("daemoneye-cli %s\n", DAEMONEYE_VERSION);
                return TRUE;
        }
        if (argc < 2) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                            "no command given (see daemoneye-cli --help)");
                return FALSE;
        }

        command = cli_command_find(argv[1]);
        if (!command) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                            "unknown command '%s' (see daemoneye-cli --help)", argv[1]);
                return FALSE;
        }
        return command->run(&options, argc - 1, argv + 1, error);
}

int main(int argc, char **argv)
{
        g_autoptr(GError) error = NULL;
        int status;

        setlocale(LC_ALL, "");
        g_set_prgname("daemoneye-cli");
        /* A closed stdout or socket shows up as EPIPE from the write, where it can be handled. */
        signal(SIGPIPE, SIG_IGN);

        if (cli_run(argc, argv, &error))
                status = CLI_EXIT_OK;
        else {
                status = cli_error_to_exit(error);
                if (!g_error_matches(error, CLI_ERROR, CLI_ERROR_OUTPUT_CLOSED))
                        fprintf(stderr, "daemoneye-cli: %s\n", error->message);
        }

        /* Output left in the stdio buffer is part of the result: failing to write it is a failure. */
        if (fflush(stdout) != 0 && status == CLI_EXIT_OK && errno != EPIPE) {
                fprintf(stderr, "daemoneye-cli: cannot write to standard output: %s\n", g_strerror(errno));
                status = CLI_EXIT_FAILURE;
        }
        return status;
}
