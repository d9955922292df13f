/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/*
 * The broker's listening socket: taken from systemd (socket activation) or
 * bound by us. Only a socket we bound is unlinked on close, and only while
 * the path still names it (a newer broker may have replaced it).
 */
typedef struct {
        int fd;
        char *path; /* the path we bound, or NULL */
        gboolean from_systemd;
        char *description; /* for logs: the path, and how we got the socket */
        dev_t dev;         /* identity of the socket inode we bound */
        ino_t ino;
} BrokerSocket;

#define BROKER_SOCKET_INIT                                                                                  \
        {                                                                                                   \
                .fd = -1                                                                                    \
        }

/**
 * broker_socket_open:
 * @path: where to bind when not socket-activated
 * @mode: permission bits for the bound socket (socket_mode)
 *
 * With $LISTEN_FDS (see sd_listen_fds(3)) takes the first listening Unix
 * stream socket passed in. Otherwise creates @path's directory (0755) if
 * missing, removes a stale socket there (one nobody answers on) but refuses to
 * start when a live broker answers, binds, chmods to @mode and listens.
 * The fd is non-blocking and close-on-exec.
 */
gboolean broker_socket_open(BrokerSocket *sock, const char *path, guint mode, GError **error);

/** broker_socket_close: closes the fd and unlinks the path if we bound it. */
void broker_socket_close(BrokerSocket *sock);

/** broker_socket_describe: Returns: the path, with "(socket activation)" after it when so. */
const char *broker_socket_describe(const BrokerSocket *sock);

G_END_DECLS
