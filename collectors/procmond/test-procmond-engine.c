/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eventbus.pb-c.h"
#include "procmond-engine.h"
#include "test-fixture.h"

#define LIFECYCLE_START DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_KIND__PROCESS_LIFECYCLE_KIND_START
#define LIFECYCLE_EXIT DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_KIND__PROCESS_LIFECYCLE_KIND_EXIT

typedef struct {
        char *topic;
        char *type;
        GBytes *payload;
} Emitted;

static void emitted_free(gpointer p)
{
        Emitted *e = p;

        g_free(e->topic);
        g_free(e->type);
        g_bytes_unref(e->payload);
        g_free(e);
}

typedef struct {
        ProcmondEngine *engine;
        GPtrArray *emitted; /* of the last scan */
        char *root;         /* fixture tests only */
} Fixture;

static void on_emit(const char *topic, const char *type, const guint8 *payload, gsize len, gpointer user_data)
{
        Fixture *f = user_data;
        Emitted *e = g_new0(Emitted, 1);

        e->topic = g_strdup(topic);
        e->type = g_strdup(type);
        e->payload = g_bytes_new(payload, len);
        g_ptr_array_add(f->emitted, e);
}

static void engine_start(Fixture *f, const ProcmondEngineConfig *config)
{
        g_autoptr(GError) error = NULL;

        f->engine = procmond_engine_new(config, &error);
        g_assert_no_error(error);
        f->emitted = g_ptr_array_new_with_free_func(emitted_free);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
        ProcmondEngineConfig config;

        procmond_engine_config_init(&config);
        config.enable_hash_verification = GPOINTER_TO_INT(data);
        engine_start(f, &config);
}

static void fixture_setup_fake(Fixture *f, gconstpointer data)
{
        ProcmondEngineConfig config;

        f->root = fixture_root_new();
        procmond_engine_config_init(&config);
        config.proc_root = f->root;
        config.enable_hash_verification = FALSE;
        config.batch_size = 3;
        engine_start(f, &config);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        procmond_engine_free(f->engine);
        g_ptr_array_unref(f->emitted);
        if (f->root)
                fixture_root_remove(f->root);
}

