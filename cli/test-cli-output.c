/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What watch prints: the text-or-base64 rule, the JSON shape, flushing on a
 * pipe when the loop goes idle, and a closed reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli-output.h"
#include "cli-payload.h"

typedef struct {
        const char *data;
        gsize len;
        gboolean is_text;
} TextCase;

#define T(s, text)                                                                                          \
        {                                                                                                   \
                s, sizeof(s) - 1, text                                                                      \
        }

static const TextCase text_cases[] = {
        T("", TRUE),
        T("hello", TRUE),
        T("a\tb", TRUE),
        T("héllo wörld ✓", TRUE),
        T("a\nb", FALSE), /* one message, one line */
        T("a\rb", FALSE),
        T("\x1b[31mred", FALSE), /* terminal escape */
        T("a\x7f", FALSE),       /* DEL */
        T("a\xc2\x9b"
          "b",
          FALSE), /* C1 CSI, valid UTF-8 */
        T("a\0b", FALSE),
        T("\xff\xfe", FALSE), /* not UTF-8 */
        T("caf\xc3", FALSE),  /* truncated sequence */
};

static void test_payload_is_text(void)
{
        for (gsize i = 0; i < G_N_ELEMENTS(text_cases); i++) {
                g_test_message("case %zu", i);
                g_assert_cmpint(cli_payload_is_text((const guint8 *)text_cases[i].data, text_cases[i].len),
                                ==, text_cases[i].is_text);
        }
}

static DebEnvelope *envelope_new(const char *topic, const void *payload, gsize len,
                                 DebCorrelation *correlation)
{
        DebEnvelope *envelope = g_new(DebEnvelope, 1);

        daemoneye__eventbus__envelope__init(envelope);
        envelope->topic = (char *)topic;
        envelope->message_type = DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HEARTBEAT;
        envelope->sender = (char *)"procmond";
        envelope->payload_type = (char *)"daemoneye.test.Ping";
        envelope->timestamp_us = G_GUINT64_CONSTANT(1700000000123456);
        envelope->payload.data = (uint8_t *)payload;
        envelope->payload.len = len;
        envelope->correlation = correlation;
        return envelope;
}

static JsonObject *json_object_of(JsonNode *node)
{
        g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
        return json_node_get_object(node);
}

static void test_json_fields(void)
{
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        Daemoneye__Eventbus__CorrelationMetadata__TagsEntry tags[2], *tag_ptrs[2];
        g_autofree DebEnvelope *envelope = NULL;
        g_autoptr(JsonNode) node = NULL;
        JsonObject *object, *c, *t;

        for (int i = 0; i < 2; i++) {
                daemoneye__eventbus__correlation_metadata__tags_entry__init(&tags[i]);
                tag_ptrs[i] = &tags[i];
        }
        tags[0].key = (char *)"host";
        tags[0].value = (char *)"alpha";
        tags[1].key = (char *)"bad\xff";
        tags[1].value = (char *)"v";
        correlation.correlation_id = (char *)"c-1";
        correlation.parent_correlation_id = (char *)"p-1";
        correlation.root_correlation_id = (char *)"r-1";
        correlation.sequence_number = 7;
        correlation.workflow_stage = (char *)"scan";
        correlation.n_tags = 2;
        correlation.tags = tag_ptrs;
        envelope = envelope_new("events.process.lifecycle", "héllo", strlen("héllo"), &correlation);

        node = cli_envelope_to_json(envelope);
        object = json_object_of(node);
        g_assert_cmpstr(json_object_get_string_member(object, "topic"), ==, "events.process.lifecycle");
        g_assert_cmpstr(json_object_get_string_member(object, "message_type"), ==, "heartbeat");
        g_assert_cmpstr(json_object_get_string_member(object, "sender"), ==, "procmond");
        g_assert_cmpint(json_object_get_int_member(object, "timestamp_us"), ==, 1700000000123456);
        g_assert_cmpstr(json_object_get_string_member(object, "payload_type"), ==, "daemoneye.test.Ping");
        g_assert_cmpstr(json_object_get_string_member(object, "payload"), ==, "héllo");
        g_assert_false(json_object_has_member(object, "payload_base64"));

        c = json_object_get_object_member(object, "correlation");
        g_assert_cmpstr(json_object_get_string_member(c, "correlation_id"), ==, "c-1");
        g_assert_cmpstr(json_object_get_string_member(c, "parent_correlation_id"), ==, "p-1");
        g_assert_cmpstr(json_object_get_string_member(c, "root_correlation_id"), ==, "r-1");
        g_assert_cmpint(json_object_get_int_member(c, "sequence_number"), ==, 7);
        g_assert_cmpstr(json_object_get_string_member(c, "workflow_stage"), ==, "scan");
        t = json_object_get_object_member(c, "tags");
        g_assert_cmpuint(json_object_get_size(t), ==, 2);
        g_assert_cmpstr(json_object_get_string_member(t, "host"), ==, "alpha");
        /* Invalid UTF-8 is repaired, never emitted: JSON text must be UTF-8. */
        g_assert_cmpstr(json_object_get_string_member(t, "bad\xef\xbf\xbd"), ==, "v");
}

