/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The embedded backend: without systemd the agent does what a .socket unit
 * with Accept=no and its .service would. It binds the collector socket
 * (0600, parent directory created) once and keeps it across restarts,
 * forks the collector with that listening socket as fd 3 and LISTEN_FDS=1,
 * LISTEN_PID=<the child's pid>, LISTEN_FDNAMES=<instance id> (as
 * FileDescriptorName= would), then connects to the socket like the agent
 * does under systemd. The collector's code path is the same either way.
 *
 * The child is forked by hand rather than by g_spawn: LISTEN_PID must be the
 * child's own pid, so it is written into the environment after fork(), with
 * nothing but async-signal-safe calls between fork() and execve(). An exec
 * failure comes back through a close-on-exec pipe, so launch() fails with
 * "exec …: No such file or directory" instead of a child exiting 127.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>

#include "collector-backend.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define LISTEN_PID_PREFIX "LISTEN_PID="
/* Enough for "LISTEN_PID=" and any pid. */
#define LISTEN_PID_BUF 32

typedef struct {
        char *id;
        char *socket_path; /* bound path, unlinked on release */
        int listen_fd;
        GPid pid;
        guint child_watch;
        struct _EmbeddedBackend *backend;
} Instance;

typedef struct _EmbeddedBackend {
        CollectorBackend parent;
        GHashTable *instances; /* id → Instance */
} EmbeddedBackend;

static void instance_close_socket(Instance *inst)
{
        struct stat st;

        if (inst->listen_fd < 0)
                return;
        close(inst->listen_fd);
        inst->listen_fd = -1;
        /* Only our own socket: someone may have replaced the path meanwhile. */
        if (inst->socket_path && lstat(inst->socket_path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void)unlink(inst->socket_path);
        g_clear_pointer(&inst->socket_path, g_free);
}

/* Ends a process still running when the backend goes away: SIGKILL and reap, so no zombie is left. */
static void instance_reap_now(Instance *inst)
{
        if (inst->child_watch) {
                g_source_remove(inst->child_watch);
                inst->child_watch = 0;
        }
        if (inst->pid > 0) {
                g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "COLLECTOR_ID", inst->id, "MESSAGE",
                                 "collector %s: killing pid %d", inst->id, (int)inst->pid);
                kill(inst->pid, SIGKILL);
                while (waitpid(inst->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                inst->pid = 0;
        }
}

static void instance_free(gpointer data)
{
        Instance *inst = data;

        instance_reap_now(inst);
        instance_close_socket(inst);
        g_free(inst->id);
        g_free(inst);
}

static Instance *instance_get(EmbeddedBackend *eb, const char *id)
{
        Instance *inst = g_hash_table_lookup(eb->instances, id);

        if (!inst) {
                inst = g_new0(Instance, 1);
                inst->id = g_strdup(id);
                inst->listen_fd = -1;
                inst->backend = eb;
                g_hash_table_insert(eb->instances, inst->id, inst);
        }
        return inst;
}

static gboolean set_errno_error(GError **error, int errsv, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean set_errno_error(GError **error, int errsv, const char *fmt, ...)
{
        va_list ap;
        g_autofree char *what = NULL;

        va_start(ap, fmt);
        what = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "%s: %s", what, g_strerror(errsv));
        return FALSE;
}

/* Binds and listens on @path (0600, parent directory 0755 created), replacing a stale socket file. */
static int bind_socket(const char *id, const char *path, GError **error)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        g_autofree char *dir = g_path_get_dirname(path);
        struct stat st;
        mode_t old_umask;
        int fd, r, errsv;

        if (strlen(path) >= sizeof(addr.sun_path)) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
                            "collector %s: socket %s: longer than %zu bytes", id, path,
                            sizeof(addr.sun_path) - 1);
                return -1;
        }
        strcpy(addr.sun_path, path);
        if (g_mkdir_with_parents(dir, 0755) < 0) {
                set_errno_error(error, errno, "collector %s: socket directory %s", id, dir);
                return -1;
        }
        /* A socket left by a previous agent that died; anything else at that path is not ours to remove. */
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                                    "collector %s: socket %s: exists and is not a socket", id, path);
                        return -1;
                }
                (void)unlink(path);
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                set_errno_error(error, errno, "collector %s: socket()", id);
                return -1;
        }
        /* The mode is set at bind time (umask): the socket is never reachable with a wider one. */
        old_umask = umask(0177);
        r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
        errsv = errno;
        umask(old_umask);
        if (r < 0 || listen(fd, SOMAXCONN) < 0) {
                if (r == 0)
                        errsv = errno;
                close(fd);
                set_errno_error(error, errsv, "collector %s: socket %s", id, path);
                return -1;
        }
        return fd;
}

