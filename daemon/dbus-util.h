/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

G_BEGIN_DECLS

/*
 * What the D-Bus front needs between sd-bus messages, GVariant and GError:
 * our values are built as GVariant (broker metrics, RPC results) and copied
 * into sd-bus messages; a{sv} arguments are read into GVariant; errors from
 * the process manager and the RPC layer become org.daemoneye.Error.*.
 */

#define DBUS_ERROR_PREFIX "org.daemoneye.Error."
#define DBUS_ERROR_TIMEOUT DBUS_ERROR_PREFIX "Timeout"
#define DBUS_ERROR_NOT_FOUND DBUS_ERROR_PREFIX "NotFound"
#define DBUS_ERROR_INVALID_OPERATION DBUS_ERROR_PREFIX "InvalidOperation"
#define DBUS_ERROR_EXECUTION DBUS_ERROR_PREFIX "ExecutionError"
#define DBUS_ERROR_COMMUNICATION DBUS_ERROR_PREFIX "CommunicationError"
#define DBUS_ERROR_INVALID_ARGS DBUS_ERROR_PREFIX "InvalidArgs"
#define DBUS_ERROR_PERMISSION_DENIED DBUS_ERROR_PREFIX "PermissionDenied"

/**
 * dbus_append_gvariant:
 *
 * Appends @value to @m as its own D-Bus type (a "a{sv}" GVariant becomes an
 * a{sv} argument, not a variant). Maybe and handle types are refused.
 * Returns: 0, or a negative errno.
 */
int dbus_append_gvariant(sd_bus_message *m, GVariant *value);

/**
 * dbus_read_gvariant:
 * @type: the D-Bus signature of the one complete type to read
 *
 * Reads one value of @type from @m. Unix fds are refused (-EINVAL).
 * Returns: 0 with a floating-free (full) reference in @ret, or a negative errno.
 */
int dbus_read_gvariant(sd_bus_message *m, const char *type, GVariant **ret);

/** dbus_error_name_for: Returns: the org.daemoneye.Error.* name for a process manager or RPC error. */
const char *dbus_error_name_for(const GError *error);

/**
 * dbus_reply_gerror:
 *
 * Replies to @call with dbus_error_name_for(@error) and its message.
 * Returns: what sd_bus_reply_method_error() returns.
 */
int dbus_reply_gerror(sd_bus_message *call, const GError *error);

/**
 * dbus_reply_gvariant:
 * @value: a tuple (the reply's arguments) or one value (the one argument)
 *
 * Returns: what sending the reply to @call returns.
 */
int dbus_reply_gvariant(sd_bus_message *call, GVariant *value);

G_END_DECLS