static void test_json_binary_and_defaults(void)
{
        static const guint8 binary[] = {0x00, 0x01, 0x02, 0xff};
        g_autofree DebEnvelope *envelope = envelope_new("bin.x", binary, sizeof(binary), NULL);
        g_autoptr(JsonNode) node = cli_envelope_to_json(envelope);
        JsonObject *object = json_object_of(node), *c;

        g_assert_cmpstr(json_object_get_string_member(object, "payload_base64"), ==, "AAEC/w==");
        g_assert_false(json_object_has_member(object, "payload"));
        /* No correlation on the wire reads as proto3 defaults, in the same shape. */
        c = json_object_get_object_member(object, "correlation");
        g_assert_cmpstr(json_object_get_string_member(c, "correlation_id"), ==, "");
        g_assert_cmpint(json_object_get_int_member(c, "sequence_number"), ==, 0);
        g_assert_cmpuint(json_object_get_size(json_object_get_object_member(c, "tags")), ==, 0);
}

/* Returns: what is readable on @fd right now, without blocking. */
static char *read_available(int fd)
{
        GString *s = g_string_new(NULL);
        char buf[4096];
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0)
                g_string_append_len(s, buf, n);
        g_assert_true(n == 0 || errno == EAGAIN);
        return g_string_free(s, FALSE);
}

static void test_pipe_flushes_when_idle(void)
{
        static const guint8 binary[] = {'a', '\n', 'b'};
        g_autofree DebEnvelope *text = envelope_new("t.x", "hi there", 8, NULL);
        g_autofree DebEnvelope *lines = envelope_new("t.y", binary, sizeof(binary), NULL);
        g_autoptr(CliOutput) output = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *before = NULL, *after = NULL;
        FILE *stream;
        int fds[2];

        g_assert_no_errno(pipe2(fds, O_NONBLOCK));
        stream = fdopen(fds[1], "w");
        g_assert_nonnull(stream);
        output = cli_output_new(stream, FALSE);

        g_assert_true(cli_output_write_envelope(output, text, &error));
        g_assert_true(cli_output_write_envelope(output, lines, &error));
        g_assert_no_error(error);
        /* Buffered: a write(2) per message is what a busy pipe must not cost. */
        before = read_available(fds[0]);
        g_assert_cmpstr(before, ==, "");

        while (g_main_context_iteration(NULL, FALSE))
                ;
        after = read_available(fds[0]);
        g_assert_cmpstr(after, ==, "t.x hi there\nt.y base64:YQpi\n");

        g_clear_pointer(&output, cli_output_free);
        fclose(stream);
        close(fds[0]);
}