/* Connections made to a collector that died before accepting them: the next one must not get them. */
static void drain_stale_connections(int listen_fd)
{
        int fd;

        while ((fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0)
                close(fd);
}

static int connect_socket(const char *id, const char *path, GError **error)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd;

        strcpy(addr.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                set_errno_error(error, errno, "collector %s: socket()", id);
                return -1;
        }
        /* Completes at once: the listening socket queues it until the collector accepts. */
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                int errsv = errno;

                close(fd);
                set_errno_error(error, errsv, "collector %s: connect to %s", id, path);
                return -1;
        }
        return fd;
}

static char **child_environment(const CollectorLaunch *launch, const char *heartbeat_ms,
                                const char *listen_pid_slot)
{
        static const char *const drop[] = {
                "LISTEN_FDS",         "LISTEN_PID",
                "LISTEN_FDNAMES",     "NOTIFY_SOCKET",
                "WATCHDOG_USEC",      "WATCHDOG_PID",
                "INVOCATION_ID",      COLLECTOR_ENV_ID,
                COLLECTOR_ENV_TYPE,   COLLECTOR_ENV_HEARTBEAT_MS,
                COLLECTOR_ENV_SOCKET,
        };
        g_auto(GStrv) base = g_get_environ();
        GPtrArray *env = g_ptr_array_new();

        for (gsize i = 0; i < G_N_ELEMENTS(drop); i++)
                base = g_environ_unsetenv(base, drop[i]);
        for (char **e = base; *e; e++)
                g_ptr_array_add(env, g_strdup(*e));
        g_ptr_array_add(env, g_strdup("LISTEN_FDS=1"));
        g_ptr_array_add(env, g_strconcat("LISTEN_FDNAMES=", launch->id, NULL));
        g_ptr_array_add(env, g_strconcat(COLLECTOR_ENV_ID "=", launch->id, NULL));
        if (launch->config->type)
                g_ptr_array_add(env, g_strconcat(COLLECTOR_ENV_TYPE "=", launch->config->type, NULL));
        g_ptr_array_add(env, g_strconcat(COLLECTOR_ENV_HEARTBEAT_MS "=", heartbeat_ms, NULL));
        if (launch->broker_socket_path)
                g_ptr_array_add(env,
                                g_strconcat(COLLECTOR_ENV_SOCKET "=", launch->broker_socket_path, NULL));
        /* Filled in by the child: its pid is known only there. */
        g_ptr_array_add(env, g_strdup(listen_pid_slot));
        g_ptr_array_add(env, NULL);
        return (char **)g_ptr_array_free(env, FALSE);
}

/* Async-signal-safe decimal formatting, for the child between fork() and exec(). */
static void format_listen_pid(char *buf, pid_t pid)
{
        char digits[16];
        gsize n = 0, o = strlen(LISTEN_PID_PREFIX);

        memcpy(buf, LISTEN_PID_PREFIX, o);
        do {
                digits[n++] = (char)('0' + pid % 10);
                pid /= 10;
        } while (pid > 0 && n < sizeof(digits));
        while (n > 0)
                buf[o++] = digits[--n];
        buf[o] = '\0';
}

