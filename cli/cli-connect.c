/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Finding and connecting to the broker. The socket is connected here rather
 * than by deb_client_connect() so that connect()'s errno decides the exit
 * code: "not running" and "not allowed" need different answers from a script.
 * Without the socket, the agent can hand out a connection over D-Bus
 * (Agent1.OpenEventStream) after polkit allowed it.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cli.h"
#include "cli-bus.h"
#include "config.h"
#include "daemoneye-build-config.h"
#include "deb-error.h"

/* The broker closes a connection that has not said Hello within its own startup timeout. */
#define CLI_HANDSHAKE_TIMEOUT_MS 10000

typedef struct {
        gboolean done;
        gboolean timed_out;
        GError *error;
} CliHandshake;

/*
 * The frame limit comes from the same config as the socket path, so that
 * the CLI refuses what the broker would refuse; with only --socket or
 * $DAEMONEYE_SOCKET it is the protocol default.
 */
static gboolean cli_resolve_socket(const CliOptions *options, char **out_path, gsize *out_max_frame_bytes,
                                   GError **error)
{
        const char *env = g_getenv("DAEMONEYE_SOCKET");
        g_autoptr(Config) config = NULL;
        g_autoptr(GError) local_error = NULL;

        if (env && !*env)
                env = NULL;

        *out_max_frame_bytes = DEB_DEFAULT_MAX_FRAME_BYTES;
        /* An explicit --config is a command-line choice and beats the environment. */
        if (options->config_path || (!options->socket_path && !env)) {
                const char *path = options->config_path ? options->config_path : DAEMONEYE_CONFIG_FILE;

                config = config_load(path, options->config_path != NULL, &local_error);
                if (!config) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot read the configuration: %s",
                                    local_error->message);
                        return FALSE;
                }
                *out_max_frame_bytes = config->broker.max_frame_bytes;
        }

        if (options->socket_path)
                *out_path = g_strdup(options->socket_path);
        else if (config)
                *out_path = g_strdup(config->broker.socket_path);
        else
                *out_path = g_strdup(env);
        return TRUE;
}

static int cli_socket_connect(const char *path, GError **error)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        size_t len = strlen(path);
        int fd, saved_errno;

        if (len == 0 || len >= sizeof(addr.sun_path)) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED,
                            "cannot connect to the broker at '%s': a socket path must be 1 to %zu bytes",
                            path, sizeof(addr.sun_path) - 1);
                return -1;
        }
        memcpy(addr.sun_path, path, len);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                saved_errno = errno;
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot create a socket: %s",
                            g_strerror(saved_errno));
                return -1;
        }
        if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0)
                return fd;

        saved_errno = errno;
        close(fd);
        switch (saved_errno) {
        case ENOENT:
        case ENOTDIR:
        case ECONNREFUSED:
                g_set_error(error, CLI_ERROR, CLI_ERROR_NOT_RUNNING,
                            "cannot connect to the broker at %s: %s — is daemoneye-agent running?", path,
                            g_strerror(saved_errno));
                break;
        case EACCES:
        case EPERM:
                g_set_error(error, CLI_ERROR, CLI_ERROR_NOT_AUTHORIZED,
                            "cannot connect to the broker at %s: %s — root and the daemoneye group may",
                            path, g_strerror(saved_errno));
                break;
        default:
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot connect to the broker at %s: %s",
                            path, g_strerror(saved_errno));
                break;
        }
        return -1;
}

static void cli_handshake_done(DebClient *client, const GError *error, gpointer user_data)
{
        CliHandshake *handshake = user_data;

        handshake->done = TRUE;
        if (error)
                handshake->error = g_error_copy(error);
}

static gboolean cli_handshake_timeout(gpointer user_data)
{
        CliHandshake *handshake = user_data;

        handshake->timed_out = TRUE;
        return G_SOURCE_REMOVE;
}

/* Says Hello on @fd (taken) and waits for the Welcome. */
static gboolean cli_connection_handshake(CliConnection *connection, const char *client_id, int fd,
                                         GError **error)
{
        CliHandshake handshake = {0};
        guint timeout_id;

        connection->client = deb_client_new(client_id);
        deb_client_set_max_frame_bytes(connection->client, connection->max_frame_bytes);
        if (!deb_client_connect_fd(connection->client, fd, cli_handshake_done, &handshake, error))
                return FALSE;

        timeout_id = g_timeout_add(CLI_HANDSHAKE_TIMEOUT_MS, cli_handshake_timeout, &handshake);
        while (!handshake.done && !handshake.timed_out)
                g_main_context_iteration(NULL, TRUE);
        if (!handshake.timed_out)
                g_source_remove(timeout_id);

        if (handshake.error) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "%s refused the connection: %s",
                            connection->peer, handshake.error->message);
                g_error_free(handshake.error);
                return FALSE;
        }
        if (!handshake.done) {
                /* Dropping the client closes it, so the callback cannot run later. */
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED,
                            "%s did not answer the handshake within %u s", connection->peer,
                            CLI_HANDSHAKE_TIMEOUT_MS / 1000);
                return FALSE;
        }
        return TRUE;
}

CliConnection *cli_connection_open(const CliOptions *options, GError **error)
{
        g_autoptr(CliConnection) connection = g_new0(CliConnection, 1);
        g_autofree char *client_id = g_strdup_printf("daemoneye-cli-%d", (int)getpid());
        int fd;

        if (!cli_resolve_socket(options, &connection->socket_path, &connection->max_frame_bytes, error))
                return NULL;
        connection->peer = g_strdup_printf("the broker at %s", connection->socket_path);

        fd = cli_socket_connect(connection->socket_path, error);
        if (fd < 0)
                return NULL;
        if (!cli_connection_handshake(connection, client_id, fd, error))
                return NULL;
        return g_steal_pointer(&connection);
}

CliConnection *cli_connection_open_event_stream(const CliOptions *options, const char *pattern,
                                                GError **error)
{
        g_autoptr(CliConnection) connection = g_new0(CliConnection, 1);
        g_autofree char *client_id = g_strdup_printf("daemoneye-cli-%d", (int)getpid());
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        int fd, r;

        bus = cli_bus_open(options, error);
        if (!bus)
                return NULL;
        /* Long: polkit may be asking for a password meanwhile. */
        reply = cli_bus_call_message(bus, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, "OpenEventStream",
                                     g_variant_new("(s)", pattern), CLI_BUS_TIMEOUT_LONG, error);
        if (!reply)
                return NULL;
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "the reply to OpenEventStream has no fd: %s",
                            g_strerror(-r));
                return NULL;
        }
        /* The fd belongs to the reply; the client takes its own. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
                int errsv = errno;

                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot keep the event stream's fd: %s",
                            g_strerror(errsv));
                return NULL;
        }

        connection->peer = g_strdup("the agent's D-Bus event stream");
        connection->max_frame_bytes = DEB_DEFAULT_MAX_FRAME_BYTES;
        if (!cli_connection_handshake(connection, client_id, fd, error))
                return NULL;
        return g_steal_pointer(&connection);
}

void cli_connection_free(CliConnection *connection)
{
        if (!connection)
                return;
        g_clear_pointer(&connection->client, deb_client_unref);
        g_free(connection->socket_path);
        g_free(connection->peer);
        g_free(connection);
}
