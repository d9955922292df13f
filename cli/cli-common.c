/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every command shares: the error domain and the common options.
 */
#include "cli.h"
#include "daemoneye-build-config.h"

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
        options->json = options->json || parsed->json;
}

void cli_options_clear(CliOptions *options)
{
        g_clear_pointer(&options->socket_path, g_free);
        g_clear_pointer(&options->config_path, g_free);
        options->json = FALSE;
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
