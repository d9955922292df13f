/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Settings in force and change plans: a store holds one value per schema key;
 * changes (from --set text, Start overrides or UpdateConfig JSON) are checked
 * into a plan, which is then put in force or thrown away whole.
 */
#include <string.h>

#include "dcc-collector.h"
#include "dcc-config-store.h"

typedef struct {
        const DccConfigKey *key;
        DccConfigValue value;
} StoreEntry;

struct _DccConfigStore {
        GPtrArray *keys;     /* const DccConfigKey *, schema order */
        GHashTable *entries; /* key name -> StoreEntry */
};

static void store_entry_free(gpointer data)
{
        StoreEntry *entry = data;

        dcc_config_value_clear(&entry->value);
        g_free(entry);
}

DccConfigStore *dcc_config_store_new(const DccConfigKey *schema, GError **error)
{
        g_autoptr(DccConfigStore) store = g_new0(DccConfigStore, 1);
        g_autoptr(GError) local = NULL;

        store->keys = g_ptr_array_new();
        store->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, store_entry_free);
        for (const DccConfigKey *key = schema; key && key->key; key++) {
                StoreEntry *entry;

                if (!dcc_config_key_check(key, error))
                        return NULL;
                if (g_hash_table_contains(store->entries, key->key)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "config schema: key '%s' is declared twice", key->key);
                        return NULL;
                }
                entry = g_new0(StoreEntry, 1);
                entry->key = key;
                if (!dcc_config_parse_string(key, dcc_config_key_default_text(key), &entry->value, &local)) {
                        g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                                    "config schema: key '%s': default '%s': %s", key->key, dcc_config_key_default_text(key),
                                    local->message);
                        g_free(entry);
                        return NULL;
                }
                g_hash_table_insert(store->entries, (gpointer)key->key, entry);
                g_ptr_array_add(store->keys, (gpointer)key);
        }
        return g_steal_pointer(&store);
}

void dcc_config_store_free(DccConfigStore *store)
{
        if (!store)
                return;
        g_clear_pointer(&store->entries, g_hash_table_unref);
        g_clear_pointer(&store->keys, g_ptr_array_unref);
        g_free(store);
}

const DccConfigKey *dcc_config_store_lookup(DccConfigStore *store, const char *key)
{
        StoreEntry *entry = g_hash_table_lookup(store->entries, key);

        return entry ? entry->key : NULL;
}

const DccConfigValue *dcc_config_store_get(DccConfigStore *store, const DccConfigKey *key)
{
        StoreEntry *entry = g_hash_table_lookup(store->entries, key->key);

        g_return_val_if_fail(entry != NULL && entry->key == key, NULL);
        return &entry->value;
}

const DccConfigKey *const *dcc_config_store_get_schema(DccConfigStore *store, gsize *n_keys)
{
        *n_keys = store->keys->len;
        return (const DccConfigKey *const *)store->keys->pdata;
}

static void store_put(DccConfigStore *store, const DccConfigKey *key, const DccConfigValue *value)
{
        StoreEntry *entry = g_hash_table_lookup(store->entries, key->key);
        DccConfigValue copy;

        /* Copy first: @value may be the entry's own value. */
        dcc_config_value_copy(&copy, value);
        dcc_config_value_clear(&entry->value);
        entry->value = copy;
}

/* "unknown key (known: a, b, c)": the reader learns the right spelling. */
static char *store_describe_unknown(DccConfigStore *store)
{
        g_autoptr(GString) text = g_string_new("unknown key");

        if (store->keys->len == 0)
                return g_string_free(g_steal_pointer(&text), FALSE);
        g_string_append(text, " (known: ");
        for (guint i = 0; i < store->keys->len; i++) {
                const DccConfigKey *key = store->keys->pdata[i];

                if (i > 0)
                        g_string_append(text, ", ");
                if (i == 16) {
                        g_string_append(text, "...");
                        break;
                }
                g_string_append(text, key->key);
        }
        g_string_append_c(text, ')');
        return g_string_free(g_steal_pointer(&text), FALSE);
}

