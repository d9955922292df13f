/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "proc-integrity.h"
#include "test-fixture.h"

typedef struct {
        ProcIntegrityKind kind;
        gint pid;
        char *exe;
        char *sha256;
        char *previous_sha256;
        guint64 inode;
        char *reason;
} Event;

static void event_free(gpointer p)
{
        Event *event = p;

        g_free(event->exe);
        g_free(event->sha256);
        g_free(event->previous_sha256);
        g_free(event->reason);
        g_free(event);
}

typedef struct {
        char *dir;     /* scratch files (executables) */
        char *root;    /* NULL: the real /proc; else a fixture tree */
        ProcScanner *scanner;
        ProcIntegrity *integrity;
        ProcSnapshot *snapshot;
        GPtrArray *events;
} Fixture;

static void setup(Fixture *f, gboolean fixture_proc)
{
        g_autoptr(GError) error = NULL;

        f->dir = fixture_root_new();
        f->root = fixture_proc ? fixture_root_new() : NULL;
        f->scanner = proc_scanner_new(f->root, &error);
        g_assert_no_error(error);
        f->integrity = proc_integrity_new(f->root, 256, &error);
        g_assert_no_error(error);
        f->events = g_ptr_array_new_with_free_func(event_free);
}

static void fixture_setup_real(Fixture *f, gconstpointer data)
{
        setup(f, FALSE);
}

static void fixture_setup_fake(Fixture *f, gconstpointer data)
{
        setup(f, TRUE);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        g_ptr_array_unref(f->events);
        proc_snapshot_free(f->snapshot);
        proc_integrity_free(f->integrity);
        proc_scanner_free(f->scanner);
        if (f->root)
                fixture_root_remove(f->root);
        fixture_root_remove(f->dir);
}

static void on_event(const ProcIntegrityEvent *ev, gpointer user_data)
{
        Fixture *f = user_data;
        Event *event = g_new0(Event, 1);

        event->kind = ev->kind;
        event->pid = ev->process->key.pid;
        event->exe = g_strdup(ev->process->exe);
        event->sha256 = g_strdup(ev->sha256);
        event->previous_sha256 = g_strdup(ev->previous_sha256);
        event->inode = ev->inode;
        event->reason = g_strdup(ev->reason);
        g_ptr_array_add(f->events, event);
}

/* Scans and updates; f->events holds this update's events. */
static void update(Fixture *f)
{
        g_autoptr(GError) error = NULL;
        ProcSnapshot *snapshot = proc_scanner_scan(f->scanner, f->snapshot, &error);
        guint n;

        g_assert_no_error(error);
        proc_snapshot_free(f->snapshot);
        f->snapshot = snapshot;
        g_ptr_array_set_size(f->events, 0);
        n = proc_integrity_update(f->integrity, snapshot, on_event, f);
        g_assert_cmpuint(n, ==, f->events->len);
}

/* The events of this update about @pid. */
static GPtrArray *events_for(Fixture *f, gint pid)
{
        GPtrArray *found = g_ptr_array_new();

        for (guint i = 0; i < f->events->len; i++) {
                Event *event = f->events->pdata[i];

                if (event->pid == pid)
                        g_ptr_array_add(found, event);
        }
        return found;
}

static char *sha256_of_file(const char *path)
{
        g_autofree char *content = NULL;
        gsize len;

        g_assert_true(g_file_get_contents(path, &content, &len, NULL));
        return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)content, len);
}

/* A private copy of sleep(1), optionally with bytes appended (still runs). */
static char *copy_sleep(Fixture *f, const char *name, const char *suffix)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *content = NULL;
        g_autofree char *path = g_build_filename(f->dir, name, NULL);
        g_autoptr(GString) data = NULL;
        gsize len;

        g_assert_true(g_file_get_contents("/bin/sleep", &content, &len, NULL));
        data = g_string_new_len(content, (gssize)len);
        if (suffix)
                g_string_append(data, suffix);
        g_file_set_contents_full(path, data->str, (gssize)data->len, G_FILE_SET_CONTENTS_CONSISTENT, 0755, &error);
        g_assert_no_error(error);
        return g_steal_pointer(&path);
}

