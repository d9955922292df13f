/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli publish: one message from --data or from all of stdin, or one
 * message per stdin line (--lines), streamed with flow control so that input
 * of any size runs in bounded memory.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "cli.h"
#include "cli-line-reader.h"
#include "cli-output.h"
#include "deb-error.h"
#include "deb-topic.h"

/*
 * Stop reading stdin when this much output waits for the socket and read on
 * once it has drained to the low mark: enough in flight to keep the socket
 * busy, little enough that the publisher stays small.
 */
#define CLI_PUBLISH_HIGH_WATERMARK (1024 * 1024)
#define CLI_PUBLISH_LOW_WATERMARK (256 * 1024)
/* How long the broker may take to read what we queued before we give up. */
#define CLI_PUBLISH_FLUSH_TIMEOUT_MS 30000

typedef struct {
        char *data;
        gboolean lines;
        char *payload_type;
        char *type;
        char **tags;
        char *parent;
} PublishArgs;

static void publish_args_clear(PublishArgs *args)
{
        g_clear_pointer(&args->data, g_free);
        g_clear_pointer(&args->payload_type, g_free);
        g_clear_pointer(&args->type, g_free);
        g_clear_pointer(&args->tags, g_strfreev);
        g_clear_pointer(&args->parent, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PublishArgs, publish_args_clear)

typedef struct {
        CliConnection *connection;
        const char *topic;
        DebPublishOptions publish_options;
        CliLineReader *reader;
        GMainLoop *loop;
        guint64 published;
        GError *error; /* the first failure; ends the run */
} Publisher;

static gboolean publish_parse_type(const char *name, int *out_type, GError **error)
{
        static const struct {
                const char *name;
                int type;
        } types[] = {
                {"event", DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_EVENT},
                {"control", DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_CONTROL},
                {"heartbeat", DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HEARTBEAT},
        };

        if (!name) {
                *out_type = DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_EVENT;
                return TRUE;
        }
        for (gsize i = 0; i < G_N_ELEMENTS(types); i++) {
                if (strcmp(types[i].name, name) == 0) {
                        *out_type = types[i].type;
                        return TRUE;
                }
        }
        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--type '%s': expected event, control or heartbeat",
                    name);
        return FALSE;
}

/* Returns: (transfer full) the key, value, … list DebPublishOptions.tags wants, or NULL with an error. */
static char **publish_parse_tags(char **tags, GError **error)
{
        g_autoptr(GStrvBuilder) builder = g_strv_builder_new();

        for (char **tag = tags; tag && *tag; tag++) {
                const char *equals = strchr(*tag, '=');
                g_autofree char *key = NULL;

                if (!equals || equals == *tag) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--tag '%s': expected KEY=VALUE",
                                    *tag);
                        return NULL;
                }
                key = g_strndup(*tag, (gsize)(equals - *tag));
                g_strv_builder_add(builder, key);
                g_strv_builder_add(builder, equals + 1);
        }
        return g_strv_builder_end(builder);
}

static void publisher_fail(Publisher *publisher, GError *error)
{
        if (!publisher->error)
                publisher->error = error;
        else
                g_error_free(error);
        g_main_loop_quit(publisher->loop);
}

static void publisher_on_client_error(DebClient *client, const GError *error, gboolean fatal,
                                      gpointer user_data)
{
        Publisher *publisher = user_data;

        /* Stop on a non-fatal Error too: what the broker refused once (an ACL) it refuses every time. */
        publisher_fail(publisher,
                       g_error_new(CLI_ERROR, CLI_ERROR_FAILED, "the broker at %s %s: %s",
                                   publisher->connection->socket_path,
                                   fatal ? "closed the connection" : "refused a message", error->message));
}

static gboolean publisher_send(Publisher *publisher, const void *payload, gsize len, GError **error)
{
        if (!deb_client_publish(publisher->connection->client, publisher->topic, payload, len,
                                &publisher->publish_options, error))
                return FALSE;
        publisher->published++;
        return TRUE;
}

static gboolean publisher_on_line(CliLineReader *reader, const char *line, gsize len, guint64 line_number,
                                  gpointer user_data)
{
        Publisher *publisher = user_data;
        g_autoptr(GError) error = NULL;

        if (!publisher_send(publisher, line, len, &error)) {
                publisher_fail(publisher,
                               g_error_new(CLI_ERROR, CLI_ERROR_FAILED, "line %" G_GUINT64_FORMAT ": %s",
                                           line_number, error->message));
                return FALSE;
        }
        if (deb_client_get_pending_bytes(publisher->connection->client) > CLI_PUBLISH_HIGH_WATERMARK)
                cli_line_reader_pause(reader);
        return TRUE;
}

