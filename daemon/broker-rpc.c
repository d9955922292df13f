/* SPDX-License-Identifier: Apache-2.0 */
/*
 * RPC routing in the broker. A request (RPC_REQUEST on the target's request
 * topic, see deb_rpc_request_topic()) is delivered like any message, on the
 * control lane, and remembered: correlation id → the connection that sent
 * it, and the connections that may answer it. Its reply (RPC_RESPONSE on
 * "response.<correlation id>") goes to that one connection and nobody else;
 * subscriptions never see replies (broker-subscriptions.c refuses
 * "response.*" patterns and routing never offers them response topics).
 *
 * Who may answer: a connection the request was delivered to whose client id
 * is the request's target. A '#' watcher sees requests go by but cannot
 * answer them, and a request that reaches no such connection is answered
 * NOT_FOUND by the broker at once rather than left to time out.
 *
 * The table is bounded: max_pending_requests per requesting connection,
 * records leave with their reply, with either end's connection, or at the
 * request's deadline plus a grace. Plain events never come here.
 */
#include <string.h>

#include "broker-private.h"
#include "deb-rpc.h"

#define MESSAGE_TYPE(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name
#define ERROR_CODE(name) DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_##name
#define KIND(name) DAEMONEYE__EVENTBUS__ERROR_KIND__ERROR_KIND_##name
#define CATEGORY(name) DAEMONEYE__EVENTBUS__ERROR_CATEGORY__ERROR_CATEGORY_##name

/* The [rpc] defaults, in force until broker_apply_rpc_config(). */
#define DEFAULT_MAX_PENDING 1000u
#define DEFAULT_TIMEOUT_SECONDS 30u
/*
 * A reply may come a little after the deadline (the service answers TIMEOUT
 * right at it, clocks of two processes differ): keep the record that long.
 */
#define EXPIRY_GRACE_US (5 * G_USEC_PER_SEC)
/* However far its deadline, a request holds its record at most this long. */
#define MAX_TIMEOUT_US ((gint64)3600 * G_USEC_PER_SEC)

typedef struct _BrokerRpcRecord BrokerRpcRecord;

/* One connection that may answer a request. */
typedef struct {
        BrokerRpcRecord *record;
        BrokerConnection *conn; /* NULL once it closed */
        GList link;             /* in conn->rpc_serving */
} RpcTarget;

struct _BrokerRpcRecord {
        char *correlation_id; /* key in BrokerRpc.records */
        char *target;         /* RpcRequest.target */
        DebRpcOperation operation;
        BrokerConnection *requester;
        GList link; /* in requester->rpc_requests */
        RpcTarget *targets;
        guint n_targets;
        guint n_live; /* targets still connected */
        gint64 expires_us;
        GSequenceIter *expiry;
};

typedef struct {
        GSource source;
        BrokerRpc *rpc;
} RpcTimerSource;

struct _BrokerRpc {
        Broker *broker;
        GHashTable *records; /* correlation id → BrokerRpcRecord (freed by rpc_record_free()) */
        GSequence *expiries; /* BrokerRpcRecord by expires_us */
        GSource *timer;      /* fires at the first expiry, or later */
        guint max_pending;
        guint default_timeout_seconds;
        guint64 requests;
        guint64 not_found;
        guint64 refused;
        guint64 expired;
        guint64 target_lost;
};

static gint expiry_compare(gconstpointer a, gconstpointer b, gpointer user_data)
{
        const BrokerRpcRecord *x = a, *y = b;

        return x->expires_us < y->expires_us ? -1 : (x->expires_us > y->expires_us);
}

/* Takes @r out of every table and frees it. */
static void rpc_record_free(BrokerRpc *rpc, BrokerRpcRecord *r)
{
        g_hash_table_remove(rpc->records, r->correlation_id);
        g_queue_unlink(&r->requester->rpc_requests, &r->link);
        for (guint i = 0; i < r->n_targets; i++)
                if (r->targets[i].conn)
                        g_queue_unlink(&r->targets[i].conn->rpc_serving, &r->targets[i].link);
        /* The timer is not re-armed: firing early finds nothing expired and re-arms then. */
        g_sequence_remove(r->expiry);
        g_free(r->targets);
        g_free(r->target);
        g_free(r->correlation_id);
        g_free(r);
}

static void rpc_timer_arm(BrokerRpc *rpc)
{
        GSequenceIter *first = g_sequence_get_begin_iter(rpc->expiries);

        g_source_set_ready_time(
                rpc->timer,
                g_sequence_iter_is_end(first) ? -1 : ((BrokerRpcRecord *)g_sequence_get(first))->expires_us);
}

