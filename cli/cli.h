/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "deb-client.h"

G_BEGIN_DECLS

/*
 * Exit codes of every daemoneye-cli command; the D-Bus commands use the same
 * scheme, so a script can tell "try again later" from "you may not".
 */
typedef enum {
        CLI_EXIT_OK = 0,
        CLI_EXIT_FAILURE = 1,        /* the operation failed */
        CLI_EXIT_USAGE = 2,          /* unknown command or option, bad topic or pattern */
        CLI_EXIT_NOT_AUTHORIZED = 3, /* e.g. EACCES on the broker socket */
        CLI_EXIT_NOT_RUNNING = 4,    /* socket missing or connection refused */
} CliExit;

#define CLI_ERROR (cli_error_quark())
GQuark cli_error_quark(void);

/* Conditions a command reports; cli_error_to_exit() maps them to exit codes. */
typedef enum {
        CLI_ERROR_FAILED,
        CLI_ERROR_USAGE,
        CLI_ERROR_NOT_AUTHORIZED,
        CLI_ERROR_NOT_RUNNING,
        CLI_ERROR_OUTPUT_CLOSED, /* the reader of stdout went away: exit quietly */
} CliError;

/* Options every command accepts, before or after the command name. */
typedef struct {
        char *socket_path; /* --socket */
        char *config_path; /* --config */
        gboolean json;     /* --json */
} CliOptions;

/**
 * cli_options_parse:
 * @context: a command's option context, with its own entries added already
 *
 * Adds the common options to @context and parses @argv with it. Values given
 * here override those given before the command name.
 */
gboolean cli_options_parse(CliOptions *options, GOptionContext *context, int *argc, char ***argv,
                           GError **error);

void cli_options_clear(CliOptions *options);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CliOptions, cli_options_clear)

/* An established broker connection, with what error messages need to name it. */
typedef struct {
        DebClient *client;
        char *socket_path;
        gsize max_frame_bytes;
} CliConnection;

/**
 * cli_connection_open:
 *
 * Resolves the socket path (--socket, else the socket_path of --config, else
 * $DAEMONEYE_SOCKET, else that of the default config file), connects and
 * waits for the broker's Welcome.
 * Returns: (transfer full) the connection, or %NULL with a #CLI_ERROR saying
 *   whether the agent is not running or we are not allowed to connect.
 */
CliConnection *cli_connection_open(const CliOptions *options, GError **error);
void cli_connection_free(CliConnection *connection);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CliConnection, cli_connection_free)

/* Commands: parse their own arguments (argv[0] is the command name). */
gboolean cli_publish(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_watch(CliOptions *options, int argc, char **argv, GError **error);

G_END_DECLS
