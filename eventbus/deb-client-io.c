/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The client's connection: connecting the socket, the GSource watching it,
 * reading frames into the decoder and writing the output buffer.
 * What a frame means is in deb-client-dispatch.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "deb-client-private.h"
#include "deb-error.h"

/* connect() said the listen backlog is full: try again this much later. */
#define DEB_CLIENT_CONNECT_RETRY_US (10 * G_TIME_SPAN_MILLISECOND)
/* An emptied output buffer that grew past this is given back to the allocator. */
#define DEB_CLIENT_OUT_KEEP (1024u * 1024u)
/* Written bytes at the front of the buffer are dropped once they are this many. */
#define DEB_CLIENT_OUT_COMPACT (64u * 1024u)

typedef struct {
        GSource source;
        DebClient *client; /* not a reference: the client owns the source */
} DebClientSource;

static gboolean client_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data);

static GSourceFuncs client_source_funcs = {
        .dispatch = client_source_dispatch,
};

static gsize client_pending(DebClient *client)
{
        return client->out->len - client->out_pos;
}

/**
 * deb_client_io_is_open: Returns: %TRUE while there is a socket, from connect
 * until close.
 */
gboolean deb_client_io_is_open(DebClient *client)
{
        return client->state == DEB_CLIENT_CONNECTING || client->state == DEB_CLIENT_HANDSHAKE ||
               client->state == DEB_CLIENT_CONNECTED;
}

/**
 * deb_client_io_update_events:
 *
 * Polls for writability only while output is pending (or a drain callback is
 * owed), since a writable socket would otherwise wake the loop constantly.
 */
void deb_client_io_update_events(DebClient *client)
{
        GIOCondition events;

        if (!client->source)
                return;

        if (client->state == DEB_CLIENT_CONNECTING) {
                /* While retrying on a timer the unconnected socket polls as HUP: do not poll it. */
                events = client->connect_retry ? 0 : G_IO_OUT | G_IO_ERR | G_IO_HUP;
        } else {
                events = G_IO_ERR | G_IO_HUP;
                if (!client->input_deferred)
                        events |= G_IO_IN;
                if (client_pending(client) > 0 || (client->above_watermark && client->drain_func))
                        events |= G_IO_OUT;
        }

        if (events != client->events) {
                g_source_modify_unix_fd(client->source, client->fd_tag, events);
                client->events = events;
        }
}

static void client_reset_output(DebClient *client)
{
        if (client->out_peak > DEB_CLIENT_OUT_KEEP) {
                g_byte_array_unref(client->out);
                client->out = g_byte_array_new();
        } else {
                g_byte_array_set_size(client->out, 0);
        }
        client->out_pos = 0;
        client->out_peak = 0;
        client->eager_write_at = 0;
}

/* Drops the socket and its source; no callback runs. */
static void client_release(DebClient *client)
{
        if (client->source) {
                g_source_destroy(client->source);
                g_clear_pointer(&client->source, g_source_unref);
        }
        client->fd_tag = NULL;
        client->events = 0;
        client->connect_retry = FALSE;
        if (client->fd >= 0) {
                close(client->fd);
                client->fd = -1;
        }
        client->state = DEB_CLIENT_CLOSED;
        client->generation++;
        client->connect_func = NULL;
        client->connect_data = NULL;
        client_reset_output(client);
        client->above_watermark = FALSE;
        deb_client_forget_requests(client);
}

/**
 * deb_client_io_abort:
 *
 * Closes the connection without telling anyone (unref, disconnect, a
 * connect_sync() that gave up).
 */
void deb_client_io_abort(DebClient *client)
{
        if (!deb_client_io_is_open(client))
                return;
        client_release(client);
        g_clear_error(&client->close_error);
}

/**
 * deb_client_io_close:
 * @error: (transfer full) why the connection ended
 *
 * Closes the connection and reports @error: to the connect callback while the
 * handshake was not finished, otherwise to the error callback as fatal.
 */
void deb_client_io_close(DebClient *client, GError *error)
{
        g_autoptr(GError) owned = error;
        DebClientConnectFunc connect_func = client->connect_func;
        gpointer connect_data = client->connect_data;
        gboolean handshaking =
                client->state == DEB_CLIENT_CONNECTING || client->state == DEB_CLIENT_HANDSHAKE;

        if (!deb_client_io_is_open(client))
                return;

        client_release(client);
        g_clear_error(&client->close_error);
        client->close_error = g_error_copy(owned);

        deb_client_hold(client);
        /* RPC calls in flight are lost with the connection; the RPC client fails them first. */
        if (client->rpc_hooks.closed)
                client->rpc_hooks.closed(client, owned, client->rpc_data);
        if (handshaking && connect_func)
                connect_func(client, owned, connect_data);
        else if (client->error_func)
                client->error_func(client, owned, TRUE, client->error_data);
        deb_client_release(client);
}

