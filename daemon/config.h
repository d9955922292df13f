/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * daemoneye.conf: GKeyFile syntax, the main file plus conf.d/ *.conf drop-ins
 * in lexical order, later files overriding single keys. Every error names
 * file, group, key and the accepted range.
 */

#define CONFIG_ERROR (config_error_quark())
GQuark config_error_quark(void);

typedef enum {
        CONFIG_ERROR_PARSE, /* not GKeyFile syntax */
        CONFIG_ERROR_UNKNOWN_GROUP,
        CONFIG_ERROR_UNKNOWN_KEY,
        CONFIG_ERROR_INVALID_VALUE, /* wrong type or out of range */
        CONFIG_ERROR_IO,
} ConfigError;

typedef enum {
        DROP_POLICY_DROP_OLDEST,
        DROP_POLICY_DROP_NEWEST,
        DROP_POLICY_DISCONNECT,
} DropPolicy;

typedef struct {
        char *socket_path;             /* default DAEMONEYE_DEFAULT_SOCKET */
        guint startup_timeout_seconds; /* handshake deadline, default 10, 1..3600 */
        guint max_subscribers;         /* connections, default 1024, 1..65536 */
        guint message_buffer_size;     /* per-subscriber queue in messages, default 10000, 1..10000000 */
        gboolean enable_metrics;       /* default true */
        DropPolicy drop_policy;        /* drop_policy=drop-oldest|drop-newest|disconnect */
        guint max_frame_bytes;         /* default 1048576, 64..67108864 */
        guint max_subscriptions_per_connection; /* default 1024, 1..1000000 */
        guint socket_mode;                      /* default 0660, octal string in the file */
} BrokerConfig;

typedef struct {
        guint default_timeout_seconds;        /* default 30, 1..3600 */
        guint health_check_interval_seconds;  /* default 30, 1..86400 */
        gboolean enable_correlation_tracking; /* default true */
        guint max_pending_requests;           /* default 1000, 1..1000000 */
        char *audit_log_path;                 /* default NULL: journal only */
} RpcConfig;

/* How the process manager runs collectors; [process_manager] backend=. */
typedef enum {
        COLLECTOR_BACKEND_AUTO,     /* systemd when it runs the machine (sd_booted()), else embedded */
        COLLECTOR_BACKEND_EMBEDDED, /* the agent binds, forks and connects itself */
        COLLECTOR_BACKEND_SYSTEMD,  /* .socket units started by systemd (backend-systemd.c) */
} CollectorBackendKind;

typedef struct {
        guint graceful_shutdown_timeout_seconds; /* default 30, 1..3600 */
        guint force_shutdown_timeout_seconds;    /* default 10, 1..3600 */
        guint health_check_interval_seconds;     /* default 60, 1..86400 */
        gboolean enable_auto_restart;            /* default true */
        guint max_restart_attempts;              /* default 3, 0..1000 */
        guint restart_backoff_seconds;           /* default 5, 1..3600 */
        CollectorBackendKind backend;            /* backend=auto|embedded|systemd, default auto */
} ProcessManagerConfig;

/*
 * One "[collector <id>]" group. The reserved keys are parsed into fields;
 * every other key is the collector's own setting, kept as written and
 * validated by the collector itself when the agent sends it at start.
 */
typedef struct {
        char *id;           /* the group's "<id>": one topic level */
        char *type;         /* type=; NULL: unset (the collector's own type is not checked) */
        char *exec;         /* exec=, the command line as written; NULL: unset */
        char **exec_argv;   /* exec= split like a shell would; NULL: unset */
        char *socket_path;  /* socket=; NULL: <dir of [broker] socket_path>/collectors/<id>.sock */
        char *unit;         /* unit=; NULL: daemoneye-<id>.service */
        gboolean autostart; /* autostart=, default true */
        guint instances;    /* instances=, default 1, 1..64 */
        guint heartbeat_interval_seconds; /* heartbeat_interval_seconds=, default 10, 1..3600 */
        GHashTable *settings;             /* char* key → char* value: every other key */
        char *file;                       /* the file that named the group first, for messages */
} CollectorConfig;