static void publisher_on_drain(DebClient *client, gpointer user_data)
{
        Publisher *publisher = user_data;

        if (publisher->reader)
                cli_line_reader_resume(publisher->reader);
}

static void publisher_on_input_end(CliLineReader *reader, const GError *error, gpointer user_data)
{
        Publisher *publisher = user_data;

        if (error)
                publisher_fail(publisher, g_error_copy(error));
        else
                g_main_loop_quit(publisher->loop);
}

static gboolean publisher_on_signal(gpointer user_data)
{
        Publisher *publisher = user_data;

        publisher_fail(publisher, g_error_new(CLI_ERROR, CLI_ERROR_FAILED,
                                              "interrupted after %" G_GUINT64_FORMAT " messages",
                                              publisher->published));
        return G_SOURCE_CONTINUE;
}

static gboolean publisher_run_lines(Publisher *publisher, GError **error)
{
        g_autoptr(CliLineReader) reader = NULL;
        guint sigint_id, sigterm_id;

        /* A line must fit in a frame with its envelope; one that cannot is an error, not skipped. */
        reader = cli_line_reader_new(STDIN_FILENO, publisher->connection->max_frame_bytes, publisher_on_line,
                                     publisher_on_input_end, publisher);
        publisher->reader = reader;
        deb_client_set_drain_func(publisher->connection->client, CLI_PUBLISH_LOW_WATERMARK,
                                  publisher_on_drain, publisher);
        if (!cli_line_reader_start(reader, error))
                return FALSE;

        /* Interrupting still sends what was published, and leaves stdin blocking again for the shell. */
        sigint_id = g_unix_signal_add(SIGINT, publisher_on_signal, publisher);
        sigterm_id = g_unix_signal_add(SIGTERM, publisher_on_signal, publisher);
        g_main_loop_run(publisher->loop);
        g_source_remove(sigint_id);
        g_source_remove(sigterm_id);

        deb_client_set_drain_func(publisher->connection->client, 0, NULL, NULL);
        publisher->reader = NULL;
        return TRUE;
}

/* Returns: (transfer full) all of stdin, or NULL if it is more than @max_bytes. */
static GBytes *publish_read_stdin(gsize max_bytes, GError **error)
{
        g_autoptr(GByteArray) data = g_byte_array_new();

        for (;;) {
                guint8 chunk[64 * 1024];
                ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

                if (n < 0) {
                        int saved_errno = errno;

                        if (saved_errno == EINTR)
                                continue;
                        g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot read standard input: %s",
                                    g_strerror(saved_errno));
                        return NULL;
                }
                if (n == 0)
                        break;
                /* Checked while reading, so an endless stream fails fast instead of filling memory. */
                if (data->len + (gsize)n > max_bytes) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED,
                                    "standard input is more than %zu bytes, the frame limit (use --lines to "
                                    "publish one message per line)",
                                    max_bytes);
                        return NULL;
                }
                g_byte_array_append(data, chunk, (guint)n);
        }
        return g_byte_array_free_to_bytes(g_steal_pointer(&data));
}

static gboolean publisher_finish(Publisher *publisher, gboolean json, GError **error)
{
        DebClient *client = publisher->connection->client;
        g_autoptr(GError) local_error = NULL;

        /* Even after a failure, what was published before it is delivered. */
        if (deb_client_is_connected(client) &&
            !deb_client_flush(client, CLI_PUBLISH_FLUSH_TIMEOUT_MS, &local_error))
                publisher_fail(publisher,
                               g_error_new(CLI_ERROR, CLI_ERROR_FAILED,
                                           "cannot send to the broker at %s: %s",
                                           publisher->connection->socket_path, local_error->message));
        deb_client_disconnect(client, CLI_PUBLISH_FLUSH_TIMEOUT_MS);

        if (publisher->error) {
                g_propagate_error(error, g_steal_pointer(&publisher->error));
                return FALSE;
        }
        if (json) {
                g_autoptr(CliOutput) output = cli_output_new(stdout, TRUE);
                g_autoptr(JsonBuilder) builder = json_builder_new();
                g_autoptr(JsonNode) node = NULL;

                json_builder_begin_object(builder);
                json_builder_set_member_name(builder, "published");
                json_builder_add_int_value(builder, (gint64)publisher->published);
                json_builder_end_object(builder);
                node = json_builder_get_root(builder);
                if (!cli_output_write_json(output, node, error) || !cli_output_flush(output, error))
                        return FALSE;
        }
        return TRUE;
}