static gboolean rpc_timer_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        BrokerRpc *rpc = ((RpcTimerSource *)source)->rpc;
        gint64 now = g_get_monotonic_time();

        for (;;) {
                GSequenceIter *first = g_sequence_get_begin_iter(rpc->expiries);
                BrokerRpcRecord *r;

                if (g_sequence_iter_is_end(first))
                        break;
                r = g_sequence_get(first);
                if (r->expires_us > now)
                        break;
                rpc->expired++;
                broker_connection_log(
                        r->requester, G_LOG_LEVEL_DEBUG,
                        "RPC %s to '%s' (correlation id %s): no reply by its deadline; forgotten",
                        deb_rpc_operation_to_string(r->operation), r->target, r->correlation_id);
                rpc_record_free(rpc, r);
        }
        rpc_timer_arm(rpc);
        return G_SOURCE_CONTINUE;
}

static GSourceFuncs rpc_timer_funcs = {
        .dispatch = rpc_timer_dispatch,
};

/** broker_rpc_new: Returns: (transfer full) the RPC router of @broker, with the [rpc] defaults. */
BrokerRpc *broker_rpc_new(Broker *broker)
{
        BrokerRpc *rpc = g_new0(BrokerRpc, 1);

        rpc->broker = broker;
        rpc->records = g_hash_table_new(g_str_hash, g_str_equal);
        rpc->expiries = g_sequence_new(NULL);
        rpc->max_pending = DEFAULT_MAX_PENDING;
        rpc->default_timeout_seconds = DEFAULT_TIMEOUT_SECONDS;
        rpc->timer = g_source_new(&rpc_timer_funcs, sizeof(RpcTimerSource));
        ((RpcTimerSource *)rpc->timer)->rpc = rpc;
        g_source_set_static_name(rpc->timer, "broker RPC expiry");
        g_source_set_ready_time(rpc->timer, -1);
        /* The broker's other sources use the default context too. */
        g_source_attach(rpc->timer, NULL);
        return rpc;
}

/** broker_rpc_free: frees the router; the connections are closed and freed already (broker_free()). */
void broker_rpc_free(BrokerRpc *rpc)
{
        if (!rpc)
                return;
        /* Every record sits in its requester's rpc_requests, which closing the connection empties. */
        g_assert(g_hash_table_size(rpc->records) == 0);
        g_hash_table_unref(rpc->records);
        g_sequence_free(rpc->expiries);
        g_source_destroy(rpc->timer);
        g_source_unref(rpc->timer);
        g_free(rpc);
}

/** broker_rpc_apply_config: takes max_pending_requests and default_timeout_seconds from @config. */
void broker_rpc_apply_config(BrokerRpc *rpc, const RpcConfig *config)
{
        rpc->max_pending = MAX(config->max_pending_requests, 1u);
        rpc->default_timeout_seconds = MAX(config->default_timeout_seconds, 1u);
}

/** broker_rpc_add_metrics: adds the rpc_* counters to a metrics a{sv} builder. */
void broker_rpc_add_metrics(BrokerRpc *rpc, GVariantBuilder *builder)
{
        g_variant_builder_add(builder, "{sv}", "rpc_pending",
                              g_variant_new_uint32(g_hash_table_size(rpc->records)));
        g_variant_builder_add(builder, "{sv}", "rpc_requests", g_variant_new_uint64(rpc->requests));
        g_variant_builder_add(builder, "{sv}", "rpc_not_found", g_variant_new_uint64(rpc->not_found));
        g_variant_builder_add(builder, "{sv}", "rpc_refused", g_variant_new_uint64(rpc->refused));
        g_variant_builder_add(builder, "{sv}", "rpc_expired", g_variant_new_uint64(rpc->expired));
        g_variant_builder_add(builder, "{sv}", "rpc_target_lost", g_variant_new_uint64(rpc->target_lost));
}

/*
 * Answers request @correlation_id on behalf of the broker: an error reply on
 * "response.<id>", queued on @requester's control lane.
 */
