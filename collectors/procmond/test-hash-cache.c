/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "hash-cache.h"
#include "test-fixture.h"

typedef struct {
        char *dir;
        HashCache *cache;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
        f->dir = fixture_root_new();
        f->cache = hash_cache_new(GPOINTER_TO_UINT(data) ? GPOINTER_TO_UINT(data) : 64);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        hash_cache_free(f->cache);
        fixture_root_remove(f->dir);
}

static char *write_file(Fixture *f, const char *name, const char *content, gsize len)
{
        g_autoptr(GError) error = NULL;
        char *path = g_build_filename(f->dir, name, NULL);

        g_file_set_contents(path, content, (gssize)len, &error);
        g_assert_no_error(error);
        return path;
}

/* Hashes @path through the cache; @computed says whether its content was read. */
static GRefString *hash_path(Fixture *f, const char *path, gboolean *computed)
{
        g_autoptr(GError) error = NULL;
        GRefString *sha256;
        int fd = open(path, O_RDONLY | O_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        sha256 = hash_cache_hash_fd(f->cache, fd, path, NULL, computed, &error);
        close(fd);
        g_assert_no_error(error);
        g_assert_nonnull(sha256);
        return sha256;
}

static void test_hash_matches(Fixture *f, gconstpointer data)
{
        /* Larger than one read chunk, and not a multiple of it. */
        gsize len = 200 * 1024 + 17;
        g_autofree char *content = g_malloc(len);
        g_autofree char *path = NULL;
        g_autofree char *expected = NULL;
        g_autoptr(GRefString) sha256 = NULL;
        gboolean computed;

        for (gsize i = 0; i < len; i++)
                content[i] = (char)(i * 31 + i / 7);
        path = write_file(f, "big", content, len);
        expected = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)content, len);

        sha256 = hash_path(f, path, &computed);
        g_assert_true(computed);
        g_assert_cmpstr(sha256, ==, expected);
        g_assert_cmpuint(hash_cache_get_computed(f->cache), ==, 1);
        g_assert_cmpuint(hash_cache_size(f->cache), ==, 1);
}

static void test_hashed_once(Fixture *f, gconstpointer data)
{
        g_autofree char *path = write_file(f, "bin", "#!/bin/true\n", 12);
        g_autofree char *other = write_file(f, "other", "something else", 14);
        g_autofree char *expected = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "#!/bin/true\n", 12);
        struct stat st;
        HashKey key;

        /* Many processes running one binary: one read. */
        for (guint i = 0; i < 10; i++) {
                gboolean computed;
                g_autoptr(GRefString) sha256 = hash_path(f, path, &computed);

                g_assert_cmpstr(sha256, ==, expected);
                g_assert_true(computed == (i == 0));
        }
        g_assert_cmpuint(hash_cache_get_computed(f->cache), ==, 1);

        g_assert_cmpint(stat(path, &st), ==, 0);
        key = hash_key_from_stat(&st);
        {
                g_autoptr(GRefString) cached = hash_cache_lookup(f->cache, &key);

                g_assert_cmpstr(cached, ==, expected);
        }

        {
                gboolean computed;
                g_autoptr(GRefString) sha256 = hash_path(f, other, &computed);

                g_assert_true(computed);
                g_assert_cmpstr(sha256, !=, expected);
        }
        g_assert_cmpuint(hash_cache_get_computed(f->cache), ==, 2);
        g_assert_cmpuint(hash_cache_size(f->cache), ==, 2);
}

static void test_changed_file(Fixture *f, gconstpointer data)
{
        g_autofree char *path = write_file(f, "bin", "version one", 11);
        g_autoptr(GRefString) first = NULL;
        g_autoptr(GRefString) second = NULL;
        struct stat before;
        struct timespec times[2];
        gboolean computed;
        int fd;

        first = hash_path(f, path, &computed);
        g_assert_cmpint(stat(path, &before), ==, 0);

        /*
         * Same size, rewritten in place, mtime put back: only ctime tells. The
         * pause moves the coarse file clock past the first write.
         */
        g_usleep(50000);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pwrite(fd, "version two", 11, 0), ==, 11);
        times[0] = before.st_atim;
        times[1] = before.st_mtim;
        g_assert_cmpint(futimens(fd, times), ==, 0);
        close(fd);

        second = hash_path(f, path, &computed);
        g_assert_true(computed);
        g_assert_cmpstr(second, !=, first);
        {
                g_autofree char *expected = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "version two", 11);

                g_assert_cmpstr(second, ==, expected);
        }
}

