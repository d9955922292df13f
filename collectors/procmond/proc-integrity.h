/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "hash-cache.h"
#include "proc-scan.h"

G_BEGIN_DECLS

/*
 * proc-integrity: the SHA-256 of each running executable and what happens to
 * it while the process runs.
 *
 * The running image is hashed through /proc/<pid>/exe, which still opens the
 * file the process runs when its path was deleted or replaced. Events:
 *
 *  HASHED      a new image was read and hashed (once per distinct file, not
 *              per process: an unchanged binary is answered by the cache)
 *  CHANGED     the image a process runs changed content in place (same path,
 *              new identity, new hash), or its path now holds a different
 *              file (sha256 is the new file's, previous_sha256 the running one)
 *  DELETED     the image was unlinked and nothing is at its path
 *  UNREADABLE  the image exists but cannot be opened or read
 *
 * Each process reports CHANGED/DELETED/UNREADABLE once per state it enters.
 */

typedef enum {
        PROC_INTEGRITY_HASHED,
        PROC_INTEGRITY_CHANGED,
        PROC_INTEGRITY_DELETED,
        PROC_INTEGRITY_UNREADABLE,
} ProcIntegrityKind;

typedef struct {
        ProcIntegrityKind kind;
        const ProcInfo *process;
        const char *sha256;          /* "" when unknown */
        const char *previous_sha256; /* "" unless CHANGED */
        /* The file the event is about: the running image, or for a replaced
         * path the file now at that path. */
        guint64 device;
        guint64 inode;
        guint64 mtime_us;
        const char *reason;          /* UNREADABLE: why; else NULL */
} ProcIntegrityEvent;

typedef void (*ProcIntegrityFunc)(const ProcIntegrityEvent *event, gpointer user_data);

typedef struct _ProcIntegrity ProcIntegrity;

/**
 * proc_integrity_new:
 * @proc_root: (nullable): as for proc_scanner_new()
 * @max_cache_entries: bound of the hash cache
 *
 * Returns (transfer full) a tracker, or NULL and @error when @proc_root
 * cannot be opened.
 */
ProcIntegrity *proc_integrity_new(const char *proc_root, guint max_cache_entries, GError **error);

/**
 * proc_integrity_free:
 *
 * Frees the tracker and its hash cache.
 */
void proc_integrity_free(ProcIntegrity *integrity);

/**
 * proc_integrity_update:
 * @snapshot: the scan just taken; each process's exe_sha256 is set
 * @func: (nullable): receives the events, valid during the call only
 *
 * Hashes the executables of @snapshot (through the cache), reports changes
 * since the previous update, forgets processes no longer in @snapshot and
 * evicts hashes no process uses any more. Returns the number of events.
 */
guint proc_integrity_update(ProcIntegrity *integrity, ProcSnapshot *snapshot, ProcIntegrityFunc func,
                            gpointer user_data);

/**
 * proc_integrity_get_cache:
 *
 * Returns (transfer none) the hash cache, for statistics.
 */
HashCache *proc_integrity_get_cache(ProcIntegrity *integrity);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcIntegrity, proc_integrity_free)

G_END_DECLS