G_GNUC_PRINTF(6, 7)
static void rpc_answer(BrokerConnection *requester, const char *correlation_id, DebRpcErrorKind kind,
                       DebRpcErrorCategory category, const char *code, const char *format, ...)
{
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        g_autofree char *text = NULL;
        g_autofree char *topic = g_strconcat(DEB_RPC_RESPONSE_LEVEL ".", correlation_id, NULL);
        g_autoptr(DebRpcResponse) response = NULL;
        g_autoptr(GBytes) payload = NULL;
        g_autoptr(Message) message = NULL;
        va_list ap;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        response = deb_rpc_response_new_error(correlation_id, kind, category, code, "%s", text);
        payload = deb_rpc_response_pack(response);

        correlation.correlation_id = (char *)correlation_id;
        correlation.root_correlation_id = (char *)correlation_id;
        env.topic = topic;
        env.message_type = MESSAGE_TYPE(RPC_RESPONSE);
        env.correlation = &correlation;
        env.payload_type = (char *)DEB_RPC_RESPONSE_TYPE;
        env.payload.data = (guint8 *)g_bytes_get_data(payload, &env.payload.len);
        env.timestamp_us = (guint64)g_get_real_time();
        env.sender = (char *)BROKER_SENDER_ID;
        message = message_new_envelope(&env);
        broker_connection_enqueue(requester, message);
}

/* A request that is not forwarded: a non-fatal Error carrying its correlation id, so the caller's call
 * fails. */
G_GNUC_PRINTF(4, 5)
static void rpc_refuse(BrokerConnection *c, int code, const char *correlation_id, const char *format, ...)
{
        g_autofree char *text = NULL;
        va_list ap;

        va_start(ap, format);
        text = g_strdup_vprintf(format, ap);
        va_end(ap);
        c->broker->rpc->refused++;
        broker_connection_send_error(c, code, correlation_id, FALSE, "%s", text);
}

/* Wall-clock deadline (0: none) → when the record may go, on the monotonic clock. */
static gint64 rpc_expiry(BrokerRpc *rpc, guint64 deadline_us)
{
        gint64 timeout_us = (gint64)rpc->default_timeout_seconds * G_USEC_PER_SEC;

        if (deadline_us > 0) {
                gint64 now_real = g_get_real_time();

                timeout_us = deadline_us > (guint64)now_real
                                     ? (gint64)MIN(deadline_us - (guint64)now_real, (guint64)MAX_TIMEOUT_US)
                                     : 0;
        }
        return g_get_monotonic_time() + timeout_us + EXPIRY_GRACE_US;
}

/*
 * Decodes and checks what the broker needs of a request. Refuses it itself.
 * Returns: (transfer none) the request, living in the broker's unpacker, or %NULL.
 */
static const DebRpcRequest *rpc_request_decode(BrokerConnection *c, const DebEnvelope *env, const char *cid)
{
        g_autoptr(GError) error = NULL;
        const DebRpcRequest *request;

        if (!cid || !deb_rpc_target_validate(cid, NULL)) {
                rpc_refuse(c, ERROR_CODE(PROTOCOL), cid,
                           "RPC request on '%s': correlation id '%s' cannot name its reply topic "
                           "response.<id>: it must be one topic level, 1..64 bytes of [A-Za-z0-9_-]",
                           env->topic, cid ? cid : "");
                return NULL;
        }
        if (g_strcmp0(env->payload_type, DEB_RPC_REQUEST_TYPE) != 0) {
                rpc_refuse(c, ERROR_CODE(PROTOCOL), cid,
                           "RPC request %s on '%s': payload type '%s', expected '%s'", cid, env->topic,
                           env->payload_type, DEB_RPC_REQUEST_TYPE);
                return NULL;
        }
        /* Same arena as the envelope, without resetting it: @env stays valid. */
        request = (const DebRpcRequest *)deb_unpacker_message(c->broker->unpacker,
                                                              &daemoneye__eventbus__rpc_request__descriptor,
                                                              env->payload.data, env->payload.len, &error);
        if (!request) {
                rpc_refuse(c, ERROR_CODE(MALFORMED), cid, "RPC request %s on '%s': %s", cid, env->topic,
                           error->message);
                return NULL;
        }
        if (!deb_rpc_target_validate(request->target, &error)) {
                rpc_refuse(c, ERROR_CODE(PROTOCOL), cid, "RPC request %s on '%s': %s", cid, env->topic,
                           error->message);
                return NULL;
        }
        if (request->correlation_id && request->correlation_id[0] &&
            strcmp(request->correlation_id, cid) != 0) {
                rpc_refuse(c, ERROR_CODE(PROTOCOL), cid,
                           "RPC request %s on '%s': its RpcRequest names correlation id '%s', its envelope "
                           "'%s'",
                           cid, env->topic, request->correlation_id, cid);
                return NULL;
        }
        return request;
}

