/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "proc-diff.h"
#include "test-fixture.h"

/* Callbacks are logged as "start 100/5000", "exit …", "reparent 7 50->1", "meta 7 comm,exe". */
typedef struct {
        char *root;
        ProcScanner *scanner;
        GPtrArray *log;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        f->root = fixture_root_new();
        f->scanner = proc_scanner_new(f->root, &error);
        g_assert_no_error(error);
        f->log = g_ptr_array_new_with_free_func(g_free);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        g_ptr_array_unref(f->log);
        proc_scanner_free(f->scanner);
        fixture_root_remove(f->root);
}

static void on_started(const ProcInfo *info, gpointer user_data)
{
        Fixture *f = user_data;

        g_ptr_array_add(f->log, g_strdup_printf("start %d/%" G_GUINT64_FORMAT, info->key.pid,
                                                info->key.start_time_ticks));
}

static void on_exited(const ProcInfo *info, gpointer user_data)
{
        Fixture *f = user_data;

        g_ptr_array_add(f->log, g_strdup_printf("exit %d/%" G_GUINT64_FORMAT, info->key.pid,
                                                info->key.start_time_ticks));
}

static void on_reparented(const ProcInfo *previous, const ProcInfo *current, gpointer user_data)
{
        Fixture *f = user_data;

        g_assert_cmpint(previous->key.pid, ==, current->key.pid);
        g_assert_cmpuint(previous->key.start_time_ticks, ==, current->key.start_time_ticks);
        g_ptr_array_add(f->log, g_strdup_printf("reparent %d %d->%d", current->key.pid, previous->ppid,
                                                current->ppid));
}

static void on_metadata(const ProcInfo *previous, const ProcInfo *current, ProcFields changed,
                        gpointer user_data)
{
        Fixture *f = user_data;
        const char *names[PROC_FIELD_COUNT + 1] = {NULL};
        g_autofree char *joined = NULL;

        proc_fields_names(changed, names);
        joined = g_strjoinv(",", (char **)names);
        g_ptr_array_add(f->log, g_strdup_printf("meta %d %s", current->key.pid, joined));
}

static const ProcDiffCallbacks callbacks = {
        .started = on_started,
        .exited = on_exited,
        .reparented = on_reparented,
        .metadata_changed = on_metadata,
};

static ProcSnapshot *scan(Fixture *f, const ProcSnapshot *previous)
{
        g_autoptr(GError) error = NULL;
        ProcSnapshot *snapshot = proc_scanner_scan(f->scanner, previous, &error);

        g_assert_no_error(error);
        return snapshot;
}

/* Diffs the current fixture against @previous and checks the log, in order. */
static ProcSnapshot *expect(Fixture *f, ProcSnapshot *previous, const char *const *expected)
{
        ProcSnapshot *current = scan(f, previous);
        guint calls;

        g_ptr_array_set_size(f->log, 0);
        calls = proc_diff_run(previous, current, &callbacks, f);
        g_ptr_array_add(f->log, NULL);
        g_assert_cmpstrv((char **)f->log->pdata, expected);
        g_ptr_array_remove_index(f->log, f->log->len - 1);
        g_assert_cmpuint(calls, ==, f->log->len);
        proc_snapshot_free(previous);
        return current;
}

static FixtureProcess process(gint pid, gint ppid, guint64 start)
{
        static const char *const argv[] = {"prog", "--arg", NULL};

        return (FixtureProcess){.pid = pid, .ppid = ppid, .comm = "prog", .start_time_ticks = start,
                                .uid = 1000, .euid = 1000, .gid = 1000, .egid = 1000,
                                .argv = argv, .exe_target = "/usr/bin/prog"};
}

static void test_start_exit(Fixture *f, gconstpointer data)
{
        static const char *const none[] = {NULL};
        static const char *const second[] = {"exit 101/20", "start 102/30", NULL};
        FixtureProcess a = process(1, 0, 1), b = process(100, 1, 10), c = process(101, 1, 20),
                       d = process(102, 1, 30);
        ProcSnapshot *snapshot;

        fixture_write_process(f->root, &a);
        fixture_write_process(f->root, &b);
        fixture_write_process(f->root, &c);
        snapshot = scan(f, NULL);
        snapshot = expect(f, snapshot, none);

        fixture_remove_process(f->root, 101);
        fixture_write_process(f->root, &d);
        snapshot = expect(f, snapshot, second);
        proc_snapshot_free(snapshot);
}

static void test_pid_reuse(Fixture *f, gconstpointer data)
{
        static const char *const reuse[] = {"exit 100/5000", "start 100/6000", NULL};
        FixtureProcess p = process(100, 1, 5000);
        ProcSnapshot *snapshot;

        fixture_write_process(f->root, &p);
        snapshot = scan(f, NULL);
        /* Same pid, same everything, but a new start time: another process. */
        p.start_time_ticks = 6000;
        fixture_write_process(f->root, &p);
        snapshot = expect(f, snapshot, reuse);
        proc_snapshot_free(snapshot);
}

