/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process manager integration tests: the real daemoneye-agent runs real
 * daemoneye-test-collector processes configured as [collector <id>] groups,
 * with the embedded backend (socket activation done by the agent).
 *
 * The test watches what an administrator would: state changes on the bus
 * (control.agent.collector.<id>.state, via `daemoneye-cli watch` in real
 * life), the "collectors: […]" line SIGUSR1 makes the agent log, the agent's
 * log, the audit log file, and the processes themselves (/proc, by pid).
 *
 * Every process is stopped by pid: the agent by the test (SIGTERM, SIGKILL in
 * teardown), the collectors by the agent, and any collector pid the test saw
 * still alive at teardown gets SIGKILL. If an assertion aborts the program, a
 * fatal-signal handler kills them all, and the agent has PR_SET_PDEATHSIG.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "deb-client.h"

#define STATE_PATTERN "control.agent.collector.#"
#define READY_TIMEOUT_MS 10000
#define MAX_TRACKED 64

/* Everything started or seen, for the fatal-signal handler: a failed g_assert() runs no cleanup. */
static volatile sig_atomic_t tracked_pids[MAX_TRACKED];

static void track_pid(pid_t pid)
{
        for (guint i = 0; i < MAX_TRACKED; i++) {
                if (tracked_pids[i] == pid)
                        return;
                if (tracked_pids[i] == 0) {
                        tracked_pids[i] = pid;
                        return;
                }
        }
}

