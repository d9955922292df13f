/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RPC client's API and its hooks into the DebClient: replies, the
 * broker's refusals and the loss of the connection end attempts, which
 * deb-rpc-call.c turns into retries or outcomes.
 *
 * Part of the library, so it uses the client's internals for what the
 * public API leaves out: fast correlation ids, the arena to decode replies
 * in, the main context, and whether a callback of the client is running.
 */
#include <string.h>

#include "deb-error.h"
#include "deb-rpc-client-private.h"

#define PAYLOAD(name) DAEMONEYE__EVENTBUS__RPC_REQUEST__PAYLOAD_##name

#define DEFAULT_MAX_PENDING 1000
#define DEFAULT_TIMEOUT_MS 30000

/* Checks a reply against the attempt it answers and decodes it into the client's arena. */
static const DebRpcResponse *reply_decode(DebRpcClient *rpc, DebRpcCall *call, const DebEnvelope *envelope,
                                          GError **error)
{
        const DebRpcResponse *response;
        g_autoptr(GError) local = NULL;
        const char *topic_id = deb_rpc_response_topic_get_id(envelope->topic);

        if (g_strcmp0(topic_id, call->attempt_id) != 0 ||
            g_strcmp0(envelope->payload_type, DEB_RPC_RESPONSE_TYPE) != 0) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL,
                            "collector '%s': %s: reply on '%s' with payload type '%s', expected '%s."
                            "%s' with '%s'",
                            call->target, deb_rpc_operation_to_string(call->operation), envelope->topic,
                            envelope->payload_type, DEB_RPC_RESPONSE_LEVEL, call->attempt_id,
                            DEB_RPC_RESPONSE_TYPE);
                return NULL;
        }
        response = (const DebRpcResponse *)deb_client_unpack_payload(
                rpc->client, envelope, &daemoneye__eventbus__rpc_response__descriptor, &local);
        if (!response) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL, "collector '%s': %s: reply: %s",
                            call->target, deb_rpc_operation_to_string(call->operation), local->message);
                return NULL;
        }
        if (g_strcmp0(response->correlation_id, call->attempt_id) != 0) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL,
                            "collector '%s': %s: reply names correlation id '%s', its envelope '%s'",
                            call->target, deb_rpc_operation_to_string(call->operation),
                            response->correlation_id, call->attempt_id);
                return NULL;
        }
        return response;
}

static void rpc_on_response(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        DebRpcClient *rpc = user_data;
        const char *id = envelope->correlation ? envelope->correlation->correlation_id : NULL;
        g_autoptr(GError) error = NULL;
        const DebRpcResponse *response;
        DebRpcCall *call = id ? g_hash_table_lookup(rpc->attempts, id) : NULL;

        if (!call) {
                rpc->stats.late_replies++;
                g_debug("client %s: reply '%s' matches no call in flight (late or cancelled); ignored",
                        deb_client_get_id(client), id ? id : "");
                return;
        }
        response = reply_decode(rpc, call, envelope, &error);
        if (response && !deb_rpc_response_to_error(response, &error))
                g_prefix_error(&error, "collector '%s': %s: ", call->target,
                               deb_rpc_operation_to_string(call->operation));
        (void)deb_rpc_call_attempt_done(call, response, error);
}

static gboolean rpc_on_refused(DebClient *client, const char *correlation_id, const GError *error,
                               gpointer user_data)
{
        DebRpcClient *rpc = user_data;
        DebRpcCall *call = g_hash_table_lookup(rpc->attempts, correlation_id);
        g_autoptr(GError) refusal = NULL;

        if (!call)
                return FALSE;
        refusal = g_error_new(DEB_RPC_ERROR, DEB_RPC_ERROR_REFUSED, "collector '%s': %s: %s", call->target,
                              deb_rpc_operation_to_string(call->operation), error->message);
        (void)deb_rpc_call_attempt_done(call, NULL, refusal);
        return TRUE;
}

/*
 * The ids of the calls (those in flight only, or all), to end them one by
 * one: callbacks may end other calls, so each is looked up again before use.
 */
static GArray *rpc_call_ids(DebRpcClient *rpc, gboolean in_flight_only)
{
        GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint));
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, rpc->calls);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                DebRpcCall *call = value;

                if (call->in_flight || !in_flight_only)
                        g_array_append_val(ids, call->id);
        }
        return ids;
}

