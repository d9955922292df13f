/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the audit log: the JSON line format, and appending/reopening the file. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "audit-log.h"

static JsonObject *parse_line(const char *line)
{
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        JsonNode *root;

        json_parser_load_from_data(parser, line, -1, &error);
        g_assert_no_error(error);
        root = json_parser_get_root(parser);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
        return json_object_ref(json_node_get_object(root));
}

static void test_format(void)
{
        /* 2024-05-01T12:00:00.000042Z */
        const AuditRecord record = {
                .time_us = G_GINT64_CONSTANT(1714564800000042),
                .actor = "daemoneye-agent",
                .action = "start",
                .target = "procmond",
                .payload_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                .correlation_id = "2f1c9d8e-0000-4000-8000-000000000001",
                .status = "success",
                .duration_us = 1234,
        };
        g_autofree char *line = audit_record_to_json(&record);
        g_autoptr(JsonObject) o = parse_line(line);
        g_autoptr(GList) members = json_object_get_members(o);

        g_assert_null(strchr(line, '\n'));
        /* The exact line: field order is part of the format, so `cut`/`grep` users are not surprised. */
        g_assert_cmpstr(
                line, ==,
                "{\"time\":\"2024-05-01T12:00:00.000042Z\",\"actor\":\"daemoneye-agent\","
                "\"action\":\"start\",\"target\":\"procmond\","
                "\"payload_sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
                "\"correlation_id\":\"2f1c9d8e-0000-4000-8000-000000000001\",\"status\":\"success\","
                "\"duration_us\":1234}");
        g_assert_cmpuint(g_list_length(members), ==, 8);
        g_assert_cmpint(json_object_get_int_member(o, "duration_us"), ==, 1234);
        g_assert_false(json_object_has_member(o, "error"));
}

static void test_format_error_and_escaping(void)
{
        const AuditRecord record = {
                .time_us = 0,
                .actor = "uid=1000 pid=42 \"evil\"\nname",
                .action = "graceful-shutdown",
                .target = "x",
                .payload_sha256 = NULL,
                .correlation_id = "c",
                .status = "timeout",
                .duration_us = G_MAXUINT64,
                .error = "collector x: no reply within 1000 ms\t(tab)",
        };
        g_autofree char *line = audit_record_to_json(&record);
        g_autoptr(JsonObject) o = parse_line(line);

        /* Control characters are escaped: a record is always exactly one line. */
        g_assert_null(strchr(line, '\n'));
        g_assert_null(strchr(line, '\t'));
        g_assert_cmpstr(json_object_get_string_member(o, "time"), ==, "1970-01-01T00:00:00.000000Z");
        g_assert_cmpstr(json_object_get_string_member(o, "actor"), ==, "uid=1000 pid=42 \"evil\"\nname");
        g_assert_cmpstr(json_object_get_string_member(o, "payload_sha256"), ==, "");
        g_assert_cmpstr(json_object_get_string_member(o, "status"), ==, "timeout");
        g_assert_cmpstr(json_object_get_string_member(o, "error"), ==,
                        "collector x: no reply within 1000 ms\t(tab)");
        g_assert_cmpint(json_object_get_int_member(o, "duration_us"), ==, G_MAXINT64);
}

static void test_from_rpc(void)
{
        const DebRpcCallInfo info = {
                .call_id = 7,
                .correlation_id = "first",
                .last_correlation_id = "second",
                .client_id = "daemoneye-agent",
                .target = "procmond",
                .operation = DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_HEALTH_CHECK,
                .payload_sha256 = "abc",
                .status = DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_TIMEOUT,
                .attempts = 2,
                .started_us = 1000000,
                .duration_us = 99,
        };
        g_autoptr(GError) error = g_error_new_literal(DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT, "no reply");
        AuditRecord record;

        audit_record_init_from_rpc(&record, NULL, &info, error);
        g_assert_cmpstr(record.actor, ==, "daemoneye-agent");
        g_assert_cmpstr(record.action, ==, "health-check");
        g_assert_cmpstr(record.target, ==, "procmond");
        g_assert_cmpstr(record.correlation_id, ==, "first");
        g_assert_cmpstr(record.status, ==, "timeout");
        g_assert_cmpstr(record.error, ==, "no reply");
        g_assert_cmpuint(record.duration_us, ==, 99);
        g_assert_cmpint(record.time_us, ==, 1000000);

        audit_record_init_from_rpc(&record, "uid=0 pid=1", &info, NULL);
        g_assert_cmpstr(record.actor, ==, "uid=0 pid=1");
        g_assert_null(record.error);
}

