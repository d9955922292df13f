/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The process manager's C API, as the D-Bus front will call it: a broker and
 * a process manager in this process, on this main loop, running a real
 * daemoneye-test-collector ($DAEMONEYE_TEST_COLLECTOR) through the embedded
 * backend. Every operation, its callback, the state callbacks, the listing
 * and the audit records of the actor who asked.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "audit-log.h"
#include "broker.h"
#include "config.h"
#include "process-manager.h"

#define ACTOR "uid=1000 pid=42 test"

/* Every structured record logged, as "KEY=VALUE\n…", for the checks of the journal fields. */
static GPtrArray *records;

typedef struct {
        char *dir;
        Config *config;
        Broker *broker;
        AuditLog *audit;
        ProcessManager *pm;
        GString *transitions; /* "x:running>paused;" … */
        GPtrArray *pids;      /* every collector pid seen, killed by pid at teardown if alive */
} Fixture;

typedef struct {
        gboolean done;
        char *id;
        GError *error;
        DebRpcResponse *response; /* a copy */
} Outcome;

static void outcome_clear(Outcome *o)
{
        g_free(o->id);
        g_clear_error(&o->error);
        if (o->response)
                daemoneye__eventbus__rpc_response__free_unpacked(o->response, NULL);
        *o = (Outcome){0};
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Outcome, outcome_clear)

static void on_outcome(ProcessManager *pm, const char *collector_id, const DebRpcResponse *response,
                       const GError *error, gpointer user_data)
{
        Outcome *o = user_data;

        g_assert_false(o->done); /* exactly once */
        o->done = TRUE;
        o->id = g_strdup(collector_id);
        o->error = error ? g_error_copy(error) : NULL;
        if (response) {
                gsize len = protobuf_c_message_get_packed_size(&response->base);
                g_autofree guint8 *buf = g_malloc(len + 1);

                protobuf_c_message_pack(&response->base, buf);
                o->response = daemoneye__eventbus__rpc_response__unpack(NULL, len, buf);
        }
}

static void run_until(gboolean *flag, guint timeout_ms)
{
        gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        while (!*flag) {
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
                g_main_context_iteration(NULL, FALSE);
                g_usleep(1000);
        }
}

static void on_state(ProcessManager *pm, const char *id, CollectorState old_state, CollectorState new_state,
                     const char *reason, gpointer user_data)
{
        Fixture *f = user_data;

        g_string_append_printf(f->transitions, "%s:%s>%s;", id, collector_state_to_string(old_state),
                               collector_state_to_string(new_state));
}

static ProcessManagerCollectorInfo *info(Fixture *f, const char *id)
{
        ProcessManagerCollectorInfo *i = process_manager_get(f->pm, id);

        g_assert_nonnull(i);
        if (i->pid > 0)
                g_ptr_array_add(f->pids, GINT_TO_POINTER(i->pid));
        return i;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
        const char *collector = g_getenv("DAEMONEYE_TEST_COLLECTOR");
        g_autoptr(GError) error = NULL;
        g_autofree char *conf = NULL;
        g_autofree char *text = NULL;

        g_assert_nonnull(collector);
        f->dir = g_dir_make_tmp("daemoneye-pm-api-XXXXXX", &error);
        g_assert_no_error(error);
        conf = g_build_filename(f->dir, "daemoneye.conf", NULL);
        text = g_strdup_printf(
                "[broker]\nsocket_path=%s/eventbus.sock\nsocket_mode=0600\n"
                "[rpc]\ndefault_timeout_seconds=2\naudit_log_path=%s/audit.log\n"
                "[process_manager]\ngraceful_shutdown_timeout_seconds=2\n"
                "force_shutdown_timeout_seconds=1\n"
                "[collector x]\ntype=test-collector\nautostart=false\n"
                /* Its stdout to stderr: this program's stdout carries TAP. */
                "exec=/bin/sh -c \"exec %s --id ${DAEMONEYE_COLLECTOR_ID} --heartbeat-interval "
                "${DAEMONEYE_HEARTBEAT_INTERVAL_MS} >&2\"\n"
                "socket=%s/x.sock\nheartbeat_interval_seconds=1\ninterval_ms=50\n",
                f->dir, f->dir, collector, f->dir);
        g_assert_true(g_file_set_contents(conf, text, -1, NULL));
        f->config = config_load(conf, TRUE, &error);
        g_assert_no_error(error);
        f->broker = broker_new(&f->config->broker, &error);
        g_assert_no_error(error);
        f->audit = audit_log_new(f->config->rpc.audit_log_path, &error);
        g_assert_no_error(error);
        f->pm = process_manager_new(f->broker, f->config, f->audit, &error);
        g_assert_no_error(error);
        f->transitions = g_string_new(NULL);
        f->pids = g_ptr_array_new();
        process_manager_add_state_func(f->pm, on_state, f, NULL);
}

