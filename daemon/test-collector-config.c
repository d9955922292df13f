/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the [collector <id>] groups of daemoneye.conf (config-collector.c). */
#include <string.h>

#include <glib/gstdio.h>

#include "config.h"

typedef struct {
        char *dir;
        char *main_path;
        char *conf_d;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;

        f->dir = g_dir_make_tmp("test-collector-config-XXXXXX", &error);
        g_assert_no_error(error);
        f->main_path = g_build_filename(f->dir, "daemoneye.conf", NULL);
        f->conf_d = g_build_filename(f->dir, "conf.d", NULL);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
        g_autoptr(GDir) dir = g_dir_open(f->conf_d, 0, NULL);
        const char *name;

        while (dir && (name = g_dir_read_name(dir))) {
                g_autofree char *path = g_build_filename(f->conf_d, name, NULL);

                g_unlink(path);
        }
        g_rmdir(f->conf_d);
        g_unlink(f->main_path);
        g_rmdir(f->dir);
        g_free(f->dir);
        g_free(f->main_path);
        g_free(f->conf_d);
}

static Config *load(Fixture *f, const char *text, GError **error)
{
        g_assert_true(g_file_set_contents(f->main_path, text, -1, NULL));
        return config_load(f->main_path, TRUE, error);
}

static void test_defaults_and_settings(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c =
                load(f,
                     "[broker]\nsocket_path=/run/x/eventbus.sock\n"
                     "[collector procmond]\nexec=/usr/libexec/procmond --id ${DAEMONEYE_COLLECTOR_ID}\n"
                     "scan_interval_ms=500\nenable_hash_verification=true\nlabel=a b\n",
                     &error);
        const CollectorConfig *p;
        g_autofree const char **keys = NULL;
        g_autofree char *socket = NULL;

        g_assert_no_error(error);
        g_assert_nonnull(c->collectors[0]);
        g_assert_null(c->collectors[1]);
        p = config_find_collector(c, "procmond");
        g_assert_true(p == c->collectors[0]);
        g_assert_null(config_find_collector(c, "nope"));
        g_assert_cmpstr(p->id, ==, "procmond");
        g_assert_null(p->type);
        g_assert_true(p->autostart);
        g_assert_cmpuint(p->instances, ==, 1);
        g_assert_cmpuint(p->heartbeat_interval_seconds, ==, 10);
        g_assert_null(p->socket_path);
        g_assert_null(p->unit);
        g_assert_cmpstr(p->file, ==, f->main_path);
        g_assert_cmpstr(p->exec_argv[0], ==, "/usr/libexec/procmond");
        g_assert_cmpstr(p->exec_argv[2], ==, "${DAEMONEYE_COLLECTOR_ID}");
        /* Every other key is the collector's own setting, as written. */
        keys = collector_config_get_setting_keys(p);
        g_assert_cmpuint(g_strv_length((char **)keys), ==, 3);
        g_assert_cmpstr(keys[0], ==, "enable_hash_verification");
        g_assert_cmpstr(keys[1], ==, "label");
        g_assert_cmpstr(keys[2], ==, "scan_interval_ms");
        g_assert_cmpstr(g_hash_table_lookup(p->settings, "label"), ==, "a b");
        /* The collector socket defaults to a collectors/ directory beside the broker's. */
        socket = collector_config_get_socket_path(p, c->broker.socket_path);
        g_assert_cmpstr(socket, ==, "/run/x/collectors/procmond.sock");
}