static char **read_lines(const char *path)
{
        g_autofree char *contents = NULL;
        g_autoptr(GError) error = NULL;

        g_file_get_contents(path, &contents, NULL, &error);
        g_assert_no_error(error);
        g_assert_true(g_str_has_suffix(contents, "\n"));
        contents[strlen(contents) - 1] = '\0';
        return g_strsplit(contents, "\n", -1);
}

static void test_file_append_and_reopen(void)
{
        g_autoptr(GError) error = NULL;
        g_autofree char *dir = g_dir_make_tmp("test-audit-log-XXXXXX", &error);
        g_autofree char *path = g_build_filename(dir, "audit.log", NULL);
        g_autofree char *rotated = g_build_filename(dir, "audit.log.1", NULL);
        g_autoptr(AuditLog) log = NULL;
        g_auto(GStrv) lines = NULL;
        AuditRecord record = {
                .time_us = 1, .actor = "a", .action = "stop", .target = "t", .status = "success"};
        struct stat st;
        mode_t old_umask = umask(022);

        g_assert_no_error(error);
        /* An existing file is appended to, never truncated. */
        g_assert_true(g_file_set_contents(path, "old\n", -1, NULL));
        g_assert_cmpint(g_chmod(path, 0640), ==, 0);
        log = audit_log_new(path, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(audit_log_get_path(log), ==, path);
        record.correlation_id = "one";
        audit_log_write(log, &record);
        record.correlation_id = "two";
        audit_log_write(log, &record);
        lines = read_lines(path);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
        g_assert_cmpstr(lines[0], ==, "old");
        g_assert_nonnull(strstr(lines[1], "\"correlation_id\":\"one\""));
        g_assert_nonnull(strstr(lines[2], "\"correlation_id\":\"two\""));
        g_clear_pointer(&lines, g_strfreev);

        /* logrotate: move the file away, SIGHUP → reopen creates a new one with mode 0640. */
        g_assert_cmpint(g_rename(path, rotated), ==, 0);
        g_assert_true(audit_log_reopen(log, path, &error));
        g_assert_no_error(error);
        record.correlation_id = "three";
        audit_log_write(log, &record);
        lines = read_lines(path);
        g_assert_cmpuint(g_strv_length(lines), ==, 1);
        g_assert_nonnull(strstr(lines[0], "\"correlation_id\":\"three\""));
        g_assert_cmpint(g_stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 07777, ==, 0640);
        g_clear_pointer(&lines, g_strfreev);
        lines = read_lines(rotated);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);

        /* A path that cannot be opened keeps the current file. */
        g_assert_false(audit_log_reopen(log, "/nonexistent-dir/audit.log", &error));
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        g_assert_nonnull(strstr(error->message, "/nonexistent-dir/audit.log"));
        g_assert_cmpstr(audit_log_get_path(log), ==, path);

        /* NULL: journal only. */
        g_assert_true(audit_log_reopen(log, NULL, NULL));
        g_assert_null(audit_log_get_path(log));
        audit_log_write(log, &record);

        umask(old_umask);
        g_unlink(path);
        g_unlink(rotated);
        g_rmdir(dir);
}

/* The journal line of each write must not reach stderr during the tests. */
static GLogWriterOutput quiet_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                     gpointer user_data)
{
        if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING | G_LOG_LEVEL_ERROR))
                return g_log_writer_default(level, fields, n_fields, user_data);
        return G_LOG_WRITER_HANDLED;
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_log_set_writer_func(quiet_writer, NULL, NULL);
        g_test_add_func("/audit-log/format", test_format);
        g_test_add_func("/audit-log/format-error-and-escaping", test_format_error_and_escaping);
        g_test_add_func("/audit-log/from-rpc", test_from_rpc);
        g_test_add_func("/audit-log/file-append-and-reopen", test_file_append_and_reopen);
        return g_test_run();
}