static void test_metadata(Fixture *f, gconstpointer data)
{
        static const char *const other_argv[] = {"prog", "--other", NULL};
        static const char *const none[] = {NULL};
        static const char *const comm[] = {"meta 100 comm", NULL};
        static const char *const exec[] = {"meta 100 exe,cmdline", NULL};
        static const char *const ids[] = {"meta 100 uid,euid,gid,egid", NULL};
        static const char *const deleted[] = {"meta 100 exe_deleted", NULL};
        FixtureProcess p = process(100, 1, 5);
        ProcSnapshot *snapshot;

        fixture_write_process(f->root, &p);
        snapshot = scan(f, NULL);

        p.comm = "renamed";
        fixture_write_process(f->root, &p);
        snapshot = expect(f, snapshot, comm);

        p.argv = other_argv;
        p.exe_target = "/usr/bin/other";
        fixture_write_process(f->root, &p);
        snapshot = expect(f, snapshot, exec);

        p.uid = p.euid = p.gid = p.egid = 0;
        fixture_write_process(f->root, &p);
        snapshot = expect(f, snapshot, ids);

        p.exe_target = "/usr/bin/other (deleted)";
        fixture_write_process(f->root, &p);
        snapshot = expect(f, snapshot, deleted);

        /* Resource figures and state move all the time: not metadata. */
        p.utime_ticks = 1000;
        p.stime_ticks = 500;
        p.rss_pages = 4096;
        p.threads = 12;
        p.state = 'R';
        fixture_write_process(f->root, &p);
        snapshot = expect(f, snapshot, none);
        proc_snapshot_free(snapshot);
}

static void test_reparent(Fixture *f, gconstpointer data)
{
        static const char *const orphaned[] = {"exit 50/2", "reparent 60 50->1", NULL};
        static const char *const both[] = {"reparent 60 1->7", "meta 60 comm", NULL};
        FixtureProcess init = process(1, 0, 1), parent = process(50, 1, 2), child = process(60, 50, 3);
        ProcSnapshot *snapshot;

        fixture_write_process(f->root, &init);
        fixture_write_process(f->root, &parent);
        fixture_write_process(f->root, &child);
        snapshot = scan(f, NULL);

        fixture_remove_process(f->root, 50);
        child.ppid = 1;
        fixture_write_process(f->root, &child);
        snapshot = expect(f, snapshot, orphaned);

        child.ppid = 7;
        child.comm = "adopted";
        fixture_write_process(f->root, &child);
        snapshot = expect(f, snapshot, both);
        proc_snapshot_free(snapshot);
}

static void test_order(Fixture *f, gconstpointer data)
{
        /* The parent got a high pid (pids wrapped) but started first. */
        static const char *const started[] = {"start 900/100", "start 10/200", "start 11/200", NULL};
        static const char *const exited[] = {"exit 900/100", "exit 10/200", "exit 11/200", NULL};
        FixtureProcess parent = process(900, 1, 100), child = process(10, 900, 200), sibling = process(11, 900, 200);
        ProcSnapshot *snapshot = scan(f, NULL);

        fixture_write_process(f->root, &child);
        fixture_write_process(f->root, &sibling);
        fixture_write_process(f->root, &parent);
        snapshot = expect(f, snapshot, started);
        fixture_remove_process(f->root, 10);
        fixture_remove_process(f->root, 11);
        fixture_remove_process(f->root, 900);
        snapshot = expect(f, snapshot, exited);
        proc_snapshot_free(snapshot);
}

static void test_field_names(void)
{
        const char *names[PROC_FIELD_COUNT];

        g_assert_cmpuint(proc_fields_names(0, names), ==, 0);
        g_assert_cmpuint(proc_fields_names(PROC_FIELD_CMDLINE | PROC_FIELD_COMM, names), ==, 2);
        g_assert_cmpstr(names[0], ==, "comm");
        g_assert_cmpstr(names[1], ==, "cmdline");
        g_assert_cmpuint(proc_fields_names((ProcFields)((1u << PROC_FIELD_COUNT) - 1), names), ==, PROC_FIELD_COUNT);
        g_assert_cmpstr(names[PROC_FIELD_COUNT - 1], ==, "exe_deleted");
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

#define FIXTURE_TEST(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        FIXTURE_TEST("/proc-diff/start-exit", test_start_exit);
        FIXTURE_TEST("/proc-diff/pid-reuse", test_pid_reuse);
        FIXTURE_TEST("/proc-diff/metadata", test_metadata);
        FIXTURE_TEST("/proc-diff/reparent", test_reparent);
        FIXTURE_TEST("/proc-diff/order", test_order);
        g_test_add_func("/proc-diff/field-names", test_field_names);
        return g_test_run();
}
