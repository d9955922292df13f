/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The D-Bus plumbing without a bus: which error exits with what, values
 * through an sd-bus message and back, and values as JSON.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "cli-bus.h"
#include "cli-variant.h"

typedef struct {
        const char *name;
        int errnum;
        int exit_code;
} ErrorCase;

static const ErrorCase error_cases[] = {
        {"org.daemoneye.Error.InvalidArgs", EINVAL, CLI_EXIT_USAGE},
        {"org.freedesktop.DBus.Error.InvalidArgs", EINVAL, CLI_EXIT_USAGE},
        {"org.daemoneye.Error.PermissionDenied", EACCES, CLI_EXIT_NOT_AUTHORIZED},
        {"org.freedesktop.DBus.Error.AccessDenied", EACCES, CLI_EXIT_NOT_AUTHORIZED},
        {"org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", EACCES, CLI_EXIT_NOT_AUTHORIZED},
        {"org.freedesktop.DBus.Error.ServiceUnknown", EHOSTUNREACH, CLI_EXIT_NOT_RUNNING},
        {"org.freedesktop.DBus.Error.NameHasNoOwner", ENXIO, CLI_EXIT_NOT_RUNNING},
        {"org.freedesktop.DBus.Error.Disconnected", ECONNRESET, CLI_EXIT_NOT_RUNNING},
        {"org.daemoneye.Error.NotFound", EIO, CLI_EXIT_FAILURE},
        {"org.daemoneye.Error.Timeout", ETIMEDOUT, CLI_EXIT_FAILURE},
        {"org.daemoneye.Error.InvalidOperation", EIO, CLI_EXIT_FAILURE},
        {"org.daemoneye.Error.ExecutionError", EIO, CLI_EXIT_FAILURE},
        {"org.daemoneye.Error.CommunicationError", EIO, CLI_EXIT_FAILURE},
        {"org.freedesktop.DBus.Error.NoReply", ETIMEDOUT, CLI_EXIT_FAILURE},
        {"org.freedesktop.DBus.Error.UnknownObject", ENXIO,
         CLI_EXIT_FAILURE}, /* a name says more than errno */
        {"org.freedesktop.DBus.Error.UnknownMethod", EBADR, CLI_EXIT_FAILURE},
        {"System.Error.ECONNRESET", ECONNRESET, CLI_EXIT_NOT_RUNNING},
        {"System.Error.EIO", EIO, CLI_EXIT_FAILURE},
        {NULL, ENOTCONN, CLI_EXIT_NOT_RUNNING},
        {NULL, ECONNREFUSED, CLI_EXIT_NOT_RUNNING},
        {NULL, EACCES, CLI_EXIT_NOT_AUTHORIZED},
        {NULL, ETIMEDOUT, CLI_EXIT_FAILURE},
};

static void test_error_exit_codes(void)
{
        for (gsize i = 0; i < G_N_ELEMENTS(error_cases); i++) {
                const ErrorCase *c = &error_cases[i];
                sd_bus_error bus_error = SD_BUS_ERROR_MAKE_CONST(c->name, "the agent's words");
                g_autoptr(GError) error = NULL;

                g_test_message("case %zu: %s", i, c->name ? c->name : "(errno only)");
                cli_bus_set_error(&error, c->name ? &bus_error : NULL, -c->errnum);
                g_assert_error(error, CLI_ERROR, (int)cli_bus_error_classify(c->name, c->errnum));
                g_assert_cmpint(cli_error_to_exit(error), ==, c->exit_code);
                if (c->name)
                        g_assert_nonnull(strstr(error->message, "the agent's words"));
        }
}

static void test_error_message_fallback(void)
{
        sd_bus_error bus_error = SD_BUS_ERROR_MAKE_CONST("org.daemoneye.Error.NotFound", NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) errno_only = NULL;

        /* No message from the agent: the error name is all there is to say. */
        cli_bus_set_error(&error, &bus_error, -EIO);
        g_assert_cmpstr(error->message, ==, "org.daemoneye.Error.NotFound");
        cli_bus_set_error(&errno_only, NULL, -ECONNRESET);
        g_assert_error(errno_only, CLI_ERROR, CLI_ERROR_NOT_RUNNING);
        g_assert_nonnull(strstr(errno_only->message, g_strerror(ECONNRESET)));
}

/*
 * A bus that never completes its handshake is enough to build messages:
 * sd-bus only needs it past BUS_UNSET. Sealing makes a message readable.
 */
static sd_bus *scratch_bus_new(int *peer_fd)
{
        sd_bus *bus = NULL;
        int fds[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, fds[0], fds[0]), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);
        *peer_fd = fds[1];
        return bus;
}

