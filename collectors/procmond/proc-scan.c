/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proc-scan.h"

/* /proc/<pid>/stat is ~300 bytes; a kernel thread's comm is at most 64. */
#define STAT_MAX_BYTES 4096
#define STATUS_MAX_BYTES 8192
/*
 * Longer command lines are cut here: an event must fit a frame (1 MiB by
 * default) and 64 KiB already holds any command line a human reads.
 */
#define CMDLINE_MAX_BYTES (64 * 1024)
#define DELETED_SUFFIX " (deleted)"

struct _ProcSnapshot {
        /* ProcKey * -> ProcInfo *, key and value the same pointer. */
        GHashTable *table;
        guint64 time_us;
};

struct _ProcScanner {
        char *root;
        DIR *dir;
        /* One buffer reused for every file of every process. */
        char *buf;
        gsize buf_size;
        guint64 page_size;
        guint64 clk_tck;
        guint64 boot_time_us;
        GRefString *empty;
        GBytes *empty_bytes;
        ProcScanStats stats;
};

guint proc_key_hash(gconstpointer p)
{
        const ProcKey *key = p;

        return ((guint)key->pid * 2654435761u) ^ (guint)key->start_time_ticks ^
               (guint)(key->start_time_ticks >> 32);
}

gboolean proc_key_equal(gconstpointer a, gconstpointer b)
{
        const ProcKey *x = a, *y = b;

        return x->pid == y->pid && x->start_time_ticks == y->start_time_ticks;
}

static void proc_info_free(gpointer p)
{
        ProcInfo *info = p;

        g_clear_pointer(&info->comm, g_ref_string_release);
        g_clear_pointer(&info->exe, g_ref_string_release);
        g_clear_pointer(&info->cmdline, g_bytes_unref);
        g_clear_pointer(&info->exe_sha256, g_ref_string_release);
        g_free(info);
}

guint proc_info_cmdline_argv(const ProcInfo *info, GPtrArray *argv)
{
        gsize len = 0;
        const char *data = g_bytes_get_data(info->cmdline, &len);
        guint n = 0;

        /* The scanner guarantees a final NUL, so every argument is a C string. */
        for (gsize i = 0; i < len; n++) {
                const char *arg = data + i;

                g_ptr_array_add(argv, (gpointer)arg);
                i += strlen(arg) + 1;
        }
        return n;
}

void proc_snapshot_free(ProcSnapshot *snapshot)
{
        if (!snapshot)
                return;
        g_hash_table_unref(snapshot->table);
        g_free(snapshot);
}

guint proc_snapshot_size(const ProcSnapshot *snapshot)
{
        return g_hash_table_size(snapshot->table);
}

guint64 proc_snapshot_get_time_us(const ProcSnapshot *snapshot)
{
        return snapshot->time_us;
}

ProcInfo *proc_snapshot_lookup(const ProcSnapshot *snapshot, gint pid, guint64 start_time_ticks)
{
        ProcKey key = {.pid = pid, .start_time_ticks = start_time_ticks};

        return g_hash_table_lookup(snapshot->table, &key);
}

ProcInfo *proc_snapshot_find_pid(const ProcSnapshot *snapshot, gint pid)
{
        GHashTableIter iter;
        gpointer value;

        /* Linear: only tests and rare lookups need it, the scan never does. */
        g_hash_table_iter_init(&iter, snapshot->table);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                ProcInfo *info = value;

                if (info->key.pid == pid)
                        return info;
        }
        return NULL;
}

void proc_snapshot_iter_init(const ProcSnapshot *snapshot, GHashTableIter *iter)
{
        g_hash_table_iter_init(iter, snapshot->table);
}

static gint compare_by_pid(gconstpointer a, gconstpointer b)
{
        const ProcInfo *x = *(ProcInfo *const *)a, *y = *(ProcInfo *const *)b;

        return (x->key.pid > y->key.pid) - (x->key.pid < y->key.pid);
}

