/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Blocking helpers for tools and tests: each iterates the client's main
 * context until its condition holds, an error ends it, or a timeout source
 * fires. Other sources on that context keep running meanwhile.
 */
#include <sys/socket.h>

#include "deb-client-private.h"
#include "deb-error.h"

typedef enum {
        WAIT_MORE,
        WAIT_DONE,
        WAIT_FAILED,
} WaitStatus;

typedef struct {
        WaitStatus (*check)(DebClient *client, gpointer data, GError **error);
        /* What was waited for, for the timeout message. */
        char *(*describe)(DebClient *client, gpointer data);
} WaitOps;

static gboolean wait_timeout_cb(gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
        return G_SOURCE_REMOVE;
}

static void set_closed_error(DebClient *client, GError **error)
{
        if (client->close_error)
                g_set_error_literal(error, DEB_ERROR, DEB_ERROR_CLOSED, client->close_error->message);
        else
                g_set_error(error, DEB_ERROR, DEB_ERROR_CLOSED, "client %s: not connected", client->id);
}

static gboolean client_wait(DebClient *client, guint timeout_ms, const WaitOps *ops, gpointer data,
                            GError **error)
{
        g_autoptr(GMainContext) context = g_main_context_ref(client->context);
        g_autoptr(GSource) timeout = NULL;
        gboolean timed_out = FALSE;
        WaitStatus status;

        if (!g_main_context_acquire(context)) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL,
                            "client %s: cannot wait: its main context is owned by another thread",
                            client->id);
                return FALSE;
        }

        deb_client_hold(client);
        timeout = g_timeout_source_new(timeout_ms);
        g_source_set_callback(timeout, wait_timeout_cb, &timed_out, NULL);
        g_source_attach(timeout, context);

        while ((status = ops->check(client, data, error)) == WAIT_MORE && !timed_out) {
                /* Output queued by a callback of a dispatch still running needs G_IO_OUT now. */
                deb_client_io_update_events(client);
                g_main_context_iteration(context, TRUE);
        }
        g_source_destroy(timeout);

        if (status == WAIT_MORE) {
                g_autofree char *what = ops->describe(client, data);

                g_set_error(error, DEB_ERROR, DEB_ERROR_TIMEOUT,
                            "client %s: timed out after %u ms waiting for %s", client->id, timeout_ms, what);
        }
        deb_client_release(client);
        g_main_context_release(context);
        return status == WAIT_DONE;
}

typedef struct {
        gboolean done;
        GError *error;
} ConnectWait;

static void connect_wait_done(DebClient *client, const GError *error, gpointer user_data)
{
        ConnectWait *wait = user_data;

        wait->done = TRUE;
        if (error)
                wait->error = g_error_copy(error);
}

static WaitStatus connect_check(DebClient *client, gpointer data, GError **error)
{
        ConnectWait *wait = data;

        if (wait->done) {
                if (!wait->error)
                        return WAIT_DONE;
                g_propagate_error(error, g_steal_pointer(&wait->error));
                return WAIT_FAILED;
        }
        if (!deb_client_io_is_open(client)) {
                set_closed_error(client, error);
                return WAIT_FAILED;
        }
        return WAIT_MORE;
}

static char *connect_describe(DebClient *client, gpointer data)
{
        if (client->state == DEB_CLIENT_CONNECTING)
                return g_strdup_printf("%s to accept the connection", client->peer_name);
        return g_strdup_printf("Welcome from %s", client->peer_name);
}

static const WaitOps connect_wait_ops = {connect_check, connect_describe};