static const char *const roundtrip_cases[] = {
        "()",
        "(true, byte 0x07, int16 -3, uint16 4, -5, uint32 6, int64 -7, uint64 18446744073709551615, 2.5)",
        "('text', objectpath '/org/daemoneye/Agent1', signature 'a{sv}')",
        "('healthy', {'broker': <{'status': <'ok'>, 'message': <'3 connections'>}>})",
        "([('procmond', 'running', objectpath '/org/daemoneye/Agent1/collector/procmond')],)",
        "(@a(sso) [],)",
        "({'collectors': <[{'id': <'procmond'>, 'restart_count': <uint32 2>}]>, 'topics': <@a{sv} {}>},)",
        "(@as [], ['a', 'b'], {'cpu': 1.5, 'rss': 2.0})",
        "(<<<'nested'>>>,)",
        "({'skipped': <@a{ss} {'x': 'unchanged'}>, 'applied': <['a']>},)",
        "({int64 1: 'x', 2: 'y'},)",
};

static void test_message_roundtrip(void)
{
        int peer_fd;
        g_autoptr(sd_bus) bus = scratch_bus_new(&peer_fd);

        for (gsize i = 0; i < G_N_ELEMENTS(roundtrip_cases); i++) {
                g_autoptr(GVariant) value = g_variant_ref_sink(g_variant_new_parsed(roundtrip_cases[i]));
                g_autoptr(sd_bus_message) message = NULL;
                g_autoptr(GVariant) back = NULL;
                g_autoptr(GError) error = NULL;
                const char *type = g_variant_get_type_string(value);
                g_autofree char *signature = g_strndup(type + 1, strlen(type) - 2);

                g_test_message("case %zu: %s", i, roundtrip_cases[i]);
                g_assert_cmpint(sd_bus_message_new_method_call(bus, &message, "org.daemoneye.Agent1",
                                                               "/org/daemoneye/Agent1", "org.daemoneye.Test",
                                                               "M"),
                                >=, 0);
                g_assert_cmpint(cli_variant_append_items(message, value), ==, 0);
                g_assert_cmpint(sd_bus_message_seal(message, i + 1, 0), >=, 0);
                /* The body's signature is the tuple's type without the outer parentheses. */
                g_assert_cmpstr(sd_bus_message_get_signature(message, 1), ==, signature);
                back = cli_variant_from_message(message, &error);
                g_assert_no_error(error);
                g_assert_cmpstr(g_variant_get_type_string(back), ==, g_variant_get_type_string(value));
                g_assert_true(g_variant_equal(back, value));
        }
        close(peer_fd);
}

static void test_append_refuses_handles(void)
{
        int peer_fd;
        g_autoptr(sd_bus) bus = scratch_bus_new(&peer_fd);
        g_autoptr(sd_bus_message) message = NULL;
        g_autoptr(GVariant) handle = g_variant_ref_sink(g_variant_new_handle(0));
        g_autoptr(GVariant) maybe = g_variant_ref_sink(g_variant_new_parsed("just 'x'"));

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &message, "a.b", "/", "a.b", "M"), >=, 0);
        g_assert_cmpint(cli_variant_append(message, handle), ==, -EINVAL);
        g_assert_cmpint(cli_variant_append(message, maybe), ==, -EINVAL);
        close(peer_fd);
}

typedef struct {
        const char *variant;
        const char *json;
} JsonCase;

static const JsonCase json_cases[] = {
        {"true", "true"},
        {"byte 0xff", "255"},
        {"int16 -3", "-3"},
        {"uint32 4000000000", "4000000000"},
        {"int64 -9223372036854775808", "-9223372036854775808"},
        {"uint64 9223372036854775807", "9223372036854775807"},
        {"2.5", "2.5"},
        {"'he said \"hi\"'", "\"he said \\\"hi\\\"\""},
        {"objectpath '/a/b'", "\"/a/b\""},
        {"signature 'a{sv}'", "\"a{sv}\""},
        {"<<'x'>>", "\"x\""},
        {"@ms nothing", "null"},
        {"@ms 'x'", "\"x\""},
        {"@a{sv} {}", "{}"},
        {"@as []", "[]"},
        {"{'status': <'ok'>, 'n': <uint64 3>}", "{\"status\":\"ok\",\"n\":3}"},
        {"{1: 'x'}", "{\"1\":\"x\"}"},
        {"('a', 1)", "[\"a\",1]"},
        {"[<'a'>, <2>]", "[\"a\",2]"},
        {"[{'id': <'procmond'>}]", "[{\"id\":\"procmond\"}]"},
        {"{'cpu': 1.5}", "{\"cpu\":1.5}"},
};

static char *json_text(JsonNode *node)
{
        return json_to_string(node, FALSE);
}

static void test_variant_to_json(void)
{
        for (gsize i = 0; i < G_N_ELEMENTS(json_cases); i++) {
                g_autoptr(GVariant) value = g_variant_ref_sink(g_variant_new_parsed(json_cases[i].variant));
                g_autoptr(JsonNode) node = cli_variant_to_json(value);
                g_autofree char *text = json_text(node);

                g_test_message("case %zu: %s", i, json_cases[i].variant);
                g_assert_cmpstr(text, ==, json_cases[i].json);
        }
}

