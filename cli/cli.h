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
        CLI_EXIT_NOT_AUTHORIZED = 3, /* EACCES on the broker socket, polkit said no */
        CLI_EXIT_NOT_RUNNING = 4,    /* socket missing or refused, no bus, agent not on the bus */
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
        char *socket_path;        /* --socket */
        char *config_path;        /* --config */
        char *bus_address;        /* --bus-address; NULL: the system bus */
        gboolean json;            /* --json */
        gboolean no_ask_password; /* --no-ask-password: no interactive polkit authorization */
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

/**
 * cli_command_parse:
 * @parameters: the command and its arguments as --help shows them ("start ID")
 * @entries: (nullable) the command's own options
 * @max_args: -1 for no limit
 *
 * Parses a command's options and the common ones, and checks that @min_args
 * to @max_args arguments follow the command name (argv[0]).
 */
gboolean cli_command_parse(CliOptions *options, const char *parameters, const char *summary,
                           const GOptionEntry *entries, int *argc, char ***argv, int min_args, int max_args,
                           GError **error);

/** cli_error_to_exit: Returns: the #CliExit status a command failing with @error exits with. */
int cli_error_to_exit(const GError *error);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CliOptions, cli_options_clear)

/* An established broker connection, with what error messages need to name it. */
typedef struct {
        DebClient *client;
        char *socket_path; /* NULL for a D-Bus event stream */
        char *peer;        /* "the broker at PATH", "the agent's D-Bus event stream" */
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

/**
 * cli_connection_open_event_stream:
 *
 * The fallback of watch when the broker socket cannot be opened: asks the
 * agent over D-Bus (Agent1.OpenEventStream) for a socket that delivers
 * @pattern once the client's Hello is answered, and connects a client on
 * it. The stream takes no other pattern and no publish.
 * Returns: (transfer full) the connection, or %NULL with a #CLI_ERROR.
 */
CliConnection *cli_connection_open_event_stream(const CliOptions *options, const char *pattern,
                                                GError **error);
void cli_connection_free(CliConnection *connection);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CliConnection, cli_connection_free)

/* Commands: parse their own arguments (argv[0] is the command name). */
gboolean cli_publish(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_watch(CliOptions *options, int argc, char **argv, GError **error);
/* D-Bus commands (org.daemoneye.Agent1). */
gboolean cli_status(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_collectors(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_health(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_metrics(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_shutdown(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_reload(CliOptions *options, int argc, char **argv, GError **error);
/* start, stop, restart, pause, resume: argv[0] says which. */
gboolean cli_collector_action(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_capabilities(CliOptions *options, int argc, char **argv, GError **error);
gboolean cli_config(CliOptions *options, int argc, char **argv, GError **error);

G_END_DECLS
