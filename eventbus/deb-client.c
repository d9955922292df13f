/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The EventBus client: lifecycle, subscriptions and publishing. The socket
 * is in deb-client-io.c, frames from the broker in deb-client-dispatch.c, the
 * blocking helpers in deb-client-wait.c.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deb-client-private.h"
#include "deb-error.h"
#include "deb-topic.h"

/* Tags fit on the stack up to this many pairs; more cost one allocation. */
#define DEB_CLIENT_STACK_TAGS 8

/** deb_client_subscription_unref: drops the table's or a delivery's reference. */
void deb_client_subscription_unref(DebSubscription *subscription)
{
        if (--subscription->ref_count == 0)
                g_free(subscription);
}

static void pattern_entry_free(DebPatternEntry *entry)
{
        g_ptr_array_unref(entry->subscriptions);
        g_free(entry->subscribe_id);
        g_free(entry->pattern);
        g_free(entry);
}

static void request_free(DebRequest *request)
{
        g_free(request->pattern);
        g_free(request);
}

/**
 * deb_client_new_uuid:
 *
 * Writes a random (version 4) UUID. g_uuid_string_random() formats with
 * printf, allocates and takes GLib's global random lock four times: it was
 * over half of what a publish cost.
 */
void deb_client_new_uuid(DebClient *client, char out[static DEB_UUID_STRING_LEN + 1])
{
        static const char hex[] = "0123456789abcdef";
        guint8 bytes[16];
        gsize o = 0;

        for (gsize i = 0; i < sizeof(bytes); i += 4) {
                guint32 r = g_rand_int(client->rand);

                memcpy(bytes + i, &r, sizeof(r));
        }
        bytes[6] = (guint8)((bytes[6] & 0x0f) | 0x40); /* version 4 */
        bytes[8] = (guint8)((bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        for (gsize i = 0; i < sizeof(bytes); i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        out[o++] = '-';
                out[o++] = hex[bytes[i] >> 4];
                out[o++] = hex[bytes[i] & 0x0f];
        }
        out[o] = '\0';
}

DebClient *deb_client_new(const char *client_id)
{
        DebClient *client = g_new0(DebClient, 1);

        client->ref_count = 1;
        client->id = client_id ? g_strdup(client_id) : g_strdup_printf("client-%d", (int)getpid());
        client->context = g_main_context_ref_thread_default();
        client->fd = -1;
        client->max_frame_bytes = DEB_DEFAULT_MAX_FRAME_BYTES;
        client->unpacker = deb_unpacker_new();
        client->deliveries = g_ptr_array_new();
        client->out = g_byte_array_new();
        client->scratch = g_byte_array_new();
        client->subscriptions = g_hash_table_new(NULL, NULL);
        /* Keys are the entries' own pattern strings. */
        client->patterns =
                g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)pattern_entry_free);
        client->trie = deb_topic_trie_new();
        client->requests =
                g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)request_free);
        client->next_subscription_id = 1;
        client->rand = g_rand_new();
        return client;
}

DebClient *deb_client_ref(DebClient *client)
{
        g_return_val_if_fail(client != NULL, NULL);
        g_atomic_int_inc(&client->ref_count);
        return client;
}

static void client_free(DebClient *client)
{
        g_autoptr(GPtrArray) subscriptions = NULL;
        GHashTableIter iter;
        gpointer value;

        deb_client_io_abort(client);

        /* Destroy notifies are user code: run them once the client's own state is gone. */
        subscriptions = g_ptr_array_new();
        g_hash_table_iter_init(&iter, client->subscriptions);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                g_ptr_array_add(subscriptions, value);
        g_hash_table_unref(client->subscriptions);
        g_hash_table_unref(client->patterns);
        g_hash_table_unref(client->requests);
        deb_topic_trie_free(client->trie);
        g_clear_pointer(&client->decoder, deb_frame_decoder_free);
        deb_unpacker_free(client->unpacker);
        g_ptr_array_unref(client->deliveries);
        g_byte_array_unref(client->out);
        g_byte_array_unref(client->scratch);
        g_clear_error(&client->close_error);
        g_clear_error(&client->request_error);
        g_main_context_unref(client->context);
        g_rand_free(client->rand);
        g_strfreev(client->capabilities);
        g_free(client->peer_name);
        g_free(client->id);
        g_free(client);

        for (guint i = 0; i < subscriptions->len; i++) {
                DebSubscription *subscription = subscriptions->pdata[i];

                subscription->removed = TRUE;
                if (subscription->destroy)
                        subscription->destroy(subscription->user_data);
                deb_client_subscription_unref(subscription);
        }
}