gboolean dcc_config_store_set_string(DccConfigStore *store, const char *key, const char *text, GError **error)
{
        const DccConfigKey *schema_key = dcc_config_store_lookup(store, key);
        g_autoptr(GError) local = NULL;
        DccConfigValue value;

        if (!schema_key) {
                g_autofree char *reason = store_describe_unknown(store);

                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "setting '%s': %s", key, reason);
                return FALSE;
        }
        if (!dcc_config_parse_string(schema_key, text, &value, &local)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "setting '%s': %s", key, local->message);
                return FALSE;
        }
        store_put(store, schema_key, &value);
        dcc_config_value_clear(&value);
        return TRUE;
}

static void rejection_free(gpointer data)
{
        DccConfigRejection *rejection = data;

        g_free(rejection->key);
        g_free(rejection->reason);
        g_free(rejection);
}

static void change_clear(gpointer data)
{
        DccConfigChange *change = data;

        dcc_config_value_clear(&change->old_value);
        dcc_config_value_clear(&change->new_value);
}

DccConfigPlan *dcc_config_plan_new(void)
{
        DccConfigPlan *plan = g_new0(DccConfigPlan, 1);

        plan->live = g_array_new(FALSE, TRUE, sizeof(DccConfigChange));
        g_array_set_clear_func(plan->live, change_clear);
        plan->deferred = g_array_new(FALSE, TRUE, sizeof(DccConfigChange));
        g_array_set_clear_func(plan->deferred, change_clear);
        plan->skipped = g_ptr_array_new_with_free_func(rejection_free);
        plan->rejected = g_ptr_array_new_with_free_func(rejection_free);
        return plan;
}

void dcc_config_plan_free(DccConfigPlan *plan)
{
        if (!plan)
                return;
        g_array_unref(plan->live);
        g_array_unref(plan->deferred);
        g_ptr_array_unref(plan->skipped);
        g_ptr_array_unref(plan->rejected);
        g_free(plan);
}

static void plan_forget_key(DccConfigPlan *plan, const char *key)
{
        GArray *arrays[] = {plan->live, plan->deferred};
        GPtrArray *lists[] = {plan->skipped, plan->rejected};

        for (gsize a = 0; a < G_N_ELEMENTS(arrays); a++)
                for (guint i = 0; i < arrays[a]->len; i++)
                        if (strcmp(g_array_index(arrays[a], DccConfigChange, i).key->key, key) == 0)
                                g_array_remove_index(arrays[a], i--);
        for (gsize l = 0; l < G_N_ELEMENTS(lists); l++)
                for (guint i = 0; i < lists[l]->len; i++)
                        if (strcmp(((DccConfigRejection *)lists[l]->pdata[i])->key, key) == 0)
                                g_ptr_array_remove_index(lists[l], i--);
}

static void plan_reject(GPtrArray *list, const char *key, char *reason /* transfer full */)
{
        DccConfigRejection *rejection = g_new0(DccConfigRejection, 1);

        rejection->key = g_strdup(key);
        rejection->reason = reason;
        g_ptr_array_add(list, rejection);
}

/* Files a parsed value (or the parse error) under the right list. */
static void plan_file(DccConfigStore *store, DccConfigPlan *plan, const char *key_name, const DccConfigKey *key,
                      DccConfigValue *value /* transfer full, NULL on error */, const GError *parse_error,
                      gboolean running, gboolean accept_restart)
{
        DccConfigChange change;
        const DccConfigValue *current;

        plan_forget_key(plan, key_name);
        if (!key) {
                plan_reject(plan->rejected, key_name, store_describe_unknown(store));
                return;
        }
        if (!value) {
                plan_reject(plan->rejected, key_name, g_strdup(parse_error->message));
                return;
        }
        current = dcc_config_store_get(store, key);
        if (dcc_config_value_equal(current, value)) {
                plan_reject(plan->skipped, key_name, g_strdup("value unchanged"));
                dcc_config_value_clear(value);
                return;
        }
        if (key->restart_required && running && !accept_restart) {
                plan_reject(plan->rejected, key_name,
                            g_strdup("takes effect only when the collector restarts, and the request did not "
                                     "accept a restart (restart_required)"));
                dcc_config_value_clear(value);
                return;
        }
        change.key = key;
        dcc_config_value_copy(&change.old_value, current);
        change.new_value = *value;
        g_array_append_val(key->restart_required && running ? plan->deferred : plan->live, change);
}

