/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bus connection, method calls, and what a D-Bus error means for the
 * exit code.
 */
#include <errno.h>
#include <string.h>

#include "cli-bus.h"
#include "cli-variant.h"

typedef struct {
        const char *name;
        CliError code;
} CliBusErrorName;

static const CliBusErrorName cli_bus_error_names[] = {
        {"org.daemoneye.Error.InvalidArgs", CLI_ERROR_USAGE},
        {"org.freedesktop.DBus.Error.InvalidArgs", CLI_ERROR_USAGE},
        {"org.daemoneye.Error.PermissionDenied", CLI_ERROR_NOT_AUTHORIZED},
        {"org.freedesktop.DBus.Error.AccessDenied", CLI_ERROR_NOT_AUTHORIZED},
        {"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", CLI_ERROR_NOT_AUTHORIZED},
        {"org.freedesktop.DBus.Error.ServiceUnknown", CLI_ERROR_NOT_RUNNING},
        {"org.freedesktop.DBus.Error.NameHasNoOwner", CLI_ERROR_NOT_RUNNING},
        {"org.freedesktop.DBus.Error.Disconnected", CLI_ERROR_NOT_RUNNING},
};

CliError cli_bus_error_classify(const char *name, int errnum)
{
        if (name) {
                for (gsize i = 0; i < G_N_ELEMENTS(cli_bus_error_names); i++)
                        if (strcmp(name, cli_bus_error_names[i].name) == 0)
                                return cli_bus_error_names[i].code;
                /*
                 * Any other name is the agent's (or the bus's) verdict; only
                 * sd-bus's names for a bare errno ("System.Error.ECONNRESET")
                 * say something about the connection itself.
                 */
                if (!g_str_has_prefix(name, "System.Error."))
                        return CLI_ERROR_FAILED;
        }
        switch (errnum) {
        case ECONNRESET:
        case ECONNREFUSED:
        case ENOTCONN:
        case ENOENT:
        case ENXIO:
        case EPIPE:
        case ESHUTDOWN:
        case EHOSTUNREACH:
                return CLI_ERROR_NOT_RUNNING;
        case EACCES:
        case EPERM:
                return CLI_ERROR_NOT_AUTHORIZED;
        default:
                return CLI_ERROR_FAILED;
        }
}

/* @address: (nullable) the bus the call went to, for "not running". */
static void cli_bus_set_error_at(GError **error, const char *address, const sd_bus_error *bus_error, int r)
{
        const char *name = sd_bus_error_is_set(bus_error) ? bus_error->name : NULL;
        const char *message =
                bus_error && bus_error->message && *bus_error->message ? bus_error->message : NULL;
        CliError code = cli_bus_error_classify(name, -r);

        if (!message)
                message = name ? name : g_strerror(-r);
        if (code == CLI_ERROR_NOT_RUNNING)
                g_set_error(error, CLI_ERROR, code,
                            "daemoneye-agent is not running on the bus%s%s: %s — start it "
                            "(systemctl start daemoneye-agent) or give the bus it is on (--bus-address)",
                            address ? " at " : "", address ? address : "", message);
        else
                g_set_error_literal(error, CLI_ERROR, code, message);
}

void cli_bus_set_error(GError **error, const sd_bus_error *bus_error, int r)
{
        cli_bus_set_error_at(error, NULL, bus_error, r);
}

void cli_bus_set_call_error(GError **error, sd_bus *bus, const sd_bus_error *bus_error, int r)
{
        const char *address = NULL;

        (void)sd_bus_get_address(bus, &address);
        cli_bus_set_error_at(error, address, bus_error, r);
}

/* Returns: 0 with the started bus in @ret, or a negative errno. */
static int cli_bus_connect(const char *address, sd_bus **ret)
{
        g_autoptr(sd_bus) bus = NULL;
        int r;

        if (!address)
                return sd_bus_open_system(ret);
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0)
                return r;
        *ret = g_steal_pointer(&bus);
        return 0;
}

