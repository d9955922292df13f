/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The life of one RPC call: sending attempts, their deadlines, deciding
 * between a retry and the end, telling the target's breaker, and running the
 * callback exactly once. The API around it is deb-rpc-client.c.
 */
#include <string.h>

#include "deb-error.h"
#include "deb-rpc-client-private.h"

#define STATUS(name) DAEMONEYE__EVENTBUS__RPC_STATUS__RPC_STATUS_##name
#define PAYLOAD(name) DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_##name

/* SHA-256 of no bytes: the payload hash of HEALTH_CHECK and GET_CAPABILITIES, spared per call. */
#define SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
        GSource source;
        DebRpcClient *rpc;
} RpcTimerSource;

/** deb_rpc_guard_push: marks the start of code running callbacks that may free @rpc. */
void deb_rpc_guard_push(DebRpcClient *rpc, DebRpcGuard *guard)
{
        guard->destroyed = FALSE;
        guard->outer = rpc->guards;
        rpc->guards = guard;
}

/** deb_rpc_guard_pop: Returns: %FALSE when @rpc was freed meanwhile: touch nothing of it then. */
gboolean deb_rpc_guard_pop(DebRpcClient *rpc, DebRpcGuard *guard)
{
        if (guard->destroyed)
                return FALSE;
        rpc->guards = guard->outer;
        return TRUE;
}

/* Packs the payload oneof alone: the same bytes go with every attempt and are hashed for the audit. */
static GBytes *payload_pack(const DebRpcRequest *payload, char sha256[65])
{
        DebRpcRequest only = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        g_autofree char *hex = NULL;
        guint8 *data;
        gsize size;

        if (!payload || payload->payload_case == PAYLOAD(_NOT_SET)) {
                memcpy(sha256, SHA256_EMPTY, sizeof(SHA256_EMPTY));
                return g_bytes_new_static("", 0);
        }
        only.payload_case = payload->payload_case;
        only.lifecycle = payload->lifecycle; /* members of one union: this copies whichever is set */
        size = protobuf_c_message_get_packed_size(&only.base);
        data = g_malloc(size + 1);
        protobuf_c_message_pack(&only.base, data);
        hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, size);
        memcpy(sha256, hex, 65);
        return g_bytes_new_take(data, size);
}

/**
 * deb_rpc_call_new:
 * @topic: (transfer full) the request topic of @target and @operation
 *
 * Returns: (transfer full) a call with no attempt made, not in any table yet.
 */
DebRpcCall *deb_rpc_call_new(DebRpcClient *rpc, const char *target, char *topic, DebRpcOperation operation,
                             const DebRpcRequest *payload, guint timeout_ms, DebRpcCallback callback,
                             gpointer user_data)
{
        DebRpcCall *call = g_new0(DebRpcCall, 1);

        call->rpc = rpc;
        call->target = g_strdup(target);
        call->topic = topic;
        call->operation = operation;
        call->timeout_ms = timeout_ms;
        call->callback = callback;
        call->user_data = user_data;
        call->breaker = deb_breaker_registry_get(rpc->breakers, target);
        call->backoff = deb_backoff_new_for_rpc(&rpc->options.retry, operation);
        if (rpc->options.random)
                deb_backoff_set_random_func(call->backoff, rpc->options.random, rpc->options.random_data);
        call->payload = payload_pack(payload, call->payload_sha256);
        call->started_us = g_get_monotonic_time();
        call->started_real_us = g_get_real_time();
        return call;
}

void deb_rpc_call_free(DebRpcCall *call)
{
        g_free(call->target);
        g_free(call->topic);
        g_bytes_unref(call->payload);
        deb_backoff_free(call->backoff);
        g_free(call);
}

static gint timer_compare(gconstpointer a, gconstpointer b, gpointer user_data)
{
        const DebRpcCall *x = a, *y = b;

        if (x->timer_us != y->timer_us)
                return x->timer_us < y->timer_us ? -1 : 1;
        return x->id < y->id ? -1 : (x->id > y->id);
}

