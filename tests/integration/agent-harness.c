/* SPDX-License-Identifier: Apache-2.0 */
#include "agent-harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "raw-conn.h"

#define HARNESS_ERROR (g_quark_from_static_string("agent-harness-error"))
#define LOG_TAIL_BYTES 4096

/* A spawned process, waited for through a pidfd so waits wake up the moment it exits. */
typedef struct {
        GPid pid;
        int pidfd;
        gboolean reaped;
        int status;
} Child;

struct _HarnessPeer {
        AgentHarness *harness;
        char *name;
        Child child;
        char *out_path;
        char *err_path;
        char *ready_path;
        GHashTable *results; /* key → value, from the output's key=value tokens */
};

struct _AgentHarness {
        char *dir;
        char *config_path;
        char *socket_path;
        char *log_path;
        GKeyFile *config;
        Child agent;
        gboolean started;
        GPtrArray *peers;
};

/*
 * Children still running, for the fatal-signal handler: a failed g_assert() aborts
 * the test program without running any cleanup function, and the agent and
 * the peers must not outlive it.
 */
#define MAX_LIVE_CHILDREN 256
static volatile sig_atomic_t live_children[MAX_LIVE_CHILDREN];

static void on_fatal_signal(int sig)
{
        for (guint i = 0; i < MAX_LIVE_CHILDREN; i++)
                if (live_children[i] > 0)
                        kill((pid_t)live_children[i], SIGKILL);
        /* Die of the same signal: g_error() raises SIGTRAP and would spin forever if we returned. */
        signal(sig, SIG_DFL);
        raise(sig);
}

static void live_children_track(GPid pid, gboolean add)
{
        for (guint i = 0; i < MAX_LIVE_CHILDREN; i++) {
                if (add && live_children[i] == 0) {
                        live_children[i] = pid;
                        return;
                }
                if (!add && live_children[i] == pid) {
                        live_children[i] = 0;
                        return;
                }
        }
}

static void child_setup(gpointer user_data)
{
        /* Second line of defence: the kernel kills the child if the test program dies. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != (pid_t)GPOINTER_TO_INT(user_data))
                _exit(127);
}

static gboolean child_spawn(Child *c, char **argv, char **envp, int out_fd, int err_fd, GError **error)
{
        *c = (Child){.pid = 0, .pidfd = -1};
        if (!g_spawn_async_with_fds(NULL, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, child_setup,
                                    GINT_TO_POINTER(getpid()), &c->pid, -1, out_fd, err_fd, error))
                return FALSE;
        live_children_track(c->pid, TRUE);
        /* Without pidfds (old kernels) waits fall back to polling waitpid(). */
        c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
        return TRUE;
}

/* Returns TRUE once the child exited and was reaped; waits at most @timeout_ms. */
static gboolean child_wait(Child *c, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        while (!c->reaped) {
                int status;
                pid_t r = waitpid(c->pid, &status, WNOHANG);
                gint64 remaining_ms;

                if (r == c->pid || (r < 0 && errno == ECHILD)) {
                        c->reaped = TRUE;
                        c->status = r == c->pid ? status : -1;
                        live_children_track(c->pid, FALSE);
                        if (c->pidfd >= 0)
                                close(c->pidfd);
                        c->pidfd = -1;
                        break;
                }
                remaining_ms = (deadline - g_get_monotonic_time()) / 1000;
                if (remaining_ms <= 0)
                        return FALSE;
                if (c->pidfd >= 0) {
                        struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
                        (void)poll(&pfd, 1, (int)remaining_ms);
                } else {
                        g_usleep((gulong)MIN(remaining_ms, 5) * 1000);
                }
        }
        return TRUE;
}

/* Waits up to @ms, returning early when @c exits: a pause between two checks of a condition. */
static void child_pause(Child *c, guint ms)
{
        if (c->reaped)
                return;
        if (c->pidfd >= 0) {
                struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
                (void)poll(&pfd, 1, (int)ms);
        } else {
                g_usleep(ms * 1000);
        }
}

static void child_kill(Child *c)
{
        if (c->pid <= 0 || c->reaped)
                return;
        kill(c->pid, SIGKILL);
        child_wait(c, 10000);
}