static void client_close_errno(DebClient *client, int err, const char *doing)
{
        if (err == EPIPE || err == ECONNRESET)
                deb_client_io_close(client, g_error_new(DEB_ERROR, DEB_ERROR_CLOSED,
                                                        "client %s: connection to %s lost: %s", client->id,
                                                        client->peer_name, g_strerror(err)));
        else
                deb_client_io_close(client,
                                    g_error_new(DEB_ERROR, DEB_ERROR_IO, "client %s: %s %s: %s", client->id,
                                                doing, client->peer_name, g_strerror(err)));
}

/**
 * deb_client_io_write:
 * @from_dispatch: %FALSE when called from deb_client_publish() and friends
 *
 * Writes as much pending output as the socket takes. Outside dispatch a
 * failed write is left for the next dispatch to find again, so publish never
 * runs user callbacks.
 */
void deb_client_io_write(DebClient *client, gboolean from_dispatch)
{
        while (client_pending(client) > 0) {
                ssize_t n = send(client->fd, client->out->data + client->out_pos, client_pending(client),
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK || !from_dispatch)
                                break;
                        client_close_errno(client, errno, "writing to");
                        return;
                }
                client->out_pos += (gsize)n;
                client->stats.bytes_written += (guint64)n;
        }

        if (from_dispatch)
                client->eager_write_at = 0;
        if (client_pending(client) == 0)
                client_reset_output(client);
        else if (client->out_pos >= DEB_CLIENT_OUT_COMPACT && client->out_pos >= client->out->len / 2) {
                g_byte_array_remove_range(client->out, 0, (guint)client->out_pos);
                client->out_pos = 0;
        }

        if (from_dispatch && client->above_watermark && client_pending(client) <= client->low_watermark) {
                client->above_watermark = FALSE;
                if (client->drain_func)
                        client->drain_func(client, client->drain_data);
        }
}

/* Returns: %FALSE when processing must stop (closed, reconnected or abandoned). */
static gboolean client_process_frames(DebClient *client, guint generation)
{
        for (;;) {
                g_autoptr(GError) error = NULL;
                const DebEnvelope *envelope;
                DebFrame frame;
                int r;

                r = deb_frame_decoder_next(client->decoder, &frame, &error);
                if (r == 0)
                        return TRUE;
                if (r < 0) {
                        g_prefix_error(&error, "client %s: frame from %s: ", client->id, client->peer_name);
                        deb_client_io_close(client, g_steal_pointer(&error));
                        return FALSE;
                }

                envelope = deb_unpacker_envelope(client->unpacker, frame.body, frame.body_len, &error);
                if (!envelope) {
                        g_prefix_error(&error, "client %s: frame from %s: ", client->id, client->peer_name);
                        deb_client_io_close(client, g_steal_pointer(&error));
                        return FALSE;
                }

                deb_client_handle_envelope(client, envelope);
                if (client->generation != generation || deb_client_is_abandoned(client))
                        return FALSE;
        }
}

static void client_read(DebClient *client)
{
        guint generation = client->generation;
        gsize budget = DEB_CLIENT_READ_BUDGET;

        if (client->reading) {
                /* Nested dispatch from a callback: the frame being handled lives in the decoder. */
                client->input_deferred = TRUE;
                deb_client_io_update_events(client);
                return;
        }

        client->reading = TRUE;
        while (budget > 0) {
                gsize avail, want;
                guint8 *space;
                ssize_t n;

                space = deb_frame_decoder_get_space(client->decoder, DEB_CLIENT_READ_CHUNK, &avail);
                want = MIN(avail, budget);
                n = recv(client->fd, space, want, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                client_close_errno(client, errno, "reading from");
                        break;
                }
                if (n == 0) {
                        deb_client_io_close(client, g_error_new(DEB_ERROR, DEB_ERROR_CLOSED,
                                                                "client %s: %s closed the connection%s",
                                                                client->id, client->peer_name,
                                                                client->state == DEB_CLIENT_CONNECTED
                                                                        ? ""
                                                                        : " before sending Welcome"));
                        break;
                }

                deb_frame_decoder_commit(client->decoder, (gsize)n);
                client->stats.bytes_read += (guint64)n;
                budget -= (gsize)n;
                if (!client_process_frames(client, generation))
                        break;
                /* A short read means the socket is empty: spare the EAGAIN round trip. */
                if ((gsize)n < want)
                        break;
        }
        client->reading = FALSE;

        if (client->input_deferred) {
                client->input_deferred = FALSE;
                deb_client_io_update_events(client);
        }
}

