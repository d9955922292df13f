/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Settings and change plans (dcc-config.c, dcc-config-value.c): parsing the
 * same value from --set text and from JSON, ranges, schema checks, and what
 * a plan files where (live, deferred, skipped, rejected); commit, revert
 * and reversal, as UPDATE_CONFIG's rollback uses them.
 */
#include <string.h>

#include "dcc-private.h"

static const DccConfigKey schema[] = {
        {.key = "interval_ms", .type = DCC_CONFIG_INT, .default_value = "1000", .min.i = 10, .max.i = 60000},
        {.key = "offset", .type = DCC_CONFIG_INT, .default_value = "-5", .min.i = -100, .max.i = 100},
        {.key = "count", .type = DCC_CONFIG_UINT, .default_value = "3"},
        {.key = "enabled", .type = DCC_CONFIG_BOOL, .default_value = "yes"},
        {.key = "ratio", .type = DCC_CONFIG_DOUBLE, .default_value = "0.5", .min.d = 0.0, .max.d = 1.0},
        {.key = "name", .type = DCC_CONFIG_STRING, .default_value = "abc", .min.u = 1, .max.u = 8},
        {.key = "path", .type = DCC_CONFIG_STRING, .restart_required = TRUE},
        {NULL},
};

static DccConfigStore *store_new(void)
{
        g_autoptr(GError) error = NULL;
        DccConfigStore *store = dcc_config_store_new(schema, &error);

        g_assert_no_error(error);
        g_assert_nonnull(store);
        return store;
}

static char *store_text(DccConfigStore *store, const char *key)
{
        return dcc_config_value_to_string(dcc_config_store_get(store, dcc_config_store_lookup(store, key)));
}

static void assert_text(DccConfigStore *store, const char *key, const char *want)
{
        g_autofree char *text = store_text(store, key);

        g_assert_cmpstr(text, ==, want);
}

static void test_defaults(void)
{
        g_autoptr(DccConfigStore) store = store_new();
        gsize n = 0;

        assert_text(store, "interval_ms", "1000");
        assert_text(store, "offset", "-5");
        assert_text(store, "count", "3");
        assert_text(store, "enabled", "true");
        assert_text(store, "ratio", "0.5");
        assert_text(store, "name", "abc");
        assert_text(store, "path", "");
        g_assert_nonnull(dcc_config_store_get_schema(store, &n));
        g_assert_cmpuint(n, ==, 7);
        g_assert_null(dcc_config_store_lookup(store, "nope"));
}

static void test_set_string(void)
{
        static const struct {
                const char *key, *text, *stored; /* stored NULL: refused, with @why in the message */
                const char *why;
        } cases[] = {
                {"interval_ms", "10", "10", NULL},
                {"interval_ms", "60000", "60000", NULL},
                {"interval_ms", "9", NULL, "out of range 10..60000"},
                {"interval_ms", "60001", NULL, "out of range"},
                {"interval_ms", "1e3", NULL, "expected an integer"},
                {"interval_ms", " 100", NULL, "expected an integer"},
                {"interval_ms", "", NULL, "expected an integer"},
                {"offset", "-100", "-100", NULL},
                {"offset", "-101", NULL, "out of range"},
                {"count", "18446744073709551615", "18446744073709551615", NULL},
                {"count", "-1", NULL, "expected an unsigned integer"},
                {"enabled", "OFF", "false", NULL},
                {"enabled", "1", "true", NULL},
                {"enabled", "maybe", NULL, "expected a boolean"},
                {"ratio", "1", "1", NULL},
                {"ratio", "0.25", "0.25", NULL},
                {"ratio", "nan", NULL, "finite number"},
                {"ratio", "inf", NULL, "finite number"},
                {"ratio", " 0.5", NULL, "finite number"},
                {"ratio", "1.5", NULL, "out of range"},
                {"name", "12345678", "12345678", NULL},
                {"name", "123456789", NULL, "out of range"},
                {"name", "", NULL, "out of range"},
                {"name", "\xff", NULL, "UTF-8"},
                {"nope", "1", NULL, "unknown key (known: interval_ms, offset"},
        };

        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(DccConfigStore) store = store_new();
                g_autoptr(GError) error = NULL;
                gboolean ok = dcc_config_store_set_string(store, cases[i].key, cases[i].text, &error);

                g_test_message("%s=%s", cases[i].key, cases[i].text);
                if (cases[i].stored) {
                        g_assert_no_error(error);
                        g_assert_true(ok);
                        assert_text(store, cases[i].key, cases[i].stored);
                } else {
                        g_assert_false(ok);
                        g_assert_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT);
                        if (!strstr(error->message, cases[i].why))
                                g_error("'%s' does not say '%s'", error->message, cases[i].why);
                        /* Refused: the value in force did not move. */
                        if (dcc_config_store_lookup(store, cases[i].key)) {
                                g_autoptr(DccConfigStore) fresh = store_new();
                                g_autofree char *want = store_text(fresh, cases[i].key);

                                assert_text(store, cases[i].key, want);
                        }
                }
        }
}

