/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for daemon/config.c: defaults, every key, drop-ins, every error kind. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "daemoneye-build-config.h"
#include "config.h"

typedef struct {
        char *dir;
        char *main_path;
        char *conf_d;
} Fixture;

static void fixture_set_up(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        f->dir = g_dir_make_tmp("test-config-XXXXXX", &error);
        g_assert_no_error(error);
        f->main_path = g_build_filename(f->dir, "daemoneye.conf", NULL);
        f->conf_d = g_build_filename(f->dir, "conf.d", NULL);
}

static void remove_tree(const char *path)
{
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;

        if (!dir) {
                g_remove(path);
                return;
        }
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *child = g_build_filename(path, name, NULL);

                if (g_file_test(child, G_FILE_TEST_IS_DIR) && !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
                        remove_tree(child);
                else
                        g_remove(child);
        }
        g_rmdir(path);
}

static void fixture_tear_down(Fixture *f, gconstpointer data)
{
        remove_tree(f->dir);
        g_free(f->dir);
        g_free(f->main_path);
        g_free(f->conf_d);
}

static void write_file(const char *path, const char *contents)
{
        g_autoptr(GError) error = NULL;

        g_file_set_contents(path, contents, -1, &error);
        g_assert_no_error(error);
}

static void write_drop_in(Fixture *f, const char *name, const char *contents)
{
        g_autofree char *path = g_build_filename(f->conf_d, name, NULL);

        g_assert_cmpint(g_mkdir_with_parents(f->conf_d, 0755), ==, 0);
        write_file(path, contents);
}

static void assert_defaults(const Config *c)
{
        g_assert_cmpstr(c->broker.socket_path, ==, DAEMONEYE_DEFAULT_SOCKET);
        g_assert_cmpuint(c->broker.startup_timeout_seconds, ==, 10);
        g_assert_cmpuint(c->broker.max_subscribers, ==, 1024);
        g_assert_cmpuint(c->broker.message_buffer_size, ==, 10000);
        g_assert_true(c->broker.enable_metrics);
        g_assert_cmpint(c->broker.drop_policy, ==, DROP_POLICY_DROP_OLDEST);
        g_assert_cmpuint(c->broker.max_frame_bytes, ==, 1048576);
        g_assert_cmpuint(c->broker.max_subscriptions_per_connection, ==, 1024);
        g_assert_cmpuint(c->broker.socket_mode, ==, 0660);
        g_assert_cmpuint(c->rpc.default_timeout_seconds, ==, 30);
        g_assert_cmpuint(c->rpc.health_check_interval_seconds, ==, 30);
        g_assert_true(c->rpc.enable_correlation_tracking);
        g_assert_cmpuint(c->rpc.max_pending_requests, ==, 1000);
        g_assert_null(c->rpc.audit_log_path);
        g_assert_cmpuint(c->process_manager.graceful_shutdown_timeout_seconds, ==, 30);
        g_assert_cmpuint(c->process_manager.force_shutdown_timeout_seconds, ==, 10);
        g_assert_cmpuint(c->process_manager.health_check_interval_seconds, ==, 60);
        g_assert_true(c->process_manager.enable_auto_restart);
        g_assert_cmpuint(c->process_manager.max_restart_attempts, ==, 3);
        g_assert_cmpuint(c->process_manager.restart_backoff_seconds, ==, 5);
        g_assert_nonnull(c->collector_groups);
        g_assert_null(c->collector_groups[0]);
}

static void test_defaults(void)
{
        g_autoptr(Config) c = config_new_default();

        assert_defaults(c);
        g_assert_null(c->path);
}

static void test_missing_file(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = NULL;

        c = config_load(f->main_path, FALSE, &error);
        g_assert_no_error(error);
        g_assert_nonnull(c);
        assert_defaults(c);
        g_assert_null(c->path);
        g_assert_null(c->files[0]);
        g_clear_pointer(&c, config_free);

        c = config_load(f->main_path, TRUE, &error);
        g_assert_null(c);
        g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_IO);
        g_assert_nonnull(strstr(error->message, f->main_path));
        g_assert_nonnull(strstr(error->message, g_strerror(ENOENT)));
}

static void test_empty_file(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = NULL;

        write_file(f->main_path, "# nothing set\n");
        c = config_load(f->main_path, TRUE, &error);
        g_assert_no_error(error);
        assert_defaults(c);
        g_assert_cmpstr(c->path, ==, f->main_path);
        g_assert_cmpstr(c->files[0], ==, f->main_path);
        g_assert_null(c->files[1]);
}

