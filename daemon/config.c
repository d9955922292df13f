/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye.conf: the main file, then conf.d/ *.conf next to it in lexical
 * order. Each file is checked completely (every group and key known, every
 * value in range) and its values are applied over the previous ones, so a
 * drop-in overrides single keys and an error always names the file it is in.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "daemoneye-build-config.h"
#include "config-collector.h"
#include "config.h"

/* The first argument is stringified as written. */
/* clang-format off */
G_DEFINE_QUARK(daemoneye-config-error-quark, config_error)
/* clang-format on */

typedef enum {
        KEY_UINT,
        KEY_BOOL,
        KEY_SOCKET_PATH,   /* absolute, fits in sockaddr_un.sun_path */
        KEY_OPTIONAL_PATH, /* absolute, or empty for "unset" */
        KEY_DROP_POLICY,
        KEY_MODE, /* octal string, "0660" */
        KEY_BACKEND,
} KeyType;

typedef struct {
        const char *group;
        const char *name;
        KeyType type;
        gsize offset; /* into Config */
        guint64 min, max;
} KeySpec;

#define BROKER(field) offsetof(Config, broker.field)
#define RPC(field) offsetof(Config, rpc.field)
#define PM(field) offsetof(Config, process_manager.field)

/* The one table of keys: what config_load() accepts and the ranges its errors quote. */
static const KeySpec key_specs[] = {
        {"broker", "socket_path", KEY_SOCKET_PATH, BROKER(socket_path)},
        {"broker", "startup_timeout_seconds", KEY_UINT, BROKER(startup_timeout_seconds), 1, 3600},
        {"broker", "max_subscribers", KEY_UINT, BROKER(max_subscribers), 1, 65536},
        {"broker", "message_buffer_size", KEY_UINT, BROKER(message_buffer_size), 1, 10000000},
        {"broker", "enable_metrics", KEY_BOOL, BROKER(enable_metrics)},
        {"broker", "drop_policy", KEY_DROP_POLICY, BROKER(drop_policy)},
        {"broker", "max_frame_bytes", KEY_UINT, BROKER(max_frame_bytes), 64, 67108864},
        {"broker", "max_subscriptions_per_connection", KEY_UINT, BROKER(max_subscriptions_per_connection), 1,
         1000000},
        {"broker", "socket_mode", KEY_MODE, BROKER(socket_mode), 0, 0777},
        {"rpc", "default_timeout_seconds", KEY_UINT, RPC(default_timeout_seconds), 1, 3600},
        {"rpc", "health_check_interval_seconds", KEY_UINT, RPC(health_check_interval_seconds), 1, 86400},
        {"rpc", "enable_correlation_tracking", KEY_BOOL, RPC(enable_correlation_tracking)},
        {"rpc", "max_pending_requests", KEY_UINT, RPC(max_pending_requests), 1, 1000000},
        {"rpc", "audit_log_path", KEY_OPTIONAL_PATH, RPC(audit_log_path)},
        {"process_manager", "graceful_shutdown_timeout_seconds", KEY_UINT,
         PM(graceful_shutdown_timeout_seconds), 1, 3600},
        {"process_manager", "force_shutdown_timeout_seconds", KEY_UINT, PM(force_shutdown_timeout_seconds),
         1, 3600},
        {"process_manager", "health_check_interval_seconds", KEY_UINT, PM(health_check_interval_seconds), 1,
         86400},
        {"process_manager", "enable_auto_restart", KEY_BOOL, PM(enable_auto_restart)},
        {"process_manager", "max_restart_attempts", KEY_UINT, PM(max_restart_attempts), 0, 1000},
        {"process_manager", "restart_backoff_seconds", KEY_UINT, PM(restart_backoff_seconds), 1, 3600},
        {"process_manager", "backend", KEY_BACKEND, PM(backend)},
};

static const char *const known_groups = "broker, rpc, process_manager, collector <id>";
#define COLLECTOR_GROUP_PREFIX "collector "
/* Mirrors DEB_TOPIC_MAX_LEVEL_LEN: the config library does not link the eventbus core. */
#define COLLECTOR_ID_MAX_LEN 64

static const char *const drop_policy_names[] = {
        [DROP_POLICY_DROP_OLDEST] = "drop-oldest",
        [DROP_POLICY_DROP_NEWEST] = "drop-newest",
        [DROP_POLICY_DISCONNECT] = "disconnect",
};