static char *describe_status(int status)
{
        if (status < 0)
                return g_strdup("not reaped");
        if (WIFEXITED(status))
                return g_strdup_printf("exit status %d", WEXITSTATUS(status));
        if (WIFSIGNALED(status))
                return g_strdup_printf("killed by signal %d (%s)", WTERMSIG(status),
                                       g_strsignal(WTERMSIG(status)));
        return g_strdup_printf("wait status 0x%x", status);
}

static char *read_tail(const char *path, gsize max_bytes)
{
        g_autofree char *contents = NULL;
        gsize len = 0;

        if (!g_file_get_contents(path, &contents, &len, NULL))
                return g_strdup("(nothing)");
        if (len <= max_bytes)
                return g_steal_pointer(&contents);
        return g_strdup_printf("…%s", contents + len - max_bytes);
}

static gboolean remove_flat_dir(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (!dir)
                return FALSE;
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *file = g_build_filename(path, name, NULL);
                (void)g_unlink(file);
        }
        return g_rmdir(path) == 0;
}

AgentHarness *agent_harness_new(GError **error)
{
        static gsize abort_handler_installed = 0;
        g_autoptr(AgentHarness) h = g_new0(AgentHarness, 1);
        struct sockaddr_un addr;

        if (g_once_init_enter(&abort_handler_installed)) {
                /* g_assert() aborts, g_error() traps: neither runs cleanup functions. */
                static const int fatal_signals[] = {SIGABRT, SIGTRAP, SIGSEGV, SIGBUS};
                struct sigaction sa = {.sa_handler = on_fatal_signal};

                sigemptyset(&sa.sa_mask);
                for (gsize i = 0; i < G_N_ELEMENTS(fatal_signals); i++)
                        sigaction(fatal_signals[i], &sa, NULL);
                g_once_init_leave(&abort_handler_installed, 1);
        }

        h->agent.pidfd = -1;
        h->peers = g_ptr_array_new();
        h->dir = g_dir_make_tmp("daemoneye-itest-XXXXXX", error);
        if (!h->dir)
                return NULL;
        h->config_path = g_build_filename(h->dir, "daemoneye.conf", NULL);
        h->socket_path = g_build_filename(h->dir, "eventbus.sock", NULL);
        h->log_path = g_build_filename(h->dir, "agent.log", NULL);
        if (strlen(h->socket_path) >= sizeof(addr.sun_path)) {
                g_set_error(error, HARNESS_ERROR, 0, "socket path %s is too long for AF_UNIX (set TMPDIR)",
                            h->socket_path);
                return NULL;
        }

        h->config = g_key_file_new();
        g_key_file_set_string(h->config, "broker", "socket_path", h->socket_path);
        g_key_file_set_string(h->config, "broker", "enable_metrics", "true");
        g_key_file_set_string(h->config, "broker", "socket_mode", "0600");
        return g_steal_pointer(&h);
}

static void harness_peer_free(HarnessPeer *p)
{
        child_kill(&p->child);
        g_free(p->name);
        g_free(p->out_path);
        g_free(p->err_path);
        g_free(p->ready_path);
        g_clear_pointer(&p->results, g_hash_table_unref);
        g_free(p);
}

void agent_harness_free(AgentHarness *h)
{
        if (!h)
                return;
        if (h->peers) {
                for (guint i = 0; i < h->peers->len; i++)
                        harness_peer_free(h->peers->pdata[i]);
                g_ptr_array_unref(h->peers);
        }
        child_kill(&h->agent);
        if (h->dir) {
                if (g_test_failed())
                        g_test_message("kept %s for inspection", h->dir);
                else
                        remove_flat_dir(h->dir);
        }
        g_clear_pointer(&h->config, g_key_file_unref);
        g_free(h->dir);
        g_free(h->config_path);
        g_free(h->socket_path);
        g_free(h->log_path);
        g_free(h);
}

void agent_harness_set(AgentHarness *h, const char *key, const char *value)
{
        g_key_file_set_string(h->config, "broker", key, value);
}

const char *agent_harness_get_socket_path(AgentHarness *h)
{
        return h->socket_path;
}

char *agent_harness_get_log_tail(AgentHarness *h, gsize max_bytes)
{
        return read_tail(h->log_path, max_bytes);
}