static void test_every_key(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = NULL;

        write_file(f->main_path, "[broker]\n"
                                 "socket_path=/tmp/x/bus.sock\n"
                                 "startup_timeout_seconds=3\n"
                                 "max_subscribers=7\n"
                                 "message_buffer_size=10000000\n"
                                 "enable_metrics=false\n"
                                 "drop_policy=disconnect\n"
                                 "max_frame_bytes=64\n"
                                 "max_subscriptions_per_connection=1\n"
                                 "socket_mode=0600\n"
                                 "[rpc]\n"
                                 "default_timeout_seconds=3600\n"
                                 "health_check_interval_seconds=86400\n"
                                 "enable_correlation_tracking=0\n"
                                 "max_pending_requests=1000000\n"
                                 "audit_log_path=/var/log/daemoneye/audit.log\n"
                                 "[process_manager]\n"
                                 "graceful_shutdown_timeout_seconds=1\n"
                                 "force_shutdown_timeout_seconds=2\n"
                                 "health_check_interval_seconds=3\n"
                                 "enable_auto_restart=false\n"
                                 "max_restart_attempts=0\n"
                                 "restart_backoff_seconds=3600\n"
                                 "[collector procmond]\n"
                                 "exec=/usr/libexec/daemoneye/procmond\n"
                                 "scan_interval_ms=500\n"
                                 "[collector net_mon-2]\n"
                                 "type=netmond\n");
        c = config_load(f->main_path, TRUE, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(c->broker.socket_path, ==, "/tmp/x/bus.sock");
        g_assert_cmpuint(c->broker.startup_timeout_seconds, ==, 3);
        g_assert_cmpuint(c->broker.max_subscribers, ==, 7);
        g_assert_cmpuint(c->broker.message_buffer_size, ==, 10000000);
        g_assert_false(c->broker.enable_metrics);
        g_assert_cmpint(c->broker.drop_policy, ==, DROP_POLICY_DISCONNECT);
        g_assert_cmpuint(c->broker.max_frame_bytes, ==, 64);
        g_assert_cmpuint(c->broker.max_subscriptions_per_connection, ==, 1);
        g_assert_cmpuint(c->broker.socket_mode, ==, 0600);
        g_assert_cmpuint(c->rpc.default_timeout_seconds, ==, 3600);
        g_assert_cmpuint(c->rpc.health_check_interval_seconds, ==, 86400);
        g_assert_false(c->rpc.enable_correlation_tracking);
        g_assert_cmpuint(c->rpc.max_pending_requests, ==, 1000000);
        g_assert_cmpstr(c->rpc.audit_log_path, ==, "/var/log/daemoneye/audit.log");
        g_assert_cmpuint(c->process_manager.graceful_shutdown_timeout_seconds, ==, 1);
        g_assert_cmpuint(c->process_manager.force_shutdown_timeout_seconds, ==, 2);
        g_assert_cmpuint(c->process_manager.health_check_interval_seconds, ==, 3);
        g_assert_false(c->process_manager.enable_auto_restart);
        g_assert_cmpuint(c->process_manager.max_restart_attempts, ==, 0);
        g_assert_cmpuint(c->process_manager.restart_backoff_seconds, ==, 3600);
        g_assert_cmpuint(g_strv_length(c->collector_groups), ==, 2);
        g_assert_cmpstr(c->collector_groups[0], ==, "collector procmond");
        g_assert_cmpstr(c->collector_groups[1], ==, "collector net_mon-2");
}

static void test_drop_policies(Fixture *f, gconstpointer data)
{
        static const struct {
                const char *text;
                DropPolicy policy;
        } table[] = {
                {"drop-oldest", DROP_POLICY_DROP_OLDEST},
                {"drop-newest", DROP_POLICY_DROP_NEWEST},
                {"disconnect", DROP_POLICY_DISCONNECT},
        };

        for (guint i = 0; i < G_N_ELEMENTS(table); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(Config) c = NULL;
                g_autofree char *text = g_strdup_printf("[broker]\ndrop_policy=%s\n", table[i].text);
                DropPolicy parsed;

                write_file(f->main_path, text);
                c = config_load(f->main_path, TRUE, &error);
                g_assert_no_error(error);
                g_assert_cmpint(c->broker.drop_policy, ==, table[i].policy);
                g_assert_cmpstr(drop_policy_to_string(table[i].policy), ==, table[i].text);
                g_assert_true(drop_policy_from_string(table[i].text, &parsed));
                g_assert_cmpint(parsed, ==, table[i].policy);
        }
}

static void test_drop_ins(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = NULL;
        g_autofree char *masked = g_build_filename(f->conf_d, "30-masked.conf", NULL);

        write_file(f->main_path, "[broker]\nmax_subscribers=10\nmessage_buffer_size=100\n"
                                 "[rpc]\nmax_pending_requests=5\n");
        /* Lexical order: 20 overrides 10, whatever the directory order is. */
        write_drop_in(f, "20-late.conf", "[broker]\nmax_subscribers=30\n");
        write_drop_in(f, "10-early.conf", "[broker]\nmax_subscribers=20\nstartup_timeout_seconds=4\n");
        /* Not *.conf, hidden, or masked: all ignored even though they would be errors. */
        write_drop_in(f, "README", "not a key file at all [[[\n");
        write_drop_in(f, ".hidden.conf", "[bogus]\n");
        g_assert_cmpint(symlink("/dev/null", masked), ==, 0);

        c = config_load(f->main_path, TRUE, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(c->broker.max_subscribers, ==, 30);
        g_assert_cmpuint(c->broker.startup_timeout_seconds, ==, 4);
        g_assert_cmpuint(c->broker.message_buffer_size, ==, 100); /* untouched by drop-ins */
        g_assert_cmpuint(c->rpc.max_pending_requests, ==, 5);
        g_assert_cmpuint(g_strv_length(c->files), ==, 3);
        g_assert_cmpstr(c->files[0], ==, f->main_path);
        g_assert_true(g_str_has_suffix(c->files[1], "conf.d/10-early.conf"));
        g_assert_true(g_str_has_suffix(c->files[2], "conf.d/20-late.conf"));
        g_clear_pointer(&c, config_free);

        /* Drop-ins still apply over the defaults when the main file is missing. */
        g_assert_cmpint(g_remove(f->main_path), ==, 0);
        c = config_load(f->main_path, FALSE, &error);
        g_assert_no_error(error);
        g_assert_null(c->path);
        g_assert_cmpuint(c->broker.max_subscribers, ==, 30);
        g_assert_cmpuint(c->broker.message_buffer_size, ==, 10000);
}

static void test_drop_in_error_names_drop_in(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = NULL;

        write_file(f->main_path, "[broker]\nmax_subscribers=10\n");
        write_drop_in(f, "50-bad.conf", "[broker]\nmax_subscribers=0\n");
        c = config_load(f->main_path, TRUE, &error);
        g_assert_null(c);
        g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_INVALID_VALUE);
        g_assert_true(g_str_has_suffix(
                error->message, "conf.d/50-bad.conf: [broker] max_subscribers: 0 is out of range 1..65536"));
}

typedef struct {
        const char *contents;
        ConfigError code;
        const char *expected; /* the message after "<path>: " */
} ErrorCase;

static const ErrorCase error_cases[] = {
        {"[broker\n", CONFIG_ERROR_PARSE, NULL},
        {"just text\n", CONFIG_ERROR_PARSE, NULL},
        {"[brokers]\n", CONFIG_ERROR_UNKNOWN_GROUP,
         "[brokers]: unknown group (accepted: broker, rpc, process_manager, collector <id>)"},
        {"[collector]\n", CONFIG_ERROR_UNKNOWN_GROUP, "[collector]: unknown group"},
        {"[broker]\nsocket=/x\n", CONFIG_ERROR_UNKNOWN_KEY,
         "[broker] socket: unknown key (accepted: socket_path, startup_timeout_seconds"},
        {"[rpc]\nmax_subscribers=1\n", CONFIG_ERROR_UNKNOWN_KEY, "[rpc] max_subscribers: unknown key"},
        {"[broker]\nmessage_buffer_size=0\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] message_buffer_size: 0 is out of range 1..10000000"},
        {"[broker]\nmessage_buffer_size=10000001\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] message_buffer_size: 10000001 is out of range 1..10000000"},
        {"[broker]\nmax_subscribers=-1\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] max_subscribers: -1 is out of range 1..65536"},
        {"[broker]\nmax_subscribers=lots\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] max_subscribers: 'lots' is not an integer (accepted range 1..65536)"},
        {"[broker]\nmax_subscribers=99999999999999999999999\n", CONFIG_ERROR_INVALID_VALUE,
         "is not an integer (accepted range 1..65536)"},
        {"[broker]\nmax_subscribers=\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] max_subscribers: '' is not an integer"},
        {"[broker]\nmax_frame_bytes=63\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] max_frame_bytes: 63 is out of range 64..67108864"},
        {"[broker]\nstartup_timeout_seconds=3601\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] startup_timeout_seconds: 3601 is out of range 1..3600"},
        {"[broker]\nmax_subscriptions_per_connection=0\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] max_subscriptions_per_connection: 0 is out of range 1..1000000"},
        {"[broker]\nenable_metrics=maybe\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] enable_metrics: 'maybe' is not a boolean (accepted: true, false)"},
        {"[broker]\ndrop_policy=drop-random\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] drop_policy: 'drop-random' is not a drop policy (accepted: drop-oldest, drop-newest, "
         "disconnect)"},
        {"[broker]\nsocket_mode=0999\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] socket_mode: '0999' is not an octal mode (accepted range 0000..0777)"},
        {"[broker]\nsocket_mode=01777\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] socket_mode: 01777 is out of range 0000..0777"},
        {"[broker]\nsocket_path=relative.sock\n", CONFIG_ERROR_INVALID_VALUE,
         "[broker] socket_path: 'relative.sock' is not an absolute path"},
        {"[broker]\nsocket_path=/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
         CONFIG_ERROR_INVALID_VALUE, "is longer than 107 bytes (a Unix socket path limit)"},
        {"[rpc]\naudit_log_path=audit.log\n", CONFIG_ERROR_INVALID_VALUE,
         "[rpc] audit_log_path: 'audit.log' is not an absolute path"},
        {"[rpc]\nmax_pending_requests=0\n", CONFIG_ERROR_INVALID_VALUE,
         "[rpc] max_pending_requests: 0 is out of range 1..1000000"},
        {"[process_manager]\nmax_restart_attempts=1001\n", CONFIG_ERROR_INVALID_VALUE,
         "[process_manager] max_restart_attempts: 1001 is out of range 0..1000"},
        {"[process_manager]\nenable_auto_restart=yes\n", CONFIG_ERROR_INVALID_VALUE,
         "[process_manager] enable_auto_restart: 'yes' is not a boolean"},
        {"[collector proc.mond]\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector proc.mond]: collector id 'proc.mond' is not a valid topic level"},
        {"[collector ]\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector ]: collector id '' is not a valid topic level"},
        {"[collector +]\n", CONFIG_ERROR_INVALID_VALUE, "collector id '+' is not a valid topic level"},
};

static void test_errors(Fixture *f, gconstpointer data)
{
        for (guint i = 0; i < G_N_ELEMENTS(error_cases); i++) {
                const ErrorCase *tc = &error_cases[i];
                g_autoptr(GError) error = NULL;
                g_autoptr(Config) c = NULL;
                g_autofree char *prefix = g_strdup_printf("%s: ", f->main_path);

                g_test_message("case %u: %s", i, tc->contents);
                write_file(f->main_path, tc->contents);
                c = config_load(f->main_path, TRUE, &error);
                g_assert_null(c);
                g_assert_error(error, CONFIG_ERROR, (int)tc->code);
                /* Every error starts with the file it is about. */
                g_assert_true(g_str_has_prefix(error->message, prefix));
                if (tc->expected)
                        g_assert_nonnull(strstr(error->message, tc->expected));
        }
}

static void test_unreadable_conf_d(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = NULL;

        /* conf.d as a plain file is "no drop-ins", not an error. */
        write_file(f->conf_d, "");
        c = config_load(f->main_path, FALSE, &error);
        g_assert_no_error(error);
        g_assert_nonnull(c);
}

static void test_diff(void)
{
        g_autoptr(Config) a = config_new_default();
        g_autoptr(Config) b = config_new_default();
        g_auto(GStrv) none = config_diff(a, b);
        g_auto(GStrv) lines = NULL;

        g_assert_cmpuint(g_strv_length(none), ==, 0);
        b->broker.message_buffer_size = 500;
        b->broker.drop_policy = DROP_POLICY_DISCONNECT;
        b->broker.socket_mode = 0600;
        b->rpc.audit_log_path = g_strdup("/var/log/audit.log");
        lines = config_diff(a, b);
        g_assert_cmpuint(g_strv_length(lines), ==, 4);
        g_assert_cmpstr(lines[0], ==, "[broker] message_buffer_size: 10000 -> 500");
        g_assert_cmpstr(lines[1], ==, "[broker] drop_policy: drop-oldest -> disconnect");
        g_assert_cmpstr(lines[2], ==, "[broker] socket_mode: 0660 -> 0600");
        g_assert_cmpstr(lines[3], ==, "[rpc] audit_log_path: (unset) -> /var/log/audit.log");
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/config/defaults", test_defaults);
        g_test_add_func("/config/diff", test_diff);
        g_test_add("/config/missing-file", Fixture, NULL, fixture_set_up, test_missing_file,
                   fixture_tear_down);
        g_test_add("/config/empty-file", Fixture, NULL, fixture_set_up, test_empty_file, fixture_tear_down);
        g_test_add("/config/every-key", Fixture, NULL, fixture_set_up, test_every_key, fixture_tear_down);
        g_test_add("/config/drop-policies", Fixture, NULL, fixture_set_up, test_drop_policies,
                   fixture_tear_down);
        g_test_add("/config/drop-ins", Fixture, NULL, fixture_set_up, test_drop_ins, fixture_tear_down);
        g_test_add("/config/drop-in-error", Fixture, NULL, fixture_set_up, test_drop_in_error_names_drop_in,
                   fixture_tear_down);
        g_test_add("/config/errors", Fixture, NULL, fixture_set_up, test_errors, fixture_tear_down);
        g_test_add("/config/conf-d-not-a-directory", Fixture, NULL, fixture_set_up, test_unreadable_conf_d,
                   fixture_tear_down);
        return g_test_run();
}