static void scan(Fixture *f)
{
        g_autoptr(GError) error = NULL;
        ProcmondStats before = procmond_engine_get_stats(f->engine);

        g_ptr_array_set_size(f->emitted, 0);
        g_assert_true(procmond_engine_scan(f->engine, on_emit, f, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(procmond_engine_get_stats(f->engine).events_emitted - before.events_emitted, ==,
                         f->emitted->len);
}

#define DEFINE_FIND(fn, Type, unpack, topic_name, type_name, pid_expr)                                         \
        static Type *fn(Fixture *f, gint pid, guint nth)                                                      \
        {                                                                                                      \
                for (guint i = 0; i < f->emitted->len; i++) {                                                  \
                        Emitted *e = f->emitted->pdata[i];                                                     \
                        gsize len;                                                                             \
                        const guint8 *data;                                                                    \
                        Type *msg;                                                                             \
                                                                                                               \
                        if (!g_str_equal(e->topic, topic_name))                                                \
                                continue;                                                                      \
                        g_assert_cmpstr(e->type, ==, type_name);                                               \
                        data = g_bytes_get_data(e->payload, &len);                                             \
                        msg = unpack(NULL, len, data);                                                         \
                        g_assert_nonnull(msg);                                                                 \
                        if ((gint)(pid_expr) == pid && nth-- == 0)                                             \
                                return msg;                                                                    \
                        protobuf_c_message_free_unpacked(&msg->base, NULL);                                    \
                }                                                                                              \
                return NULL;                                                                                   \
        }

DEFINE_FIND(find_lifecycle, Daemoneye__Eventbus__ProcessLifecycleEvent,
            daemoneye__eventbus__process_lifecycle_event__unpack, PROCMOND_TOPIC_LIFECYCLE,
            PROCMOND_TYPE_LIFECYCLE, msg->process->pid)
DEFINE_FIND(find_metadata, Daemoneye__Eventbus__ProcessMetadataEvent,
            daemoneye__eventbus__process_metadata_event__unpack, PROCMOND_TOPIC_METADATA, PROCMOND_TYPE_METADATA,
            msg->process->pid)
DEFINE_FIND(find_tree, Daemoneye__Eventbus__ProcessTreeEvent, daemoneye__eventbus__process_tree_event__unpack,
            PROCMOND_TOPIC_TREE, PROCMOND_TYPE_TREE, msg->pid)

static void message_free(gpointer msg)
{
        if (msg)
                protobuf_c_message_free_unpacked(msg, NULL);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Daemoneye__Eventbus__ProcessLifecycleEvent, message_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Daemoneye__Eventbus__ProcessMetadataEvent, message_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Daemoneye__Eventbus__ProcessTreeEvent, message_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Daemoneye__Eventbus__ProcessBatch, message_free)

static guint count_topic(Fixture *f, const char *topic)
{
        guint n = 0;

        for (guint i = 0; i < f->emitted->len; i++)
                n += g_str_equal(((Emitted *)f->emitted->pdata[i])->topic, topic);
        return n;
}

static char *canonical(const char *path)
{
        char resolved[PATH_MAX];

        g_assert_nonnull(realpath(path, resolved));
        return g_strdup(resolved);
}

static gboolean strv_contains_all(char **strv, gsize n, const char *const *wanted)
{
        for (guint i = 0; wanted[i]; i++) {
                gboolean found = FALSE;

                for (gsize j = 0; j < n; j++)
                        found = found || g_str_equal(strv[j], wanted[i]);
                if (!found)
                        return FALSE;
        }
        return TRUE;
}

static void test_config(void)
{
        ProcmondEngineConfig config;
        g_autoptr(GError) error = NULL;

        procmond_engine_config_init(&config);
        g_assert_true(procmond_engine_config_validate(&config, &error));
        g_assert_no_error(error);

        config.scan_interval_ms = 5;
        g_assert_false(procmond_engine_config_validate(&config, &error));
        g_assert_error(error, PROCMOND_ERROR, PROCMOND_ERROR_INVALID_CONFIG);
        g_assert_nonnull(strstr(error->message, "scan_interval_ms=5"));
        g_assert_nonnull(strstr(error->message, "10..3600000"));
        g_clear_error(&error);

        procmond_engine_config_init(&config);
        config.batch_size = 0;
        g_assert_null(procmond_engine_new(&config, &error));
        g_assert_nonnull(strstr(error->message, "batch_size"));
        g_clear_error(&error);

        procmond_engine_config_init(&config);
        config.proc_root = "/nonexistent/procmond";
        g_assert_null(procmond_engine_new(&config, &error));
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void test_baseline_and_batches(Fixture *f, gconstpointer data)
{
        ProcmondStats stats;
        guint64 total = 0;
        guint count = 0;

        scan(f);
        stats = procmond_engine_get_stats(f->engine);
        /* Running processes did not start now: the baseline has no START, only the table. */
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_LIFECYCLE), ==, 0);
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_BATCH), ==, stats.batches_emitted);
        for (guint i = 0, index = 0; i < f->emitted->len; i++) {
                Emitted *e = f->emitted->pdata[i];
                gsize len;
                const guint8 *bytes;
                g_autoptr(Daemoneye__Eventbus__ProcessBatch) batch = NULL;

                if (!g_str_equal(e->topic, PROCMOND_TOPIC_BATCH))
                        continue;
                g_assert_cmpstr(e->type, ==, PROCMOND_TYPE_BATCH);
                bytes = g_bytes_get_data(e->payload, &len);
                batch = daemoneye__eventbus__process_batch__unpack(NULL, len, bytes);
                g_assert_nonnull(batch);
                g_assert_cmpuint(batch->batch_index, ==, index++);
                if (count == 0)
                        count = batch->batch_count;
                g_assert_cmpuint(batch->batch_count, ==, count);
                g_assert_cmpuint(batch->scan_id, ==, 1);
                g_assert_cmpuint(batch->n_processes, <=, 100);
                g_assert_cmpuint(batch->n_processes, >, 0);
                total += batch->n_processes;
        }
        g_assert_cmpuint(count, ==, stats.batches_emitted);
        g_assert_cmpuint(total, ==, stats.processes_seen);
        g_assert_cmpuint(stats.scans, ==, 1);
        g_assert_cmpuint(stats.errors, ==, 0);
        g_assert_cmpuint(stats.processes_seen, >=, 2);

        /* Not due again for batch_interval_ms (60 scans of 1 s)… */
        scan(f);
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_BATCH), ==, 0);
        /* …unless asked. */
        procmond_engine_request_batch(f->engine);
        scan(f);
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_BATCH), >=, 1);
        scan(f);
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_BATCH), ==, 0);
        stats = procmond_engine_get_stats(f->engine);
        g_assert_cmpuint(stats.scans, ==, 4);
        g_assert_cmpuint(stats.last_scan_duration_us, >, 0);
        g_assert_cmpuint(stats.last_scan_cpu_us, >, 0);
        g_assert_cmpuint(stats.last_scan_time_us, >, 0);
}

