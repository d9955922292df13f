/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <systemd/sd-event.h>

G_BEGIN_DECLS

/*
 * One GSource that drives an sd_event loop from the GLib main loop, so
 * sd-bus (attached to that sd_event) keeps its deferred callbacks, timers
 * and watchdog while the broker and the process manager share the same
 * GLib loop. prepare → sd_event_prepare(), check → sd_event_wait(e, 0),
 * dispatch → sd_event_dispatch(), polling sd_event_get_fd().
 */

/**
 * sd_event_source_glib_new:
 * @event: referenced for the life of the source
 *
 * Returns: (transfer full) the source, not attached; g_source_attach() it
 *   to the context whose loop should run @event.
 */
GSource *sd_event_source_glib_new(sd_event *event);

/**
 * sd_event_source_glib_attach:
 * @context: (nullable) %NULL for the thread-default context
 *
 * Creates the source for @event, attaches it with @priority and returns
 * its id (as g_source_attach()); the context holds the only reference.
 */
guint sd_event_source_glib_attach(sd_event *event, GMainContext *context, int priority);

G_END_DECLS
