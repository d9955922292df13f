/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <json-glib/json-glib.h>

#include "deb-frame.h"

G_BEGIN_DECLS

/*
 * Payloads of the project's own schema (proto/eventbus.proto), shown as
 * JSON by `watch`: an envelope whose payload_type names one of its messages
 * ("daemoneye.eventbus.ProcessLifecycleEvent") is decoded field by field
 * from the descriptors, so procmond's events read as text, not base64.
 */

/**
 * cli_payload_descriptor:
 * Returns: (nullable) the message @payload_type names, if it is ours.
 */
const ProtobufCMessageDescriptor *cli_payload_descriptor(const char *payload_type);

/**
 * cli_payload_to_json:
 *
 * Returns: (transfer full) (nullable) an object with every field set in the
 *   payload (enums by name, bytes as base64, 64-bit integers as numbers), or
 *   %NULL when the payload type is not ours or the bytes do not decode.
 */
JsonNode *cli_payload_to_json(const char *payload_type, const guint8 *data, gsize len);

G_END_DECLS