/* Exactly at the earliest timer, or never: only the timer dispatch does this. */
static void timers_rearm(DebRpcClient *rpc)
{
        GSequenceIter *first = g_sequence_get_begin_iter(rpc->timers);

        if (g_sequence_iter_is_end(first))
                g_source_set_ready_time(rpc->timer_source, -1);
        else
                g_source_set_ready_time(rpc->timer_source, ((DebRpcCall *)g_sequence_get(first))->timer_us);
}

/*
 * The wakeup only ever moves earlier outside the dispatch: each
 * g_source_set_ready_time() writes the context's wakeup fd, and doing it on
 * every call's start and end cost a syscall each way. A wakeup that finds
 * nothing due (its call answered meanwhile) just re-arms.
 */
static void timers_arm_earlier(DebRpcClient *rpc, gint64 when_us)
{
        gint64 current = g_source_get_ready_time(rpc->timer_source);

        if (current < 0 || when_us < current)
                g_source_set_ready_time(rpc->timer_source, when_us);
}

static void call_set_timer(DebRpcCall *call, gint64 when_us)
{
        DebRpcClient *rpc = call->rpc;

        if (call->timer)
                g_sequence_remove(call->timer);
        call->timer_us = when_us;
        call->timer = g_sequence_insert_sorted(rpc->timers, call, timer_compare, NULL);
        timers_arm_earlier(rpc, when_us);
}

static void call_clear_timer(DebRpcCall *call)
{
        if (!call->timer)
                return;
        g_sequence_remove(call->timer);
        call->timer = NULL;
}

static void call_leave_flight(DebRpcCall *call)
{
        if (!call->in_flight)
                return;
        g_hash_table_remove(call->rpc->attempts, call->attempt_id);
        call->in_flight = FALSE;
}

/**
 * deb_rpc_call_finish:
 *
 * Ends a pending @call: takes it out of every table, runs its callback once, frees it.
 * Returns: %FALSE when the callback freed the RPC client.
 */
gboolean deb_rpc_call_finish(DebRpcCall *call, const DebRpcResponse *response, const GError *error,
                             guint64 round_trip_us)
{
        DebRpcClient *rpc = call->rpc;
        DebRpcCallInfo info = {0};
        DebRpcGuard guard;

        call_leave_flight(call);
        call_clear_timer(call);
        g_hash_table_steal(rpc->calls, GUINT_TO_POINTER(call->id));
        rpc->stats.pending--;
        if (error)
                rpc->stats.failed++;
        else
                rpc->stats.succeeded++;

        info.call_id = call->id;
        info.correlation_id = call->first_id;
        info.last_correlation_id = call->attempt_id;
        info.client_id = deb_client_get_id(rpc->client);
        info.target = call->target;
        info.operation = call->operation;
        info.topic = call->topic;
        info.payload_sha256 = call->payload_sha256;
        if (response)
                info.status = response->status;
        else if (g_error_matches(error, DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT))
                info.status = STATUS(TIMEOUT);
        else
                info.status = STATUS(ERROR);
        info.attempts = call->attempts;
        info.started_us = call->started_real_us;
        info.duration_us = (guint64)MAX(g_get_monotonic_time() - call->started_us, 0);
        info.round_trip_us = round_trip_us;
        info.execution_time_us = response ? response->execution_time_us : 0;

        deb_rpc_guard_push(rpc, &guard);
        call->callback(rpc, response, error, &info, call->user_data);
        deb_rpc_call_free(call);
        return deb_rpc_guard_pop(rpc, &guard);
}

/* The breaker's view: did the target show that it is there and answering? */
static void call_record_outcome(DebRpcCall *call, const GError *error)
{
        if (!error) {
                deb_breaker_record_success(call->breaker);
                return;
        }
        if (error->domain != DEB_RPC_ERROR)
                return;
        switch (error->code) {
        case DEB_RPC_ERROR_TIMEOUT:
        case DEB_RPC_ERROR_COMMUNICATION:
        case DEB_RPC_ERROR_NOT_FOUND:
        case DEB_RPC_ERROR_PROTOCOL:
                deb_breaker_record_failure(call->breaker);
                break;
        case DEB_RPC_ERROR_FAILED:
        case DEB_RPC_ERROR_INVALID_OPERATION:
        case DEB_RPC_ERROR_EXECUTION:
        case DEB_RPC_ERROR_INVALID_ARGUMENT:
                /* An answer, even a refusal, proves the target responds. */
                deb_breaker_record_success(call->breaker);
                break;
        default:
                /* Refused by the broker, or cancelled: says nothing of the target. */
                break;
        }
}

