/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc-integrity.h"

typedef enum {
        DISK_PRESENT,  /* the path holds the running image (or was never checked) */
        DISK_MISSING,  /* DELETED reported */
        DISK_REPLACED, /* CHANGED reported for the file in disk_key */
} DiskState;

/* What we know of one process's executable. */
typedef struct {
        ProcKey key;
        GRefString *exe;         /* path when last hashed */
        GRefString *sha256;      /* hash of the running image */
        HashKey image_key;       /* identity of the running image */
        DiskState disk_state;
        HashKey disk_key;        /* DISK_REPLACED: the file now at the path */
        GRefString *replacement; /* DISK_REPLACED: its hash */
        gboolean unreadable_reported;
        guint64 generation;
} ExeRecord;

struct _ProcIntegrity {
        int rootfd;
        HashCache *cache;
        GHashTable *records; /* ProcKey * -> ExeRecord *, the same pointer */
        guint64 generation;
        ProcIntegrityFunc func;
        gpointer user_data;
        guint events;
};

static void exe_record_free(gpointer p)
{
        ExeRecord *record = p;

        g_clear_pointer(&record->exe, g_ref_string_release);
        g_clear_pointer(&record->sha256, g_ref_string_release);
        g_clear_pointer(&record->replacement, g_ref_string_release);
        g_free(record);
}

ProcIntegrity *proc_integrity_new(const char *proc_root, guint max_cache_entries, GError **error)
{
        const char *root = proc_root ? proc_root : "/proc";
        ProcIntegrity *integrity;
        int fd;

        fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "executable integrity: opening %s: %s", root, g_strerror(errsv));
                return NULL;
        }
        integrity = g_new0(ProcIntegrity, 1);
        integrity->rootfd = fd;
        integrity->cache = hash_cache_new(max_cache_entries);
        integrity->records = g_hash_table_new_full(proc_key_hash, proc_key_equal, NULL, exe_record_free);
        return integrity;
}

void proc_integrity_free(ProcIntegrity *integrity)
{
        if (!integrity)
                return;
        close(integrity->rootfd);
        hash_cache_free(integrity->cache);
        g_hash_table_unref(integrity->records);
        g_free(integrity);
}

HashCache *proc_integrity_get_cache(ProcIntegrity *integrity)
{
        return integrity->cache;
}

static void emit(ProcIntegrity *integrity, ProcIntegrityKind kind, const ProcInfo *info, const char *sha256,
                 const char *previous, const HashKey *file, const char *reason)
{
        ProcIntegrityEvent event = {
                .kind = kind,
                .process = info,
                .sha256 = sha256 ? sha256 : "",
                .previous_sha256 = previous ? previous : "",
                .device = file ? file->dev : 0,
                .inode = file ? file->ino : 0,
                .mtime_us = file && file->mtime_ns > 0 ? (guint64)file->mtime_ns / 1000 : 0,
                .reason = reason,
        };

        integrity->events++;
        if (integrity->func)
                integrity->func(&event, integrity->user_data);
}

static void report_unreadable(ProcIntegrity *integrity, ExeRecord *record, const ProcInfo *info,
                              const char *reason)
{
        if (record->unreadable_reported)
                return;
        record->unreadable_reported = TRUE;
        emit(integrity, PROC_INTEGRITY_UNREADABLE, info, NULL, NULL, NULL, reason);
}

/*
 * Hashes the running image of @info, from the cache when its identity is
 * known. Returns (transfer full) the hash, or NULL when the process vanished
 * or its image cannot be read (reported once).
 */
static GRefString *hash_image(ProcIntegrity *integrity, ExeRecord *record, const ProcInfo *info,
                              const char *exe_path, const HashKey *key, gboolean *computed)
{
        g_autoptr(GError) error = NULL;
        GRefString *sha256;
        int fd;

        *computed = FALSE;
        sha256 = hash_cache_lookup(integrity->cache, key);
        if (sha256)
                return sha256;

        fd = openat(integrity->rootfd, exe_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int errsv = errno;
                g_autofree char *reason = NULL;

                if (errsv == ENOENT || errsv == ESRCH)
                        return NULL;
                reason = g_strdup_printf("opening %s: %s", exe_path, g_strerror(errsv));
                report_unreadable(integrity, record, info, reason);
                return NULL;
        }
        sha256 = hash_cache_hash_fd(integrity->cache, fd, exe_path, NULL, computed, &error);
        close(fd);
        if (!sha256)
                report_unreadable(integrity, record, info, error->message);
        return sha256;
}

/*
 * The running image was unlinked: find out whether its path is now empty
 * (DELETED) or holds another file (CHANGED, with that file's hash).
 */