static void test_sweep(Fixture *f, gconstpointer data)
{
        g_autofree char *a = write_file(f, "a", "aaaa", 4);
        g_autofree char *b = write_file(f, "b", "bbbb", 4);
        struct stat st;
        HashKey key_a;
        gboolean computed;

        g_ref_string_release(hash_path(f, a, &computed));
        g_ref_string_release(hash_path(f, b, &computed));
        /* Both used since the last sweep: both stay. */
        g_assert_cmpuint(hash_cache_sweep(f->cache), ==, 0);
        g_assert_cmpuint(hash_cache_size(f->cache), ==, 2);

        /* Only a is looked up during the next "scan". */
        g_assert_cmpint(stat(a, &st), ==, 0);
        key_a = hash_key_from_stat(&st);
        g_ref_string_release(hash_cache_lookup(f->cache, &key_a));
        g_assert_cmpuint(hash_cache_sweep(f->cache), ==, 1);
        g_assert_cmpuint(hash_cache_size(f->cache), ==, 1);

        g_ref_string_release(hash_path(f, b, &computed));
        g_assert_true(computed);
        g_ref_string_release(hash_path(f, a, &computed));
        g_assert_false(computed);

        g_assert_cmpuint(hash_cache_sweep(f->cache), ==, 0);
        g_assert_cmpuint(hash_cache_sweep(f->cache), ==, 2);
        g_assert_cmpuint(hash_cache_size(f->cache), ==, 0);
}

static void test_bound(Fixture *f, gconstpointer data)
{
        g_autofree char *a = write_file(f, "a", "1", 1);
        g_autofree char *b = write_file(f, "b", "2", 1);
        g_autofree char *c = write_file(f, "c", "3", 1);
        g_autofree char *expected = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "3", 1);
        gboolean computed;

        /* Bound 2 (fixture data). Three binaries in use in the same scan. */
        g_ref_string_release(hash_path(f, a, &computed));
        g_ref_string_release(hash_path(f, b, &computed));
        {
                g_autoptr(GRefString) sha256 = hash_path(f, c, &computed);

                /* Still answered correctly, just not remembered. */
                g_assert_cmpstr(sha256, ==, expected);
        }
        g_assert_cmpuint(hash_cache_size(f->cache), ==, 2);
        g_ref_string_release(hash_path(f, c, &computed));
        g_assert_true(computed);

        /* Next scan: c alone is in use; the entries of a and b make room. */
        hash_cache_sweep(f->cache);
        g_ref_string_release(hash_path(f, c, &computed));
        g_assert_true(computed);
        g_assert_cmpuint(hash_cache_size(f->cache), <=, 2);
        g_ref_string_release(hash_path(f, c, &computed));
        g_assert_false(computed);
}

static void test_unreadable(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        GRefString *sha256;
        int fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        sha256 = hash_cache_hash_fd(f->cache, fd, "the-directory", NULL, NULL, &error);
        close(fd);
        g_assert_null(sha256);
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ISDIR);
        g_assert_nonnull(strstr(error->message, "the-directory"));
        g_assert_cmpuint(hash_cache_size(f->cache), ==, 0);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

#define FIXTURE_TEST(path, bound, fn) \
        g_test_add(path, Fixture, GUINT_TO_POINTER(bound), fixture_setup, fn, fixture_teardown)
        FIXTURE_TEST("/hash-cache/hash-matches", 0, test_hash_matches);
        FIXTURE_TEST("/hash-cache/hashed-once", 0, test_hashed_once);
        FIXTURE_TEST("/hash-cache/changed-file", 0, test_changed_file);
        FIXTURE_TEST("/hash-cache/sweep", 0, test_sweep);
        FIXTURE_TEST("/hash-cache/bound", 2, test_bound);
        FIXTURE_TEST("/hash-cache/unreadable", 0, test_unreadable);
        return g_test_run();
}