static char **agent_environment(void)
{
        /* The agent must not talk to the host's service manager or journal. */
        static const char *const unset[] = {
                "NOTIFY_SOCKET", "LISTEN_FDS",   "LISTEN_PID",     "LISTEN_FDNAMES",
                "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "INVOCATION_ID",
        };
        char **envp = g_get_environ();

        for (gsize i = 0; i < G_N_ELEMENTS(unset); i++)
                envp = g_environ_unsetenv(envp, unset[i]);
        return envp;
}

gboolean agent_harness_start(AgentHarness *h, guint timeout_ms, GError **error)
{
        const char *agent_path = g_getenv("DAEMONEYE_AGENT");
        g_auto(GStrv) envp = agent_environment();
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        int log_fd;
        gboolean ok;

        g_return_val_if_fail(!h->started, FALSE);
        if (!agent_path) {
                g_set_error(error, HARNESS_ERROR, 0, "DAEMONEYE_AGENT is not set (run through meson test)");
                return FALSE;
        }
        if (!g_key_file_save_to_file(h->config, h->config_path, error))
                return FALSE;

        log_fd = open(h->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (log_fd < 0) {
                int errsv = errno;
                g_set_error(error, HARNESS_ERROR, 0, "%s: %s", h->log_path, g_strerror(errsv));
                return FALSE;
        }
        {
                char *argv[] = {(char *)agent_path, (char *)"--config", h->config_path, NULL};
                ok = child_spawn(&h->agent, argv, envp, log_fd, log_fd, error);
        }
        close(log_fd);
        if (!ok)
                return FALSE;
        h->started = TRUE;

        /* Ready means a full handshake works, not just that the socket file exists. */
        for (;;) {
                g_autoptr(GError) local = NULL;
                g_autoptr(RawConn) conn = NULL;

                if (!agent_harness_is_running(h)) {
                        g_autofree char *status = describe_status(h->agent.status);
                        g_autofree char *log = agent_harness_get_log_tail(h, LOG_TAIL_BYTES);
                        g_set_error(error, HARNESS_ERROR, 0, "agent exited during startup (%s); log:\n%s",
                                    status, log);
                        return FALSE;
                }
                conn = raw_conn_connect(h->socket_path, &local);
                if (conn) {
                        if (raw_conn_handshake(conn, "harness-probe", 5000, &local))
                                return TRUE;
                        g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                                   "agent %d: handshake on %s: ", (int)h->agent.pid,
                                                   h->socket_path);
                        return FALSE;
                }
                if (g_get_monotonic_time() >= deadline) {
                        g_autofree char *log = agent_harness_get_log_tail(h, LOG_TAIL_BYTES);
                        g_set_error(error, HARNESS_ERROR, 0,
                                    "agent %d: %s not accepting within %u ms (%s); log:\n%s",
                                    (int)h->agent.pid, h->socket_path, timeout_ms, local->message, log);
                        return FALSE;
                }
                child_pause(&h->agent, 10);
        }
}

gboolean agent_harness_is_running(AgentHarness *h)
{
        return h->started && !child_wait(&h->agent, 0);
}

gboolean agent_harness_signal(AgentHarness *h, int sig, GError **error)
{
        if (!agent_harness_is_running(h)) {
                g_set_error(error, HARNESS_ERROR, 0, "agent is not running, cannot send signal %d", sig);
                return FALSE;
        }
        if (kill(h->agent.pid, sig) < 0) {
                int errsv = errno;
                g_set_error(error, HARNESS_ERROR, 0, "kill(%d, %d): %s", (int)h->agent.pid, sig,
                            g_strerror(errsv));
                return FALSE;
        }
        return TRUE;
}

/* Finds the first complete line at or after @offset of @log holding "metrics: {". */
static char *find_metrics_json(const char *log, gsize len, gsize offset)
{
        const char *p = log + offset;

        while (p < log + len) {
                const char *eol = memchr(p, '\n', (gsize)(log + len - p));
                const char *m;

                if (!eol)
                        return NULL; /* the line is still being written */
                m = g_strstr_len(p, eol - p, "metrics: {");
                if (m)
                        return g_strndup(m + strlen("metrics: "), (gsize)(eol - m) - strlen("metrics: "));
                p = eol + 1;
        }
        return NULL;
}