static void client_connect_failed(DebClient *client, int err)
{
        deb_client_io_close(client,
                            g_error_new(DEB_ERROR, DEB_ERROR_IO, "%s: %s", client->peer_name,
                                        err == ECONNREFUSED ? "connection refused" : g_strerror(err)));
}

static void client_continue_connect(DebClient *client, GIOCondition revents)
{
        int err = 0;

        if (client->connect_retry) {
                g_source_set_ready_time(client->source, -1);
                if (connect(client->fd, (struct sockaddr *)&client->address, client->address_len) < 0 &&
                    errno != EISCONN) {
                        if (errno == EAGAIN) {
                                g_source_set_ready_time(client->source, g_get_monotonic_time() +
                                                                                DEB_CLIENT_CONNECT_RETRY_US);
                                return;
                        }
                        if (errno != EINPROGRESS && errno != EALREADY && errno != EINTR) {
                                client_connect_failed(client, errno);
                                return;
                        }
                        /* Now truly in progress: writability will tell. */
                        client->connect_retry = FALSE;
                        return;
                }
                client->connect_retry = FALSE;
        } else {
                socklen_t len = sizeof(err);

                if (!(revents & (G_IO_OUT | G_IO_ERR | G_IO_HUP)))
                        return;
                if (getsockopt(client->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        err = errno;
                if (err != 0) {
                        client_connect_failed(client, err);
                        return;
                }
        }

        client->state = DEB_CLIENT_HANDSHAKE;
        deb_client_io_write(client, TRUE);
}

static gboolean client_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        DebClient *client = ((DebClientSource *)source)->client;
        GIOCondition revents = g_source_query_unix_fd(source, client->fd_tag);
        guint generation = client->generation;

        deb_client_hold(client);
        client->dispatching++;

        if (client->state == DEB_CLIENT_CONNECTING)
                client_continue_connect(client, revents);
        else if (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR))
                client_read(client);

        /* Output queued by callbacks goes out now rather than after another poll. */
        if (client->generation == generation && !deb_client_is_abandoned(client) &&
            client->state != DEB_CLIENT_CONNECTING &&
            (client_pending(client) > 0 || client->above_watermark))
                deb_client_io_write(client, TRUE);

        client->dispatching--;
        if (client->dispatching == 0)
                deb_client_io_update_events(client);
        deb_client_release(client);
        return G_SOURCE_CONTINUE;
}

/**
 * deb_client_io_start:
 * @fd: (transfer full) a non-blocking stream socket, connected unless @pending
 *
 * Queues Hello and the Subscribe of every existing subscription, then watches
 * @fd on the client's main context.
 */
gboolean deb_client_io_start(DebClient *client, int fd, gboolean pending, DebClientConnectFunc func,
                             gpointer user_data, GError **error)
{
        DebClientState previous = client->state;
        char hello_id[DEB_UUID_STRING_LEN + 1];
        Daemoneye__Eventbus__Hello hello = DAEMONEYE__EVENTBUS__HELLO__INIT;

        client->fd = fd;
        client->state = pending ? DEB_CLIENT_CONNECTING : DEB_CLIENT_HANDSHAKE;
        client->broker_frame_bytes = 0;
        client->input_deferred = FALSE;
        g_clear_error(&client->close_error);
        g_clear_error(&client->request_error);
        g_clear_pointer(&client->decoder, deb_frame_decoder_free);
        client->decoder = deb_frame_decoder_new(client->max_frame_bytes);
        client_reset_output(client);
        client->above_watermark = FALSE;

        deb_client_new_uuid(client, hello_id);
        hello.client_id = client->id;
        hello.protocol_version = DEB_PROTOCOL_VERSION;
        hello.n_capabilities = client->capabilities ? g_strv_length(client->capabilities) : 0;
        hello.capabilities = client->capabilities;
        if (!deb_client_queue_control(client, DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HELLO,
                                      DEB_PAYLOAD_TYPE_HELLO, &hello.base, hello_id, error) ||
            !deb_client_queue_subscriptions(client, error)) {
                g_prefix_error(error, "client %s: connecting to %s: ", client->id, client->peer_name);
                client_release(client);
                client->state = previous;
                return FALSE;
        }

        client->connect_func = func;
        client->connect_data = user_data;
        client->source = g_source_new(&client_source_funcs, sizeof(DebClientSource));
        ((DebClientSource *)client->source)->client = client;
        g_source_set_name(client->source, "deb-client");
        /* A callback may flush or disconnect, which iterates this context: let output go on. */
        g_source_set_can_recurse(client->source, TRUE);
        client->events = 0;
        client->fd_tag = g_source_add_unix_fd(client->source, fd, 0);
        if (pending && client->connect_retry)
                g_source_set_ready_time(client->source,
                                        g_get_monotonic_time() + DEB_CLIENT_CONNECT_RETRY_US);
        deb_client_io_update_events(client);
        g_source_attach(client->source, client->context);
        return TRUE;
}

