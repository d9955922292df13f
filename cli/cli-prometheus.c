/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GetMetrics' a{sv} in the Prometheus text format. The tree is walked once;
 * samples are collected per family, because the format wants every line of
 * a family together under one # TYPE, and labelled families (one line per
 * collector) would otherwise interleave.
 */
#include <math.h>
#include <string.h>

#include "cli-prometheus.h"
#include "cli-variant.h"

#define PROMETHEUS_PREFIX "daemoneye"

typedef struct {
        char *name;
        const char *type;
        GString *samples;
} PromFamily;

typedef struct {
        GHashTable *by_name; /* name → PromFamily, owned by order */
        GPtrArray *order;    /* first-seen order */
} PromExposition;

/* Running totals kept in 32 bits; 64-bit ones are recognised by type (prom_type()). */
static const char *const prom_counter_keys[] = {"restart_count", "restarts", "error_count", "errors"};

/* 64-bit values that are levels, not totals: times, sizes, queue depths. */
static const char *const prom_gauge_suffixes[] = {"_us",      "_ms",        "_seconds", "_bytes",
                                                  "_percent", "high_water", "pending",  "queued"};

static void prom_family_free(PromFamily *family)
{
        g_free(family->name);
        g_string_free(family->samples, TRUE);
        g_free(family);
}

/*
 * The agent's running totals are uint64 (published, dropped, rpc_requests,
 * latency count) and its levels mostly uint32 or named by unit; a few
 * 32-bit totals are known by name.
 */
static const char *prom_type(const char *key, GVariant *value)
{
        for (gsize i = 0; i < G_N_ELEMENTS(prom_counter_keys); i++)
                if (strcmp(key, prom_counter_keys[i]) == 0)
                        return "counter";
        if (g_str_has_suffix(key, "_total"))
                return "counter";
        if (!g_variant_is_of_type(value, G_VARIANT_TYPE_UINT64))
                return "gauge";
        for (gsize i = 0; i < G_N_ELEMENTS(prom_gauge_suffixes); i++)
                if (g_str_has_suffix(key, prom_gauge_suffixes[i]))
                        return "gauge";
        return "counter";
}

char *cli_prometheus_sanitize_name(const char *name)
{
        char *s = g_strdup(name);

        for (char *p = s; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '_' && *p != ':')
                        *p = '_';
        return s;
}

/* Label names are names without ':', never starting with a digit or "__" (reserved). */
static char *prom_label_name(const char *key)
{
        g_autofree char *s = cli_prometheus_sanitize_name(key);

        for (char *p = s; *p; p++)
                if (*p == ':')
                        *p = '_';
        if (!*s || g_ascii_isdigit(*s) || g_str_has_prefix(s, "__"))
                return g_strconcat("l_", s, NULL);
        return g_steal_pointer(&s);
}

static void prom_append_label(GString *labels, const char *name, const char *value)
{
        g_autofree char *label = prom_label_name(name);

        g_string_append_printf(labels, "%s%s=\"", labels->len ? "," : "", label);
        for (const char *p = value; *p; p++) {
                if (*p == '\\' || *p == '"')
                        g_string_append_c(labels, '\\');
                if (*p == '\n')
                        g_string_append(labels, "\\n");
                else
                        g_string_append_c(labels, *p);
        }
        g_string_append_c(labels, '"');
}

/* "topics" → "topic", "collectors" → "collector"; other keys stay as they are. */
static char *prom_singular(const char *key)
{
        gsize len = strlen(key);

        if (len > 1 && key[len - 1] == 's')
                return g_strndup(key, len - 1);
        return g_strdup(key);
}

static char *prom_join(const char *prefix, const char *key)
{
        g_autofree char *part = cli_prometheus_sanitize_name(key);

        return g_strconcat(prefix, "_", part, NULL);
}

