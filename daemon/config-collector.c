/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "[collector <id>]" groups of daemoneye.conf. The reserved keys (type, exec,
 * socket, unit, autostart, instances, heartbeat_interval_seconds) are checked
 * here like every other key of the file; any other key is the collector's own
 * setting, which only the collector can validate: the agent sends it at start
 * (RPC Start config_overrides), and the collector refuses what it does not know.
 */
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "config-collector.h"

#define COLLECTOR_MAX_INSTANCES 64
/* Mirrors DEB_TOPIC_MAX_LEVEL_LEN: instance ids "<id>-<n>" are topic levels too. */
#define COLLECTOR_ID_MAX_LEN 64
#define UNIT_NAME_MAX 255

static const char *const exec_variables[] = {
        COLLECTOR_ENV_ID, COLLECTOR_ENV_TYPE, COLLECTOR_ENV_HEARTBEAT_MS, COLLECTOR_ENV_SOCKET, NULL,
};

/** collector_config_free: see config.h. */
void collector_config_free(CollectorConfig *collector)
{
        if (!collector)
                return;
        g_free(collector->id);
        g_free(collector->type);
        g_free(collector->exec);
        g_strfreev(collector->exec_argv);
        g_free(collector->socket_path);
        g_free(collector->unit);
        g_clear_pointer(&collector->settings, g_hash_table_unref);
        g_free(collector->file);
        g_free(collector);
}

static CollectorConfig *collector_config_new(const char *id, const char *file)
{
        CollectorConfig *collector = g_new0(CollectorConfig, 1);

        collector->id = g_strdup(id);
        collector->autostart = TRUE;
        collector->instances = 1;
        collector->heartbeat_interval_seconds = 10;
        collector->settings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        collector->file = g_strdup(file);
        return collector;
}

/** collector_config_copy: see config.h. */
CollectorConfig *collector_config_copy(const CollectorConfig *collector)
{
        CollectorConfig *copy = collector_config_new(collector->id, collector->file);
        GHashTableIter iter;
        gpointer key, value;

        g_free(copy->type);
        copy->type = g_strdup(collector->type);
        copy->exec = g_strdup(collector->exec);
        copy->exec_argv = g_strdupv(collector->exec_argv);
        copy->socket_path = g_strdup(collector->socket_path);
        copy->unit = g_strdup(collector->unit);
        copy->autostart = collector->autostart;
        copy->instances = collector->instances;
        copy->heartbeat_interval_seconds = collector->heartbeat_interval_seconds;
        g_hash_table_iter_init(&iter, collector->settings);
        while (g_hash_table_iter_next(&iter, &key, &value))
                g_hash_table_insert(copy->settings, g_strdup(key), g_strdup(value));
        return copy;
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/** collector_config_get_setting_keys: see config.h. */
const char **collector_config_get_setting_keys(const CollectorConfig *collector)
{
        guint n = 0;
        const char **keys = (const char **)g_hash_table_get_keys_as_array(collector->settings, &n);

        qsort(keys, n, sizeof(*keys), compare_strings);
        return keys;
}

/** collector_config_get_socket_path: see config.h. */
char *collector_config_get_socket_path(const CollectorConfig *collector, const char *broker_socket_path)
{
        g_autofree char *dir = NULL;
        g_autofree char *name = NULL;

        if (collector->socket_path)
                return g_strdup(collector->socket_path);
        /* An abstract broker socket ("@name") has no directory: fall back to the system one. */
        dir = broker_socket_path && broker_socket_path[0] == '/' ? g_path_get_dirname(broker_socket_path)
                                                                 : g_strdup("/run/daemoneye");
        name = g_strconcat(collector->id, ".sock", NULL);
        return g_build_filename(dir, "collectors", name, NULL);
}

static gboolean set_error(GError **error, ConfigError code, const char *file, const char *group,
                          const char *key, const char *fmt, ...) G_GNUC_PRINTF(6, 7);

static gboolean set_error(GError **error, ConfigError code, const char *file, const char *group,
                          const char *key, const char *fmt, ...)
{
        va_list ap;
        g_autofree char *what = NULL;

        va_start(ap, fmt);
        what = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        g_set_error(error, CONFIG_ERROR, code, "%s: [%s]%s%s: %s", file, group, key ? " " : "",
                    key ? key : "", what);
        return FALSE;
}

/* Expands ${NAME} and $$ in @word; @vars NULL only checks the names. */
static char *expand_word(const char *word, const char *const *vars, const char *file, const char *group,
                         GError **error)
{
        GString *out = g_string_new(NULL);
        const char *p = word;

        while (*p) {
                const char *close;
                g_autofree char *name = NULL;
                const char *value = NULL;
                gboolean known = FALSE;

                if (p[0] != '$') {
                        g_string_append_c(out, *p++);
                        continue;
                }
                if (p[1] == '$') {
                        g_string_append_c(out, '$');
                        p += 2;
                        continue;
                }
                close = p[1] == '{' ? strchr(p + 2, '}') : NULL;
                if (!close) {
                        set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, "exec",
                                  "'%s': a '$' must start ${NAME} or be written $$", word);
                        g_string_free(out, TRUE);
                        return NULL;
                }
                name = g_strndup(p + 2, (gsize)(close - p - 2));
                for (const char *const *v = exec_variables; *v; v++)
                        known = known || g_str_equal(*v, name);
                for (const char *const *v = vars; v && v[0]; v += 2)
                        if (g_str_equal(v[0], name))
                                value = v[1];
                if (!known || (vars && !value)) {
                        g_autofree char *accepted = g_strjoinv(", ", (char **)exec_variables);

                        set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, "exec",
                                  "unknown variable ${%s} (accepted: %s)", name, accepted);
                        g_string_free(out, TRUE);
                        return NULL;
                }
                g_string_append(out, value ? value : "");
                p = close + 1;
        }
        return g_string_free(out, FALSE);
}

