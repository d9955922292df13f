/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "proc-scan.h"
#include "test-fixture.h"

typedef struct {
        char *root;
        ProcScanner *scanner;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        f->root = fixture_root_new();
        f->scanner = proc_scanner_new(f->root, &error);
        g_assert_no_error(error);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        proc_scanner_free(f->scanner);
        fixture_root_remove(f->root);
}

static ProcSnapshot *scan(Fixture *f, const ProcSnapshot *previous)
{
        g_autoptr(GError) error = NULL;
        ProcSnapshot *snapshot = proc_scanner_scan(f->scanner, previous, &error);

        g_assert_no_error(error);
        g_assert_nonnull(snapshot);
        return snapshot;
}

static GStrv cmdline_strv(const ProcInfo *info)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        GStrvBuilder *builder = g_strv_builder_new();
        GStrv result;

        proc_info_cmdline_argv(info, argv);
        for (guint i = 0; i < argv->len; i++)
                g_strv_builder_add(builder, argv->pdata[i]);
        result = g_strv_builder_end(builder);
        g_strv_builder_unref(builder);
        return result;
}

static void test_fields(Fixture *f, gconstpointer data)
{
        static const char *const argv[] = {"bash", "-c", "echo hi", NULL};
        FixtureProcess p = {
                .pid = 100, .ppid = 1, .comm = "bash", .state = 'S', .start_time_ticks = 5000,
                .utime_ticks = 150, .stime_ticks = 50, .rss_pages = 10, .threads = 3,
                .uid = 1000, .euid = 0, .gid = 100, .egid = 101,
                .argv = argv, .exe_target = "/usr/bin/bash",
        };
        g_autoptr(ProcSnapshot) snapshot = NULL;
        g_auto(GStrv) args = NULL;
        guint64 clk_tck = (guint64)sysconf(_SC_CLK_TCK);
        ProcInfo *info;

        fixture_write_process(f->root, &p);
        snapshot = scan(f, NULL);
        g_assert_cmpuint(proc_snapshot_size(snapshot), ==, 1);
        info = proc_snapshot_lookup(snapshot, 100, 5000);
        g_assert_nonnull(info);
        g_assert_true(info == proc_snapshot_find_pid(snapshot, 100));
        g_assert_null(proc_snapshot_lookup(snapshot, 100, 5001));

        g_assert_cmpint(info->ppid, ==, 1);
        g_assert_cmpstr(info->comm, ==, "bash");
        g_assert_cmpstr(info->state, ==, "S");
        g_assert_cmpuint(info->uid, ==, 1000);
        g_assert_cmpuint(info->euid, ==, 0);
        g_assert_cmpuint(info->gid, ==, 100);
        g_assert_cmpuint(info->egid, ==, 101);
        g_assert_cmpuint(info->threads, ==, 3);
        g_assert_cmpuint(info->utime_ticks, ==, 150);
        g_assert_cmpuint(info->stime_ticks, ==, 50);
        g_assert_cmpuint(info->cpu_time_us, ==, (guint64)200 * G_USEC_PER_SEC / clk_tck);
        g_assert_cmpuint(info->rss_bytes, ==, 10 * (guint64)sysconf(_SC_PAGESIZE));
        g_assert_cmpuint(info->start_time_us, ==,
                         proc_scanner_get_boot_time_us(f->scanner) + (guint64)5000 * G_USEC_PER_SEC / clk_tck);
        g_assert_cmpstr(info->exe, ==, "/usr/bin/bash");
        g_assert_false(info->exe_deleted);
        g_assert_false(proc_info_is_kernel_thread(info));
        g_assert_null(info->exe_sha256);
        args = cmdline_strv(info);
        g_assert_cmpstrv(args, argv);
}

static void test_comm_parentheses(Fixture *f, gconstpointer data)
{
        /* comm is whatever the process set: spaces, ')' and '(' included. */
        static const char *const comms[] = {"a) (b) c", ")", "", "x y", "((", ") S 1 2 3"};
        g_autoptr(ProcSnapshot) snapshot = NULL;

        for (guint i = 0; i < G_N_ELEMENTS(comms); i++) {
                FixtureProcess p = {
                        .pid = 200 + (gint)i, .ppid = 7, .comm = comms[i], .start_time_ticks = 42 + i,
                        .exe_target = "/bin/x",
                };

                fixture_write_process(f->root, &p);
        }
        snapshot = scan(f, NULL);
        g_assert_cmpuint(proc_snapshot_size(snapshot), ==, G_N_ELEMENTS(comms));
        for (guint i = 0; i < G_N_ELEMENTS(comms); i++) {
                ProcInfo *info = proc_snapshot_lookup(snapshot, 200 + (gint)i, 42 + i);

                g_assert_nonnull(info);
                g_assert_cmpstr(info->comm, ==, comms[i]);
                g_assert_cmpint(info->ppid, ==, 7);
                g_assert_cmpstr(info->state, ==, "S");
        }
}

