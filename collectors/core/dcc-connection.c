/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where the collector's one connection comes from (socket activation or a
 * socket path) and what happens on it before requests flow: Hello with the
 * collector's id and capabilities, the three request subscriptions, the
 * first heartbeat once welcomed.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <systemd/sd-daemon.h>

#include "dcc-private.h"

static void on_client_error(DebClient *client, const GError *error, gboolean fatal, gpointer user_data)
{
        DccCollector *collector = user_data;

        if (!fatal) {
                /* A refused publish or subscription: the connection itself goes on. */
                collector->error_count++;
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "broker: %s", error->message);
                return;
        }
        if (dcc_collector_is_finished(collector))
                return;
        dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "lost the broker connection: %s", error->message);
        dcc_heartbeat_stop(collector);
        dcc_shutdown_begin_disconnected(collector);
}

static void on_connected(DebClient *client, const GError *error, gpointer user_data)
{
        DccCollector *collector = user_data;

        if (error) {
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "handshake failed: %s", error->message);
                dcc_collector_finish(collector, DCC_EXIT_FAILURE);
                return;
        }
        dcc_collector_log(collector, NULL, G_LOG_LEVEL_INFO, "connected; serving %s, %s and %s",
                          collector->topic_control, collector->topic_config, collector->topic_shutdown);
        dcc_heartbeat_start(collector);
        if (collector->autostart)
                dcc_lifecycle_autostart(collector);
}

/* Creates the client and queues the subscriptions, which go out right behind Hello. */
static gboolean connection_prepare(DccCollector *collector, GError **error)
{
        const char *topics[] = {collector->topic_control, collector->topic_config, collector->topic_shutdown};
        g_auto(GStrv) capabilities = NULL;

        if (collector->client || dcc_collector_is_finished(collector)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_CONNECTION, "collector %s: already connected or ended",
                            collector->id);
                return FALSE;
        }
        collector->client = deb_client_new(collector->id);
        capabilities = dcc_health_get_capability_strings(collector);
        deb_client_set_capabilities(collector->client, (const char *const *)capabilities);
        deb_client_set_error_func(collector->client, on_client_error, collector);
        for (gsize i = 0; i < G_N_ELEMENTS(topics); i++) {
                if (!deb_client_subscribe(collector->client, topics[i], dcc_rpc_handle_envelope, collector, NULL,
                                          error)) {
                        g_prefix_error(error, "collector %s: ", collector->id);
                        return FALSE;
                }
        }
        return TRUE;
}

gboolean dcc_collector_connect_fd(DccCollector *collector, int fd, GError **error)
{
        g_return_val_if_fail(collector != NULL, FALSE);

        if (!connection_prepare(collector, error)) {
                close(fd);
                return FALSE;
        }
        if (!deb_client_connect_fd(collector->client, fd, on_connected, collector, error)) {
                g_prefix_error(error, "collector %s: ", collector->id);
                return FALSE;
        }
        return TRUE;
}

gboolean dcc_collector_connect(DccCollector *collector, const char *socket_path, GError **error)
{
        g_return_val_if_fail(collector != NULL, FALSE);
        g_return_val_if_fail(socket_path != NULL, FALSE);

        if (!connection_prepare(collector, error))
                return FALSE;
        if (!deb_client_connect(collector->client, socket_path, on_connected, collector, error)) {
                g_prefix_error(error, "collector %s: ", collector->id);
                return FALSE;
        }
        return TRUE;
}

static void connection_stop_accepting(DccCollector *collector)
{
        dcc_source_clear(&collector->accept_source);
        dcc_source_clear(&collector->accept_timeout);
        if (collector->listen_fd >= 0)
                close(collector->listen_fd);
        collector->listen_fd = -1;
}

void dcc_connection_close(DccCollector *collector)
{
        connection_stop_accepting(collector);
        g_clear_pointer(&collector->client, deb_client_unref);
}

