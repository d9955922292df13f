/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dcc_main(): the standard command line of every collector, then run.
 *
 *   COLLECTOR [--id ID] [--connect PATH] [--set KEY=VALUE]… [--heartbeat-interval MS]
 *             [--autostart] [--verbose]
 *
 * The connection: --connect PATH if given, else the socket-activation fd if
 * there is one, else $DAEMONEYE_SOCKET, else the system EventBus socket.
 *
 * The agent's embedded backend sets DAEMONEYE_COLLECTOR_ID and
 * DAEMONEYE_HEARTBEAT_INTERVAL_MS in the collector's environment (a unit may
 * set them with Environment=): they are the defaults of --id and
 * --heartbeat-interval, so an instance answers to the id the agent expects
 * in its Hello without exec= having to repeat it.
 */
#include <stdio.h>
#include <string.h>

#include "daemoneye-build-config.h"
#include "dcc-private.h"

/* " 10..60000" (" of 0..32 bytes" for a string), or "" when the key has no range. */
static char *main_describe_range(const DccConfigKey *key)
{
        char lo[G_ASCII_DTOSTR_BUF_SIZE], hi[G_ASCII_DTOSTR_BUF_SIZE];

        switch (key->type) {
        case DCC_CONFIG_INT:
                if (key->min.i == 0 && key->max.i == 0)
                        break;
                return g_strdup_printf(" %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT, key->min.i, key->max.i);
        case DCC_CONFIG_UINT:
                if (key->min.u == 0 && key->max.u == 0)
                        break;
                return g_strdup_printf(" %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT, key->min.u, key->max.u);
        case DCC_CONFIG_DOUBLE:
                if (key->min.d == 0.0 && key->max.d == 0.0)
                        break;
                return g_strdup_printf(" %s..%s", g_ascii_dtostr(lo, sizeof(lo), key->min.d),
                                       g_ascii_dtostr(hi, sizeof(hi), key->max.d));
        case DCC_CONFIG_STRING:
                if (key->min.u == 0 && key->max.u == 0)
                        break;
                return g_strdup_printf(" of %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT " bytes", key->min.u,
                                       key->max.u);
        case DCC_CONFIG_BOOL:
                break;
        }
        return g_strdup("");
}

/* "Settings (--set KEY=VALUE):" and one line per key, for --help. */
static char *main_describe_settings(const DccCollectorInfo *info)
{
        g_autoptr(GString) text = g_string_new(NULL);

        if (!info->config_schema || !info->config_schema[0].key)
                return g_string_free(g_steal_pointer(&text), FALSE);
        g_string_append(text, "Settings (--set KEY=VALUE):\n");
        for (const DccConfigKey *key = info->config_schema; key->key; key++) {
                g_autofree char *range = main_describe_range(key);
                const char *def = key->default_value ? key->default_value : dcc_config_key_default_text(key);

                g_string_append_printf(text, "  %-24s %s%s, default %s%s%s%s\n", key->key,
                                       dcc_config_type_to_string(key->type), range, def[0] ? "" : "\"", def,
                                       def[0] ? "" : "\"", key->restart_required ? ", needs a restart" : "");
                if (key->description)
                        g_string_append_printf(text, "  %-24s %s\n", "", key->description);
        }
        return g_string_free(g_steal_pointer(&text), FALSE);
}

static gboolean main_apply_sets(DccCollector *collector, char **sets, GError **error)
{
        for (gsize i = 0; sets && sets[i]; i++) {
                const char *eq = strchr(sets[i], '=');
                g_autofree char *key = NULL;

                if (!eq || eq == sets[i]) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "--set %s: expected KEY=VALUE", sets[i]);
                        return FALSE;
                }
                key = g_strndup(sets[i], (gsize)(eq - sets[i]));
                if (!dcc_collector_set_config_string(collector, key, eq + 1, error))
                        return FALSE;
        }
        return TRUE;
}

/* $DAEMONEYE_HEARTBEAT_INTERVAL_MS, as the agent sets it; 0 when unset. */
static gboolean main_heartbeat_from_env(gint *out, GError **error)
{
        const char *text = g_getenv(DCC_ENV_HEARTBEAT_MS);
        guint64 value;

        if (!text || !*text)
                return TRUE;
        if (!g_ascii_string_to_unsigned(text, 10, DCC_MIN_HEARTBEAT_MS, G_MAXINT, &value, NULL)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "$%s=%s: not a number of ms >= %u",
                            DCC_ENV_HEARTBEAT_MS, text, DCC_MIN_HEARTBEAT_MS);
                return FALSE;
        }
        *out = (gint)value;
        return TRUE;
}