JsonObject *agent_harness_get_metrics(AgentHarness *h, guint timeout_ms, GError **error)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        struct stat st;
        gsize offset;

        offset = stat(h->log_path, &st) == 0 ? (gsize)st.st_size : 0;
        if (!agent_harness_signal(h, SIGUSR1, error))
                return NULL;

        for (;;) {
                g_autofree char *log = NULL;
                g_autofree char *json = NULL;
                gsize len = 0;

                if (g_file_get_contents(h->log_path, &log, &len, NULL) && len > offset &&
                    (json = find_metrics_json(log, len, offset))) {
                        g_autoptr(JsonParser) parser = json_parser_new();
                        JsonNode *root;

                        if (!json_parser_load_from_data(parser, json, -1, error)) {
                                g_prefix_error(error, "metrics line '%s': ", json);
                                return NULL;
                        }
                        root = json_parser_get_root(parser);
                        if (!JSON_NODE_HOLDS_OBJECT(root)) {
                                g_set_error(error, HARNESS_ERROR, 0, "metrics line '%s' is not an object",
                                            json);
                                return NULL;
                        }
                        return json_object_ref(json_node_get_object(root));
                }
                if (!agent_harness_is_running(h) || g_get_monotonic_time() >= deadline) {
                        g_autofree char *tail = agent_harness_get_log_tail(h, LOG_TAIL_BYTES);
                        g_set_error(error, HARNESS_ERROR, 0,
                                    "no 'metrics: {…}' line within %u ms of SIGUSR1 (agent %s); log:\n%s",
                                    timeout_ms, agent_harness_is_running(h) ? "running" : "gone", tail);
                        return NULL;
                }
                child_pause(&h->agent, 5);
        }
}

gboolean agent_harness_stop(AgentHarness *h, guint timeout_ms, GError **error)
{
        g_autofree char *status = NULL;
        g_autofree char *log = NULL;

        if (!agent_harness_signal(h, SIGTERM, error))
                return FALSE;
        if (!child_wait(&h->agent, timeout_ms)) {
                child_kill(&h->agent);
                log = agent_harness_get_log_tail(h, LOG_TAIL_BYTES);
                g_set_error(error, HARNESS_ERROR, 0,
                            "agent %d did not exit within %u ms of SIGTERM; log:\n%s", (int)h->agent.pid,
                            timeout_ms, log);
                return FALSE;
        }
        if (!WIFEXITED(h->agent.status) || WEXITSTATUS(h->agent.status) != 0) {
                status = describe_status(h->agent.status);
                log = agent_harness_get_log_tail(h, LOG_TAIL_BYTES);
                g_set_error(error, HARNESS_ERROR, 0, "agent %d: %s after SIGTERM; log:\n%s",
                            (int)h->agent.pid, status, log);
                return FALSE;
        }
        if (g_file_test(h->socket_path, G_FILE_TEST_EXISTS)) {
                g_set_error(error, HARNESS_ERROR, 0, "agent exited but left its socket %s behind",
                            h->socket_path);
                return FALSE;
        }
        return TRUE;
}

HarnessPeer *agent_harness_spawn_peer(AgentHarness *h, const char *name, const char *const *args,
                                      GError **error)
{
        const char *peer_path = g_getenv("DAEMONEYE_BROKER_PEER");
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        HarnessPeer *p;
        int out_fd, err_fd;
        gboolean ok;

        if (!peer_path) {
                g_set_error(error, HARNESS_ERROR, 0,
                            "DAEMONEYE_BROKER_PEER is not set (run through meson test)");
                return NULL;
        }
        p = g_new0(HarnessPeer, 1);
        p->harness = h;
        p->name = g_strdup(name);
        p->child.pidfd = -1;
        p->out_path = g_strdup_printf("%s/%s.out", h->dir, name);
        p->err_path = g_strdup_printf("%s/%s.err", h->dir, name);
        p->ready_path = g_strdup_printf("%s/%s.ready", h->dir, name);
        g_ptr_array_add(h->peers, p);

        g_ptr_array_add(argv, (char *)peer_path);
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (char *)*a);
        g_ptr_array_add(argv, (char *)"--socket");
        g_ptr_array_add(argv, h->socket_path);
        g_ptr_array_add(argv, (char *)"--ready-file");
        g_ptr_array_add(argv, p->ready_path);
        g_ptr_array_add(argv, (char *)"--client-id");
        g_ptr_array_add(argv, p->name);
        g_ptr_array_add(argv, NULL);

        out_fd = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        err_fd = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ok = out_fd >= 0 && err_fd >= 0 &&
             child_spawn(&p->child, (char **)argv->pdata, NULL, out_fd, err_fd, error);
        if (out_fd < 0 || err_fd < 0)
                g_set_error(error, HARNESS_ERROR, 0, "peer %s: cannot create output files in %s", name,
                            h->dir);
        if (out_fd >= 0)
                close(out_fd);
        if (err_fd >= 0)
                close(err_fd);
        return ok ? p : NULL;
}

