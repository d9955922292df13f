/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replays fuzz inputs without libFuzzer: every file named on the command line,
 * and every file inside a directory named there, is passed once to
 * LLVMFuzzerTestOneInput. Lets a gcc build run the corpus as a regression test.
 */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        g_autofree char *contents = NULL;
        gsize len = 0;
        g_autoptr(GError) error = NULL;

        if (!g_file_get_contents(path, &contents, &len, &error)) {
                fprintf(stderr, "%s\n", error->message);
                return 1;
        }
        LLVMFuzzerTestOneInput((const uint8_t *)contents, len);
        return 0;
}

int main(int argc, char **argv)
{
        unsigned n = 0;

        for (int i = 1; i < argc; i++) {
                if (g_file_test(argv[i], G_FILE_TEST_IS_DIR)) {
                        g_autoptr(GError) error = NULL;
                        g_autoptr(GDir) dir = g_dir_open(argv[i], 0, &error);
                        const char *name;

                        if (!dir) {
                                fprintf(stderr, "%s\n", error->message);
                                return 1;
                        }
                        while ((name = g_dir_read_name(dir))) {
                                g_autofree char *path = g_build_filename(argv[i], name, NULL);
                                if (run_file(path) != 0)
                                        return 1;
                                n++;
                        }
                } else {
                        if (run_file(argv[i]) != 0)
                                return 1;
                        n++;
                }
        }
        printf("replayed %u inputs\n", n);
        return n > 0 ? 0 : 1;
}