/* Only when the outcome is unknown: the operation may not have run at all. */
static gboolean error_is_retryable(const GError *error)
{
        return error && error->domain == DEB_RPC_ERROR &&
               (error->code == DEB_RPC_ERROR_TIMEOUT || error->code == DEB_RPC_ERROR_COMMUNICATION);
}

/**
 * deb_rpc_call_attempt_done:
 * @error: (nullable) how the current attempt failed; %NULL for a successful reply
 *
 * Schedules a retry of @call after its backoff delay, or finishes it.
 * Returns: %FALSE when a callback freed the RPC client.
 */
gboolean deb_rpc_call_attempt_done(DebRpcCall *call, const DebRpcResponse *response, const GError *error)
{
        guint64 round_trip_us = response ? (guint64)MAX(g_get_monotonic_time() - call->sent_us, 0) : 0;
        guint delay_ms;

        call_leave_flight(call);
        call_record_outcome(call, error);
        /* deb_backoff_new_for_rpc() allows non-idempotent operations a single attempt. */
        if (error_is_retryable(error) && deb_backoff_next_delay(call->backoff, &delay_ms)) {
                call->rpc->stats.retries++;
                g_debug("rpc %s %s (call %u): attempt %u failed (%s); retrying in %u ms", call->target,
                        deb_rpc_operation_to_string(call->operation), call->id, call->attempts,
                        error->message, delay_ms);
                call_set_timer(call, g_get_monotonic_time() + (gint64)delay_ms * G_TIME_SPAN_MILLISECOND);
                return TRUE;
        }
        return deb_rpc_call_finish(call, response, error, round_trip_us);
}

/** deb_rpc_call_check_breaker: Returns: %TRUE if the target's breaker lets an attempt through now. */
gboolean deb_rpc_call_check_breaker(DebRpcCall *call, GError **error)
{
        guint retry_after_ms = 0;

        if (deb_breaker_allow(call->breaker, &retry_after_ms))
                return TRUE;
        g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_CIRCUIT_OPEN,
                    "collector '%s': %s refused: circuit breaker %s after %u consecutive failures; "
                    "next call allowed in %u ms",
                    call->target, deb_rpc_operation_to_string(call->operation),
                    deb_breaker_state_to_string(deb_breaker_get_state(call->breaker)),
                    deb_breaker_get_consecutive_failures(call->breaker), retry_after_ms);
        return FALSE;
}

/**
 * deb_rpc_call_send_attempt:
 *
 * Publishes the next attempt of @call with a fresh correlation id and arms
 * its deadline. On failure nothing is in flight and @error is
 * #DEB_RPC_ERROR_COMMUNICATION (not connected) or INVALID_ARGUMENT.
 */