static void test_batch_cadence(Fixture *f, gconstpointer data)
{
        ProcmondEngineConfig config = *procmond_engine_get_config(f->engine);
        g_autoptr(GError) error = NULL;
        guint with_batch = 0;

        /* 25 ms of batches at 10 ms scans: every third scan. */
        config.scan_interval_ms = 10;
        config.batch_interval_ms = 25;
        g_assert_true(procmond_engine_update_config(f->engine, &config, &error));
        g_assert_no_error(error);
        scan(f); /* baseline */
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_BATCH), >, 0);
        for (guint i = 0; i < 9; i++) {
                scan(f);
                with_batch += count_topic(f, PROCMOND_TOPIC_BATCH) > 0;
        }
        g_assert_cmpuint(with_batch, ==, 3);

        config.proc_root = "/somewhere/else";
        g_assert_false(procmond_engine_update_config(f->engine, &config, &error));
        g_assert_error(error, PROCMOND_ERROR, PROCMOND_ERROR_INVALID_CONFIG);
        g_assert_cmpstr(procmond_engine_get_config(f->engine)->proc_root, ==, "/proc");
}

static void test_start_exit(Fixture *f, gconstpointer data)
{
        const char *argv[] = {"/bin/sleep", "30", NULL};
        g_autofree char *sleep_path = canonical("/bin/sleep");
        g_autoptr(Daemoneye__Eventbus__ProcessLifecycleEvent) start = NULL;
        g_autoptr(Daemoneye__Eventbus__ProcessLifecycleEvent) exit_event = NULL;
        gboolean hashing = GPOINTER_TO_INT(data);
        GPid pid;

        scan(f);
        pid = child_spawn(argv, NULL, NULL);
        scan(f);
        start = find_lifecycle(f, pid, 0);
        g_assert_nonnull(start);
        g_assert_cmpint(start->kind, ==, LIFECYCLE_START);
        g_assert_cmpuint(start->process->ppid, ==, (guint)getpid());
        g_assert_cmpstr(start->process->exe, ==, sleep_path);
        g_assert_cmpstr(start->process->comm, ==, "sleep");
        g_assert_cmpuint(start->process->n_cmdline, ==, 2);
        g_assert_cmpstr(start->process->cmdline[0], ==, "/bin/sleep");
        g_assert_cmpstr(start->process->cmdline[1], ==, "30");
        g_assert_cmpuint(start->process->uid, ==, getuid());
        g_assert_cmpuint(start->process->start_time_ticks, >, 0);
        g_assert_false(start->process->kernel_thread);
        if (hashing) {
                g_autofree char *content = NULL;
                g_autofree char *expected = NULL;
                gsize len;

                g_assert_true(g_file_get_contents(sleep_path, &content, &len, NULL));
                expected = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)content, len);
                g_assert_cmpstr(start->process->exe_sha256, ==, expected);
        } else {
                g_assert_cmpstr(start->process->exe_sha256, ==, "");
        }
        /* Exactly one START for it, and none for what already ran. */
        g_assert_null(find_lifecycle(f, pid, 1));
        g_assert_null(find_lifecycle(f, getpid(), 0));

        child_kill_and_reap(pid);
        scan(f);
        exit_event = find_lifecycle(f, pid, 0);
        g_assert_nonnull(exit_event);
        g_assert_cmpint(exit_event->kind, ==, LIFECYCLE_EXIT);
        g_assert_cmpuint(exit_event->process->start_time_ticks, ==, start->process->start_time_ticks);
        g_assert_cmpstr(exit_event->process->exe, ==, sleep_path);
        g_assert_cmpuint(exit_event->exit_observed_us, >=, start->process->start_time_us);
        g_assert_cmpuint(exit_event->exit_observed_us, ==, procmond_engine_get_stats(f->engine).last_scan_time_us);
}

