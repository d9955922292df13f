/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Internals shared by deb-rpc-client.c (API, DebClient hooks) and
 * deb-rpc-call.c (the life of one call: attempts, deadlines, retries,
 * breaker outcomes). Not installed.
 */
#include "deb-client-private.h"
#include "deb-rpc-client.h"

G_BEGIN_DECLS

/*
 * A call is a sequence of attempts; an attempt is one request with its own
 * correlation id, in flight until its reply, its deadline or the loss of the
 * connection. Between attempts a call waits for its backoff delay.
 */
typedef struct {
        DebRpcClient *rpc;
        guint id;
        char *target;
        char *topic;
        DebRpcOperation operation;
        guint timeout_ms;
        GBytes *payload; /* an RpcRequest holding only the payload oneof, packed */
        char payload_sha256[65];
        DebBackoff *backoff;
        DebBreaker *breaker; /* owned by the registry */
        DebRpcCallback callback;
        gpointer user_data;

        char first_id[DEB_UUID_STRING_LEN + 1];
        char attempt_id[DEB_UUID_STRING_LEN + 1]; /* key in rpc->attempts while in flight */
        gboolean in_flight;
        guint attempts;
        gint64 started_us;      /* monotonic */
        gint64 started_real_us; /* wall clock */
        gint64 sent_us;         /* monotonic, current attempt */
        gint64 timer_us;        /* the deadline in flight, the retry time between attempts */
        GSequenceIter *timer;
} DebRpcCall;

/* Lets code that ran a callback know whether the RPC client survived it. */
typedef struct DebRpcGuard {
        gboolean destroyed;
        struct DebRpcGuard *outer;
} DebRpcGuard;

struct _DebRpcClient {
        DebClient *client;
        GMainContext *context;
        DebRpcClientOptions options;
        DebBreakerRegistry *breakers;
        GHashTable *calls;    /* id → DebRpcCall (owned) */
        GHashTable *attempts; /* attempt id (the call's own string) → DebRpcCall */
        /*
         * Deadlines and retry times of every call in one ordered sequence
         * under one GSource: thousands of pipelined calls must not cost
         * thousands of sources scanned on every main loop iteration.
         */
        GSequence *timers; /* DebRpcCall by (timer_us, id) */
        GSource *timer_source;
        guint next_id;
        GByteArray *scratch;
        DebRpcGuard *guards; /* innermost first */
        gboolean freeing;
        DebRpcClientStats stats;
};

/* deb-rpc-call.c */
DebRpcCall *deb_rpc_call_new(DebRpcClient *rpc, const char *target, char *topic, DebRpcOperation operation,
                             const DebRpcRequest *payload, guint timeout_ms, DebRpcCallback callback,
                             gpointer user_data);
void deb_rpc_call_free(DebRpcCall *call);
gboolean deb_rpc_call_check_breaker(DebRpcCall *call, GError **error);
gboolean deb_rpc_call_send_attempt(DebRpcCall *call, GError **error);
gboolean deb_rpc_call_attempt_done(DebRpcCall *call, const DebRpcResponse *response, const GError *error);
gboolean deb_rpc_call_finish(DebRpcCall *call, const DebRpcResponse *response, const GError *error,
                             guint64 round_trip_us);
void deb_rpc_guard_push(DebRpcClient *rpc, DebRpcGuard *guard);
gboolean deb_rpc_guard_pop(DebRpcClient *rpc, DebRpcGuard *guard);
GSource *deb_rpc_timer_source_new(DebRpcClient *rpc);

G_END_DECLS
