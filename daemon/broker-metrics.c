/* SPDX-License-Identifier: Apache-2.0 */
#include <json-glib/json-glib.h>
#include <stdlib.h>
#include <string.h>

#include "broker-metrics.h"
#include "deb-topic.h"

/** broker_metrics_new: Returns: (transfer full) zeroed metrics. */
BrokerMetrics *broker_metrics_new(gboolean enabled)
{
        BrokerMetrics *m = g_new0(BrokerMetrics, 1);

        m->enabled = enabled;
        m->prefixes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        return m;
}

/** broker_metrics_free: frees @metrics; the topic stats it handed out go with it. */
void broker_metrics_free(BrokerMetrics *metrics)
{
        if (!metrics)
                return;
        g_hash_table_unref(metrics->prefixes);
        g_free(metrics);
}

/** broker_metrics_topic: Returns: (transfer none) the counters of @topic's prefix. */
BrokerTopicStats *broker_metrics_topic(BrokerMetrics *metrics, const char *topic)
{
        char prefix[DEB_TOPIC_MAX_LEN + 1];
        const char *dot;
        gsize len;
        BrokerTopicStats *stats;

        if (!metrics->enabled)
                return NULL;

        /* The first two levels; a valid topic is at most DEB_TOPIC_MAX_LEN bytes. */
        dot = strchr(topic, '.');
        if (dot)
                dot = strchr(dot + 1, '.');
        len = dot ? (gsize)(dot - topic) : strlen(topic);
        len = MIN(len, DEB_TOPIC_MAX_LEN);
        memcpy(prefix, topic, len);
        prefix[len] = '\0';

        stats = g_hash_table_lookup(metrics->prefixes, prefix);
        if (stats)
                return stats;
        if (g_hash_table_size(metrics->prefixes) >= BROKER_METRICS_MAX_PREFIXES)
                return &metrics->other;
        stats = g_new0(BrokerTopicStats, 1);
        g_hash_table_insert(metrics->prefixes, g_strdup(prefix), stats);
        return stats;
}

/* Four buckets per power of two: 0,1,2,3 exact, then [4,5) [5,6) [6,7) [7,8) [8,10) … */
static guint latency_bucket(guint64 us)
{
        guint e, sub;

        if (us < 4)
                return (guint)us;
        e = 63u - (guint)__builtin_clzll(us);
        sub = (guint)(us >> (e - 2)) & 3u;
        return MIN(4u * (e - 1) + sub, LATENCY_BUCKETS - 1);
}

/* Exclusive upper bound of a bucket. */
static guint64 latency_bucket_end(guint index)
{
        guint e, sub;

        if (index < 4)
                return index + 1;
        e = index / 4 + 1;
        sub = index % 4;
        if (e >= 62)
                return G_MAXUINT64;
        return ((guint64)(4 + sub) << (e - 2)) + ((guint64)1 << (e - 2));
}

/** latency_histogram_add: records one sample of @us microseconds. */
void latency_histogram_add(LatencyHistogram *h, guint64 us)
{
        h->buckets[latency_bucket(us)]++;
        h->count++;
        h->sum_us += us;
        h->max_us = MAX(h->max_us, us);
}

/** latency_histogram_percentile: Returns: the bucket bound of the @p-th sample (µs). */
guint64 latency_histogram_percentile(const LatencyHistogram *h, double p)
{
        guint64 rank, seen = 0;

        if (h->count == 0)
                return 0;
        p = CLAMP(p, 0.0, 1.0);
        rank = (guint64)(p * (double)h->count + 0.5);
        rank = CLAMP(rank, 1, h->count);
        for (guint i = 0; i < LATENCY_BUCKETS; i++) {
                seen += h->buckets[i];
                if (seen >= rank)
                        return MIN(latency_bucket_end(i) - 1, h->max_us);
        }
        return h->max_us;
}

static GVariant *topic_stats_to_variant(const BrokerTopicStats *s)
{
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "published", g_variant_new_uint64(s->published));
        g_variant_builder_add(&b, "{sv}", "delivered", g_variant_new_uint64(s->delivered));
        g_variant_builder_add(&b, "{sv}", "dropped", g_variant_new_uint64(s->dropped));
        return g_variant_builder_end(&b);
}