/* The child, from fork() to execve(): async-signal-safe calls only. Never returns. */
G_GNUC_NORETURN static void child_exec(char **argv, char **envp, char *listen_pid_env, int listen_fd,
                                       int null_fd, int error_fd)
{
        sigset_t none;
        int errsv;

        (void)setsid();
        /* If the agent dies without stopping it, the collector is told at once (it also sees its connection
         * close). */
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        for (int sig = 1; sig < NSIG; sig++)
                (void)signal(sig, SIG_DFL);
        sigemptyset(&none);
        (void)sigprocmask(SIG_SETMASK, &none, NULL);

        if (dup2(null_fd, STDIN_FILENO) < 0)
                goto fail;
        if (listen_fd == 3) {
                if (fcntl(3, F_SETFD, 0) < 0)
                        goto fail;
        } else if (dup2(listen_fd, 3) < 0) {
                goto fail;
        }
        /* Whatever the agent opened without O_CLOEXEC stays out of the collector; error_fd (>= 4) closes at
         * exec. */
        if (syscall(SYS_close_range, 4U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                for (int fd = 4; fd < 4096; fd++)
                        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);

        format_listen_pid(listen_pid_env, getpid());
        execve(argv[0], argv, envp);
fail:
        errsv = errno;
        (void)!write(error_fd, &errsv, sizeof(errsv));
        _exit(127);
}

static void on_child_exited(GPid pid, int wait_status, gpointer user_data)
{
        Instance *inst = user_data;
        EmbeddedBackend *eb = inst->backend;
        g_autofree char *id = g_strdup(inst->id);

        /* GLib reaped it; the watch source goes away when this returns. */
        inst->child_watch = 0;
        inst->pid = 0;
        g_spawn_close_pid(pid);
        eb->parent.events.exited(&eb->parent, id, pid, wait_status, eb->parent.user_data);
}

/* Moves @fd to >= 4, so the child's dup2(listen_fd, 3) cannot clobber it. */
static int fd_above_3(int fd)
{
        int moved;

        if (fd < 0 || fd > 3)
                return fd;
        moved = fcntl(fd, F_DUPFD_CLOEXEC, 4);
        close(fd);
        return moved;
}

static int embedded_launch(CollectorBackend *backend, const CollectorLaunch *launch, GPid *pid_out,
                           GError **error)
{
        EmbeddedBackend *eb = (EmbeddedBackend *)backend;
        Instance *inst = instance_get(eb, launch->id);
        g_autofree char *heartbeat_ms =
                g_strdup_printf("%u", launch->config->heartbeat_interval_seconds * 1000);
        const char *vars[] = {
                COLLECTOR_ENV_ID,
                launch->id,
                COLLECTOR_ENV_TYPE,
                launch->config->type ? launch->config->type : "",
                COLLECTOR_ENV_HEARTBEAT_MS,
                heartbeat_ms,
                COLLECTOR_ENV_SOCKET,
                launch->broker_socket_path ? launch->broker_socket_path : "",
                NULL,
        };
        char listen_pid_env[LISTEN_PID_BUF] = LISTEN_PID_PREFIX "0";
        g_auto(GStrv) argv = NULL;
        g_auto(GStrv) envp = NULL;
        char **listen_pid_slot;
        int pipe_fds[2] = {-1, -1}, null_fd, conn_fd, child_errno = 0;
        ssize_t n;
        pid_t pid;

        *pid_out = 0;
        if (inst->pid > 0) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                            "collector %s: already running as pid %d", launch->id, (int)inst->pid);
                return -1;
        }
        argv = collector_config_expand_exec(launch->config, vars, error);
        if (!argv)
                return -1;

        /* A changed socket= takes effect at this start. */
        if (inst->listen_fd >= 0 && g_strcmp0(inst->socket_path, launch->socket_path) != 0)
                instance_close_socket(inst);
        if (inst->listen_fd < 0) {
                inst->listen_fd = fd_above_3(bind_socket(launch->id, launch->socket_path, error));
                if (inst->listen_fd < 0)
                        return -1;
                inst->socket_path = g_strdup(launch->socket_path);
        }
        drain_stale_connections(inst->listen_fd);

        envp = child_environment(launch, heartbeat_ms, listen_pid_env);
        /* The slot is the last entry: the child writes its pid into its copy of listen_pid_env. */
        listen_pid_slot = &envp[g_strv_length(envp) - 1];
        g_free(*listen_pid_slot);
        *listen_pid_slot = NULL;

        null_fd = fd_above_3(open("/dev/null", O_RDWR | O_CLOEXEC));
        if (null_fd < 0 || pipe2(pipe_fds, O_CLOEXEC) < 0) {
                int errsv = errno;

                if (null_fd >= 0)
                        close(null_fd);
                set_errno_error(error, errsv, "collector %s: preparing to start %s", launch->id, argv[0]);
                return -1;
        }
        pipe_fds[0] = fd_above_3(pipe_fds[0]);
        pipe_fds[1] = fd_above_3(pipe_fds[1]);
        *listen_pid_slot = listen_pid_env;

        pid = fork();
        if (pid == 0)
                child_exec(argv, envp, listen_pid_env, inst->listen_fd, null_fd, pipe_fds[1]);
        *listen_pid_slot = NULL; /* on the stack: must not be freed with envp */
        close(null_fd);
        close(pipe_fds[1]);
        if (pid < 0) {
                int errsv = errno;

                close(pipe_fds[0]);
                set_errno_error(error, errsv, "collector %s: fork", launch->id);
                return -1;
        }

        /* EOF: exec succeeded (the pipe closed on exec); an int: why it failed. Bounded by one execve(). */
        do
                n = read(pipe_fds[0], &child_errno, sizeof(child_errno));
        while (n < 0 && errno == EINTR);
        close(pipe_fds[0]);
        if (n == (ssize_t)sizeof(child_errno)) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                set_errno_error(error, child_errno, "collector %s: exec %s", launch->id, argv[0]);
                return -1;
        }

        inst->pid = pid;
        inst->child_watch = g_child_watch_add(pid, on_child_exited, inst);

        conn_fd = connect_socket(launch->id, launch->socket_path, error);
        if (conn_fd < 0) {
                /* A failed launch leaves nothing running: the caller is not told of an exit. */
                instance_reap_now(inst);
                return -1;
        }
        g_log_structured(G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, "COLLECTOR_ID", launch->id, "MESSAGE",
                         "collector %s: started %s as pid %d on socket %s", launch->id, argv[0], (int)pid,
                         launch->socket_path);
        *pid_out = pid;
        return conn_fd;
}

