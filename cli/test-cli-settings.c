/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KEY=VALUE arguments of `config`: which text becomes which D-Bus type.
 */
#include "cli.h"
#include "cli-settings.h"

typedef struct {
        const char *text;
        const char *expected; /* GVariant text format, type included */
} ValueCase;

static const ValueCase value_cases[] = {
        {"true", "true"},
        {"false", "false"},
        {"True", "'True'"}, /* only the exact words */
        {"yes", "'yes'"},
        {"0", "int64 0"},
        {"500", "int64 500"},
        {"-12", "int64 -12"},
        {"+7", "int64 7"},
        {"007", "int64 7"},
        {"9223372036854775807", "int64 9223372036854775807"},
        {"-9223372036854775808", "int64 -9223372036854775808"},
        {"1.5", "1.5"},
        {"-0.25", "-0.25"},
        {".5", "0.5"},
        {"2.", "2.0"},
        {"1e3", "1000.0"},
        {"1.5E-2", "0.015"},
        {"", "''"},
        {"procmond", "'procmond'"},
        {"/usr/bin/x", "'/usr/bin/x'"},
        {"0x10", "'0x10'"}, /* strtod() would take these; a setting means text */
        {"inf", "'inf'"},
        {"nan", "'nan'"},
        {" 1", "' 1'"},
        {"1 ", "'1 '"},
        {"1e", "'1e'"},
        {"e5", "'e5'"},
        {".", "'.'"},
        {"-", "'-'"},
        {"1.2.3", "'1.2.3'"},
        {"a=b", "'a=b'"},
};

static void test_value_types(void)
{
        for (gsize i = 0; i < G_N_ELEMENTS(value_cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) value = cli_setting_value_parse(value_cases[i].text, &error);
                g_autoptr(GVariant) expected =
                        g_variant_ref_sink(g_variant_new_parsed(value_cases[i].expected));

                g_test_message("case %zu: '%s'", i, value_cases[i].text);
                g_assert_no_error(error);
                g_assert_cmpstr(g_variant_get_type_string(value), ==, g_variant_get_type_string(expected));
                g_assert_true(g_variant_equal(value, expected));
        }
}

static void test_value_out_of_range(void)
{
        static const char *const bad[] = {"9223372036854775808", "-9223372036854775809", "1e999"};

        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) value = cli_setting_value_parse(bad[i], &error);

                g_assert_null(value);
                g_assert_error(error, CLI_ERROR, CLI_ERROR_USAGE);
                g_assert_cmpint(cli_error_to_exit(error), ==, CLI_EXIT_USAGE);
        }
}

static void test_settings(void)
{
        const char *const args[] = {"scan_interval_ms=500",
                                    "enable_hash_verification=false",
                                    "ratio=0.5",
                                    "name=proc mon",
                                    "path=a=b",
                                    NULL};
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) settings = cli_settings_parse(args, &error);
        g_autofree char *text = NULL;

        g_assert_no_error(error);
        text = g_variant_print(settings, TRUE);
        /* In the given order, each with its type; only the first '=' separates. */
        g_assert_cmpstr(
                text, ==,
                "{'scan_interval_ms': <int64 500>, 'enable_hash_verification': <false>, 'ratio': <0.5>, "
                "'name': <'proc mon'>, 'path': <'a=b'>}");
}

static void test_settings_empty(void)
{
        const char *const args[] = {NULL};
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) settings = cli_settings_parse(args, &error);

        g_assert_no_error(error);
        g_assert_true(g_variant_is_of_type(settings, G_VARIANT_TYPE_VARDICT));
        g_assert_cmpuint(g_variant_n_children(settings), ==, 0);
}

static void test_settings_errors(void)
{
        static const char *const bad[][3] = {
                {"novalue", NULL, NULL},
                {"=5", NULL, NULL},
                {"a b=1", NULL, NULL},
                {"key\n=1", NULL, NULL},
                {"x=1", "x=2", NULL}, /* twice */
                {"big=99999999999999999999", NULL, NULL},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) settings = cli_settings_parse(bad[i], &error);

                g_test_message("case %zu: %s", i, bad[i][0]);
                g_assert_null(settings);
                g_assert_error(error, CLI_ERROR, CLI_ERROR_USAGE);
        }
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli-settings/value-types", test_value_types);
        g_test_add_func("/cli-settings/value-out-of-range", test_value_out_of_range);
        g_test_add_func("/cli-settings/settings", test_settings);
        g_test_add_func("/cli-settings/settings-empty", test_settings_empty);
        g_test_add_func("/cli-settings/settings-errors", test_settings_errors);
        return g_test_run();
}
