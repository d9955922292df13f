/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the benchmark needs from the system: child processes started and
 * stopped by pid, the temp dir, free loopback ports, waiting for a server
 * to accept, and reading a process's memory and CPU from /proc.
 */
#include "bench-common.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- child processes ----------------------------------------------------- */

#define MAX_CHILDREN 16
static volatile pid_t children[MAX_CHILDREN];

static void children_add(pid_t pid)
{
        for (guint i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == 0) {
                        children[i] = pid;
                        return;
                }
        g_warning("bench: more than %d children; pid %d is not tracked for cleanup", MAX_CHILDREN, (int)pid);
}

static void children_remove(pid_t pid)
{
        for (guint i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid)
                        children[i] = 0;
}

static char **child_environment(void)
{
        /* Servers started here must not talk to the host's service manager
         * or journal, nor inherit socket activation meant for us. */
        static const char *const unset[] = {
                "NOTIFY_SOCKET", "LISTEN_FDS",   "LISTEN_PID",     "LISTEN_FDNAMES",
                "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "INVOCATION_ID",
        };
        char **envp = g_get_environ();

        for (gsize i = 0; i < G_N_ELEMENTS(unset); i++)
                envp = g_environ_unsetenv(envp, unset[i]);
        return envp;
}

pid_t bench_spawn(const char *const *argv, const char *log_path, GError **error)
{
        g_auto(GStrv) envp = child_environment();
        pid_t parent = getpid();
        int log_fd, null_fd;
        pid_t pid;

        log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (log_fd < 0) {
                g_set_error(error, BENCH_ERROR, 0, "%s: %s", log_path, g_strerror(errno));
                return -1;
        }
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        pid = fork();
        if (pid < 0) {
                int e = errno;

                close(log_fd);
                if (null_fd >= 0)
                        close(null_fd);
                g_set_error(error, BENCH_ERROR, 0, "fork for %s: %s", argv[0], g_strerror(e));
                return -1;
        }
        if (pid == 0) {
                /* child: async-signal-safe calls only */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                if (null_fd >= 0)
                        dup2(null_fd, STDIN_FILENO);
                dup2(log_fd, STDOUT_FILENO);
                dup2(log_fd, STDERR_FILENO);
                execve(argv[0], (char *const *)argv, envp);
                _exit(127);
        }
        close(log_fd);
        if (null_fd >= 0)
                close(null_fd);
        children_add(pid);
        return pid;
}

gboolean bench_child_alive(pid_t pid)
{
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid || (r < 0 && errno == ECHILD)) {
                children_remove(pid);
                return FALSE;
        }
        return TRUE;
}

void bench_stop(pid_t pid)
{
        int status;

        if (pid <= 0)
                return;
        if (kill(pid, SIGTERM) < 0 && errno == ESRCH) {
                waitpid(pid, &status, WNOHANG);
                children_remove(pid);
                return;
        }
        for (guint i = 0; i < 500; i++) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                if (r == pid || (r < 0 && errno == ECHILD)) {
                        children_remove(pid);
                        return;
                }
                g_usleep(10000);
        }
        g_printerr("bench: pid %d did not stop on SIGTERM within 5 s; sending SIGKILL\n", (int)pid);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        children_remove(pid);
}

void bench_kill_all(void)
{
        for (guint i = 0; i < MAX_CHILDREN; i++) {
                pid_t pid = children[i];

                if (pid > 0) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        children[i] = 0;
                }
        }
}

static char *tmpdir_path;
static char tmpdir_copy[256];

static void remove_tree_best_effort(const char *path)
{
        /* Only used at exit: the dir holds a few files we made, no subdirs. */
        GDir *dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (dir) {
                while ((name = g_dir_read_name(dir))) {
                        char *p = g_build_filename(path, name, NULL);

                        if (g_unlink(p) < 0 && errno == EISDIR)
                                remove_tree_best_effort(p);
                        g_free(p);
                }
                g_dir_close(dir);
        }
        g_rmdir(path);
}

const char *bench_tmpdir(GError **error)
{
        if (!tmpdir_path) {
                tmpdir_path = g_dir_make_tmp("daemoneye-bench-XXXXXX", error);
                if (tmpdir_path)
                        g_strlcpy(tmpdir_copy, tmpdir_path, sizeof tmpdir_copy);
        }
        return tmpdir_path;
}

void bench_tmpdir_remove(void)
{
        if (tmpdir_path) {
                remove_tree_best_effort(tmpdir_path);
                g_clear_pointer(&tmpdir_path, g_free);
                tmpdir_copy[0] = '\0';
        }
}

static void cleanup_at_exit(void)
{
        bench_kill_all();
        bench_tmpdir_remove();
}

static void cleanup_on_signal(int sig)
{
        /* kill() and waitpid() are async-signal-safe; the temp dir removal is
         * best effort on the way out. */
        bench_kill_all();
        if (tmpdir_copy[0])
                remove_tree_best_effort(tmpdir_copy);
        signal(sig, SIG_DFL);
        raise(sig);
}

void bench_install_cleanup(void)
{
        struct sigaction sa = {.sa_handler = cleanup_on_signal};

        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        atexit(cleanup_at_exit);
}

