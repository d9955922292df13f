/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What dbus-front.c (Agent1), dbus-collector.c (Collector1) and dbus-health.c share. */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "dbus-front.h"
#include "dbus-polkit.h"

/* One Collector1 object, with the property values last announced. */
typedef struct {
        DbusFront *front;
        char *id;
        char *path;
        gboolean announced; /* InterfacesAdded sent */
        CollectorState state;
        char *health;
        guint32 pid;
        guint32 restart_count;
        guint64 last_heartbeat;
        guint64 events_published;
} FrontCollector;

struct _DbusFront {
        sd_bus *bus;
        sd_event *event;
        guint event_source; /* the GSource driving @event */
        Broker *broker;
        ProcessManager *pm;
        DbusFrontHooks hooks;
        DbusPolkit *polkit;

        guint state_func;
        GHashTable *collectors; /* id → FrontCollector */
        char *state;
        guint64 start_time_us;
        char *health_status; /* the overall status last announced by HealthChanged */
        GSource *health_timer;
        /* For the error-rate check: counters at the previous health evaluation. */
        guint64 last_dropped, last_protocol_errors;
        gint64 last_health_us;
        gboolean errors_rising;
        gboolean lost;
};

/* dbus-collector.c */
extern const sd_bus_vtable dbus_collector_vtable[];
int dbus_collector_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                        sd_bus_error *error);
int dbus_collector_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                             sd_bus_error *error);
void front_collector_free(FrontCollector *fc);
/* Adds and removes Collector1 objects to match the process manager, announcing them. */
void dbus_collector_sync(DbusFront *front);
/* Emits PropertiesChanged for what differs from the values last announced. */
void dbus_collector_refresh(DbusFront *front, FrontCollector *fc);
/* "healthy", "degraded", "unhealthy" or "unknown", from what the agent sees of it. */
const char *dbus_collector_health(const ProcessManagerCollectorInfo *info);

/* dbus-health.c */
/* Returns: (transfer full) the (s, a{sv}) of Agent1.GetHealth. */
GVariant *dbus_health_evaluate(DbusFront *front);
