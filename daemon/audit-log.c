/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log: see audit-log.h. Lines are built with json-glib, so any
 * string (a collector id, a D-Bus caller's name, an error message) is
 * escaped and a record is always exactly one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "audit-log.h"

struct _AuditLog {
        char *path; /* NULL: journal only */
        int fd;
        gboolean write_failed; /* a warning was logged; the next success says so */
};

/** audit_record_init_from_rpc: see audit-log.h. */
void audit_record_init_from_rpc(AuditRecord *record, const char *actor, const DebRpcCallInfo *info,
                                const GError *error)
{
        *record = (AuditRecord){
                .time_us = info->started_us,
                .actor = actor ? actor : info->client_id,
                .action = deb_rpc_operation_to_string(info->operation),
                .target = info->target,
                .payload_sha256 = info->payload_sha256,
                .correlation_id = info->correlation_id,
                .status = deb_rpc_status_to_string(info->status),
                .duration_us = info->duration_us,
                .error = error ? error->message : NULL,
        };
}

static char *format_time(gint64 time_us)
{
        g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(time_us / G_USEC_PER_SEC);
        g_autofree char *seconds = NULL;

        if (!dt)
                return g_strdup("");
        seconds = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S");
        return g_strdup_printf("%s.%06" G_GINT64_FORMAT "Z", seconds, time_us % G_USEC_PER_SEC);
}

/** audit_record_to_json: see audit-log.h. */
char *audit_record_to_json(const AuditRecord *record)
{
        g_autoptr(JsonBuilder) builder = json_builder_new();
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *time = format_time(MAX(record->time_us, 0));

        json_builder_begin_object(builder);
        json_builder_set_member_name(builder, "time");
        json_builder_add_string_value(builder, time);
        json_builder_set_member_name(builder, "actor");
        json_builder_add_string_value(builder, record->actor ? record->actor : "");
        json_builder_set_member_name(builder, "action");
        json_builder_add_string_value(builder, record->action ? record->action : "");
        json_builder_set_member_name(builder, "target");
        json_builder_add_string_value(builder, record->target ? record->target : "");
        json_builder_set_member_name(builder, "payload_sha256");
        json_builder_add_string_value(builder, record->payload_sha256 ? record->payload_sha256 : "");
        json_builder_set_member_name(builder, "correlation_id");
        json_builder_add_string_value(builder, record->correlation_id ? record->correlation_id : "");
        json_builder_set_member_name(builder, "status");
        json_builder_add_string_value(builder, record->status ? record->status : "");
        json_builder_set_member_name(builder, "duration_us");
        json_builder_add_int_value(builder, (gint64)MIN(record->duration_us, (guint64)G_MAXINT64));
        if (record->error) {
                json_builder_set_member_name(builder, "error");
                json_builder_add_string_value(builder, record->error);
        }
        json_builder_end_object(builder);

        root = json_builder_get_root(builder);
        json_generator_set_root(generator, root);
        json_generator_set_pretty(generator, FALSE);
        return json_generator_to_data(generator, NULL);
}

static int audit_log_open(const char *path, GError **error)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);

        if (fd < 0) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "audit log %s: %s", path,
                            g_strerror(errsv));
        }
        return fd;
}

/** audit_log_new: see audit-log.h. */
AuditLog *audit_log_new(const char *path, GError **error)
{
        g_autoptr(AuditLog) log = g_new0(AuditLog, 1);

        log->fd = -1;
        if (!audit_log_reopen(log, path, error))
                return NULL;
        return g_steal_pointer(&log);
}

/** audit_log_free: closes the file. */
void audit_log_free(AuditLog *log)
{
        if (!log)
                return;
        if (log->fd >= 0)
                close(log->fd);
        g_free(log->path);
        g_free(log);
}

/** audit_log_reopen: see audit-log.h. */
gboolean audit_log_reopen(AuditLog *log, const char *path, GError **error)
{
        int fd = -1;

        if (path) {
                fd = audit_log_open(path, error);
                if (fd < 0)
                        return FALSE;
        }
        if (log->fd >= 0)
                close(log->fd);
        log->fd = fd;
        g_free(log->path);
        log->path = g_strdup(path);
        log->write_failed = FALSE;
        return TRUE;
}

/** audit_log_get_path: see audit-log.h. */
const char *audit_log_get_path(AuditLog *log)
{
        return log->path;
}

/* One write(2) per line, so concurrent appenders (and readers) never see half a record. */
static int write_line(int fd, const char *line, gsize len)
{
        while (len > 0) {
                ssize_t n = write(fd, line, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                line += n;
                len -= (gsize)n;
        }
        return 0;
}

static void audit_log_journal(const AuditRecord *record, const char *json)
{
        g_autofree char *duration = g_strdup_printf("%" G_GUINT64_FORMAT, record->duration_us);
        const GLogField fields[] = {
                {"MESSAGE", json, -1},
                {"MESSAGE_ID", AUDIT_LOG_MESSAGE_ID, -1},
                {"PRIORITY", "6", -1},
                {"GLIB_DOMAIN", G_LOG_DOMAIN, -1},
                {"CORRELATION_ID", record->correlation_id ? record->correlation_id : "", -1},
                {"COLLECTOR_ID", record->target ? record->target : "", -1},
                {"RPC_OPERATION", record->action ? record->action : "", -1},
                {"RPC_STATUS", record->status ? record->status : "", -1},
                {"DURATION_US", duration, -1},
                {"AUDIT_ACTOR", record->actor ? record->actor : "", -1},
                {"PAYLOAD_SHA256", record->payload_sha256 ? record->payload_sha256 : "", -1},
        };

        g_log_structured_array(G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS(fields));
}

/** audit_log_write: see audit-log.h. */
void audit_log_write(AuditLog *log, const AuditRecord *record)
{
        g_autofree char *json = audit_record_to_json(record);
        g_autofree char *line = NULL;
        int r;

        audit_log_journal(record, json);
        if (log->fd < 0)
                return;

        line = g_strconcat(json, "\n", NULL);
        r = write_line(log->fd, line, strlen(line));
        if (r < 0 && !log->write_failed) {
                log->write_failed = TRUE;
                g_warning("audit log %s: write failed: %s; records go to the journal only until it works "
                          "again",
                          log->path, g_strerror(-r));
        } else if (r == 0 && log->write_failed) {
                log->write_failed = FALSE;
                g_message("audit log %s: writing again", log->path);
        }
}
