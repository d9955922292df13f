/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KEY=VALUE arguments into typed D-Bus values.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "cli-settings.h"

static const char *skip_digits(const char *p)
{
        while (g_ascii_isdigit(*p))
                p++;
        return p;
}

/*
 * [+-]digits, or [+-]digits.digits / .digits / digits. with an optional
 * exponent, or digits with an exponent. Stricter than strtod(), which would
 * also take "inf", "nan", hex floats and leading blanks as numbers.
 */
static gboolean is_integer(const char *text)
{
        const char *p = text + (*text == '+' || *text == '-');

        return g_ascii_isdigit(*p) && *skip_digits(p) == '\0';
}

static gboolean is_decimal(const char *text)
{
        const char *p = text + (*text == '+' || *text == '-');
        const char *q;
        gboolean digits, fraction = FALSE;

        q = skip_digits(p);
        digits = q > p;
        if (*q == '.') {
                const char *f = skip_digits(q + 1);

                digits = digits || f > q + 1;
                fraction = TRUE;
                q = f;
        }
        if (!digits)
                return FALSE;
        if (*q == 'e' || *q == 'E') {
                const char *e = q + 1 + (q[1] == '+' || q[1] == '-');

                if (!g_ascii_isdigit(*e))
                        return FALSE;
                q = skip_digits(e);
                fraction = TRUE;
        }
        return fraction && *q == '\0';
}

GVariant *cli_setting_value_parse(const char *text, GError **error)
{
        if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0)
                return g_variant_ref_sink(g_variant_new_boolean(text[0] == 't'));
        if (is_integer(text)) {
                gint64 x;

                if (!g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, &x, NULL)) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                                    "'%s' does not fit in a 64-bit integer", text);
                        return NULL;
                }
                return g_variant_ref_sink(g_variant_new_int64(x));
        }
        if (is_decimal(text)) {
                double d = g_ascii_strtod(text, NULL);

                if (!isfinite(d)) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "'%s' is out of range for a number",
                                    text);
                        return NULL;
                }
                return g_variant_ref_sink(g_variant_new_double(d));
        }
        return g_variant_ref_sink(g_variant_new_string(text));
}

static gboolean key_is_valid(const char *key, gsize len)
{
        if (len == 0)
                return FALSE;
        for (gsize i = 0; i < len; i++)
                if (!g_ascii_isalnum(key[i]) && key[i] != '_' && key[i] != '-' && key[i] != '.')
                        return FALSE;
        return TRUE;
}

GVariant *cli_settings_parse(const char *const *assignments, GError **error)
{
        g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

        for (gsize i = 0; assignments[i]; i++) {
                const char *arg = assignments[i];
                const char *eq = strchr(arg, '=');
                g_autofree char *key = NULL;
                g_autoptr(GError) local_error = NULL;
                g_autoptr(GVariant) value = NULL;

                if (!eq || !key_is_valid(arg, (gsize)(eq - arg))) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                                    "'%s' is not KEY=VALUE (a key is letters, digits, '_', '-', '.')", arg);
                        return NULL;
                }
                key = g_strndup(arg, (gsize)(eq - arg));
                if (!g_hash_table_add(seen, g_strdup(key))) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "%s is given twice", key);
                        return NULL;
                }
                value = cli_setting_value_parse(eq + 1, &local_error);
                if (!value) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "%s: %s", key, local_error->message);
                        return NULL;
                }
                g_variant_builder_add(&builder, "{sv}", key, value);
        }
        return g_variant_ref_sink(g_variant_builder_end(&builder));
}
