/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>

G_BEGIN_DECLS

/**
 * cli_collector_report:
 * @action: what was done ("start", "shutdown"…), for the JSON document
 *
 * After an action returned: reads the collector's properties again and
 * prints "procmond: running (pid 1234)", or with @json one object of its
 * properties plus "action".
 */
gboolean cli_collector_report(sd_bus *bus, const char *path, const char *action, gboolean json,
                              GError **error);

G_END_DECLS