static void test_kernel_thread(Fixture *f, gconstpointer data)
{
        FixtureProcess p = {
                .pid = 2, .ppid = 0, .comm = "kthreadd", .flags = PROC_FLAG_KTHREAD | 0x40,
                .start_time_ticks = 1, .argv = NULL, .exe_target = NULL,
        };
        g_autoptr(ProcSnapshot) snapshot = NULL;
        ProcInfo *info;

        fixture_write_process(f->root, &p);
        snapshot = scan(f, NULL);
        info = proc_snapshot_find_pid(snapshot, 2);
        g_assert_nonnull(info);
        g_assert_true(proc_info_is_kernel_thread(info));
        g_assert_cmpstr(info->exe, ==, "");
        g_assert_cmpuint(g_bytes_get_size(info->cmdline), ==, 0);
        g_assert_cmpint(info->ppid, ==, 0);
        g_assert_cmpuint(proc_scanner_get_stats(f->scanner).unreadable, ==, 0);
        g_assert_cmpuint(proc_scanner_get_stats(f->scanner).vanished, ==, 0);
}

static void test_deleted_exe(Fixture *f, gconstpointer data)
{
        FixtureProcess p = {.pid = 300, .ppid = 1, .comm = "evil", .start_time_ticks = 9,
                            .exe_target = "/tmp/evil (deleted)"};
        FixtureProcess q = {.pid = 301, .ppid = 1, .comm = "odd", .start_time_ticks = 9,
                            .exe_target = "/opt/a (deleted)/b"};
        g_autoptr(ProcSnapshot) snapshot = NULL;
        ProcInfo *info;

        fixture_write_process(f->root, &p);
        fixture_write_process(f->root, &q);
        snapshot = scan(f, NULL);
        info = proc_snapshot_find_pid(snapshot, 300);
        g_assert_cmpstr(info->exe, ==, "/tmp/evil");
        g_assert_true(info->exe_deleted);
        /* Only a suffix means deleted. */
        info = proc_snapshot_find_pid(snapshot, 301);
        g_assert_cmpstr(info->exe, ==, "/opt/a (deleted)/b");
        g_assert_false(info->exe_deleted);
}

static void test_vanished_and_malformed(Fixture *f, gconstpointer data)
{
        FixtureProcess good = {.pid = 10, .ppid = 1, .comm = "good", .start_time_ticks = 1, .exe_target = "/a"};
        FixtureProcess no_status = {.pid = 11, .ppid = 1, .comm = "gone", .start_time_ticks = 1};
        FixtureProcess no_stat = {.pid = 12, .ppid = 1, .comm = "gone", .start_time_ticks = 1};
        FixtureProcess bad = {.pid = 13, .ppid = 1, .comm = "bad", .start_time_ticks = 1};
        FixtureProcess wrong_pid = {.pid = 14, .ppid = 1, .comm = "wrong", .start_time_ticks = 1};
        FixtureProcess empty_stat = {.pid = 15, .ppid = 1, .comm = "empty", .start_time_ticks = 1};
        g_autoptr(ProcSnapshot) snapshot = NULL;
        g_autofree char *self = g_build_filename(f->root, "self", NULL);
        g_autofree char *zero = g_build_filename(f->root, "0", NULL);
        g_autofree char *mixed = g_build_filename(f->root, "12a", NULL);
        g_autofree char *file = g_build_filename(f->root, "99", NULL);
        ProcScanStats stats;

        fixture_write_process(f->root, &good);
        fixture_write_process(f->root, &no_status);
        fixture_remove_file(f->root, 11, "status");
        fixture_write_process(f->root, &no_stat);
        fixture_remove_file(f->root, 12, "stat");
        fixture_write_process(f->root, &bad);
        fixture_write_file(f->root, 13, "stat", "13 (bad) S 1 2", -1);
        fixture_write_process(f->root, &wrong_pid);
        fixture_write_file(f->root, 14, "stat",
                           "41 (wrong) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 0\n", -1);
        fixture_write_process(f->root, &empty_stat);
        fixture_write_file(f->root, 15, "stat", "", 0);
        /* Entries /proc has that are not processes. */
        g_assert_cmpint(g_mkdir(self, 0755), ==, 0);
        g_assert_cmpint(g_mkdir(zero, 0755), ==, 0);
        g_assert_cmpint(g_mkdir(mixed, 0755), ==, 0);
        g_assert_true(g_file_set_contents(file, "", 0, NULL));

        snapshot = scan(f, NULL);
        g_assert_cmpuint(proc_snapshot_size(snapshot), ==, 1);
        g_assert_nonnull(proc_snapshot_find_pid(snapshot, 10));
        stats = proc_scanner_get_stats(f->scanner);
        g_assert_cmpuint(stats.entries, ==, 6);
        g_assert_cmpuint(stats.vanished, ==, 3);   /* 11, 12, 15 */
        g_assert_cmpuint(stats.unreadable, ==, 2); /* 13, 14 */
}