static void check_deleted_path(ProcIntegrity *integrity, ExeRecord *record, const ProcInfo *info)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GRefString) disk_sha256 = NULL;
        struct stat st;
        HashKey disk_key;
        int fd;

        /* The path is as seen from our root, which readlink() of exe reports. */
        if (stat(info->exe, &st) < 0) {
                if (errno != ENOENT && errno != ENOTDIR)
                        return; /* cannot tell; look again next scan */
                if (record->disk_state != DISK_MISSING) {
                        record->disk_state = DISK_MISSING;
                        emit(integrity, PROC_INTEGRITY_DELETED, info, record->sha256, NULL, &record->image_key,
                             NULL);
                }
                return;
        }
        disk_key = hash_key_from_stat(&st);
        if (!S_ISREG(st.st_mode) || (disk_key.dev == record->image_key.dev && disk_key.ino == record->image_key.ino))
                return;
        if (record->disk_state == DISK_REPLACED && hash_key_equal(&disk_key, &record->disk_key))
                return;

        /* O_NONBLOCK: whoever controls the path must not make us wait on a FIFO. */
        fd = open(info->exe, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                disk_sha256 = hash_cache_hash_fd(integrity->cache, fd, info->exe, &disk_key, NULL, &error);
        close(fd);
        if (!disk_sha256)
                return;

        record->disk_state = DISK_REPLACED;
        record->disk_key = disk_key;
        g_clear_pointer(&record->replacement, g_ref_string_release);
        record->replacement = g_ref_string_acquire(disk_sha256);
        /* Same bytes under a new inode (a reinstall) is not a change. */
        if (strcmp(disk_sha256, record->sha256) != 0)
                emit(integrity, PROC_INTEGRITY_CHANGED, info, disk_sha256, record->sha256, &disk_key, NULL);
}

static void update_process(ProcIntegrity *integrity, ProcInfo *info)
{
        ExeRecord *record;
        char exe_path[32];
        struct stat st;
        HashKey key;

        if (info->exe[0] == '\0' || proc_info_is_kernel_thread(info))
                return;

        record = g_hash_table_lookup(integrity->records, &info->key);
        if (!record) {
                record = g_new0(ExeRecord, 1);
                record->key = info->key;
                g_hash_table_add(integrity->records, record);
        }
        record->generation = integrity->generation;

        g_snprintf(exe_path, sizeof(exe_path), "%d/exe", info->key.pid);
        /* One stat per process and scan; the content is read only for a new identity. */
        if (fstatat(integrity->rootfd, exe_path, &st, 0) < 0) {
                int errsv = errno;
                g_autofree char *reason = NULL;

                if (errsv == ENOENT || errsv == ESRCH)
                        return; /* exiting */
                reason = g_strdup_printf("stat %s: %s", exe_path, g_strerror(errsv));
                report_unreadable(integrity, record, info, reason);
                return;
        }
        key = hash_key_from_stat(&st);

        if (record->sha256 && hash_key_equal(&key, &record->image_key)) {
                /* Unchanged; the lookup keeps the cache entry alive through the sweep. */
                GRefString *cached = hash_cache_lookup(integrity->cache, &key);

                if (cached)
                        g_ref_string_release(cached);
        } else {
                gboolean computed;
                GRefString *sha256 = hash_image(integrity, record, info, exe_path, &key, &computed);
                gboolean same_path = record->exe && strcmp(record->exe, info->exe) == 0;
                gboolean new_content = !record->sha256 || strcmp(sha256 ? sha256 : "", record->sha256) != 0;

                if (!sha256)
                        return;
                /*
                 * Same path, new content: modified in place, or the process
                 * re-executed a replaced file we have not reported yet. A new
                 * path is an exec, which the metadata event already tells.
                 * Unlinking the image moves its ctime and makes us read it
                 * again; the same content then is no news.
                 */
                if (record->sha256 && same_path && new_content &&
                    !(record->replacement && strcmp(sha256, record->replacement) == 0))
                        emit(integrity, PROC_INTEGRITY_CHANGED, info, sha256, record->sha256, &key, NULL);
                else if (computed && new_content)
                        emit(integrity, PROC_INTEGRITY_HASHED, info, sha256, NULL, &key, NULL);
                if (!same_path) {
                        g_clear_pointer(&record->exe, g_ref_string_release);
                        record->exe = g_ref_string_acquire(info->exe);
                }
                g_clear_pointer(&record->sha256, g_ref_string_release);
                record->sha256 = sha256;
                record->image_key = key;
                record->disk_state = DISK_PRESENT;
                g_clear_pointer(&record->replacement, g_ref_string_release);
        }

        g_clear_pointer(&info->exe_sha256, g_ref_string_release);
        info->exe_sha256 = g_ref_string_acquire(record->sha256);

        if (info->exe_deleted)
                check_deleted_path(integrity, record, info);
        else
                record->disk_state = DISK_PRESENT;
}

guint proc_integrity_update(ProcIntegrity *integrity, ProcSnapshot *snapshot, ProcIntegrityFunc func,
                            gpointer user_data)
{
        GHashTableIter iter;
        gpointer value;

        integrity->func = func;
        integrity->user_data = user_data;
        integrity->events = 0;
        integrity->generation++;

        proc_snapshot_iter_init(snapshot, &iter);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                update_process(integrity, value);

        g_hash_table_iter_init(&iter, integrity->records);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                ExeRecord *record = value;

                if (record->generation != integrity->generation)
                        g_hash_table_iter_remove(&iter);
        }
        hash_cache_sweep(integrity->cache);

        integrity->func = NULL;
        integrity->user_data = NULL;
        return integrity->events;
}
