/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The settings in force and the checking of changes against the schema.
 * Not installed: collectors see their settings through dcc_collector_get_*().
 */
#include <json-glib/json-glib.h>

#include "dcc-config.h"

G_BEGIN_DECLS

/* Members of a JSON change set beyond which a request is refused whole: replies must stay small. */
#define DCC_CONFIG_MAX_CHANGES 256

typedef struct _DccConfigStore DccConfigStore;

typedef struct {
        char *key;
        char *reason;
} DccConfigRejection;

/*
 * Changes checked against a store and not yet in force. Keys appear once
 * (a later value for the same key replaces the earlier one).
 */
typedef struct {
        GArray *live;        /* DccConfigChange: take effect now, through apply_config */
        GArray *deferred;    /* DccConfigChange: restart_required keys, for the next start */
        GPtrArray *skipped;  /* DccConfigRejection: value unchanged */
        GPtrArray *rejected; /* DccConfigRejection: unknown key, wrong type, out of range… */
} DccConfigPlan;

/**
 * dcc_config_store_new:
 * @schema: (nullable) entries up to one whose key is NULL; must outlive the store
 *
 * Returns: (transfer full) a store holding every default, or %NULL with
 *   #DCC_ERROR_INVALID_ARGUMENT for a bad schema (bad or duplicate key,
 *   inverted range, default that does not parse or is out of range).
 */
DccConfigStore *dcc_config_store_new(const DccConfigKey *schema, GError **error);
void dcc_config_store_free(DccConfigStore *store);

/** dcc_config_store_lookup: Returns: (transfer none) the key's schema entry, or %NULL. */
const DccConfigKey *dcc_config_store_lookup(DccConfigStore *store, const char *key);

/** dcc_config_store_get: Returns: (transfer none) the value in force of @key (from this store). */
const DccConfigValue *dcc_config_store_get(DccConfigStore *store, const DccConfigKey *key);

/** dcc_config_store_get_schema: Returns: (transfer none) the schema entries, in order. */
const DccConfigKey *const *dcc_config_store_get_schema(DccConfigStore *store, gsize *n_keys);

/**
 * dcc_config_store_set_string:
 *
 * Parses and checks @text for @key and puts it in force at once (no plan, no
 * apply callback): for the command line, before the collector runs.
 */
gboolean dcc_config_store_set_string(DccConfigStore *store, const char *key, const char *text, GError **error);

/**
 * dcc_config_parse_string:
 * @out: (out) on success, the value; free its string with dcc_config_value_clear()
 *
 * Returns: %FALSE with an error saying what was expected (type or range).
 */
gboolean dcc_config_parse_string(const DccConfigKey *key, const char *text, DccConfigValue *out, GError **error);

/** dcc_config_parse_json: as dcc_config_parse_string() for a JSON value; JSON null means the default. */
gboolean dcc_config_parse_json(const DccConfigKey *key, JsonNode *node, DccConfigValue *out, GError **error);

/**
 * dcc_config_key_check:
 *
 * Checks a schema entry itself: its key name, type and range (not its default).
 * Returns: %FALSE with #DCC_ERROR_INVALID_ARGUMENT naming the key.
 */
gboolean dcc_config_key_check(const DccConfigKey *key, GError **error);

/** dcc_config_key_default_text: Returns: the key's default as --set text ("0", "false", "" when unset). */
const char *dcc_config_key_default_text(const DccConfigKey *key);

/** dcc_config_json_describe: Returns: "an integer", "a string", "null"… for messages. */
const char *dcc_config_json_describe(JsonNode *node);

/** dcc_config_value_copy: @dst gets its own copy of @src's string. */
void dcc_config_value_copy(DccConfigValue *dst, const DccConfigValue *src);
void dcc_config_value_clear(DccConfigValue *value);

DccConfigPlan *dcc_config_plan_new(void);
void dcc_config_plan_free(DccConfigPlan *plan);

/**
 * dcc_config_plan_add_string:
 * @running: the collector is collecting: restart_required keys are
 *   deferred when @accept_restart, else rejected
 *
 * Checks one KEY=VALUE against @store and files it under live, deferred,
 * skipped or rejected.
 */
void dcc_config_plan_add_string(DccConfigStore *store, DccConfigPlan *plan, const char *key, const char *text,
                                gboolean running, gboolean accept_restart);

/**
 * dcc_config_plan_add_json:
 * @json: a JSON object of key → value
 *
 * As dcc_config_plan_add_string() for every member.
 * Returns: %FALSE with #DCC_ERROR_INVALID_ARGUMENT (and nothing filed) when
 *   @json is not a JSON object or has more than DCC_CONFIG_MAX_CHANGES members.
 */
gboolean dcc_config_plan_add_json(DccConfigStore *store, DccConfigPlan *plan, const char *json, gboolean running,
                                  gboolean accept_restart, GError **error);

/** dcc_config_store_commit: puts the plan's live and deferred new values in force. */
void dcc_config_store_commit(DccConfigStore *store, const DccConfigPlan *plan);

/** dcc_config_store_revert: puts the plan's live and deferred old values back. */
void dcc_config_store_revert(DccConfigStore *store, const DccConfigPlan *plan);

/**
 * dcc_config_changes_reverse:
 *
 * Returns: (transfer full) @changes with old and new swapped (sharing their
 *   strings: valid as long as @changes), for undoing an apply.
 */
GArray *dcc_config_changes_reverse(const GArray *changes);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DccConfigStore, dcc_config_store_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DccConfigPlan, dcc_config_plan_free)

G_END_DECLS