static void test_cmdline_shapes(Fixture *f, gconstpointer data)
{
        static const struct {
                const char *raw;
                gsize len;
                const char *const expected[4];
        } cases[] = {
                {"a\0b\0", 4, {"a", "b", NULL}},
                {"title without nul", 17, {"title without nul", NULL}}, /* rewritten argv */
                {"a\0\0", 3, {"a", "", NULL}},
                {"\0", 1, {"", NULL}},
        };

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                FixtureProcess p = {.pid = 400 + (gint)i, .ppid = 1, .comm = "c", .start_time_ticks = 3,
                                    .exe_target = "/bin/c"};

                fixture_write_process(f->root, &p);
                fixture_write_file(f->root, p.pid, "cmdline", cases[i].raw, (gssize)cases[i].len);
        }

        g_autoptr(ProcSnapshot) snapshot = scan(f, NULL);

        for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_auto(GStrv) args = cmdline_strv(proc_snapshot_find_pid(snapshot, 400 + (gint)i));

                g_assert_cmpstrv(args, cases[i].expected);
        }
}

static void test_strings_shared(Fixture *f, gconstpointer data)
{
        static const char *const argv1[] = {"daemon", "--flag", NULL};
        static const char *const argv2[] = {"daemon", "--other", NULL};
        FixtureProcess p = {.pid = 500, .ppid = 1, .comm = "daemon", .start_time_ticks = 77, .argv = argv1,
                            .exe_target = "/usr/sbin/daemon"};
        g_autoptr(ProcSnapshot) first = NULL;
        g_autoptr(ProcSnapshot) second = NULL;
        g_autoptr(ProcSnapshot) third = NULL;
        ProcInfo *a, *b, *c;

        fixture_write_process(f->root, &p);
        first = scan(f, NULL);
        second = scan(f, first);
        a = proc_snapshot_find_pid(first, 500);
        b = proc_snapshot_find_pid(second, 500);
        /* Unchanged strings are the previous scan's, not copies. */
        g_assert_true(a != b);
        g_assert_true(a->comm == b->comm);
        g_assert_true(a->exe == b->exe);
        g_assert_true(a->cmdline == b->cmdline);

        p.argv = argv2;
        fixture_write_process(f->root, &p);
        third = scan(f, second);
        c = proc_snapshot_find_pid(third, 500);
        g_assert_true(c->comm == b->comm);
        g_assert_true(c->cmdline != b->cmdline);
        g_assert_false(g_bytes_equal(c->cmdline, b->cmdline));
}

static void test_zombie_keeps_image(Fixture *f, gconstpointer data)
{
        static const char *const argv[] = {"worker", "--job", "7", NULL};
        FixtureProcess p = {.pid = 600, .ppid = 1, .comm = "worker", .start_time_ticks = 8, .argv = argv,
                            .exe_target = "/usr/bin/worker"};
        FixtureProcess exiting = {.pid = 601, .ppid = 1, .comm = "exiting", .start_time_ticks = 8, .argv = argv,
                                  .exe_target = "/usr/bin/exiting"};
        g_autoptr(ProcSnapshot) first = NULL;
        g_autoptr(ProcSnapshot) second = NULL;
        g_autoptr(ProcSnapshot) fresh = NULL;
        ProcInfo *info;

        fixture_write_process(f->root, &p);
        fixture_write_process(f->root, &exiting);
        first = scan(f, NULL);

        /* A zombie has no cmdline and no exe any more… */
        p.state = 'Z';
        p.argv = NULL;
        p.exe_target = NULL;
        fixture_write_process(f->root, &p);
        /* …nor has a process whose address space is being torn down. */
        exiting.argv = NULL;
        exiting.exe_target = NULL;
        fixture_write_process(f->root, &exiting);

        second = scan(f, first);
        info = proc_snapshot_find_pid(second, 600);
        g_assert_cmpstr(info->state, ==, "Z");
        g_assert_cmpstr(info->exe, ==, "/usr/bin/worker");
        g_assert_true(g_bytes_equal(info->cmdline, proc_snapshot_find_pid(first, 600)->cmdline));
        info = proc_snapshot_find_pid(second, 601);
        g_assert_cmpstr(info->exe, ==, "/usr/bin/exiting");
        g_assert_true(g_bytes_equal(info->cmdline, proc_snapshot_find_pid(first, 601)->cmdline));

        /* Without history there is nothing to keep. */
        fresh = scan(f, NULL);
        info = proc_snapshot_find_pid(fresh, 600);
        g_assert_cmpstr(info->exe, ==, "");
        g_assert_cmpuint(g_bytes_get_size(info->cmdline), ==, 0);
}

