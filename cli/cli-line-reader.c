/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cli.h"
#include "cli-line-reader.h"

#define CLI_LINE_READER_CHUNK (64 * 1024)

struct _CliLineReader {
        int fd;
        int saved_flags; /* fd flags before we set O_NONBLOCK, or -1 */
        gsize max_line_len;
        GByteArray *buffer; /* read and not yet delivered */
        gsize consumed;     /* bytes at the front of buffer already delivered */
        gsize scanned;      /* bytes after consumed known to hold no '\n' */
        guint64 line_count;
        guint watch_id;
        guint pump_id;
        gboolean paused;
        gboolean eof;
        gboolean finished;
        CliLineFunc line_func;
        CliLineEndFunc end_func;
        gpointer user_data;
};

CliLineReader *cli_line_reader_new(int fd, gsize max_line_len, CliLineFunc line_func,
                                   CliLineEndFunc end_func, gpointer user_data)
{
        CliLineReader *reader = g_new0(CliLineReader, 1);

        reader->fd = fd;
        reader->saved_flags = -1;
        reader->max_line_len = max_line_len;
        reader->buffer = g_byte_array_sized_new(CLI_LINE_READER_CHUNK);
        reader->line_func = line_func;
        reader->end_func = end_func;
        reader->user_data = user_data;
        return reader;
}

void cli_line_reader_free(CliLineReader *reader)
{
        if (!reader)
                return;
        g_clear_handle_id(&reader->watch_id, g_source_remove);
        g_clear_handle_id(&reader->pump_id, g_source_remove);
        /* stdin's file description is shared with the shell, which expects it blocking. */
        if (reader->saved_flags >= 0)
                (void)fcntl(reader->fd, F_SETFL, reader->saved_flags);
        g_byte_array_unref(reader->buffer);
        g_free(reader);
}

guint64 cli_line_reader_get_line_count(CliLineReader *reader)
{
        return reader->line_count;
}

static void reader_finish(CliLineReader *reader, const GError *error)
{
        reader->finished = TRUE;
        g_clear_handle_id(&reader->watch_id, g_source_remove);
        g_clear_handle_id(&reader->pump_id, g_source_remove);
        reader->end_func(reader, error, reader->user_data);
}

static void reader_fail_too_long(CliLineReader *reader, guint64 line_number)
{
        g_autoptr(GError) error = g_error_new(CLI_ERROR, CLI_ERROR_FAILED,
                                              "line %" G_GUINT64_FORMAT " is longer than %zu bytes",
                                              line_number, reader->max_line_len);

        reader_finish(reader, error);
}

/* Returns: FALSE if the reader stopped: a line over the limit, or the line func said so. */
static gboolean reader_deliver(CliLineReader *reader, const guint8 *line, gsize len)
{
        if (len > reader->max_line_len) {
                reader_fail_too_long(reader, reader->line_count + 1);
                return FALSE;
        }
        reader->line_count++;
        if (reader->line_func(reader, (const char *)line, len, reader->line_count, reader->user_data))
                return TRUE;
        reader->finished = TRUE;
        g_clear_handle_id(&reader->watch_id, g_source_remove);
        g_clear_handle_id(&reader->pump_id, g_source_remove);
        return FALSE;
}

/* Delivers every complete buffered line, unless paused or stopped on the way. */
static void reader_deliver_lines(CliLineReader *reader)
{
        while (!reader->paused && !reader->finished) {
                const guint8 *start = reader->buffer->data + reader->consumed;
                gsize avail = reader->buffer->len - reader->consumed;
                const guint8 *newline = memchr(start + reader->scanned, '\n', avail - reader->scanned);
                gsize len;

                if (!newline) {
                        reader->scanned = avail;
                        break;
                }
                len = (gsize)(newline - start);
                reader->consumed += len + 1;
                reader->scanned = 0;
                if (!reader_deliver(reader, start, len))
                        return;
        }
        if (reader->consumed > 0 && !reader->finished) {
                g_byte_array_remove_range(reader->buffer, 0, (guint)reader->consumed);
                reader->consumed = 0;
        }
}