static gboolean client_check_can_connect(DebClient *client, GError **error)
{
        if (!deb_client_io_is_open(client))
                return TRUE;
        g_set_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL, "client %s: already connected to %s", client->id,
                    client->peer_name);
        return FALSE;
}

gboolean deb_client_connect(DebClient *client, const char *socket_path, DebClientConnectFunc func,
                            gpointer user_data, GError **error)
{
        gsize path_len;
        gboolean pending = FALSE;
        int fd;

        g_return_val_if_fail(client != NULL, FALSE);
        g_return_val_if_fail(socket_path != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (!client_check_can_connect(client, error))
                return FALSE;

        path_len = strlen(socket_path);
        if (path_len == 0 || path_len >= sizeof(client->address.sun_path)) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO,
                            "broker socket %s: path is %s (%zu bytes; a Unix socket path has 1 to %zu)",
                            socket_path, path_len == 0 ? "empty" : "too long", path_len,
                            sizeof(client->address.sun_path) - 1);
                return FALSE;
        }

        memset(&client->address, 0, sizeof(client->address));
        client->address.sun_family = AF_UNIX;
        memcpy(client->address.sun_path, socket_path, path_len);
        /* "@name" is the abstract namespace: no NUL terminator, a leading NUL instead. */
        if (socket_path[0] == '@') {
                client->address.sun_path[0] = '\0';
                client->address_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len);
        } else {
                client->address_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + 1);
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "broker socket %s: cannot create socket: %s",
                            socket_path, g_strerror(errno));
                return FALSE;
        }

        client->connect_retry = FALSE;
        if (connect(fd, (struct sockaddr *)&client->address, client->address_len) < 0) {
                int err = errno;

                if (err == EAGAIN || err == EINPROGRESS || err == EINTR) {
                        /* EAGAIN on AF_UNIX: backlog full, nothing in progress; retry on a timer. */
                        pending = TRUE;
                        client->connect_retry = err == EAGAIN;
                } else {
                        close(fd);
                        g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "broker socket %s: %s", socket_path,
                                    err == ECONNREFUSED ? "connection refused" : g_strerror(err));
                        return FALSE;
                }
        }

        g_free(client->peer_name);
        client->peer_name = g_strdup_printf("broker socket %s", socket_path);
        return deb_client_io_start(client, fd, pending, func, user_data, error);
}

gboolean deb_client_connect_fd(DebClient *client, int fd, DebClientConnectFunc func, gpointer user_data,
                               GError **error)
{
        int type = 0, flags;
        socklen_t len = sizeof(type);

        g_return_val_if_fail(client != NULL, FALSE);
        g_return_val_if_fail(fd >= 0, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (!client_check_can_connect(client, error)) {
                close(fd);
                return FALSE;
        }

        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "client %s: fd %d: not a socket: %s", client->id,
                            fd, g_strerror(errno));
                close(fd);
                return FALSE;
        }
        if (type != SOCK_STREAM) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "client %s: fd %d: not a stream socket",
                            client->id, fd);
                close(fd);
                return FALSE;
        }

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO,
                            "client %s: fd %d: cannot make it non-blocking: %s", client->id, fd,
                            g_strerror(errno));
                close(fd);
                return FALSE;
        }

        client->connect_retry = FALSE;
        g_free(client->peer_name);
        client->peer_name = g_strdup_printf("broker fd %d", fd);
        return deb_client_io_start(client, fd, FALSE, func, user_data, error);
}