static GPid spawn_sleep(const char *path)
{
        const char *argv[] = {path, "30", NULL};

        return child_spawn(argv, NULL, NULL);
}

static void test_hashed_once(Fixture *f, gconstpointer data)
{
        g_autofree char *path = copy_sleep(f, "mysleep", NULL);
        g_autofree char *expected = sha256_of_file(path);
        GPid pids[5];
        guint hashed = 0;

        update(f); /* everything else on the machine */
        for (guint i = 0; i < G_N_ELEMENTS(pids); i++)
                pids[i] = spawn_sleep(path);
        update(f);

        for (guint i = 0; i < f->events->len; i++) {
                Event *event = f->events->pdata[i];

                if (g_strcmp0(event->exe, path) != 0)
                        continue;
                g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_HASHED);
                g_assert_cmpstr(event->sha256, ==, expected);
                hashed++;
        }
        /* Five processes, one binary, one read. */
        g_assert_cmpuint(hashed, ==, 1);
        for (guint i = 0; i < G_N_ELEMENTS(pids); i++) {
                ProcInfo *info = proc_snapshot_find_pid(f->snapshot, pids[i]);

                g_assert_nonnull(info);
                g_assert_cmpstr(info->exe_sha256, ==, expected);
        }

        update(f);
        for (guint i = 0; i < G_N_ELEMENTS(pids); i++) {
                g_autoptr(GPtrArray) events = events_for(f, pids[i]);

                g_assert_cmpuint(events->len, ==, 0);
                g_assert_cmpstr(proc_snapshot_find_pid(f->snapshot, pids[i])->exe_sha256, ==, expected);
        }
        for (guint i = 0; i < G_N_ELEMENTS(pids); i++)
                child_kill_and_reap(pids[i]);
}

static void test_replaced_by_rename(Fixture *f, gconstpointer data)
{
        g_autofree char *path = copy_sleep(f, "mysleep", NULL);
        g_autofree char *staged = copy_sleep(f, "mysleep.new", "\nversion 2\n");
        g_autofree char *old_sha = sha256_of_file(path);
        g_autofree char *new_sha = sha256_of_file(staged);
        g_autoptr(GPtrArray) events = NULL;
        struct stat st;
        Event *event;
        GPid pid = spawn_sleep(path);

        update(f);
        g_clear_pointer(&events, g_ptr_array_unref);
        events = events_for(f, pid);
        g_assert_cmpuint(events->len, ==, 1);
        event = events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_HASHED);
        g_assert_cmpstr(event->sha256, ==, old_sha);

        /* How package managers replace a running binary (writing it would be ETXTBSY). */
        g_assert_cmpint(g_rename(staged, path), ==, 0);
        g_assert_cmpint(stat(path, &st), ==, 0);
        update(f);
        g_assert_true(proc_snapshot_find_pid(f->snapshot, pid)->exe_deleted);
        g_clear_pointer(&events, g_ptr_array_unref);
        events = events_for(f, pid);
        g_assert_cmpuint(events->len, ==, 1);
        event = events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_CHANGED);
        g_assert_cmpstr(event->exe, ==, path);
        g_assert_cmpstr(event->sha256, ==, new_sha);
        g_assert_cmpstr(event->previous_sha256, ==, old_sha);
        g_assert_cmpuint(event->inode, ==, st.st_ino);
        /* The process still runs, and is hashed as, the old image. */
        g_assert_cmpstr(proc_snapshot_find_pid(f->snapshot, pid)->exe_sha256, ==, old_sha);

        update(f);
        g_clear_pointer(&events, g_ptr_array_unref);
        events = events_for(f, pid);
        g_assert_cmpuint(events->len, ==, 0);

        /* Now the path is empty too. */
        g_assert_cmpint(g_unlink(path), ==, 0);
        update(f);
        g_clear_pointer(&events, g_ptr_array_unref);
        events = events_for(f, pid);
        g_assert_cmpuint(events->len, ==, 1);
        event = events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_DELETED);
        g_assert_cmpstr(event->sha256, ==, old_sha);
        child_kill_and_reap(pid);
}

