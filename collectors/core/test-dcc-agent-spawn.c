/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The test agent's children: the collector forked by hand as the agent's
 * embedded backend does, because LISTEN_PID must be the child's own pid: it
 * is written into the environment after fork() with async-signal-safe calls
 * only, then the collector is exec'd. Reaped by pid, whatever happens.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-dcc-agent-private.h"

#define LISTEN_PID_PREFIX "LISTEN_PID="

void test_agent_reap_now(TestAgent *agent)
{
        if (agent->pid <= 0)
                return;
        kill(agent->pid, SIGKILL);
        while (waitpid(agent->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        agent->pid = 0;
}

const char *test_program_path(const char *var)
{
        const char *path = g_getenv(var);

        if (!path)
                g_error("$%s is not set: run this test with meson test", var);
        return path;
}

/* Async-signal-safe: "LISTEN_PID=<pid>" into @buf. */
static void format_listen_pid(char *buf, pid_t pid)
{
        char digits[16];
        gsize n = 0, o = sizeof(LISTEN_PID_PREFIX) - 1;

        memcpy(buf, LISTEN_PID_PREFIX, o);
        do {
                digits[n++] = (char)('0' + pid % 10);
                pid /= 10;
        } while (pid > 0 && n < sizeof(digits));
        while (n > 0)
                buf[o++] = digits[--n];
        buf[o] = '\0';
}

/* The child, from fork() to execve(): async-signal-safe calls only. */
G_GNUC_NORETURN static void child_exec(const char *const *argv, char **envp, char *listen_pid_env, int listen_fd,
                                       int stdout_fd, int error_fd)
{
        int errsv;

        /* A test that dies does not leave its collector behind. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (dup2(stdout_fd, STDOUT_FILENO) < 0)
                goto fail;
        if (listen_fd >= 0) {
                /* Exactly what systemd passes: fd 3, LISTEN_FDS=1, LISTEN_PID=<this process>. */
                if (dup2(listen_fd, 3) < 0)
                        goto fail;
                format_listen_pid(listen_pid_env, getpid());
        }
        execve(argv[0], (char *const *)argv, envp);
fail:
        errsv = errno;
        (void)!write(error_fd, &errsv, sizeof(errsv));
        _exit(127);
}

/* Forks @argv; @activation_fd >= 0 becomes its fd 3 with LISTEN_FDS=1 and LISTEN_PID set. */
static void agent_spawn(TestAgent *agent, const char *const *argv, int activation_fd)
{
        gboolean activated = activation_fd >= 0;
        /* Whatever the test runs under must not leak into the collector's idea of its activation or id. */
        static const char *const drop[] = {
                "LISTEN_FDS",           "LISTEN_PID",    "LISTEN_FDNAMES",
                "NOTIFY_SOCKET",        "WATCHDOG_USEC", "WATCHDOG_PID",
                "DAEMONEYE_COLLECTOR_ID", "DAEMONEYE_COLLECTOR_TYPE", "DAEMONEYE_HEARTBEAT_INTERVAL_MS",
                "DAEMONEYE_SOCKET",
        };
        char listen_pid_env[32] = LISTEN_PID_PREFIX "0";
        g_auto(GStrv) base = g_get_environ();
        g_autoptr(GPtrArray) env = g_ptr_array_new();
        int out_pipe[2], err_pipe[2], child_errno = 0;
        ssize_t n;
        pid_t pid;

        g_assert_cmpint(agent->pid, ==, 0);
        g_assert_true(g_path_is_absolute(argv[0]));
        for (gsize i = 0; i < G_N_ELEMENTS(drop); i++)
                base = g_environ_unsetenv(base, drop[i]);
        for (char **e = base; *e; e++)
                g_ptr_array_add(env, *e);
        if (activated) {
                g_ptr_array_add(env, (char *)"LISTEN_FDS=1");
                g_ptr_array_add(env, listen_pid_env);
        }
        g_ptr_array_add(env, NULL);

        g_assert_cmpint(pipe2(out_pipe, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(err_pipe, O_CLOEXEC), ==, 0);
        out_pipe[0] = test_agent_fd_above_3(out_pipe[0]);
        out_pipe[1] = test_agent_fd_above_3(out_pipe[1]);
        err_pipe[0] = test_agent_fd_above_3(err_pipe[0]);
        err_pipe[1] = test_agent_fd_above_3(err_pipe[1]);

        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0)
                child_exec(argv, (char **)env->pdata, listen_pid_env, activation_fd, out_pipe[1], err_pipe[1]);
        close(out_pipe[1]);
        close(err_pipe[1]);
        agent->pid = pid;
        agent->stdout_fd = out_pipe[0];

        /* EOF: exec worked (the pipe closed on exec); an int: why it did not. */
        do
                n = read(err_pipe[0], &child_errno, sizeof(child_errno));
        while (n < 0 && errno == EINTR);
        close(err_pipe[0]);
        if (n == (ssize_t)sizeof(child_errno)) {
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                agent->pid = 0;
                g_error("exec %s: %s", argv[0], g_strerror(child_errno));
        }
}

void test_agent_spawn(TestAgent *agent, const char *const *argv, gboolean activated)
{
        agent_spawn(agent, argv, activated ? agent->listen_fd : -1);
}

void test_agent_spawn_connected(TestAgent *agent, const char *const *argv)
{
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        sv[0] = test_agent_fd_above_3(sv[0]);
        sv[1] = test_agent_fd_above_3(sv[1]);
        agent_spawn(agent, argv, sv[1]);
        close(sv[1]);
        test_agent_take_fd(agent, sv[0]);
}

void test_agent_start_activated(TestAgent *agent, const char *const *argv)
{
        g_auto(GStrv) capabilities = NULL;

        test_agent_spawn(agent, argv, TRUE);
        test_agent_dial(agent);
        capabilities = test_agent_handshake(agent);
}

TestAgent *test_agent_new_test_collector(const char *first_arg, ...)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        TestAgent *agent = test_agent_new("test");
        va_list args;

        g_ptr_array_add(argv, (char *)test_program_path("DCC_TEST_COLLECTOR"));
        va_start(args, first_arg);
        for (const char *arg = first_arg; arg; arg = va_arg(args, const char *))
                g_ptr_array_add(argv, (char *)arg);
        va_end(args);
        g_ptr_array_add(argv, NULL);
        test_agent_start_activated(agent, (const char *const *)argv->pdata);
        return agent;
}