/* Records who may answer: the connections just delivered to whose client id is the target. */
static BrokerRpcRecord *rpc_record_new(BrokerRpc *rpc, BrokerConnection *requester, const char *cid,
                                       const DebRpcRequest *request)
{
        Broker *broker = rpc->broker;
        BrokerRpcRecord *r;
        guint n = 0;

        for (guint i = 0; i < broker->matched->len; i++) {
                BrokerConnection *m = broker->matched->pdata[i];

                /* Delivery may have closed a connection whose lane was full. */
                if (m->state == CONNECTION_OPEN && g_strcmp0(m->client_id, request->target) == 0)
                        n++;
        }
        if (n == 0)
                return NULL;

        r = g_new0(BrokerRpcRecord, 1);
        r->correlation_id = g_strdup(cid);
        r->target = g_strdup(request->target);
        r->operation = request->operation;
        r->requester = requester;
        r->link.data = r;
        r->targets = g_new0(RpcTarget, n);
        for (guint i = 0; i < broker->matched->len; i++) {
                BrokerConnection *m = broker->matched->pdata[i];
                RpcTarget *t;

                if (m->state != CONNECTION_OPEN || g_strcmp0(m->client_id, request->target) != 0)
                        continue;
                t = &r->targets[r->n_targets++];
                t->record = r;
                t->conn = m;
                t->link.data = t;
                g_queue_push_tail_link(&m->rpc_serving, &t->link);
        }
        r->n_live = r->n_targets;
        r->expires_us = rpc_expiry(rpc, request->deadline_us);
        r->expiry = g_sequence_insert_sorted(rpc->expiries, r, expiry_compare, NULL);
        g_queue_push_tail_link(&requester->rpc_requests, &r->link);
        g_hash_table_insert(rpc->records, r->correlation_id, r);
        if (g_source_get_ready_time(rpc->timer) < 0 || r->expires_us < g_source_get_ready_time(rpc->timer))
                g_source_set_ready_time(rpc->timer, r->expires_us);
        return r;
}

/**
 * broker_rpc_route_request:
 *
 * An RPC_REQUEST (or an RPC_RESPONSE on a topic that is no reply topic)
 * published by @sender. A valid request within the limits is delivered to
 * the subscribers of its topic and recorded; when none of them is its
 * target the broker answers NOT_FOUND. Anything else is refused with a
 * non-fatal Error carrying the correlation id, and not forwarded.
 */
void broker_rpc_route_request(Broker *broker, BrokerConnection *sender, const DebEnvelope *env,
                              const DebFrame *frame, gint64 ingress_us, BrokerTopicStats *stats)
{
        BrokerRpc *rpc = broker->rpc;
        const char *cid = envelope_correlation_id(env);
        const DebRpcRequest *request;
        BrokerRpcRecord *existing;
        guint pending;

        if (env->message_type == MESSAGE_TYPE(RPC_RESPONSE)) {
                /* Off its reply topic a reply would reach subscribers: a forgery channel. */
                broker->metrics->unrouted_responses++;
                rpc_refuse(sender, ERROR_CODE(PROTOCOL), cid,
                           "RPC reply published on '%s': replies go on response.<correlation id>; dropped",
                           env->topic);
                return;
        }

        request = rpc_request_decode(sender, env, cid);
        if (!request)
                return;
        existing = g_hash_table_lookup(rpc->records, cid);
        if (existing) {
                /* The id names the reply topic: two requests cannot share it. */
                rpc_refuse(sender, ERROR_CODE(PROTOCOL), cid,
                           "RPC request on '%s': correlation id %s already awaits a reply%s; not forwarded",
                           env->topic, cid,
                           existing->requester == sender ? " to an earlier request of this connection"
                                                         : " (another connection's request)");
                return;
        }
        pending = g_queue_get_length(&sender->rpc_requests);
        if (pending >= rpc->max_pending) {
                rpc_refuse(sender, ERROR_CODE(QUEUE_FULL), cid,
                           "RPC %s to '%s' (correlation id %s) refused: this connection has %u requests "
                           "awaiting replies, the limit (rpc.max_pending_requests = %u); not forwarded",
                           deb_rpc_operation_to_string(request->operation), request->target, cid, pending,
                           rpc->max_pending);
                return;
        }

        rpc->requests++;
        broker_deliver(broker, sender, env, frame, ingress_us, stats);
        /* Delivery may have closed the sender (a subscriber of its own request with a full lane). */
        if (sender->state != CONNECTION_OPEN)
                return;
        if (rpc_record_new(rpc, sender, cid, request))
                return;

        rpc->not_found++;
        broker_connection_log(sender, G_LOG_LEVEL_DEBUG,
                              "RPC %s to '%s' (correlation id %s): no target; NOT_FOUND",
                              deb_rpc_operation_to_string(request->operation), request->target, cid);
        rpc_answer(sender, cid, KIND(NOT_FOUND), CATEGORY(COMMUNICATION), "broker.no_target",
                   "no connection serves '%s': nobody with that client id subscribes to '%s' (not "
                   "running, or not connected to the broker)",
                   request->target, env->topic);
}