static DebRpcCall *rpc_lookup_call(DebRpcClient *rpc, GArray *ids, guint i)
{
        return g_hash_table_lookup(rpc->calls, GUINT_TO_POINTER(g_array_index(ids, guint, i)));
}

static void rpc_on_closed(DebClient *client, const GError *error, gpointer user_data)
{
        DebRpcClient *rpc = user_data;
        g_autoptr(GArray) ids = rpc_call_ids(rpc, TRUE);
        DebRpcGuard guard;

        deb_rpc_guard_push(rpc, &guard);
        for (guint i = 0; i < ids->len; i++) {
                DebRpcCall *call = rpc_lookup_call(rpc, ids, i);
                g_autoptr(GError) lost = NULL;

                if (!call || !call->in_flight)
                        continue;
                lost = g_error_new(DEB_RPC_ERROR, DEB_RPC_ERROR_COMMUNICATION,
                                   "collector '%s': %s: request lost with the connection: %s", call->target,
                                   deb_rpc_operation_to_string(call->operation), error->message);
                if (!deb_rpc_call_attempt_done(call, NULL, lost))
                        return;
        }
        (void)deb_rpc_guard_pop(rpc, &guard);
}

static const DebClientRpcHooks rpc_hooks = {
        .response = rpc_on_response,
        .refused = rpc_on_refused,
        .closed = rpc_on_closed,
};

DebRpcClientOptions deb_rpc_client_options_default(void)
{
        return (DebRpcClientOptions){
                .max_pending = DEFAULT_MAX_PENDING,
                .default_timeout_ms = DEFAULT_TIMEOUT_MS,
                .retry = deb_backoff_policy_default(),
                .breaker = deb_breaker_policy_default(),
        };
}

DebRpcClient *deb_rpc_client_new(DebClient *client, const DebRpcClientOptions *options, GError **error)
{
        DebRpcClientOptions defaults = deb_rpc_client_options_default();
        const char *invalid;
        DebRpcClient *rpc;

        g_return_val_if_fail(client != NULL, NULL);
        g_return_val_if_fail(error == NULL || *error == NULL, NULL);

        if (!options)
                options = &defaults;
        invalid = options->max_pending == 0                       ? "max_pending is 0"
                  : options->default_timeout_ms == 0              ? "default_timeout_ms is 0"
                  : options->breaker.failure_threshold == 0       ? "breaker.failure_threshold is 0"
                  : !deb_backoff_policy_is_valid(&options->retry) ? "the retry policy is invalid"
                                                                  : NULL;
        if (invalid) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "RPC client options: %s: max_pending, default_timeout_ms and the breaker's "
                            "failure_threshold must be at least 1, and the retry policy valid "
                            "(max_attempts >= 1, max_delay_ms >= base_delay_ms, multiplier >= 1, "
                            "jitter in 0..1)",
                            invalid);
                return NULL;
        }
        if (client->rpc_hooks.response) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "client %s already has an RPC client", deb_client_get_id(client));
                return NULL;
        }

        rpc = g_new0(DebRpcClient, 1);
        rpc->client = deb_client_ref(client);
        rpc->context = g_main_context_ref(client->context);
        rpc->options = *options;
        rpc->breakers = deb_breaker_registry_new(&options->breaker, options->clock, options->clock_data);
        rpc->calls = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)deb_rpc_call_free);
        rpc->attempts = g_hash_table_new(g_str_hash, g_str_equal);
        rpc->timers = g_sequence_new(NULL);
        rpc->scratch = g_byte_array_new();
        rpc->next_id = 1;

        rpc->timer_source = deb_rpc_timer_source_new(rpc);
        g_source_attach(rpc->timer_source, rpc->context);

        deb_client_set_rpc_hooks(client, &rpc_hooks, rpc);
        return rpc;
}