static void on_fatal_signal(int sig)
{
        for (guint i = 0; i < MAX_TRACKED; i++)
                if (tracked_pids[i] > 0)
                        kill((pid_t)tracked_pids[i], SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

typedef struct {
        char *dir;
        char *config_path;
        char *socket_path;
        char *log_path;
        char *audit_path;
        GString *config;
        GPid agent;
        gboolean agent_reaped;
        int agent_status;
        DebClient *watcher;
        GQueue events; /* JsonObject*: state changes, oldest first */
        GString *seen; /* every state change, for failure messages */
} Fixture;

static char *read_file(const char *path)
{
        g_autofree char *contents = NULL;

        if (!g_file_get_contents(path, &contents, NULL, NULL))
                return g_strdup("");
        return g_steal_pointer(&contents);
}

static char *log_tail(Fixture *f)
{
        g_autofree char *log = read_file(f->log_path);
        gsize len = strlen(log);

        return g_strdup(len > 6000 ? log + len - 6000 : log);
}

#define fixture_fail(f, ...)                                                                                \
        G_STMT_START                                                                                        \
        {                                                                                                   \
                g_autofree char *_what = g_strdup_printf(__VA_ARGS__);                                      \
                g_autofree char *_tail = log_tail(f);                                                       \
                g_error("%s\nstate changes seen:\n%s\nagent log tail:\n%s", _what, (f)->seen->str, _tail);  \
        }                                                                                                   \
        G_STMT_END

static const char *test_collector(void)
{
        const char *path = g_getenv("DAEMONEYE_TEST_COLLECTOR");

        if (!path)
                g_error("DAEMONEYE_TEST_COLLECTOR is not set (run through meson test)");
        return path;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
        static gsize handler_installed;
        g_autoptr(GError) error = NULL;

        if (g_once_init_enter(&handler_installed)) {
                static const int fatal_signals[] = {SIGABRT, SIGTRAP, SIGSEGV, SIGBUS};
                struct sigaction sa = {.sa_handler = on_fatal_signal};

                sigemptyset(&sa.sa_mask);
                for (gsize i = 0; i < G_N_ELEMENTS(fatal_signals); i++)
                        sigaction(fatal_signals[i], &sa, NULL);
                g_once_init_leave(&handler_installed, 1);
        }
        f->dir = g_dir_make_tmp("daemoneye-pm-XXXXXX", &error);
        g_assert_no_error(error);
        f->config_path = g_build_filename(f->dir, "daemoneye.conf", NULL);
        f->socket_path = g_build_filename(f->dir, "eventbus.sock", NULL);
        f->log_path = g_build_filename(f->dir, "agent.log", NULL);
        f->audit_path = g_build_filename(f->dir, "audit.log", NULL);
        g_queue_init(&f->events);
        f->seen = g_string_new(NULL);
        f->config = g_string_new(NULL);
        g_string_append_printf(f->config,
                               "[broker]\nsocket_path=%s\nsocket_mode=0600\nstartup_timeout_seconds=5\n"
                               "[rpc]\ndefault_timeout_seconds=1\naudit_log_path=%s\n",
                               f->socket_path, f->audit_path);
}

static gboolean pid_exists(pid_t pid)
{
        return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* The state letter of /proc/<pid>/stat ('Z' for a zombie), or 0 when the pid is gone. */
static char proc_state(pid_t pid)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
        g_autofree char *stat = NULL;
        const char *paren;

        if (!g_file_get_contents(path, &stat, NULL, NULL))
                return 0;
        paren = strrchr(stat, ')');
        return paren && paren[1] == ' ' ? paren[2] : '?';
}

static void remove_tree(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (!dir) {
                (void)g_unlink(path);
                return;
        }
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *child = g_build_filename(path, name, NULL);

                remove_tree(child);
        }
        (void)g_rmdir(path);
}

static gboolean agent_wait(Fixture *f, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        while (!f->agent_reaped) {
                int status;
                pid_t r = waitpid(f->agent, &status, WNOHANG);

                if (r == f->agent) {
                        f->agent_reaped = TRUE;
                        f->agent_status = status;
                        break;
                }
                if (g_get_monotonic_time() >= deadline)
                        return FALSE;
                g_usleep(5000);
        }
        return TRUE;
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        if (f->watcher) {
                deb_client_disconnect(f->watcher, 0);
                g_clear_pointer(&f->watcher, deb_client_unref);
        }
        if (f->agent > 0 && !f->agent_reaped) {
                kill(f->agent, SIGKILL);
                agent_wait(f, 10000);
        }
        /* Collectors the agent failed to stop: by pid, never by name. */
        for (guint i = 0; i < MAX_TRACKED; i++) {
                pid_t pid = (pid_t)tracked_pids[i];

                if (pid > 0 && pid != f->agent && pid_exists(pid) && proc_state(pid) != 'Z') {
                        g_test_message("collector pid %d still running at teardown: killed", (int)pid);
                        kill(pid, SIGKILL);
                }
                tracked_pids[i] = 0;
        }
        g_queue_clear_full(&f->events, (GDestroyNotify)json_object_unref);
        if (g_test_failed())
                g_test_message("kept %s for inspection", f->dir);
        else
                remove_tree(f->dir);
        g_string_free(f->seen, TRUE);
        g_string_free(f->config, TRUE);
        g_free(f->dir);
        g_free(f->config_path);
        g_free(f->socket_path);
        g_free(f->log_path);
        g_free(f->audit_path);
}

/* Appends a [collector <id>] group running the test collector with 1 s heartbeats. */
static void add_collector(Fixture *f, const char *id, const char *extra)
{
        g_autofree char *socket_dir = g_build_filename(f->dir, "collectors", NULL);

        g_string_append_printf(f->config,
                               "[collector %s]\ntype=test-collector\n"
                               "exec=%s --id ${DAEMONEYE_COLLECTOR_ID} --heartbeat-interval "
                               "${DAEMONEYE_HEARTBEAT_INTERVAL_MS}\n"
                               "socket=%s/%s.sock\nheartbeat_interval_seconds=1\ninterval_ms=50\n%s",
                               id, test_collector(), socket_dir, id, extra ? extra : "");
}

static void on_state(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        Fixture *f = user_data;
        g_autoptr(JsonParser) parser = json_parser_new();
        JsonObject *o;

        if (!json_parser_load_from_data(parser, (const char *)envelope->payload.data,
                                        (gssize)envelope->payload.len, NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
                g_error("state change on %s is not a JSON object", envelope->topic);
        o = json_node_get_object(json_parser_get_root(parser));
        g_string_append_printf(f->seen, "  %s: %s -> %s pid %" G_GINT64_FORMAT " (%s)\n",
                               json_object_get_string_member(o, "collector_id"),
                               json_object_get_string_member(o, "previous_state"),
                               json_object_get_string_member(o, "state"),
                               json_object_get_int_member(o, "pid"),
                               json_object_get_string_member(o, "reason"));
        if (json_object_get_int_member(o, "pid") > 0)
                track_pid((pid_t)json_object_get_int_member(o, "pid"));
        g_queue_push_tail(&f->events, json_object_ref(o));
}

static void child_setup(gpointer user_data)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Writes the config, spawns the agent and subscribes to state changes once its socket answers. */
static void agent_start(Fixture *f)
{
        static const char *const unset[] = {"NOTIFY_SOCKET",  "LISTEN_FDS",    "LISTEN_PID",
                                            "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID",
                                            "JOURNAL_STREAM", "INVOCATION_ID"};
        const char *agent = g_getenv("DAEMONEYE_AGENT");
        g_auto(GStrv) envp = g_get_environ();
        g_autoptr(GError) error = NULL;
        gint64 deadline = g_get_monotonic_time() + READY_TIMEOUT_MS * 1000;
        char *argv[] = {(char *)agent, (char *)"--config", f->config_path, NULL};
        int log_fd;

        g_assert_nonnull(agent);
        for (gsize i = 0; i < G_N_ELEMENTS(unset); i++)
                envp = g_environ_unsetenv(envp, unset[i]);
        g_assert_true(g_file_set_contents(f->config_path, f->config->str, -1, &error));
        g_assert_no_error(error);
        log_fd = open(f->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        g_assert_cmpint(log_fd, >=, 0);
        g_spawn_async_with_fds(NULL, argv, envp, G_SPAWN_DO_NOT_REAP_CHILD, child_setup, NULL, &f->agent, -1,
                               log_fd, log_fd, &error);
        close(log_fd);
        g_assert_no_error(error);
        track_pid(f->agent);

        for (;;) {
                g_autoptr(GError) local = NULL;

                f->watcher = deb_client_new("test-process-manager");
                g_assert_cmpuint(deb_client_subscribe(f->watcher, STATE_PATTERN, on_state, f, NULL, &local),
                                 >, 0);
                if (deb_client_connect_sync(f->watcher, f->socket_path, 1000, &local) &&
                    deb_client_sync(f->watcher, 2000, &local))
                        return;
                g_clear_pointer(&f->watcher, deb_client_unref);
                if (agent_wait(f, 0))
                        fixture_fail(f, "the agent exited during startup (wait status 0x%x)",
                                     (guint)f->agent_status);
                if (g_get_monotonic_time() > deadline)
                        fixture_fail(f, "the agent's socket %s did not answer within %d ms: %s",
                                     f->socket_path, READY_TIMEOUT_MS, local ? local->message : "?");
                g_usleep(20000);
        }
}

/* Runs the main loop (the watcher's input) for up to @ms. */
static void pump(guint ms)
{
        gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;

        do {
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                g_usleep(2000);
        } while (g_get_monotonic_time() < until);
}

/*
 * The next state change of @id to @state, within @timeout_ms; earlier changes
 * are consumed. Returns: (transfer full) the change.
 */
static JsonObject *wait_state(Fixture *f, const char *id, const char *state, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        for (;;) {
                JsonObject *o;

                while ((o = g_queue_pop_head(&f->events))) {
                        if (g_str_equal(json_object_get_string_member(o, "collector_id"), id) &&
                            g_str_equal(json_object_get_string_member(o, "state"), state))
                                return o;
                        json_object_unref(o);
                }
                if (g_get_monotonic_time() > deadline)
                        fixture_fail(f, "collector %s did not become %s within %u ms", id, state,
                                     timeout_ms);
                pump(5);
        }
}

/* Forgets the state changes received so far. */
static void drain_events(Fixture *f)
{
        JsonObject *o;

        pump(5);
        while ((o = g_queue_pop_head(&f->events)))
                json_object_unref(o);
}

/* Fails if @id changes state within @ms. */
static void assert_no_state_change(Fixture *f, const char *id, guint ms)
{
        pump(ms);
        for (GList *l = f->events.head; l; l = l->next)
                if (g_str_equal(json_object_get_string_member(l->data, "collector_id"), id))
                        fixture_fail(f, "collector %s changed state unexpectedly to %s", id,
                                     json_object_get_string_member(l->data, "state"));
}

/* SIGUSR1, then the "collectors: [...]" line the agent logs. Returns: (transfer full) the entry of @id. */
static JsonObject *snapshot(Fixture *f, const char *id)
{
        struct stat st;
        gsize offset = g_stat(f->log_path, &st) == 0 ? (gsize)st.st_size : 0;
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;

        g_assert_cmpint(kill(f->agent, SIGUSR1), ==, 0);
        for (;;) {
                g_autofree char *log = read_file(f->log_path);
                const char *line = strlen(log) > offset ? strstr(log + offset, "collectors: [") : NULL;
                const char *eol = line ? strchr(line, '\n') : NULL;

                if (eol) {
                        g_autoptr(JsonParser) parser = json_parser_new();
                        g_autofree char *json = g_strndup(line + strlen("collectors: "),
                                                          (gsize)(eol - line) - strlen("collectors: "));
                        JsonArray *array;

                        if (!json_parser_load_from_data(parser, json, -1, NULL))
                                fixture_fail(f, "collectors line is not JSON: %s", json);
                        array = json_node_get_array(json_parser_get_root(parser));
                        for (guint i = 0; i < json_array_get_length(array); i++) {
                                JsonObject *o = json_array_get_object_element(array, i);

                                if (g_str_equal(json_object_get_string_member(o, "id"), id))
                                        return json_object_ref(o);
                        }
                        fixture_fail(f, "collector %s is not in %s", id, json);
                }
                if (g_get_monotonic_time() > deadline)
                        fixture_fail(f, "no 'collectors: [...]' line after SIGUSR1");
                pump(10);
        }
}

/* Polls the snapshot until @id is @state (it may have got there before the watcher subscribed). */
static JsonObject *wait_snapshot_state(Fixture *f, const char *id, const char *state, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        for (;;) {
                JsonObject *o = snapshot(f, id);

                if (g_str_equal(json_object_get_string_member(o, "state"), state))
                        return o;
                if (g_get_monotonic_time() > deadline)
                        fixture_fail(f, "collector %s is %s, not %s, after %u ms", id,
                                     json_object_get_string_member(o, "state"), state, timeout_ms);
                json_object_unref(o);
                pump(100);
        }
}

/* Waits until @pid is gone from /proc: exited *and* reaped, so no zombie is left. */
static void assert_pid_gone(Fixture *f, pid_t pid, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        char state;

        while ((state = proc_state(pid)) != 0) {
                if (g_get_monotonic_time() > deadline)
                        fixture_fail(f, "pid %d still exists (state %c) after %u ms", (int)pid, state,
                                     timeout_ms);
                pump(10);
        }
}

static gboolean log_contains(Fixture *f, const char *needle)
{
        g_autofree char *log = read_file(f->log_path);

        return strstr(log, needle) != NULL;
}

static void agent_stop(Fixture *f, guint timeout_ms)
{
        if (f->watcher) {
                deb_client_disconnect(f->watcher, 0);
                g_clear_pointer(&f->watcher, deb_client_unref);
        }
        g_assert_cmpint(kill(f->agent, SIGTERM), ==, 0);
        if (!agent_wait(f, timeout_ms))
                fixture_fail(f, "the agent did not exit within %u ms of SIGTERM", timeout_ms);
        if (!WIFEXITED(f->agent_status) || WEXITSTATUS(f->agent_status) != 0)
                fixture_fail(f, "the agent ended with wait status 0x%x after SIGTERM",
                             (guint)f->agent_status);
        /* The agent's and the collectors' stderr: sanitizer reports of either fail the test. */
        if (log_contains(f, "runtime error:") || log_contains(f, "Sanitizer"))
                fixture_fail(f, "a sanitizer report in the log");
}

/* The audit log's records, each checked for the fields every record has. */
static GPtrArray *read_audit(Fixture *f)
{
        g_autofree char *contents = read_file(f->audit_path);
        g_auto(GStrv) lines = g_strsplit(contents, "\n", -1);
        GPtrArray *records = g_ptr_array_new_with_free_func((GDestroyNotify)json_object_unref);
        g_autoptr(GRegex) time_re =
                g_regex_new("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z$", 0, 0, NULL);
        g_autoptr(GRegex) hex_re = g_regex_new("^[0-9a-f]{64}$", 0, 0, NULL);

        g_assert_true(contents[0] == '\0' || g_str_has_suffix(contents, "\n"));
        for (char **line = lines; *line && **line; line++) {
                g_autoptr(JsonParser) parser = json_parser_new();
                JsonObject *o;

                if (!json_parser_load_from_data(parser, *line, -1, NULL) ||
                    !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)))
                        fixture_fail(f, "audit line is not a JSON object: %s", *line);
                o = json_node_get_object(json_parser_get_root(parser));
                g_assert_true(g_regex_match(time_re, json_object_get_string_member(o, "time"), 0, NULL));
                g_assert_cmpstr(json_object_get_string_member(o, "actor"), ==, "daemoneye-agent");
                g_assert_true(
                        g_regex_match(hex_re, json_object_get_string_member(o, "payload_sha256"), 0, NULL));
                g_assert_cmpuint(strlen(json_object_get_string_member(o, "correlation_id")), >, 0);
                g_assert_true(json_object_has_member(o, "target"));
                g_assert_true(json_object_has_member(o, "action"));
                g_assert_true(json_object_has_member(o, "status"));
                g_assert_cmpint(json_object_get_int_member(o, "duration_us"), >=, 0);
                g_ptr_array_add(records, json_object_ref(o));
        }
        return records;
}

static guint count_audit(GPtrArray *records, const char *target, const char *action, const char *status)
{
        guint n = 0;

        for (guint i = 0; i < records->len; i++) {
                JsonObject *o = records->pdata[i];

                if (g_str_equal(json_object_get_string_member(o, "target"), target) &&
                    g_str_equal(json_object_get_string_member(o, "action"), action) &&
                    (!status || g_str_equal(json_object_get_string_member(o, "status"), status)))
                        n++;
        }
        return n;
}

static char *proc_environ_get(pid_t pid, const char *name)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/environ", (int)pid);
        g_autofree char *env = NULL;
        gsize len = 0;
        gsize name_len = strlen(name);

        if (!g_file_get_contents(path, &env, &len, NULL))
                return NULL;
        for (gsize i = 0; i < len; i += strlen(env + i) + 1)
                if (strncmp(env + i, name, name_len) == 0 && env[i + name_len] == '=')
                        return g_strdup(env + i + name_len + 1);
        return NULL;
}

static void on_counter(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        (*(guint *)user_data)++;
}

/*
 * Autostart: socket-activated exactly as systemd would, Running, publishing
 * through the broker; SIGTERM to the agent stops it gracefully; one audit
 * record per RPC.
 */
static void test_autostart_and_shutdown(Fixture *f, gconstpointer data)
{
        g_autoptr(JsonObject) running = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) audit = NULL;
        g_autofree char *socket_file = g_build_filename(f->dir, "collectors", "x.sock", NULL);
        g_autofree char *listen_pid = NULL;
        g_autofree char *listen_fds = NULL;
        g_autofree char *fdnames = NULL;
        g_autofree char *exited = NULL;
        guint counters = 0;
        struct stat st;
        pid_t pid;

        add_collector(f, "x", NULL);
        agent_start(f);
        running = wait_snapshot_state(f, "x", "running", 10000);
        pid = (pid_t)json_object_get_int_member(running, "pid");
        track_pid(pid);
        g_assert_cmpint(pid, >, 0);
        g_assert_cmpint(json_object_get_int_member(running, "restart_count"), ==, 0);
        g_assert_cmpint(json_object_get_int_member(running, "last_heartbeat_us"), >, 0);

        /* Socket activation as systemd does it: fd 3, LISTEN_PID of the collector itself. */
        listen_pid = proc_environ_get(pid, "LISTEN_PID");
        listen_fds = proc_environ_get(pid, "LISTEN_FDS");
        fdnames = proc_environ_get(pid, "LISTEN_FDNAMES");
        /* /proc/<pid>/environ is the environment execve() got, whatever sd_listen_fds() unset since. */
        g_assert_nonnull(listen_pid);
        g_assert_cmpint(atoi(listen_pid), ==, pid);
        g_assert_cmpstr(listen_fds, ==, "1");
        g_assert_cmpstr(fdnames, ==, "x");
        g_assert_cmpint(g_lstat(socket_file, &st), ==, 0);
        g_assert_true(S_ISSOCK(st.st_mode));
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);

        /* It runs with its settings (interval_ms=50): counter events flow through the broker. */
        g_assert_cmpuint(
                deb_client_subscribe(f->watcher, "events.test.counter", on_counter, &counters, NULL, &error),
                >, 0);
        g_assert_no_error(error);
        g_assert_true(deb_client_sync(f->watcher, 2000, &error));
        g_assert_no_error(error);
        pump(500);
        g_assert_cmpuint(counters, >=, 3);

        agent_stop(f, 15000);
        assert_pid_gone(f, pid, 1000);
        /* Gracefully: its cleanup hook ran and it exited 0 (its stdout and the agent's log share a file). */
        {
                g_autofree char *log = read_file(f->log_path);

                g_assert_true(g_regex_match_simple("^cleanup=[1-9]", log, G_REGEX_MULTILINE, 0));
        }
        exited = g_strdup_printf("collector x: pid %d exited with status 0", (int)pid);
        g_assert_true(log_contains(f, exited));
        g_assert_false(g_file_test(socket_file, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(f->socket_path, G_FILE_TEST_EXISTS));

        /* One record per RPC: a Start and a GracefulShutdown, both answered. */
        audit = read_audit(f);
        g_assert_cmpuint(audit->len, ==, 2);
        g_assert_cmpuint(count_audit(audit, "x", "start", "success"), ==, 1);
        g_assert_cmpuint(count_audit(audit, "x", "graceful-shutdown", "success"), ==, 1);
}

