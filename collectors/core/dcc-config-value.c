/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Setting values: parsing from --set text and from JSON, range checks, and
 * the checks of a schema entry itself. The same rules whatever the source,
 * so a value refused in an UpdateConfig is refused on the command line too.
 */
#include <math.h>
#include <string.h>

#include "dcc-collector.h"
#include "dcc-config-store.h"

#define KEY_MAX_LEN 64
/* A string setting without a declared length limit still must fit in a reply. */
#define STRING_DEFAULT_MAX_LEN 4096

const char *dcc_config_type_to_string(DccConfigType type)
{
        switch (type) {
        case DCC_CONFIG_INT:
                return "int";
        case DCC_CONFIG_UINT:
                return "uint";
        case DCC_CONFIG_BOOL:
                return "bool";
        case DCC_CONFIG_STRING:
                return "string";
        case DCC_CONFIG_DOUBLE:
                return "double";
        }
        return "unknown";
}

char *dcc_config_value_to_string(const DccConfigValue *value)
{
        char buf[G_ASCII_DTOSTR_BUF_SIZE];

        switch (value->type) {
        case DCC_CONFIG_INT:
                return g_strdup_printf("%" G_GINT64_FORMAT, value->int_value);
        case DCC_CONFIG_UINT:
                return g_strdup_printf("%" G_GUINT64_FORMAT, value->uint_value);
        case DCC_CONFIG_BOOL:
                return g_strdup(value->bool_value ? "true" : "false");
        case DCC_CONFIG_STRING:
                return g_strdup(value->string_value);
        case DCC_CONFIG_DOUBLE:
                return g_strdup(g_ascii_dtostr(buf, sizeof(buf), value->double_value));
        }
        return g_strdup("");
}

gboolean dcc_config_value_equal(const DccConfigValue *a, const DccConfigValue *b)
{
        if (a->type != b->type)
                return FALSE;
        switch (a->type) {
        case DCC_CONFIG_INT:
                return a->int_value == b->int_value;
        case DCC_CONFIG_UINT:
                return a->uint_value == b->uint_value;
        case DCC_CONFIG_BOOL:
                return !a->bool_value == !b->bool_value;
        case DCC_CONFIG_STRING:
                return strcmp(a->string_value, b->string_value) == 0;
        case DCC_CONFIG_DOUBLE:
                return a->double_value == b->double_value;
        }
        return FALSE;
}

void dcc_config_value_copy(DccConfigValue *dst, const DccConfigValue *src)
{
        *dst = *src;
        if (src->type == DCC_CONFIG_STRING)
                dst->string_value = g_strdup(src->string_value);
}

void dcc_config_value_clear(DccConfigValue *value)
{
        if (value->type == DCC_CONFIG_STRING) {
                g_free((char *)value->string_value);
                value->string_value = "";
        }
}

static gboolean key_name_is_valid(const char *name)
{
        gsize len = name ? strlen(name) : 0;

        if (len == 0 || len > KEY_MAX_LEN)
                return FALSE;
        for (gsize i = 0; i < len; i++)
                if (!g_ascii_isalnum(name[i]) && name[i] != '_' && name[i] != '-')
                        return FALSE;
        return TRUE;
}

static gboolean key_has_range(const DccConfigKey *key)
{
        switch (key->type) {
        case DCC_CONFIG_INT:
                return key->min.i != 0 || key->max.i != 0;
        case DCC_CONFIG_UINT:
        case DCC_CONFIG_STRING:
                return key->min.u != 0 || key->max.u != 0;
        case DCC_CONFIG_DOUBLE:
                return key->min.d != 0.0 || key->max.d != 0.0;
        case DCC_CONFIG_BOOL:
                return FALSE;
        }
        return FALSE;
}

/* "10..60000", as error messages and capabilities show a range. */
static char *key_describe_range(const DccConfigKey *key)
{
        char lo[G_ASCII_DTOSTR_BUF_SIZE], hi[G_ASCII_DTOSTR_BUF_SIZE];

        switch (key->type) {
        case DCC_CONFIG_INT:
                return g_strdup_printf("%" G_GINT64_FORMAT "..%" G_GINT64_FORMAT, key->min.i, key->max.i);
        case DCC_CONFIG_UINT:
        case DCC_CONFIG_STRING:
                return g_strdup_printf("%" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT, key->min.u, key->max.u);
        case DCC_CONFIG_DOUBLE:
                return g_strdup_printf("%s..%s", g_ascii_dtostr(lo, sizeof(lo), key->min.d),
                                       g_ascii_dtostr(hi, sizeof(hi), key->max.d));
        case DCC_CONFIG_BOOL:
                break;
        }
        return g_strdup("");
}