static void test_variant_to_json_edges(void)
{
        g_autoptr(GVariant) huge = g_variant_ref_sink(g_variant_new_uint64(G_MAXUINT64));
        g_autoptr(GVariant) nan = g_variant_ref_sink(g_variant_new_double(NAN));
        g_autoptr(GVariant) inf = g_variant_ref_sink(g_variant_new_double(-INFINITY));
        g_autoptr(JsonNode) huge_node = cli_variant_to_json(huge);
        g_autoptr(JsonNode) nan_node = cli_variant_to_json(nan);
        g_autoptr(JsonNode) inf_node = cli_variant_to_json(inf);

        /* Beyond json-glib's integers the magnitude survives as a double. */
        g_assert_cmpint(json_node_get_value_type(huge_node), ==, G_TYPE_DOUBLE);
        g_assert_cmpfloat(json_node_get_double(huge_node), ==, (double)G_MAXUINT64);
        /* JSON has no NaN or infinity. */
        g_assert_true(JSON_NODE_HOLDS_NULL(nan_node));
        g_assert_true(JSON_NODE_HOLDS_NULL(inf_node));
}

static const char *const name_cases[][2] = {
        {"Id", "id"},
        {"BrokerSocket", "broker_socket"},
        {"LastHeartbeat", "last_heartbeat"},
        {"Pid", "pid"},
        {"StartTime", "start_time"},
        {"HTTPServer", "http_server"},
        {"ConnectedClients", "connected_clients"},
        {"NRestarts", "n_restarts"},
        {"already_snake", "already_snake"},
        {"", ""},
};

static void test_property_names(void)
{
        for (gsize i = 0; i < G_N_ELEMENTS(name_cases); i++) {
                g_autofree char *key = cli_property_name_to_json(name_cases[i][0]);

                g_assert_cmpstr(key, ==, name_cases[i][1]);
        }
}

static void test_properties_to_json(void)
{
        g_autoptr(GVariant) properties = g_variant_ref_sink(g_variant_new_parsed(
                "{'Id': <'procmond'>, 'Pid': <uint32 42>, 'LastHeartbeat': <uint64 0>, 'EventsPublished': "
                "<uint64 7>}"));
        g_autoptr(JsonNode) node = cli_properties_to_json(properties);
        g_autofree char *text = json_text(node);

        g_assert_cmpstr(text, ==,
                        "{\"id\":\"procmond\",\"pid\":42,\"last_heartbeat\":0,\"events_published\":7}");
}

static void test_lookup(void)
{
        g_autoptr(GVariant) dict = g_variant_ref_sink(g_variant_new_parsed(
                "{'s': <'text'>, 'o': <objectpath '/x'>, 'u': <uint32 5>, 't': <uint64 6>, 'i': <-1>, "
                "'b': <true>, 'd': <1.5>}"));

        g_assert_cmpstr(cli_variant_lookup_string(dict, "s", NULL), ==, "text");
        g_assert_cmpstr(cli_variant_lookup_string(dict, "o", NULL), ==, "/x");
        g_assert_cmpstr(cli_variant_lookup_string(dict, "u", "fallback"), ==, "fallback");
        g_assert_cmpstr(cli_variant_lookup_string(dict, "absent", NULL), ==, NULL);
        g_assert_cmpuint(cli_variant_lookup_uint64(dict, "u", 0), ==, 5);
        g_assert_cmpuint(cli_variant_lookup_uint64(dict, "t", 0), ==, 6);
        g_assert_cmpuint(cli_variant_lookup_uint64(dict, "i", 9), ==, 0);
        g_assert_cmpuint(cli_variant_lookup_uint64(dict, "b", 9), ==, 1);
        g_assert_cmpuint(cli_variant_lookup_uint64(dict, "d", 9), ==, 9);
        g_assert_cmpuint(cli_variant_lookup_uint64(dict, "s", 9), ==, 9);
        g_assert_cmpuint(cli_variant_lookup_uint64(dict, "absent", 9), ==, 9);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli-bus/error-exit-codes", test_error_exit_codes);
        g_test_add_func("/cli-bus/error-message-fallback", test_error_message_fallback);
        g_test_add_func("/cli-bus/message-roundtrip", test_message_roundtrip);
        g_test_add_func("/cli-bus/append-refuses-handles", test_append_refuses_handles);
        g_test_add_func("/cli-bus/variant-to-json", test_variant_to_json);
        g_test_add_func("/cli-bus/variant-to-json-edges", test_variant_to_json_edges);
        g_test_add_func("/cli-bus/property-names", test_property_names);
        g_test_add_func("/cli-bus/properties-to-json", test_properties_to_json);
        g_test_add_func("/cli-bus/lookup", test_lookup);
        return g_test_run();
}