static void kill_collector(Fixture *f, pid_t pid, int sig)
{
        if (kill(pid, sig) < 0)
                fixture_fail(f, "kill(%d, %d): %s", (int)pid, sig, g_strerror(errno));
}

/* kill -9: noticed at once, restarted after 1 s then 2 s, FAILED when the attempts are used up. */
static void test_crash_restart_backoff(Fixture *f, gconstpointer data)
{
        g_autoptr(JsonObject) first = NULL;
        g_autoptr(GPtrArray) audit = NULL;
        pid_t pid;

        g_string_append(f->config, "[process_manager]\nenable_auto_restart=true\nmax_restart_attempts=2\n"
                                   "restart_backoff_seconds=1\nforce_shutdown_timeout_seconds=1\n");
        add_collector(f, "x", NULL);
        agent_start(f);
        first = wait_snapshot_state(f, "x", "running", 10000);
        pid = (pid_t)json_object_get_int_member(first, "pid");
        track_pid(pid);

        for (guint attempt = 1; attempt <= 2; attempt++) {
                guint backoff_ms = 1000u << (attempt - 1);
                g_autoptr(JsonObject) crashed = NULL;
                g_autoptr(JsonObject) restarted = NULL;
                g_autofree char *why = NULL;
                gint64 t0 = g_get_monotonic_time(), noticed_us, restarted_us;

                /* Only what follows the kill counts: the first start's "starting" may still be queued. */
                drain_events(f);
                kill_collector(f, pid, SIGKILL);
                crashed = wait_state(f, "x", "starting", 1000);
                noticed_us = g_get_monotonic_time() - t0;
                why = g_strdup_printf("pid %d was killed by signal 9", (int)pid);
                if (!strstr(json_object_get_string_member(crashed, "reason"), why))
                        g_error("attempt %u: state 'starting' with reason '%s', expected it to say '%s'", attempt,
                                json_object_get_string_member(crashed, "reason"), why);
                g_assert_cmpint(json_object_get_int_member(crashed, "restart_count"), ==, attempt);
                g_test_message("attempt %u: crash noticed after %" G_GINT64_FORMAT " us", attempt,
                               noticed_us);
                /* Reaped by the agent: no zombie. */
                assert_pid_gone(f, pid, 1000);

                restarted = wait_state(f, "x", "running", backoff_ms + 8000);
                restarted_us = g_get_monotonic_time() - t0;
                g_assert_cmpint(restarted_us, >=, (gint64)backoff_ms * 1000 - 50000);
                pid = (pid_t)json_object_get_int_member(restarted, "pid");
                track_pid(pid);
                g_assert_cmpint(pid, >, 0);
                g_test_message("attempt %u: running again as pid %d after %" G_GINT64_FORMAT " ms", attempt,
                               (int)pid, restarted_us / 1000);
        }

        /* The third crash exceeds max_restart_attempts=2. */
        kill_collector(f, pid, SIGKILL);
        {
                g_autoptr(JsonObject) failed = wait_state(f, "x", "failed", 1000);
                g_autoptr(JsonObject) snap = NULL;

                g_assert_nonnull(
                        strstr(json_object_get_string_member(failed, "reason"), "no restart attempts left"));
                assert_pid_gone(f, pid, 1000);
                assert_no_state_change(f, "x", 2500);
                snap = snapshot(f, "x");
                g_assert_cmpstr(json_object_get_string_member(snap, "state"), ==, "failed");
                g_assert_cmpint(json_object_get_int_member(snap, "pid"), ==, 0);
                g_assert_cmpint(json_object_get_int_member(snap, "restart_count"), ==, 2);
        }

        agent_stop(f, 15000);
        audit = read_audit(f);
        /* Three processes, three Starts; nothing to shut down at the end. */
        g_assert_cmpuint(count_audit(audit, "x", "start", "success"), ==, 3);
        g_assert_cmpuint(audit->len, ==, 3);
}

