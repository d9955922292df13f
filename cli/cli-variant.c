/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sd-bus messages to and from GVariants, and GVariants to JSON.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "cli-variant.h"

static int variant_read_one(sd_bus_message *message, GVariant **out);

/* Reads the members of the container just entered until its end. */
static int variant_read_members(sd_bus_message *message, GPtrArray *members)
{
        for (;;) {
                GVariant *member = NULL;
                int r = variant_read_one(message, &member);

                if (r <= 0)
                        return r;
                g_ptr_array_add(members, member);
        }
}

static int variant_read_container(sd_bus_message *message, char type, const char *contents, GVariant **out)
{
        g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        GVariant *value;
        int r;

        r = sd_bus_message_enter_container(message, type, contents);
        if (r < 0)
                return r;
        r = variant_read_members(message, members);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(message);
        if (r < 0)
                return r;

        switch (type) {
        case SD_BUS_TYPE_ARRAY:
                value = g_variant_new_array(G_VARIANT_TYPE(contents), (GVariant **)members->pdata,
                                            members->len);
                break;
        case SD_BUS_TYPE_VARIANT:
                if (members->len != 1)
                        return -EBADMSG;
                value = g_variant_new_variant(members->pdata[0]);
                break;
        case SD_BUS_TYPE_STRUCT:
                value = g_variant_new_tuple((GVariant **)members->pdata, members->len);
                break;
        case SD_BUS_TYPE_DICT_ENTRY:
                if (members->len != 2)
                        return -EBADMSG;
                value = g_variant_new_dict_entry(members->pdata[0], members->pdata[1]);
                break;
        default:
                return -EBADMSG;
        }
        *out = g_variant_ref_sink(value);
        return 1;
}

/* Returns: 1 with a (full) reference in @out, 0 at the end of the current container, or -errno. */
static int variant_read_one(sd_bus_message *message, GVariant **out)
{
        union {
                uint8_t y;
                int b;
                int16_t n;
                uint16_t q;
                int32_t i;
                uint32_t u;
                int64_t x;
                uint64_t t;
                double d;
                const char *s;
                int h;
        } v;
        const char *contents = NULL;
        GVariant *value;
        char type;
        int r;

        r = sd_bus_message_peek_type(message, &type, &contents);
        if (r <= 0)
                return r;
        if (type == SD_BUS_TYPE_ARRAY || type == SD_BUS_TYPE_VARIANT || type == SD_BUS_TYPE_STRUCT ||
            type == SD_BUS_TYPE_DICT_ENTRY)
                return variant_read_container(message, type, contents, out);

        r = sd_bus_message_read_basic(message, type, &v);
        if (r < 0)
                return r;
        switch (type) {
        case SD_BUS_TYPE_BYTE:
                value = g_variant_new_byte(v.y);
                break;
        case SD_BUS_TYPE_BOOLEAN:
                value = g_variant_new_boolean(v.b);
                break;
        case SD_BUS_TYPE_INT16:
                value = g_variant_new_int16(v.n);
                break;
        case SD_BUS_TYPE_UINT16:
                value = g_variant_new_uint16(v.q);
                break;
        case SD_BUS_TYPE_INT32:
                value = g_variant_new_int32(v.i);
                break;
        case SD_BUS_TYPE_UINT32:
                value = g_variant_new_uint32(v.u);
                break;
        case SD_BUS_TYPE_INT64:
                value = g_variant_new_int64(v.x);
                break;
        case SD_BUS_TYPE_UINT64:
                value = g_variant_new_uint64(v.t);
                break;
        case SD_BUS_TYPE_DOUBLE:
                value = g_variant_new_double(v.d);
                break;
        case SD_BUS_TYPE_STRING:
                value = g_variant_new_string(v.s);
                break;
        case SD_BUS_TYPE_OBJECT_PATH:
                value = g_variant_new_object_path(v.s);
                break;
        case SD_BUS_TYPE_SIGNATURE:
                value = g_variant_new_signature(v.s);
                break;
        case SD_BUS_TYPE_UNIX_FD:
                value = g_variant_new_handle(v.h);
                break;
        default:
                return -EBADMSG;
        }
        *out = g_variant_ref_sink(value);
        return 1;
}

