/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * Broker counters. Per-topic counters are kept per prefix (the first two
 * levels, "events.process"), at most BROKER_METRICS_MAX_PREFIXES of them so a
 * client publishing to random topics cannot grow the table: the rest is
 * counted under "(other)". The latency histogram has log-scale buckets, four
 * per power of two, so p50/p99 are within 25 %.
 */
#define BROKER_METRICS_MAX_PREFIXES 256u
#define BROKER_METRICS_OTHER_PREFIX "(other)"
#define LATENCY_BUCKETS 256u

struct _BrokerTopicStats {
        guint64 published; /* frames accepted for routing */
        guint64 delivered; /* copies fully written to a subscriber */
        guint64 dropped;   /* copies dropped by a full subscriber queue */
};
typedef struct _BrokerTopicStats BrokerTopicStats;

typedef struct {
        guint64 count;
        guint64 sum_us;
        guint64 max_us;
        guint64 buckets[LATENCY_BUCKETS];
} LatencyHistogram;

typedef struct {
        gboolean enabled; /* broker.enable_metrics: per-topic counters and latency */
        guint epoch;      /* changes with enabled: BrokerTopicStats pointers cached before are stale */
        BrokerTopicStats total;
        guint64 connections_accepted;
        guint64 connections_refused; /* over max_subscribers */
        guint64 protocol_errors;     /* connections closed for a fatal protocol error */
        guint64 unrouted_responses;  /* replies dropped: no pending request, or not from its target */
        guint queue_high_water;      /* longest any data lane has been */
        LatencyHistogram latency;    /* publish (frame read) → fully written to the subscriber */
        GHashTable *prefixes;        /* char* prefix → BrokerTopicStats* */
        BrokerTopicStats other;
} BrokerMetrics;

/** broker_metrics_new: Returns: (transfer full) zeroed metrics. */
BrokerMetrics *broker_metrics_new(gboolean enabled);
void broker_metrics_free(BrokerMetrics *metrics);

/**
 * broker_metrics_topic:
 * @topic: a valid topic
 *
 * Returns: (transfer none) the counters of @topic's prefix, valid until the
 *   metrics are freed; %NULL when metrics are disabled.
 */
BrokerTopicStats *broker_metrics_topic(BrokerMetrics *metrics, const char *topic);

/** latency_histogram_add: records one sample of @us microseconds. */
void latency_histogram_add(LatencyHistogram *h, guint64 us);

/**
 * latency_histogram_percentile:
 * @p: 0.0..1.0
 *
 * Returns: the upper bound (µs) of the bucket holding the @p-th sample, at
 *   most the largest sample; 0 when empty.
 */
guint64 latency_histogram_percentile(const LatencyHistogram *h, double p);

/** broker_metrics_add_to_builder: adds counters, per-prefix stats and latency to an a{sv} builder. */
void broker_metrics_add_to_builder(const BrokerMetrics *metrics, GVariantBuilder *builder);

/** broker_metrics_to_json: Returns: (transfer full) @metrics (an a{sv}) as one line of JSON. */
char *broker_metrics_to_json(GVariant *metrics);

G_END_DECLS
