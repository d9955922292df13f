/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include "daemoneye-eventbus.h"

G_BEGIN_DECLS

/*
 * A broker connection driven by hand: frames are written and read exactly as
 * the test says, so it can send what no well-behaved client would (no Hello,
 * garbage, oversize headers, wildcard publishes) and see precisely what the
 * broker answers, frame by frame. Blocking I/O with deadlines, no main loop.
 */
typedef struct _RawConn RawConn;

/* The generated enum names are long; tests name a type or code many times. */
#define RAW_MT(name) DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_##name
#define RAW_EC(name) DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_##name

/* A decoded Error frame. */
typedef struct {
        int code; /* ERROR_CODE_* of eventbus.proto */
        gboolean fatal;
        char *message;
        char *correlation_id; /* of the Error envelope; "" if none */
} RawError;

void raw_error_clear(RawError *e);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RawError, raw_error_clear)

/** raw_conn_connect: Returns: (transfer full) a connected socket, or NULL with #DEB_ERROR_IO. */
RawConn *raw_conn_connect(const char *socket_path, GError **error);
void raw_conn_free(RawConn *conn);

/** raw_conn_write: writes all of @data; a closed peer is #DEB_ERROR_CLOSED (no SIGPIPE). */
gboolean raw_conn_write(RawConn *conn, const void *data, gsize len, GError **error);

/**
 * raw_conn_send:
 * @topic: (nullable) envelope topic
 * @correlation_id: (nullable) correlation id; NULL makes one up
 * @payload: (nullable) a control message packed as the payload (payload_type is its full name)
 * @data: (nullable) raw payload bytes, used when @payload is NULL
 *
 * Encodes one Envelope with the library's frame encoder and writes it.
 */
gboolean raw_conn_send(RawConn *conn, int message_type, const char *topic, const char *correlation_id,
                       const ProtobufCMessage *payload, const void *data, gsize data_len, GError **error);

/** raw_conn_send_hello: sends Hello{@client_id, DEB_PROTOCOL_VERSION}. */
gboolean raw_conn_send_hello(RawConn *conn, const char *client_id, GError **error);

/**
 * raw_conn_handshake:
 *
 * Hello, then waits for Welcome. An Error frame fails with #DEB_ERROR_REFUSED
 * naming its code and message.
 */
gboolean raw_conn_handshake(RawConn *conn, const char *client_id, guint timeout_ms, GError **error);

/** raw_conn_publish: an Event of raw bytes on @topic (not validated here). */
gboolean raw_conn_publish(RawConn *conn, const char *topic, const void *data, gsize len, GError **error);

/** raw_conn_subscribe: sends Subscribe{@patterns} with @correlation_id; does not wait for the Ack. */
gboolean raw_conn_subscribe(RawConn *conn, const char *const *patterns, const char *correlation_id,
                            GError **error);

/**
 * raw_conn_read:
 *
 * Returns: (transfer none) the next envelope, valid until the next read; NULL
 *   with #DEB_ERROR_TIMEOUT after @timeout_ms, #DEB_ERROR_CLOSED on EOF, or the
 *   decoder's error (#DEB_ERROR_FRAME_TOO_LARGE, #DEB_ERROR_MALFORMED).
 */
const DebEnvelope *raw_conn_read(RawConn *conn, guint timeout_ms, GError **error);

/** raw_conn_expect_ack: the next frame must be an Ack carrying @correlation_id. */
gboolean raw_conn_expect_ack(RawConn *conn, const char *correlation_id, guint timeout_ms, GError **error);

/** raw_conn_expect_error: the next frame must be an Error; decoded into @out. */
gboolean raw_conn_expect_error(RawConn *conn, guint timeout_ms, RawError *out, GError **error);

/**
 * raw_conn_expect_eof:
 *
 * The broker must close the connection within @timeout_ms without sending
 * anything more.
 */
gboolean raw_conn_expect_eof(RawConn *conn, guint timeout_ms, GError **error);

/** raw_error_code_to_string: "HANDSHAKE_TIMEOUT", … for messages. */
const char *raw_error_code_to_string(int code);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(RawConn, raw_conn_free)

G_END_DECLS
