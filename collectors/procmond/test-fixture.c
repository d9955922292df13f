/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "test-fixture.h"

char *fixture_root_new(void)
{
        g_autoptr(GError) error = NULL;
        char *root = g_dir_make_tmp("procmond-fixture-XXXXXX", &error);

        g_assert_no_error(error);
        return root;
}

static void remove_tree(const char *path)
{
        GDir *dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (dir) {
                while ((name = g_dir_read_name(dir))) {
                        g_autofree char *child = g_build_filename(path, name, NULL);

                        if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                                remove_tree(child);
                        else
                                g_unlink(child);
                }
                g_dir_close(dir);
        }
        g_rmdir(path);
}

void fixture_root_remove(char *root)
{
        remove_tree(root);
        g_free(root);
}

void fixture_write_file(const char *root, gint pid, const char *name, const char *data, gssize len)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_strdup_printf("%s/%d", root, pid);
        g_autofree char *path = g_build_filename(dir, name, NULL);

        g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
        g_file_set_contents(path, data, len, &error);
        g_assert_no_error(error);
}

void fixture_remove_file(const char *root, gint pid, const char *name)
{
        g_autofree char *path = g_strdup_printf("%s/%d/%s", root, pid, name);

        g_assert_cmpint(g_unlink(path), ==, 0);
}

void fixture_remove_process(const char *root, gint pid)
{
        g_autofree char *path = g_strdup_printf("%s/%d", root, pid);

        remove_tree(path);
}

void fixture_write_process(const char *root, const FixtureProcess *p)
{
        g_autofree char *stat = NULL;
        g_autofree char *status = NULL;
        g_autofree char *exe = g_strdup_printf("%s/%d/exe", root, p->pid);
        g_autoptr(GString) cmdline = g_string_new(NULL);

        /* The layout of proc(5), 52 fields; the ones procmond reads carry values. */
        stat = g_strdup_printf("%d (%s) %c %d %d %d 0 -1 %u 120 0 0 0 %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
                               " 0 0 20 0 %u 0 %" G_GUINT64_FORMAT " 12345678 %" G_GUINT64_FORMAT
                               " 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                               p->pid, p->comm, p->state ? p->state : 'S', p->ppid, p->pid, p->pid, p->flags,
                               p->utime_ticks, p->stime_ticks, p->threads ? p->threads : 1, p->start_time_ticks,
                               p->rss_pages);
        fixture_write_file(root, p->pid, "stat", stat, -1);

        status = g_strdup_printf("Name:\t%s\nUmask:\t0022\nState:\t%c (sleeping)\nTgid:\t%d\nNgid:\t0\n"
                                 "Pid:\t%d\nPPid:\t%d\nTracerPid:\t0\nUid:\t%u\t%u\t%u\t%u\n"
                                 "Gid:\t%u\t%u\t%u\t%u\nFDSize:\t64\nGroups:\t\nThreads:\t%u\n",
                                 p->comm, p->state ? p->state : 'S', p->pid, p->pid, p->ppid, p->uid, p->euid,
                                 p->euid, p->euid, p->gid, p->egid, p->egid, p->egid,
                                 p->threads ? p->threads : 1);
        fixture_write_file(root, p->pid, "status", status, -1);

        for (guint i = 0; p->argv && p->argv[i]; i++)
                g_string_append_len(cmdline, p->argv[i], (gssize)strlen(p->argv[i]) + 1);
        fixture_write_file(root, p->pid, "cmdline", cmdline->str, (gssize)cmdline->len);

        g_unlink(exe);
        if (p->exe_target)
                g_assert_cmpint(symlink(p->exe_target, exe), ==, 0);
}

/* Children still alive when the test program exits, killed by pid. */
static GArray *live_children;

static void kill_live_children(void)
{
        for (guint i = 0; live_children && i < live_children->len; i++) {
                GPid pid = g_array_index(live_children, GPid, i);

                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

void child_track(GPid pid)
{
        if (!live_children) {
                live_children = g_array_new(FALSE, FALSE, sizeof(GPid));
                atexit(kill_live_children);
        }
        g_array_append_val(live_children, pid);
}

void child_forget(GPid pid)
{
        for (guint i = 0; live_children && i < live_children->len; i++) {
                if (g_array_index(live_children, GPid, i) == pid) {
                        g_array_remove_index_fast(live_children, i);
                        return;
                }
        }
}

GPid child_spawn(const char *const *argv, int *stdin_fd, int *stdout_fd)
{
        g_autoptr(GError) error = NULL;
        GPid pid = 0;

        g_spawn_async_with_pipes(NULL, (char **)argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, stdin_fd,
                                 stdout_fd, NULL, &error);
        g_assert_no_error(error);
        child_track(pid);
        return pid;
}

void child_kill_and_reap(GPid pid)
{
        int status;

        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        child_forget(pid);
}

char *child_read_line(int fd)
{
        g_autoptr(GString) line = g_string_new(NULL);

        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                char c;
                ssize_t n;

                if (poll(&pfd, 1, 10000) <= 0)
                        return NULL;
                n = read(fd, &c, 1);
                if (n <= 0)
                        return NULL;
                if (c == '\n')
                        return g_string_free(g_steal_pointer(&line), FALSE);
                g_string_append_c(line, c);
        }
}

char *child_command(int stdin_fd, int stdout_fd, const char *command)
{
        g_autofree char *line = g_strconcat(command, "\n", NULL);
        gsize len = strlen(line);

        g_assert_cmpint(write(stdin_fd, line, len), ==, (gssize)len);
        return child_read_line(stdout_fd);
}

gboolean wait_for_proc_file(GPid pid, const char *name, const char *prefix)
{
        g_autofree char *path = g_strdup_printf("/proc/%d/%s", pid, name);

        for (guint i = 0; i < 500; i++) {
                g_autofree char *content = NULL;

                if (g_file_get_contents(path, &content, NULL, NULL) && g_str_has_prefix(content, prefix))
                        return TRUE;
                g_usleep(10000);
        }
        return FALSE;
}

const char *test_helper_path(void)
{
        const char *path = g_getenv("PROCMOND_TEST_HELPER");

        g_assert_nonnull(path);
        return path;
}