static int main_fail(int status, const GError *error)
{
        fprintf(stderr, "%s: %s\n", g_get_prgname() ? g_get_prgname() : "collector", error->message);
        return status;
}

int dcc_main(int argc, char **argv, const DccCollectorInfo *info, gpointer user_data)
{
        g_autoptr(GOptionContext) context = NULL;
        g_autoptr(DccCollector) collector = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *id = NULL;
        g_autofree char *connect_path = NULL;
        g_autofree char *settings = NULL;
        g_auto(GStrv) sets = NULL;
        gint heartbeat_ms = 0;
        gboolean autostart = FALSE, verbose = FALSE, found = FALSE;
        const GOptionEntry entries[] = {
                {"id", 0, 0, G_OPTION_ARG_STRING, &id, "Collector id (one topic level; default $" DCC_ENV_ID ")",
                 "ID"},
                {"connect", 0, 0, G_OPTION_ARG_FILENAME, &connect_path,
                 "Dial this broker socket instead of using socket activation", "PATH"},
                {"set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &sets, "Set a setting (repeatable)", "KEY=VALUE"},
                {"heartbeat-interval", 0, 0, G_OPTION_ARG_INT, &heartbeat_ms,
                 "Milliseconds between heartbeats (default $" DCC_ENV_HEARTBEAT_MS " or 10000, at least 10)", "MS"},
                {"autostart", 0, 0, G_OPTION_ARG_NONE, &autostart,
                 "Start collecting after the handshake instead of waiting for a start request", NULL},
                {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages too", NULL},
                {NULL},
        };

        g_return_val_if_fail(info != NULL, DCC_EXIT_USAGE);

        /* Logs are for the journal or stderr; GLib would print info and debug on stdout, which is the collector's own. */
        g_log_writer_default_set_use_stderr(TRUE);
        context = g_option_context_new(NULL);
        if (info->description)
                g_option_context_set_summary(context, info->description);
        settings = main_describe_settings(info);
        if (settings[0])
                g_option_context_set_description(context, settings);
        g_option_context_add_main_entries(context, entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error))
                return main_fail(DCC_EXIT_USAGE, error);
        if (argc > 1) {
                g_set_error(&error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "unexpected argument '%s'", argv[1]);
                return main_fail(DCC_EXIT_USAGE, error);
        }
        if (verbose)
                g_log_set_debug_enabled(TRUE);

        collector = dcc_collector_new(info, user_data, &error);
        if (!collector)
                return main_fail(DCC_EXIT_USAGE, error);
        if (!id && g_getenv(DCC_ENV_ID))
                id = g_strdup(g_getenv(DCC_ENV_ID));
        if (id && !dcc_collector_set_id(collector, id, &error))
                return main_fail(DCC_EXIT_USAGE, error);
        if (!main_apply_sets(collector, sets, &error))
                return main_fail(DCC_EXIT_USAGE, error);
        if (heartbeat_ms == 0 && !main_heartbeat_from_env(&heartbeat_ms, &error))
                return main_fail(DCC_EXIT_USAGE, error);
        if (heartbeat_ms != 0) {
                if (heartbeat_ms < (gint)DCC_MIN_HEARTBEAT_MS) {
                        g_set_error(&error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "--heartbeat-interval %d: at least %u ms", heartbeat_ms, DCC_MIN_HEARTBEAT_MS);
                        return main_fail(DCC_EXIT_USAGE, error);
                }
                dcc_collector_set_heartbeat_interval(collector, (guint)heartbeat_ms);
        }
        dcc_collector_set_autostart(collector, autostart);

        if (connect_path) {
                if (!dcc_collector_connect(collector, connect_path, &error))
                        return main_fail(DCC_EXIT_FAILURE, error);
        } else {
                if (!dcc_collector_connect_activated(collector, &found, &error))
                        return main_fail(DCC_EXIT_FAILURE, error);
                if (!found && !dcc_collector_connect(collector,
                                                     g_getenv(DCC_ENV_SOCKET) ? g_getenv(DCC_ENV_SOCKET)
                                                                              : DAEMONEYE_DEFAULT_SOCKET,
                                                     &error))
                        return main_fail(DCC_EXIT_FAILURE, error);
        }
        return dcc_collector_run(collector);
}
