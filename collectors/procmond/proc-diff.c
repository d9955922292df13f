/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "proc-diff.h"

static const char *const field_names[PROC_FIELD_COUNT] = {
        "comm", "exe", "cmdline", "uid", "euid", "gid", "egid", "exe_deleted",
};

guint proc_fields_names(ProcFields fields, const char **names)
{
        guint n = 0;

        for (guint i = 0; i < PROC_FIELD_COUNT; i++)
                if (fields & (1u << i))
                        names[n++] = field_names[i];
        return n;
}

static gboolean ref_string_equal(GRefString *a, GRefString *b)
{
        /* The scanner shares unchanged strings, so equal is usually identical. */
        return a == b || strcmp(a, b) == 0;
}

ProcFields proc_diff_fields(const ProcInfo *previous, const ProcInfo *current)
{
        ProcFields changed = 0;

        if (!ref_string_equal(previous->comm, current->comm))
                changed |= PROC_FIELD_COMM;
        if (!ref_string_equal(previous->exe, current->exe))
                changed |= PROC_FIELD_EXE;
        if (!g_bytes_equal(previous->cmdline, current->cmdline))
                changed |= PROC_FIELD_CMDLINE;
        if (previous->uid != current->uid)
                changed |= PROC_FIELD_UID;
        if (previous->euid != current->euid)
                changed |= PROC_FIELD_EUID;
        if (previous->gid != current->gid)
                changed |= PROC_FIELD_GID;
        if (previous->egid != current->egid)
                changed |= PROC_FIELD_EGID;
        if (!previous->exe_deleted != !current->exe_deleted)
                changed |= PROC_FIELD_EXE_DELETED;
        return changed;
}

static gint compare_by_start(gconstpointer a, gconstpointer b)
{
        const ProcInfo *x = *(ProcInfo *const *)a, *y = *(ProcInfo *const *)b;

        if (x->key.start_time_ticks != y->key.start_time_ticks)
                return x->key.start_time_ticks < y->key.start_time_ticks ? -1 : 1;
        return (x->key.pid > y->key.pid) - (x->key.pid < y->key.pid);
}

/* A process present in both snapshots whose parent or identity changed. */
typedef struct {
        const ProcInfo *previous;
        const ProcInfo *current;
        ProcFields fields; /* identity fields that differ */
} ProcPair;

static gint compare_pairs_by_pid(gconstpointer a, gconstpointer b)
{
        const ProcPair *x = a, *y = b;

        return (x->current->key.pid > y->current->key.pid) - (x->current->key.pid < y->current->key.pid);
}

guint proc_diff_run(const ProcSnapshot *previous, const ProcSnapshot *current,
                    const ProcDiffCallbacks *callbacks, gpointer user_data)
{
        g_autoptr(GPtrArray) exited = g_ptr_array_new();
        g_autoptr(GPtrArray) started = g_ptr_array_new();
        g_autoptr(GArray) changed = g_array_new(FALSE, FALSE, sizeof(ProcPair));
        GHashTableIter iter;
        gpointer value;
        guint calls = 0;

        proc_snapshot_iter_init(previous, &iter);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                const ProcInfo *old = value;

                if (!proc_snapshot_lookup(current, old->key.pid, old->key.start_time_ticks))
                        g_ptr_array_add(exited, value);
        }

        proc_snapshot_iter_init(current, &iter);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                const ProcInfo *now = value;
                const ProcInfo *old = proc_snapshot_lookup(previous, now->key.pid, now->key.start_time_ticks);
                ProcPair pair;

                if (!old) {
                        g_ptr_array_add(started, value);
                        continue;
                }
                pair = (ProcPair){old, now, proc_diff_fields(old, now)};
                if (old->ppid != now->ppid || pair.fields != 0)
                        g_array_append_val(changed, pair);
        }

        g_ptr_array_sort(exited, compare_by_start);
        g_ptr_array_sort(started, compare_by_start);
        g_array_sort(changed, compare_pairs_by_pid);

        for (guint i = 0; i < exited->len; i++, calls++)
                if (callbacks->exited)
                        callbacks->exited(exited->pdata[i], user_data);
        for (guint i = 0; i < started->len; i++, calls++)
                if (callbacks->started)
                        callbacks->started(started->pdata[i], user_data);
        for (guint i = 0; i < changed->len; i++) {
                const ProcPair *pair = &g_array_index(changed, ProcPair, i);

                if (pair->previous->ppid != pair->current->ppid) {
                        calls++;
                        if (callbacks->reparented)
                                callbacks->reparented(pair->previous, pair->current, user_data);
                }
                if (pair->fields != 0) {
                        calls++;
                        if (callbacks->metadata_changed)
                                callbacks->metadata_changed(pair->previous, pair->current, pair->fields,
                                                            user_data);
                }
        }
        return calls;
}