gboolean deb_client_connect_sync(DebClient *client, const char *socket_path, guint timeout_ms,
                                 GError **error)
{
        ConnectWait wait = {0};

        g_return_val_if_fail(client != NULL, FALSE);
        g_return_val_if_fail(socket_path != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (!deb_client_connect(client, socket_path, connect_wait_done, &wait, error))
                return FALSE;
        if (client_wait(client, timeout_ms, &connect_wait_ops, &wait, error))
                return TRUE;

        /* Gave up while the handshake goes on: nothing may write to @wait later. */
        if (client->connect_data == &wait)
                deb_client_io_abort(client);
        g_clear_error(&wait.error);
        return FALSE;
}

static WaitStatus sync_check(DebClient *client, gpointer data, GError **error)
{
        guint n_requests = g_hash_table_size(client->requests);

        if (client->request_error) {
                g_propagate_error(error, g_steal_pointer(&client->request_error));
                return WAIT_FAILED;
        }
        if (!deb_client_io_is_open(client)) {
                set_closed_error(client, error);
                return WAIT_FAILED;
        }
        if (client->state == DEB_CLIENT_CONNECTED && n_requests == 0 &&
            deb_client_get_pending_bytes(client) == 0)
                return WAIT_DONE;
        if (client->reading && (n_requests > 0 || client->state != DEB_CLIENT_CONNECTED)) {
                g_set_error(
                        error, DEB_ERROR, DEB_ERROR_PROTOCOL,
                        "client %s: cannot wait for the broker's answers inside a callback of this client: "
                        "they are read after the callback returns",
                        client->id);
                return WAIT_FAILED;
        }
        return WAIT_MORE;
}

static char *sync_describe(DebClient *client, gpointer data)
{
        guint n_requests = g_hash_table_size(client->requests);

        if (client->state != DEB_CLIENT_CONNECTED)
                return connect_describe(client, data);
        if (n_requests > 0)
                return g_strdup_printf("%s to acknowledge %u Subscribe/Unsubscribe request%s",
                                       client->peer_name, n_requests, n_requests == 1 ? "" : "s");
        return g_strdup_printf("%zu bytes of output to be written to %s",
                               deb_client_get_pending_bytes(client), client->peer_name);
}

static const WaitOps sync_wait_ops = {sync_check, sync_describe};

gboolean deb_client_sync(DebClient *client, guint timeout_ms, GError **error)
{
        gboolean ok;

        g_return_val_if_fail(client != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        client->sync_waiters++;
        ok = client_wait(client, timeout_ms, &sync_wait_ops, NULL, error);
        client->sync_waiters--;
        if (client->sync_waiters == 0)
                g_clear_error(&client->request_error);
        return ok;
}

static WaitStatus flush_check(DebClient *client, gpointer data, GError **error)
{
        if (!deb_client_io_is_open(client)) {
                set_closed_error(client, error);
                return WAIT_FAILED;
        }
        if (client->state != DEB_CLIENT_CONNECTING && deb_client_get_pending_bytes(client) == 0)
                return WAIT_DONE;
        return WAIT_MORE;
}

static char *flush_describe(DebClient *client, gpointer data)
{
        if (client->state == DEB_CLIENT_CONNECTING)
                return connect_describe(client, data);
        return g_strdup_printf("%zu bytes of output to be written to %s",
                               deb_client_get_pending_bytes(client), client->peer_name);
}

static const WaitOps flush_wait_ops = {flush_check, flush_describe};

gboolean deb_client_flush(DebClient *client, guint timeout_ms, GError **error)
{
        g_return_val_if_fail(client != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        return client_wait(client, timeout_ms, &flush_wait_ops, NULL, error);
}

void deb_client_disconnect(DebClient *client, guint timeout_ms)
{
        g_return_if_fail(client != NULL);

        if (!deb_client_io_is_open(client))
                return;

        deb_client_hold(client);
        if (deb_client_get_pending_bytes(client) > 0)
                (void)deb_client_flush(client, timeout_ms, NULL);
        /* Reaches the broker as end-of-stream even if the fd was duplicated somewhere. */
        if (client->fd >= 0)
                shutdown(client->fd, SHUT_RDWR);
        deb_client_io_abort(client);
        deb_client_release(client);
}
