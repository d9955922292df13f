/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What each frame from the broker means to the client: Welcome ends the
 * handshake, Ack and Error answer requests, everything else is a message
 * handed to the matching subscriptions.
 */
#include <stdarg.h>

#include "deb-client-private.h"
#include "deb-error.h"
#include "deb-topic.h"

static const char *broker_error_code_to_string(int code)
{
        static const char *const names[] = {
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_UNSPECIFIED] = "unspecified error",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_PROTOCOL] = "protocol error",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_MALFORMED] = "malformed frame",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_FRAME_TOO_LARGE] = "frame too large",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_INVALID_TOPIC] = "invalid topic",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_INVALID_PATTERN] = "invalid pattern",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_TOO_MANY_CLIENTS] = "too many clients",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_TOO_MANY_SUBSCRIPTIONS] =
                        "too many subscriptions",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_HANDSHAKE_TIMEOUT] = "handshake timeout",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_VERSION] = "unsupported protocol version",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_PERMISSION_DENIED] = "permission denied",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_SHUTTING_DOWN] = "broker shutting down",
                [DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_QUEUE_FULL] = "queue or limit full",
        };

        if (code >= 0 && (gsize)code < G_N_ELEMENTS(names) && names[code])
                return names[code];
        return "unknown error code";
}

/* "why (code)", or just the code when the broker gave no text. */
static char *broker_error_describe(const Daemoneye__Eventbus__Error *error)
{
        const char *code = broker_error_code_to_string(error->code);

        if (!error->message || !*error->message)
                return g_strdup(code);
        return g_strdup_printf("%s (%s)", error->message, code);
}

G_GNUC_PRINTF(3, 4)
static void client_fail(DebClient *client, DebError code, const char *format, ...)
{
        va_list args;
        GError *error;

        va_start(args, format);
        error = g_error_new_valist(DEB_ERROR, code, format, args);
        va_end(args);
        deb_client_io_close(client, error);
}

static ProtobufCMessage *client_unpack_control(DebClient *client, const DebEnvelope *envelope,
                                               const char *payload_type,
                                               const ProtobufCMessageDescriptor *desc)
{
        g_autoptr(GError) error = NULL;
        ProtobufCMessage *message;

        if (g_strcmp0(envelope->payload_type, payload_type) != 0) {
                client_fail(client, DEB_ERROR_PROTOCOL,
                            "client %s: %s sent a %s frame with payload type '%s', expected '%s'",
                            client->id, client->peer_name,
                            deb_message_type_to_string(envelope->message_type), envelope->payload_type,
                            payload_type);
                return NULL;
        }
        message = deb_unpacker_message(client->unpacker, desc, envelope->payload.data, envelope->payload.len,
                                       &error);
        if (!message) {
                g_prefix_error(&error, "client %s: %s frame from %s: ", client->id,
                               deb_message_type_to_string(envelope->message_type), client->peer_name);
                deb_client_io_close(client, g_steal_pointer(&error));
        }
        return message;
}

static const char *envelope_correlation_id(const DebEnvelope *envelope)
{
        return envelope->correlation ? envelope->correlation->correlation_id : "";
}

static void client_handle_welcome(DebClient *client, const DebEnvelope *envelope)
{
        const Daemoneye__Eventbus__Welcome *welcome;
        DebClientConnectFunc func;
        gpointer data;

        welcome = (const Daemoneye__Eventbus__Welcome *)client_unpack_control(
                client, envelope, DEB_PAYLOAD_TYPE_WELCOME, &daemoneye__eventbus__welcome__descriptor);
        if (!welcome)
                return;

        client->broker_frame_bytes = (gsize)welcome->max_frame_bytes;
        client->state = DEB_CLIENT_CONNECTED;
        func = client->connect_func;
        data = client->connect_data;
        client->connect_func = NULL;
        client->connect_data = NULL;
        if (func)
                func(client, NULL, data);
}

