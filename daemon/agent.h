/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
        char *config_path;        /* the main configuration file */
        gboolean config_explicit; /* --config given: the file must exist */
        char *socket_path;        /* --socket: overrides [broker] socket_path, also across reloads */
        gboolean verbose;
        /* The D-Bus front: --bus=system (the default; without a reachable system bus the agent runs
         * without it), --bus=session, --bus=none, or --bus-address=ADDR. */
        char *bus;         /* "system", "session", "none"; NULL: system */
        char *bus_address; /* --bus-address */
} AgentOptions;

/**
 * agent_run:
 *
 * Loads the configuration, starts the broker, and runs the main loop until
 * SIGTERM/SIGINT. SIGHUP reloads the configuration, SIGUSR1 logs the metrics.
 * Returns: the process exit code.
 */
int agent_run(const AgentOptions *options);

/**
 * agent_check_config:
 *
 * Validates the main file and its drop-ins; prints "configuration OK: PATH"
 * to stdout or the error to stderr.
 * Returns: the process exit code (0 or 1).
 */
int agent_check_config(const AgentOptions *options);

G_END_DECLS