/* SIGSTOP: heartbeats stop → health check → no answer → UNRESPONSIVE → restarted. */
static void test_unresponsive(Fixture *f, gconstpointer data)
{
        g_autoptr(JsonObject) first = NULL;
        g_autoptr(JsonObject) unresponsive = NULL;
        g_autoptr(JsonObject) restarting = NULL;
        g_autoptr(JsonObject) running = NULL;
        g_autoptr(GPtrArray) audit = NULL;
        gint64 t0;
        pid_t pid, new_pid;

        g_string_append(f->config, "[process_manager]\nenable_auto_restart=true\nmax_restart_attempts=3\n"
                                   "restart_backoff_seconds=1\nforce_shutdown_timeout_seconds=1\n");
        add_collector(f, "x", NULL);
        agent_start(f);
        first = wait_snapshot_state(f, "x", "running", 10000);
        pid = (pid_t)json_object_get_int_member(first, "pid");
        track_pid(pid);

        t0 = g_get_monotonic_time();
        kill_collector(f, pid, SIGSTOP);
        /* 3 heartbeats of 1 s (+ slack), then a 1 s health check deadline. */
        unresponsive = wait_state(f, "x", "unresponsive", 8000);
        g_assert_cmpint(g_get_monotonic_time() - t0, >=, 3 * G_USEC_PER_SEC);
        g_assert_nonnull(strstr(json_object_get_string_member(unresponsive, "reason"), "health check"));
        restarting = wait_state(f, "x", "starting", 1000);
        /* The stopped process is ended (SIGTERM + SIGCONT, SIGKILL after 1 s) and reaped. */
        assert_pid_gone(f, pid, 5000);
        running = wait_state(f, "x", "running", 10000);
        new_pid = (pid_t)json_object_get_int_member(running, "pid");
        track_pid(new_pid);
        g_assert_cmpint(new_pid, !=, pid);
        g_assert_cmpint(json_object_get_int_member(running, "restart_count"), ==, 1);

        agent_stop(f, 15000);
        assert_pid_gone(f, new_pid, 1000);
        audit = read_audit(f);
        g_assert_cmpuint(count_audit(audit, "x", "health-check", "timeout"), ==, 1);
        g_assert_cmpuint(count_audit(audit, "x", "start", "success"), ==, 2);
        g_assert_cmpuint(count_audit(audit, "x", "graceful-shutdown", "success"), ==, 1);
        g_assert_cmpuint(audit->len, ==, 4);
}