static void test_reserved_keys(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = load(f,
                                   "[collector net]\ntype=netmond\nexec=/bin/netmond\nsocket=/tmp/n.sock\n"
                                   "unit=daemoneye-net.service\nautostart=false\ninstances=3\n"
                                   "heartbeat_interval_seconds=2\n",
                                   &error);
        const CollectorConfig *n;
        g_autofree char *socket = NULL;

        g_assert_no_error(error);
        n = c->collectors[0];
        g_assert_cmpstr(n->type, ==, "netmond");
        g_assert_cmpstr(n->exec, ==, "/bin/netmond");
        g_assert_cmpstr(n->unit, ==, "daemoneye-net.service");
        g_assert_false(n->autostart);
        g_assert_cmpuint(n->instances, ==, 3);
        g_assert_cmpuint(n->heartbeat_interval_seconds, ==, 2);
        g_assert_cmpuint(g_hash_table_size(n->settings), ==, 0);
        socket = collector_config_get_socket_path(n, "/run/daemoneye/eventbus.sock");
        g_assert_cmpstr(socket, ==, "/tmp/n.sock");
}

/* A drop-in overrides single keys and settings of a group; the rest stays. */
static void test_drop_in(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = NULL;
        g_autofree char *drop_in = g_build_filename(f->conf_d, "50-local.conf", NULL);
        const CollectorConfig *p;

        g_assert_cmpint(g_mkdir(f->conf_d, 0755), ==, 0);
        g_assert_true(g_file_set_contents(
                drop_in, "[collector p]\nbatch_size=9\nautostart=false\n[collector q]\nexec=/bin/q\n", -1,
                NULL));
        c = load(f, "[collector p]\nexec=/bin/p\nbatch_size=1\nscan_interval_ms=5\n", &error);
        g_assert_no_error(error);
        p = config_find_collector(c, "p");
        g_assert_cmpstr(p->exec, ==, "/bin/p");
        g_assert_cmpstr(p->file, ==, f->main_path);
        g_assert_false(p->autostart);
        g_assert_cmpstr(g_hash_table_lookup(p->settings, "batch_size"), ==, "9");
        g_assert_cmpstr(g_hash_table_lookup(p->settings, "scan_interval_ms"), ==, "5");
        g_assert_cmpstr(config_find_collector(c, "q")->file, ==, drop_in);
        g_assert_cmpstr(c->collectors[0]->id, ==, "p");
        g_assert_cmpstr(c->collectors[1]->id, ==, "q");
        g_unlink(drop_in);
}