/** collector_config_expand_exec: see config.h. */
char **collector_config_expand_exec(const CollectorConfig *collector, const char *const *vars,
                                    GError **error)
{
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *group = g_strconcat("collector ", collector->id, NULL);

        if (!collector->exec_argv) {
                set_error(error, CONFIG_ERROR_INVALID_VALUE, collector->file, group, "exec",
                          "not set (the embedded backend needs the collector's command line)");
                return NULL;
        }
        for (char **w = collector->exec_argv; *w; w++) {
                char *word = expand_word(*w, vars, collector->file, group, error);

                if (!word)
                        return NULL;
                g_ptr_array_add(argv, word);
        }
        g_ptr_array_add(argv, NULL);
        return (char **)g_ptr_array_free(g_steal_pointer(&argv), FALSE);
}

static gboolean parse_exec(CollectorConfig *c, const char *file, const char *group, const char *value,
                           GError **error)
{
        g_auto(GStrv) argv = NULL;
        g_autoptr(GError) local = NULL;

        if (!g_shell_parse_argv(value, NULL, &argv, &local))
                return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, "exec", "'%s': %s", value,
                                 local->message);
        if (!g_path_is_absolute(argv[0]))
                return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, "exec",
                                 "'%s' is not an absolute path (no $PATH lookup is done)", argv[0]);
        for (char **w = argv; *w; w++) {
                g_autofree char *checked = expand_word(*w, NULL, file, group, error);

                if (!checked)
                        return FALSE;
        }
        g_free(c->exec);
        c->exec = g_strdup(value);
        g_strfreev(c->exec_argv);
        c->exec_argv = g_steal_pointer(&argv);
        return TRUE;
}

