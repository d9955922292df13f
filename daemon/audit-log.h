/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "deb-rpc-client.h"

G_BEGIN_DECLS

/*
 * The audit log: one JSON object per line for every RPC the agent sends and
 * its outcome,
 *
 *   {"time":"2024-05-01T12:00:00.123456Z","actor":"daemoneye-agent","action":"start",
 *    "target":"procmond","payload_sha256":"e3b0…","correlation_id":"5c1e…",
 *    "status":"success","duration_us":1234}
 *
 * with "error" added when the call failed. Each line goes to the journal
 * (MESSAGE= the line, MESSAGE_ID=AUDIT_LOG_MESSAGE_ID, and the fields
 * CORRELATION_ID, COLLECTOR_ID, RPC_OPERATION, RPC_STATUS, DURATION_US,
 * AUDIT_ACTOR, PAYLOAD_SHA256, so `journalctl MESSAGE_ID=…` lists the audit
 * trail alone) and, when [rpc] audit_log_path is set, is appended to that
 * file with a single write(2) (O_APPEND, mode 0640). audit_log_reopen() on
 * SIGHUP lets logrotate move the file away.
 */
typedef struct _AuditLog AuditLog;

/* Journal MESSAGE_ID of audit lines (sd-id128, as `systemd-id128 new` prints it). */
#define AUDIT_LOG_MESSAGE_ID "48e5127ad4ec4d1c93a6cc46dcf2b754"

typedef struct {
        gint64 time_us;             /* wall clock, microseconds since the epoch */
        const char *actor;          /* who asked: "daemoneye-agent", or a D-Bus caller */
        const char *action;         /* the operation, as deb_rpc_operation_to_string() spells it */
        const char *target;         /* the collector id */
        const char *payload_sha256; /* lower-case hex of the request payload */
        const char *correlation_id;
        const char *status;  /* "success", "error", "timeout", "in-progress" */
        guint64 duration_us; /* call made → outcome, retries included */
        const char *error;   /* (nullable) what failed, when it did */
} AuditRecord;

/**
 * audit_record_init_from_rpc:
 * @actor: who asked for the call
 * @info: the RPC client's account of the call; the record points into it
 * @error: (nullable) the call's error
 *
 * Fills @record from a finished call; valid as long as @info and @error are.
 */
void audit_record_init_from_rpc(AuditRecord *record, const char *actor, const DebRpcCallInfo *info,
                                const GError *error);

/**
 * audit_record_to_json:
 *
 * Returns: (transfer full) the record as one line of JSON, without the
 *   newline; NULL strings are written as "" except error, which is left out.
 */
char *audit_record_to_json(const AuditRecord *record);

/**
 * audit_log_new:
 * @path: (nullable) the file to append to; %NULL: the journal only
 *
 * Returns: (transfer full) the log, or %NULL with a G_FILE_ERROR naming @path.
 */
AuditLog *audit_log_new(const char *path, GError **error);

void audit_log_free(AuditLog *log);

/**
 * audit_log_reopen:
 * @path: (nullable) the file from now on; may be the same path (log rotation)
 *
 * Opens @path anew, then closes the previous file. On failure the previous
 * file stays in use.
 * Returns: %FALSE with a G_FILE_ERROR naming @path.
 */
gboolean audit_log_reopen(AuditLog *log, const char *path, GError **error);

/** audit_log_get_path: Returns: (nullable) the file written to. */
const char *audit_log_get_path(AuditLog *log);

/**
 * audit_log_write:
 *
 * Writes @record to the journal and the file. A failed write is logged as
 * a warning (once until writes succeed again); it never blocks the caller.
 */
void audit_log_write(AuditLog *log, const AuditRecord *record);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(AuditLog, audit_log_free)

G_END_DECLS
