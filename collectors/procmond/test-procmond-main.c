/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-procmond as the agent runs it: socket-activated (fd 3,
 * LISTEN_FDS=1, LISTEN_PID), welcomed, started over RPC. The test sees the
 * baseline batches, a START for a child it spawns and an EXIT once it kills
 * it, real health figures, a new scan interval taking effect, pause and
 * stop ending the scans, and a graceful shutdown.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-dcc-agent.h"

#define LIFECYCLE_START DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_KIND__PROCESS_LIFECYCLE_KIND_START
#define LIFECYCLE_EXIT DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_KIND__PROCESS_LIFECYCLE_KIND_EXIT

static TestAgent *procmond_start(const char *first_arg, ...)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        TestAgent *agent = test_agent_new("procmond");
        va_list args;

        g_ptr_array_add(argv, (char *)test_program_path("DAEMONEYE_PROCMOND"));
        va_start(args, first_arg);
        for (const char *arg = first_arg; arg; arg = va_arg(args, const char *))
                g_ptr_array_add(argv, (char *)arg);
        va_end(args);
        g_ptr_array_add(argv, NULL);
        test_agent_start_activated(agent, (const char *const *)argv->pdata);
        return agent;
}

static double metric(const TestResponse *response, const char *name)
{
        const Daemoneye__Eventbus__HealthResult *health = response->health;

        for (gsize i = 0; i < health->n_metrics; i++)
                if (g_str_equal(health->metrics[i]->key, name))
                        return health->metrics[i]->value;
        g_error("metric %s missing", name);
}

static const Daemoneye__Eventbus__ComponentHealth *component(const TestResponse *response, const char *name)
{
        const Daemoneye__Eventbus__HealthResult *health = response->health;

        for (gsize i = 0; i < health->n_components; i++)
                if (g_str_equal(health->components[i]->name, name))
                        return health->components[i];
        g_error("component %s missing", name);
}

static TestResponse *health_check(TestAgent *agent)
{
        TestResponse *response = test_agent_call_op(agent, TEST_OP(HEALTH_CHECK));

        test_assert_success(response);
        g_assert_cmpint(response->payload_case, ==, DAEMONEYE__EVENTBUS__RPC_RESPONSE__PAYLOAD_HEALTH);
        return response;
}

/* Scans done over @ms, read from the health figures. */
static double scans_during(TestAgent *agent, guint ms)
{
        g_autoptr(TestResponse) before = health_check(agent);
        g_autoptr(TestResponse) after = NULL;

        g_usleep(ms * 1000);
        after = health_check(agent);
        return metric(after, "process_enumeration.scans") - metric(before, "process_enumeration.scans");
}

/* Waits for the lifecycle event of @kind about @pid; other processes' events are skipped. */
static void expect_lifecycle(TestAgent *agent, int kind, GPid pid)
{
        gint64 deadline = g_get_monotonic_time() + TEST_AGENT_TIMEOUT_MS * 1000;

        for (;;) {
                gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
                g_autoptr(TestMessage) message = NULL;
                Daemoneye__Eventbus__ProcessLifecycleEvent *event;
                gboolean found;

                if (left_ms <= 0)
                        g_error("no lifecycle event %d for pid %d", kind, (int)pid);
                message = test_agent_wait_message(agent, "events.process.lifecycle", (guint)left_ms);
                if (!message)
                        continue;
                g_assert_cmpint(message->message_type, ==, TEST_MT(EVENT));
                g_assert_cmpstr(message->sender, ==, "procmond");
                event = (Daemoneye__Eventbus__ProcessLifecycleEvent *)test_unpack(
                        message, &daemoneye__eventbus__process_lifecycle_event__descriptor);
                found = (int)event->kind == kind && event->process && event->process->pid == (guint32)pid;
                if (found) {
                        g_assert_cmpuint(event->process->ppid, ==, (guint32)getpid());
                        g_assert_cmpstr(event->process->comm, ==, "sleep");
                        g_assert_cmpuint(event->process->start_time_ticks, >, 0);
                        if (kind == LIFECYCLE_EXIT)
                                g_assert_cmpuint(event->exit_observed_us, >, 0);
                }
                protobuf_c_message_free_unpacked(&event->base, NULL);
                if (found)
                        return;
        }
}

/* Reads one whole table (batch 0 .. batch_count-1 of one scan); Returns: the processes in it. */
static guint expect_batches(TestAgent *agent, guint batch_size, gboolean *saw_self)
{
        guint total = 0, count = 0;
        guint64 scan_id = 0;

        *saw_self = FALSE;
        for (guint index = 0; count == 0 || index < count; index++) {
                g_autoptr(TestMessage) message =
                        test_agent_wait_message(agent, "events.process.batch", TEST_AGENT_TIMEOUT_MS);
                Daemoneye__Eventbus__ProcessBatch *batch;

                g_assert_nonnull(message);
                batch = (Daemoneye__Eventbus__ProcessBatch *)test_unpack(message,
                                                                         &daemoneye__eventbus__process_batch__descriptor);
                g_assert_cmpuint(batch->batch_index, ==, index);
                if (index == 0) {
                        count = batch->batch_count;
                        scan_id = batch->scan_id;
                }
                g_assert_cmpuint(batch->batch_count, ==, count);
                g_assert_cmpuint(batch->scan_id, ==, scan_id);
                g_assert_cmpuint(batch->scan_time_us, >, 0);
                g_assert_cmpuint(batch->n_processes, >=, 1);
                g_assert_cmpuint(batch->n_processes, <=, batch_size);
                for (gsize i = 0; i < batch->n_processes; i++)
                        if (batch->processes[i]->pid == (guint32)getpid())
                                *saw_self = TRUE;
                total += (guint)batch->n_processes;
                protobuf_c_message_free_unpacked(&batch->base, NULL);
        }
        return total;
}

