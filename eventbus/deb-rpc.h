/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include "eventbus.pb-c.h"

G_BEGIN_DECLS

/*
 * What both ends of an RPC (and the broker between them) agree on: the
 * topics requests and replies travel on, the names of operations, statuses,
 * error kinds and categories, the DEB_RPC_ERROR domain, and building error
 * replies.
 *
 *   request  Envelope RPC_REQUEST on deb_rpc_request_topic(target, operation),
 *            payload_type DEB_RPC_REQUEST_TYPE, payload a packed RpcRequest
 *            whose correlation_id is the envelope's correlation id;
 *   reply    Envelope RPC_RESPONSE on "response.<correlation_id>", payload_type
 *            DEB_RPC_RESPONSE_TYPE, the same correlation id. The broker delivers
 *            it only to the connection that sent the request.
 */

typedef Daemoneye__Eventbus__RpcRequest DebRpcRequest;
typedef Daemoneye__Eventbus__RpcResponse DebRpcResponse;
typedef Daemoneye__Eventbus__RpcErrorDetails DebRpcErrorDetails;
typedef Daemoneye__Eventbus__RpcOperation DebRpcOperation;
typedef Daemoneye__Eventbus__RpcStatus DebRpcStatus;
typedef Daemoneye__Eventbus__ErrorKind DebRpcErrorKind;
typedef Daemoneye__Eventbus__ErrorCategory DebRpcErrorCategory;

#define DEB_RPC_REQUEST_TYPE "daemoneye.eventbus.RpcRequest"
#define DEB_RPC_RESPONSE_TYPE "daemoneye.eventbus.RpcResponse"
/* First level of every reply topic. */
#define DEB_RPC_RESPONSE_LEVEL "response"

/**
 * DEB_RPC_ERROR:
 *
 * Error domain of RPC outcomes. The first seven codes are the wire's
 * ErrorKind, value for value (deb_rpc_error_from_kind()), so a failure reads
 * the same whether the service, the broker or the client found it; the
 * others arise in the client only.
 */
#define DEB_RPC_ERROR (deb_rpc_error_quark())
GQuark deb_rpc_error_quark(void);

typedef enum {
        DEB_RPC_ERROR_FAILED,            /* ERROR_KIND_UNSPECIFIED: an error nobody classified */
        DEB_RPC_ERROR_TIMEOUT,           /* no reply by the deadline, status TIMEOUT, or kind TIMEOUT */
        DEB_RPC_ERROR_NOT_FOUND,         /* no collector serves the target */
        DEB_RPC_ERROR_INVALID_OPERATION, /* not allowed in the target's current state */
        DEB_RPC_ERROR_EXECUTION,         /* the operation ran and failed */
        DEB_RPC_ERROR_COMMUNICATION,     /* the request or its reply was lost on the way */
        DEB_RPC_ERROR_INVALID_ARGUMENT,  /* the payload failed validation; nothing was executed */
        DEB_RPC_ERROR_CIRCUIT_OPEN,      /* the target's circuit breaker refuses calls for now */
        DEB_RPC_ERROR_LIMIT,             /* too many calls pending in this client (max_pending) */
        DEB_RPC_ERROR_REFUSED,           /* the broker refused to forward the request (its
                                          * rpc.max_pending_requests, a duplicate correlation id…);
                                          * the message is the broker's */
        DEB_RPC_ERROR_PROTOCOL,          /* a reply that does not decode or does not fit its request */
        DEB_RPC_ERROR_CANCELLED,         /* deb_rpc_client_cancel(), or the client was freed */
} DebRpcError;

/** deb_rpc_error_from_kind: Returns: the DEB_RPC_ERROR code of a wire ErrorKind (FAILED for unknown ones).
 */
DebRpcError deb_rpc_error_from_kind(DebRpcErrorKind kind);

/**
 * deb_rpc_error_to_kind:
 *
 * Returns: the ErrorKind to put on the wire for @code; the client-only codes
 *   map to COMMUNICATION_ERROR (LIMIT, REFUSED, PROTOCOL, CIRCUIT_OPEN,
 *   CANCELLED: the request never got an answer from the target).
 */
DebRpcErrorKind deb_rpc_error_to_kind(DebRpcError code);

/*
 * Names, lower case with dashes ("health-check", "in-progress"), as logs, the
 * audit log and the command line spell them. *_to_string() return "unknown"
 * for values outside the enum; *_from_string() accept any case, '-' or '_'
 * (so "HealthCheck", "health_check" and "health-check" all parse) and never
 * the UNSPECIFIED zero.
 */
const char *deb_rpc_operation_to_string(DebRpcOperation operation);
gboolean deb_rpc_operation_from_string(const char *s, DebRpcOperation *out);
const char *deb_rpc_status_to_string(DebRpcStatus status);
gboolean deb_rpc_status_from_string(const char *s, DebRpcStatus *out);
const char *deb_rpc_error_kind_to_string(DebRpcErrorKind kind);
gboolean deb_rpc_error_kind_from_string(const char *s, DebRpcErrorKind *out);
const char *deb_rpc_error_category_to_string(DebRpcErrorCategory category);
gboolean deb_rpc_error_category_from_string(const char *s, DebRpcErrorCategory *out);