static gboolean prom_format_number(GVariant *value, GString *out)
{
        switch (g_variant_classify(value)) {
        case G_VARIANT_CLASS_BOOLEAN:
        case G_VARIANT_CLASS_BYTE:
        case G_VARIANT_CLASS_UINT16:
        case G_VARIANT_CLASS_UINT32:
        case G_VARIANT_CLASS_UINT64:
                g_string_append_printf(out, "%" G_GUINT64_FORMAT, cli_variant_get_uint64(value, 0));
                return TRUE;
        case G_VARIANT_CLASS_INT16:
                g_string_append_printf(out, "%d", g_variant_get_int16(value));
                return TRUE;
        case G_VARIANT_CLASS_INT32:
                g_string_append_printf(out, "%" G_GINT32_FORMAT, g_variant_get_int32(value));
                return TRUE;
        case G_VARIANT_CLASS_INT64:
                g_string_append_printf(out, "%" G_GINT64_FORMAT, g_variant_get_int64(value));
                return TRUE;
        case G_VARIANT_CLASS_DOUBLE: {
                double d = g_variant_get_double(value);
                char buf[G_ASCII_DTOSTR_BUF_SIZE];

                if (isnan(d))
                        g_string_append(out, "NaN");
                else if (isinf(d))
                        g_string_append(out, d > 0 ? "+Inf" : "-Inf");
                else
                        g_string_append(out, g_ascii_dtostr(buf, sizeof(buf), d));
                return TRUE;
        }
        default:
                return FALSE;
        }
}

static void prom_add_sample(PromExposition *e, const char *name, const char *type, const char *labels,
                            GVariant *value)
{
        PromFamily *family = g_hash_table_lookup(e->by_name, name);
        g_autoptr(GString) number = g_string_new(NULL);

        if (!prom_format_number(value, number))
                return;
        if (!family) {
                family = g_new0(PromFamily, 1);
                family->name = g_strdup(name);
                family->type = type;
                family->samples = g_string_new(NULL);
                g_ptr_array_add(e->order, family);
                g_hash_table_insert(e->by_name, family->name, family);
        }
        g_string_append(family->samples, name);
        if (labels && *labels)
                g_string_append_printf(family->samples, "{%s}", labels);
        g_string_append_printf(family->samples, " %s\n", number->str);
}

static GVariant *prom_unbox(GVariant *value)
{
        while (g_variant_is_of_type(value, G_VARIANT_TYPE_VARIANT)) {
                GVariant *child = g_variant_get_variant(value);

                g_variant_unref(value);
                value = child;
        }
        return value;
}

static gboolean prom_is_string_dict(GVariant *value)
{
        return g_variant_is_container(value) && g_variant_type_is_array(g_variant_get_type(value)) &&
               (g_variant_type_is_subtype_of(g_variant_get_type(value), G_VARIANT_TYPE("a{s*}")));
}

static void prom_walk_dict(PromExposition *e, const char *prefix, const char *labels, GVariant *dict,
                           const char *skip_key);

/* Every value a dictionary, and at least one: the keys are names (topic prefixes), not structure. */
static gboolean prom_is_dict_of_dicts(GVariant *dict)
{
        GVariantIter iter;
        const char *key;
        GVariant *value;
        gboolean all = g_variant_n_children(dict) > 0;

        g_variant_iter_init(&iter, dict);
        while (all && g_variant_iter_next(&iter, "{&s@*}", &key, &value)) {
                value = prom_unbox(value);
                all = prom_is_string_dict(value);
                g_variant_unref(value);
        }
        return all;
}

static const char *prom_element_id(GVariant *element, const char **id_key)
{
        static const char *const keys[] = {"id", "client_id"};

        for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
                const char *id = cli_variant_lookup_string(element, keys[i], NULL);

                if (id) {
                        *id_key = keys[i];
                        return id;
                }
        }
        return NULL;
}