int test_agent_wait_exit(TestAgent *agent, guint timeout_ms, char **out_stdout)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        g_autoptr(GString) text = g_string_new(NULL);
        int status = 0;
        pid_t r;

        g_assert_cmpint(agent->pid, >, 0);
        for (;;) {
                r = waitpid(agent->pid, &status, WNOHANG);
                if (r < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(r, >=, 0);
                if (r == agent->pid)
                        break;
                if (g_get_monotonic_time() > deadline)
                        g_error("collector pid %d did not exit within %u ms", (int)agent->pid, timeout_ms);
                g_usleep(5000);
        }
        agent->pid = 0;

        /* Exited: every writer of the pipe is gone, so this ends. */
        for (;;) {
                char buf[4096];
                ssize_t n = read(agent->stdout_fd, buf, sizeof(buf));

                if (n < 0 && errno == EINTR)
                        continue;
                g_assert_cmpint(n, >=, 0);
                if (n == 0)
                        break;
                g_string_append_len(text, buf, n);
        }
        close(agent->stdout_fd);
        agent->stdout_fd = -1;
        if (out_stdout)
                *out_stdout = g_strdup(text->str);
        if (WIFSIGNALED(status))
                g_error("collector killed by signal %d (%s)", WTERMSIG(status), g_strsignal(WTERMSIG(status)));
        g_assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

void test_agent_kill(TestAgent *agent, int signum)
{
        g_assert_cmpint(agent->pid, >, 0);
        g_assert_cmpint(kill(agent->pid, signum), ==, 0);
}