static void test_closed_reader(void)
{
        g_autofree DebEnvelope *envelope = envelope_new("t.x", "x", 1, NULL);
        g_autoptr(CliOutput) output = NULL;
        g_autoptr(GError) error = NULL;
        FILE *stream;
        int fds[2];

        g_assert_no_errno(pipe(fds));
        close(fds[0]);
        stream = fdopen(fds[1], "w");
        g_assert_nonnull(stream);
        output = cli_output_new(stream, TRUE);

        g_assert_true(cli_output_write_envelope(output, envelope, &error));
        g_assert_false(cli_output_flush(output, &error));
        g_assert_error(error, CLI_ERROR, CLI_ERROR_OUTPUT_CLOSED);
        g_clear_error(&error);
        /* Sticky: nothing more is attempted on a dead stream. */
        g_assert_false(cli_output_write_envelope(output, envelope, &error));
        g_assert_error(error, CLI_ERROR, CLI_ERROR_OUTPUT_CLOSED);

        g_clear_pointer(&output, cli_output_free);
        fclose(stream);
}

/* procmond's events read as JSON field by field; anything else is left alone. */
static void test_payload_decoded(void)
{
        Daemoneye__Eventbus__ProcessInfo info = DAEMONEYE__EVENTBUS__PROCESS_INFO__INIT;
        Daemoneye__Eventbus__ProcessLifecycleEvent event =
                DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_EVENT__INIT;
        char *cmdline[] = {(char *)"sleep", (char *)"10"};
        guint8 buf[256];
        gsize len;
        g_autoptr(JsonNode) node = NULL;
        JsonObject *object, *process;
        JsonArray *args;

        info.pid = 4242;
        info.ppid = 1;
        info.comm = (char *)"sleep";
        info.exe = (char *)"/usr/bin/sleep";
        info.n_cmdline = 2;
        info.cmdline = cmdline;
        info.start_time_us = G_GUINT64_CONSTANT(1795544051266470);
        event.kind = DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_KIND__PROCESS_LIFECYCLE_KIND_START;
        event.process = &info;
        len = daemoneye__eventbus__process_lifecycle_event__pack(&event, buf);

        node = cli_payload_to_json("daemoneye.eventbus.ProcessLifecycleEvent", buf, len);
        g_assert_nonnull(node);
        object = json_node_get_object(node);
        g_assert_cmpstr(json_object_get_string_member(object, "kind"), ==, "PROCESS_LIFECYCLE_KIND_START");
        g_assert_false(
                json_object_has_member(object, "exit_observed_us")); /* default: not sent, not shown */
        process = json_object_get_object_member(object, "process");
        g_assert_cmpint(json_object_get_int_member(process, "pid"), ==, 4242);
        g_assert_cmpint(json_object_get_int_member(process, "start_time_us"), ==, 1795544051266470);
        g_assert_cmpstr(json_object_get_string_member(process, "exe"), ==, "/usr/bin/sleep");
        args = json_object_get_array_member(process, "cmdline");
        g_assert_cmpuint(json_array_get_length(args), ==, 2);
        g_assert_cmpstr(json_array_get_string_element(args, 1), ==, "10");

        /* Not our schema, or bytes that do not decode: no JSON, the caller shows base64. */
        g_assert_null(cli_payload_to_json("com.example.Other", buf, len));
        g_assert_null(cli_payload_to_json(NULL, buf, len));
        g_assert_null(cli_payload_to_json("daemoneye.eventbus.ProcessLifecycleEvent",
                                          (const guint8 *)"\x12\xff", 2));
}

int main(int argc, char **argv)
{
        signal(SIGPIPE, SIG_IGN);
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli/output/payload-is-text", test_payload_is_text);
        g_test_add_func("/cli/output/json-fields", test_json_fields);
        g_test_add_func("/cli/output/json-binary-and-defaults", test_json_binary_and_defaults);
        g_test_add_func("/cli/output/pipe-flushes-when-idle", test_pipe_flushes_when_idle);
        g_test_add_func("/cli/output/closed-reader", test_closed_reader);
        g_test_add_func("/cli/output/payload-decoded", test_payload_decoded);
        return g_test_run();
}