static void test_expand_exec(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c =
                load(f,
                     "[collector x]\nexec=/bin/c --id=${DAEMONEYE_COLLECTOR_ID} "
                     "\"--hb ${DAEMONEYE_HEARTBEAT_INTERVAL_MS}\" $$HOME '${DAEMONEYE_SOCKET}'\n",
                     &error);
        const char *vars[] = {"DAEMONEYE_COLLECTOR_ID",
                              "x",
                              "DAEMONEYE_HEARTBEAT_INTERVAL_MS",
                              "10000",
                              "DAEMONEYE_SOCKET",
                              "/s",
                              "DAEMONEYE_COLLECTOR_TYPE",
                              "",
                              NULL};
        g_auto(GStrv) argv = NULL;

        g_assert_no_error(error);
        argv = collector_config_expand_exec(c->collectors[0], vars, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(g_strv_length(argv), ==, 5);
        g_assert_cmpstr(argv[0], ==, "/bin/c");
        g_assert_cmpstr(argv[1], ==, "--id=x");
        g_assert_cmpstr(argv[2], ==, "--hb 10000"); /* one word: quoting is done before expansion */
        g_assert_cmpstr(argv[3], ==, "$HOME");
        g_assert_cmpstr(argv[4], ==, "/s");
}

static const struct {
        const char *text;
        int code;
        const char *message;
} error_cases[] = {
        {"[collector x]\ninstances=0\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] instances: 0 is out of range 1..64"},
        {"[collector x]\ninstances=65\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] instances: 65 is out of range 1..64"},
        {"[collector x]\ninstances=two\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] instances: 'two' is not an integer (accepted range 1..64)"},
        {"[collector aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\ninstances=10\n",
         CONFIG_ERROR_INVALID_VALUE, "ids longer than 64 characters"},
        {"[collector x]\nheartbeat_interval_seconds=3601\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] heartbeat_interval_seconds: 3601 is out of range 1..3600"},
        {"[collector x]\nautostart=yes\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] autostart: 'yes' is not a boolean (accepted: true, false)"},
        {"[collector x]\nexec=relative/path\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] exec: 'relative/path' is not an absolute path"},
        {"[collector x]\nexec=/bin/x \"unterminated\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] exec: '/bin/x \"unterminated'"},
        {"[collector x]\nexec=/bin/x ${HOME}\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] exec: unknown variable ${HOME} (accepted: DAEMONEYE_COLLECTOR_ID"},
        {"[collector x]\nexec=/bin/x $HOME\n", CONFIG_ERROR_INVALID_VALUE,
         "a '$' must start ${NAME} or be written $$"},
        {"[collector x]\nsocket=rel.sock\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] socket: 'rel.sock' is not an absolute path"},
        {"[collector x]\nunit=foo.socket\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] unit: 'foo.socket' is not a service unit name"},
        {"[collector x]\ntype=a.b\n", CONFIG_ERROR_INVALID_VALUE,
         "[collector x] type: 'a.b' is not a type name"},
        {"[collector x]\nkey with space=1\n", CONFIG_ERROR_UNKNOWN_KEY,
         "[collector x] key with space: not a setting name"},
        {"[process_manager]\nbackend=docker\n", CONFIG_ERROR_INVALID_VALUE,
         "[process_manager] backend: 'docker' is not a backend (accepted: auto, embedded, systemd)"},
};

static void test_errors(Fixture *f, gconstpointer data)
{
        for (gsize i = 0; i < G_N_ELEMENTS(error_cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(Config) c = load(f, error_cases[i].text, &error);

                if (c)
                        g_error("accepted: %s", error_cases[i].text);
                g_assert_error(error, CONFIG_ERROR, error_cases[i].code);
                if (!g_str_has_prefix(error->message, f->main_path) ||
                    !strstr(error->message, error_cases[i].message))
                        g_error("%s: expected '%s' after the file name, got '%s'", error_cases[i].text,
                                error_cases[i].message, error->message);
        }
}

static void test_expand_unset_exec(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) c = load(f, "[collector x]\nsetting=1\n", &error);
        g_auto(GStrv) argv = NULL;

        g_assert_no_error(error);
        argv = collector_config_expand_exec(c->collectors[0], NULL, &error);
        g_assert_null(argv);
        g_assert_error(error, CONFIG_ERROR, CONFIG_ERROR_INVALID_VALUE);
        g_assert_nonnull(strstr(error->message, "[collector x] exec: not set"));
}

static void test_diff(Fixture *f, gconstpointer data)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) a =
                load(f, "[collector x]\nexec=/bin/x\nk=1\ngone=1\n[collector y]\nexec=/bin/y\n", &error);
        g_autoptr(Config) b =
                load(f, "[collector x]\nexec=/bin/x2\nk=2\nnew=3\n[collector z]\nexec=/bin/z\n", &error);
        g_auto(GStrv) lines = NULL;
        g_autofree char *all = NULL;

        g_assert_no_error(error);
        lines = config_diff(a, b);
        all = g_strjoinv("|", lines);
        g_assert_cmpstr(all, ==,
                        "[collector x] exec: /bin/x -> /bin/x2|[collector x] gone: 1 -> (unset)|"
                        "[collector x] k: 1 -> 2|[collector x] new: (unset) -> 3|[collector y]: removed|"
                        "[collector z]: added");
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
#define ADD(path, func)                                                                                     \
        g_test_add("/collector-config/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
        ADD("defaults-and-settings", test_defaults_and_settings);
        ADD("reserved-keys", test_reserved_keys);
        ADD("drop-in", test_drop_in);
        ADD("expand-exec", test_expand_exec);
        ADD("expand-unset-exec", test_expand_unset_exec);
        ADD("errors", test_errors);
        ADD("diff", test_diff);
#undef ADD
        return g_test_run();
}
