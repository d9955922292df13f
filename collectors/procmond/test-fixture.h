/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Helpers of the procmond tests: fake /proc trees, and children that are
 * killed and reaped whatever the test outcome.
 */

typedef struct {
        gint pid;
        gint ppid;
        const char *comm;
        char state;
        guint32 flags;
        guint64 start_time_ticks;
        guint64 utime_ticks;
        guint64 stime_ticks;
        guint64 rss_pages;
        guint32 threads;
        guint32 uid, euid, gid, egid;
        /* NULL: empty cmdline (kernel thread); else NULL-terminated argv. */
        const char *const *argv;
        /* NULL: no exe link (kernel thread); else the link's target. */
        const char *exe_target;
} FixtureProcess;

/**
 * fixture_root_new:
 *
 * Returns (transfer full) a new empty temporary directory for a fake /proc.
 */
char *fixture_root_new(void);

/**
 * fixture_root_remove:
 *
 * Removes the fake /proc tree and frees @root.
 */
void fixture_root_remove(char *root);

/**
 * fixture_write_process:
 *
 * Writes <root>/<pid>/{stat,status,cmdline,exe} describing @p, replacing
 * what was there.
 */
void fixture_write_process(const char *root, const FixtureProcess *p);

/**
 * fixture_write_file:
 *
 * Writes one file of a fixture process ("stat", "status"…), raw.
 */
void fixture_write_file(const char *root, gint pid, const char *name, const char *data, gssize len);

/**
 * fixture_remove_file:
 *
 * Removes one file of a fixture process, as if it vanished mid-read.
 */
void fixture_remove_file(const char *root, gint pid, const char *name);

/**
 * fixture_remove_process:
 *
 * Removes <root>/<pid> entirely.
 */
void fixture_remove_process(const char *root, gint pid);

/**
 * child_spawn:
 * @argv: program and arguments
 * @stdin_fd: (out) (optional): write end of the child's stdin
 * @stdout_fd: (out) (optional): read end of the child's stdout
 *
 * Spawns a child that this process reaps (child_reap) and that is killed at
 * exit if the test fails first. Aborts the test if spawning fails.
 */
GPid child_spawn(const char *const *argv, int *stdin_fd, int *stdout_fd);

/**
 * child_kill_and_reap:
 *
 * SIGKILLs @pid and waits for it.
 */
void child_kill_and_reap(GPid pid);

/**
 * child_forget:
 *
 * Stops tracking @pid for the at-exit kill (it was reaped elsewhere).
 */
void child_forget(GPid pid);

/**
 * child_track:
 *
 * Tracks a pid this process did not spawn itself (an adopted orphan) for the
 * at-exit kill.
 */
void child_track(GPid pid);

/**
 * child_read_line:
 *
 * Reads one line (without its newline) from @fd, waiting at most 10 s.
 * Returns NULL on end of file or timeout.
 */
char *child_read_line(int fd);

/**
 * child_command:
 *
 * Sends @command to the test helper and returns its one-line reply.
 */
char *child_command(int stdin_fd, int stdout_fd, const char *command);

/**
 * wait_for_proc_file:
 *
 * Polls /proc/<pid>/<name> until its content starts with @prefix, for at
 * most 5 s. Returns whether it did.
 */
gboolean wait_for_proc_file(GPid pid, const char *name, const char *prefix);

/**
 * test_helper_path:
 *
 * Path of procmond-test-helper, from $PROCMOND_TEST_HELPER.
 */
const char *test_helper_path(void);

G_END_DECLS