static void remove_dir(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        while (dir && (name = g_dir_read_name(dir))) {
                g_autofree char *file = g_build_filename(path, name, NULL);

                g_unlink(file);
        }
        g_rmdir(path);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        g_clear_pointer(&f->pm, process_manager_free);
        g_clear_pointer(&f->broker, broker_free);
        g_clear_pointer(&f->audit, audit_log_free);
        for (guint i = 0; i < f->pids->len; i++) {
                pid_t pid = GPOINTER_TO_INT(f->pids->pdata[i]);
                g_autofree char *proc = g_strdup_printf("/proc/%d", (int)pid);

                /* process_manager_free() kills and reaps: nothing may be left. */
                g_assert_false(g_file_test(proc, G_FILE_TEST_EXISTS));
        }
        g_ptr_array_unref(f->pids);
        g_string_free(f->transitions, TRUE);
        g_clear_pointer(&f->config, config_free);
        if (!g_test_failed())
                remove_dir(f->dir);
        g_free(f->dir);
}

static void start_x(Fixture *f)
{
        g_auto(Outcome) o = {0};
        g_autoptr(GError) error = NULL;

        g_assert_true(process_manager_start(f->pm, "x", ACTOR, on_outcome, &o, &error));
        g_assert_no_error(error);
        run_until(&o.done, 10000);
        g_assert_no_error(o.error);
        g_assert_cmpstr(o.id, ==, "x");
}

static guint component_interval(const DebRpcResponse *r, const char *name)
{
        g_assert_cmpint(r->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_HEALTH);
        for (gsize i = 0; i < r->health->n_components; i++)
                if (g_str_equal(r->health->components[i]->name, name))
                        return r->health->components[i]->check_interval_ms;
        g_error("no component %s", name);
}