static gboolean reader_on_readable(int fd, GIOCondition condition, gpointer user_data);

/* Delivers what is buffered, then either ends the input or makes sure more is read. */
static void reader_advance(CliLineReader *reader)
{
        gsize pending;

        reader_deliver_lines(reader);
        if (reader->paused || reader->finished)
                return;

        pending = reader->buffer->len;
        if (reader->eof) {
                /* A last line without '\n' is still a line. */
                if (pending > 0 && !reader_deliver(reader, reader->buffer->data, pending))
                        return;
                g_byte_array_set_size(reader->buffer, 0);
                reader_finish(reader, NULL);
                return;
        }
        /* Checked before the newline arrives, so one endless line cannot fill memory. */
        if (pending > reader->max_line_len) {
                reader_fail_too_long(reader, reader->line_count + 1);
                return;
        }
        if (reader->watch_id == 0)
                reader->watch_id =
                        g_unix_fd_add(reader->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, reader_on_readable, reader);
}

static gboolean reader_on_readable(int fd, GIOCondition condition, gpointer user_data)
{
        CliLineReader *reader = user_data;
        gsize old_len = reader->buffer->len;
        ssize_t n;

        g_byte_array_set_size(reader->buffer, (guint)(old_len + CLI_LINE_READER_CHUNK));
        n = read(fd, reader->buffer->data + old_len, CLI_LINE_READER_CHUNK);
        g_byte_array_set_size(reader->buffer, (guint)(old_len + MAX(n, 0)));
        if (n < 0) {
                int saved_errno = errno;
                g_autoptr(GError) error = NULL;

                if (saved_errno == EAGAIN || saved_errno == EINTR)
                        return G_SOURCE_CONTINUE;
                error = g_error_new(CLI_ERROR, CLI_ERROR_FAILED, "cannot read standard input: %s",
                                    g_strerror(saved_errno));
                reader->watch_id = 0;
                reader_finish(reader, error);
                return G_SOURCE_REMOVE;
        }
        if (n == 0)
                reader->eof = TRUE;

        reader_advance(reader);
        if (reader->paused || reader->finished || reader->eof) {
                /* Removing the source being dispatched is allowed; the return value is then moot. */
                g_clear_handle_id(&reader->watch_id, g_source_remove);
                return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
}

gboolean cli_line_reader_start(CliLineReader *reader, GError **error)
{
        int flags = fcntl(reader->fd, F_GETFL);

        if (flags < 0) {
                int saved_errno = errno;

                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot use standard input: %s",
                            g_strerror(saved_errno));
                return FALSE;
        }
        if (!(flags & O_NONBLOCK)) {
                if (fcntl(reader->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
                        int saved_errno = errno;

                        g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED,
                                    "cannot make standard input non-blocking: %s", g_strerror(saved_errno));
                        return FALSE;
                }
                reader->saved_flags = flags;
        }
        reader_advance(reader);
        return TRUE;
}

void cli_line_reader_pause(CliLineReader *reader)
{
        reader->paused = TRUE;
        g_clear_handle_id(&reader->pump_id, g_source_remove);
        g_clear_handle_id(&reader->watch_id, g_source_remove);
}

static gboolean reader_pump(gpointer user_data)
{
        CliLineReader *reader = user_data;

        reader->pump_id = 0;
        reader_advance(reader);
        return G_SOURCE_REMOVE;
}

void cli_line_reader_resume(CliLineReader *reader)
{
        if (!reader->paused || reader->finished)
                return;
        reader->paused = FALSE;
        /* Not from here: the caller may be inside a callback that must not see new lines re-entrantly. */
        if (reader->pump_id == 0)
                reader->pump_id = g_idle_add_full(G_PRIORITY_DEFAULT, reader_pump, reader, NULL);
}