sd_bus *cli_bus_open(const CliOptions *options, GError **error)
{
        const char *address = options->bus_address;
        g_autoptr(sd_bus) bus = NULL;
        int r;

        if (address && !*address) {
                g_set_error_literal(error, CLI_ERROR, CLI_ERROR_USAGE, "--bus-address is empty");
                return NULL;
        }
        r = cli_bus_connect(address, &bus);
        if (r == -EINVAL && address) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE, "--bus-address '%s' is not a D-Bus address",
                            address);
                return NULL;
        }
        if (r < 0) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_NOT_RUNNING, "cannot connect to %s%s: %s",
                            address ? "the bus at " : "the system bus", address ? address : "",
                            g_strerror(-r));
                return NULL;
        }
        (void)sd_bus_set_description(bus, "daemoneye-cli");
        /* Applies to every method call made on this bus from now on. */
        r = sd_bus_set_allow_interactive_authorization(bus, !options->no_ask_password);
        if (r < 0) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot set up the bus connection: %s",
                            g_strerror(-r));
                return NULL;
        }
        return g_steal_pointer(&bus);
}

sd_bus_message *cli_bus_call_message(sd_bus *bus, const char *path, const char *interface,
                                     const char *member, GVariant *args, guint64 timeout_usec,
                                     GError **error)
{
        g_autoptr(GVariant) owned_args = args ? g_variant_ref_sink(args) : NULL;
        g_autoptr(sd_bus_message) call = NULL;
        g_autoptr(sd_bus_message) reply = NULL;
        g_auto(sd_bus_error) bus_error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, CLI_BUS_SERVICE, path, interface, member);
        if (r >= 0 && owned_args)
                r = cli_variant_append_items(call, owned_args);
        if (r < 0) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot build the call %s.%s: %s", interface,
                            member, g_strerror(-r));
                return NULL;
        }
        r = sd_bus_call(bus, call, timeout_usec, &bus_error, &reply);
        if (r < 0) {
                cli_bus_set_call_error(error, bus, &bus_error, r);
                return NULL;
        }
        return g_steal_pointer(&reply);
}

GVariant *cli_bus_call(sd_bus *bus, const char *path, const char *interface, const char *member,
                       GVariant *args, const char *reply_type, guint64 timeout_usec, GError **error)
{
        g_autoptr(sd_bus_message) message = NULL;
        g_autoptr(GVariant) reply = NULL;

        message = cli_bus_call_message(bus, path, interface, member, args, timeout_usec, error);
        if (!message)
                return NULL;
        reply = cli_variant_from_message(message, error);
        if (!reply)
                return NULL;
        /* Checked once here, so callers can g_variant_get() without second-guessing the agent. */
        if (reply_type && !g_variant_is_of_type(reply, G_VARIANT_TYPE(reply_type))) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "%s.%s on %s replied %s, expected %s",
                            interface, member, path, g_variant_get_type_string(reply), reply_type);
                return NULL;
        }
        return g_steal_pointer(&reply);
}

GVariant *cli_bus_call_one(sd_bus *bus, const char *path, const char *interface, const char *member,
                           GVariant *args, const char *reply_type, guint64 timeout_usec, GError **error)
{
        g_autoptr(GVariant) reply =
                cli_bus_call(bus, path, interface, member, args, reply_type, timeout_usec, error);

        return reply ? g_variant_get_child_value(reply, 0) : NULL;
}

GVariant *cli_bus_get_all(sd_bus *bus, const char *path, const char *interface, GError **error)
{
        return cli_bus_call_one(bus, path, "org.freedesktop.DBus.Properties", "GetAll",
                                g_variant_new("(s)", interface), "(a{sv})", CLI_BUS_TIMEOUT_DEFAULT, error);
}

GVariant *cli_bus_list_collectors(sd_bus *bus, GError **error)
{
        return cli_bus_call_one(bus, CLI_BUS_AGENT_PATH, CLI_BUS_AGENT_INTERFACE, "ListCollectors", NULL,
                                "(a(sso))", CLI_BUS_TIMEOUT_DEFAULT, error);
}

char *cli_bus_find_collector(sd_bus *bus, const char *id, GError **error)
{
        g_autoptr(GVariant) collectors = cli_bus_list_collectors(bus, error);
        g_autoptr(GString) known = NULL;
        GVariantIter iter;
        const char *cid, *path;

        if (!collectors)
                return NULL;
        g_variant_iter_init(&iter, collectors);
        while (g_variant_iter_next(&iter, "(&s&s&o)", &cid, NULL, &path))
                if (strcmp(cid, id) == 0)
                        return g_strdup(path);

        known = g_string_new(NULL);
        g_variant_iter_init(&iter, collectors);
        while (g_variant_iter_next(&iter, "(&s&s&o)", &cid, NULL, NULL))
                g_string_append_printf(known, "%s%s", known->len ? ", " : "", cid);
        g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "no collector '%s' (%s%s)", id,
                    known->len ? "collectors: " : "no collectors configured", known->str);
        return NULL;
}
