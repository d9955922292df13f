/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdio.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "deb-frame.h"

G_BEGIN_DECLS

/*
 * Printing to a stdio stream for humans and for pipes: flushed per message
 * on a terminal; otherwise buffered by stdio and flushed when the main loop
 * goes idle, so a reader on a pipe sees every message soon without costing a
 * write(2) per message under load. A reader that went away (EPIPE) is
 * reported as CLI_ERROR_OUTPUT_CLOSED, so the command can exit quietly.
 */
typedef struct _CliOutput CliOutput;

/* Called from the idle flush when writing failed; the command should stop. */
typedef void (*CliOutputErrorFunc)(CliOutput *output, const GError *error, gpointer user_data);

/** cli_output_new: Returns: (transfer full) an output on @stream, which it does not close. */
CliOutput *cli_output_new(FILE *stream, gboolean json);
void cli_output_free(CliOutput *output);

void cli_output_set_error_func(CliOutput *output, CliOutputErrorFunc func, gpointer user_data);

/**
 * cli_output_write_envelope:
 *
 * One line: "TOPIC PAYLOAD" (the payload as text when it is printable UTF-8,
 * else "base64:…"), or in JSON mode one JSON object.
 */
gboolean cli_output_write_envelope(CliOutput *output, const DebEnvelope *envelope, GError **error);

/** cli_output_write_json: one JSON value on a line of its own. */
gboolean cli_output_write_json(CliOutput *output, JsonNode *node, GError **error);

/** cli_output_flush: writes out what stdio buffers and cancels a pending idle flush. */
gboolean cli_output_flush(CliOutput *output, GError **error);

/**
 * cli_payload_is_text:
 *
 * Returns: %TRUE if @data is valid UTF-8 without NUL or any control character
 *   other than tab: safe to print on a terminal and one line long.
 */
gboolean cli_payload_is_text(const guint8 *data, gsize len);

/**
 * cli_envelope_to_json:
 *
 * Returns: (transfer full) @envelope as a JSON object: topic, message_type,
 *   sender, timestamp_us, payload_type, correlation{…, tags{}}, and payload
 *   (valid UTF-8) or payload_base64.
 */
JsonNode *cli_envelope_to_json(const DebEnvelope *envelope);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(CliOutput, cli_output_free)

G_END_DECLS