GPtrArray *proc_snapshot_sorted(const ProcSnapshot *snapshot)
{
        GPtrArray *array = g_ptr_array_sized_new(g_hash_table_size(snapshot->table));
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, snapshot->table);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                g_ptr_array_add(array, value);
        g_ptr_array_sort(array, compare_by_pid);
        return array;
}

ProcScanner *proc_scanner_new(const char *proc_root, GError **error)
{
        g_autoptr(ProcScanner) scanner = g_new0(ProcScanner, 1);
        struct timespec real, boot;
        long page_size = sysconf(_SC_PAGESIZE);
        long clk_tck = sysconf(_SC_CLK_TCK);
        int fd;

        scanner->root = g_strdup(proc_root ? proc_root : "/proc");
        fd = open(scanner->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "process scanner: opening %s: %s", scanner->root, g_strerror(errsv));
                return NULL;
        }
        scanner->dir = fdopendir(fd);
        if (!scanner->dir) {
                int errsv = errno;

                close(fd);
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "process scanner: listing %s: %s", scanner->root, g_strerror(errsv));
                return NULL;
        }

        scanner->page_size = page_size > 0 ? (guint64)page_size : 4096;
        scanner->clk_tck = clk_tck > 0 ? (guint64)clk_tck : 100;
        /* Start times count from boot on CLOCK_BOOTTIME (suspend included). */
        clock_gettime(CLOCK_REALTIME, &real);
        clock_gettime(CLOCK_BOOTTIME, &boot);
        scanner->boot_time_us = ((guint64)real.tv_sec * G_USEC_PER_SEC + (guint64)real.tv_nsec / 1000) -
                                ((guint64)boot.tv_sec * G_USEC_PER_SEC + (guint64)boot.tv_nsec / 1000);
        scanner->buf_size = 4096;
        scanner->buf = g_malloc(scanner->buf_size);
        scanner->empty = g_ref_string_new_len("", 0);
        scanner->empty_bytes = g_bytes_new_static("", 0);
        return g_steal_pointer(&scanner);
}

void proc_scanner_free(ProcScanner *scanner)
{
        if (!scanner)
                return;
        if (scanner->dir)
                closedir(scanner->dir);
        g_clear_pointer(&scanner->empty, g_ref_string_release);
        g_clear_pointer(&scanner->empty_bytes, g_bytes_unref);
        g_free(scanner->buf);
        g_free(scanner->root);
        g_free(scanner);
}

ProcScanStats proc_scanner_get_stats(const ProcScanner *scanner)
{
        return scanner->stats;
}

guint64 proc_scanner_get_boot_time_us(const ProcScanner *scanner)
{
        return scanner->boot_time_us;
}

static gboolean errno_is_vanished(int errsv)
{
        /* ENOENT: the pid directory is gone; ESRCH: the task died under an open fd. */
        return errsv == ENOENT || errsv == ESRCH;
}

/*
 * Reads @name under @dirfd into the scanner's buffer, NUL-terminated, at most
 * @max bytes. Returns the length, or -errno.
 */
static gssize scanner_read_at(ProcScanner *scanner, int dirfd, const char *name, gsize max)
{
        gsize len = 0;
        int fd;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;
                gsize want;

                if (len + 1 >= scanner->buf_size) {
                        if (scanner->buf_size > max)
                                break; /* cut at max */
                        scanner->buf_size = MIN(scanner->buf_size * 2, max + 1);
                        scanner->buf = g_realloc(scanner->buf, scanner->buf_size);
                }
                want = scanner->buf_size - 1 - len;
                n = read(fd, scanner->buf + len, want);
                if (n < 0) {
                        int errsv = errno;

                        if (errsv == EINTR)
                                continue;
                        close(fd);
                        return -errsv;
                }
                len += (gsize)n;
                /*
                 * These files produce their whole content for a read large
                 * enough (stat and status are single seq_file records, cmdline
                 * copies until the end of the arguments): a short read is the
                 * end, and skipping the read that would return 0 saves a
                 * quarter of the system calls of a scan.
                 */
                if ((gsize)n < want)
                        break;
        }
        close(fd);
        scanner->buf[len] = '\0';
        return (gssize)len;
}

