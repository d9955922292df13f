/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "agent-log.h"

static gboolean log_verbose;
static gboolean log_to_journal;

static const char *level_prefix(GLogLevelFlags level)
{
        if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
                return "error: ";
        if (level & G_LOG_LEVEL_WARNING)
                return "warning: ";
        return "";
}

static GLogWriterOutput agent_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                         gpointer user_data)
{
        const char *message = NULL;

        if ((level & G_LOG_LEVEL_DEBUG) && !log_verbose)
                return G_LOG_WRITER_HANDLED;
        if (log_to_journal &&
            g_log_writer_journald(level, fields, n_fields, user_data) == G_LOG_WRITER_HANDLED)
                return G_LOG_WRITER_HANDLED;

        for (gsize i = 0; i < n_fields; i++) {
                if (g_str_equal(fields[i].key, "MESSAGE")) {
                        message = fields[i].value;
                        break;
                }
        }
        /* One write per line, so lines of concurrent writers to the same pipe do not interleave. */
        fprintf(stderr, "%s%s\n", level_prefix(level), message ? message : "(no message)");
        fflush(stderr);
        return G_LOG_WRITER_HANDLED;
}

/** agent_log_setup: see agent-log.h. */
void agent_log_setup(gboolean verbose)
{
        log_verbose = verbose;
        log_to_journal = g_log_writer_is_journald(fileno(stderr));
        if (verbose)
                g_log_set_debug_enabled(TRUE);
        g_log_set_writer_func(agent_log_writer, NULL, NULL);
}