/* Variables a collector's exec= may reference as ${NAME}; the agent also sets them in its environment. */
#define COLLECTOR_ENV_ID "DAEMONEYE_COLLECTOR_ID"
#define COLLECTOR_ENV_TYPE "DAEMONEYE_COLLECTOR_TYPE"
#define COLLECTOR_ENV_HEARTBEAT_MS "DAEMONEYE_HEARTBEAT_INTERVAL_MS"
#define COLLECTOR_ENV_SOCKET "DAEMONEYE_SOCKET"

typedef struct {
        BrokerConfig broker;
        RpcConfig rpc;
        ProcessManagerConfig process_manager;
        char *path; /* the main file read, or NULL when only defaults */
        /*
         * "[collector <id>]" group names in the order first seen, NULL-terminated.
         * The id is one topic level: 1..64 of [A-Za-z0-9_-].
         */
        char **collector_groups;
        /* The same groups parsed, in the same order, NULL-terminated. */
        CollectorConfig **collectors;
        char **files; /* every file read, main file first, NULL-terminated */
} Config;

/** config_new_default: Returns: (transfer full) a config holding every default. */
Config *config_new_default(void);
/** config_free: frees @config and every string it owns; NULL is accepted. */
void config_free(Config *config);

/**
 * config_load:
 * @path: the main file; its sibling "<dir>/conf.d/ *.conf" are read after it
 * @must_exist: if FALSE, a missing main file means "defaults"
 *
 * Returns: (transfer full) the config, or NULL with a CONFIG_ERROR whose
 *   message names file, group, key and the accepted range.
 */
Config *config_load(const char *path, gboolean must_exist, GError **error);

/**
 * config_diff:
 *
 * Returns: (transfer full) one "[group] key: old -> new" line per key whose
 *   value differs between @old and @new, in file order, NULL-terminated
 *   (empty when nothing changed). For logging what a reload changed.
 */
char **config_diff(const Config *old, const Config *new);

/** drop_policy_to_string: Returns: the config file spelling ("drop-oldest", …). */
const char *drop_policy_to_string(DropPolicy policy);

/**
 * drop_policy_from_string:
 * @out: (out) the policy when %TRUE is returned
 *
 * Returns: %TRUE if @s is "drop-oldest", "drop-newest" or "disconnect".
 */
gboolean drop_policy_from_string(const char *s, DropPolicy *out);

/** collector_backend_kind_to_string: Returns: the config file spelling ("auto", "embedded", "systemd"). */
const char *collector_backend_kind_to_string(CollectorBackendKind kind);

/** config_find_collector: Returns: (transfer none) (nullable) the collector group with @id. */
const CollectorConfig *config_find_collector(const Config *config, const char *id);

/** collector_config_free: frees a collector group and everything it owns; NULL is accepted. */
void collector_config_free(CollectorConfig *collector);

/** collector_config_copy: Returns: (transfer full) a deep copy. */
CollectorConfig *collector_config_copy(const CollectorConfig *collector);

/**
 * collector_config_get_setting_keys:
 *
 * Returns: (transfer container) the collector's own setting names, sorted,
 *   NULL-terminated; the strings belong to @collector.
 */
const char **collector_config_get_setting_keys(const CollectorConfig *collector);

/**
 * collector_config_get_socket_path:
 * @broker_socket_path: the [broker] socket_path in force
 *
 * Returns: (transfer full) socket=, or the default beside the broker socket:
 *   "<its dir>/collectors/<id>.sock".
 */
char *collector_config_get_socket_path(const CollectorConfig *collector, const char *broker_socket_path);

/**
 * collector_config_expand_exec:
 * @vars: NULL-terminated NAME, VALUE, NAME, VALUE… list
 *
 * Expands "${NAME}" in every word of exec= with @vars ("$$" is a literal '$').
 * Returns: (transfer full) the argv, or %NULL with a CONFIG_ERROR naming the
 *   file, group and variable when exec= is unset or names an unknown variable.
 */
char **collector_config_expand_exec(const CollectorConfig *collector, const char *const *vars,
                                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CollectorConfig, collector_config_free)

G_END_DECLS
