/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli-output.h"
#include "cli-payload.h"

struct _CliOutput {
        FILE *stream;
        gboolean json;
        gboolean is_tty;
        int errnum; /* first write error; the stream is useless after it */
        guint idle_id;
        JsonGenerator *generator;
        GString *text; /* reused for each JSON line */
        CliOutputErrorFunc error_func;
        gpointer error_data;
};

CliOutput *cli_output_new(FILE *stream, gboolean json)
{
        CliOutput *output = g_new0(CliOutput, 1);

        output->stream = stream;
        output->json = json;
        output->is_tty = isatty(fileno(stream));
        output->generator = json_generator_new();
        output->text = g_string_sized_new(512);
        return output;
}

void cli_output_free(CliOutput *output)
{
        if (!output)
                return;
        g_clear_handle_id(&output->idle_id, g_source_remove);
        g_object_unref(output->generator);
        g_string_free(output->text, TRUE);
        g_free(output);
}

void cli_output_set_error_func(CliOutput *output, CliOutputErrorFunc func, gpointer user_data)
{
        output->error_func = func;
        output->error_data = user_data;
}

static gboolean output_error(CliOutput *output, GError **error)
{
        if (output->errnum == EPIPE)
                g_set_error_literal(error, CLI_ERROR, CLI_ERROR_OUTPUT_CLOSED, "standard output was closed");
        else
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot write to standard output: %s",
                            g_strerror(output->errnum));
        return FALSE;
}

static gboolean output_put(CliOutput *output, const void *data, gsize len)
{
        if (output->errnum != 0)
                return FALSE;
        if (len > 0 && fwrite(data, 1, len, output->stream) != len) {
                output->errnum = errno != 0 ? errno : EIO;
                return FALSE;
        }
        return TRUE;
}

gboolean cli_output_flush(CliOutput *output, GError **error)
{
        g_clear_handle_id(&output->idle_id, g_source_remove);
        if (output->errnum == 0 && fflush(output->stream) != 0)
                output->errnum = errno != 0 ? errno : EIO;
        if (output->errnum != 0)
                return output_error(output, error);
        return TRUE;
}

static gboolean output_idle_flush(gpointer user_data)
{
        CliOutput *output = user_data;
        g_autoptr(GError) error = NULL;

        output->idle_id = 0;
        if (!cli_output_flush(output, &error) && output->error_func)
                output->error_func(output, error, output->error_data);
        return G_SOURCE_REMOVE;
}

/* Ends a message: a terminal sees it now, a pipe when the loop has nothing else to do. */
static gboolean output_end_message(CliOutput *output, GError **error)
{
        if (output->errnum != 0)
                return output_error(output, error);
        if (output->is_tty)
                return cli_output_flush(output, error);
        if (output->idle_id == 0)
                output->idle_id = g_idle_add(output_idle_flush, output);
        return TRUE;
}

gboolean cli_payload_is_text(const guint8 *data, gsize len)
{
        const char *p = (const char *)data;
        const char *end = p + len;

        if (len == 0)
                return TRUE;
        /* Rejects NUL too, so the text is also a C string's worth of characters. */
        if (!g_utf8_validate_len(p, len, NULL))
                return FALSE;
        while (p < end) {
                gunichar c = g_utf8_get_char(p);

                /* Cc covers C0, DEL and C1: escape sequences must not reach a terminal. */
                if (c != '\t' && g_unichar_iscntrl(c))
                        return FALSE;
                p = g_utf8_next_char(p);
        }
        return TRUE;
}

static const char *str_or_empty(const char *s)
{
        return s ? s : "";
}

/* JSON text must be UTF-8, and protobuf-c does not check string fields: repair rather than emit garbage. */
static void json_add_string(JsonBuilder *builder, const char *name, const char *value)
{
        value = str_or_empty(value);
        json_builder_set_member_name(builder, name);
        if (g_utf8_validate(value, -1, NULL)) {
                json_builder_add_string_value(builder, value);
        } else {
                g_autofree char *valid = g_utf8_make_valid(value, -1);

                json_builder_add_string_value(builder, valid);
        }
}

static void json_add_uint(JsonBuilder *builder, const char *name, guint64 value)
{
        json_builder_set_member_name(builder, name);
        json_builder_add_int_value(builder, (gint64)MIN(value, (guint64)G_MAXINT64));
}