gboolean cli_publish(CliOptions *options, int argc, char **argv, GError **error)
{
        g_autoptr(GOptionContext) context = g_option_context_new("publish TOPIC");
        g_auto(PublishArgs) args = {0};
        const GOptionEntry entries[] = {
                {"data", 'd', 0, G_OPTION_ARG_STRING, &args.data, "Publish STRING as the payload", "STRING"},
                {"lines", 'l', 0, G_OPTION_ARG_NONE, &args.lines,
                 "Publish each line of standard input as one message", NULL},
                {"payload-type", 0, 0, G_OPTION_ARG_STRING, &args.payload_type,
                 "Full protobuf name of the payload message (default: raw bytes)", "NAME"},
                {"type", 't', 0, G_OPTION_ARG_STRING, &args.type,
                 "Message type: event (default), control or heartbeat", "TYPE"},
                {"tag", 0, 0, G_OPTION_ARG_STRING_ARRAY, &args.tags, "Add a correlation tag (repeatable)",
                 "KEY=VALUE"},
                {"parent", 0, 0, G_OPTION_ARG_STRING, &args.parent, "Correlation id of the parent message",
                 "ID"},
                {NULL},
        };
        g_auto(GStrv) tags = NULL;
        g_autoptr(CliConnection) connection = NULL;
        g_autoptr(GMainLoop) loop = NULL;
        g_autoptr(GBytes) payload = NULL;
        Publisher publisher = {0};
        int message_type;

        g_option_context_set_summary(context, "Publish messages to TOPIC, a concrete topic (no wildcards).");
        g_option_context_set_description(
                context,
                "Without --data or --lines, all of standard input is one message.\n"
                "With --lines, each line (without its newline) is one message, streamed as it is read;\n"
                "a line too long for a frame stops the command with an error naming the line number.\n"
                "With --json, prints {\"published\": N} on success; otherwise prints nothing.");
        g_option_context_add_main_entries(context, entries, NULL);
        if (!cli_options_parse(options, context, &argc, &argv, error))
                return FALSE;

        if (argc < 2) {
                g_set_error_literal(error, CLI_ERROR, CLI_ERROR_USAGE, "publish: no topic given");
                return FALSE;
        }
        if (argc > 2) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "publish: unexpected argument '%s'", argv[2]);
                return FALSE;
        }
        if (args.data && args.lines) {
                g_set_error_literal(error, CLI_ERROR, CLI_ERROR_USAGE,
                                    "publish: --data and --lines exclude each other");
                return FALSE;
        }
        if (!deb_topic_validate(argv[1], error) || !publish_parse_type(args.type, &message_type, error))
                return FALSE;
        tags = publish_parse_tags(args.tags, error);
        if (!tags)
                return FALSE;

        /* Connect first: "agent not running" should not wait for the user to finish typing the payload. */
        connection = cli_connection_open(options, error);
        if (!connection)
                return FALSE;
        if (!args.data && !args.lines) {
                payload = publish_read_stdin(connection->max_frame_bytes, error);
                if (!payload)
                        return FALSE;
        }

        loop = g_main_loop_new(NULL, FALSE);
        publisher = (Publisher){
                .connection = connection,
                .topic = argv[1],
                .loop = loop,
                .publish_options =
                        {
                                .message_type = message_type,
                                .payload_type = args.payload_type,
                                .parent_correlation_id = args.parent,
                                .tags = tags[0] ? (const char *const *)tags : NULL,
                        },
        };
        deb_client_set_error_func(connection->client, publisher_on_client_error, &publisher);

        if (args.lines) {
                if (!publisher_run_lines(&publisher, error)) {
                        deb_client_disconnect(connection->client, 0);
                        return FALSE;
                }
        } else {
                g_autoptr(GError) local_error = NULL;
                const void *data = args.data ? args.data : g_bytes_get_data(payload, NULL);
                gsize len = args.data ? strlen(args.data) : g_bytes_get_size(payload);

                if (!publisher_send(&publisher, data, len, &local_error))
                        publisher_fail(&publisher,
                                       g_error_new(CLI_ERROR, CLI_ERROR_FAILED, "%s", local_error->message));
        }
        return publisher_finish(&publisher, options->json, error);
}
