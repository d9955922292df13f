/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The systemd backend: each collector instance is its own socket-activated
 * unit (daemoneye-<id>.service + .socket, or the [collector] unit=). Starting
 * one is StartUnit and waiting for its job (JobRemoved), then reading its
 * MainPID and connecting to its socket; its end is seen in the unit's
 * PropertiesChanged (ActiveState inactive/failed) with ExecMainCode/Status as
 * the wait status; terminate is StopUnit, kill is KillUnit(SIGKILL). Restart
 * policy stays the process manager's (the units say Restart=no).
 *
 * All calls to org.freedesktop.systemd1 are asynchronous, on an sd-bus
 * connection of our own driven from the GLib loop like the D-Bus front's.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "collector-backend.h"
#include "sd-event-source.h"

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define SYSTEMD_UNIT "org.freedesktop.systemd1.Unit"
#define SYSTEMD_SERVICE_IFACE "org.freedesktop.systemd1.Service"

/* CLD_* of ExecMainCode */
#define EXEC_CODE_EXITED 1
#define EXEC_CODE_KILLED 2
#define EXEC_CODE_DUMPED 3

typedef struct _SystemdBackend SystemdBackend;

typedef struct {
        SystemdBackend *backend;
        char *id;
        char *unit;        /* daemoneye-<id>.service */
        char *unit_path;   /* its object path, once known */
        char *socket_path; /* the instance's socket, which the .socket unit listens on */
        GPid pid;          /* MainPID while running, else 0 */
        gboolean running;  /* launched and its end not reported yet */
        sd_bus_slot *properties_match;
        sd_bus_slot *call; /* the launch's call in flight */
        char *job;         /* StartUnit's job, until JobRemoved */
        CollectorLaunchFunc func;
        gpointer func_data;
        GDestroyNotify func_destroy;
} SystemdUnit;

struct _SystemdBackend {
        CollectorBackend base;
        sd_bus *bus;
        sd_event *event;
        guint event_source;
        GHashTable *units;  /* id → SystemdUnit */
        gboolean connected; /* FALSE after the bus went away, until a reconnect works */
        gboolean freeing;   /* systemd_free(): no more events to the process manager */
        GSource *reconnect; /* retrying the bus connection */
};

static gboolean backend_connect(SystemdBackend *b, GError **error);

static void unit_free(SystemdUnit *u)
{
        sd_bus_slot_unref(u->properties_match);
        sd_bus_slot_unref(u->call);
        if (u->func_destroy)
                u->func_destroy(u->func_data);
        g_free(u->id);
        g_free(u->unit);
        g_free(u->unit_path);
        g_free(u->socket_path);
        g_free(u->job);
        g_free(u);
}

static SystemdUnit *unit_get(SystemdBackend *b, const char *id)
{
        SystemdUnit *u = g_hash_table_lookup(b->units, id);

        if (!u) {
                u = g_new0(SystemdUnit, 1);
                u->backend = b;
                u->id = g_strdup(id);
                g_hash_table_insert(b->units, u->id, u);
        }
        return u;
}

/* Ends the launch in flight: @fd (transfer full) or @error. */
static void launch_finish(SystemdUnit *u, int fd, const GError *error)
{
        CollectorLaunchFunc func = u->func;
        gpointer data = u->func_data;
        GDestroyNotify destroy = u->func_destroy;

        u->func = NULL;
        u->func_data = NULL;
        u->func_destroy = NULL;
        u->call = sd_bus_slot_unref(u->call);
        g_clear_pointer(&u->job, g_free);
        if (error)
                g_message("collector %s: %s", u->id, error->message);
        if (func)
                func(&u->backend->base, fd, fd >= 0 ? u->pid : 0, error, data);
        else if (fd >= 0)
                close(fd);
        if (destroy)
                destroy(data);
}

