/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <systemd/sd-bus.h>

G_BEGIN_DECLS

/*
 * D-Bus values as GVariants: every D-Bus signature is a GVariant type string,
 * so a reply read into a GVariant can be looked up (g_variant_lookup()),
 * printed and turned into JSON without sd-bus knowing its shape in advance.
 */

/**
 * cli_variant_from_message:
 *
 * Reads the whole body of @message (rewound first).
 * Returns: (transfer full) a tuple of its values, or %NULL with a
 *   #CLI_ERROR_FAILED error. A handle (h) keeps the message's fd number,
 *   which the variant does not own.
 */
GVariant *cli_variant_from_message(sd_bus_message *message, GError **error);

/**
 * cli_variant_append:
 *
 * Appends @value to @message as one D-Bus value of the same signature.
 * Returns: 0, or a negative errno (-EINVAL for a maybe or a handle, which this
 *   does not send).
 */
int cli_variant_append(sd_bus_message *message, GVariant *value);

/** cli_variant_append_items: appends each member of the tuple @tuple, in order. */
int cli_variant_append_items(sd_bus_message *message, GVariant *tuple);

/**
 * cli_variant_to_json:
 *
 * Variants become their contents, dictionaries objects (non-string keys
 * printed), other arrays and tuples arrays, numbers numbers (a uint64 above
 * G_MAXINT64 a double), a non-finite double null, strings, object paths and
 * signatures strings.
 * Returns: (transfer full) the JSON value.
 */
JsonNode *cli_variant_to_json(GVariant *value);

/**
 * cli_property_name_to_json:
 *
 * D-Bus property names in JSON keys the way scripts expect them:
 * "BrokerSocket" → "broker_socket", "Id" → "id", "LastHeartbeat" → "last_heartbeat".
 * Returns: (transfer full) the key.
 */
char *cli_property_name_to_json(const char *name);

/**
 * cli_properties_to_json:
 * @properties: an a{sv} from Properties.GetAll
 *
 * Returns: (transfer full) a JSON object of the properties, keys by
 *   cli_property_name_to_json().
 */
JsonNode *cli_properties_to_json(GVariant *properties);

/**
 * cli_variant_lookup_string / _uint64:
 *
 * Looks @key up in the a{sv} @dict, taking any string-like or unsigned-compatible
 * integer value (agents differ on u vs t).
 * Returns: the value, or @fallback when absent or of another type.
 */
const char *cli_variant_lookup_string(GVariant *dict, const char *key, const char *fallback);
guint64 cli_variant_lookup_uint64(GVariant *dict, const char *key, guint64 fallback);

/** cli_variant_get_uint64: Returns: an integer or boolean @value as a guint64 (negative: 0), else @fallback.
 */
guint64 cli_variant_get_uint64(GVariant *value, guint64 fallback);

G_END_DECLS