static void test_zombie(Fixture *f, gconstpointer data)
{
        const char *argv[] = {"/bin/sleep", "30", NULL};
        g_autofree char *sleep_path = canonical("/bin/sleep");
        g_autoptr(Daemoneye__Eventbus__ProcessLifecycleEvent) exit_event = NULL;
        g_autofree char *stat_path = NULL;
        GPid pid;
        int status;

        pid = child_spawn(argv, NULL, NULL);
        scan(f);
        kill(pid, SIGKILL);
        /* Dead but not reaped: a zombie, without cmdline or exe. */
        stat_path = g_strdup_printf("/proc/%d/stat", pid);
        for (guint i = 0; i < 500; i++) {
                g_autofree char *content = NULL;

                if (g_file_get_contents(stat_path, &content, NULL, NULL) && strstr(content, ") Z "))
                        break;
                g_usleep(10000);
        }
        scan(f);
        g_assert_cmpstr(proc_snapshot_find_pid(procmond_engine_get_snapshot(f->engine), pid)->state, ==, "Z");
        g_assert_null(find_lifecycle(f, pid, 0));
        g_assert_null(find_metadata(f, pid, 0));

        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        child_forget(pid);
        scan(f);
        exit_event = find_lifecycle(f, pid, 0);
        g_assert_nonnull(exit_event);
        g_assert_cmpint(exit_event->kind, ==, LIFECYCLE_EXIT);
        /* The exit reports what the process ran, not its empty zombie shell. */
        g_assert_cmpstr(exit_event->process->exe, ==, sleep_path);
        g_assert_cmpuint(exit_event->process->n_cmdline, ==, 2);
}

typedef struct {
        GPid pid;
        int in;
        int out;
} Helper;

static Helper helper_spawn(void)
{
        const char *argv[] = {test_helper_path(), NULL};
        Helper h;
        g_autofree char *pong = NULL;

        h.pid = child_spawn(argv, &h.in, &h.out);
        pong = child_command(h.in, h.out, "ping");
        g_assert_cmpstr(pong, ==, "pong");
        return h;
}

static void helper_stop(Helper *h)
{
        child_kill_and_reap(h->pid);
        close(h->in);
        close(h->out);
}

static void test_metadata_comm(Fixture *f, gconstpointer data)
{
        Helper h = helper_spawn();
        g_autoptr(Daemoneye__Eventbus__ProcessMetadataEvent) meta = NULL;
        g_autofree char *reply = NULL;

        scan(f);
        reply = child_command(h.in, h.out, "name renamed-proc");
        g_assert_cmpstr(reply, ==, "ok");
        scan(f);
        meta = find_metadata(f, h.pid, 0);
        g_assert_nonnull(meta);
        g_assert_cmpuint(meta->n_changed_fields, ==, 1);
        g_assert_cmpstr(meta->changed_fields[0], ==, "comm");
        g_assert_cmpstr(meta->process->comm, ==, "renamed-proc");
        /* TASK_COMM_LEN cuts the helper's name at 15 bytes. */
        g_assert_cmpstr(meta->previous->comm, ==, "procmond-test-h");
        g_assert_cmpuint(meta->process->start_time_ticks, ==, meta->previous->start_time_ticks);
        g_assert_null(find_lifecycle(f, h.pid, 0));

        scan(f);
        g_assert_null(find_metadata(f, h.pid, 0));
        helper_stop(&h);
}

static void test_metadata_exec(Fixture *f, gconstpointer data)
{
        static const char *const changed[] = {"comm", "exe", "cmdline", NULL};
        g_autofree char *sleep_path = canonical("/bin/sleep");
        g_autofree char *helper_path = canonical(test_helper_path());
        g_autoptr(Daemoneye__Eventbus__ProcessMetadataEvent) meta = NULL;
        g_autofree char *reply = NULL;
        Helper h = helper_spawn();

        scan(f);
        reply = child_command(h.in, h.out, "exec /bin/sleep sleep 30");
        g_assert_cmpstr(reply, ==, "ok");
        g_assert_true(wait_for_proc_file(h.pid, "comm", "sleep\n"));
        scan(f);
        meta = find_metadata(f, h.pid, 0);
        g_assert_nonnull(meta);
        g_assert_true(strv_contains_all(meta->changed_fields, meta->n_changed_fields, changed));
        g_assert_cmpstr(meta->process->exe, ==, sleep_path);
        g_assert_cmpstr(meta->previous->exe, ==, helper_path);
        g_assert_cmpuint(meta->process->n_cmdline, ==, 2);
        g_assert_cmpstr(meta->process->cmdline[0], ==, "sleep");
        /* exec keeps the process: same key, no lifecycle event. */
        g_assert_null(find_lifecycle(f, h.pid, 0));
        helper_stop(&h);
}