static void client_report_request_error(DebClient *client, GError *error)
{
        g_autoptr(GError) owned = error;

        /* Exactly one listener hears of a refusal: a waiting deb_client_sync(), else the error func. */
        if (client->sync_waiters > 0) {
                if (!client->request_error)
                        client->request_error = g_steal_pointer(&owned);
        } else if (client->error_func) {
                client->error_func(client, owned, FALSE, client->error_data);
        } else {
                g_debug("%s", owned->message);
        }
}

static void client_handle_error(DebClient *client, const DebEnvelope *envelope)
{
        const Daemoneye__Eventbus__Error *broker_error;
        g_autofree char *why = NULL;
        const char *correlation_id = envelope_correlation_id(envelope);
        DebRequest *request;

        broker_error = (const Daemoneye__Eventbus__Error *)client_unpack_control(
                client, envelope, DEB_PAYLOAD_TYPE_ERROR, &daemoneye__eventbus__error__descriptor);
        if (!broker_error)
                return;
        why = broker_error_describe(broker_error);

        /* The broker closes after a fatal Error, and any Error ends a handshake. */
        if (broker_error->fatal || client->state != DEB_CLIENT_CONNECTED) {
                client_fail(client, DEB_ERROR_REFUSED, "client %s: %s %s: %s", client->id, client->peer_name,
                            client->state == DEB_CLIENT_CONNECTED ? "closed the connection"
                                                                  : "refused the connection",
                            why);
                return;
        }

        request = *correlation_id ? g_hash_table_lookup(client->requests, correlation_id) : NULL;
        if (!request) {
                g_autoptr(GError) error = g_error_new(DEB_ERROR, DEB_ERROR_REFUSED, "client %s: %s: %s",
                                                      client->id, client->peer_name, why);

                /* A refused RPC request fails its call rather than reaching the error callback. */
                if (*correlation_id && client->rpc_hooks.refused &&
                    client->rpc_hooks.refused(client, correlation_id, error, client->rpc_data))
                        return;
                if (client->error_func)
                        client->error_func(client, error, FALSE, client->error_data);
                return;
        }

        if (request->kind == DEB_REQUEST_SUBSCRIBE) {
                DebPatternEntry *entry = g_hash_table_lookup(client->patterns, request->pattern);

                /* Quiet its callbacks: other patterns' deliveries would otherwise reach them. */
                if (entry && g_strcmp0(entry->subscribe_id, correlation_id) == 0) {
                        if (entry->in_trie)
                                deb_topic_trie_remove(client->trie, entry->pattern, entry);
                        entry->in_trie = FALSE;
                        entry->refused = TRUE;
                        g_clear_pointer(&entry->subscribe_id, g_free);
                }
        }
        client_report_request_error(
                client, g_error_new(DEB_ERROR, DEB_ERROR_REFUSED, "client %s: %s refused %s '%s': %s",
                                    client->id, client->peer_name,
                                    request->kind == DEB_REQUEST_SUBSCRIBE ? "subscription to"
                                                                           : "unsubscription from",
                                    request->pattern, why));
        g_hash_table_remove(client->requests, correlation_id);
}

static void client_handle_ack(DebClient *client, const DebEnvelope *envelope)
{
        const char *correlation_id = envelope_correlation_id(envelope);
        DebRequest *request = g_hash_table_lookup(client->requests, correlation_id);

        if (!request) {
                g_debug("client %s: Ack for unknown request '%s' ignored", client->id, correlation_id);
                return;
        }
        if (request->kind == DEB_REQUEST_SUBSCRIBE) {
                DebPatternEntry *entry = g_hash_table_lookup(client->patterns, request->pattern);

                if (entry && g_strcmp0(entry->subscribe_id, correlation_id) == 0)
                        g_clear_pointer(&entry->subscribe_id, g_free);
        }
        g_hash_table_remove(client->requests, correlation_id);
}