static void json_add_correlation(JsonBuilder *builder, const DebCorrelation *correlation)
{
        /* An absent correlation reads as proto3 defaults, so every object has the same shape. */
        static const DebCorrelation empty = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;

        if (!correlation)
                correlation = &empty;

        json_builder_set_member_name(builder, "correlation");
        json_builder_begin_object(builder);
        json_add_string(builder, "correlation_id", correlation->correlation_id);
        json_add_string(builder, "parent_correlation_id", correlation->parent_correlation_id);
        json_add_string(builder, "root_correlation_id", correlation->root_correlation_id);
        json_add_uint(builder, "sequence_number", correlation->sequence_number);
        json_add_string(builder, "workflow_stage", correlation->workflow_stage);
        json_builder_set_member_name(builder, "tags");
        json_builder_begin_object(builder);
        for (size_t i = 0; i < correlation->n_tags; i++) {
                const char *key = str_or_empty(correlation->tags[i]->key);
                g_autofree char *valid_key =
                        g_utf8_validate(key, -1, NULL) ? NULL : g_utf8_make_valid(key, -1);

                json_add_string(builder, valid_key ? valid_key : key, correlation->tags[i]->value);
        }
        json_builder_end_object(builder);
        json_builder_end_object(builder);
}

JsonNode *cli_envelope_to_json(const DebEnvelope *envelope)
{
        g_autoptr(JsonBuilder) builder = json_builder_new();
        const char *payload = (const char *)envelope->payload.data;
        gsize payload_len = envelope->payload.len;

        json_builder_begin_object(builder);
        json_add_string(builder, "topic", envelope->topic);
        json_add_string(builder, "message_type", deb_message_type_to_string(envelope->message_type));
        json_add_string(builder, "sender", envelope->sender);
        json_add_uint(builder, "timestamp_us", envelope->timestamp_us);
        json_add_string(builder, "payload_type", envelope->payload_type);
        json_add_correlation(builder, envelope->correlation);
        if (payload_len == 0) {
                json_builder_set_member_name(builder, "payload");
                json_builder_add_string_value(builder, "");
        } else if (g_utf8_validate_len(payload, payload_len, NULL)) {
                g_autofree char *text = g_strndup(payload, payload_len);

                json_builder_set_member_name(builder, "payload");
                json_builder_add_string_value(builder, text);
        } else {
                g_autofree char *encoded = g_base64_encode(envelope->payload.data, payload_len);
                JsonNode *decoded =
                        cli_payload_to_json(envelope->payload_type, envelope->payload.data, payload_len);

                json_builder_set_member_name(builder, "payload_base64");
                json_builder_add_string_value(builder, encoded);
                /* Our own schema's messages, field by field (procmond's events). */
                if (decoded) {
                        json_builder_set_member_name(builder, "payload_decoded");
                        json_builder_add_value(builder, decoded);
                }
        }
        json_builder_end_object(builder);
        return json_builder_get_root(builder);
}

gboolean cli_output_write_json(CliOutput *output, JsonNode *node, GError **error)
{
        json_generator_set_root(output->generator, node);
        g_string_truncate(output->text, 0);
        json_generator_to_gstring(output->generator, output->text);
        g_string_append_c(output->text, '\n');
        output_put(output, output->text->str, output->text->len);
        return output_end_message(output, error);
}

gboolean cli_output_write_envelope(CliOutput *output, const DebEnvelope *envelope, GError **error)
{
        const guint8 *payload = envelope->payload.data;
        gsize payload_len = envelope->payload.len;
        const char *topic = str_or_empty(envelope->topic);

        if (output->json) {
                g_autoptr(JsonNode) node = cli_envelope_to_json(envelope);

                return cli_output_write_json(output, node, error);
        }

        output_put(output, topic, strlen(topic));
        output_put(output, " ", 1);
        if (cli_payload_is_text(payload, payload_len)) {
                output_put(output, payload, payload_len);
        } else if (cli_payload_descriptor(envelope->payload_type)) {
                g_autoptr(JsonNode) decoded =
                        cli_payload_to_json(envelope->payload_type, payload, payload_len);
                g_autofree char *text = decoded ? json_to_string(decoded, FALSE) : NULL;

                if (text) {
                        output_put(output, text, strlen(text));
                } else {
                        g_autofree char *encoded = g_base64_encode(payload, payload_len);

                        output_put(output, "base64:", strlen("base64:"));
                        output_put(output, encoded, strlen(encoded));
                }
        } else {
                g_autofree char *encoded = g_base64_encode(payload, payload_len);

                output_put(output, "base64:", strlen("base64:"));
                output_put(output, encoded, strlen(encoded));
        }
        output_put(output, "\n", 1);
        return output_end_message(output, error);
}