static void test_metadata_uid(Fixture *f, gconstpointer data)
{
        static const char *const changed[] = {"uid", "euid", NULL};
        g_autoptr(Daemoneye__Eventbus__ProcessMetadataEvent) meta = NULL;
        g_autofree char *reply = NULL;
        Helper h;

        if (geteuid() != 0) {
                g_test_skip("changing a process's uid needs root");
                return;
        }
        h = helper_spawn();
        scan(f);
        reply = child_command(h.in, h.out, "setuid 65534");
        g_assert_cmpstr(reply, ==, "ok");
        scan(f);
        meta = find_metadata(f, h.pid, 0);
        g_assert_nonnull(meta);
        g_assert_true(strv_contains_all(meta->changed_fields, meta->n_changed_fields, changed));
        g_assert_cmpuint(meta->process->uid, ==, 65534);
        g_assert_cmpuint(meta->process->euid, ==, 65534);
        g_assert_cmpuint(meta->previous->uid, ==, 0);
        helper_stop(&h);
}

static void test_reparent(Fixture *f, gconstpointer data)
{
        g_autoptr(Daemoneye__Eventbus__ProcessTreeEvent) tree = NULL;
        g_autoptr(Daemoneye__Eventbus__ProcessLifecycleEvent) exit_event = NULL;
        g_autofree char *reply = NULL;
        g_autofree char *ppid_line = NULL;
        Helper h;
        GPid orphan;

        /* Orphans come to us rather than to init, so we can see and reap them. */
        g_assert_cmpint(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), ==, 0);
        h = helper_spawn();
        reply = child_command(h.in, h.out, "fork");
        orphan = (GPid)g_ascii_strtoll(reply, NULL, 10);
        g_assert_cmpint(orphan, >, 0);
        child_track(orphan);
        g_assert_true(wait_for_proc_file(orphan, "comm", "sleep\n"));
        scan(f);

        helper_stop(&h);
        ppid_line = g_strdup_printf("PPid:\t%d\n", getpid());
        for (guint i = 0; i < 500; i++) {
                g_autofree char *status = NULL;
                g_autofree char *path = g_strdup_printf("/proc/%d/status", orphan);

                if (g_file_get_contents(path, &status, NULL, NULL) && strstr(status, ppid_line))
                        break;
                g_usleep(10000);
        }
        scan(f);
        tree = find_tree(f, orphan, 0);
        g_assert(tree != NULL); /* g_assert: the compiler knows it does not return */
        g_assert_cmpuint(tree->old_ppid, ==, (guint)h.pid);
        g_assert_cmpuint(tree->new_ppid, ==, (guint)getpid());
        g_assert_nonnull(tree->process);
        g_assert_cmpuint(tree->process->pid, ==, (guint)orphan);
        g_assert_cmpuint(tree->process->ppid, ==, (guint)getpid());
        exit_event = find_lifecycle(f, h.pid, 0);
        g_assert_nonnull(exit_event);
        g_assert_cmpint(exit_event->kind, ==, LIFECYCLE_EXIT);
        /* Reparenting is not an identity change. */
        g_assert_null(find_metadata(f, orphan, 0));
        child_kill_and_reap(orphan);
}

