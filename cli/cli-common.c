/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every command shares: the error domain, the exit codes and the common
 * options.
 */
#include "cli.h"
#include "daemoneye-build-config.h"
#include "deb-error.h"

GQuark cli_error_quark(void)
{
        return g_quark_from_static_string("daemoneye-cli-error-quark");
}

static void cli_options_merge(CliOptions *options, CliOptions *parsed)
{
        if (parsed->socket_path) {
                g_free(options->socket_path);
                options->socket_path = g_steal_pointer(&parsed->socket_path);
        }
        if (parsed->config_path) {
                g_free(options->config_path);
                options->config_path = g_steal_pointer(&parsed->config_path);
        }
        if (parsed->bus_address) {
                g_free(options->bus_address);
                options->bus_address = g_steal_pointer(&parsed->bus_address);
        }
        options->json = options->json || parsed->json;
        options->no_ask_password = options->no_ask_password || parsed->no_ask_password;
}

void cli_options_clear(CliOptions *options)
{
        g_clear_pointer(&options->socket_path, g_free);
        g_clear_pointer(&options->config_path, g_free);
        g_clear_pointer(&options->bus_address, g_free);
        options->json = FALSE;
        options->no_ask_password = FALSE;
}

int cli_error_to_exit(const GError *error)
{
        if (error->domain == CLI_ERROR) {
                switch ((CliError)error->code) {
                case CLI_ERROR_USAGE:
                        return CLI_EXIT_USAGE;
                case CLI_ERROR_NOT_AUTHORIZED:
                        return CLI_EXIT_NOT_AUTHORIZED;
                case CLI_ERROR_NOT_RUNNING:
                        return CLI_EXIT_NOT_RUNNING;
                case CLI_ERROR_OUTPUT_CLOSED:
                        return CLI_EXIT_OK;
                case CLI_ERROR_FAILED:
                        return CLI_EXIT_FAILURE;
                }
                return CLI_EXIT_FAILURE;
        }
        if (error->domain == G_OPTION_ERROR)
                return CLI_EXIT_USAGE;
        if (g_error_matches(error, DEB_ERROR, DEB_ERROR_INVALID_TOPIC) ||
            g_error_matches(error, DEB_ERROR, DEB_ERROR_INVALID_PATTERN))
                return CLI_EXIT_USAGE;
        return CLI_EXIT_FAILURE;
}

/*
 * A command's context parses the common options into a scratch copy and merges
 * it afterwards: pointing two contexts at the same storage would leak the
 * string the first one stored when the second overwrites it.
 */
gboolean cli_options_parse(CliOptions *options, GOptionContext *context, int *argc, char ***argv,
                           GError **error)
{
        CliOptions parsed = {0};
        const GOptionEntry entries[] = {
                {"socket", 's', 0, G_OPTION_ARG_FILENAME, &parsed.socket_path,
                 "The broker's Unix socket (overrides --config and $DAEMONEYE_SOCKET)", "PATH"},
                {"config", 'c', 0, G_OPTION_ARG_FILENAME, &parsed.config_path,
                 "Take the socket path from this daemoneye.conf (default: $DAEMONEYE_SOCKET, "
                 "else " DAEMONEYE_CONFIG_FILE ")",
                 "FILE"},
                {"json", 'j', 0, G_OPTION_ARG_NONE, &parsed.json, "Print JSON for scripts", NULL},
                {"bus-address", 0, 0, G_OPTION_ARG_STRING, &parsed.bus_address,
                 "Talk to the agent on this D-Bus bus (default: the system bus, "
                 "$DBUS_SYSTEM_BUS_ADDRESS)",
                 "ADDRESS"},
                {"no-ask-password", 0, 0, G_OPTION_ARG_NONE, &parsed.no_ask_password,
                 "Do not let polkit ask for a password; fail instead", NULL},
                {NULL},
        };
        gboolean ok;

        /* Main entries, not a group: a command's --help should show them without --help-all. */
        g_option_context_add_main_entries(context, entries, NULL);
        ok = g_option_context_parse(context, argc, argv, error);
        if (ok)
                cli_options_merge(options, &parsed);
        cli_options_clear(&parsed);
        return ok;
}

gboolean cli_command_parse(CliOptions *options, const char *parameters, const char *summary,
                           const GOptionEntry *entries, int *argc, char ***argv, int min_args, int max_args,
                           GError **error)
{
        g_autoptr(GOptionContext) context = g_option_context_new(parameters);
        int n;

        g_option_context_set_summary(context, summary);
        if (entries)
                g_option_context_add_main_entries(context, entries, NULL);
        if (!cli_options_parse(options, context, argc, argv, error))
                return FALSE;
        /* argv[0] is the command name. */
        n = *argc - 1;
        if (n < min_args || (max_args >= 0 && n > max_args)) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "usage: daemoneye-cli %s%s", parameters,
                            n > max_args && max_args >= 0 ? " (too many arguments)" : "");
                return FALSE;
        }
        return TRUE;
}