gboolean deb_rpc_call_send_attempt(DebRpcCall *call, GError **error)
{
        DebRpcClient *rpc = call->rpc;
        DebRpcRequest header = DAEMONEYE__EVENTBUS__RPC_REQUEST__INIT;
        DebPublishOptions options = {
                .message_type = DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_REQUEST,
                .payload_type = DEB_RPC_REQUEST_TYPE,
        };
        gint64 now_real = g_get_real_time();
        g_autoptr(GError) local = NULL;
        gsize payload_len, header_len;

        deb_client_new_uuid(rpc->client, call->attempt_id);
        if (call->attempts == 0) {
                memcpy(call->first_id, call->attempt_id, sizeof(call->first_id));
        } else {
                options.parent_correlation_id = call->first_id;
                options.root_correlation_id = call->first_id;
        }
        options.correlation_id = call->attempt_id;

        header.correlation_id = call->attempt_id;
        header.client_id = (char *)deb_client_get_id(rpc->client);
        header.target = call->target;
        header.operation = call->operation;
        header.timestamp_us = (guint64)now_real;
        header.deadline_us = (guint64)now_real + (guint64)call->timeout_ms * 1000u;

        /*
         * Fields 1..6 here and the payload (10..12) packed once at call time:
         * concatenated, they are the canonical encoding of the whole request.
         */
        header_len = protobuf_c_message_get_packed_size(&header.base);
        payload_len = g_bytes_get_size(call->payload);
        g_byte_array_set_size(rpc->scratch, (guint)(header_len + payload_len));
        protobuf_c_message_pack(&header.base, rpc->scratch->data);
        if (payload_len > 0)
                memcpy(rpc->scratch->data + header_len, g_bytes_get_data(call->payload, NULL), payload_len);

        call->attempts++;
        if (!deb_client_publish(rpc->client, call->topic, rpc->scratch->data, rpc->scratch->len, &options,
                                &local)) {
                gboolean closed = g_error_matches(local, DEB_ERROR, DEB_ERROR_CLOSED);

                g_set_error(error, DEB_RPC_ERROR,
                            closed ? DEB_RPC_ERROR_COMMUNICATION : DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "collector '%s': %s: %s", call->target,
                            deb_rpc_operation_to_string(call->operation), local->message);
                return FALSE;
        }
        rpc->stats.attempts++;
        call->sent_us = g_get_monotonic_time();
        call->in_flight = TRUE;
        g_hash_table_insert(rpc->attempts, call->attempt_id, call);
        call_set_timer(call, call->sent_us + (gint64)call->timeout_ms * G_TIME_SPAN_MILLISECOND);
        return TRUE;
}

/* The retry delay of @call passed. Returns: %FALSE when a callback freed the RPC client. */
static gboolean call_retry(DebRpcCall *call)
{
        g_autoptr(GError) error = NULL;

        if (!deb_rpc_call_check_breaker(call, &error))
                return deb_rpc_call_finish(call, NULL, error, 0);
        if (deb_rpc_call_send_attempt(call, &error))
                return TRUE;
        return deb_rpc_call_attempt_done(call, NULL, error);
}

static gboolean call_timed_out(DebRpcCall *call)
{
        g_autoptr(GError) error = NULL;

        call->rpc->stats.timeouts++;
        error = g_error_new(DEB_RPC_ERROR, DEB_RPC_ERROR_TIMEOUT,
                            "collector '%s': %s: no reply within %u ms (attempt %u, correlation id %s)",
                            call->target, deb_rpc_operation_to_string(call->operation), call->timeout_ms,
                            call->attempts, call->attempt_id);
        return deb_rpc_call_attempt_done(call, NULL, error);
}

static gboolean rpc_timer_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        DebRpcClient *rpc = ((RpcTimerSource *)source)->rpc;
        gint64 now = g_get_monotonic_time();

        for (;;) {
                GSequenceIter *first = g_sequence_get_begin_iter(rpc->timers);
                DebRpcCall *call;
                gboolean alive;

                if (g_sequence_iter_is_end(first))
                        break;
                call = g_sequence_get(first);
                if (call->timer_us > now)
                        break;
                g_sequence_remove(first);
                call->timer = NULL;
                alive = call->in_flight ? call_timed_out(call) : call_retry(call);
                if (!alive)
                        return G_SOURCE_REMOVE;
        }
        timers_rearm(rpc);
        return G_SOURCE_CONTINUE;
}

static GSourceFuncs rpc_timer_funcs = {
        .dispatch = rpc_timer_dispatch,
};

/** deb_rpc_timer_source_new: Returns: (transfer full) the source running @rpc's deadlines and retries,
 * unattached. */
GSource *deb_rpc_timer_source_new(DebRpcClient *rpc)
{
        GSource *source = g_source_new(&rpc_timer_funcs, sizeof(RpcTimerSource));

        ((RpcTimerSource *)source)->rpc = rpc;
        g_source_set_static_name(source, "deb-rpc-client timers");
        g_source_set_ready_time(source, -1);
        return source;
}