char *harness_peer_describe(HarnessPeer *p)
{
        g_autofree char *status = p->child.reaped ? describe_status(p->child.status) : g_strdup("running");
        g_autofree char *out = read_tail(p->out_path, LOG_TAIL_BYTES);
        g_autofree char *err = read_tail(p->err_path, LOG_TAIL_BYTES);

        return g_strdup_printf("peer %s (pid %d, %s)\n--- stdout:\n%s--- stderr:\n%s", p->name,
                               (int)p->child.pid, status, out, err);
}

gboolean harness_peer_wait_ready(HarnessPeer *p, guint timeout_ms, GError **error)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        while (!g_file_test(p->ready_path, G_FILE_TEST_EXISTS)) {
                if (child_wait(&p->child, 0) || g_get_monotonic_time() >= deadline) {
                        g_autofree char *desc = harness_peer_describe(p);
                        if (p->child.reaped)
                                g_set_error(error, HARNESS_ERROR, 0, "exited before it was ready: %s", desc);
                        else
                                g_set_error(error, HARNESS_ERROR, 0, "not ready within %u ms: %s",
                                            timeout_ms, desc);
                        return FALSE;
                }
                child_pause(&p->child, 5);
        }
        return TRUE;
}

static void parse_results(HarnessPeer *p)
{
        g_autofree char *out = NULL;
        g_auto(GStrv) tokens = NULL;

        g_clear_pointer(&p->results, g_hash_table_unref);
        p->results = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (!g_file_get_contents(p->out_path, &out, NULL, NULL))
                return;
        tokens = g_strsplit_set(out, " \n", -1);
        for (char **t = tokens; *t; t++) {
                char *eq = strrchr(*t, '=');
                if (eq && eq != *t)
                        g_hash_table_replace(p->results, g_strndup(*t, (gsize)(eq - *t)), g_strdup(eq + 1));
        }
}

gboolean harness_peer_wait(HarnessPeer *p, guint timeout_ms)
{
        if (!child_wait(&p->child, timeout_ms))
                return FALSE;
        if (!p->results)
                parse_results(p);
        return TRUE;
}

gboolean harness_peer_finish(HarnessPeer *p, guint timeout_ms, GError **error)
{
        g_autofree char *desc = NULL;

        if (!harness_peer_wait(p, timeout_ms)) {
                child_kill(&p->child);
                desc = harness_peer_describe(p);
                g_set_error(error, HARNESS_ERROR, 0, "did not exit within %u ms (killed): %s", timeout_ms,
                            desc);
                return FALSE;
        }
        if (harness_peer_get_exit_status(p) != 0) {
                desc = harness_peer_describe(p);
                g_set_error(error, HARNESS_ERROR, 0, "failed: %s", desc);
                return FALSE;
        }
        return TRUE;
}

gboolean harness_peer_signal(HarnessPeer *p, int sig, GError **error)
{
        if (p->child.reaped || kill(p->child.pid, sig) < 0) {
                g_autofree char *desc = harness_peer_describe(p);
                g_set_error(error, HARNESS_ERROR, 0, "cannot send signal %d: %s", sig, desc);
                return FALSE;
        }
        return TRUE;
}

int harness_peer_get_exit_status(HarnessPeer *p)
{
        if (!p->child.reaped || p->child.status < 0 || !WIFEXITED(p->child.status))
                return -1;
        return WEXITSTATUS(p->child.status);
}

gboolean harness_peer_get_u64(HarnessPeer *p, const char *key, guint64 *out)
{
        const char *value = p->results ? g_hash_table_lookup(p->results, key) : NULL;
        char *end;

        if (!value)
                return FALSE;
        *out = g_ascii_strtoull(value, &end, 10);
        return end != value && *end == '\0';
}