static void test_fixture_pid_reuse(Fixture *f, gconstpointer data)
{
        FixtureProcess p = {.pid = 100, .ppid = 1, .comm = "first", .start_time_ticks = 10, .exe_target = "/a"};
        FixtureProcess q = {.pid = 200, .ppid = 1, .comm = "bad\xff\xfe name", .start_time_ticks = 10,
                            .exe_target = "/b"};
        g_autoptr(Daemoneye__Eventbus__ProcessLifecycleEvent) first = NULL;
        g_autoptr(Daemoneye__Eventbus__ProcessLifecycleEvent) second = NULL;
        g_autoptr(Daemoneye__Eventbus__ProcessLifecycleEvent) started = NULL;
        guint n_batches;

        fixture_write_process(f->root, &p);
        scan(f);
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_BATCH), ==, 1);

        p.start_time_ticks = 20;
        p.comm = "second";
        fixture_write_process(f->root, &p);
        fixture_write_process(f->root, &q);
        scan(f);
        first = find_lifecycle(f, 100, 0);
        second = find_lifecycle(f, 100, 1);
        g_assert_nonnull(first);
        g_assert_nonnull(second);
        g_assert_cmpint(first->kind, ==, LIFECYCLE_EXIT);
        g_assert_cmpuint(first->process->start_time_ticks, ==, 10);
        g_assert_cmpstr(first->process->comm, ==, "first");
        g_assert_cmpint(second->kind, ==, LIFECYCLE_START);
        g_assert_cmpuint(second->process->start_time_ticks, ==, 20);
        g_assert_cmpstr(second->process->comm, ==, "second");
        /* Bytes that are not UTF-8 are repaired, not sent as a broken proto3 string. */
        started = find_lifecycle(f, 200, 0);
        g_assert_nonnull(started);
        g_assert_true(g_utf8_validate(started->process->comm, -1, NULL));
        g_assert_true(g_str_has_prefix(started->process->comm, "bad"));
        g_assert_true(g_str_has_suffix(started->process->comm, " name"));

        /* batch_size 3: seven processes make three batches. */
        for (gint pid = 300; pid < 305; pid++) {
                FixtureProcess r = {.pid = pid, .ppid = 1, .comm = "r", .start_time_ticks = 5};

                fixture_write_process(f->root, &r);
        }
        procmond_engine_request_batch(f->engine);
        scan(f);
        n_batches = count_topic(f, PROCMOND_TOPIC_BATCH);
        g_assert_cmpuint(n_batches, ==, 3);
        g_assert_cmpuint(procmond_engine_get_stats(f->engine).processes_seen, ==, 7);
}

static void test_hash_toggle(Fixture *f, gconstpointer data)
{
        ProcmondEngineConfig config = *procmond_engine_get_config(f->engine);
        g_autoptr(GError) error = NULL;

        g_assert_false(config.enable_hash_verification);
        scan(f);
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_INTEGRITY), ==, 0);
        g_assert_cmpuint(procmond_engine_get_stats(f->engine).hashes_computed, ==, 0);

        config.enable_hash_verification = TRUE;
        g_assert_true(procmond_engine_update_config(f->engine, &config, &error));
        g_assert_no_error(error);
        scan(f);
        /* At least this test program's own executable got hashed. */
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_INTEGRITY), >, 0);
        g_assert_cmpuint(procmond_engine_get_stats(f->engine).hashes_computed, >, 0);
        g_assert_cmpuint(procmond_engine_get_stats(f->engine).hash_cache_entries, >, 0);
        g_assert_nonnull(
                proc_snapshot_find_pid(procmond_engine_get_snapshot(f->engine), getpid())->exe_sha256);

        config.enable_hash_verification = FALSE;
        g_assert_true(procmond_engine_update_config(f->engine, &config, &error));
        scan(f);
        g_assert_cmpuint(count_topic(f, PROCMOND_TOPIC_INTEGRITY), ==, 0);
        g_assert_cmpuint(procmond_engine_get_stats(f->engine).hash_cache_entries, ==, 0);
        g_assert_null(proc_snapshot_find_pid(procmond_engine_get_snapshot(f->engine), getpid())->exe_sha256);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

#define TEST(path, hashing, fn) \
        g_test_add(path, Fixture, GINT_TO_POINTER(hashing), fixture_setup, fn, fixture_teardown)
        g_test_add_func("/procmond-engine/config", test_config);
        TEST("/procmond-engine/baseline-and-batches", FALSE, test_baseline_and_batches);
        TEST("/procmond-engine/batch-cadence", FALSE, test_batch_cadence);
        TEST("/procmond-engine/start-exit", FALSE, test_start_exit);
        TEST("/procmond-engine/start-exit-hashed", TRUE, test_start_exit);
        TEST("/procmond-engine/zombie", FALSE, test_zombie);
        TEST("/procmond-engine/metadata-comm", FALSE, test_metadata_comm);
        TEST("/procmond-engine/metadata-exec", FALSE, test_metadata_exec);
        TEST("/procmond-engine/metadata-uid", FALSE, test_metadata_uid);
        TEST("/procmond-engine/reparent", FALSE, test_reparent);
        TEST("/procmond-engine/hash-toggle", FALSE, test_hash_toggle);
        g_test_add("/procmond-engine/fixture-pid-reuse", Fixture, NULL, fixture_setup_fake, test_fixture_pid_reuse,
                   fixture_teardown);
        return g_test_run();
}
