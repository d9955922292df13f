/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * proc-scan: one pass over /proc into a snapshot of processes.
 *
 * A process is identified by (pid, start_time_ticks): the start time (field 22
 * of /proc/<pid>/stat) does not change over the life of a process, including
 * across exec, and makes a reused pid a different key.
 */

typedef struct {
        gint pid;
        guint64 start_time_ticks;
} ProcKey;

/**
 * proc_key_hash:
 * proc_key_equal:
 *
 * GHashTable functions for tables keyed by ProcKey *.
 */
guint proc_key_hash(gconstpointer key);
gboolean proc_key_equal(gconstpointer a, gconstpointer b);

/* PF_KTHREAD in the flags field (9) of /proc/<pid>/stat. */
#define PROC_FLAG_KTHREAD 0x00200000u

/*
 * One process. The key is the first member so that a ProcKey * can be used to
 * look a ProcInfo up in a snapshot. Strings are GRefStrings shared with the
 * previous snapshot when unchanged, so a steady-state scan allocates nothing
 * for them; they are never NULL ("" when unknown).
 */
typedef struct {
        ProcKey key;
        gint ppid;
        guint32 uid;               /* real */
        guint32 euid;
        guint32 gid;               /* real */
        guint32 egid;
        guint32 threads;
        guint32 flags;             /* PF_* flags from stat */
        char state[2];             /* "R", "S", "Z"…, NUL-terminated */
        gboolean exe_deleted;      /* readlink(exe) ended in " (deleted)" */
        guint64 start_time_us;     /* wall clock, microseconds since the epoch */
        guint64 rss_bytes;
        guint64 utime_ticks;
        guint64 stime_ticks;
        guint64 cpu_time_us;       /* (utime + stime) in microseconds */
        GRefString *comm;
        GRefString *exe;           /* without " (deleted)"; "" for kernel threads, unreadable */
        /* Arguments, each NUL-terminated, back to back; empty for kernel threads. */
        GBytes *cmdline;
        /* Hex SHA-256 of the running image, set by proc-integrity; NULL otherwise. */
        GRefString *exe_sha256;
} ProcInfo;

/**
 * proc_info_is_kernel_thread:
 *
 * Whether the process is a kernel thread (no executable, no command line).
 */
static inline gboolean proc_info_is_kernel_thread(const ProcInfo *info)
{
        return (info->flags & PROC_FLAG_KTHREAD) != 0;
}

/**
 * proc_info_cmdline_argv:
 * @info: a process
 * @argv: (out caller-allocates): array to fill with pointers into @info's cmdline
 *
 * Appends a pointer to each argument of @info to @argv (a GPtrArray without a
 * free function); the pointers stay valid as long as @info. Returns the number
 * of arguments appended.
 */
guint proc_info_cmdline_argv(const ProcInfo *info, GPtrArray *argv);

typedef struct _ProcSnapshot ProcSnapshot;

/**
 * proc_snapshot_free:
 *
 * Frees a snapshot and every ProcInfo in it.
 */
void proc_snapshot_free(ProcSnapshot *snapshot);

/**
 * proc_snapshot_size:
 *
 * Number of processes in the snapshot.
 */
guint proc_snapshot_size(const ProcSnapshot *snapshot);

/**
 * proc_snapshot_get_time_us:
 *
 * Wall-clock time (microseconds since the epoch) at which the scan started.
 */
guint64 proc_snapshot_get_time_us(const ProcSnapshot *snapshot);

/**
 * proc_snapshot_lookup:
 *
 * Returns (transfer none) the process with this pid and start time, or NULL.
 */
ProcInfo *proc_snapshot_lookup(const ProcSnapshot *snapshot, gint pid, guint64 start_time_ticks);

/**
 * proc_snapshot_find_pid:
 *
 * Returns (transfer none) the process currently holding @pid, or NULL. A
 * snapshot holds at most one process per pid.
 */
ProcInfo *proc_snapshot_find_pid(const ProcSnapshot *snapshot, gint pid);

/**
 * proc_snapshot_iter_init:
 *
 * Iterates over the ProcInfo * of a snapshot (as values of @iter), in no
 * particular order.
 */
void proc_snapshot_iter_init(const ProcSnapshot *snapshot, GHashTableIter *iter);

/**
 * proc_snapshot_sorted:
 *
 * Returns (transfer container) the processes ordered by pid, for output
 * that should be stable (batches, logs).
 */
GPtrArray *proc_snapshot_sorted(const ProcSnapshot *snapshot);

/* Counters of the last scan; vanished and unreadable entries are normal. */
typedef struct {
        guint entries;             /* numeric entries under the proc root */
        guint vanished;            /* exited while being read */
        guint unreadable;          /* permission denied or malformed; skipped */
} ProcScanStats;

typedef struct _ProcScanner ProcScanner;

/**
 * proc_scanner_new:
 * @proc_root: (nullable): directory laid out like /proc; NULL for "/proc"
 *
 * Opens @proc_root for repeated scans. Tests point it at a fixture tree.
 * Returns NULL and sets @error when the directory cannot be opened.
 */
ProcScanner *proc_scanner_new(const char *proc_root, GError **error);

/**
 * proc_scanner_free:
 *
 * Closes the proc root and frees the scanner.
 */
void proc_scanner_free(ProcScanner *scanner);

/**
 * proc_scanner_scan:
 * @previous: (nullable): the previous snapshot, whose unchanged strings are shared
 *
 * Reads every process under the proc root into a new snapshot (transfer full).
 * Processes that exit while being read and entries that cannot be read are
 * left out and counted in the scanner's stats; only a failure to list the
 * directory itself is an error.
 */
ProcSnapshot *proc_scanner_scan(ProcScanner *scanner, const ProcSnapshot *previous, GError **error);

/**
 * proc_scanner_get_stats:
 *
 * Counters of the last scan.
 */
ProcScanStats proc_scanner_get_stats(const ProcScanner *scanner);

/**
 * proc_scanner_get_boot_time_us:
 *
 * Wall-clock boot time (microseconds since the epoch) the scanner adds to
 * start times: CLOCK_REALTIME minus CLOCK_BOOTTIME when it was created, the
 * clock /proc's start times count from.
 */
guint64 proc_scanner_get_boot_time_us(const ProcScanner *scanner);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcSnapshot, proc_snapshot_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcScanner, proc_scanner_free)

G_END_DECLS