static gboolean is_level(const char *s, gsize max_len)
{
        gsize len = strlen(s);

        if (len == 0 || len > max_len)
                return FALSE;
        for (const char *p = s; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
                        return FALSE;
        return TRUE;
}

static gboolean is_unit_name(const char *s)
{
        if (strlen(s) > UNIT_NAME_MAX || !g_str_has_suffix(s, ".service") || strlen(s) == strlen(".service"))
                return FALSE;
        for (const char *p = s; *p; p++)
                if (!g_ascii_isalnum(*p) && !strchr(":-_.\\@", *p))
                        return FALSE;
        return TRUE;
}

static gboolean parse_uint(const char *file, const char *group, const char *key, const char *value,
                           guint min, guint max, guint *out, GError **error)
{
        gint64 n;
        char *end = NULL;

        errno = 0;
        n = g_ascii_strtoll(value, &end, 10);
        if (value[0] == '\0' || *end != '\0' || errno != 0)
                return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                 "'%s' is not an integer (accepted range %u..%u)", value, min, max);
        if (n < min || n > max)
                return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                 "%" G_GINT64_FORMAT " is out of range %u..%u", n, min, max);
        *out = (guint)n;
        return TRUE;
}

static gboolean parse_key(CollectorConfig *c, const char *file, const char *group, const char *key,
                          const char *value, GError **error)
{
        if (g_str_equal(key, "type")) {
                if (!is_level(value, COLLECTOR_ID_MAX_LEN))
                        return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                         "'%s' is not a type name (1..%d characters of A-Z a-z 0-9 _ -)",
                                         value, COLLECTOR_ID_MAX_LEN);
                g_free(c->type);
                c->type = g_strdup(value);
                return TRUE;
        }
        if (g_str_equal(key, "exec"))
                return parse_exec(c, file, group, value, error);
        if (g_str_equal(key, "socket")) {
                if (!g_path_is_absolute(value))
                        return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                         "'%s' is not an absolute path", value);
                if (strlen(value) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                        return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                         "'%s' is longer than %zu bytes (a Unix socket path limit)", value,
                                         sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1);
                g_free(c->socket_path);
                c->socket_path = g_strdup(value);
                return TRUE;
        }
        if (g_str_equal(key, "unit")) {
                if (!is_unit_name(value))
                        return set_error(
                                error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                "'%s' is not a service unit name (NAME.service, at most %d characters)",
                                value, UNIT_NAME_MAX);
                g_free(c->unit);
                c->unit = g_strdup(value);
                return TRUE;
        }
        if (g_str_equal(key, "autostart")) {
                if (g_str_equal(value, "true") || g_str_equal(value, "1"))
                        c->autostart = TRUE;
                else if (g_str_equal(value, "false") || g_str_equal(value, "0"))
                        c->autostart = FALSE;
                else
                        return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                         "'%s' is not a boolean (accepted: true, false)", value);
                return TRUE;
        }
        if (g_str_equal(key, "instances")) {
                /* Instances are "<id>-<n>": the longest must still be one topic level. */
                char digits[16];

                if (!parse_uint(file, group, key, value, 1, COLLECTOR_MAX_INSTANCES, &c->instances, error))
                        return FALSE;
                g_snprintf(digits, sizeof(digits), "%u", c->instances);
                if (c->instances > 1 && strlen(c->id) + 1 + strlen(digits) > COLLECTOR_ID_MAX_LEN)
                        return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, key,
                                         "%u instances named %s-1..%s-%u: ids longer than %d characters",
                                         c->instances, c->id, c->id, c->instances, COLLECTOR_ID_MAX_LEN);
                return TRUE;
        }
        if (g_str_equal(key, "heartbeat_interval_seconds"))
                return parse_uint(file, group, key, value, 1, 3600, &c->heartbeat_interval_seconds, error);

        /* The collector's own setting: names as collector-core spells them (GKeyFile hides "key[xx]"
         * variants). */
        for (const char *p = key; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
                        return set_error(
                                error, CONFIG_ERROR_UNKNOWN_KEY, file, group, key,
                                "not a setting name (A-Z a-z 0-9 _ - . only); the reserved keys are "
                                "type, exec, socket, unit, autostart, instances, "
                                "heartbeat_interval_seconds");
        g_hash_table_replace(c->settings, g_strdup(key), g_strdup(value));
        return TRUE;
}

