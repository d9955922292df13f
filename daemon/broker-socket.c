/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "broker-socket.h"

static gboolean set_errno_error(GError **error, int err, const char *path, const char *what)
{
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "socket %s: %s: %s", path, what,
                    g_strerror(err));
        return FALSE;
}

static gboolean fill_address(struct sockaddr_un *sa, const char *path, GError **error)
{
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        if (strlen(path) >= sizeof(sa->sun_path)) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
                            "socket %s: path longer than %zu bytes", path, sizeof(sa->sun_path) - 1);
                return FALSE;
        }
        strcpy(sa->sun_path, path);
        return TRUE;
}

static char *describe_bound_path(int fd, const char *how)
{
        struct sockaddr_un sa = {0};
        socklen_t len = sizeof(sa);

        if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 ||
            len <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == '\0')
                return g_strdup_printf("(%s)", how);
        return g_strdup_printf("%.*s (%s)", (int)(len - offsetof(struct sockaddr_un, sun_path)), sa.sun_path,
                               how);
}

static gboolean take_systemd_socket(BrokerSocket *sock, int n, GError **error)
{
        for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
                if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                        continue;
                /* accept4() sets the flags of accepted sockets; the listener itself must not block either.
                 */
                if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
                    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                        return set_errno_error(error, errno, "(socket activation)", "fcntl");
                sock->fd = fd;
                sock->from_systemd = TRUE;
                sock->description = describe_bound_path(fd, "socket activation");
                return TRUE;
        }
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "socket activation: none of the %d file descriptors passed in is a listening Unix "
                    "stream socket",
                    n);
        return FALSE;
}

/*
 * A socket file at @path: if something answers, another broker is live and we
 * must not steal its path; if nothing does, it is left over from a crash.
 */
static gboolean remove_stale_socket(const char *path, GError **error)
{
        struct sockaddr_un sa;
        struct stat st;
        int fd, r;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return TRUE;
                return set_errno_error(error, errno, path, "stat");
        }
        if (!S_ISSOCK(st.st_mode)) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "socket %s: exists and is not a socket",
                            path);
                return FALSE;
        }
        if (!fill_address(&sa, path, error))
                return FALSE;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return set_errno_error(error, errno, path, "socket");
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (r == 0) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                            "socket %s: another broker is listening there", path);
                return FALSE;
        }
        if (errno != ECONNREFUSED)
                return set_errno_error(error, errno, path, "probing the existing socket");
        if (unlink(path) < 0 && errno != ENOENT)
                return set_errno_error(error, errno, path, "removing the stale socket");
        return TRUE;
}

static gboolean bind_socket(BrokerSocket *sock, const char *path, guint mode, GError **error)
{
        g_autofree char *dir = g_path_get_dirname(path);
        struct sockaddr_un sa;
        struct stat st;
        int fd;

        if (!fill_address(&sa, path, error))
                return FALSE;
        if (g_mkdir_with_parents(dir, 0755) < 0)
                return set_errno_error(error, errno, path, "creating its directory");
        if (!remove_stale_socket(path, error))
                return FALSE;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return set_errno_error(error, errno, path, "socket");
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int err = errno;

                close(fd);
                return set_errno_error(error, err, path, "bind");
        }
        /* From here on the path is ours: close() unlinks it on any failure. */
        sock->fd = fd;
        sock->path = g_strdup(path);
        if (stat(path, &st) == 0) {
                sock->dev = st.st_dev;
                sock->ino = st.st_ino;
        }
        if (chmod(path, mode) < 0)
                return set_errno_error(error, errno, path, "chmod");
        if (listen(fd, SOMAXCONN) < 0)
                return set_errno_error(error, errno, path, "listen");
        return TRUE;
}

/** broker_socket_open: see broker-socket.h. */
gboolean broker_socket_open(BrokerSocket *sock, const char *path, guint mode, GError **error)
{
        int n;
        gboolean ok;

        n = sd_listen_fds(1);
        if (n < 0)
                return set_errno_error(error, -n, "(socket activation)", "sd_listen_fds");
        if (n > 0)
                ok = take_systemd_socket(sock, n, error);
        else
                ok = bind_socket(sock, path, mode, error);
        if (!ok)
                broker_socket_close(sock);
        return ok;
}

/** broker_socket_close: closes the fd and unlinks the path if we bound it. */
void broker_socket_close(BrokerSocket *sock)
{
        struct stat st;

        if (sock->fd >= 0)
                close(sock->fd);
        sock->fd = -1;
        if (sock->path && stat(sock->path, &st) == 0 && st.st_dev == sock->dev && st.st_ino == sock->ino)
                unlink(sock->path);
        g_clear_pointer(&sock->path, g_free);
        g_clear_pointer(&sock->description, g_free);
}

/** broker_socket_describe: Returns: the path, and "(socket activation)" after it when so. */
const char *broker_socket_describe(const BrokerSocket *sock)
{
        if (sock->description)
                return sock->description;
        return sock->path ? sock->path : "(closed)";
}