/*
 * Agent shutdown with several collectors at once: two instances of one group
 * stop gracefully; "slow" overruns the graceful deadline (its cleanup hook
 * takes 30 s) and gets SIGTERM; "stubborn" ignores SIGTERM (not a collector:
 * a process that never connects) and gets SIGKILL. In parallel, all reaped.
 */
static void test_shutdown_escalation(Fixture *f, gconstpointer data)
{
        const char *ids[] = {"fast-1", "fast-2", "slow", "stubborn"};
        const char *states[] = {"running", "running", "running", "starting"};
        pid_t pids[G_N_ELEMENTS(ids)];
        g_autofree char *line = NULL;
        gint64 t0;

        g_string_append(f->config, "[process_manager]\ngraceful_shutdown_timeout_seconds=1\n"
                                   "force_shutdown_timeout_seconds=1\n");
        add_collector(f, "fast", "instances=2\n");
        add_collector(f, "slow", "cleanup_ms=30000\n");
        /* SIG_IGN survives exec; the backend resets handlers to SIG_DFL only before running /bin/sh. */
        g_string_append(f->config,
                        "[collector stubborn]\nexec=/bin/sh -c \"trap '' TERM; exec sleep 300\"\n");
        agent_start(f);
        for (gsize i = 0; i < G_N_ELEMENTS(ids); i++) {
                g_autoptr(JsonObject) o = wait_snapshot_state(f, ids[i], states[i], 10000);

                pids[i] = (pid_t)json_object_get_int_member(o, "pid");
                g_assert_cmpint(pids[i], >, 0);
                track_pid(pids[i]);
        }

        t0 = g_get_monotonic_time();
        agent_stop(f, 15000);
        /* In parallel: about 1 s graceful + 1 s after SIGTERM, not the sum over collectors. */
        g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
        for (gsize i = 0; i < G_N_ELEMENTS(ids); i++)
                assert_pid_gone(f, pids[i], 1000);
        for (gsize i = 0; i < 2; i++) {
                g_autofree char *exited =
                        g_strdup_printf("collector %s: pid %d exited with status 0", ids[i], (int)pids[i]);
                g_assert_true(log_contains(f, exited));
        }
        line = g_strdup_printf(
                "collector slow: pid %d still running 1 s after the graceful shutdown request; "
                "sending SIGTERM",
                (int)pids[2]);
        g_assert_true(log_contains(f, line));
        g_clear_pointer(&line, g_free);
        line = g_strdup_printf("collector stubborn: pid %d still running 1 s after SIGTERM; sending SIGKILL",
                               (int)pids[3]);
        g_assert_true(log_contains(f, line));
        g_clear_pointer(&line, g_free);
        line = g_strdup_printf("collector stubborn: pid %d was killed by signal 9", (int)pids[3]);
        g_assert_true(log_contains(f, line));
}