static const char *const backend_names[] = {
        [COLLECTOR_BACKEND_AUTO] = "auto",
        [COLLECTOR_BACKEND_EMBEDDED] = "embedded",
        [COLLECTOR_BACKEND_SYSTEMD] = "systemd",
};

/** collector_backend_kind_to_string: Returns: the config file spelling of @kind. */
const char *collector_backend_kind_to_string(CollectorBackendKind kind)
{
        if ((guint)kind >= G_N_ELEMENTS(backend_names))
                return "unknown";
        return backend_names[kind];
}

static gboolean backend_from_string(const char *s, CollectorBackendKind *out)
{
        for (guint i = 0; i < G_N_ELEMENTS(backend_names); i++) {
                if (g_strcmp0(s, backend_names[i]) == 0) {
                        *out = (CollectorBackendKind)i;
                        return TRUE;
                }
        }
        return FALSE;
}

/** config_find_collector: see config.h. */
const CollectorConfig *config_find_collector(const Config *config, const char *id)
{
        for (CollectorConfig **c = config->collectors; c && *c; c++)
                if (g_str_equal((*c)->id, id))
                        return *c;
        return NULL;
}

/** drop_policy_to_string: Returns: the config file spelling of @policy. */
const char *drop_policy_to_string(DropPolicy policy)
{
        if ((guint)policy >= G_N_ELEMENTS(drop_policy_names))
                return "unknown";
        return drop_policy_names[policy];
}

/** drop_policy_from_string: Returns: %TRUE and sets @out if @s names a policy. */
gboolean drop_policy_from_string(const char *s, DropPolicy *out)
{
        for (guint i = 0; i < G_N_ELEMENTS(drop_policy_names); i++) {
                if (g_strcmp0(s, drop_policy_names[i]) == 0) {
                        *out = (DropPolicy)i;
                        return TRUE;
                }
        }
        return FALSE;
}

/** config_new_default: Returns: (transfer full) a config holding every default. */
Config *config_new_default(void)
{
        Config *config = g_new0(Config, 1);

        config->broker = (BrokerConfig){
                .socket_path = g_strdup(DAEMONEYE_DEFAULT_SOCKET),
                .startup_timeout_seconds = 10,
                .max_subscribers = 1024,
                .message_buffer_size = 10000,
                .enable_metrics = TRUE,
                .drop_policy = DROP_POLICY_DROP_OLDEST,
                .max_frame_bytes = 1048576,
                .max_subscriptions_per_connection = 1024,
                .socket_mode = 0660,
        };
        config->rpc = (RpcConfig){
                .default_timeout_seconds = 30,
                .health_check_interval_seconds = 30,
                .enable_correlation_tracking = TRUE,
                .max_pending_requests = 1000,
                .audit_log_path = NULL,
        };
        config->process_manager = (ProcessManagerConfig){
                .graceful_shutdown_timeout_seconds = 30,
                .force_shutdown_timeout_seconds = 10,
                .health_check_interval_seconds = 60,
                .enable_auto_restart = TRUE,
                .max_restart_attempts = 3,
                .restart_backoff_seconds = 5,
                .backend = COLLECTOR_BACKEND_AUTO,
        };
        config->collector_groups = g_new0(char *, 1);
        config->collectors = g_new0(CollectorConfig *, 1);
        config->files = g_new0(char *, 1);
        return config;
}

/** config_free: frees @config and everything it owns. */
void config_free(Config *config)
{
        if (!config)
                return;
        g_free(config->broker.socket_path);
        g_free(config->rpc.audit_log_path);
        g_free(config->path);
        g_strfreev(config->collector_groups);
        for (CollectorConfig **c = config->collectors; c && *c; c++)
                collector_config_free(*c);
        g_free(config->collectors);
        g_strfreev(config->files);
        g_free(config);
}

static const KeySpec *key_spec_find(const char *group, const char *name)
{
        for (guint i = 0; i < G_N_ELEMENTS(key_specs); i++)
                if (g_str_equal(key_specs[i].group, group) && g_str_equal(key_specs[i].name, name))
                        return &key_specs[i];
        return NULL;
}