/* ---- files, ports, memory ------------------------------------------------ */

guint16 bench_free_port(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof sa;
        guint16 port = 0;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0)
                return 0;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
                port = ntohs(sa.sin_port);
        close(fd);
        return port;
}

static gboolean try_connect(const struct sockaddr *sa, socklen_t len, int family)
{
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        gboolean ok;

        if (fd < 0)
                return FALSE;
        ok = connect(fd, sa, len) == 0;
        close(fd);
        return ok;
}

static gboolean wait_connectable(const struct sockaddr *sa, socklen_t len, int family, const char *what,
                                 pid_t pid, guint timeout_ms, GError **error)
{
        guint64 deadline = bench_now_ns() + (guint64)timeout_ms * 1000000u;

        for (;;) {
                if (try_connect(sa, len, family))
                        return TRUE;
                if (pid > 0 && !bench_child_alive(pid)) {
                        g_set_error(error, BENCH_ERROR, 0,
                                    "%s: server pid %d exited before it accepted connections", what,
                                    (int)pid);
                        return FALSE;
                }
                if (bench_now_ns() > deadline) {
                        g_set_error(error, BENCH_ERROR, 0, "%s: not accepting connections after %u ms", what,
                                    timeout_ms);
                        return FALSE;
                }
                g_usleep(10000);
        }
}

gboolean bench_wait_tcp(guint16 port, pid_t pid, guint timeout_ms, GError **error)
{
        struct sockaddr_in sa = {
                .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        char what[32];

        g_snprintf(what, sizeof what, "127.0.0.1:%u", port);
        return wait_connectable((struct sockaddr *)&sa, sizeof sa, AF_INET, what, pid, timeout_ms, error);
}

gboolean bench_wait_unix(const char *path, pid_t pid, guint timeout_ms, GError **error)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        if (strlen(path) >= sizeof sa.sun_path) {
                g_set_error(error, BENCH_ERROR, 0, "%s: path too long for a Unix socket", path);
                return FALSE;
        }
        strcpy(sa.sun_path, path);
        return wait_connectable((struct sockaddr *)&sa, sizeof sa, AF_UNIX, path, pid, timeout_ms, error);
}

guint64 bench_read_status_kib(pid_t pid, const char *field)
{
        char path[64], *contents = NULL;
        guint64 value = 0;
        gsize flen = strlen(field);

        g_snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
        if (!g_file_get_contents(path, &contents, NULL, NULL))
                return 0;
        for (char *line = contents; line && *line;
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
                        value = g_ascii_strtoull(line + flen + 1, NULL, 10);
                        break;
                }
        }
        g_free(contents);
        return value;
}

static guint64 process_cpu_ticks_ns(pid_t pid)
{
        char path[64], *contents = NULL, *p;
        guint64 ticks = 0;

        g_snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        if (!g_file_get_contents(path, &contents, NULL, NULL))
                return 0;
        /* fields after the parenthesised comm: state is field 3, utime 14, stime 15 */
        p = strrchr(contents, ')');
        if (p) {
                g_auto(GStrv) f = g_strsplit(p + 2, " ", 16);

                if (g_strv_length(f) >= 14)
                        ticks = g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
        }
        g_free(contents);
        return ticks * (1000000000u / (guint64)sysconf(_SC_CLK_TCK));
}

guint64 bench_process_cpu_ns(pid_t pid)
{
        /* schedstat has nanoseconds (stat has 10 ms ticks, too coarse for a
         * 0.5 s run); summed over the live threads, which for these servers
         * are all the threads they ever had */
        char dir_path[64];
        GDir *dir;
        const char *name;
        guint64 sum = 0;

        g_snprintf(dir_path, sizeof dir_path, "/proc/%d/task", (int)pid);
        dir = g_dir_open(dir_path, 0, NULL);
        if (!dir)
                return process_cpu_ticks_ns(pid);
        while ((name = g_dir_read_name(dir))) {
                char path[96], *contents = NULL;

                g_snprintf(path, sizeof path, "%s/%s/schedstat", dir_path, name);
                if (g_file_get_contents(path, &contents, NULL, NULL))
                        sum += g_ascii_strtoull(contents, NULL, 10);
                g_free(contents);
        }
        g_dir_close(dir);
        return sum > 0 ? sum : process_cpu_ticks_ns(pid);
}

guint64 bench_thread_cpu_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (guint64)ts.tv_sec * G_GUINT64_CONSTANT(1000000000) + (guint64)ts.tv_nsec;
}

guint64 bench_self_cpu_ns(void)
{
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ((guint64)ru.ru_utime.tv_sec + (guint64)ru.ru_stime.tv_sec) * 1000000000u +
               ((guint64)ru.ru_utime.tv_usec + (guint64)ru.ru_stime.tv_usec) * 1000u;
}

char *bench_log_tail(const char *path, gsize max_bytes)
{
        char *contents = NULL;
        gsize len = 0;
        char *tail;

        if (!g_file_get_contents(path, &contents, &len, NULL))
                return g_strdup("(no log)");
        tail = g_strdup(len > max_bytes ? contents + len - max_bytes : contents);
        g_free(contents);
        g_strchomp(tail);
        return tail;
}