/** deb_rpc_operation_is_valid: Returns: %TRUE for START..RESUME (not UNSPECIFIED, not unknown values). */
gboolean deb_rpc_operation_is_valid(DebRpcOperation operation);

/**
 * deb_rpc_target_validate:
 *
 * A target (collector id) is one topic level: 1..64 bytes of [A-Za-z0-9_-].
 * Returns: %TRUE if @target is one, else %FALSE with #DEB_RPC_ERROR_INVALID_ARGUMENT.
 */
gboolean deb_rpc_target_validate(const char *target, GError **error);

/**
 * deb_rpc_request_topic:
 *
 * The one place that maps an operation to its topic:
 * "control.collector.config.<target>" for UPDATE_CONFIG,
 * "control.shutdown.<target>" for GRACEFUL_SHUTDOWN and FORCE_SHUTDOWN,
 * "control.collector.<target>" for every other operation. Separate topics let
 * an ACL grant configuration or shutdown rights apart from the rest.
 * Returns: (transfer full) the topic, or %NULL with #DEB_RPC_ERROR_INVALID_ARGUMENT
 *   for a bad target or an invalid operation.
 */
char *deb_rpc_request_topic(const char *target, DebRpcOperation operation, GError **error);

/**
 * deb_rpc_response_topic:
 *
 * Returns: (transfer full) "response.<correlation_id>", or %NULL with
 *   #DEB_RPC_ERROR_INVALID_ARGUMENT when the id is not one topic level.
 */
char *deb_rpc_response_topic(const char *correlation_id, GError **error);

/**
 * deb_rpc_response_topic_get_id:
 *
 * Returns: (transfer none) the correlation id inside @topic, a pointer into
 *   it, when @topic is exactly "response.<one level>"; %NULL otherwise.
 */
const char *deb_rpc_response_topic_get_id(const char *topic);

/**
 * deb_rpc_payload_fits_operation:
 *
 * Whether a request payload of @payload_case may accompany @operation:
 * lifecycle for START, STOP, RESTART, PAUSE and RESUME; config_update for
 * UPDATE_CONFIG; shutdown for the two shutdowns; none for HEALTH_CHECK and
 * GET_CAPABILITIES. No payload always fits here: whether an operation
 * requires one is the service's decision.
 * Returns: %TRUE if it fits.
 */
gboolean deb_rpc_payload_fits_operation(DebRpcOperation operation,
                                        Daemoneye__Eventbus__RpcRequest__PayloadCase payload_case);

/**
 * deb_rpc_response_to_error:
 * @response: a decoded reply
 *
 * Reads the outcome of @response: SUCCESS and IN_PROGRESS are successes;
 * ERROR maps its error kind to a DEB_RPC_ERROR code, TIMEOUT to
 * #DEB_RPC_ERROR_TIMEOUT; UNSPECIFIED and unknown statuses are
 * #DEB_RPC_ERROR_PROTOCOL. The message is the reply's own, with its code.
 * Returns: %TRUE on success, else %FALSE with @error set.
 */
gboolean deb_rpc_response_to_error(const DebRpcResponse *response, GError **error);

/**
 * deb_rpc_response_new_error:
 * @code: (nullable) the stable dotted identifier ("rpc.no_collector")
 * @format: the human-readable message: what failed, on what, and why
 *
 * Builds an ERROR reply (TIMEOUT when @kind is ERROR_KIND_TIMEOUT) with no
 * payload and execution_time_us 0.
 * Returns: (transfer full) the reply; free with deb_rpc_response_free().
 */
DebRpcResponse *deb_rpc_response_new_error(const char *correlation_id, DebRpcErrorKind kind,
                                           DebRpcErrorCategory category, const char *code,
                                           const char *format, ...) G_GNUC_PRINTF(5, 6);

/**
 * deb_rpc_response_new_from_error:
 * @error: a failure; DEB_RPC_ERROR codes keep their kind, other domains are EXECUTION_ERROR
 *
 * For a service turning its GError into a reply.
 * Returns: (transfer full) the reply; free with deb_rpc_response_free().
 */
DebRpcResponse *deb_rpc_response_new_from_error(const char *correlation_id, const GError *error,
                                                DebRpcErrorCategory category);

/** deb_rpc_response_free: frees a reply made here (not one decoded by protobuf-c, nor one in an arena). */
void deb_rpc_response_free(DebRpcResponse *response);

/** deb_rpc_response_pack: Returns: (transfer full) @response encoded, ready to be an envelope payload. */
GBytes *deb_rpc_response_pack(const DebRpcResponse *response);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DebRpcResponse, deb_rpc_response_free)

G_END_DECLS