static gboolean group_is_known(const char *group)
{
        for (guint i = 0; i < G_N_ELEMENTS(key_specs); i++)
                if (g_str_equal(key_specs[i].group, group))
                        return TRUE;
        return FALSE;
}

static char *group_known_keys(const char *group)
{
        GString *s = g_string_new(NULL);

        for (guint i = 0; i < G_N_ELEMENTS(key_specs); i++) {
                if (!g_str_equal(key_specs[i].group, group))
                        continue;
                if (s->len > 0)
                        g_string_append(s, ", ");
                g_string_append(s, key_specs[i].name);
        }
        return g_string_free(s, FALSE);
}

/* A collector id becomes a topic level (control.collector.<id>), so it must be one. */
static gboolean collector_id_is_valid(const char *id)
{
        gsize len = strlen(id);

        if (len == 0 || len > COLLECTOR_ID_MAX_LEN)
                return FALSE;
        for (const char *p = id; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
                        return FALSE;
        return TRUE;
}

static gboolean set_invalid(GError **error, const char *file, const KeySpec *spec, const char *fmt, ...)
        G_GNUC_PRINTF(4, 5);

static gboolean set_invalid(GError **error, const char *file, const KeySpec *spec, const char *fmt, ...)
{
        va_list ap;
        g_autofree char *what = NULL;

        va_start(ap, fmt);
        what = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_INVALID_VALUE, "%s: [%s] %s: %s", file, spec->group,
                    spec->name, what);
        return FALSE;
}

static gboolean parse_uint(const char *file, const KeySpec *spec, const char *value, guint *out,
                           GError **error)
{
        gint64 n;
        char *end = NULL;

        errno = 0;
        n = g_ascii_strtoll(value, &end, 10);
        if (value[0] == '\0' || *end != '\0' || errno != 0)
                return set_invalid(error, file, spec,
                                   "'%s' is not an integer (accepted range %" G_GUINT64_FORMAT
                                   "..%" G_GUINT64_FORMAT ")",
                                   value, spec->min, spec->max);
        if (n < 0 || (guint64)n < spec->min || (guint64)n > spec->max)
                return set_invalid(error, file, spec,
                                   "%" G_GINT64_FORMAT " is out of range %" G_GUINT64_FORMAT
                                   "..%" G_GUINT64_FORMAT,
                                   n, spec->min, spec->max);
        *out = (guint)n;
        return TRUE;
}

static gboolean parse_mode(const char *file, const KeySpec *spec, const char *value, guint *out,
                           GError **error)
{
        guint64 n;
        char *end = NULL;

        errno = 0;
        n = g_ascii_strtoull(value, &end, 8);
        if (value[0] == '\0' || value[0] == '-' || value[0] == '+' || *end != '\0' || errno != 0)
                return set_invalid(error, file, spec,
                                   "'%s' is not an octal mode (accepted range 0000..0777)", value);
        if (n > spec->max)
                return set_invalid(error, file, spec, "%s is out of range 0000..0777", value);
        *out = (guint)n;
        return TRUE;
}

static gboolean parse_bool(const char *file, const KeySpec *spec, const char *value, gboolean *out,
                           GError **error)
{
        /* The spellings GKeyFile itself accepts. */
        if (g_str_equal(value, "true") || g_str_equal(value, "1")) {
                *out = TRUE;
                return TRUE;
        }
        if (g_str_equal(value, "false") || g_str_equal(value, "0")) {
                *out = FALSE;
                return TRUE;
        }
        return set_invalid(error, file, spec, "'%s' is not a boolean (accepted: true, false)", value);
}

