/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * agent_log_setup:
 * @verbose: also show debug messages
 *
 * Installs the log writer: the journal with every structured field when
 * stderr is connected to it, else one plain line per message on stderr
 * ("warning: " / "error: " before those levels, nothing before the others).
 */
void agent_log_setup(gboolean verbose);

G_END_DECLS
