/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sys/stat.h>

#include <glib.h>

G_BEGIN_DECLS

/*
 * hash-cache: SHA-256 of files, remembered by file identity so that a binary
 * many processes run is read and hashed once.
 *
 * The identity is (st_dev, st_ino, size, mtime, ctime). ctime is in the key
 * because mtime can be set back with utimensat() after a write and ctime
 * cannot; a chmod also moves ctime and merely costs one more hash.
 */

typedef struct {
        guint64 dev;
        guint64 ino;
        guint64 size;
        gint64 mtime_ns;
        gint64 ctime_ns;
} HashKey;

/**
 * hash_key_from_stat:
 *
 * The cache identity of a file from its stat.
 */
HashKey hash_key_from_stat(const struct stat *st);

/**
 * hash_key_equal:
 *
 * Whether two identities are the same file unchanged (a GEqualFunc on HashKey *).
 */
gboolean hash_key_equal(gconstpointer a, gconstpointer b);

typedef struct _HashCache HashCache;

/**
 * hash_cache_new:
 * @max_entries: bound on cached hashes (at least 1)
 *
 * Returns (transfer full) an empty cache.
 */
HashCache *hash_cache_new(guint max_entries);

/**
 * hash_cache_free:
 *
 * Frees the cache and every cached hash.
 */
void hash_cache_free(HashCache *cache);

/**
 * hash_cache_lookup:
 *
 * Returns (transfer full) the cached hex SHA-256 of the file with this
 * identity and marks it in use, or NULL on a miss. Does no I/O.
 */
GRefString *hash_cache_lookup(HashCache *cache, const HashKey *key);

/**
 * hash_cache_hash_fd:
 * @fd: a file open for reading, at offset 0
 * @name: what @fd is, for error messages ("/proc/42/exe")
 * @key: (out) (optional): the identity of the file hashed
 * @computed: (out) (optional): TRUE when the content was read and hashed
 *   here, FALSE when the cache answered
 *
 * Returns (transfer full) the hex SHA-256 of the file behind @fd, from the
 * cache when its identity is known, else read in chunks and cached unless
 * the cache is full of entries in use or the file changed while being read.
 * Returns NULL and sets @error when the file cannot be read.
 */
GRefString *hash_cache_hash_fd(HashCache *cache, int fd, const char *name, HashKey *key, gboolean *computed,
                               GError **error);

/**
 * hash_cache_sweep:
 *
 * Evicts every entry not looked up or inserted since the previous sweep.
 * Called after each scan, it keeps exactly the binaries still running.
 * Returns how many entries were evicted.
 */
guint hash_cache_sweep(HashCache *cache);

/**
 * hash_cache_set_max_entries:
 *
 * Changes the bound on cached hashes, keeping what is cached: a smaller
 * bound is reached as entries fall out of use (insertions wait till then).
 */
void hash_cache_set_max_entries(HashCache *cache, guint max_entries);

/**
 * hash_cache_size:
 *
 * Number of cached hashes.
 */
guint hash_cache_size(const HashCache *cache);

/**
 * hash_cache_get_computed:
 *
 * How many times file contents were hashed since the cache was created.
 */
guint64 hash_cache_get_computed(const HashCache *cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HashCache, hash_cache_free)

G_END_DECLS
