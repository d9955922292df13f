/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CliLineReader on a pipe: line splitting across chunk boundaries, a last line
 * without newline, the line limit, pause/resume, and stopping from a callback.
 */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli-line-reader.h"

typedef struct {
        GPtrArray *lines;
        GError *error;
        gboolean ended;
        guint64 last_number;
        guint pause_every; /* pause after every n-th line; 0: never */
        guint stop_at;     /* return FALSE at this line; 0: never */
        gboolean paused;   /* set while the test holds the reader paused */
        guint pauses;
        CliLineReader *reader;
} Collector;

static gboolean resume_later(gpointer user_data)
{
        Collector *collector = user_data;

        collector->paused = FALSE;
        cli_line_reader_resume(collector->reader);
        return G_SOURCE_REMOVE;
}

static gboolean collect_line(CliLineReader *reader, const char *line, gsize len, guint64 line_number,
                             gpointer user_data)
{
        Collector *collector = user_data;

        g_assert_false(collector->paused);
        g_assert_cmpuint(line_number, ==, collector->last_number + 1);
        collector->last_number = line_number;
        g_ptr_array_add(collector->lines, g_strndup(line, len));
        if (collector->stop_at && line_number == collector->stop_at)
                return FALSE;
        if (collector->pause_every && line_number % collector->pause_every == 0) {
                collector->paused = TRUE;
                collector->pauses++;
                cli_line_reader_pause(reader);
                g_timeout_add(1, resume_later, collector);
        }
        return TRUE;
}

static void collect_end(CliLineReader *reader, const GError *error, gpointer user_data)
{
        Collector *collector = user_data;

        g_assert_false(collector->ended);
        collector->ended = TRUE;
        if (error)
                collector->error = g_error_copy(error);
}

typedef struct {
        int fd;
        const char *data;
        gsize len;
} Writer;

/* A thread, because input over the pipe's capacity would block a single-threaded test. */
static gpointer write_all(gpointer user_data)
{
        Writer *writer = user_data;
        gsize done = 0;

        while (done < writer->len) {
                ssize_t n = write(writer->fd, writer->data + done, MIN(writer->len - done, 10000));

                /* EPIPE: the reader stopped early, as some tests want. */
                if (n < 0)
                        break;
                done += (gsize)n;
        }
        close(writer->fd);
        return NULL;
}

/* Feeds @len bytes of @input through a pipe to a reader; stops at the end func or when nothing is left to
 * run. */