/* A collector that cannot be executed: FAILED at once, with the reason, and the agent keeps running. */
static void test_exec_failure(Fixture *f, gconstpointer data)
{
        g_autoptr(JsonObject) snap = NULL;

        g_string_append(f->config, "[process_manager]\nmax_restart_attempts=0\n"
                                   "[collector broken]\nexec=/nonexistent/collector --id broken\n");
        add_collector(f, "x", NULL);
        agent_start(f);
        snap = wait_snapshot_state(f, "broken", "failed", 5000);
        g_assert_nonnull(strstr(json_object_get_string_member(snap, "last_error"),
                                "exec /nonexistent/collector: No such file or directory"));
        g_clear_pointer(&snap, json_object_unref);
        snap = wait_snapshot_state(f, "x", "running", 10000);
        track_pid((pid_t)json_object_get_int_member(snap, "pid"));
        agent_stop(f, 15000);
}

/* --check-config names file, group and key of a bad [collector] value. */
static void test_check_config(Fixture *f, gconstpointer data)
{
        static const struct {
                const char *group;
                const char *expect;
        } cases[] = {
                {"[collector x]\nexec=/bin/true\ninstances=0\n",
                 "[collector x] instances: 0 is out of range 1..64"},
                {"[collector x]\nexec=bin/true\n", "[collector x] exec: 'bin/true' is not an absolute path"},
                {"[collector x]\nexec=/bin/true ${NOPE}\n", "[collector x] exec: unknown variable ${NOPE}"},
                {"[collector x]\nscan_interval_ms=5\n", "[collector x] exec: not set"},
                {"[collector x]\nexec=/bin/true\nheartbeat_interval_seconds=0\n",
                 "[collector x] heartbeat_interval_seconds: 0 is out of range 1..3600"},
                {"[collector x]\nexec=/bin/true\nautostart=maybe\n",
                 "[collector x] autostart: 'maybe' is not a boolean"},
                {"[process_manager]\nbackend=sometimes\n", "[process_manager] backend: 'sometimes'"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autofree char *out = NULL;
                g_autofree char *err = NULL;
                int status = 0;
                char *argv[] = {(char *)g_getenv("DAEMONEYE_AGENT"), (char *)"--check-config",
                                (char *)"--config", f->config_path, NULL};

                g_assert_true(g_file_set_contents(f->config_path, cases[i].group, -1, NULL));
                g_spawn_sync(NULL, argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error);
                g_assert_no_error(error);
                g_assert_false(g_spawn_check_wait_status(status, NULL));
                if (!strstr(err, f->config_path) || !strstr(err, cases[i].expect))
                        g_error("config %s: expected '%s' naming %s, got: %s", cases[i].group,
                                cases[i].expect, f->config_path, err);
        }
}

static gboolean snapshot_lists(Fixture *f, const char *id)
{
        struct stat st;
        gsize offset = g_stat(f->log_path, &st) == 0 ? (gsize)st.st_size : 0;
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        g_autofree char *needle = g_strdup_printf("\"id\":\"%s\"", id);

        g_assert_cmpint(kill(f->agent, SIGUSR1), ==, 0);
        for (;;) {
                g_autofree char *log = read_file(f->log_path);
                const char *line = strlen(log) > offset ? strstr(log + offset, "collectors: [") : NULL;
                const char *eol = line ? strchr(line, '\n') : NULL;

                if (eol) {
                        g_autofree char *json = g_strndup(line, (gsize)(eol - line));

                        return strstr(json, needle) != NULL;
                }
                if (g_get_monotonic_time() > deadline)
                        fixture_fail(f, "no 'collectors: [...]' line after SIGUSR1");
                pump(10);
        }
}

/*
 * SIGHUP: a collector added is started, one removed is stopped and
 * forgotten, a changed setting is sent to the running collector
 * (UpdateConfig), and the audit log is reopened (logrotate moved it away).
 */
static void test_reload(Fixture *f, gconstpointer data)
{
        g_autoptr(JsonObject) x = NULL;
        g_autoptr(JsonObject) y = NULL;
        g_autoptr(GPtrArray) audit = NULL;
        g_autofree char *rotated_path = g_strconcat(f->audit_path, ".1", NULL);
        g_autofree char *base = g_strdup(f->config->str);
        pid_t y_pid;

        add_collector(f, "x", NULL);
        agent_start(f);
        x = wait_snapshot_state(f, "x", "running", 10000);
        track_pid((pid_t)json_object_get_int_member(x, "pid"));

        /* Added y, x's interval_ms 50 -> 100. */
        g_assert_cmpint(g_rename(f->audit_path, rotated_path), ==, 0);
        g_string_assign(f->config, base);
        add_collector(f, "x", NULL);
        g_string_replace(f->config, "interval_ms=50", "interval_ms=100", 0);
        add_collector(f, "y", NULL);
        g_assert_true(g_file_set_contents(f->config_path, f->config->str, -1, NULL));
        g_assert_cmpint(kill(f->agent, SIGHUP), ==, 0);
        y = wait_state(f, "y", "running", 10000);
        y_pid = (pid_t)json_object_get_int_member(y, "pid");
        track_pid(y_pid);
        g_assert_true(log_contains(f, "reload: [collector x] interval_ms: 50 -> 100"));
        g_assert_true(log_contains(f, "reload: [collector y]: added"));

        /* Removed y. */
        g_string_assign(f->config, base);
        add_collector(f, "x", NULL);
        g_string_replace(f->config, "interval_ms=50", "interval_ms=100", 0);
        g_assert_true(g_file_set_contents(f->config_path, f->config->str, -1, NULL));
        g_assert_cmpint(kill(f->agent, SIGHUP), ==, 0);
        g_clear_pointer(&y, json_object_unref);
        y = wait_state(f, "y", "stopped", 10000);
        assert_pid_gone(f, y_pid, 1000);
        g_assert_false(snapshot_lists(f, "y"));
        g_assert_true(snapshot_lists(f, "x"));
        g_assert_true(log_contains(f, "collector y: removed"));

        agent_stop(f, 15000);
        /* The rotated file holds x's first start only; the reopened one what came after the SIGHUP. */
        {
                g_autofree char *old = read_file(rotated_path);

                g_assert_nonnull(strstr(old, "\"action\":\"start\",\"target\":\"x\""));
                g_assert_null(strstr(old, "update-config"));
        }
        audit = read_audit(f);
        g_assert_cmpuint(count_audit(audit, "x", "update-config", "success"), ==, 1);
        g_assert_cmpuint(count_audit(audit, "y", "start", "success"), ==, 1);
        g_assert_cmpuint(count_audit(audit, "y", "graceful-shutdown", "success"), ==, 1);
        g_assert_cmpuint(count_audit(audit, "x", "graceful-shutdown", "success"), ==, 1);
        g_assert_cmpuint(audit->len, ==, 4);
}

/* An agent started without collectors stays off its own broker; the first collector comes with a reload. */
static void test_reload_first_collector(Fixture *f, gconstpointer data)
{
        g_autoptr(JsonObject) x = NULL;

        agent_start(f);
        add_collector(f, "x", NULL);
        g_assert_true(g_file_set_contents(f->config_path, f->config->str, -1, NULL));
        g_assert_cmpint(kill(f->agent, SIGHUP), ==, 0);
        x = wait_state(f, "x", "running", 10000);
        track_pid((pid_t)json_object_get_int_member(x, "pid"));
        agent_stop(f, 15000);
        assert_pid_gone(f, (pid_t)json_object_get_int_member(x, "pid"), 1000);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
#define ADD(path, func)                                                                                     \
        g_test_add("/process-manager/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
        ADD("check-config", test_check_config);
        ADD("autostart-and-shutdown", test_autostart_and_shutdown);
        ADD("crash-restart-backoff", test_crash_restart_backoff);
        ADD("unresponsive", test_unresponsive);
        ADD("shutdown-escalation", test_shutdown_escalation);
        ADD("exec-failure", test_exec_failure);
        ADD("reload", test_reload);
        ADD("reload-first-collector", test_reload_first_collector);
#undef ADD
        return g_test_run();
}