static void client_collect_entry(gpointer value, gpointer user_data)
{
        DebPatternEntry *entry = value;
        DebClient *client = user_data;

        for (guint i = 0; i < entry->subscriptions->len; i++) {
                DebSubscription *subscription = entry->subscriptions->pdata[i];

                subscription->ref_count++;
                g_ptr_array_add(client->deliveries, subscription);
        }
}

static void client_deliver(DebClient *client, const DebEnvelope *envelope)
{
        g_autoptr(GError) error = NULL;
        guint generation = client->generation;
        guint n;

        if (!deb_topic_validate(envelope->topic, &error)) {
                client_fail(client, DEB_ERROR_PROTOCOL,
                            "client %s: %s delivered a message with a bad topic: %s", client->id,
                            client->peer_name, error->message);
                return;
        }

        /* The broker sends a message once per connection; each matching subscription gets it. */
        g_ptr_array_set_size(client->deliveries, 0);
        deb_topic_trie_match(client->trie, envelope->topic, client_collect_entry, client);
        n = client->deliveries->len;
        if (n == 0)
                return;
        client->stats.received++;

        /* Callbacks may unsubscribe, close or drop the client; references keep the list valid. */
        for (guint i = 0; i < n; i++) {
                DebSubscription *subscription = client->deliveries->pdata[i];

                if (subscription->removed || client->generation != generation ||
                    deb_client_is_abandoned(client))
                        continue;
                subscription->func(client, envelope, subscription->user_data);
        }
        for (guint i = 0; i < n; i++)
                deb_client_subscription_unref(client->deliveries->pdata[i]);
        g_ptr_array_set_size(client->deliveries, 0);
}

/**
 * deb_client_handle_envelope:
 *
 * Acts on one decoded frame from the broker. May close the client and may run
 * any callback.
 */
void deb_client_handle_envelope(DebClient *client, const DebEnvelope *envelope)
{
        int type = envelope->message_type;

        if (client->state == DEB_CLIENT_HANDSHAKE &&
            type != DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_WELCOME &&
            type != DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ERROR) {
                client_fail(client, DEB_ERROR_PROTOCOL, "client %s: %s sent a %s frame before Welcome",
                            client->id, client->peer_name, deb_message_type_to_string(type));
                return;
        }

        switch (type) {
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_WELCOME:
                if (client->state != DEB_CLIENT_HANDSHAKE) {
                        client_fail(client, DEB_ERROR_PROTOCOL, "client %s: %s sent a second Welcome",
                                    client->id, client->peer_name);
                        return;
                }
                client_handle_welcome(client, envelope);
                return;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ERROR:
                client_handle_error(client, envelope);
                return;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ACK:
                client_handle_ack(client, envelope);
                return;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_UNSPECIFIED:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HELLO:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_SUBSCRIBE:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_UNSUBSCRIBE:
                client_fail(client, DEB_ERROR_PROTOCOL,
                            "client %s: %s sent a %s frame, which only clients send", client->id,
                            client->peer_name, deb_message_type_to_string(type));
                return;
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_RESPONSE:
                if (client->rpc_hooks.response) {
                        client->stats.received++;
                        client->rpc_hooks.response(client, envelope, client->rpc_data);
                        return;
                }
                client_deliver(client, envelope);
                return;
        default:
                client_deliver(client, envelope);
                return;
        }
}

/**
 * deb_client_unpack_payload:
 * @envelope: the envelope being handled, decoded by this client
 *
 * Decodes a payload into the client's arena, beside its envelope.
 * Returns: (transfer none) the message, valid as long as @envelope; %NULL
 *   with #DEB_ERROR_MALFORMED.
 */
ProtobufCMessage *deb_client_unpack_payload(DebClient *client, const DebEnvelope *envelope,
                                            const ProtobufCMessageDescriptor *desc, GError **error)
{
        return deb_unpacker_message(client->unpacker, desc, envelope->payload.data, envelope->payload.len,
                                    error);
}
