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

typedef struct {
        guint graceful_shutdown_timeout_seconds; /* default 30, 1..3600 */
        guint force_shutdown_timeout_seconds;    /* default 10, 1..3600 */
        guint health_check_interval_seconds;     /* default 60, 1..86400 */
        gboolean enable_auto_restart;            /* default true */
        guint max_restart_attempts;              /* default 3, 0..1000 */
        guint restart_backoff_seconds;           /* default 5, 1..3600 */
} ProcessManagerConfig;

typedef struct {
        BrokerConfig broker;
        RpcConfig rpc;
        ProcessManagerConfig process_manager;
        char *path; /* the main file read, or NULL when only defaults */
        /*
         * "[collector <id>]" group names in the order first seen, NULL-terminated.
         * Only the id is validated (one topic level: 1..64 of [A-Za-z0-9_-]);
         * the keys of these groups belong to the process manager, which parses
         * them in a later issue, so they are accepted unchecked for now.
         */
        char **collector_groups;
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)

G_END_DECLS