/** collector_config_apply_group: see config-collector.h. */
gboolean collector_config_apply_group(GPtrArray *collectors, const char *file, GKeyFile *kf,
                                      const char *group, const char *id, GError **error)
{
        CollectorConfig *c = NULL;
        g_auto(GStrv) keys = NULL;

        for (guint i = 0; i < collectors->len && !c; i++)
                if (g_str_equal(((CollectorConfig *)collectors->pdata[i])->id, id))
                        c = collectors->pdata[i];
        if (!c) {
                c = collector_config_new(id, file);
                g_ptr_array_add(collectors, c);
        }

        keys = g_key_file_get_keys(kf, group, NULL, NULL);
        for (char **k = keys; k && *k; k++) {
                g_autoptr(GError) local = NULL;
                g_autofree char *value = g_key_file_get_string(kf, group, *k, &local);

                if (!value)
                        return set_error(error, CONFIG_ERROR_INVALID_VALUE, file, group, *k, "%s",
                                         local->message);
                g_strstrip(value);
                if (!parse_key(c, file, group, *k, value, error))
                        return FALSE;
        }
        return TRUE;
}

static const CollectorConfig *find(CollectorConfig *const *list, const char *id)
{
        for (CollectorConfig *const *c = list; c && *c; c++)
                if (g_str_equal((*c)->id, id))
                        return *c;
        return NULL;
}

static void diff_value(GPtrArray *lines, const char *id, const char *key, const char *a, const char *b)
{
        if (g_strcmp0(a, b) != 0)
                g_ptr_array_add(lines, g_strdup_printf("[collector %s] %s: %s -> %s", id, key,
                                                       a ? a : "(unset)", b ? b : "(unset)"));
}

static void diff_uint(GPtrArray *lines, const char *id, const char *key, guint a, guint b)
{
        if (a != b)
                g_ptr_array_add(lines, g_strdup_printf("[collector %s] %s: %u -> %u", id, key, a, b));
}

static void diff_one(GPtrArray *lines, const CollectorConfig *a, const CollectorConfig *b)
{
        g_autofree const char **keys_a = collector_config_get_setting_keys(a);
        g_autofree const char **keys_b = collector_config_get_setting_keys(b);

        diff_value(lines, a->id, "type", a->type, b->type);
        diff_value(lines, a->id, "exec", a->exec, b->exec);
        diff_value(lines, a->id, "socket", a->socket_path, b->socket_path);
        diff_value(lines, a->id, "unit", a->unit, b->unit);
        diff_value(lines, a->id, "autostart", a->autostart ? "true" : "false",
                   b->autostart ? "true" : "false");
        diff_uint(lines, a->id, "instances", a->instances, b->instances);
        diff_uint(lines, a->id, "heartbeat_interval_seconds", a->heartbeat_interval_seconds,
                  b->heartbeat_interval_seconds);
        for (const char **k = keys_a; *k; k++)
                diff_value(lines, a->id, *k, g_hash_table_lookup(a->settings, *k),
                           g_hash_table_lookup(b->settings, *k));
        for (const char **k = keys_b; *k; k++)
                if (!g_hash_table_contains(a->settings, *k))
                        diff_value(lines, a->id, *k, NULL, g_hash_table_lookup(b->settings, *k));
}

/** collector_configs_diff: see config-collector.h. */
void collector_configs_diff(CollectorConfig *const *old, CollectorConfig *const *new, GPtrArray *lines)
{
        for (CollectorConfig *const *c = old; c && *c; c++) {
                const CollectorConfig *other = find(new, (*c)->id);

                if (other)
                        diff_one(lines, *c, other);
                else
                        g_ptr_array_add(lines, g_strdup_printf("[collector %s]: removed", (*c)->id));
        }
        for (CollectorConfig *const *c = new; c &&*c; c++)
                if (!find(old, (*c)->id))
                        g_ptr_array_add(lines, g_strdup_printf("[collector %s]: added", (*c)->id));
}
