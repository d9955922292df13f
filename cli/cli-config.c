/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli config ID KEY=VALUE…: Collector1.UpdateConfig, and what the
 * collector did with each key.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli-bus.h"
#include "cli-print.h"
#include "cli-settings.h"
#include "cli-variant.h"

static void cli_config_add_reasons(CliTable *table, GVariant *result, const char *key, const char *verdict)
{
        g_autoptr(GVariant) reasons = g_variant_lookup_value(result, key, G_VARIANT_TYPE("a{ss}"));
        GVariantIter iter;
        const char *name, *reason;

        if (!reasons)
                return;
        g_variant_iter_init(&iter, reasons);
        while (g_variant_iter_next(&iter, "{&s&s}", &name, &reason))
                cli_table_add_row(table, name, verdict, reason, NULL);
}

static gboolean cli_config_flag(GVariant *result, const char *key)
{
        gboolean flag = FALSE;

        return g_variant_lookup(result, key, "b", &flag) && flag;
}

static void cli_config_print(const char *id, GVariant *result)
{
        static const char *const headers[] = {"SETTING", "RESULT", "REASON", NULL};
        g_autoptr(CliTable) table = cli_table_new(headers, 0);
        g_autoptr(GVariant) applied = g_variant_lookup_value(result, "applied", G_VARIANT_TYPE_STRING_ARRAY);
        gboolean validated_only = cli_config_flag(result, "validated_only");
        gboolean rolled_back = cli_config_flag(result, "rolled_back");
        const char *summary = "configuration updated";

        if (applied) {
                GVariantIter iter;
                const char *name;

                g_variant_iter_init(&iter, applied);
                while (g_variant_iter_next(&iter, "&s", &name))
                        cli_table_add_row(table, name, validated_only ? "valid" : "applied", "", NULL);
        }
        cli_config_add_reasons(table, result, "skipped", "skipped");
        cli_config_add_reasons(table, result, "rejected", "rejected");

        if (rolled_back)
                summary = "configuration rolled back, nothing changed";
        else if (validated_only)
                summary = "configuration validated, nothing applied (--validate-only)";
        printf("%s: %s\n", id, summary);
        if (cli_table_get_n_rows(table) > 0)
                cli_table_print(table);
        if (cli_config_flag(result, "restart_required") && !rolled_back)
                printf("A restart is required for the change to take effect: daemoneye-cli restart %s\n",
                       id);
}

/* Returns: %FALSE with "procmond: rejected foo (unknown key), …" when the collector rejected any key. */
static gboolean cli_config_check(const char *id, GVariant *result, GError **error)
{
        g_autoptr(GVariant) rejected = g_variant_lookup_value(result, "rejected", G_VARIANT_TYPE("a{ss}"));
        g_autoptr(GString) reasons = g_string_new(NULL);
        GVariantIter iter;
        const char *name, *reason;

        if (rejected) {
                g_variant_iter_init(&iter, rejected);
                while (g_variant_iter_next(&iter, "{&s&s}", &name, &reason))
                        g_string_append_printf(reasons, "%s%s (%s)", reasons->len ? ", " : "", name, reason);
        }
        if (reasons->len > 0) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "%s: rejected %s", id, reasons->str);
                return FALSE;
        }
        if (cli_config_flag(result, "rolled_back")) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "%s: the change failed and was rolled back",
                            id);
                return FALSE;
        }
        return TRUE;
}

gboolean cli_config(CliOptions *options, int argc, char **argv, GError **error)
{
        gboolean validate_only = FALSE, no_rollback = FALSE;
        const GOptionEntry entries[] = {
                {"validate-only", 0, 0, G_OPTION_ARG_NONE, &validate_only,
                 "Let the collector check the settings without applying them", NULL},
                {"no-rollback", 0, 0, G_OPTION_ARG_NONE, &no_rollback,
                 "Keep what was applied when a later setting fails", NULL},
                {NULL},
        };
        g_autoptr(sd_bus) bus = NULL;
        g_autoptr(GVariant) changes = NULL;
        g_autoptr(GVariant) result = NULL;
        g_autofree char *path = NULL;
        GVariantBuilder flags;
        const char *id;

        if (!cli_command_parse(
                    options, "config ID KEY=VALUE…",
                    "Change settings of collector ID. Values are typed: true/false a boolean,\n"
                    "an integer a 64-bit integer, a decimal number a double, anything else a string.",
                    entries, &argc, &argv, 2, -1, error))
                return FALSE;
        id = argv[1];
        changes = cli_settings_parse((const char *const *)argv + 2, error);
        if (!changes)
                return FALSE;
        bus = cli_bus_open(options, error);
        if (!bus)
                return FALSE;
        path = cli_bus_find_collector(bus, id, error);
        if (!path)
                return FALSE;

        g_variant_builder_init(&flags, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&flags, "{sv}", "validate_only", g_variant_new_boolean(validate_only));
        g_variant_builder_add(&flags, "{sv}", "rollback_on_failure", g_variant_new_boolean(!no_rollback));
        result = cli_bus_call_one(bus, path, CLI_BUS_COLLECTOR_INTERFACE, "UpdateConfig",
                                  g_variant_new("(@a{sv}a{sv})", changes, &flags), "(a{sv})",
                                  CLI_BUS_TIMEOUT_LONG, error);
        if (!result)
                return FALSE;

        if (options->json) {
                JsonNode *node = cli_variant_to_json(result);

                json_object_set_string_member(json_node_get_object(node), "id", id);
                cli_print_json(node);
        } else {
                cli_config_print(id, result);
        }
        return cli_config_check(id, result, error);
}