static void test_bad_schemas(void)
{
        static const DccConfigKey bad_name[] = {{.key = "a.b", .type = DCC_CONFIG_INT}, {NULL}};
        static const DccConfigKey twice[] = {{.key = "a", .type = DCC_CONFIG_INT}, {.key = "a", .type = DCC_CONFIG_BOOL}, {NULL}};
        static const DccConfigKey inverted[] = {{.key = "a", .type = DCC_CONFIG_INT, .min.i = 5, .max.i = 1}, {NULL}};
        static const DccConfigKey bad_default[] = {
                {.key = "a", .type = DCC_CONFIG_INT, .default_value = "0", .min.i = 1, .max.i = 5}, {NULL}};
        static const DccConfigKey bad_type[] = {{.key = "a", .type = (DccConfigType)42}, {NULL}};
        const DccConfigKey *schemas[] = {bad_name, twice, inverted, bad_default, bad_type};
        const char *why[] = {"a.b", "declared twice", "inverted", "default", "type 42"};

        for (gsize i = 0; i < G_N_ELEMENTS(schemas); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(DccConfigStore) store = dcc_config_store_new(schemas[i], &error);

                g_assert_null(store);
                g_assert_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT);
                g_assert_nonnull(strstr(error->message, why[i]));
        }
}

static const char *reason_of(GPtrArray *list, const char *key)
{
        for (guint i = 0; i < list->len; i++) {
                const DccConfigRejection *r = list->pdata[i];

                if (g_str_equal(r->key, key))
                        return r->reason;
        }
        return NULL;
}

static void test_plan_json(void)
{
        g_autoptr(DccConfigStore) store = store_new();
        g_autoptr(DccConfigPlan) plan = dcc_config_plan_new();
        g_autoptr(GError) error = NULL;

        g_assert_true(dcc_config_plan_add_json(store, plan,
                                               "{\"interval_ms\": 20, \"offset\": -5, \"count\": -1,"
                                               " \"enabled\": false, \"ratio\": 1, \"name\": null,"
                                               " \"path\": \"/x\", \"nope\": 1, \"interval_ms\": 30}",
                                               TRUE, FALSE, &error));
        g_assert_no_error(error);
        /* interval_ms: the later value replaces the earlier; ratio: an integer is a fine number. */
        g_assert_cmpuint(plan->live->len, ==, 3);
        g_assert_cmpuint(plan->deferred->len, ==, 0);
        g_assert_cmpstr(reason_of(plan->skipped, "offset"), ==, "value unchanged");
        /* null is the default, and name is at its default. */
        g_assert_cmpstr(reason_of(plan->skipped, "name"), ==, "value unchanged");
        g_assert_nonnull(strstr(reason_of(plan->rejected, "count"), "unsigned"));
        g_assert_nonnull(strstr(reason_of(plan->rejected, "path"), "restart"));
        g_assert_nonnull(strstr(reason_of(plan->rejected, "nope"), "unknown key"));

        /* Accepting a restart defers the restart_required key instead. */
        g_clear_pointer(&plan, dcc_config_plan_free);
        plan = dcc_config_plan_new();
        g_assert_true(dcc_config_plan_add_json(store, plan, "{\"path\": \"/x\", \"interval_ms\": 20}", TRUE, TRUE,
                                               &error));
        g_assert_cmpuint(plan->live->len, ==, 1);
        g_assert_cmpuint(plan->deferred->len, ==, 1);
        g_assert_cmpuint(plan->rejected->len, ==, 0);

        /* Not running: nothing is deferred. */
        g_clear_pointer(&plan, dcc_config_plan_free);
        plan = dcc_config_plan_new();
        g_assert_true(dcc_config_plan_add_json(store, plan, "{\"path\": \"/x\"}", FALSE, FALSE, &error));
        g_assert_cmpuint(plan->live->len, ==, 1);

        /* Not an object, not JSON. */
        g_assert_false(dcc_config_plan_add_json(store, plan, "[]", TRUE, FALSE, &error));
        g_assert_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
        g_assert_false(dcc_config_plan_add_json(store, plan, "{", TRUE, FALSE, &error));
        g_assert_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT);
}

static void test_commit_revert(void)
{
        g_autoptr(DccConfigStore) store = store_new();
        g_autoptr(DccConfigPlan) plan = dcc_config_plan_new();
        g_autoptr(GArray) reversed = NULL;
        g_autoptr(GError) error = NULL;
        const DccConfigChange *change;

        g_assert_true(dcc_config_plan_add_json(store, plan, "{\"name\": \"xyz\", \"interval_ms\": 20}", TRUE, FALSE,
                                               &error));
        dcc_config_store_commit(store, plan);
        assert_text(store, "name", "xyz");
        assert_text(store, "interval_ms", "20");

        reversed = dcc_config_changes_reverse(plan->live);
        g_assert_cmpuint(reversed->len, ==, 2);
        for (guint i = 0; i < reversed->len; i++) {
                change = &g_array_index(reversed, DccConfigChange, i);
                if (g_str_equal(change->key->key, "name")) {
                        g_assert_cmpstr(change->old_value.string_value, ==, "xyz");
                        g_assert_cmpstr(change->new_value.string_value, ==, "abc");
                }
        }

        dcc_config_store_revert(store, plan);
        assert_text(store, "name", "abc");
        assert_text(store, "interval_ms", "1000");
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dcc/config-store/defaults", test_defaults);
        g_test_add_func("/dcc/config-store/set-string", test_set_string);
        g_test_add_func("/dcc/config-store/bad-schemas", test_bad_schemas);
        g_test_add_func("/dcc/config-store/plan-json", test_plan_json);
        g_test_add_func("/dcc/config-store/commit-revert", test_commit_revert);
        return g_test_run();
}