static gboolean parse_u64(const char *s, const char *end, guint64 *out)
{
        guint64 v = 0;

        if (s == end)
                return FALSE;
        for (; s < end; s++) {
                if (*s < '0' || *s > '9')
                        return FALSE;
                if (v > (G_MAXUINT64 - 9) / 10)
                        return FALSE;
                v = v * 10 + (guint64)(*s - '0');
        }
        *out = v;
        return TRUE;
}

/*
 * Parses /proc/<pid>/stat. The comm field is in parentheses and may itself
 * contain spaces and ')', so it ends at the LAST ')' of the line.
 */
static gboolean parse_stat(const char *buf, gsize len, gint pid, ProcInfo *info, const char **comm,
                           gsize *comm_len)
{
        const char *open = memchr(buf, '(', len);
        const char *close = memrchr(buf, ')', len);
        const char *p, *end = buf + len;
        guint64 v;
        guint field;

        if (!open || !close || close < open)
                return FALSE;
        /* Field 1 must be the pid whose directory we are reading. */
        p = open;
        while (p > buf && p[-1] == ' ')
                p--;
        if (!parse_u64(buf, p, &v) || v != (guint64)pid)
                return FALSE;
        *comm = open + 1;
        *comm_len = (gsize)(close - open - 1);

        p = close + 1;
        for (field = 3; field <= 24; field++) {
                const char *tok;

                while (p < end && *p == ' ')
                        p++;
                tok = p;
                while (p < end && *p != ' ' && *p != '\n')
                        p++;
                if (tok == p)
                        return FALSE;

                switch (field) {
                case 3:
                        info->state[0] = tok[0];
                        info->state[1] = '\0';
                        break;
                case 4:
                        if (!parse_u64(tok, p, &v) || v > G_MAXINT)
                                return FALSE;
                        info->ppid = (gint)v;
                        break;
                case 9:
                        if (!parse_u64(tok, p, &v))
                                return FALSE;
                        info->flags = (guint32)v;
                        break;
                case 14:
                        if (!parse_u64(tok, p, &info->utime_ticks))
                                return FALSE;
                        break;
                case 15:
                        if (!parse_u64(tok, p, &info->stime_ticks))
                                return FALSE;
                        break;
                case 20:
                        if (!parse_u64(tok, p, &v))
                                return FALSE;
                        info->threads = (guint32)MIN(v, G_MAXUINT32);
                        break;
                case 22:
                        if (!parse_u64(tok, p, &info->key.start_time_ticks))
                                return FALSE;
                        break;
                case 24:
                        if (!parse_u64(tok, p, &v))
                                return FALSE;
                        info->rss_bytes = v;
                        break;
                default:
                        break;
                }
        }
        return TRUE;
}

/* Parses the real and effective ids of a "Uid:" or "Gid:" line. */
static gboolean parse_status_ids(const char *buf, const char *tag, guint32 *real, guint32 *effective)
{
        const char *line = strstr(buf, tag);
        const char *p, *tok;
        guint64 v[2];

        if (!line)
                return FALSE;
        p = line + strlen(tag);
        for (guint i = 0; i < 2; i++) {
                while (*p == ' ' || *p == '\t')
                        p++;
                tok = p;
                while (*p >= '0' && *p <= '9')
                        p++;
                if (!parse_u64(tok, p, &v[i]) || v[i] > G_MAXUINT32)
                        return FALSE;
        }
        *real = (guint32)v[0];
        *effective = (guint32)v[1];
        return TRUE;
}

/* Shares @old when it already holds these bytes, so unchanged processes cost no allocation. */
static GRefString *scanner_ref_string(ProcScanner *scanner, GRefString *old, const char *data, gsize len)
{
        if (len == 0)
                return g_ref_string_acquire(scanner->empty);
        if (old && g_ref_string_length(old) == len && memcmp(old, data, len) == 0)
                return g_ref_string_acquire(old);
        return g_ref_string_new_len(data, (gssize)len);
}

