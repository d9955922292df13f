/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Steps of the broker integration tests that assert their own success, so a
 * test reads as the scenario it checks. Every failure message carries what
 * is needed to diagnose it (peer output, agent log, the broker's Error).
 */
#include <glib.h>
#include <json-glib/json-glib.h>

#include "agent-harness.h"
#include "raw-conn.h"

G_BEGIN_DECLS

/* Counters of the agent's "metrics: {json}" line (daemon/broker-metrics.c, daemon/broker.c). */
#define METRIC_PUBLISHED "published"
#define METRIC_DELIVERED "delivered"
#define METRIC_DROPPED "dropped"
#define METRIC_CONNECTIONS "connections"

#define END_TOPIC "test.end"
#define PEER_TIMEOUT "90000"  /* a peer gives up (and reports) after this… */
#define PEER_FINISH_MS 120000 /* …well before the test stops waiting for it */
#define READY_MS 10000

/** start_agent: @config is NULL or a NULL-terminated [broker] key, value, … list. */
AgentHarness *start_agent(const char *const *config);
/** stop_agent: SIGTERM; the agent must exit 0 within 10 s and remove its socket. */
void stop_agent(AgentHarness *h);

/** spawn_peer: broker-peer MODE and options as string arguments. */
#define spawn_peer(h, name, ...) spawn_peer_argv((h), (name), (const char *const[]){__VA_ARGS__, NULL})
HarnessPeer *spawn_peer_argv(AgentHarness *h, const char *name, const char *const *args);
void wait_ready(HarnessPeer *p);
/** finish_peer: the peer must exit with status 0 within @timeout_ms. */
void finish_peer(HarnessPeer *p, guint timeout_ms);
guint64 peer_u64(HarnessPeer *p, const char *key);
/** assert_complete_stream: @received messages from @publishers publishers, in order, without gaps. */
void assert_complete_stream(HarnessPeer *p, guint64 received, guint64 publishers);

JsonObject *get_metrics(AgentHarness *h);
/** metric: a top-level counter (the per-topic and per-client ones are nested). */
guint64 metric(JsonObject *metrics, const char *name);
/** wait_for_metric: asks until counter @name equals @value: what the broker does on EOF is asynchronous. */
void wait_for_metric(AgentHarness *h, const char *name, guint64 value, guint timeout_ms);

RawConn *raw_connect(AgentHarness *h);
/** raw_client: connected and past the handshake. */
RawConn *raw_client(AgentHarness *h, const char *id);
/** raw_subscribe: Subscribe, and the Ack for it. */
void raw_subscribe(RawConn *c, const char *const *patterns, const char *correlation_id);
void raw_publish(RawConn *c, const char *topic, const char *payload);
/** raw_expect_event: the next frame on @c is an Event on @topic carrying @payload. */
void raw_expect_event(RawConn *c, const char *topic, const char *payload);
/** raw_expect_error: the next frame is an Error @code with @fatal; a fatal one is followed by EOF. */
void raw_expect_error(RawConn *c, int code, gboolean fatal, guint timeout_ms, RawError *out);
/** assert_round_trip: a publish from one fresh connection reaches a subscription of another. */
void assert_round_trip(AgentHarness *h, const char *tag);

G_END_DECLS