static gboolean value_check_range(const DccConfigKey *key, const DccConfigValue *value, GError **error)
{
        g_autofree char *range = NULL;
        g_autofree char *text = NULL;
        gboolean ok = TRUE;

        if (key->type == DCC_CONFIG_STRING) {
                gsize len = strlen(value->string_value);
                guint64 max = key_has_range(key) ? key->max.u : STRING_DEFAULT_MAX_LEN;
                guint64 min = key_has_range(key) ? key->min.u : 0;

                if (len < min || len > max) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "a string of %zu bytes is out of range: %" G_GUINT64_FORMAT
                                    "..%" G_GUINT64_FORMAT " bytes",
                                    len, min, max);
                        return FALSE;
                }
                return TRUE;
        }
        if (!key_has_range(key))
                return TRUE;
        switch (key->type) {
        case DCC_CONFIG_INT:
                ok = value->int_value >= key->min.i && value->int_value <= key->max.i;
                break;
        case DCC_CONFIG_UINT:
                ok = value->uint_value >= key->min.u && value->uint_value <= key->max.u;
                break;
        case DCC_CONFIG_DOUBLE:
                ok = value->double_value >= key->min.d && value->double_value <= key->max.d;
                break;
        default:
                break;
        }
        if (ok)
                return TRUE;
        range = key_describe_range(key);
        text = dcc_config_value_to_string(value);
        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "%s is out of range %s", text, range);
        return FALSE;
}

static gboolean parse_bool(const char *text, gboolean *out)
{
        static const char *const truths[] = {"true", "yes", "on", "1"};
        static const char *const lies[] = {"false", "no", "off", "0"};

        for (gsize i = 0; i < G_N_ELEMENTS(truths); i++) {
                if (g_ascii_strcasecmp(text, truths[i]) == 0) {
                        *out = TRUE;
                        return TRUE;
                }
                if (g_ascii_strcasecmp(text, lies[i]) == 0) {
                        *out = FALSE;
                        return TRUE;
                }
        }
        return FALSE;
}

gboolean dcc_config_parse_string(const DccConfigKey *key, const char *text, DccConfigValue *out, GError **error)
{
        DccConfigValue value = {.type = key->type};
        char *end = NULL;

        switch (key->type) {
        case DCC_CONFIG_INT:
                if (!g_ascii_string_to_signed(text, 10, G_MININT64, G_MAXINT64, &value.int_value, NULL)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "expected an integer, got '%s'", text);
                        return FALSE;
                }
                break;
        case DCC_CONFIG_UINT:
                if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &value.uint_value, NULL)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "expected an unsigned integer, got '%s'", text);
                        return FALSE;
                }
                break;
        case DCC_CONFIG_BOOL:
                if (!parse_bool(text, &value.bool_value)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "expected a boolean (true/false, yes/no, on/off, 1/0), got '%s'", text);
                        return FALSE;
                }
                break;
        case DCC_CONFIG_DOUBLE:
                /* strtod skips leading blanks and takes "nan"/"inf": neither is a setting. */
                if (*text == '\0' || g_ascii_isspace(*text) ||
                    (value.double_value = g_ascii_strtod(text, &end), *end != '\0') ||
                    !isfinite(value.double_value)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "expected a finite number, got '%s'", text);
                        return FALSE;
                }
                break;
        case DCC_CONFIG_STRING:
                if (!g_utf8_validate(text, -1, NULL)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "expected UTF-8 text");
                        return FALSE;
                }
                value.string_value = text;
                break;
        }
        if (!value_check_range(key, &value, error))
                return FALSE;
        dcc_config_value_copy(out, &value);
        return TRUE;
}

const char *dcc_config_key_default_text(const DccConfigKey *key)
{
        if (key->default_value)
                return key->default_value;
        switch (key->type) {
        case DCC_CONFIG_BOOL:
                return "false";
        case DCC_CONFIG_STRING:
                return "";
        default:
                return "0";
        }
}