void deb_client_unref(DebClient *client)
{
        g_return_if_fail(client != NULL);
        if (g_atomic_int_dec_and_test(&client->ref_count))
                client_free(client);
}

/** deb_client_hold: a reference for dispatch or a wait, not counted as the user's. */
void deb_client_hold(DebClient *client)
{
        deb_client_ref(client);
        client->holds++;
}

void deb_client_release(DebClient *client)
{
        client->holds--;
        deb_client_unref(client);
}

/** deb_client_is_abandoned: Returns: %TRUE when only dispatch and waits still hold the client. */
gboolean deb_client_is_abandoned(DebClient *client)
{
        return (guint)g_atomic_int_get(&client->ref_count) <= client->holds;
}

const char *deb_client_get_id(DebClient *client)
{
        g_return_val_if_fail(client != NULL, NULL);
        return client->id;
}

void deb_client_set_max_frame_bytes(DebClient *client, gsize max_frame_bytes)
{
        g_return_if_fail(client != NULL);
        client->max_frame_bytes = max_frame_bytes > 0 ? max_frame_bytes : DEB_DEFAULT_MAX_FRAME_BYTES;
}

void deb_client_set_capabilities(DebClient *client, const char *const *capabilities)
{
        g_return_if_fail(client != NULL);
        g_strfreev(client->capabilities);
        client->capabilities = g_strdupv((char **)capabilities);
}

void deb_client_set_error_func(DebClient *client, DebClientErrorFunc func, gpointer user_data)
{
        g_return_if_fail(client != NULL);
        client->error_func = func;
        client->error_data = user_data;
}

void deb_client_set_rpc_hooks(DebClient *client, const DebClientRpcHooks *hooks, gpointer user_data)
{
        g_return_if_fail(client != NULL);
        if (hooks)
                client->rpc_hooks = *hooks;
        else
                memset(&client->rpc_hooks, 0, sizeof(client->rpc_hooks));
        client->rpc_data = hooks ? user_data : NULL;
}

void deb_client_set_drain_func(DebClient *client, gsize low_watermark, DebClientDrainFunc func,
                               gpointer user_data)
{
        g_return_if_fail(client != NULL);
        client->low_watermark = low_watermark;
        client->drain_func = func;
        client->drain_data = user_data;
        client->above_watermark = deb_client_get_pending_bytes(client) > low_watermark;
        deb_client_io_update_events(client);
}

gboolean deb_client_is_connected(DebClient *client)
{
        g_return_val_if_fail(client != NULL, FALSE);
        return client->state == DEB_CLIENT_CONNECTED;
}

gsize deb_client_get_pending_bytes(DebClient *client)
{
        g_return_val_if_fail(client != NULL, 0);
        return client->out->len - client->out_pos;
}

void deb_client_get_stats(DebClient *client, DebClientStats *stats)
{
        g_return_if_fail(client != NULL);
        g_return_if_fail(stats != NULL);
        *stats = client->stats;
}

/** deb_client_frame_limit: Returns: the smaller of our limit and the broker's, for frames we send. */
gsize deb_client_frame_limit(DebClient *client)
{
        if (client->broker_frame_bytes > 0)
                return MIN(client->max_frame_bytes, client->broker_frame_bytes);
        return client->max_frame_bytes;
}

static gboolean client_queue_envelope(DebClient *client, const DebEnvelope *envelope, GError **error)
{
        guint old_len = client->out->len;
        gsize pending;

        if (!deb_frame_encode_envelope(client->out, envelope, deb_client_frame_limit(client), error)) {
                g_byte_array_set_size(client->out, old_len);
                return FALSE;
        }
        client->out_peak = MAX(client->out_peak, client->out->len);

        pending = deb_client_get_pending_bytes(client);
        if (pending > client->low_watermark)
                client->above_watermark = TRUE;
        /* Past this, waiting for the next poll only grows the buffer. */
        if (pending > MAX(DEB_CLIENT_WRITE_EAGER, client->eager_write_at) &&
            (client->state == DEB_CLIENT_HANDSHAKE || client->state == DEB_CLIENT_CONNECTED)) {
                deb_client_io_write(client, FALSE);
                client->eager_write_at = deb_client_get_pending_bytes(client) + DEB_CLIENT_WRITE_EAGER_STEP;
        }
        /* A dispatch in progress updates the poll events when it ends. */
        if (client->dispatching == 0)
                deb_client_io_update_events(client);
        return TRUE;
}