static void test_operations(Fixture *f, gconstpointer data)
{
        g_autoptr(ProcessManagerCollectorInfo) i = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) list = NULL;
        g_autofree char *json = NULL;
        g_autofree char *audit = NULL;
        pid_t first_pid;

        /* autostart=false: nothing runs until asked. */
        i = info(f, "x");
        g_assert_cmpint(i->state, ==, COLLECTOR_STATE_STOPPED);
        g_assert_cmpint(i->pid, ==, 0);
        g_assert_false(i->autostart);
        g_clear_pointer(&i, process_manager_collector_info_free);

        /* Refused at once, no callback. */
        g_assert_false(process_manager_pause(f->pm, "x", ACTOR, on_outcome, NULL, &error));
        g_assert_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_INVALID_OPERATION);
        g_clear_error(&error);
        g_assert_false(process_manager_start(f->pm, "nope", ACTOR, on_outcome, NULL, &error));
        g_assert_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_NOT_FOUND);
        g_clear_error(&error);

        start_x(f);
        i = info(f, "x");
        g_assert_cmpint(i->state, ==, COLLECTOR_STATE_RUNNING);
        g_assert_cmpint(i->pid, >, 0);
        g_assert_cmpstr(i->type, ==, "test-collector");
        g_assert_cmpuint(i->restart_count, ==, 0);
        first_pid = i->pid;
        g_clear_pointer(&i, process_manager_collector_info_free);
        g_assert_cmpstr(f->transitions->str, ==, "x:stopped>starting;x:starting>running;");

        {
                g_auto(Outcome) o = {0};

                g_assert_true(process_manager_get_capabilities(f->pm, "x", ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 5000);
                g_assert_no_error(o.error);
                g_assert_cmpint(o.response->payload_case, ==,
                                DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_CAPABILITIES);
                g_assert_cmpstr(o.response->capabilities->event_types[0], ==, "events.test.counter");
        }
        {
                g_auto(Outcome) o = {0};

                g_assert_true(process_manager_health_check(f->pm, "x", ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 5000);
                g_assert_no_error(o.error);
                g_assert_cmpint(o.response->health->status, ==,
                                DAEMONEYE__EVENTBUS__COLLECTOR_STATUS__COLLECTOR_STATUS_RUNNING);
                /* interval_ms=50 from the [collector x] group reached it with the Start. */
                g_assert_cmpuint(component_interval(o.response, "counter"), ==, 50);
        }
        {
                g_auto(Outcome) o = {0};

                g_assert_true(process_manager_pause(f->pm, "x", ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 5000);
                g_assert_no_error(o.error);
                i = info(f, "x");
                g_assert_cmpint(i->state, ==, COLLECTOR_STATE_PAUSED);
                g_clear_pointer(&i, process_manager_collector_info_free);
        }
        {
                g_auto(Outcome) o = {0};

                g_assert_true(process_manager_resume(f->pm, "x", ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 5000);
                g_assert_no_error(o.error);
                i = info(f, "x");
                g_assert_cmpint(i->state, ==, COLLECTOR_STATE_RUNNING);
                g_clear_pointer(&i, process_manager_collector_info_free);
        }
        {
                g_auto(Outcome) o = {0};

                g_assert_false(process_manager_update_config(f->pm, "x", "[1]", FALSE, FALSE, TRUE, ACTOR,
                                                             on_outcome, &o, &error));
                g_assert_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_INVALID_ARGUMENT);
                g_clear_error(&error);
                /* The collector refuses what it does not know: an error reply. */
                g_assert_true(process_manager_update_config(f->pm, "x", "{\"nope\": 1}", FALSE, FALSE, TRUE,
                                                            ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 5000);
                g_assert_nonnull(o.error);
                g_assert_nonnull(o.response);
        }
        {
                g_auto(Outcome) o = {0};

                g_assert_true(process_manager_update_config(f->pm, "x", "{\"interval_ms\": 200}", FALSE,
                                                            FALSE, TRUE, ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 5000);
                g_assert_no_error(o.error);
                g_assert_cmpuint(o.response->config_update->n_applied, ==, 1);
                g_assert_cmpstr(o.response->config_update->applied[0], ==, "interval_ms");
        }
        {
                /* A restart is a new process, still with the setting UpdateConfig applied. */
                g_auto(Outcome) o = {0};
                g_auto(Outcome) h = {0};

                g_string_truncate(f->transitions, 0);
                g_assert_true(process_manager_restart(f->pm, "x", ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 10000);
                g_assert_no_error(o.error);
                i = info(f, "x");
                g_assert_cmpint(i->state, ==, COLLECTOR_STATE_RUNNING);
                g_assert_cmpint(i->pid, !=, first_pid);
                g_assert_cmpuint(i->restart_count, ==, 0); /* asked for: not an automatic restart */
                g_clear_pointer(&i, process_manager_collector_info_free);
                g_assert_cmpstr(f->transitions->str, ==,
                                "x:running>stopping;x:stopping>starting;x:starting>running;");
                g_assert_true(process_manager_health_check(f->pm, "x", ACTOR, on_outcome, &h, &error));
                run_until(&h.done, 5000);
                g_assert_no_error(h.error);
                g_assert_cmpuint(component_interval(h.response, "counter"), ==, 200);
        }

        list = process_manager_list(f->pm);
        g_assert_cmpuint(list->len, ==, 1);
        json = process_manager_to_json(f->pm);
        g_assert_nonnull(strstr(json, "\"id\":\"x\",\"type\":\"test-collector\",\"state\":\"running\""));

        {
                g_auto(Outcome) o = {0};

                i = info(f, "x");
                g_assert_true(process_manager_stop(f->pm, "x", ACTOR, on_outcome, &o, &error));
                run_until(&o.done, 10000);
                g_assert_no_error(o.error);
                g_clear_pointer(&i, process_manager_collector_info_free);
                i = info(f, "x");
                g_assert_cmpint(i->state, ==, COLLECTOR_STATE_STOPPED);
                g_assert_cmpint(i->pid, ==, 0);
                g_assert_cmpuint(i->uptime_us, ==, 0);
        }

        /* The journal fields: the RPC's log line and its audit record. */
        {
                gboolean rpc_line = FALSE, audit_line = FALSE;

                for (guint n = 0; n < records->len; n++) {
                        const char *r = records->pdata[n];

                        if (strstr(r, "RPC_OPERATION=get-capabilities\n") && strstr(r, "COLLECTOR_ID=x\n") &&
                            g_regex_match_simple("^CORRELATION_ID=[0-9a-f-]{36}$", r, G_REGEX_MULTILINE,
                                                 0) &&
                            g_regex_match_simple("^DURATION_US=[0-9]+$", r, G_REGEX_MULTILINE, 0) &&
                            !strstr(r, "MESSAGE_ID="))
                                rpc_line = TRUE;
                        if (strstr(r, "MESSAGE_ID=" AUDIT_LOG_MESSAGE_ID "\n") &&
                            strstr(r, "RPC_OPERATION=get-capabilities\n") &&
                            strstr(r, "AUDIT_ACTOR=" ACTOR "\n") && strstr(r, "RPC_STATUS=success\n") &&
                            strstr(r, "MESSAGE={\"time\":"))
                                audit_line = TRUE;
                }
                g_assert_true(rpc_line);
                g_assert_true(audit_line);
        }

        /* Every RPC, with the actor who asked. */
        g_assert_true(g_file_get_contents(f->config->rpc.audit_log_path, &audit, NULL, NULL));
        g_assert_nonnull(strstr(audit, "\"actor\":\"" ACTOR "\",\"action\":\"get-capabilities\""));
        g_assert_nonnull(strstr(audit, "\"actor\":\"" ACTOR "\",\"action\":\"pause\""));
        g_assert_nonnull(strstr(audit, "\"actor\":\"" ACTOR "\",\"action\":\"update-config\""));
        g_assert_nonnull(strstr(audit, "\"actor\":\"" ACTOR "\",\"action\":\"graceful-shutdown\""));
}

static void on_shutdown(ProcessManager *pm, gpointer user_data)
{
        *(gboolean *)user_data = TRUE;
}

/* A stop during the start, a start during the stop, then shutdown: callbacks exactly once, nothing left. */
static void test_races_and_shutdown(Fixture *f, gconstpointer data)
{
        g_auto(Outcome) start = {0};
        g_auto(Outcome) stop = {0};
        g_auto(Outcome) again = {0};
        g_autoptr(GError) error = NULL;
        g_autoptr(ProcessManagerCollectorInfo) i = NULL;
        gboolean shut = FALSE;

        g_assert_true(process_manager_start(f->pm, "x", ACTOR, on_outcome, &start, &error));
        g_assert_true(process_manager_stop(f->pm, "x", ACTOR, on_outcome, &stop, &error));
        /* Callbacks never run inside the call that made them due. */
        g_assert_false(start.done);
        run_until(&start.done, 1000);
        g_assert_error(start.error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_CANCELLED);
        g_assert_true(process_manager_start(f->pm, "x", ACTOR, on_outcome, &again, &error));
        run_until(&stop.done, 10000);
        g_assert_no_error(stop.error);
        run_until(&again.done, 10000);
        g_assert_no_error(again.error);
        i = info(f, "x");
        g_assert_cmpint(i->state, ==, COLLECTOR_STATE_RUNNING);

        process_manager_shutdown(f->pm, on_shutdown, &shut);
        g_assert_false(process_manager_start(f->pm, "x", ACTOR, on_outcome, NULL, &error));
        g_assert_error(error, PROCESS_MANAGER_ERROR, PROCESS_MANAGER_ERROR_CANCELLED);
        run_until(&shut, 10000);
        g_clear_pointer(&i, process_manager_collector_info_free);
        i = info(f, "x");
        g_assert_cmpint(i->state, ==, COLLECTOR_STATE_STOPPED);
        g_assert_cmpint(i->pid, ==, 0);
}

/* process_manager_free() with a collector running: killed and reaped, pending callbacks cancelled. */
static void test_free_while_running(Fixture *f, gconstpointer data)
{
        g_auto(Outcome) health = {0};
        g_autoptr(GError) error = NULL;
        g_autoptr(ProcessManagerCollectorInfo) i = NULL;

        start_x(f);
        i = info(f, "x");
        g_assert_true(process_manager_health_check(f->pm, "x", ACTOR, on_outcome, &health, &error));
        g_clear_pointer(&f->pm, process_manager_free);
        g_assert_true(health.done);
        g_assert_error(health.error, DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED);
}

/* Everything to stderr: stdout carries TAP. */
static GLogWriterOutput stderr_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                      gpointer user_data)
{
        g_autofree char *line = NULL;
        GString *record = g_string_new(NULL);

        for (gsize i = 0; i < n_fields; i++)
                if (fields[i].length < 0)
                        g_string_append_printf(record, "%s=%s\n", fields[i].key,
                                               (const char *)fields[i].value);
        g_ptr_array_add(records, g_string_free(record, FALSE));
        if (level & G_LOG_LEVEL_DEBUG)
                return G_LOG_WRITER_HANDLED;
        line = g_log_writer_format_fields(level, fields, n_fields, FALSE);
        fprintf(stderr, "%s\n", line);
        if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
                G_BREAKPOINT();
        return G_LOG_WRITER_HANDLED;
}

int main(int argc, char **argv)
{
        int status;

        g_test_init(&argc, &argv, NULL);
        records = g_ptr_array_new_with_free_func(g_free);
        g_log_set_writer_func(stderr_writer, NULL, NULL);
        /* Warnings of the code under test are expected (a refused setting); they must not abort. */
        g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR);
        g_log_set_fatal_mask("daemoneye-agent", G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR);
        signal(SIGPIPE, SIG_IGN);
#define ADD(path, func)                                                                                     \
        g_test_add("/process-manager-api/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
        ADD("operations", test_operations);
        ADD("races-and-shutdown", test_races_and_shutdown);
        ADD("free-while-running", test_free_while_running);
#undef ADD
        status = g_test_run();
        g_ptr_array_unref(records);
        return status;
}