static void embedded_terminate(CollectorBackend *backend, const char *id)
{
        Instance *inst = g_hash_table_lookup(((EmbeddedBackend *)backend)->instances, id);

        if (!inst || inst->pid <= 0)
                return;
        /* SIGCONT after SIGTERM, as systemd does: a stopped process must be able to act on it. */
        kill(inst->pid, SIGTERM);
        kill(inst->pid, SIGCONT);
}

static void embedded_kill(CollectorBackend *backend, const char *id)
{
        Instance *inst = g_hash_table_lookup(((EmbeddedBackend *)backend)->instances, id);

        if (inst && inst->pid > 0)
                kill(inst->pid, SIGKILL);
}

static void embedded_release(CollectorBackend *backend, const char *id)
{
        Instance *inst = g_hash_table_lookup(((EmbeddedBackend *)backend)->instances, id);

        if (!inst || inst->pid > 0)
                return;
        g_hash_table_remove(((EmbeddedBackend *)backend)->instances, id);
}

static void embedded_free(CollectorBackend *backend)
{
        EmbeddedBackend *eb = (EmbeddedBackend *)backend;

        g_hash_table_unref(eb->instances);
        g_free(eb);
}

static const CollectorBackendOps embedded_ops = {
        .name = "embedded",
        .launch = embedded_launch,
        .terminate = embedded_terminate,
        .kill = embedded_kill,
        .release = embedded_release,
        .free = embedded_free,
};

/** collector_backend_embedded_new: see collector-backend.h. */
CollectorBackend *collector_backend_embedded_new(const CollectorBackendEvents *events, gpointer user_data)
{
        EmbeddedBackend *eb = g_new0(EmbeddedBackend, 1);

        eb->parent.ops = &embedded_ops;
        eb->parent.events = *events;
        eb->parent.user_data = user_data;
        eb->instances = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, instance_free);
        return &eb->parent;
}