GVariant *cli_variant_from_message(sd_bus_message *message, GError **error)
{
        g_autoptr(GPtrArray) members = g_ptr_array_new_with_free_func((GDestroyNotify)g_variant_unref);
        int r;

        r = sd_bus_message_rewind(message, 1);
        if (r >= 0)
                r = variant_read_members(message, members);
        if (r < 0) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot read the reply to %s.%s: %s",
                            sd_bus_message_get_interface(message) ? sd_bus_message_get_interface(message)
                                                                  : "?",
                            sd_bus_message_get_member(message) ? sd_bus_message_get_member(message) : "?",
                            g_strerror(-r));
                return NULL;
        }
        return g_variant_ref_sink(g_variant_new_tuple((GVariant **)members->pdata, members->len));
}

/* Appends each child of the container @value, in order. */
static int variant_append_children(sd_bus_message *message, GVariant *value)
{
        GVariantIter iter;
        GVariant *child;

        g_variant_iter_init(&iter, value);
        while ((child = g_variant_iter_next_value(&iter))) {
                int r = cli_variant_append(message, child);

                g_variant_unref(child);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int variant_append_container(sd_bus_message *message, char type, const char *contents,
                                    GVariant *value)
{
        int r;

        r = sd_bus_message_open_container(message, type, contents);
        if (r < 0)
                return r;
        r = variant_append_children(message, value);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(message);
}

int cli_variant_append(sd_bus_message *message, GVariant *value)
{
        const char *type = g_variant_get_type_string(value);

        switch (type[0]) {
        case 'b': {
                int b = g_variant_get_boolean(value);

                return sd_bus_message_append_basic(message, 'b', &b);
        }
        case 'y': {
                uint8_t y = g_variant_get_byte(value);

                return sd_bus_message_append_basic(message, 'y', &y);
        }
        case 'n': {
                int16_t n = g_variant_get_int16(value);

                return sd_bus_message_append_basic(message, 'n', &n);
        }
        case 'q': {
                uint16_t q = g_variant_get_uint16(value);

                return sd_bus_message_append_basic(message, 'q', &q);
        }
        case 'i': {
                int32_t i = g_variant_get_int32(value);

                return sd_bus_message_append_basic(message, 'i', &i);
        }
        case 'u': {
                uint32_t u = g_variant_get_uint32(value);

                return sd_bus_message_append_basic(message, 'u', &u);
        }
        case 'x': {
                int64_t x = g_variant_get_int64(value);

                return sd_bus_message_append_basic(message, 'x', &x);
        }
        case 't': {
                uint64_t t = g_variant_get_uint64(value);

                return sd_bus_message_append_basic(message, 't', &t);
        }
        case 'd': {
                double d = g_variant_get_double(value);

                return sd_bus_message_append_basic(message, 'd', &d);
        }
        case 's':
        case 'o':
        case 'g':
                return sd_bus_message_append_basic(message, type[0], g_variant_get_string(value, NULL));
        case 'v': {
                g_autoptr(GVariant) child = g_variant_get_variant(value);

                return variant_append_container(message, 'v', g_variant_get_type_string(child), value);
        }
        case 'a':
                return variant_append_container(message, 'a', type + 1, value);
        case '(':
        case '{': {
                /* D-Bus has no empty structure; sd-bus refuses "" contents. */
                g_autofree char *contents = g_strndup(type + 1, strlen(type) - 2);

                return variant_append_container(message, type[0] == '(' ? 'r' : 'e', contents, value);
        }
        default:
                return -EINVAL;
        }
}

int cli_variant_append_items(sd_bus_message *message, GVariant *tuple)
{
        g_return_val_if_fail(g_variant_is_of_type(tuple, G_VARIANT_TYPE_TUPLE), -EINVAL);
        return variant_append_children(message, tuple);
}

/* A dictionary key as a JSON member name: strings as they are, anything else printed. */
static char *variant_key_to_string(GVariant *key)
{
        if (g_variant_is_of_type(key, G_VARIANT_TYPE_STRING) ||
            g_variant_is_of_type(key, G_VARIANT_TYPE_OBJECT_PATH) ||
            g_variant_is_of_type(key, G_VARIANT_TYPE_SIGNATURE))
                return g_variant_dup_string(key, NULL);
        return g_variant_print(key, FALSE);
}

static JsonNode *variant_dict_to_json(GVariant *value)
{
        JsonObject *object = json_object_new();
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);
        GVariantIter iter;
        GVariant *entry;

        g_variant_iter_init(&iter, value);
        while ((entry = g_variant_iter_next_value(&iter))) {
                g_autoptr(GVariant) key = g_variant_get_child_value(entry, 0);
                g_autoptr(GVariant) member = g_variant_get_child_value(entry, 1);
                g_autofree char *name = variant_key_to_string(key);

                json_object_set_member(object, name, cli_variant_to_json(member));
                g_variant_unref(entry);
        }
        json_node_take_object(node, object);
        return node;
}

static JsonNode *variant_members_to_json(GVariant *value)
{
        JsonArray *array = json_array_new();
        JsonNode *node = json_node_new(JSON_NODE_ARRAY);
        GVariantIter iter;
        GVariant *child;

        g_variant_iter_init(&iter, value);
        while ((child = g_variant_iter_next_value(&iter))) {
                json_array_add_element(array, cli_variant_to_json(child));
                g_variant_unref(child);
        }
        json_node_take_array(node, array);
        return node;
}

/*
 * Not json_gvariant_serialize(): it turns a uint64 above G_MAXINT64 negative
 * and prints a non-finite double as "inf.0", which is not JSON.
 */
JsonNode *cli_variant_to_json(GVariant *value)
{
        JsonNode *node = json_node_alloc();

        switch (g_variant_classify(value)) {
        case G_VARIANT_CLASS_BOOLEAN:
                return json_node_init_boolean(node, g_variant_get_boolean(value));
        case G_VARIANT_CLASS_BYTE:
                return json_node_init_int(node, g_variant_get_byte(value));
        case G_VARIANT_CLASS_INT16:
                return json_node_init_int(node, g_variant_get_int16(value));
        case G_VARIANT_CLASS_UINT16:
                return json_node_init_int(node, g_variant_get_uint16(value));
        case G_VARIANT_CLASS_INT32:
                return json_node_init_int(node, g_variant_get_int32(value));
        case G_VARIANT_CLASS_UINT32:
                return json_node_init_int(node, g_variant_get_uint32(value));
        case G_VARIANT_CLASS_INT64:
                return json_node_init_int(node, g_variant_get_int64(value));
        case G_VARIANT_CLASS_HANDLE:
                return json_node_init_int(node, g_variant_get_handle(value));
        case G_VARIANT_CLASS_UINT64: {
                guint64 t = g_variant_get_uint64(value);

                /* JSON numbers have no limit, json-glib's integers do: a double keeps the magnitude. */
                if (t > (guint64)G_MAXINT64)
                        return json_node_init_double(node, (double)t);
                return json_node_init_int(node, (gint64)t);
        }
        case G_VARIANT_CLASS_DOUBLE: {
                double d = g_variant_get_double(value);

                return isfinite(d) ? json_node_init_double(node, d) : json_node_init_null(node);
        }
        case G_VARIANT_CLASS_STRING:
        case G_VARIANT_CLASS_OBJECT_PATH:
        case G_VARIANT_CLASS_SIGNATURE:
                return json_node_init_string(node, g_variant_get_string(value, NULL));
        case G_VARIANT_CLASS_VARIANT: {
                g_autoptr(GVariant) child = g_variant_get_variant(value);

                json_node_unref(node);
                return cli_variant_to_json(child);
        }
        case G_VARIANT_CLASS_MAYBE: {
                g_autoptr(GVariant) child = g_variant_get_maybe(value);

                if (!child)
                        return json_node_init_null(node);
                json_node_unref(node);
                return cli_variant_to_json(child);
        }
        case G_VARIANT_CLASS_ARRAY:
                json_node_unref(node);
                if (g_variant_type_is_dict_entry(g_variant_type_element(g_variant_get_type(value))))
                        return variant_dict_to_json(value);
                return variant_members_to_json(value);
        case G_VARIANT_CLASS_TUPLE:
        case G_VARIANT_CLASS_DICT_ENTRY:
                json_node_unref(node);
                return variant_members_to_json(value);
        }
        return json_node_init_null(node);
}

char *cli_property_name_to_json(const char *name)
{
        GString *key = g_string_sized_new(strlen(name) + 4);

        for (const char *p = name; *p; p++) {
                /* A word starts at an upper-case letter after a lower-case one or a digit ("BrokerSocket"),
                 * or at the last capital of an acronym followed by lower case ("HTTPServer"). */
                if (g_ascii_isupper(*p) && p > name &&
                    (g_ascii_islower(p[-1]) || g_ascii_isdigit(p[-1]) ||
                     (g_ascii_isupper(p[-1]) && g_ascii_islower(p[1]))))
                        g_string_append_c(key, '_');
                g_string_append_c(key, g_ascii_tolower(*p));
        }
        return g_string_free(key, FALSE);
}

JsonNode *cli_properties_to_json(GVariant *properties)
{
        JsonObject *object = json_object_new();
        JsonNode *node = json_node_new(JSON_NODE_OBJECT);
        GVariantIter iter;
        const char *name;
        GVariant *value;

        g_variant_iter_init(&iter, properties);
        while (g_variant_iter_next(&iter, "{&sv}", &name, &value)) {
                g_autofree char *key = cli_property_name_to_json(name);

                json_object_set_member(object, key, cli_variant_to_json(value));
                g_variant_unref(value);
        }
        json_node_take_object(node, object);
        return node;
}

const char *cli_variant_lookup_string(GVariant *dict, const char *key, const char *fallback)
{
        g_autoptr(GVariant) value = g_variant_lookup_value(dict, key, NULL);

        if (!value || !(g_variant_is_of_type(value, G_VARIANT_TYPE_STRING) ||
                        g_variant_is_of_type(value, G_VARIANT_TYPE_OBJECT_PATH)))
                return fallback;
        /* The string lives in @dict's data (or a child it holds), not only in @value. */
        return g_variant_get_string(value, NULL);
}

guint64 cli_variant_get_uint64(GVariant *value, guint64 fallback)
{
        gint64 x;

        switch (g_variant_classify(value)) {
        case G_VARIANT_CLASS_BOOLEAN:
                return g_variant_get_boolean(value) ? 1 : 0;
        case G_VARIANT_CLASS_BYTE:
                return g_variant_get_byte(value);
        case G_VARIANT_CLASS_UINT16:
                return g_variant_get_uint16(value);
        case G_VARIANT_CLASS_UINT32:
                return g_variant_get_uint32(value);
        case G_VARIANT_CLASS_UINT64:
                return g_variant_get_uint64(value);
        case G_VARIANT_CLASS_INT16:
                x = g_variant_get_int16(value);
                break;
        case G_VARIANT_CLASS_INT32:
                x = g_variant_get_int32(value);
                break;
        case G_VARIANT_CLASS_INT64:
                x = g_variant_get_int64(value);
                break;
        default:
                return fallback;
        }
        return x < 0 ? 0 : (guint64)x;
}

guint64 cli_variant_lookup_uint64(GVariant *dict, const char *key, guint64 fallback)
{
        g_autoptr(GVariant) value = g_variant_lookup_value(dict, key, NULL);

        return value ? cli_variant_get_uint64(value, fallback) : fallback;
}
