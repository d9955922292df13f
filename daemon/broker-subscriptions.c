/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subscribe and Unsubscribe requests of one connection. A connection's
 * patterns live in its own set (for the limit and for cleanup) and in the
 * broker's trie (for routing), each (pattern, connection) once.
 *
 * A request is all or nothing: one invalid pattern, or too many, refuses the
 * whole request with a non-fatal Error carrying its correlation id, so the
 * client knows exactly which call failed and nothing was half applied.
 */
#include <string.h>

#include "broker-private.h"
#include "deb-rpc.h"

#define ERROR_CODE(name) DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_##name

/**
 * broker_topic_is_rpc_response:
 *
 * Returns: %TRUE if the first level of @topic (or pattern) is "response":
 *   RPC replies, which only the RPC layer routes (see broker_route_publish()).
 */
gboolean broker_topic_is_rpc_response(const char *topic)
{
        gsize len = strlen(DEB_RPC_RESPONSE_LEVEL);

        return strncmp(topic, DEB_RPC_RESPONSE_LEVEL, len) == 0 && (topic[len] == '\0' || topic[len] == '.');
}

/* Checks every pattern of a request; sends the non-fatal Error itself. */
static gboolean patterns_validate(BrokerConnection *c, const char *verb, char **patterns, gsize n,
                                  const char *correlation_id)
{
        for (gsize i = 0; i < n; i++) {
                g_autoptr(GError) error = NULL;

                if (!deb_pattern_validate(patterns[i], &error)) {
                        broker_connection_send_error(c, ERROR_CODE(INVALID_PATTERN), correlation_id, FALSE,
                                                     "%s: %s", verb, error->message);
                        return FALSE;
                }
        }
        return TRUE;
}

/** broker_connection_handle_subscribe: applies a Subscribe envelope, answering Ack or a non-fatal Error. */
void broker_connection_handle_subscribe(BrokerConnection *c, const DebEnvelope *env)
{
        const char *correlation_id = envelope_correlation_id(env);
        guint limit = c->broker->config.max_subscriptions_per_connection;
        Daemoneye__Eventbus__Subscribe *sub;
        g_autoptr(GHashTable) fresh = NULL;
        guint current;

        sub = (Daemoneye__Eventbus__Subscribe *)broker_connection_decode_payload(
                c, env, &daemoneye__eventbus__subscribe__descriptor);
        if (!sub)
                return;
        if (!patterns_validate(c, "subscribe", sub->patterns, sub->n_patterns, correlation_id))
                return;

        for (gsize i = 0; i < sub->n_patterns; i++) {
                /* polkit allowed the stream its one pattern, nothing more. */
                if (c->stream_pattern && strcmp(sub->patterns[i], c->stream_pattern) != 0) {
                        broker_connection_send_error(
                                c, ERROR_CODE(PERMISSION_DENIED), correlation_id, FALSE,
                                "subscribe: pattern '%s': this event stream was opened for '%s' only",
                                sub->patterns[i], c->stream_pattern);
                        return;
                }
                /*
                 * Replies go only to the requester. '#' and '+…' patterns are
                 * fine: routing never offers them response.* topics.
                 */
                if (broker_topic_is_rpc_response(sub->patterns[i])) {
                        broker_connection_send_error(
                                c, ERROR_CODE(PERMISSION_DENIED), correlation_id, FALSE,
                                "subscribe: pattern '%s': RPC replies (response.*) are "
                                "delivered only to the connection that sent the request",
                                sub->patterns[i]);
                        return;
                }
        }

        /* Count what is new (a repeated pattern is not a second subscription) before changing anything. */
        if (!c->patterns)
                c->patterns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        fresh = g_hash_table_new(g_str_hash, g_str_equal);
        for (gsize i = 0; i < sub->n_patterns; i++)
                if (!g_hash_table_contains(c->patterns, sub->patterns[i]))
                        g_hash_table_add(fresh, sub->patterns[i]);
        current = g_hash_table_size(c->patterns);
        if ((guint64)current + g_hash_table_size(fresh) > limit) {
                broker_connection_send_error(
                        c, ERROR_CODE(TOO_MANY_SUBSCRIPTIONS), correlation_id, FALSE,
                        "subscribe: %u more subscriptions would exceed the limit of %u per "
                        "connection (max_subscriptions_per_connection); %u in use",
                        g_hash_table_size(fresh), limit, current);
                return;
        }

        for (gsize i = 0; i < sub->n_patterns; i++) {
                char *pattern;

                if (g_hash_table_contains(c->patterns, sub->patterns[i]))
                        continue;
                pattern = g_strdup(sub->patterns[i]);
                g_hash_table_add(c->patterns, pattern);
                deb_topic_trie_add(c->broker->trie, pattern, c);
        }
        broker_connection_send_ack(c, sub->patterns, sub->n_patterns, correlation_id);
}

/** broker_connection_handle_unsubscribe: applies an Unsubscribe envelope; unknown patterns are no error. */
void broker_connection_handle_unsubscribe(BrokerConnection *c, const DebEnvelope *env)
{
        const char *correlation_id = envelope_correlation_id(env);
        Daemoneye__Eventbus__Unsubscribe *unsub;

        unsub = (Daemoneye__Eventbus__Unsubscribe *)broker_connection_decode_payload(
                c, env, &daemoneye__eventbus__unsubscribe__descriptor);
        if (!unsub)
                return;
        if (!patterns_validate(c, "unsubscribe", unsub->patterns, unsub->n_patterns, correlation_id))
                return;

        for (gsize i = 0; c->patterns && i < unsub->n_patterns; i++) {
                gpointer key;

                if (!g_hash_table_lookup_extended(c->patterns, unsub->patterns[i], &key, NULL))
                        continue;
                deb_topic_trie_remove(c->broker->trie, key, c);
                g_hash_table_remove(c->patterns, key);
        }
        broker_connection_send_ack(c, unsub->patterns, unsub->n_patterns, correlation_id);
}

/** broker_connection_subscribe_stream: subscribes an event stream to its pattern, once its Hello is done. */
void broker_connection_subscribe_stream(BrokerConnection *c)
{
        char *pattern;

        if (!c->patterns)
                c->patterns = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        if (g_hash_table_contains(c->patterns, c->stream_pattern))
                return;
        pattern = g_strdup(c->stream_pattern);
        g_hash_table_add(c->patterns, pattern);
        deb_topic_trie_add(c->broker->trie, pattern, c);
}

/** broker_connection_remove_subscriptions: takes every pattern of @c out of the trie. */
void broker_connection_remove_subscriptions(BrokerConnection *c)
{
        GHashTableIter iter;
        gpointer key;

        if (!c->patterns)
                return;
        g_hash_table_iter_init(&iter, c->patterns);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                deb_topic_trie_remove(c->broker->trie, key, c);
        g_clear_pointer(&c->patterns, g_hash_table_unref);
}