static GBytes *scanner_bytes(ProcScanner *scanner, GBytes *old, const char *data, gsize len)
{
        if (len == 0)
                return g_bytes_ref(scanner->empty_bytes);
        if (old && g_bytes_get_size(old) == len && memcmp(g_bytes_get_data(old, NULL), data, len) == 0)
                return g_bytes_ref(old);
        return g_bytes_new(data, len);
}

typedef enum {
        SCAN_OK,
        SCAN_VANISHED,
        SCAN_UNREADABLE,
} ScanResult;

static ScanResult scan_result_from_errno(int errsv)
{
        return errno_is_vanished(errsv) ? SCAN_VANISHED : SCAN_UNREADABLE;
}

/* Reads cmdline and exe; called only for processes that still have an address space. */
static ScanResult scanner_read_image(ProcScanner *scanner, int pidfd, ProcInfo *info, const ProcInfo *prev)
{
        gssize n;
        gsize len;
        gboolean exe_gone = FALSE;

        n = scanner_read_at(scanner, pidfd, "cmdline", CMDLINE_MAX_BYTES);
        if (n == -ESRCH || n == -ENOENT)
                return SCAN_VANISHED;
        len = n > 0 ? (gsize)n : 0;
        /* Keep every argument a C string even when the process rewrote its argv. */
        if (len > 0 && scanner->buf[len - 1] != '\0')
                len++;
        info->cmdline = scanner_bytes(scanner, prev ? prev->cmdline : NULL, scanner->buf, len);

        if (scanner->buf_size < PATH_MAX + sizeof(DELETED_SUFFIX)) {
                scanner->buf_size = PATH_MAX + sizeof(DELETED_SUFFIX);
                scanner->buf = g_realloc(scanner->buf, scanner->buf_size);
        }
        n = readlinkat(pidfd, "exe", scanner->buf, scanner->buf_size);
        if (n < 0) {
                /*
                 * ENOENT on a user process means its address space is already
                 * gone (it is exiting); EACCES means we may not look. Neither is
                 * an error; an exiting process keeps what we knew of it.
                 */
                exe_gone = errno == ENOENT && !proc_info_is_kernel_thread(info);
                n = 0;
        } else if ((gsize)n >= scanner->buf_size) {
                n = 0; /* cannot happen for a path under PATH_MAX; treat as unknown */
        }
        len = (gsize)n;
        if (len >= strlen(DELETED_SUFFIX) &&
            memcmp(scanner->buf + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX, strlen(DELETED_SUFFIX)) == 0) {
                info->exe_deleted = TRUE;
                len -= strlen(DELETED_SUFFIX);
        }

        if (exe_gone && prev) {
                info->exe = g_ref_string_acquire(prev->exe);
                info->exe_deleted = prev->exe_deleted;
                if (g_bytes_get_size(info->cmdline) == 0) {
                        g_bytes_unref(info->cmdline);
                        info->cmdline = g_bytes_ref(prev->cmdline);
                }
        } else {
                info->exe = scanner_ref_string(scanner, prev ? prev->exe : NULL, scanner->buf, len);
        }
        return SCAN_OK;
}

