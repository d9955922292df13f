/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GVariant ⇄ sd-bus message values, and error names. Recursion depth is
 * bounded by the D-Bus limits sd-bus enforces on signatures (32 nested
 * arrays, 32 structs), so a hostile signature cannot exhaust the stack.
 */
#include <errno.h>
#include <string.h>

#include "dbus-util.h"
#include "deb-rpc.h"
#include "process-manager.h"

static int append_basic(sd_bus_message *m, char type, GVariant *value)
{
        union {
                int b;
                guint8 y;
                gint16 n;
                guint16 q;
                gint32 i;
                guint32 u;
                gint64 x;
                guint64 t;
                double d;
        } v;

        switch (type) {
        case 'b':
                v.b = g_variant_get_boolean(value);
                break;
        case 'y':
                v.y = g_variant_get_byte(value);
                break;
        case 'n':
                v.n = g_variant_get_int16(value);
                break;
        case 'q':
                v.q = g_variant_get_uint16(value);
                break;
        case 'i':
                v.i = g_variant_get_int32(value);
                break;
        case 'u':
                v.u = g_variant_get_uint32(value);
                break;
        case 'x':
                v.x = g_variant_get_int64(value);
                break;
        case 't':
                v.t = g_variant_get_uint64(value);
                break;
        case 'd':
                v.d = g_variant_get_double(value);
                break;
        case 's':
        case 'o':
        case 'g':
                return sd_bus_message_append_basic(m, type, g_variant_get_string(value, NULL));
        default:
                return -EINVAL; /* 'h': an index into a GVariant's fd list means nothing here */
        }
        return sd_bus_message_append_basic(m, type, &v);
}