static gboolean parse_path(const char *file, const KeySpec *spec, const char *value, gboolean optional,
                           char **out, GError **error)
{
        if (optional && value[0] == '\0') {
                g_clear_pointer(out, g_free);
                return TRUE;
        }
        if (!g_path_is_absolute(value))
                return set_invalid(error, file, spec, "'%s' is not an absolute path", value);
        if (spec->type == KEY_SOCKET_PATH && strlen(value) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return set_invalid(error, file, spec,
                                   "'%s' is longer than %zu bytes (a Unix socket path limit)", value,
                                   sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
        g_free(*out);
        *out = g_strdup(value);
        return TRUE;
}

static gboolean apply_key(Config *config, const char *file, GKeyFile *kf, const KeySpec *spec,
                          GError **error)
{
        g_autoptr(GError) local = NULL;
        g_autofree char *value = NULL;
        gpointer field = (guint8 *)config + spec->offset;

        /* get_string: handles the \s \n escapes; every type is parsed from the string. */
        value = g_key_file_get_string(kf, spec->group, spec->name, &local);
        if (!value)
                return set_invalid(error, file, spec, "%s", local->message);
        g_strstrip(value);

        switch (spec->type) {
        case KEY_UINT:
                return parse_uint(file, spec, value, field, error);
        case KEY_MODE:
                return parse_mode(file, spec, value, field, error);
        case KEY_BOOL:
                return parse_bool(file, spec, value, field, error);
        case KEY_SOCKET_PATH:
                return parse_path(file, spec, value, FALSE, field, error);
        case KEY_OPTIONAL_PATH:
                return parse_path(file, spec, value, TRUE, field, error);
        case KEY_DROP_POLICY:
                if (!drop_policy_from_string(value, field))
                        return set_invalid(error, file, spec,
                                           "'%s' is not a drop policy (accepted: drop-oldest, drop-newest, "
                                           "disconnect)",
                                           value);
                return TRUE;
        case KEY_BACKEND:
                if (!backend_from_string(value, field))
                        return set_invalid(error, file, spec,
                                           "'%s' is not a backend (accepted: auto, embedded, systemd)",
                                           value);
                return TRUE;
        }
        g_assert_not_reached();
}

static void collector_group_remember(GPtrArray *groups, const char *group)
{
        for (guint i = 0; i < groups->len; i++)
                if (g_str_equal(groups->pdata[i], group))
                        return;
        g_ptr_array_add(groups, g_strdup(group));
}

/* Checks and applies one file over @config; on error @config may be half-updated (the caller drops it). */
static gboolean config_apply_file(Config *config, GPtrArray *collector_groups, GPtrArray *collectors,
                                  const char *file, GError **error)
{
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) local = NULL;
        g_auto(GStrv) groups = NULL;

        if (!g_key_file_load_from_file(kf, file, G_KEY_FILE_NONE, &local)) {
                if (g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE) ||
                    g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_UNKNOWN_ENCODING))
                        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_PARSE, "%s: %s", file, local->message);
                else
                        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_IO, "%s: %s", file, local->message);
                return FALSE;
        }

        groups = g_key_file_get_groups(kf, NULL);
        for (char **g = groups; *g; g++) {
                g_auto(GStrv) keys = NULL;

                if (g_str_has_prefix(*g, COLLECTOR_GROUP_PREFIX)) {
                        const char *id = *g + strlen(COLLECTOR_GROUP_PREFIX);

                        if (!collector_id_is_valid(id)) {
                                g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_INVALID_VALUE,
                                            "%s: [%s]: collector id '%s' is not a valid topic level "
                                            "(1..%d characters of A-Z a-z 0-9 _ -)",
                                            file, *g, id, COLLECTOR_ID_MAX_LEN);
                                return FALSE;
                        }
                        collector_group_remember(collector_groups, *g);
                        if (!collector_config_apply_group(collectors, file, kf, *g, id, error))
                                return FALSE;
                        continue;
                }
                if (!group_is_known(*g)) {
                        g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_UNKNOWN_GROUP,
                                    "%s: [%s]: unknown group (accepted: %s)", file, *g, known_groups);
                        return FALSE;
                }

                keys = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = keys; k && *k; k++) {
                        const KeySpec *spec = key_spec_find(*g, *k);

                        if (!spec) {
                                g_autofree char *known = group_known_keys(*g);

                                g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_UNKNOWN_KEY,
                                            "%s: [%s] %s: unknown key (accepted: %s)", file, *g, *k, known);
                                return FALSE;
                        }
                        if (!apply_key(config, file, kf, spec, error))
                                return FALSE;
                }
        }
        return TRUE;
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * conf.d/ *.conf beside @main_path, sorted. Hidden files are skipped like a
 * shell glob would; so is anything that is not a regular file, which lets a
 * symlink to /dev/null mask a drop-in as in systemd.
 */