static void test_sorted(Fixture *f, gconstpointer data)
{
        static const gint pids[] = {900, 3, 77, 12000, 5};
        g_autoptr(ProcSnapshot) snapshot = NULL;
        g_autoptr(GPtrArray) sorted = NULL;

        for (guint i = 0; i < G_N_ELEMENTS(pids); i++) {
                FixtureProcess p = {.pid = pids[i], .ppid = 1, .comm = "s", .start_time_ticks = 1};

                fixture_write_process(f->root, &p);
        }
        snapshot = scan(f, NULL);
        sorted = proc_snapshot_sorted(snapshot);
        g_assert_cmpuint(sorted->len, ==, G_N_ELEMENTS(pids));
        for (guint i = 1; i < sorted->len; i++)
                g_assert_cmpint(((ProcInfo *)sorted->pdata[i - 1])->key.pid, <,
                                ((ProcInfo *)sorted->pdata[i])->key.pid);
}

static void test_missing_root(void)
{
        g_autoptr(GError) error = NULL;
        ProcScanner *scanner = proc_scanner_new("/nonexistent/procmond-test", &error);

        g_assert_null(scanner);
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        g_assert_nonnull(strstr(error->message, "/nonexistent/procmond-test"));
}

static void test_real_proc(void)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(ProcScanner) scanner = proc_scanner_new(NULL, &error);
        g_autoptr(ProcSnapshot) snapshot = NULL;
        g_auto(GStrv) args = NULL;
        char exe[PATH_MAX];
        ProcInfo *self;
        gint64 now = g_get_real_time();
        ssize_t n;

        g_assert_no_error(error);
        snapshot = proc_scanner_scan(scanner, NULL, &error);
        g_assert_no_error(error);
        self = proc_snapshot_find_pid(snapshot, getpid());
        g_assert_nonnull(self);
        g_assert_cmpint(self->ppid, ==, getppid());
        g_assert_cmpuint(self->uid, ==, getuid());
        g_assert_cmpuint(self->euid, ==, geteuid());
        g_assert_cmpuint(self->gid, ==, getgid());
        g_assert_cmpstr(self->comm, ==, "test-proc-scan");
        g_assert_cmpstr(self->state, ==, "R");
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        g_assert_cmpint(n, >, 0);
        exe[n] = '\0';
        g_assert_cmpstr(self->exe, ==, exe);
        args = cmdline_strv(self);
        g_assert_true(g_str_has_suffix(args[0], "test-proc-scan"));
        g_assert_cmpuint(self->rss_bytes, >, 0);
        g_assert_cmpuint(self->threads, >=, 1);
        /* This process started moments ago: boot time and ticks add up. */
        g_assert_cmpint((gint64)self->start_time_us, <=, now + G_USEC_PER_SEC);
        g_assert_cmpint((gint64)self->start_time_us, >=, now - 120 * G_USEC_PER_SEC);
        g_assert_cmpuint(proc_snapshot_size(snapshot), >=, 2);
        g_assert_cmpuint(proc_snapshot_size(snapshot), ==,
                         proc_scanner_get_stats(scanner).entries - proc_scanner_get_stats(scanner).vanished -
                                 proc_scanner_get_stats(scanner).unreadable);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

#define FIXTURE_TEST(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        FIXTURE_TEST("/proc-scan/fields", test_fields);
        FIXTURE_TEST("/proc-scan/comm-parentheses", test_comm_parentheses);
        FIXTURE_TEST("/proc-scan/kernel-thread", test_kernel_thread);
        FIXTURE_TEST("/proc-scan/deleted-exe", test_deleted_exe);
        FIXTURE_TEST("/proc-scan/vanished-and-malformed", test_vanished_and_malformed);
        FIXTURE_TEST("/proc-scan/cmdline-shapes", test_cmdline_shapes);
        FIXTURE_TEST("/proc-scan/strings-shared", test_strings_shared);
        FIXTURE_TEST("/proc-scan/zombie-keeps-image", test_zombie_keeps_image);
        FIXTURE_TEST("/proc-scan/sorted", test_sorted);
        g_test_add_func("/proc-scan/missing-root", test_missing_root);
        g_test_add_func("/proc-scan/real-proc", test_real_proc);
        return g_test_run();
}
