/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "broker.h"
#include "process-manager.h"

G_BEGIN_DECLS

/*
 * The D-Bus front: org.daemoneye.Agent1 on the system bus (sd-bus, attached
 * to an sd_event that one GSource drives from the GLib loop). Objects:
 *
 *   /org/daemoneye/Agent1                      org.daemoneye.Agent1, ObjectManager
 *   /org/daemoneye/Agent1/collector/<escaped>  org.daemoneye.Collector1, one per collector
 *
 * Read-only methods and properties are open to everyone (the bus policy lets
 * anyone call); the others are authorized by polkit (dbus-polkit.h). Every
 * method answers asynchronously: nothing waits for a collector.
 */
typedef struct _DbusFront DbusFront;

typedef enum {
        DBUS_FRONT_BUS_SYSTEM,  /* $DBUS_SYSTEM_BUS_ADDRESS or the standard socket */
        DBUS_FRONT_BUS_SESSION, /* for development */
        DBUS_FRONT_BUS_ADDRESS, /* an explicit address (--bus-address) */
} DbusFrontBusType;

/* What the front asks of the agent. */
typedef struct {
        /* Agent1.Reload(): reload as SIGHUP does; %FALSE with an error when the new configuration is
         * refused. */
        gboolean (*reload)(gpointer user_data, GError **error);
        /* Agent1.Shutdown(): begin stopping, as SIGTERM does. */
        void (*shutdown)(gpointer user_data);
        /* org.daemoneye.Agent1 is ours (READY=1 time). */
        void (*name_acquired)(gpointer user_data);
        /*
         * The front is of no further use: the name could not be had or was
         * taken (@disconnected FALSE), or the connection closed (TRUE).
         */
        void (*lost)(gpointer user_data, gboolean disconnected, const char *why);
        gpointer user_data;
} DbusFrontHooks;

#define DBUS_FRONT_SERVICE "org.daemoneye.Agent1"
#define DBUS_FRONT_AGENT_PATH "/org/daemoneye/Agent1"
#define DBUS_FRONT_AGENT_INTERFACE "org.daemoneye.Agent1"
#define DBUS_FRONT_COLLECTOR_PREFIX "/org/daemoneye/Agent1/collector"
#define DBUS_FRONT_COLLECTOR_INTERFACE "org.daemoneye.Collector1"

/**
 * dbus_front_new:
 * @address: (nullable) for %DBUS_FRONT_BUS_ADDRESS
 * @broker, @pm: must outlive the front
 *
 * Connects, registers the objects and asks for the name (the answer comes
 * through @hooks).
 * Returns: (transfer full) the front, or %NULL with an error naming the bus.
 */
DbusFront *dbus_front_new(DbusFrontBusType type, const char *address, Broker *broker, ProcessManager *pm,
                          const DbusFrontHooks *hooks, GError **error);

/** dbus_front_free: flushes what is queued (replies, signals) and closes the connection. */
void dbus_front_free(DbusFront *front);

/** dbus_front_set_state: the Agent1 State property: "starting", "running", "reloading", "stopping". */
void dbus_front_set_state(DbusFront *front, const char *state);

/** dbus_front_collectors_changed: collectors may have been added or removed (a reload). */
void dbus_front_collectors_changed(DbusFront *front);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbusFront, dbus_front_free)

G_END_DECLS