/* The strings of one labelled element, as labels of its "_info" series. */
static void prom_add_info(PromExposition *e, const char *prefix, const char *labels, GVariant *element,
                          const char *id_key)
{
        g_autoptr(GString) info_labels = g_string_new(labels);
        g_autofree char *name = g_strconcat(prefix, "_info", NULL);
        g_autoptr(GVariant) one = g_variant_ref_sink(g_variant_new_uint32(1));
        gboolean any = FALSE;
        GVariantIter iter;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&iter, element);
        while (g_variant_iter_next(&iter, "{&s@*}", &key, &value)) {
                value = prom_unbox(value);
                if (strcmp(key, id_key) != 0 && g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)) {
                        prom_append_label(info_labels, key, g_variant_get_string(value, NULL));
                        any = TRUE;
                }
                g_variant_unref(value);
        }
        if (any)
                prom_add_sample(e, name, "gauge", info_labels->str, one);
}

static void prom_walk_array(PromExposition *e, const char *prefix, const char *labels, const char *key,
                            GVariant *array)
{
        g_autofree char *singular = prom_singular(key);
        g_autofree char *element_prefix = prom_join(prefix, singular);
        GVariantIter iter;
        GVariant *element;

        g_variant_iter_init(&iter, array);
        while ((element = g_variant_iter_next_value(&iter))) {
                const char *id_key = NULL, *id;

                element = prom_unbox(element);
                /* Without a name to tell them apart, the elements' series would collide: leave them out. */
                if (prom_is_string_dict(element) && (id = prom_element_id(element, &id_key))) {
                        g_autoptr(GString) element_labels = g_string_new(labels);

                        prom_append_label(element_labels, singular, id);
                        prom_walk_dict(e, element_prefix, element_labels->str, element, id_key);
                        prom_add_info(e, element_prefix, element_labels->str, element, id_key);
                }
                g_variant_unref(element);
        }
}

static void prom_walk_value(PromExposition *e, const char *prefix, const char *labels, const char *key,
                            GVariant *value)
{
        g_autofree char *name = prom_join(prefix, key);

        if (!g_variant_is_container(value)) {
                prom_add_sample(e, name, prom_type(key, value), labels, value);
        } else if (prom_is_string_dict(value) && prom_is_dict_of_dicts(value)) {
                g_autofree char *singular = prom_singular(key);
                g_autofree char *sub_prefix = prom_join(prefix, singular);
                GVariantIter iter;
                const char *name_key;
                GVariant *child;

                g_variant_iter_init(&iter, value);
                while (g_variant_iter_next(&iter, "{&s@*}", &name_key, &child)) {
                        g_autoptr(GString) child_labels = g_string_new(labels);

                        child = prom_unbox(child);
                        prom_append_label(child_labels, singular, name_key);
                        prom_walk_dict(e, sub_prefix, child_labels->str, child, NULL);
                        g_variant_unref(child);
                }
        } else if (prom_is_string_dict(value)) {
                prom_walk_dict(e, name, labels, value, NULL);
        } else if (g_variant_type_is_array(g_variant_get_type(value))) {
                prom_walk_array(e, prefix, labels, key, value);
        }
        /* Strings and tuples have no number to show. */
}

static void prom_walk_dict(PromExposition *e, const char *prefix, const char *labels, GVariant *dict,
                           const char *skip_key)
{
        GVariantIter iter;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&iter, dict);
        while (g_variant_iter_next(&iter, "{&s@*}", &key, &value)) {
                value = prom_unbox(value);
                if (!skip_key || strcmp(key, skip_key) != 0)
                        prom_walk_value(e, prefix, labels, key, value);
                g_variant_unref(value);
        }
}

char *cli_prometheus_format(GVariant *metrics)
{
        PromExposition e = {
                .by_name = g_hash_table_new(g_str_hash, g_str_equal),
                .order = g_ptr_array_new_with_free_func((GDestroyNotify)prom_family_free),
        };
        GString *out = g_string_new(NULL);

        if (prom_is_string_dict(metrics))
                prom_walk_dict(&e, PROMETHEUS_PREFIX, "", metrics, NULL);
        for (guint i = 0; i < e.order->len; i++) {
                PromFamily *family = e.order->pdata[i];

                g_string_append_printf(out, "# TYPE %s %s\n", family->name, family->type);
                g_string_append(out, family->samples->str);
        }
        g_hash_table_unref(e.by_name);
        g_ptr_array_unref(e.order);
        return g_string_free(out, FALSE);
}