static void test_deleted(Fixture *f, gconstpointer data)
{
        g_autofree char *path = copy_sleep(f, "selfdeleting", NULL);
        g_autofree char *sha = sha256_of_file(path);
        g_autoptr(GPtrArray) events = NULL;
        Event *event;
        GPid pid = spawn_sleep(path);

        update(f);
        g_assert_cmpint(g_unlink(path), ==, 0);
        update(f);
        events = events_for(f, pid);
        g_assert_cmpuint(events->len, ==, 1);
        event = events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_DELETED);
        g_assert_cmpstr(event->exe, ==, path);
        /* Hashed through /proc/<pid>/exe, the deleted image is still known. */
        g_assert_cmpstr(event->sha256, ==, sha);
        g_assert_cmpstr(proc_snapshot_find_pid(f->snapshot, pid)->exe_sha256, ==, sha);

        update(f);
        g_clear_pointer(&events, g_ptr_array_unref);
        events = events_for(f, pid);
        g_assert_cmpuint(events->len, ==, 0);
        child_kill_and_reap(pid);
}

static void test_rewritten_in_place(Fixture *f, gconstpointer data)
{
        g_autofree char *path = copy_sleep(f, "rewritten", NULL);
        g_autofree char *old_sha = sha256_of_file(path);
        g_autofree char *new_sha = NULL;
        g_autoptr(GPtrArray) events = NULL;
        g_autofree char *content = NULL;
        struct stat before, after;
        Event *event;
        gsize len;
        int fd;
        GPid pid = spawn_sleep(path);

        update(f);
        g_assert_cmpint(stat(path, &before), ==, 0);
        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0) {
                /*
                 * Most kernels refuse to write a running executable: then the
                 * file cannot change under the process, and no change may be
                 * reported (the in-place path itself is covered by
                 * fixture-in-place-and-exec).
                 */
                g_assert_cmpint(errno, ==, ETXTBSY);
                g_test_message("this kernel refuses to write a running executable (ETXTBSY)");
                new_sha = sha256_of_file(path);
                g_assert_cmpstr(new_sha, ==, old_sha);
                update(f);
                events = events_for(f, pid);
                g_assert_cmpuint(events->len, ==, 0);
                child_kill_and_reap(pid);
                return;
        }
        g_assert_true(g_file_get_contents("/bin/sleep", &content, &len, NULL));
        g_assert_cmpint(write(fd, content, len), ==, (gssize)len);
        g_assert_cmpint(write(fd, "patched", 7), ==, 7);
        close(fd);
        new_sha = sha256_of_file(path);
        g_assert_cmpint(stat(path, &after), ==, 0);
        g_assert_cmpuint(after.st_ino, ==, before.st_ino);

        update(f);
        events = events_for(f, pid);
        g_assert_cmpuint(events->len, ==, 1);
        event = events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_CHANGED);
        g_assert_cmpstr(event->sha256, ==, new_sha);
        g_assert_cmpstr(event->previous_sha256, ==, old_sha);
        g_assert_cmpuint(event->inode, ==, before.st_ino);
        child_kill_and_reap(pid);
}

static char *write_exe(Fixture *f, const char *name, const char *content)
{
        g_autoptr(GError) error = NULL;
        char *path = g_build_filename(f->dir, name, NULL);

        g_file_set_contents(path, content, -1, &error);
        g_assert_no_error(error);
        return path;
}

/* Same inode, new content: what a write to a mapped file does. */
static void rewrite_in_place(const char *path, const char *content)
{
        int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        gsize len = strlen(content);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, content, len), ==, (gssize)len);
        close(fd);
}

static void test_fixture_in_place_and_exec(Fixture *f, gconstpointer data)
{
        g_autofree char *file = write_exe(f, "prog", "version one");
        g_autofree char *other = write_exe(f, "other", "another program");
        g_autofree char *v1 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "version one", -1);
        g_autofree char *v2 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "version two!", -1);
        g_autofree char *v3 = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "another program", -1);
        FixtureProcess p = {.pid = 100, .ppid = 1, .comm = "prog", .start_time_ticks = 1, .exe_target = file};
        Event *event;

        fixture_write_process(f->root, &p);
        update(f);
        g_assert_cmpuint(f->events->len, ==, 1);
        event = f->events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_HASHED);
        g_assert_cmpstr(event->sha256, ==, v1);

        rewrite_in_place(file, "version two!");
        update(f);
        g_assert_cmpuint(f->events->len, ==, 1);
        event = f->events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_CHANGED);
        g_assert_cmpstr(event->sha256, ==, v2);
        g_assert_cmpstr(event->previous_sha256, ==, v1);
        g_assert_cmpstr(proc_snapshot_find_pid(f->snapshot, 100)->exe_sha256, ==, v2);

        /* An exec of another path is a metadata change, not an integrity one. */
        p.exe_target = other;
        fixture_write_process(f->root, &p);
        update(f);
        g_assert_cmpuint(f->events->len, ==, 1);
        event = f->events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_HASHED);
        g_assert_cmpstr(event->sha256, ==, v3);
}