static void run_reader(Collector *collector, const char *input, gsize len, gsize max_line_len)
{
        g_autoptr(CliLineReader) reader = NULL;
        g_autoptr(GError) error = NULL;
        Writer writer;
        GThread *thread;
        int fds[2];

        g_assert_no_errno(pipe(fds));
        writer = (Writer){.fd = fds[1], .data = input, .len = len};
        thread = g_thread_new("writer", write_all, &writer);

        collector->lines = g_ptr_array_new_with_free_func(g_free);
        reader = cli_line_reader_new(fds[0], max_line_len, collect_line, collect_end, collector);
        collector->reader = reader;
        g_assert_true(cli_line_reader_start(reader, &error));
        g_assert_no_error(error);
        g_assert_true(fcntl(fds[0], F_GETFL) & O_NONBLOCK);

        while (!collector->ended && !(collector->stop_at && collector->last_number == collector->stop_at))
                g_main_context_iteration(NULL, TRUE);

        g_clear_pointer(&reader, cli_line_reader_free);
        /* The reader leaves the fd as it found it: stdin is the shell's too. */
        g_assert_false(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
        close(fds[0]);
        g_thread_join(thread);
}

static void collector_clear(Collector *collector)
{
        g_clear_pointer(&collector->lines, g_ptr_array_unref);
        g_clear_error(&collector->error);
}

static void test_small_inputs(void)
{
        static const struct {
                const char *input;
                const char *expected; /* lines joined with '|' */
                guint n_lines;
        } cases[] = {
                {"", "", 0},
                {"a\nb\nc\n", "a|b|c", 3},
                {"a\nb\nc", "a|b|c", 3}, /* last line without newline */
                {"\n\n", "|", 2},        /* empty lines are messages too */
                {"one line", "one line", 1},
                {"tab\there\r\n", "tab\there\r", 1}, /* only '\n' ends a line */
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                Collector collector = {0};
                g_autofree char *joined = NULL;

                run_reader(&collector, cases[i].input, strlen(cases[i].input), 1024);
                g_assert_true(collector.ended);
                g_assert_no_error(collector.error);
                g_assert_cmpuint(collector.lines->len, ==, cases[i].n_lines);
                g_ptr_array_add(collector.lines, NULL);
                joined = g_strjoinv("|", (char **)collector.lines->pdata);
                g_assert_cmpstr(joined, ==, cases[i].expected);
                collector_clear(&collector);
        }
}

/* Many lines, so chunk boundaries fall inside lines; optionally pausing often. */
static void check_many_lines(guint pause_every)
{
        const guint n = 200000;
        g_autoptr(GString) input = g_string_new(NULL);
        Collector collector = {.pause_every = pause_every};

        for (guint i = 1; i <= n; i++)
                g_string_append_printf(input, "line-%u\n", i);

        run_reader(&collector, input->str, input->len, 64);
        g_assert_true(collector.ended);
        g_assert_no_error(collector.error);
        g_assert_cmpuint(collector.lines->len, ==, n);
        for (guint i = 0; i < n; i++) {
                g_autofree char *expected = g_strdup_printf("line-%u", i + 1);

                g_assert_cmpstr(collector.lines->pdata[i], ==, expected);
        }
        if (pause_every)
                g_assert_cmpuint(collector.pauses, ==, n / pause_every);
        collector_clear(&collector);
}

static void test_many_lines(void)
{
        check_many_lines(0);
}

static void test_pause_resume(void)
{
        check_many_lines(25000);
}

static void test_line_too_long(void)
{
        /* A complete line over the limit, and one whose newline never comes. */
        static const char *const inputs[] = {"short\n0123456789ABC\nafter\n", "short\n0123456789ABC"};

        for (gsize i = 0; i < G_N_ELEMENTS(inputs); i++) {
                Collector collector = {0};

                run_reader(&collector, inputs[i], strlen(inputs[i]), 10);
                g_assert_true(collector.ended);
                g_assert_error(collector.error, CLI_ERROR, CLI_ERROR_FAILED);
                g_assert_cmpstr(collector.error->message, ==, "line 2 is longer than 10 bytes");
                g_assert_cmpuint(collector.lines->len, ==, 1);
                collector_clear(&collector);
        }
}

static void test_endless_line_bounded(void)
{
        /* 4 MiB without a newline: refused once the buffer passes the limit, not at the end. */
        gsize len = 4 * 1024 * 1024;
        g_autofree char *input = g_malloc(len);
        Collector collector = {0};

        memset(input, 'x', len);
        run_reader(&collector, input, len, 100 * 1024);
        g_assert_true(collector.ended);
        g_assert_error(collector.error, CLI_ERROR, CLI_ERROR_FAILED);
        g_assert_cmpstr(collector.error->message, ==, "line 1 is longer than 102400 bytes");
        collector_clear(&collector);
}

static void test_stop_from_callback(void)
{
        const char *input = "1\n2\n3\n4\n";
        Collector collector = {.stop_at = 2};

        run_reader(&collector, input, strlen(input), 16);
        g_assert_false(collector.ended);
        g_assert_cmpuint(collector.lines->len, ==, 2);
        collector_clear(&collector);
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli/line-reader/small-inputs", test_small_inputs);
        g_test_add_func("/cli/line-reader/many-lines", test_many_lines);
        g_test_add_func("/cli/line-reader/pause-resume", test_pause_resume);
        g_test_add_func("/cli/line-reader/line-too-long", test_line_too_long);
        g_test_add_func("/cli/line-reader/endless-line-bounded", test_endless_line_bounded);
        g_test_add_func("/cli/line-reader/stop-from-callback", test_stop_from_callback);
        return g_test_run();
}