static gboolean list_drop_ins(const char *main_path, GPtrArray *out, GError **error)
{
        g_autofree char *dir_name = g_path_get_dirname(main_path);
        g_autofree char *conf_d = g_build_filename(dir_name, "conf.d", NULL);
        g_autoptr(GDir) dir = NULL;
        g_autoptr(GError) local = NULL;
        g_autoptr(GPtrArray) found = g_ptr_array_new();
        const char *name;

        dir = g_dir_open(conf_d, 0, &local);
        if (!dir) {
                if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT) ||
                    g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
                        return TRUE;
                g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_IO, "%s: %s", conf_d, local->message);
                return FALSE;
        }
        while ((name = g_dir_read_name(dir))) {
                g_autofree char *path = NULL;
                struct stat st;

                if (name[0] == '.' || !g_str_has_suffix(name, ".conf"))
                        continue;
                path = g_build_filename(conf_d, name, NULL);
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                g_ptr_array_add(found, g_steal_pointer(&path));
        }
        g_ptr_array_sort(found, compare_strings);
        for (guint i = 0; i < found->len; i++)
                g_ptr_array_add(out, found->pdata[i]); /* ownership moves to @out */
        return TRUE;
}

/** config_load: see config.h. */
Config *config_load(const char *path, gboolean must_exist, GError **error)
{
        g_autoptr(Config) config = config_new_default();
        g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) collector_groups = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) collectors =
                g_ptr_array_new_with_free_func((GDestroyNotify)collector_config_free);
        gboolean main_exists;

        g_return_val_if_fail(path != NULL, NULL);

        main_exists = g_file_test(path, G_FILE_TEST_EXISTS);
        if (!main_exists && must_exist) {
                g_set_error(error, CONFIG_ERROR, CONFIG_ERROR_IO, "%s: %s", path, g_strerror(ENOENT));
                return NULL;
        }
        if (main_exists)
                g_ptr_array_add(files, g_strdup(path));
        /* Drop-ins apply even without a main file: each overrides single keys of the defaults then. */
        if (!list_drop_ins(path, files, error))
                return NULL;

        for (guint i = 0; i < files->len; i++)
                if (!config_apply_file(config, collector_groups, collectors, files->pdata[i], error))
                        return NULL;

        if (main_exists)
                config->path = g_strdup(path);
        g_ptr_array_add(files, NULL);
        g_strfreev(config->files);
        config->files = (char **)g_ptr_array_steal(files, NULL);
        g_ptr_array_add(collector_groups, NULL);
        g_strfreev(config->collector_groups);
        config->collector_groups = (char **)g_ptr_array_steal(collector_groups, NULL);
        g_ptr_array_add(collectors, NULL);
        g_free(config->collectors);
        config->collectors = (CollectorConfig **)g_ptr_array_steal(collectors, NULL);
        return g_steal_pointer(&config);
}

static char *config_format_value(const Config *config, const KeySpec *spec)
{
        gconstpointer field = (const guint8 *)config + spec->offset;

        switch (spec->type) {
        case KEY_UINT:
                return g_strdup_printf("%u", *(const guint *)field);
        case KEY_MODE:
                return g_strdup_printf("%04o", *(const guint *)field);
        case KEY_BOOL:
                return g_strdup(*(const gboolean *)field ? "true" : "false");
        case KEY_SOCKET_PATH:
        case KEY_OPTIONAL_PATH:
                return g_strdup(*(char *const *)field ? *(char *const *)field : "(unset)");
        case KEY_DROP_POLICY:
                return g_strdup(drop_policy_to_string(*(const DropPolicy *)field));
        case KEY_BACKEND:
                return g_strdup(collector_backend_kind_to_string(*(const CollectorBackendKind *)field));
        }
        g_assert_not_reached();
}

/** config_diff: Returns: (transfer full) "[group] key: old -> new" per changed key. */
char **config_diff(const Config *old, const Config *new)
{
        GPtrArray *lines = g_ptr_array_new();

        for (guint i = 0; i < G_N_ELEMENTS(key_specs); i++) {
                g_autofree char *a = config_format_value(old, &key_specs[i]);
                g_autofree char *b = config_format_value(new, &key_specs[i]);

                if (!g_str_equal(a, b))
                        g_ptr_array_add(lines, g_strdup_printf("[%s] %s: %s -> %s", key_specs[i].group,
                                                               key_specs[i].name, a, b));
        }
        collector_configs_diff(old->collectors, new->collectors, lines);
        g_ptr_array_add(lines, NULL);
        return (char **)g_ptr_array_free(lines, FALSE);
}