/**
 * deb_client_queue_control:
 * @message: the control message, packed as the envelope's payload
 *
 * Queues a protocol frame (Hello, Subscribe, Unsubscribe).
 */
gboolean deb_client_queue_control(DebClient *client, int message_type, const char *payload_type,
                                  const ProtobufCMessage *message, const char *correlation_id,
                                  GError **error)
{
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        DebEnvelope envelope = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        gsize size = protobuf_c_message_get_packed_size(message);

        g_byte_array_set_size(client->scratch, (guint)size);
        protobuf_c_message_pack(message, client->scratch->data);

        correlation.correlation_id = (char *)correlation_id;
        correlation.root_correlation_id = (char *)correlation_id;
        envelope.message_type = (Daemoneye__Eventbus__MessageType)message_type;
        envelope.correlation = &correlation;
        envelope.payload_type = (char *)payload_type;
        envelope.payload.data = client->scratch->data;
        envelope.payload.len = size;
        envelope.timestamp_us = (uint64_t)g_get_real_time();
        envelope.sender = client->id;
        return client_queue_envelope(client, &envelope, error);
}

static gboolean client_send_patterns(DebClient *client, DebRequestKind kind, DebPatternEntry *entry,
                                     const char *pattern, GError **error)
{
        char correlation_id[DEB_UUID_STRING_LEN + 1];
        char *patterns[] = {(char *)pattern};
        DebRequest *request;
        gboolean ok;

        deb_client_new_uuid(client, correlation_id);
        if (kind == DEB_REQUEST_SUBSCRIBE) {
                Daemoneye__Eventbus__Subscribe message = DAEMONEYE__EVENTBUS__SUBSCRIBE__INIT;

                message.n_patterns = 1;
                message.patterns = patterns;
                ok = deb_client_queue_control(
                        client, DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_SUBSCRIBE,
                        DEB_PAYLOAD_TYPE_SUBSCRIBE, &message.base, correlation_id, error);
        } else {
                Daemoneye__Eventbus__Unsubscribe message = DAEMONEYE__EVENTBUS__UNSUBSCRIBE__INIT;

                message.n_patterns = 1;
                message.patterns = patterns;
                ok = deb_client_queue_control(
                        client, DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_UNSUBSCRIBE,
                        DEB_PAYLOAD_TYPE_UNSUBSCRIBE, &message.base, correlation_id, error);
        }
        if (!ok)
                return FALSE;

        request = g_new0(DebRequest, 1);
        request->kind = kind;
        request->pattern = g_strdup(pattern);
        if (entry) {
                g_free(entry->subscribe_id);
                entry->subscribe_id = g_strdup(correlation_id);
        }
        g_hash_table_insert(client->requests, g_strdup(correlation_id), request);
        return TRUE;
}

static void client_activate_entry(DebClient *client, DebPatternEntry *entry)
{
        if (!entry->in_trie) {
                deb_topic_trie_add(client->trie, entry->pattern, entry);
                entry->in_trie = TRUE;
        }
        entry->refused = FALSE;
}

/**
 * deb_client_queue_subscriptions:
 *
 * On a new connection the broker knows none of our patterns: queue a
 * Subscribe for each, refused ones included (limits may have changed).
 */
gboolean deb_client_queue_subscriptions(DebClient *client, GError **error)
{
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, client->patterns);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                DebPatternEntry *entry = value;

                client_activate_entry(client, entry);
                if (!client_send_patterns(client, DEB_REQUEST_SUBSCRIBE, entry, entry->pattern, error))
                        return FALSE;
        }
        return TRUE;
}

/** deb_client_forget_requests: the connection is gone and no answer will come. */
void deb_client_forget_requests(DebClient *client)
{
        GHashTableIter iter;
        gpointer value;

        g_hash_table_remove_all(client->requests);
        g_hash_table_iter_init(&iter, client->patterns);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                g_clear_pointer(&((DebPatternEntry *)value)->subscribe_id, g_free);
}