static GPid spawn_sleep(void)
{
        const char *argv[] = {"/bin/sleep", "60", NULL};
        g_autoptr(GError) error = NULL;
        GPid pid = 0;

        g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                      &pid, &error);
        g_assert_no_error(error);
        return pid;
}

static void kill_and_reap(GPid pid)
{
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

static void test_collects(void)
{
        g_autoptr(TestAgent) agent = procmond_start("--set", "scan_interval_ms=100", "--set", "batch_size=7", NULL);
        g_autoptr(TestResponse) start = NULL;
        g_autoptr(TestResponse) health = NULL;
        g_autoptr(TestResponse) stop = NULL;
        const Daemoneye__Eventbus__ComponentHealth *c;
        g_autofree char *shutdown_id = NULL;
        g_autoptr(TestResponse) done = NULL;
        gboolean saw_self = FALSE;
        guint processes;
        GPid child;

        start = test_agent_call_op(agent, TEST_OP(START));
        test_assert_success(start);
        g_assert_cmpint(start->lifecycle->status, ==, TEST_CSTATUS(RUNNING));

        /* The baseline: the whole table in batches of at most batch_size, this test among them. */
        processes = expect_batches(agent, 7, &saw_self);
        g_assert_cmpuint(processes, >=, 3);
        g_assert_true(saw_self);

        child = spawn_sleep();
        expect_lifecycle(agent, LIFECYCLE_START, child);
        kill_and_reap(child);
        expect_lifecycle(agent, LIFECYCLE_EXIT, child);

        health = health_check(agent);
        g_assert_cmpint(health->health->status, ==, TEST_CSTATUS(RUNNING));
        g_assert_cmpint(health->health->overall, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY);
        c = component(health, "process_enumeration");
        g_assert_cmpint(c->status, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY);
        g_assert_cmpuint(c->check_interval_ms, ==, 100);
        g_assert_nonnull(strstr(c->message, "processes"));
        c = component(health, "eventbus");
        g_assert_cmpint(c->status, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY);
        g_assert_nonnull(strstr(c->message, "events published"));
        g_assert_cmpfloat(metric(health, "process_enumeration.processes_seen"), >=, 3);
        g_assert_cmpfloat(metric(health, "process_enumeration.scans"), >=, 2);
        g_assert_cmpfloat(metric(health, "process_enumeration.last_scan_duration_us"), >, 0);
        g_assert_cmpfloat(metric(health, "process_enumeration.errors"), ==, 0);
        g_assert_cmpfloat(metric(health, "eventbus.events_published"), >=, 3);
        g_assert_cmpfloat(metric(health, "eventbus.batches_published"), >=, 1);
        g_assert_cmpfloat(metric(health, "eventbus.publish_errors"), ==, 0);
        g_assert_cmpfloat(metric(health, "core.events_published"), ==, metric(health, "eventbus.events_published"));

        stop = test_agent_call_op(agent, TEST_OP(STOP));
        test_assert_success(stop);
        g_assert_cmpfloat(scans_during(agent, 400), ==, 0);

        shutdown_id = test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE);
        done = test_agent_wait_response(agent, shutdown_id, TEST_AGENT_TIMEOUT_MS);
        test_assert_success(done);
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 0);
}

