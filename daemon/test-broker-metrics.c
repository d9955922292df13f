/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for broker-metrics.c: prefixes, the prefix cap, histogram percentiles, export. */
#include <json-glib/json-glib.h>

#include "broker-metrics.h"

static void test_prefixes(void)
{
        BrokerMetrics *m = broker_metrics_new(TRUE);
        BrokerTopicStats *a = broker_metrics_topic(m, "events.process.lifecycle");
        BrokerTopicStats *b = broker_metrics_topic(m, "events.process.tree.deep");
        BrokerTopicStats *c = broker_metrics_topic(m, "events.network");
        BrokerTopicStats *d = broker_metrics_topic(m, "control");

        g_assert_nonnull(a);
        g_assert_true(a == b);
        g_assert_true(a != c);
        g_assert_true(c != d);
        g_assert_cmpuint(g_hash_table_size(m->prefixes), ==, 3);
        g_assert_true(g_hash_table_contains(m->prefixes, "events.process"));
        g_assert_true(g_hash_table_contains(m->prefixes, "events.network"));
        g_assert_true(g_hash_table_contains(m->prefixes, "control"));
        broker_metrics_free(m);

        m = broker_metrics_new(FALSE);
        g_assert_null(broker_metrics_topic(m, "events.process"));
        broker_metrics_free(m);
}

static void test_prefix_cap(void)
{
        BrokerMetrics *m = broker_metrics_new(TRUE);

        for (guint i = 0; i < BROKER_METRICS_MAX_PREFIXES; i++) {
                g_autofree char *topic = g_strdup_printf("t%u.x.y", i);

                g_assert_true(broker_metrics_topic(m, topic) != &m->other);
        }
        g_assert_true(broker_metrics_topic(m, "one.more.topic") == &m->other);
        g_assert_true(broker_metrics_topic(m, "t7.x.z") != &m->other);
        g_assert_cmpuint(g_hash_table_size(m->prefixes), ==, BROKER_METRICS_MAX_PREFIXES);
        broker_metrics_free(m);
}

static void test_histogram(void)
{
        LatencyHistogram h = {0};
        guint64 p50, p99;

        g_assert_cmpuint(latency_histogram_percentile(&h, 0.5), ==, 0);
        /* 1..1000 µs, once each: p50 ≈ 500, p99 ≈ 990, within a bucket (25 %). */
        for (guint64 us = 1; us <= 1000; us++)
                latency_histogram_add(&h, us);
        p50 = latency_histogram_percentile(&h, 0.5);
        p99 = latency_histogram_percentile(&h, 0.99);
        g_assert_cmpuint(p50, >=, 500);
        g_assert_cmpuint(p50, <=, 640);
        g_assert_cmpuint(p99, >=, 990);
        g_assert_cmpuint(p99, <=, 1000); /* never above the largest sample */
        g_assert_cmpuint(latency_histogram_percentile(&h, 1.0), ==, 1000);
        g_assert_cmpuint(h.count, ==, 1000);
        g_assert_cmpuint(h.sum_us, ==, 500500);

        /* Small values are exact; huge ones land in the last buckets without overflow. */
        h = (LatencyHistogram){0};
        latency_histogram_add(&h, 0);
        latency_histogram_add(&h, 3);
        g_assert_cmpuint(latency_histogram_percentile(&h, 0.5), ==, 0);
        g_assert_cmpuint(latency_histogram_percentile(&h, 1.0), ==, 3);
        latency_histogram_add(&h, G_MAXUINT64 / 2);
        g_assert_cmpuint(latency_histogram_percentile(&h, 1.0), ==, G_MAXUINT64 / 2);

        /* Every sample lands in a bucket whose bound is above it and within 25 %. */
        for (guint64 us = 4; us < 100000000; us = us * 3 / 2 + 1) {
                h = (LatencyHistogram){0};
                latency_histogram_add(&h, us);
                h.max_us = G_MAXUINT64; /* look at the raw bucket bound */
                g_assert_cmpuint(latency_histogram_percentile(&h, 0.5), >=, us);
                g_assert_cmpuint(latency_histogram_percentile(&h, 0.5), <=, us + us / 4);
        }
}

static void test_export(void)
{
        BrokerMetrics *m = broker_metrics_new(TRUE);
        BrokerTopicStats *s = broker_metrics_topic(m, "events.process.lifecycle");
        GVariantBuilder b;
        g_autoptr(GVariant) v = NULL;
        g_autoptr(GVariant) topics = NULL;
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *json = NULL;
        JsonObject *root;
        guint64 dropped = 0;

        s->published = 5;
        s->delivered = 3;
        s->dropped = 2;
        m->total = *s;
        latency_histogram_add(&m->latency, 42);

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        broker_metrics_add_to_builder(m, &b);
        v = g_variant_ref_sink(g_variant_builder_end(&b));
        g_assert_true(g_variant_lookup(v, "dropped", "t", &dropped));
        g_assert_cmpuint(dropped, ==, 2);
        topics = g_variant_lookup_value(v, "topics", G_VARIANT_TYPE_VARDICT);
        g_assert_nonnull(topics);

        json = broker_metrics_to_json(v);
        g_assert_null(strchr(json, '\n'));
        g_assert_true(json_parser_load_from_data(parser, json, -1, &error));
        g_assert_no_error(error);
        root = json_node_get_object(json_parser_get_root(parser));
        g_assert_cmpint(json_object_get_int_member(root, "published"), ==, 5);
        g_assert_cmpint(json_object_get_int_member(root, "dropped"), ==, 2);
        g_assert_cmpint(json_object_get_int_member(
                                json_object_get_object_member(json_object_get_object_member(root, "topics"),
                                                              "events.process"),
                                "delivered"),
                        ==, 3);
        g_assert_cmpint(json_object_get_int_member(json_object_get_object_member(root, "latency"), "count"),
                        ==, 1);
        broker_metrics_free(m);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/broker-metrics/prefixes", test_prefixes);
        g_test_add_func("/broker-metrics/prefix-cap", test_prefix_cap);
        g_test_add_func("/broker-metrics/histogram", test_histogram);
        g_test_add_func("/broker-metrics/export", test_export);
        return g_test_run();
}