static gboolean on_accept_timeout(gpointer user_data)
{
        DccCollector *collector = user_data;

        dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING,
                          "nobody connected to the activation socket within %u s", DCC_ACCEPT_TIMEOUT_MS / 1000);
        g_clear_pointer(&collector->accept_timeout, g_source_unref);
        connection_stop_accepting(collector);
        dcc_collector_finish(collector, DCC_EXIT_FAILURE);
        return G_SOURCE_REMOVE;
}

static gboolean on_accept(int listen_fd, GIOCondition condition, gpointer user_data)
{
        DccCollector *collector = user_data;
        g_autoptr(GError) error = NULL;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0) {
                int errsv = errno;

                /* The agent gave up on a connection before we took it: wait for its next one. */
                if (errsv == EAGAIN || errsv == EINTR || errsv == ECONNABORTED)
                        return G_SOURCE_CONTINUE;
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "accept on the activation socket: %s",
                                  g_strerror(errsv));
                g_clear_pointer(&collector->accept_source, g_source_unref);
                connection_stop_accepting(collector);
                dcc_collector_finish(collector, DCC_EXIT_FAILURE);
                return G_SOURCE_REMOVE;
        }
        /* One connection is the whole protocol; systemd keeps its own copy of the listening socket. */
        g_clear_pointer(&collector->accept_source, g_source_unref);
        connection_stop_accepting(collector);
        if (!dcc_collector_connect_fd(collector, fd, &error)) {
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "%s", error->message);
                dcc_collector_finish(collector, DCC_EXIT_FAILURE);
        }
        return G_SOURCE_REMOVE;
}

gboolean dcc_collector_connect_activated(DccCollector *collector, gboolean *found, GError **error)
{
        int n, fd = SD_LISTEN_FDS_START, r;
        g_autoptr(GError) local = NULL;

        g_return_val_if_fail(collector != NULL, FALSE);
        g_return_val_if_fail(found != NULL, FALSE);

        *found = FALSE;
        /* unset_environment: a process the collector spawns must not think the fds are its own. */
        n = sd_listen_fds(1);
        if (n < 0) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_CONNECTION, "collector %s: socket activation: %s",
                            collector->id, g_strerror(-n));
                return FALSE;
        }
        if (n == 0)
                return TRUE;
        *found = TRUE;
        if (n != 1) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_CONNECTION,
                            "collector %s: socket activation passed %d fds, expected exactly 1", collector->id, n);
                return FALSE;
        }

        r = sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1);
        if (r > 0) {
                if (!g_unix_set_fd_nonblocking(fd, TRUE, &local)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_CONNECTION,
                                    "collector %s: activation socket (fd %d): %s", collector->id, fd,
                                    local->message);
                        return FALSE;
                }
                collector->listen_fd = fd;
                collector->accept_source = g_unix_fd_source_new(fd, G_IO_IN);
                g_source_set_callback(collector->accept_source, G_SOURCE_FUNC(on_accept), collector, NULL);
                g_source_attach(collector->accept_source, collector->context);
                collector->accept_timeout = g_timeout_source_new(DCC_ACCEPT_TIMEOUT_MS);
                g_source_set_callback(collector->accept_timeout, on_accept_timeout, collector, NULL);
                g_source_attach(collector->accept_timeout, collector->context);
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_INFO,
                                  "socket-activated: waiting for the agent's connection on fd %d", fd);
                return TRUE;
        }
        if (r == 0)
                r = sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 0);
        if (r <= 0) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_CONNECTION,
                            "collector %s: activation fd %d is not a Unix stream socket%s%s", collector->id, fd,
                            r < 0 ? ": " : "", r < 0 ? g_strerror(-r) : "");
                return FALSE;
        }
        dcc_collector_log(collector, NULL, G_LOG_LEVEL_INFO, "socket-activated on a connected socket (fd %d)", fd);
        return dcc_collector_connect_fd(collector, fd, error);
}