static void launch_fail(SystemdUnit *u, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void launch_fail(SystemdUnit *u, const char *format, ...)
{
        g_autoptr(GError) error = NULL;
        va_list args;

        va_start(args, format);
        error = g_error_new_valist(G_FILE_ERROR, G_FILE_ERROR_FAILED, format, args);
        va_end(args);
        launch_finish(u, -1, error);
}

static int unit_connect(SystemdUnit *u)
{
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        int fd;

        if (strlen(u->socket_path) >= sizeof(addr.sun_path)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        strcpy(addr.sun_path, u->socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -1;
        /* A listening Unix socket accepts at once (or refuses when its backlog is full): no waiting here. */
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
                int errsv = errno;

                close(fd);
                errno = errsv;
                return -1;
        }
        return fd;
}

static int wait_status_of(int code, int status)
{
        switch (code) {
        case EXEC_CODE_EXITED:
                return (status & 0xff) << 8;
        case EXEC_CODE_KILLED:
                return status & 0x7f;
        case EXEC_CODE_DUMPED:
                return (status & 0x7f) | 0x80;
        default:
                return -1;
        }
}

static int on_exec_main(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        SystemdUnit *u = userdata;
        CollectorBackend *base = &u->backend->base;
        int code = 0, status = 0;
        GPid pid = u->pid;

        u->call = sd_bus_slot_unref(u->call);
        /* GetAll of the Service interface: only ExecMainCode and ExecMainStatus matter here. */
        if (!sd_bus_message_is_method_error(reply, NULL) &&
            sd_bus_message_enter_container(reply, 'a', "{sv}") > 0) {
                while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                        const char *name = NULL;
                        int r;

                        if (sd_bus_message_read(reply, "s", &name) <= 0)
                                break;
                        if (g_str_equal(name, "ExecMainCode"))
                                r = sd_bus_message_read(reply, "v", "i", &code);
                        else if (g_str_equal(name, "ExecMainStatus"))
                                r = sd_bus_message_read(reply, "v", "i", &status);
                        else
                                r = sd_bus_message_skip(reply, "v");
                        if (r < 0 || sd_bus_message_exit_container(reply) < 0)
                                break;
                }
        }
        u->running = FALSE;
        u->pid = 0;
        base->events.exited(base, u->id, pid, wait_status_of(code, status), base->user_data);
        return 0;
}

/* The unit is no longer active: tell how its main process ended. */
static void unit_gone(SystemdUnit *u)
{
        int r;

        if (!u->running || u->call)
                return;
        r = sd_bus_call_method_async(u->backend->bus, &u->call, SYSTEMD_SERVICE, u->unit_path,
                                     "org.freedesktop.DBus.Properties", "GetAll", on_exec_main, u, "s",
                                     SYSTEMD_SERVICE_IFACE);
        if (r < 0) {
                CollectorBackend *base = &u->backend->base;
                GPid pid = u->pid;

                u->running = FALSE;
                u->pid = 0;
                base->events.exited(base, u->id, pid, -1, base->user_data);
        }
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        SystemdUnit *u = userdata;
        const char *interface = NULL;
        int r;

        r = sd_bus_message_read(m, "s", &interface);
        if (r <= 0 || !g_str_equal(interface, SYSTEMD_UNIT))
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *name = NULL, *state = NULL;

                if (sd_bus_message_read(m, "s", &name) <= 0)
                        return 0;
                if (g_str_equal(name, "ActiveState")) {
                        if (sd_bus_message_read(m, "v", "s", &state) <= 0)
                                return 0;
                        g_debug("collector %s: %s is %s", u->id, u->unit, state);
                        if (g_str_equal(state, "inactive") || g_str_equal(state, "failed"))
                                unit_gone(u);
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

static int on_main_pid(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        SystemdUnit *u = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        guint32 pid = 0;
        int fd;

        u->call = sd_bus_slot_unref(u->call);
        if (error) {
                launch_fail(u, "cannot read the main pid of %s: %s", u->unit, error->message);
                return 0;
        }
        if (sd_bus_message_read(reply, "v", "u", &pid) <= 0 || pid == 0) {
                launch_fail(u, "%s started but has no main process", u->unit);
                return 0;
        }
        fd = unit_connect(u);
        if (fd < 0) {
                launch_fail(u, "%s runs as pid %u but its socket %s refuses: %s", u->unit, pid,
                            u->socket_path, g_strerror(errno));
                return 0;
        }
        u->pid = (GPid)pid;
        u->running = TRUE;
        launch_finish(u, fd, NULL);
        return 0;
}

static int on_get_unit(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        SystemdUnit *u = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        const char *path = NULL;
        int r;

        u->call = sd_bus_slot_unref(u->call);
        if (error || sd_bus_message_read(reply, "o", &path) <= 0) {
                launch_fail(u, "cannot find %s after its start: %s", u->unit,
                            error ? error->message : "bad reply");
                return 0;
        }
        if (g_strcmp0(u->unit_path, path) != 0) {
                g_free(u->unit_path);
                u->unit_path = g_strdup(path);
                u->properties_match = sd_bus_slot_unref(u->properties_match);
        }
        if (!u->properties_match) {
                r = sd_bus_match_signal_async(u->backend->bus, &u->properties_match, SYSTEMD_SERVICE, path,
                                              "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                              on_properties_changed, NULL, u);
                if (r < 0) {
                        launch_fail(u, "cannot watch %s: %s", u->unit, g_strerror(-r));
                        return 0;
                }
        }
        r = sd_bus_call_method_async(u->backend->bus, &u->call, SYSTEMD_SERVICE, path,
                                     "org.freedesktop.DBus.Properties", "Get", on_main_pid, u, "ss",
                                     SYSTEMD_SERVICE_IFACE, "MainPID");
        if (r < 0)
                launch_fail(u, "cannot ask for the main pid of %s: %s", u->unit, g_strerror(-r));
        return 0;
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        SystemdBackend *b = userdata;
        const char *job = NULL, *unit = NULL, *result = NULL;
        GHashTableIter iter;
        SystemdUnit *u;
        guint32 id;
        int r;

        if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) <= 0)
                return 0;
        g_hash_table_iter_init(&iter, b->units);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&u)) {
                if (!u->job || !g_str_equal(u->job, job))
                        continue;
                g_clear_pointer(&u->job, g_free);
                if (!g_str_equal(result, "done")) {
                        launch_fail(u,
                                    "systemd could not start %s: its start job ended '%s' (see journalctl "
                                    "-u %s)",
                                    unit, result, unit);
                        return 0;
                }
                r = sd_bus_call_method_async(b->bus, &u->call, SYSTEMD_SERVICE, SYSTEMD_PATH,
                                             SYSTEMD_MANAGER, "GetUnit", on_get_unit, u, "s", u->unit);
                if (r < 0)
                        launch_fail(u, "cannot look up %s: %s", u->unit, g_strerror(-r));
                return 0;
        }
        return 0;
}

