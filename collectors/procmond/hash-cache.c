/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hash-cache.h"

#define HASH_CHUNK_BYTES (64 * 1024)

typedef struct {
        HashKey key; /* first, so a HashKey * finds an entry */
        GRefString *sha256;
        guint64 generation; /* sweep generation of the last use */
} HashEntry;

struct _HashCache {
        GHashTable *entries; /* HashKey * -> HashEntry *, the same pointer */
        guint max_entries;
        guint64 generation;
        guint64 computed;
        guint8 *chunk; /* read buffer, allocated on the first miss */
};

HashKey hash_key_from_stat(const struct stat *st)
{
        return (HashKey){
                .dev = (guint64)st->st_dev,
                .ino = (guint64)st->st_ino,
                .size = (guint64)st->st_size,
                .mtime_ns = (gint64)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                .ctime_ns = (gint64)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
        };
}

static guint hash_key_hash(gconstpointer p)
{
        const HashKey *k = p;
        guint64 h = k->ino * 0x9e3779b97f4a7c15ull ^ k->dev ^ (guint64)k->mtime_ns ^ k->size;

        return (guint)(h ^ (h >> 32));
}

gboolean hash_key_equal(gconstpointer a, gconstpointer b)
{
        const HashKey *x = a, *y = b;

        return x->dev == y->dev && x->ino == y->ino && x->size == y->size && x->mtime_ns == y->mtime_ns &&
               x->ctime_ns == y->ctime_ns;
}

static void hash_entry_free(gpointer p)
{
        HashEntry *entry = p;

        g_ref_string_release(entry->sha256);
        g_free(entry);
}

HashCache *hash_cache_new(guint max_entries)
{
        HashCache *cache = g_new0(HashCache, 1);

        cache->entries = g_hash_table_new_full(hash_key_hash, hash_key_equal, NULL, hash_entry_free);
        cache->max_entries = MAX(max_entries, 1);
        return cache;
}

void hash_cache_free(HashCache *cache)
{
        if (!cache)
                return;
        g_hash_table_unref(cache->entries);
        g_free(cache->chunk);
        g_free(cache);
}

GRefString *hash_cache_lookup(HashCache *cache, const HashKey *key)
{
        HashEntry *entry = g_hash_table_lookup(cache->entries, key);

        if (!entry)
                return NULL;
        entry->generation = cache->generation;
        return g_ref_string_acquire(entry->sha256);
}

/* Drops the entries not used since the last sweep: binaries nobody runs now. */
static guint hash_cache_evict_unused(HashCache *cache)
{
        GHashTableIter iter;
        gpointer value;
        guint evicted = 0;

        g_hash_table_iter_init(&iter, cache->entries);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                HashEntry *entry = value;

                if (entry->generation != cache->generation) {
                        g_hash_table_iter_remove(&iter);
                        evicted++;
                }
        }
        return evicted;
}

static gboolean hash_cache_make_room(HashCache *cache)
{
        if (g_hash_table_size(cache->entries) < cache->max_entries)
                return TRUE;
        hash_cache_evict_unused(cache);
        return g_hash_table_size(cache->entries) < cache->max_entries;
}

static gboolean fstat_key(int fd, const char *name, HashKey *key, GError **error)
{
        struct stat st;

        if (fstat(fd, &st) < 0) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "hashing %s: fstat: %s",
                            name, g_strerror(errsv));
                return FALSE;
        }
        *key = hash_key_from_stat(&st);
        return TRUE;
}

GRefString *hash_cache_hash_fd(HashCache *cache, int fd, const char *name, HashKey *out_key, gboolean *computed,
                               GError **error)
{
        g_autoptr(GChecksum) checksum = NULL;
        HashKey key, after;
        GRefString *sha256;
        HashEntry *entry;

        if (computed)
                *computed = FALSE;
        if (!fstat_key(fd, name, &key, error))
                return NULL;
        if (out_key)
                *out_key = key;
        sha256 = hash_cache_lookup(cache, &key);
        if (sha256)
                return sha256;

        if (!cache->chunk)
                cache->chunk = g_malloc(HASH_CHUNK_BYTES);
        checksum = g_checksum_new(G_CHECKSUM_SHA256);
        for (guint64 offset = 0;;) {
                /* pread: the fd may be shared and its offset not at 0. */
                ssize_t n = pread(fd, cache->chunk, HASH_CHUNK_BYTES, (off_t)offset);

                if (n < 0) {
                        int errsv = errno;

                        if (errsv == EINTR)
                                continue;
                        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "hashing %s: read: %s",
                                    name, g_strerror(errsv));
                        return NULL;
                }
                if (n == 0)
                        break;
                g_checksum_update(checksum, cache->chunk, n);
                offset += (guint64)n;
        }
        cache->computed++;
        if (computed)
                *computed = TRUE;
        sha256 = g_ref_string_new(g_checksum_get_string(checksum));

        /* A file written while we read it has no single hash worth keeping. */
        if (!fstat_key(fd, name, &after, error)) {
                g_ref_string_release(sha256);
                return NULL;
        }
        if (!hash_key_equal(&key, &after) || !hash_cache_make_room(cache))
                return sha256;

        entry = g_new0(HashEntry, 1);
        entry->key = key;
        entry->sha256 = g_ref_string_acquire(sha256);
        entry->generation = cache->generation;
        g_hash_table_add(cache->entries, entry);
        return sha256;
}

guint hash_cache_sweep(HashCache *cache)
{
        guint evicted = hash_cache_evict_unused(cache);

        cache->generation++;
        return evicted;
}

void hash_cache_set_max_entries(HashCache *cache, guint max_entries)
{
        cache->max_entries = MAX(max_entries, 1);
}

guint hash_cache_size(const HashCache *cache)
{
        return g_hash_table_size(cache->entries);
}

guint64 hash_cache_get_computed(const HashCache *cache)
{
        return cache->computed;
}