const char *dcc_config_json_describe(JsonNode *node)
{
        GType type;

        switch (json_node_get_node_type(node)) {
        case JSON_NODE_OBJECT:
                return "an object";
        case JSON_NODE_ARRAY:
                return "an array";
        case JSON_NODE_NULL:
                return "null";
        case JSON_NODE_VALUE:
                break;
        }
        type = json_node_get_value_type(node);
        if (type == G_TYPE_INT64)
                return "an integer";
        if (type == G_TYPE_DOUBLE)
                return "a number with a fraction or exponent";
        if (type == G_TYPE_BOOLEAN)
                return "a boolean";
        if (type == G_TYPE_STRING)
                return "a string";
        return "a value of unknown type";
}

gboolean dcc_config_parse_json(const DccConfigKey *key, JsonNode *node, DccConfigValue *out, GError **error)
{
        static const char *const expected[] = {
                [DCC_CONFIG_INT] = "an integer",  [DCC_CONFIG_UINT] = "an unsigned integer",
                [DCC_CONFIG_BOOL] = "a boolean",  [DCC_CONFIG_STRING] = "a string",
                [DCC_CONFIG_DOUBLE] = "a number",
        };
        DccConfigValue value = {.type = key->type};
        GType type = G_TYPE_INVALID;

        if (JSON_NODE_HOLDS_NULL(node))
                return dcc_config_parse_string(key, dcc_config_key_default_text(key), out, error);
        if (JSON_NODE_HOLDS_VALUE(node))
                type = json_node_get_value_type(node);

        switch (key->type) {
        case DCC_CONFIG_INT:
                if (type != G_TYPE_INT64)
                        goto wrong_type;
                value.int_value = json_node_get_int(node);
                break;
        case DCC_CONFIG_UINT:
                if (type != G_TYPE_INT64)
                        goto wrong_type;
                if (json_node_get_int(node) < 0) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "expected an unsigned integer, got %" G_GINT64_FORMAT,
                                    json_node_get_int(node));
                        return FALSE;
                }
                value.uint_value = (guint64)json_node_get_int(node);
                break;
        case DCC_CONFIG_BOOL:
                if (type != G_TYPE_BOOLEAN)
                        goto wrong_type;
                value.bool_value = json_node_get_boolean(node);
                break;
        case DCC_CONFIG_DOUBLE:
                if (type == G_TYPE_INT64)
                        value.double_value = (double)json_node_get_int(node);
                else if (type == G_TYPE_DOUBLE)
                        value.double_value = json_node_get_double(node);
                else
                        goto wrong_type;
                break;
        case DCC_CONFIG_STRING:
                if (type != G_TYPE_STRING)
                        goto wrong_type;
                /* json-glib has checked the UTF-8 of the document. */
                value.string_value = json_node_get_string(node);
                break;
        }
        if (!value_check_range(key, &value, error))
                return FALSE;
        dcc_config_value_copy(out, &value);
        return TRUE;

wrong_type:
        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "expected %s, got %s", expected[key->type],
                    dcc_config_json_describe(node));
        return FALSE;
}

gboolean dcc_config_key_check(const DccConfigKey *key, GError **error)
{
        if (!key_name_is_valid(key->key)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                            "config schema: key '%s' is not 1..%d bytes of [A-Za-z0-9_-]", key->key, KEY_MAX_LEN);
                return FALSE;
        }
        if ((guint)key->type > DCC_CONFIG_DOUBLE) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "config schema: key '%s': type %d unknown",
                            key->key, (int)key->type);
                return FALSE;
        }
        if (key_has_range(key) &&
            ((key->type == DCC_CONFIG_INT && key->min.i > key->max.i) ||
             ((key->type == DCC_CONFIG_UINT || key->type == DCC_CONFIG_STRING) && key->min.u > key->max.u) ||
             (key->type == DCC_CONFIG_DOUBLE && !(key->min.d <= key->max.d)))) {
                g_autofree char *range = key_describe_range(key);

                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                            "config schema: key '%s': range %s is inverted", key->key, range);
                return FALSE;
        }
        return TRUE;
}