guint deb_client_subscribe(DebClient *client, const char *pattern, DebClientMessageFunc func,
                           gpointer user_data, GDestroyNotify destroy, GError **error)
{
        DebPatternEntry *entry;
        DebSubscription *subscription;

        g_return_val_if_fail(client != NULL, 0);
        g_return_val_if_fail(func != NULL, 0);
        g_return_val_if_fail(error == NULL || *error == NULL, 0);

        if (!deb_pattern_validate(pattern, error)) {
                g_prefix_error(error, "client %s: cannot subscribe: ", client->id);
                return 0;
        }

        entry = g_hash_table_lookup(client->patterns, pattern);
        if (!entry) {
                entry = g_new0(DebPatternEntry, 1);
                entry->pattern = g_strdup(pattern);
                entry->subscriptions = g_ptr_array_new();
                g_hash_table_insert(client->patterns, entry->pattern, entry);
                entry->refused = TRUE; /* not known to the broker yet */
        }

        /* Only the first subscription to a pattern (or a retry after a refusal) tells the broker. */
        if (entry->refused) {
                client_activate_entry(client, entry);
                if (deb_client_io_is_open(client) &&
                    !client_send_patterns(client, DEB_REQUEST_SUBSCRIBE, entry, pattern, error)) {
                        g_prefix_error(error, "client %s: cannot subscribe to '%s': ", client->id, pattern);
                        if (entry->subscriptions->len == 0) {
                                deb_topic_trie_remove(client->trie, entry->pattern, entry);
                                g_hash_table_remove(client->patterns, pattern);
                        }
                        return 0;
                }
        }

        subscription = g_new0(DebSubscription, 1);
        subscription->ref_count = 1;
        do
                subscription->id = client->next_subscription_id++;
        while (subscription->id == 0 ||
               g_hash_table_contains(client->subscriptions, GUINT_TO_POINTER(subscription->id)));
        subscription->entry = entry;
        subscription->func = func;
        subscription->user_data = user_data;
        subscription->destroy = destroy;
        g_ptr_array_add(entry->subscriptions, subscription);
        g_hash_table_insert(client->subscriptions, GUINT_TO_POINTER(subscription->id), subscription);
        return subscription->id;
}

gboolean deb_client_unsubscribe(DebClient *client, guint subscription_id)
{
        DebSubscription *subscription;
        DebPatternEntry *entry;

        g_return_val_if_fail(client != NULL, FALSE);

        subscription = g_hash_table_lookup(client->subscriptions, GUINT_TO_POINTER(subscription_id));
        if (!subscription)
                return FALSE;
        g_hash_table_remove(client->subscriptions, GUINT_TO_POINTER(subscription_id));
        subscription->removed = TRUE;

        entry = subscription->entry;
        g_ptr_array_remove(entry->subscriptions, subscription);
        if (entry->subscriptions->len == 0) {
                g_autoptr(GError) error = NULL;

                if (entry->in_trie)
                        deb_topic_trie_remove(client->trie, entry->pattern, entry);
                if (!entry->refused && deb_client_io_is_open(client) &&
                    !client_send_patterns(client, DEB_REQUEST_UNSUBSCRIBE, NULL, entry->pattern, &error))
                        /* Only costs unwanted deliveries, which the local match drops. */
                        g_debug("%s", error->message);
                g_hash_table_remove(client->patterns, entry->pattern);
        }

        if (subscription->destroy)
                subscription->destroy(subscription->user_data);
        deb_client_subscription_unref(subscription);
        return TRUE;
}

static gboolean message_type_is_publishable(int message_type)
{
        switch (message_type) {
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_EVENT:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_CONTROL:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HEARTBEAT:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_REQUEST:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_RESPONSE:
                return TRUE;
        default:
                return FALSE;
        }
}