void deb_rpc_client_free(DebRpcClient *rpc)
{
        g_autoptr(GArray) ids = NULL;

        if (!rpc)
                return;
        g_return_if_fail(!rpc->freeing);
        rpc->freeing = TRUE;
        deb_client_set_rpc_hooks(rpc->client, NULL, NULL);
        g_source_destroy(rpc->timer_source);

        ids = rpc_call_ids(rpc, FALSE);
        for (guint i = 0; i < ids->len; i++) {
                DebRpcCall *call = rpc_lookup_call(rpc, ids, i);
                g_autoptr(GError) error = NULL;

                if (!call)
                        continue;
                error = g_error_new(DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED,
                                    "collector '%s': %s: cancelled: the RPC client was freed", call->target,
                                    deb_rpc_operation_to_string(call->operation));
                (void)deb_rpc_call_finish(call, NULL, error, 0);
        }
        /* Whoever ran the callback that freed us must not touch us on return. */
        for (DebRpcGuard *guard = rpc->guards; guard; guard = guard->outer)
                guard->destroyed = TRUE;

        g_source_unref(rpc->timer_source);
        g_hash_table_unref(rpc->attempts);
        g_hash_table_unref(rpc->calls);
        g_sequence_free(rpc->timers);
        deb_breaker_registry_free(rpc->breakers);
        g_byte_array_unref(rpc->scratch);
        g_main_context_unref(rpc->context);
        deb_client_unref(rpc->client);
        g_free(rpc);
}

DebClient *deb_rpc_client_get_client(DebRpcClient *rpc)
{
        g_return_val_if_fail(rpc != NULL, NULL);
        return rpc->client;
}

static guint rpc_next_call_id(DebRpcClient *rpc)
{
        guint id;

        do
                id = rpc->next_id++;
        while (id == 0 || g_hash_table_contains(rpc->calls, GUINT_TO_POINTER(id)));
        return id;
}

/* Checks a call and sends its first attempt. Returns: (transfer none) the call, now pending, or %NULL. */
static DebRpcCall *rpc_call_start(DebRpcClient *rpc, const char *target, DebRpcOperation operation,
                                  const DebRpcRequest *payload, guint timeout_ms, DebRpcCallback callback,
                                  gpointer user_data, GError **error)
{
        g_autofree char *topic = NULL;
        DebRpcCall *call;

        topic = deb_rpc_request_topic(target, operation, error);
        if (!topic)
                return NULL;
        if (payload && !deb_rpc_payload_fits_operation(operation, payload->payload_case)) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "collector '%s': %s does not take a payload of case %d", target,
                            deb_rpc_operation_to_string(operation), (int)payload->payload_case);
                return NULL;
        }
        if (payload && payload->payload_case != PAYLOAD(_NOT_SET) && !payload->lifecycle) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_INVALID_ARGUMENT,
                            "collector '%s': %s: payload case %d is set but its message is NULL; set "
                            "both, or neither",
                            target, deb_rpc_operation_to_string(operation), (int)payload->payload_case);
                return NULL;
        }
        if (rpc->stats.pending >= rpc->options.max_pending) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_LIMIT,
                            "collector '%s': %s refused: %u calls pending, the limit (max_pending)", target,
                            deb_rpc_operation_to_string(operation), rpc->stats.pending);
                return NULL;
        }

        /*
         * Our own connection being down says nothing of the target: fail
         * before asking its breaker, which would count it against the target
         * (and take the half-open probe for a request never sent).
         */
        if (!deb_client_io_is_open(rpc->client)) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_COMMUNICATION,
                            "collector '%s': %s not sent: client %s is not connected%s%s", target,
                            deb_rpc_operation_to_string(operation), deb_client_get_id(rpc->client),
                            rpc->client->close_error ? ": " : "",
                            rpc->client->close_error ? rpc->client->close_error->message : "");
                return NULL;
        }

        call = deb_rpc_call_new(rpc, target, g_steal_pointer(&topic), operation, payload,
                                timeout_ms ? timeout_ms : rpc->options.default_timeout_ms, callback,
                                user_data);
        call->id = rpc_next_call_id(rpc); /* before the timer, which sorts by it */

        /* Asked last: in half-open state a yes makes this call the probe. */
        if (!deb_rpc_call_check_breaker(call, error) || !deb_rpc_call_send_attempt(call, error)) {
                deb_rpc_call_free(call);
                return NULL;
        }
        g_hash_table_insert(rpc->calls, GUINT_TO_POINTER(call->id), call);
        return call;
}

