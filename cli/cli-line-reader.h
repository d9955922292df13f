/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Streams lines from a file descriptor on the main loop: reads 64 KiB at a
 * time when the fd is readable and hands out each complete line. Memory is
 * bounded by the chunk size plus the longest line allowed, whatever the input
 * size, and a paused reader stops reading, so a consumer that cannot keep up
 * pushes back on the producer through the pipe.
 */
typedef struct _CliLineReader CliLineReader;

/*
 * Called per line, without its '\n'; @line is not NUL-terminated and is valid
 * only during the call. @line_number counts from 1. Returning %FALSE stops the
 * reader for good (the end func is not called).
 */
typedef gboolean (*CliLineFunc)(CliLineReader *reader, const char *line, gsize len, guint64 line_number,
                                gpointer user_data);

/* Called once: at end of input (@error %NULL), on a read error, or on a line over the limit. */
typedef void (*CliLineEndFunc)(CliLineReader *reader, const GError *error, gpointer user_data);

/**
 * cli_line_reader_new:
 * @fd: read from, not closed; made non-blocking while the reader lives
 * @max_line_len: a longer line ends the reader with an error naming its number
 *
 * Returns: (transfer full) a reader; call cli_line_reader_start().
 */
CliLineReader *cli_line_reader_new(int fd, gsize max_line_len, CliLineFunc line_func,
                                   CliLineEndFunc end_func, gpointer user_data);

/** cli_line_reader_free: restores the fd's blocking mode. */
void cli_line_reader_free(CliLineReader *reader);

gboolean cli_line_reader_start(CliLineReader *reader, GError **error);

/** cli_line_reader_pause: no line is delivered and nothing read until resumed; callable from a line func. */
void cli_line_reader_pause(CliLineReader *reader);

/** cli_line_reader_resume: delivers the buffered lines from an idle callback, then reads again. */
void cli_line_reader_resume(CliLineReader *reader);

/** cli_line_reader_get_line_count: Returns: lines delivered so far. */
guint64 cli_line_reader_get_line_count(CliLineReader *reader);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CliLineReader, cli_line_reader_free)

G_END_DECLS