gboolean deb_client_publish(DebClient *client, const char *topic, const void *payload, gsize payload_len,
                            const DebPublishOptions *options, GError **error)
{
        static const DebPublishOptions no_options = {0};
        Daemoneye__Eventbus__CorrelationMetadata__TagsEntry stack_tags[DEB_CLIENT_STACK_TAGS];
        Daemoneye__Eventbus__CorrelationMetadata__TagsEntry *stack_tag_ptrs[DEB_CLIENT_STACK_TAGS];
        g_autofree Daemoneye__Eventbus__CorrelationMetadata__TagsEntry *heap_tags = NULL;
        g_autofree Daemoneye__Eventbus__CorrelationMetadata__TagsEntry **heap_tag_ptrs = NULL;
        DebCorrelation correlation = DAEMONEYE__EVENTBUS__CORRELATION_METADATA__INIT;
        DebEnvelope envelope = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        char fresh_id[DEB_UUID_STRING_LEN + 1];
        int message_type;
        gsize n_tags = 0;

        g_return_val_if_fail(client != NULL, FALSE);
        g_return_val_if_fail(payload != NULL || payload_len == 0, FALSE);
        g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

        if (!options)
                options = &no_options;

        if (!deb_client_io_is_open(client)) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_CLOSED, "client %s: cannot publish to '%s': %s",
                            client->id, topic ? topic : "(null)",
                            client->close_error ? client->close_error->message : "not connected");
                return FALSE;
        }
        if (!deb_topic_validate(topic, error)) {
                g_prefix_error(error, "client %s: cannot publish: ", client->id);
                return FALSE;
        }
        message_type = options->message_type ? options->message_type
                                             : DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_EVENT;
        if (!message_type_is_publishable(message_type)) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_PROTOCOL,
                            "client %s: cannot publish to '%s': message type %d (%s) is reserved for the "
                            "protocol",
                            client->id, topic, message_type, deb_message_type_to_string(message_type));
                return FALSE;
        }

        if (options->tags) {
                Daemoneye__Eventbus__CorrelationMetadata__TagsEntry *tags = stack_tags;
                Daemoneye__Eventbus__CorrelationMetadata__TagsEntry **tag_ptrs = stack_tag_ptrs;

                while (options->tags[n_tags * 2]) {
                        if (!options->tags[n_tags * 2 + 1]) {
                                g_set_error(error, DEB_ERROR, DEB_ERROR_MALFORMED,
                                            "client %s: cannot publish to '%s': tag '%s' has no value",
                                            client->id, topic, options->tags[n_tags * 2]);
                                return FALSE;
                        }
                        n_tags++;
                }
                if (n_tags > DEB_CLIENT_STACK_TAGS) {
                        tags = heap_tags =
                                g_new(Daemoneye__Eventbus__CorrelationMetadata__TagsEntry, n_tags);
                        tag_ptrs = heap_tag_ptrs =
                                g_new(Daemoneye__Eventbus__CorrelationMetadata__TagsEntry *, n_tags);
                }
                for (gsize i = 0; i < n_tags; i++) {
                        daemoneye__eventbus__correlation_metadata__tags_entry__init(&tags[i]);
                        tags[i].key = (char *)options->tags[i * 2];
                        tags[i].value = (char *)options->tags[i * 2 + 1];
                        tag_ptrs[i] = &tags[i];
                }
                correlation.n_tags = n_tags;
                correlation.tags = tag_ptrs;
        }

        if (options->correlation_id) {
                correlation.correlation_id = (char *)options->correlation_id;
        } else {
                deb_client_new_uuid(client, fresh_id);
                correlation.correlation_id = fresh_id;
        }
        if (options->parent_correlation_id)
                correlation.parent_correlation_id = (char *)options->parent_correlation_id;
        /* The parent's own root is unknown here; its id is right for one level of nesting. */
        correlation.root_correlation_id =
                (char *)(options->root_correlation_id     ? options->root_correlation_id
                         : options->parent_correlation_id ? options->parent_correlation_id
                                                          : correlation.correlation_id);
        correlation.sequence_number = client->sequence + 1;
        if (options->workflow_stage)
                correlation.workflow_stage = (char *)options->workflow_stage;

        envelope.topic = (char *)topic;
        envelope.message_type = (Daemoneye__Eventbus__MessageType)message_type;
        envelope.correlation = &correlation;
        if (options->payload_type)
                envelope.payload_type = (char *)options->payload_type;
        envelope.payload.data = (uint8_t *)payload;
        envelope.payload.len = payload_len;
        envelope.timestamp_us = (uint64_t)g_get_real_time();
        envelope.sender = client->id;

        if (!client_queue_envelope(client, &envelope, error)) {
                g_prefix_error(error, "client %s: cannot publish to '%s': ", client->id, topic);
                return FALSE;
        }
        client->sequence++;
        client->stats.published++;
        return TRUE;
}