guint deb_rpc_client_call(DebRpcClient *rpc, const char *target, DebRpcOperation operation,
                          const DebRpcRequest *payload, guint timeout_ms, DebRpcCallback callback,
                          gpointer user_data, GError **error)
{
        DebRpcCall *call;

        g_return_val_if_fail(rpc != NULL, 0);
        g_return_val_if_fail(callback != NULL, 0);
        g_return_val_if_fail(error == NULL || *error == NULL, 0);
        g_return_val_if_fail(!rpc->freeing, 0);

        call = rpc_call_start(rpc, target, operation, payload, timeout_ms, callback, user_data, error);
        if (!call) {
                rpc->stats.refused++;
                return 0;
        }
        rpc->stats.pending++;
        rpc->stats.calls++;
        return call->id;
}

gboolean deb_rpc_client_cancel(DebRpcClient *rpc, guint call_id)
{
        g_autoptr(GError) error = NULL;
        DebRpcCall *call;

        g_return_val_if_fail(rpc != NULL, FALSE);

        call = g_hash_table_lookup(rpc->calls, GUINT_TO_POINTER(call_id));
        if (!call)
                return FALSE;
        /* Its outcome is unknown, so the breaker hears nothing (a lost probe it handles itself). */
        error = g_error_new(DEB_RPC_ERROR, DEB_RPC_ERROR_CANCELLED, "collector '%s': %s: cancelled",
                            call->target, deb_rpc_operation_to_string(call->operation));
        (void)deb_rpc_call_finish(call, NULL, error, 0);
        return TRUE;
}

typedef struct {
        gboolean done;
        DebRpcResponse *response;
        GError *error;
} SyncCall;

static void sync_call_done(DebRpcClient *rpc, const DebRpcResponse *response, const GError *error,
                           const DebRpcCallInfo *info, gpointer user_data)
{
        SyncCall *sync = user_data;

        sync->done = TRUE;
        if (error)
                sync->error = g_error_copy(error);
        if (response) {
                /* The reply lives in the client's arena: a round trip through the wire format copies it. */
                gsize size = protobuf_c_message_get_packed_size(&response->base);
                g_autofree guint8 *data = g_malloc(size + 1);

                protobuf_c_message_pack(&response->base, data);
                sync->response = daemoneye__eventbus__rpc_response__unpack(NULL, size, data);
        }
}

gboolean deb_rpc_client_call_sync(DebRpcClient *rpc, const char *target, DebRpcOperation operation,
                                  const DebRpcRequest *payload, guint timeout_ms, DebRpcResponse **response,
                                  GError **error)
{
        SyncCall sync = {0};

        g_return_val_if_fail(rpc != NULL, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (rpc->client->reading) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL,
                            "collector '%s': %s: cannot wait for a reply inside a callback of client %s: "
                            "replies are read after the callback returns",
                            target, deb_rpc_operation_to_string(operation), deb_client_get_id(rpc->client));
                return FALSE;
        }
        if (!g_main_context_acquire(rpc->context)) {
                g_set_error(error, DEB_RPC_ERROR, DEB_RPC_ERROR_PROTOCOL,
                            "collector '%s': %s: cannot wait: the main context of client %s is owned by "
                            "another thread",
                            target, deb_rpc_operation_to_string(operation), deb_client_get_id(rpc->client));
                return FALSE;
        }
        if (deb_rpc_client_call(rpc, target, operation, payload, timeout_ms, sync_call_done, &sync, error)) {
                /* The call's own deadline ends the wait: every call ends in its callback. */
                while (!sync.done) {
                        deb_client_io_update_events(rpc->client);
                        g_main_context_iteration(rpc->context, TRUE);
                }
        }
        g_main_context_release(rpc->context);

        if (response)
                *response = g_steal_pointer(&sync.response);
        else if (sync.response)
                daemoneye__eventbus__rpc_response__free_unpacked(sync.response, NULL);
        if (sync.error) {
                g_propagate_error(error, sync.error);
                return FALSE;
        }
        return sync.done;
}

DebBreaker *deb_rpc_client_get_breaker(DebRpcClient *rpc, const char *target)
{
        g_return_val_if_fail(rpc != NULL, NULL);
        g_return_val_if_fail(target != NULL, NULL);
        return deb_breaker_registry_get(rpc->breakers, target);
}

void deb_rpc_client_get_stats(DebRpcClient *rpc, DebRpcClientStats *stats)
{
        g_return_if_fail(rpc != NULL);
        g_return_if_fail(stats != NULL);
        *stats = rpc->stats;
}