void dcc_config_plan_add_string(DccConfigStore *store, DccConfigPlan *plan, const char *key, const char *text,
                                gboolean running, gboolean accept_restart)
{
        const DccConfigKey *schema_key = dcc_config_store_lookup(store, key);
        g_autoptr(GError) error = NULL;
        DccConfigValue value;
        gboolean ok = schema_key && dcc_config_parse_string(schema_key, text, &value, &error);

        plan_file(store, plan, key, schema_key, ok ? &value : NULL, error, running, accept_restart);
}

gboolean dcc_config_plan_add_json(DccConfigStore *store, DccConfigPlan *plan, const char *json, gboolean running,
                                  gboolean accept_restart, GError **error)
{
        g_autoptr(JsonParser) parser = json_parser_new_immutable();
        g_autoptr(GError) local = NULL;
        g_autoptr(GList) members = NULL;
        JsonObject *object;
        JsonNode *root;

        if (!json_parser_load_from_data(parser, json, -1, &local)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT, "changes_json: %s", local->message);
                return FALSE;
        }
        root = json_parser_get_root(parser);
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                            "changes_json: expected a JSON object of setting -> value, got %s",
                            root ? dcc_config_json_describe(root) : "nothing");
                return FALSE;
        }
        object = json_node_get_object(root);
        if (json_object_get_size(object) > DCC_CONFIG_MAX_CHANGES) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_INVALID_ARGUMENT,
                            "changes_json: %u settings in one request, at most %d", json_object_get_size(object),
                            DCC_CONFIG_MAX_CHANGES);
                return FALSE;
        }
        members = json_object_get_members(object);
        for (GList *l = members; l; l = l->next) {
                const char *name = l->data;
                const DccConfigKey *key = dcc_config_store_lookup(store, name);
                g_autoptr(GError) parse_error = NULL;
                DccConfigValue value;
                gboolean ok = key &&
                              dcc_config_parse_json(key, json_object_get_member(object, name), &value, &parse_error);

                plan_file(store, plan, name, key, ok ? &value : NULL, parse_error, running, accept_restart);
        }
        return TRUE;
}

/* Puts each change's new (or, with @undo, old) value in force. */
static void store_put_changes(DccConfigStore *store, const GArray *changes, gboolean undo)
{
        for (guint i = 0; i < changes->len; i++) {
                const DccConfigChange *change = &g_array_index(changes, DccConfigChange, i);

                store_put(store, change->key, undo ? &change->old_value : &change->new_value);
        }
}

void dcc_config_store_commit(DccConfigStore *store, const DccConfigPlan *plan)
{
        store_put_changes(store, plan->live, FALSE);
        store_put_changes(store, plan->deferred, FALSE);
}

void dcc_config_store_revert(DccConfigStore *store, const DccConfigPlan *plan)
{
        store_put_changes(store, plan->live, TRUE);
        store_put_changes(store, plan->deferred, TRUE);
}

GArray *dcc_config_changes_reverse(const GArray *changes)
{
        GArray *reversed = g_array_sized_new(FALSE, TRUE, sizeof(DccConfigChange), changes->len);

        for (guint i = 0; i < changes->len; i++) {
                DccConfigChange change = g_array_index(changes, DccConfigChange, i);
                DccConfigValue old_value = change.old_value;

                change.old_value = change.new_value;
                change.new_value = old_value;
                g_array_append_val(reversed, change);
        }
        return reversed;
}