/* Settings are checked against the schema, and a new scan interval takes effect at once. */
static void test_config(void)
{
        static const char *const refused[][2] = {
                {"{\"scan_interval_ms\": 5}", "10..3600000"},
                {"{\"batch_size\": 0}", "1..10000"},
                {"{\"enable_hash_verification\": \"yes\"}", "expected a boolean"},
                {"{\"scan_interval\": 100}", "unknown key"},
        };
        g_autoptr(TestAgent) agent = procmond_start("--set", "enable_hash_verification=false", NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) r = NULL;
        g_autoptr(TestResponse) pause = NULL;
        g_autoptr(TestResponse) resume = NULL;
        g_autoptr(TestResponse) before = NULL;
        g_autoptr(TestResponse) after = NULL;
        double fast, slow;

        test_assert_success(start);
        for (gsize i = 0; i < G_N_ELEMENTS(refused); i++) {
                g_autoptr(TestResponse) bad = test_agent_call_config(agent, refused[i][0], FALSE, TRUE, FALSE);

                test_assert_error(bad, TEST_STATUS(ERROR), TEST_KIND(INVALID_ARGUMENT), refused[i][1]);
        }

        r = test_agent_call_config(agent, "{\"scan_interval_ms\": 50}", FALSE, TRUE, FALSE);
        test_assert_success(r);
        fast = scans_during(agent, 1000);
        /* About 20; well above what the default 1000 ms gives, allowing for a slow machine. */
        g_assert_cmpfloat(fast, >=, 6);
        g_clear_pointer(&r, test_response_free);
        r = test_agent_call_config(agent, "{\"scan_interval_ms\": 5000, \"enable_hash_verification\": true}", FALSE,
                                   TRUE, FALSE);
        test_assert_success(r);
        slow = scans_during(agent, 1000);
        g_assert_cmpfloat(slow, <=, 1);

        /* Paused: no scans; resumed: a scan at once. */
        pause = test_agent_call_op(agent, TEST_OP(PAUSE));
        test_assert_success(pause);
        g_assert_cmpfloat(scans_during(agent, 300), ==, 0);
        before = health_check(agent);
        resume = test_agent_call_op(agent, TEST_OP(RESUME));
        test_assert_success(resume);
        /* The interval is 5 s: a scan within 2 s is the one RESUME makes. */
        for (guint i = 0; i < 40; i++) {
                g_clear_pointer(&after, test_response_free);
                after = health_check(agent);
                if (metric(after, "process_enumeration.scans") > metric(before, "process_enumeration.scans"))
                        break;
                g_usleep(50 * 1000);
        }
        g_assert_cmpfloat(metric(after, "process_enumeration.scans"), >, metric(before, "process_enumeration.scans"));

        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

/* An agent that stops reading: scans are skipped past max_backlog_bytes, and health says so. */
static void test_backlog(void)
{
        g_autoptr(TestAgent) agent =
                procmond_start("--set", "scan_interval_ms=10", "--set", "batch_interval_ms=10", "--set",
                               "enable_hash_verification=false", "--set", "max_backlog_bytes=65536", NULL);
        g_autoptr(TestResponse) start = test_agent_call_op(agent, TEST_OP(START));
        g_autoptr(TestResponse) health = NULL;
        g_autoptr(TestResponse) later = NULL;
        g_autoptr(TestResponse) slower = NULL;
        const Daemoneye__Eventbus__ComponentHealth *c;

        test_assert_success(start);
        /* The whole table every 10 ms and nobody reading: the socket buffers fill, then the backlog. */
        g_usleep(5 * G_USEC_PER_SEC);
        health = health_check(agent);
        c = component(health, "eventbus");
        g_assert_cmpint(c->status, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_DEGRADED);
        g_assert_nonnull(strstr(c->message, "not yet taken"));
        g_assert_cmpfloat(metric(health, "eventbus.scans_skipped"), >, 0);
        g_assert_cmpfloat(metric(health, "eventbus.pending_bytes"), >, 65536);

        /* At a pace the reader keeps up with, once the backlog is read, scanning goes on. */
        slower = test_agent_call_config(agent, "{\"scan_interval_ms\": 200, \"batch_interval_ms\": 0}", FALSE,
                                        TRUE, FALSE);
        test_assert_success(slower);
        test_agent_drop_messages(agent, "events.");
        for (guint i = 0; i < 100; i++) {
                g_clear_pointer(&later, test_response_free);
                g_usleep(50 * 1000);
                later = health_check(agent);
                test_agent_drop_messages(agent, "events.");
                if (component(later, "eventbus")->status == DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY)
                        break;
        }
        g_assert_cmpint(component(later, "eventbus")->status, ==,
                        DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_HEALTHY);
        g_free(test_agent_send_shutdown(agent, TEST_OP(FORCE_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 3);
}

static void test_capabilities(void)
{
        static const char *const topics[] = {"events.process.lifecycle", "events.process.metadata",
                                             "events.process.tree", "events.process.integrity",
                                             "events.process.batch"};
        g_autoptr(TestAgent) agent = procmond_start(NULL);
        g_autoptr(TestResponse) r = test_agent_call_op(agent, TEST_OP(GET_CAPABILITIES));

        test_assert_success(r);
        g_assert_cmpuint(r->capabilities->n_event_types, ==, G_N_ELEMENTS(topics));
        for (gsize i = 0; i < G_N_ELEMENTS(topics); i++)
                g_assert_cmpstr(r->capabilities->event_types[i], ==, topics[i]);
        g_assert_cmpuint(r->capabilities->n_operations, ==, 10);
        g_free(test_agent_send_shutdown(agent, TEST_OP(GRACEFUL_SHUTDOWN), 0, FALSE));
        g_assert_cmpint(test_agent_wait_exit(agent, TEST_AGENT_TIMEOUT_MS, NULL), ==, 0);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        signal(SIGPIPE, SIG_IGN);

        g_test_add_func("/procmond/main/collects", test_collects);
        g_test_add_func("/procmond/main/config", test_config);
        g_test_add_func("/procmond/main/backlog", test_backlog);
        g_test_add_func("/procmond/main/capabilities", test_capabilities);
        return g_test_run();
}