static ScanResult scanner_read_process(ProcScanner *scanner, int pidfd, gint pid, const ProcSnapshot *previous,
                                       ProcInfo *info)
{
        const ProcInfo *prev = NULL;
        const char *comm;
        gsize comm_len;
        gssize n;

        n = scanner_read_at(scanner, pidfd, "stat", STAT_MAX_BYTES);
        if (n < 0)
                return scan_result_from_errno((int)-n);
        if (n == 0)
                return SCAN_VANISHED;
        info->key.pid = pid;
        if (!parse_stat(scanner->buf, (gsize)n, pid, info, &comm, &comm_len))
                return SCAN_UNREADABLE;
        info->rss_bytes *= scanner->page_size;
        info->cpu_time_us = (info->utime_ticks + info->stime_ticks) * G_USEC_PER_SEC / scanner->clk_tck;
        info->start_time_us = scanner->boot_time_us + info->key.start_time_ticks * G_USEC_PER_SEC / scanner->clk_tck;

        if (previous)
                prev = g_hash_table_lookup(previous->table, &info->key);
        /* comm points into the buffer: keep it before the next read. */
        info->comm = scanner_ref_string(scanner, prev ? prev->comm : NULL, comm, comm_len);

        n = scanner_read_at(scanner, pidfd, "status", STATUS_MAX_BYTES);
        if (n < 0)
                return scan_result_from_errno((int)-n);
        if (n == 0)
                return SCAN_VANISHED;
        if (!parse_status_ids(scanner->buf, "\nUid:", &info->uid, &info->euid) ||
            !parse_status_ids(scanner->buf, "\nGid:", &info->gid, &info->egid))
                return SCAN_UNREADABLE;

        /*
         * A zombie (or a group leader that exited before its threads) has no
         * address space left: its cmdline reads empty and exe is gone. It is
         * still the same process, so it keeps what the last scan read.
         */
        if (info->state[0] == 'Z' || info->state[0] == 'X') {
                info->exe = g_ref_string_acquire(prev ? prev->exe : scanner->empty);
                info->cmdline = g_bytes_ref(prev ? prev->cmdline : scanner->empty_bytes);
                info->exe_deleted = prev ? prev->exe_deleted : FALSE;
                return SCAN_OK;
        }
        return scanner_read_image(scanner, pidfd, info, prev);
}

static gboolean parse_pid_name(const char *name, gint *pid)
{
        guint64 v;
        gsize len = strlen(name);

        if (len == 0 || len > 10 || name[0] == '0')
                return FALSE;
        if (!parse_u64(name, name + len, &v) || v > G_MAXINT)
                return FALSE;
        *pid = (gint)v;
        return TRUE;
}

ProcSnapshot *proc_scanner_scan(ProcScanner *scanner, const ProcSnapshot *previous, GError **error)
{
        g_autoptr(ProcSnapshot) snapshot = g_new0(ProcSnapshot, 1);
        int rootfd = dirfd(scanner->dir);
        struct dirent *entry;

        snapshot->table = g_hash_table_new_full(proc_key_hash, proc_key_equal, NULL, proc_info_free);
        snapshot->time_us = (guint64)g_get_real_time();
        memset(&scanner->stats, 0, sizeof(scanner->stats));

        rewinddir(scanner->dir);
        for (;;) {
                ProcInfo *info;
                ScanResult result;
                gint pid;
                int pidfd;

                errno = 0;
                entry = readdir(scanner->dir);
                if (!entry)
                        break;
                if ((entry->d_type != DT_DIR && entry->d_type != DT_UNKNOWN) ||
                    !parse_pid_name(entry->d_name, &pid))
                        continue;
                scanner->stats.entries++;

                /*
                 * Every file is read through one fd on the pid directory: if the
                 * process dies and its pid is reused meanwhile, reads fail with
                 * ESRCH instead of mixing two processes into one record.
                 */
                pidfd = openat(rootfd, entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (pidfd < 0) {
                        if (scan_result_from_errno(errno) == SCAN_VANISHED)
                                scanner->stats.vanished++;
                        else
                                scanner->stats.unreadable++;
                        continue;
                }
                info = g_new0(ProcInfo, 1);
                result = scanner_read_process(scanner, pidfd, pid, previous, info);
                close(pidfd);
                switch (result) {
                case SCAN_OK:
                        /* A pid appears once per listing, so keys cannot collide. */
                        g_hash_table_add(snapshot->table, info);
                        break;
                case SCAN_VANISHED:
                        scanner->stats.vanished++;
                        proc_info_free(info);
                        break;
                case SCAN_UNREADABLE:
                        scanner->stats.unreadable++;
                        proc_info_free(info);
                        break;
                }
        }
        if (errno != 0) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "process scanner: reading directory %s: %s", scanner->root, g_strerror(errsv));
                return NULL;
        }
        return g_steal_pointer(&snapshot);
}