/* A reply nobody may have: counted and dropped, with one debug line (no Error: late replies are normal). */
static void rpc_unrouted(Broker *broker, BrokerConnection *sender, const DebEnvelope *env, const char *why)
{
        broker->metrics->unrouted_responses++;
        broker_connection_log(sender, G_LOG_LEVEL_DEBUG, "%s on '%s' dropped: %s",
                              deb_message_type_to_string(env->message_type), env->topic, why);
}

static gboolean rpc_record_has_target(const BrokerRpcRecord *r, const BrokerConnection *c)
{
        for (guint i = 0; i < r->n_targets; i++)
                if (r->targets[i].conn == c)
                        return TRUE;
        return FALSE;
}

/**
 * broker_rpc_route_response:
 *
 * Anything published on a "response" topic. An RPC_RESPONSE on
 * "response.<id>" from a target of request <id> goes to the connection that
 * sent the request, which then is answered: the record goes. Everything else
 * is dropped and counted in unrouted_responses.
 */
void broker_rpc_route_response(Broker *broker, BrokerConnection *sender, const DebEnvelope *env,
                               const DebFrame *frame, gint64 ingress_us, BrokerTopicStats *stats)
{
        BrokerRpc *rpc = broker->rpc;
        const char *cid = deb_rpc_response_topic_get_id(env->topic);
        g_autoptr(Message) message = NULL;
        BrokerConnection *requester;
        BrokerRpcRecord *r;

        if (env->message_type != MESSAGE_TYPE(RPC_RESPONSE)) {
                rpc_unrouted(broker, sender, env, "only RPC replies travel on response topics");
                return;
        }
        r = cid ? g_hash_table_lookup(rpc->records, cid) : NULL;
        if (!r) {
                rpc_unrouted(broker, sender, env, "no request awaits it (answered, expired, or never sent)");
                return;
        }
        if (!rpc_record_has_target(r, sender)) {
                rpc_unrouted(broker, sender, env, "it does not come from the target of the request");
                return;
        }

        requester = r->requester;
        rpc_record_free(rpc, r);
        broker->metrics->total.published++;
        sender->published++;
        if (stats)
                stats->published++;
        message = message_new(frame->data, frame->size, MESSAGE_LANE_CONTROL, ingress_us, stats);
        broker_connection_enqueue(requester, message);
}

/**
 * broker_rpc_connection_closed:
 *
 * @c is closed: the requests it sent are forgotten (nobody is left to read
 * their replies), and a request it was the last target of is answered
 * COMMUNICATION_ERROR, so its caller learns at once that the answer will
 * not come (and may retry) instead of waiting for its deadline.
 */
void broker_rpc_connection_closed(BrokerConnection *c)
{
        BrokerRpc *rpc = c->broker->rpc;
        GList *link;

        if (!rpc)
                return;
        while ((link = g_queue_peek_head_link(&c->rpc_requests)))
                rpc_record_free(rpc, link->data);

        /* Answering may close a requester, which removes records of this list: take one at a time. */
        while ((link = g_queue_pop_head_link(&c->rpc_serving))) {
                RpcTarget *t = link->data;
                BrokerRpcRecord *r = t->record;
                BrokerConnection *requester = r->requester;
                g_autofree char *cid = NULL;
                g_autofree char *target = NULL;
                DebRpcOperation operation = r->operation;

                t->conn = NULL;
                if (--r->n_live > 0)
                        continue;
                cid = g_strdup(r->correlation_id);
                target = g_strdup(r->target);
                rpc_record_free(rpc, r);
                rpc->target_lost++;
                rpc_answer(requester, cid, KIND(COMMUNICATION_ERROR), CATEGORY(COMMUNICATION),
                           "broker.target_disconnected",
                           "the connection of '%s' closed before it answered %s (correlation id %s)", target,
                           deb_rpc_operation_to_string(operation), cid);
        }
}