static GVariant *latency_to_variant(const LatencyHistogram *h)
{
        GVariantBuilder b, buckets;

        g_variant_builder_init(&buckets, G_VARIANT_TYPE("a(tt)"));
        for (guint i = 0; i < LATENCY_BUCKETS; i++)
                if (h->buckets[i] > 0)
                        g_variant_builder_add(&buckets, "(tt)", latency_bucket_end(i), h->buckets[i]);

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "count", g_variant_new_uint64(h->count));
        g_variant_builder_add(&b, "{sv}", "mean_us",
                              g_variant_new_uint64(h->count ? h->sum_us / h->count : 0));
        g_variant_builder_add(&b, "{sv}", "p50_us",
                              g_variant_new_uint64(latency_histogram_percentile(h, 0.5)));
        g_variant_builder_add(&b, "{sv}", "p90_us",
                              g_variant_new_uint64(latency_histogram_percentile(h, 0.9)));
        g_variant_builder_add(&b, "{sv}", "p99_us",
                              g_variant_new_uint64(latency_histogram_percentile(h, 0.99)));
        g_variant_builder_add(&b, "{sv}", "max_us", g_variant_new_uint64(h->max_us));
        /* (exclusive upper bound in µs, samples), non-empty buckets only */
        g_variant_builder_add(&b, "{sv}", "buckets", g_variant_builder_end(&buckets));
        return g_variant_builder_end(&b);
}

static gint compare_keys(gconstpointer a, gconstpointer b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/** broker_metrics_add_to_builder: adds counters, per-prefix stats and latency to an a{sv} builder. */
void broker_metrics_add_to_builder(const BrokerMetrics *metrics, GVariantBuilder *builder)
{
        g_autofree gpointer *keys = NULL;
        guint n_keys = 0;
        GVariantBuilder topics;

        g_variant_builder_add(builder, "{sv}", "metrics_enabled", g_variant_new_boolean(metrics->enabled));
        g_variant_builder_add(builder, "{sv}", "published", g_variant_new_uint64(metrics->total.published));
        g_variant_builder_add(builder, "{sv}", "delivered", g_variant_new_uint64(metrics->total.delivered));
        g_variant_builder_add(builder, "{sv}", "dropped", g_variant_new_uint64(metrics->total.dropped));
        g_variant_builder_add(builder, "{sv}", "connections_accepted",
                              g_variant_new_uint64(metrics->connections_accepted));
        g_variant_builder_add(builder, "{sv}", "connections_refused",
                              g_variant_new_uint64(metrics->connections_refused));
        g_variant_builder_add(builder, "{sv}", "protocol_errors",
                              g_variant_new_uint64(metrics->protocol_errors));
        g_variant_builder_add(builder, "{sv}", "unrouted_responses",
                              g_variant_new_uint64(metrics->unrouted_responses));
        g_variant_builder_add(builder, "{sv}", "queue_high_water",
                              g_variant_new_uint32(metrics->queue_high_water));

        /* Sorted, so two snapshots diff line by line. */
        g_variant_builder_init(&topics, G_VARIANT_TYPE_VARDICT);
        keys = g_hash_table_get_keys_as_array(metrics->prefixes, &n_keys);
        qsort(keys, n_keys, sizeof(gpointer), compare_keys);
        for (guint i = 0; i < n_keys; i++)
                g_variant_builder_add(
                        &topics, "{sv}", (const char *)keys[i],
                        topic_stats_to_variant(g_hash_table_lookup(metrics->prefixes, keys[i])));
        if (metrics->other.published > 0)
                g_variant_builder_add(&topics, "{sv}", BROKER_METRICS_OTHER_PREFIX,
                                      topic_stats_to_variant(&metrics->other));
        g_variant_builder_add(builder, "{sv}", "topics", g_variant_builder_end(&topics));
        g_variant_builder_add(builder, "{sv}", "latency", latency_to_variant(&metrics->latency));
}

/** broker_metrics_to_json: Returns: (transfer full) @metrics (an a{sv}) as one line of JSON. */
char *broker_metrics_to_json(GVariant *metrics)
{
        g_autoptr(JsonNode) node = json_gvariant_serialize(metrics);
        g_autoptr(JsonGenerator) gen = json_generator_new();

        json_generator_set_root(gen, node);
        json_generator_set_pretty(gen, FALSE);
        return json_generator_to_data(gen, NULL);
}
