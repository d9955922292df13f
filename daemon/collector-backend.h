/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/*
 * How collector processes come to exist and end: the part of the process
 * manager that differs between running under systemd and without it.
 *
 * The process manager decides *when* (start, stop, restart, backoff,
 * health); a backend only knows *how*:
 *
 *   launch     make the instance run and hand back a connected stream socket
 *              to it. Embedded: bind the collector socket (kept across
 *              restarts, like a .socket unit), fork+exec the collector with it
 *              as fd 3 (LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES), connect.
 *              systemd: connect to daemoneye-<id>.socket; the connection
 *              starts the service (StartUnit when the socket is not enough).
 *   terminate  ask the process to end: SIGTERM then SIGCONT / StopUnit.
 *   kill       end it now: SIGKILL / KillUnit(SIGKILL).
 *   release    forget an instance that no longer runs: close and unlink its
 *              socket (embedded); nothing for systemd, which owns it.
 *
 * Whatever the backend, the collector speaks to the agent as an EventBus
 * client on the connection launch() returned, and the backend reports the
 * end of the process through CollectorBackendEvents.exited as soon as it
 * knows (embedded: the child watch; systemd: the unit's PropertiesChanged).
 * Everything runs on the agent's main loop; no call blocks for long.
 */
typedef struct _CollectorBackend CollectorBackend;

/* What a backend needs to know to run one instance. */
typedef struct {
        const char *id;                 /* instance id: the client id it must say in Hello */
        const CollectorConfig *config;  /* its [collector <id>] group */
        const char *socket_path;        /* resolved collector socket */
        const char *broker_socket_path; /* the EventBus socket, for DAEMONEYE_SOCKET */
} CollectorLaunch;

typedef struct {
        /*
         * The instance's process ended and was reaped. @wait_status is what
         * waitpid() gave, or -1 when the backend cannot know it.
         */
        void (*exited)(CollectorBackend *backend, const char *id, GPid pid, int wait_status,
                       gpointer user_data);
} CollectorBackendEvents;

/* The end of an asynchronous launch: @fd (transfer full) connected to the running process, or -1 and @error.
 */
typedef void (*CollectorLaunchFunc)(CollectorBackend *backend, int fd, GPid pid, const GError *error,
                                    gpointer user_data);

typedef struct {
        const char *name;
        /*
         * Returns a connected socket (transfer full), sets *@pid (0: not known yet); -1 with @error.
         * NULL when launch_async is set.
         */
        int (*launch)(CollectorBackend *backend, const CollectorLaunch *launch, GPid *pid, GError **error);
        /*
         * (optional) Used instead of launch when set: @func runs once, later,
         * from the main loop; then, or instead when the backend is freed
         * first, @destroy frees @user_data.
         */
        void (*launch_async)(CollectorBackend *backend, const CollectorLaunch *launch,
                             CollectorLaunchFunc func, gpointer user_data, GDestroyNotify destroy);
        /* (nullable) The unit that runs the instance, for the D-Bus front; NULL when there is none. */
        const char *(*get_unit)(CollectorBackend *backend, const char *id);
        void (*terminate)(CollectorBackend *backend, const char *id);
        void (*kill)(CollectorBackend *backend, const char *id);
        void (*release)(CollectorBackend *backend, const char *id);
        /* Ends what still runs (SIGKILL, reaped) and frees the backend. */
        void (*free)(CollectorBackend *backend);
} CollectorBackendOps;

struct _CollectorBackend {
        const CollectorBackendOps *ops;
        CollectorBackendEvents events;
        gpointer user_data;
};

/**
 * collector_backend_embedded_new:
 * @events: copied
 *
 * Returns: (transfer full) the backend that does what systemd would.
 */
CollectorBackend *collector_backend_embedded_new(const CollectorBackendEvents *events, gpointer user_data);

/**
 * collector_backend_systemd_new:
 * @events: copied
 *
 * Connects to the system bus and subscribes to systemd's unit signals.
 * Returns: (transfer full) the backend that runs each instance as its
 *   socket-activated unit (the [collector] unit=, else daemoneye-<id>.service),
 *   or %NULL with an error when systemd cannot be reached.
 */
CollectorBackend *collector_backend_systemd_new(const CollectorBackendEvents *events, gpointer user_data,
                                                GError **error);

/** collector_backend_launch: see CollectorBackendOps.launch. */
static inline int collector_backend_launch(CollectorBackend *b, const CollectorLaunch *launch, GPid *pid,
                                           GError **error)
{
        return b->ops->launch(b, launch, pid, error);
}

static inline void collector_backend_terminate(CollectorBackend *b, const char *id)
{
        b->ops->terminate(b, id);
}

static inline void collector_backend_kill(CollectorBackend *b, const char *id)
{
        b->ops->kill(b, id);
}

static inline void collector_backend_release(CollectorBackend *b, const char *id)
{
        b->ops->release(b, id);
}

static inline void collector_backend_free(CollectorBackend *b)
{
        if (b)
                b->ops->free(b);
}

G_END_DECLS