static int on_start_unit(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        SystemdUnit *u = userdata;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        const char *job = NULL;

        u->call = sd_bus_slot_unref(u->call);
        if (error) {
                launch_fail(u, "StartUnit %s: %s", u->unit, error->message);
                return 0;
        }
        if (sd_bus_message_read(reply, "o", &job) <= 0) {
                launch_fail(u, "StartUnit %s: a reply without a job", u->unit);
                return 0;
        }
        u->job = g_strdup(job);
        return 0;
}

static void systemd_launch_async(CollectorBackend *backend, const CollectorLaunch *launch,
                                 CollectorLaunchFunc func, gpointer user_data, GDestroyNotify destroy)
{
        SystemdBackend *b = (SystemdBackend *)backend;
        SystemdUnit *u = unit_get(b, launch->id);
        int r;

        if (u->func) /* not reached: the process manager starts one process at a time */
                launch_fail(u, "superseded by a new start");
        g_free(u->unit);
        u->unit = launch->config->unit ? g_strdup(launch->config->unit)
                                       : g_strdup_printf("daemoneye-%s.service", launch->id);
        g_free(u->socket_path);
        u->socket_path = g_strdup(launch->socket_path);
        u->func = func;
        u->func_data = user_data;
        u->func_destroy = destroy;
        g_message("collector %s: starting %s (socket %s)", u->id, u->unit, u->socket_path);
        if (!b->connected) {
                launch_fail(u, "cannot start %s: systemd is not reachable on the system bus (reconnecting)",
                            u->unit);
                return;
        }
        r = sd_bus_call_method_async(b->bus, &u->call, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                     "StartUnit", on_start_unit, u, "ss", u->unit, "replace");
        if (r < 0)
                launch_fail(u, "StartUnit %s: %s", u->unit, g_strerror(-r));
}

