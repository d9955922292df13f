/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "proc-scan.h"

G_BEGIN_DECLS

/*
 * proc-diff: what happened between two snapshots.
 *
 * A key (pid, start time) only in the old snapshot exited, one only in the new
 * one started; a reused pid therefore shows as an exit and a start. For a key
 * in both, a different parent is a reparenting and a different identity
 * (comm, exe, cmdline, ids) is a metadata change. Resource figures (RSS, CPU,
 * state, threads) change all the time and are not events.
 */

typedef enum {
        PROC_FIELD_COMM = 1u << 0,
        PROC_FIELD_EXE = 1u << 1,
        PROC_FIELD_CMDLINE = 1u << 2,
        PROC_FIELD_UID = 1u << 3,
        PROC_FIELD_EUID = 1u << 4,
        PROC_FIELD_GID = 1u << 5,
        PROC_FIELD_EGID = 1u << 6,
        PROC_FIELD_EXE_DELETED = 1u << 7,
} ProcFields;

#define PROC_FIELD_COUNT 8

/**
 * proc_fields_names:
 * @fields: a set of fields
 * @names: (out caller-allocates): room for PROC_FIELD_COUNT names
 *
 * Fills @names with the wire names ("comm", "exe", "cmdline", "uid", "euid",
 * "gid", "egid", "exe_deleted") of @fields, in that order. Returns how many.
 */
guint proc_fields_names(ProcFields fields, const char **names);

/**
 * proc_diff_fields:
 *
 * The identity fields that differ between two records of one process.
 */
ProcFields proc_diff_fields(const ProcInfo *previous, const ProcInfo *current);

/*
 * Every callback is optional. Pointers are valid during the call only.
 */
typedef struct {
        void (*started)(const ProcInfo *current, gpointer user_data);
        void (*exited)(const ProcInfo *previous, gpointer user_data);
        void (*reparented)(const ProcInfo *previous, const ProcInfo *current, gpointer user_data);
        void (*metadata_changed)(const ProcInfo *previous, const ProcInfo *current, ProcFields changed,
                                 gpointer user_data);
} ProcDiffCallbacks;

/**
 * proc_diff_run:
 *
 * Calls @callbacks for every difference from @previous to @current: first
 * all exits, then all starts (each ordered by start time, then pid, so a
 * parent starts before its children), then reparentings and metadata changes
 * ordered by pid. Returns the number of callbacks made.
 */
guint proc_diff_run(const ProcSnapshot *previous, const ProcSnapshot *current,
                    const ProcDiffCallbacks *callbacks, gpointer user_data);

G_END_DECLS