/** dbus_append_gvariant: see dbus-util.h. */
int dbus_append_gvariant(sd_bus_message *m, GVariant *value)
{
        const char *sig = g_variant_get_type_string(value);
        g_autofree char *contents = NULL;
        GVariantIter iter;
        GVariant *child;
        char container;
        int r;

        switch (sig[0]) {
        case 'v': {
                g_autoptr(GVariant) inner = g_variant_get_variant(value);

                r = sd_bus_message_open_container(m, 'v', g_variant_get_type_string(inner));
                if (r < 0)
                        return r;
                r = dbus_append_gvariant(m, inner);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        case 'a':
                container = 'a';
                contents = g_strdup(sig + 1);
                break;
        case '(':
        case '{':
                container = sig[0] == '(' ? 'r' : 'e';
                contents = g_strndup(sig + 1, strlen(sig) - 2);
                break;
        case 'm':
                return -EINVAL;
        default:
                return append_basic(m, sig[0], value);
        }

        r = sd_bus_message_open_container(m, container, contents);
        if (r < 0)
                return r;
        g_variant_iter_init(&iter, value);
        while ((child = g_variant_iter_next_value(&iter))) {
                r = dbus_append_gvariant(m, child);
                g_variant_unref(child);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int read_basic(sd_bus_message *m, char type, GVariant **ret)
{
        union {
                int b;
                guint8 y;
                gint16 n;
                guint16 q;
                gint32 i;
                guint32 u;
                gint64 x;
                guint64 t;
                double d;
                const char *s;
        } v;
        GVariant *value;
        int r;

        r = sd_bus_message_read_basic(m, type, &v);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;
        switch (type) {
        case 'b':
                value = g_variant_new_boolean(v.b);
                break;
        case 'y':
                value = g_variant_new_byte(v.y);
                break;
        case 'n':
                value = g_variant_new_int16(v.n);
                break;
        case 'q':
                value = g_variant_new_uint16(v.q);
                break;
        case 'i':
                value = g_variant_new_int32(v.i);
                break;
        case 'u':
                value = g_variant_new_uint32(v.u);
                break;
        case 'x':
                value = g_variant_new_int64(v.x);
                break;
        case 't':
                value = g_variant_new_uint64(v.t);
                break;
        case 'd':
                value = g_variant_new_double(v.d);
                break;
        case 's':
                value = g_variant_new_string(v.s);
                break;
        case 'o':
                value = g_variant_new_object_path(v.s);
                break;
        case 'g':
                value = g_variant_new_signature(v.s);
                break;
        default:
                return -EINVAL;
        }
        *ret = g_variant_ref_sink(value);
        return 0;
}

/* The signature of one GVariantType, as a string for sd-bus. */
static char *type_dup_string(const GVariantType *type)
{
        return g_strndup(g_variant_type_peek_string(type), g_variant_type_get_string_length(type));
}

/** dbus_read_gvariant: see dbus-util.h. */
int dbus_read_gvariant(sd_bus_message *m, const char *type, GVariant **ret)
{
        g_autoptr(GVariantType) gtype = NULL;
        g_autofree char *contents = NULL;
        GVariantBuilder builder;
        char container;
        int r;

        if (!g_variant_type_string_is_valid(type))
                return -EINVAL;
        switch (type[0]) {
        case 'v': {
                g_autoptr(GVariant) inner = NULL;
                const char *inner_type = NULL;

                r = sd_bus_message_peek_type(m, NULL, &inner_type);
                if (r <= 0)
                        return r < 0 ? r : -EBADMSG;
                r = sd_bus_message_enter_container(m, 'v', inner_type);
                if (r <= 0)
                        return r < 0 ? r : -EBADMSG;
                r = dbus_read_gvariant(m, inner_type, &inner);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                *ret = g_variant_ref_sink(g_variant_new_variant(inner));
                return 0;
        }
        case 'a':
                container = 'a';
                contents = g_strdup(type + 1);
                break;
        case '(':
        case '{':
                container = type[0] == '(' ? 'r' : 'e';
                contents = g_strndup(type + 1, strlen(type) - 2);
                break;
        case 'm':
        case 'h':
                return -EINVAL;
        default:
                return read_basic(m, type[0], ret);
        }

        gtype = g_variant_type_new(type);
        r = sd_bus_message_enter_container(m, container, contents);
        if (r <= 0)
                return r < 0 ? r : -EBADMSG;
        g_variant_builder_init(&builder, gtype);
        if (container == 'a') {
                while ((r = sd_bus_message_at_end(m, FALSE)) == 0) {
                        GVariant *child = NULL;

                        r = dbus_read_gvariant(m, contents, &child);
                        if (r < 0)
                                break;
                        g_variant_builder_add_value(&builder, child);
                        g_variant_unref(child);
                }
        } else {
                r = 0;
                for (const GVariantType *t = g_variant_type_first(gtype); t && r >= 0;
                     t = g_variant_type_next(t)) {
                        g_autofree char *child_type = type_dup_string(t);
                        GVariant *child = NULL;

                        r = dbus_read_gvariant(m, child_type, &child);
                        if (r < 0)
                                break;
                        g_variant_builder_add_value(&builder, child);
                        g_variant_unref(child);
                }
        }
        if (r < 0) {
                g_variant_builder_clear(&builder);
                return r;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0) {
                g_variant_builder_clear(&builder);
                return r;
        }
        *ret = g_variant_ref_sink(g_variant_builder_end(&builder));
        return 0;
}

/** dbus_error_name_for: see dbus-util.h. */
const char *dbus_error_name_for(const GError *error)
{
        if (error->domain == PROCESS_MANAGER_ERROR) {
                switch ((ProcessManagerError)error->code) {
                case PROCESS_MANAGER_ERROR_NOT_FOUND:
                        return DBUS_ERROR_NOT_FOUND;
                case PROCESS_MANAGER_ERROR_INVALID_OPERATION:
                case PROCESS_MANAGER_ERROR_CANCELLED:
                        return DBUS_ERROR_INVALID_OPERATION;
                case PROCESS_MANAGER_ERROR_INVALID_ARGUMENT:
                        return DBUS_ERROR_INVALID_ARGS;
                case PROCESS_MANAGER_ERROR_FAILED:
                case PROCESS_MANAGER_ERROR_CONFIGURATION:
                        return DBUS_ERROR_EXECUTION;
                }
                return DBUS_ERROR_EXECUTION;
        }
        if (error->domain == DEB_RPC_ERROR) {
                switch ((DebRpcError)error->code) {
                case DEB_RPC_ERROR_TIMEOUT:
                        return DBUS_ERROR_TIMEOUT;
                case DEB_RPC_ERROR_NOT_FOUND:
                        return DBUS_ERROR_NOT_FOUND;
                case DEB_RPC_ERROR_INVALID_OPERATION:
                        return DBUS_ERROR_INVALID_OPERATION;
                case DEB_RPC_ERROR_INVALID_ARGUMENT:
                        return DBUS_ERROR_INVALID_ARGS;
                case DEB_RPC_ERROR_COMMUNICATION:
                case DEB_RPC_ERROR_CIRCUIT_OPEN:
                case DEB_RPC_ERROR_LIMIT:
                case DEB_RPC_ERROR_REFUSED:
                case DEB_RPC_ERROR_PROTOCOL:
                case DEB_RPC_ERROR_CANCELLED:
                        return DBUS_ERROR_COMMUNICATION;
                case DEB_RPC_ERROR_FAILED:
                case DEB_RPC_ERROR_EXECUTION:
                        return DBUS_ERROR_EXECUTION;
                }
        }
        return DBUS_ERROR_EXECUTION;
}

/** dbus_reply_gerror: see dbus-util.h. */
int dbus_reply_gerror(sd_bus_message *call, const GError *error)
{
        return sd_bus_reply_method_errorf(call, dbus_error_name_for(error), "%s", error->message);
}

/** dbus_reply_gvariant: see dbus-util.h. */
int dbus_reply_gvariant(sd_bus_message *call, GVariant *value)
{
        __attribute__((cleanup(sd_bus_message_unrefp))) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(call, &reply);
        if (r < 0)
                return r;
        /* A tuple is the reply's arguments; anything else is the one argument. */
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_TUPLE)) {
                GVariantIter iter;
                GVariant *child;

                g_variant_iter_init(&iter, value);
                while (r >= 0 && (child = g_variant_iter_next_value(&iter))) {
                        r = dbus_append_gvariant(reply, child);
                        g_variant_unref(child);
                }
        } else
                r = dbus_append_gvariant(reply, value);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