static void test_fixture_unreadable(Fixture *f, gconstpointer data)
{
        FixtureProcess p = {.pid = 100, .ppid = 1, .comm = "odd", .start_time_ticks = 1, .exe_target = f->dir};
        Event *event;

        /* An image that opens but does not read (a directory, here). */
        fixture_write_process(f->root, &p);
        update(f);
        g_assert_cmpuint(f->events->len, ==, 1);
        event = f->events->pdata[0];
        g_assert_cmpint(event->kind, ==, PROC_INTEGRITY_UNREADABLE);
        g_assert_cmpint(event->pid, ==, 100);
        g_assert_nonnull(strstr(event->reason, "100/exe"));
        g_assert_cmpstr(event->sha256, ==, "");
        g_assert_null(proc_snapshot_find_pid(f->snapshot, 100)->exe_sha256);

        /* Once per process. */
        update(f);
        g_assert_cmpuint(f->events->len, ==, 0);
}

static void test_fixture_eviction(Fixture *f, gconstpointer data)
{
        g_autofree char *a = write_exe(f, "a", "program a");
        g_autofree char *b = write_exe(f, "b", "program b");
        FixtureProcess pa = {.pid = 10, .ppid = 1, .comm = "a", .start_time_ticks = 1, .exe_target = a};
        FixtureProcess pb = {.pid = 11, .ppid = 1, .comm = "b", .start_time_ticks = 1, .exe_target = b};
        FixtureProcess pb2 = {.pid = 12, .ppid = 1, .comm = "b", .start_time_ticks = 1, .exe_target = b};
        HashCache *cache = proc_integrity_get_cache(f->integrity);

        fixture_write_process(f->root, &pa);
        fixture_write_process(f->root, &pb);
        fixture_write_process(f->root, &pb2);
        update(f);
        g_assert_cmpuint(hash_cache_size(cache), ==, 2);
        g_assert_cmpuint(hash_cache_get_computed(cache), ==, 2);

        /* b is still run by 12: kept. a is run by nobody: evicted. */
        fixture_remove_process(f->root, 10);
        fixture_remove_process(f->root, 11);
        update(f);
        g_assert_cmpuint(hash_cache_size(cache), ==, 1);
        g_assert_cmpuint(hash_cache_get_computed(cache), ==, 2);

        /* a starts again: hashed again. */
        fixture_write_process(f->root, &pa);
        update(f);
        g_assert_cmpuint(hash_cache_get_computed(cache), ==, 3);
        g_assert_cmpuint(hash_cache_size(cache), ==, 2);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

#define REAL_TEST(path, fn) g_test_add(path, Fixture, NULL, fixture_setup_real, fn, fixture_teardown)
#define FAKE_TEST(path, fn) g_test_add(path, Fixture, NULL, fixture_setup_fake, fn, fixture_teardown)
        REAL_TEST("/proc-integrity/hashed-once", test_hashed_once);
        REAL_TEST("/proc-integrity/replaced-by-rename", test_replaced_by_rename);
        REAL_TEST("/proc-integrity/deleted", test_deleted);
        REAL_TEST("/proc-integrity/rewritten-in-place", test_rewritten_in_place);
        FAKE_TEST("/proc-integrity/fixture-in-place-and-exec", test_fixture_in_place_and_exec);
        FAKE_TEST("/proc-integrity/fixture-unreadable", test_fixture_unreadable);
        FAKE_TEST("/proc-integrity/fixture-eviction", test_fixture_eviction);
        return g_test_run();
}
