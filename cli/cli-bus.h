/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

#include "cli.h"

G_BEGIN_DECLS

/*
 * The D-Bus side of daemoneye-cli: one synchronous sd-bus connection per
 * command, calls whose arguments and replies are GVariants (see
 * cli-variant.h), and D-Bus errors turned into #CLI_ERROR codes, so that the
 * exit code says "not running" or "not authorized" the same way for every
 * command.
 */

#define CLI_BUS_SERVICE "org.daemoneye.Agent1"
#define CLI_BUS_AGENT_PATH "/org/daemoneye/Agent1"
#define CLI_BUS_AGENT_INTERFACE "org.daemoneye.Agent1"
#define CLI_BUS_COLLECTOR_INTERFACE "org.daemoneye.Collector1"

/* sd-bus's own default (25 s): for queries. */
#define CLI_BUS_TIMEOUT_DEFAULT ((guint64)0)
/* Starting, stopping and reconfiguring a collector wait for it; a polkit password prompt may, too. */
#define CLI_BUS_TIMEOUT_LONG ((guint64)60 * G_USEC_PER_SEC)

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sd_bus_error, sd_bus_error_free)

/**
 * cli_bus_open:
 *
 * Connects to --bus-address, else the system bus ($DBUS_SYSTEM_BUS_ADDRESS
 * honoured), allowing interactive authorization unless --no-ask-password.
 * Returns: (transfer full) the bus, or %NULL with #CLI_ERROR_NOT_RUNNING
 *   (#CLI_ERROR_USAGE for a malformed address).
 */
sd_bus *cli_bus_open(const CliOptions *options, GError **error);

/**
 * cli_bus_error_classify:
 * @name: (nullable) a D-Bus error name
 * @errnum: the positive errno sd-bus returned with it
 *
 * Which #CliError a failed call is: InvalidArgs is a usage error,
 * PermissionDenied/AccessDenied/InteractiveAuthorizationRequired "not
 * authorized", ServiceUnknown/NameHasNoOwner/Disconnected and a lost
 * connection "not running"; anything else a failure.
 */
CliError cli_bus_error_classify(const char *name, int errnum);

/**
 * cli_bus_set_error:
 * @r: the negative errno of the failed sd-bus call
 *
 * Sets @error from @bus_error (or @r alone when it is not set): the code from
 * cli_bus_error_classify(), the message the agent gave.
 */
void cli_bus_set_error(GError **error, const sd_bus_error *bus_error, int r);

/** cli_bus_set_call_error: cli_bus_set_error() for a call on @bus; "not running" names its address. */
void cli_bus_set_call_error(GError **error, sd_bus *bus, const sd_bus_error *bus_error, int r);

/**
 * cli_bus_call_message:
 * @args: (nullable): a tuple of the arguments; a floating reference is sunk
 * @timeout_usec: 0 for sd-bus's default
 *
 * Calls @member of @interface on @path of org.daemoneye.Agent1.
 * Returns: (transfer full) the reply, or %NULL with a #CLI_ERROR.
 */
sd_bus_message *cli_bus_call_message(sd_bus *bus, const char *path, const char *interface,
                                     const char *member, GVariant *args, guint64 timeout_usec,
                                     GError **error);

/**
 * cli_bus_call:
 * @reply_type: (nullable) the tuple type the reply must have, e.g. "(sa{sv})"
 *
 * cli_bus_call_message(), returning the reply's body.
 * Returns: (transfer full) a tuple of the reply's values, or %NULL with an
 *   error (also when the reply is not of @reply_type).
 */
GVariant *cli_bus_call(sd_bus *bus, const char *path, const char *interface, const char *member,
                       GVariant *args, const char *reply_type, guint64 timeout_usec, GError **error);

/**
 * cli_bus_call_one:
 * @reply_type: the tuple type the reply must have, e.g. "(a{sv})"
 *
 * cli_bus_call() for the common reply of one value.
 * Returns: (transfer full) that value, or %NULL with an error.
 */
GVariant *cli_bus_call_one(sd_bus *bus, const char *path, const char *interface, const char *member,
                           GVariant *args, const char *reply_type, guint64 timeout_usec, GError **error);

/**
 * cli_bus_get_all:
 *
 * org.freedesktop.DBus.Properties.GetAll on @path.
 * Returns: (transfer full) the a{sv} of properties, or %NULL with an error.
 */
GVariant *cli_bus_get_all(sd_bus *bus, const char *path, const char *interface, GError **error);

/**
 * cli_bus_list_collectors:
 *
 * Returns: (transfer full) Agent1.ListCollectors' a(sso) of (id, state,
 *   object path), or %NULL with an error.
 */
GVariant *cli_bus_list_collectors(sd_bus *bus, GError **error);

/**
 * cli_bus_find_collector:
 *
 * Object paths are the agent's to choose: this takes the one ListCollectors
 * gives for @id rather than building it.
 * Returns: (transfer full) the object path of collector @id, or %NULL with
 *   #CLI_ERROR_FAILED naming the collectors there are.
 */
char *cli_bus_find_collector(sd_bus *bus, const char *id, GError **error);

G_END_DECLS