static void unit_call(SystemdBackend *b, const char *id, const char *method, const char *signature,
                      const char *what, int signal_number)
{
        SystemdUnit *u = g_hash_table_lookup(b->units, id);
        int r = -ENOTCONN;

        if (!u || !u->unit)
                return;
        g_message("collector %s: %s %s", id, what, u->unit);
        if (b->connected && g_str_equal(signature, "ss"))
                r = sd_bus_call_method_async(b->bus, NULL, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                             method, NULL, NULL, signature, u->unit, "replace");
        else if (b->connected)
                r = sd_bus_call_method_async(b->bus, NULL, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                             method, NULL, NULL, signature, u->unit, "all", signal_number);
        if (r >= 0)
                return;
        g_warning("collector %s: %s %s: %s", id, method, u->unit, g_strerror(-r));
        /* The last resort failed too: stop waiting for an end we cannot cause or see. */
        if (signal_number == SIGKILL && u->running && !b->freeing) {
                CollectorBackend *base = &b->base;
                GPid pid = u->pid;

                g_warning("collector %s: systemd cannot be reached; giving up on pid %d of %s", id, (int)pid,
                          u->unit);
                u->running = FALSE;
                u->pid = 0;
                base->events.exited(base, u->id, pid, -1, base->user_data);
        }
}

static void systemd_terminate(CollectorBackend *backend, const char *id)
{
        unit_call((SystemdBackend *)backend, id, "StopUnit", "ss", "stopping", 0);
}

static void systemd_kill(CollectorBackend *backend, const char *id)
{
        unit_call((SystemdBackend *)backend, id, "KillUnit", "ssi", "SIGKILL to", SIGKILL);
}

static const char *systemd_get_unit(CollectorBackend *backend, const char *id)
{
        SystemdUnit *u = g_hash_table_lookup(((SystemdBackend *)backend)->units, id);

        return u ? u->unit : NULL;
}

static void systemd_release(CollectorBackend *backend, const char *id)
{
        SystemdUnit *u = g_hash_table_lookup(((SystemdBackend *)backend)->units, id);

        /* systemd owns the socket; only our watch goes. A launch in flight keeps it. */
        if (u && !u->func && !u->running)
                g_hash_table_remove(((SystemdBackend *)backend)->units, id);
}

static void systemd_free(CollectorBackend *backend)
{
        SystemdBackend *b = (SystemdBackend *)backend;
        GHashTableIter iter;
        SystemdUnit *u;

        /* What still runs is ended as the embedded backend would: at once. */
        b->freeing = TRUE;
        g_hash_table_iter_init(&iter, b->units);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&u))
                if (u->running)
                        systemd_kill(backend, u->id);
        g_clear_pointer(&b->units, g_hash_table_unref);
        if (b->reconnect) {
                g_source_destroy(b->reconnect);
                g_source_unref(b->reconnect);
        }
        if (b->event_source)
                g_source_remove(b->event_source);
        if (b->bus) {
                sd_bus_flush(b->bus);
                sd_bus_detach_event(b->bus);
                sd_bus_close_unref(b->bus);
        }
        sd_event_unref(b->event);
        g_free(b);
}

/* The unit's state after a reconnect: an end missed while the bus was away is reported now. */
static int on_active_state(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        SystemdUnit *u = userdata;
        const char *state = NULL;

        u->call = sd_bus_slot_unref(u->call);
        if (sd_bus_message_is_method_error(reply, NULL) || sd_bus_message_read(reply, "v", "s", &state) <= 0)
                return 0;
        if (g_str_equal(state, "inactive") || g_str_equal(state, "failed"))
                unit_gone(u);
        return 0;
}

