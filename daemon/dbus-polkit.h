/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

G_BEGIN_DECLS

/*
 * polkit authorization of privileged D-Bus methods, asynchronous, as
 * systemd does it: the handler calls dbus_polkit_verify() at its top; the
 * first time, the caller's uid is asked of the bus and (unless it is 0 or
 * the agent's own)
 * CheckAuthorization is sent to org.freedesktop.PolicyKit1, the handler
 * returns 1 ("reply comes later"), and when the answer arrives the same
 * method call is put back in sd-bus's read queue. The handler runs again,
 * and this time dbus_polkit_verify() returns the verdict kept for that one
 * message. Nothing is cached beyond it: polkit keeps auth_admin_keep.
 *
 * Fails closed: no polkitd on the bus, or any error asking it, refuses the
 * call with org.daemoneye.Error.PermissionDenied and a log line saying why.
 */
typedef struct _DbusPolkit DbusPolkit;

DbusPolkit *dbus_polkit_new(void);

/** dbus_polkit_free: drops the verdicts and queries in flight; their calls get no reply from us. */
void dbus_polkit_free(DbusPolkit *polkit);

/**
 * dbus_polkit_verify:
 * @call: the method call being handled
 * @action_id: as "org.daemoneye.collector.manage"
 * @ret_actor: (out) (optional) who the caller is for the audit log
 *   ("uid=1000 pid=4242 :1.17"), set when authorized
 * @ret_error: set when refused
 *
 * Returns: 1 when authorized (go on), 0 when the question is out (return 1
 *   from the handler; it runs again with the answer), or a negative errno
 *   with @ret_error set when refused or failed.
 */
int dbus_polkit_verify(DbusPolkit *polkit, sd_bus_message *call, const char *action_id, char **ret_actor,
                       sd_bus_error *ret_error);

/** dbus_polkit_describe_sender: Returns: (transfer full) "dbus:<sender>" for unprivileged calls' audit
 * lines. */
char *dbus_polkit_describe_sender(sd_bus_message *call);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbusPolkit, dbus_polkit_free)

G_END_DECLS