static gboolean on_reconnect(gpointer user_data)
{
        SystemdBackend *b = user_data;
        g_autoptr(GError) error = NULL;

        if (!backend_connect(b, &error)) {
                g_debug("backend systemd: %s", error->message);
                return G_SOURCE_CONTINUE;
        }
        g_message("backend systemd: connected to systemd again");
        g_clear_pointer(&b->reconnect, g_source_unref);
        return G_SOURCE_REMOVE;
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        SystemdBackend *b = userdata;
        GSList *launching = NULL;
        GHashTableIter iter;
        SystemdUnit *u;

        if (!b->connected)
                return 0;
        b->connected = FALSE;
        g_warning("backend systemd: the system bus connection closed; collector units are not watched until "
                  "it "
                  "is back (retrying every 2 s)");
        g_hash_table_iter_init(&iter, b->units);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&u)) {
                u->properties_match = sd_bus_slot_unref(u->properties_match);
                u->call = sd_bus_slot_unref(u->call);
                if (u->func)
                        launching = g_slist_prepend(launching, g_strdup(u->id));
        }
        /* Failed after the walk: the process manager may release or start units from the callback. */
        for (GSList *l = launching; l; l = l->next) {
                u = g_hash_table_lookup(b->units, l->data);
                if (u && u->func)
                        launch_fail(u, "the connection to systemd was lost while starting %s", u->unit);
        }
        g_slist_free_full(launching, g_free);
        if (!b->reconnect) {
                b->reconnect = g_timeout_source_new_seconds(2);
                g_source_set_callback(b->reconnect, on_reconnect, b, NULL);
                g_source_attach(b->reconnect, NULL);
        }
        return 0;
}

/* (Re)connects to the system bus: signals of systemd, and the watches of units still running. */
static gboolean backend_connect(SystemdBackend *b, GError **error)
{
        sd_bus *bus = NULL;
        GHashTableIter iter;
        SystemdUnit *u;
        int r;

        r = sd_bus_open_system_with_description(&bus, "daemoneye-agent-systemd");
        if (r >= 0)
                r = sd_bus_attach_event(bus, b->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, NULL, "/org/freedesktop/DBus/Local",
                                        "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, b);
        if (r >= 0)
                r = sd_bus_match_signal_async(bus, NULL, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                              "JobRemoved", on_job_removed, NULL, b);
        /* Without Subscribe, systemd sends no PropertiesChanged for units. */
        if (r >= 0)
                r = sd_bus_call_method_async(bus, NULL, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                             "Subscribe", NULL, NULL, "");
        if (r < 0) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                            "backend systemd: cannot reach systemd on the system bus: %s", g_strerror(-r));
                if (bus) {
                        sd_bus_detach_event(bus);
                        sd_bus_close_unref(bus);
                }
                return FALSE;
        }
        if (b->bus) {
                sd_bus_detach_event(b->bus);
                sd_bus_close_unref(b->bus);
        }
        b->bus = bus;
        b->connected = TRUE;
        if (!b->event_source)
                b->event_source = sd_event_source_glib_attach(b->event, NULL, G_PRIORITY_DEFAULT);

        g_hash_table_iter_init(&iter, b->units);
        while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&u)) {
                if (!u->running || !u->unit_path)
                        continue;
                sd_bus_match_signal_async(b->bus, &u->properties_match, SYSTEMD_SERVICE, u->unit_path,
                                          "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                          on_properties_changed, NULL, u);
                sd_bus_call_method_async(b->bus, &u->call, SYSTEMD_SERVICE, u->unit_path,
                                         "org.freedesktop.DBus.Properties", "Get", on_active_state, u, "ss",
                                         SYSTEMD_UNIT, "ActiveState");
        }
        return TRUE;
}

static const CollectorBackendOps systemd_ops = {
        .name = "systemd",
        .launch_async = systemd_launch_async,
        .get_unit = systemd_get_unit,
        .terminate = systemd_terminate,
        .kill = systemd_kill,
        .release = systemd_release,
        .free = systemd_free,
};

/** collector_backend_systemd_new: see collector-backend.h. */
CollectorBackend *collector_backend_systemd_new(const CollectorBackendEvents *events, gpointer user_data,
                                                GError **error)
{
        SystemdBackend *b = g_new0(SystemdBackend, 1);
        int r;

        b->base.ops = &systemd_ops;
        b->base.events = *events;
        b->base.user_data = user_data;
        b->units = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)unit_free);

        r = sd_event_new(&b->event);
        if (r < 0 || !backend_connect(b, error)) {
                if (r < 0)
                        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                                    "backend systemd: sd_event_new: %s", g_strerror(-r));
                systemd_free(&b->base);
                return NULL;
        }
        b->event_source = sd_event_source_glib_attach(b->event, NULL, G_PRIORITY_DEFAULT);
        return &b->base;
}
