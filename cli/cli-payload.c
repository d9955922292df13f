/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generic protobuf-c → JSON, for the messages of our own schema only: the
 * CLI shows what collectors publish without knowing each message.
 */
#include <string.h>

#include "cli-payload.h"

static const ProtobufCMessageDescriptor *const known_payloads[] = {
        &daemoneye__eventbus__process_lifecycle_event__descriptor,
        &daemoneye__eventbus__process_metadata_event__descriptor,
        &daemoneye__eventbus__process_tree_event__descriptor,
        &daemoneye__eventbus__process_integrity_event__descriptor,
        &daemoneye__eventbus__process_batch__descriptor,
        &daemoneye__eventbus__process_info__descriptor,
        &daemoneye__eventbus__heartbeat__descriptor,
        &daemoneye__eventbus__rpc_request__descriptor,
        &daemoneye__eventbus__rpc_response__descriptor,
};

const ProtobufCMessageDescriptor *cli_payload_descriptor(const char *payload_type)
{
        if (!payload_type || !*payload_type)
                return NULL;
        for (gsize i = 0; i < G_N_ELEMENTS(known_payloads); i++)
                if (strcmp(known_payloads[i]->name, payload_type) == 0)
                        return known_payloads[i];
        return NULL;
}

static void add_message(JsonBuilder *builder, const ProtobufCMessage *message);

/* One value of @field at @member (a pointer to the scalar, string pointer, bytes or message pointer). */
static void add_value(JsonBuilder *builder, const ProtobufCFieldDescriptor *field, const void *member)
{
        switch (field->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
                json_builder_add_int_value(builder, *(const int32_t *)member);
                break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
                json_builder_add_int_value(builder, *(const uint32_t *)member);
                break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
                json_builder_add_int_value(builder, *(const int64_t *)member);
                break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64: {
                uint64_t v = *(const uint64_t *)member;

                /* JSON numbers above 2^63 do not fit gint64; such values (never ours) go as text. */
                if (v > G_MAXINT64) {
                        g_autofree char *text = g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)v);

                        json_builder_add_string_value(builder, text);
                } else {
                        json_builder_add_int_value(builder, (gint64)v);
                }
                break;
        }
        case PROTOBUF_C_TYPE_FLOAT:
                json_builder_add_double_value(builder, *(const float *)member);
                break;
        case PROTOBUF_C_TYPE_DOUBLE:
                json_builder_add_double_value(builder, *(const double *)member);
                break;
        case PROTOBUF_C_TYPE_BOOL:
                json_builder_add_boolean_value(builder, *(const protobuf_c_boolean *)member);
                break;
        case PROTOBUF_C_TYPE_ENUM: {
                int v = *(const int *)member;
                const ProtobufCEnumValue *value = protobuf_c_enum_descriptor_get_value(
                        (const ProtobufCEnumDescriptor *)field->descriptor, v);

                if (value)
                        json_builder_add_string_value(builder, value->name);
                else
                        json_builder_add_int_value(builder, v);
                break;
        }
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *)member;

                json_builder_add_string_value(builder, s ? s : "");
                break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
                const ProtobufCBinaryData *b = member;
                g_autofree char *encoded = g_base64_encode(b->data, b->len);

                json_builder_add_string_value(builder, encoded);
                break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;

                if (sub)
                        add_message(builder, sub);
                else
                        json_builder_add_null_value(builder);
                break;
        }
        default:
                json_builder_add_null_value(builder);
                break;
        }
}

static gsize value_size(const ProtobufCFieldDescriptor *field)
{
        switch (field->type) {
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
                return sizeof(uint64_t);
        case PROTOBUF_C_TYPE_DOUBLE:
                return sizeof(double);
        case PROTOBUF_C_TYPE_BOOL:
                return sizeof(protobuf_c_boolean);
        case PROTOBUF_C_TYPE_ENUM:
                return sizeof(int);
        case PROTOBUF_C_TYPE_STRING:
                return sizeof(char *);
        case PROTOBUF_C_TYPE_BYTES:
                return sizeof(ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
                return sizeof(ProtobufCMessage *);
        default:
                return sizeof(uint32_t);
        }
}

/* Proto3 semantics: a scalar at its default was not sent; leave it out, as protobuf's JSON mapping does. */
static gboolean is_default(const ProtobufCFieldDescriptor *field, const void *member)
{
        switch (field->type) {
        case PROTOBUF_C_TYPE_STRING: {
                const char *s = *(char *const *)member;

                return !s || !*s;
        }
        case PROTOBUF_C_TYPE_BYTES:
                return ((const ProtobufCBinaryData *)member)->len == 0;
        case PROTOBUF_C_TYPE_MESSAGE:
                return *(ProtobufCMessage *const *)member == NULL;
        default: {
                static const guint8 zero[sizeof(ProtobufCBinaryData)];

                return memcmp(member, zero, value_size(field)) == 0;
        }
        }
}

static void add_message(JsonBuilder *builder, const ProtobufCMessage *message)
{
        const ProtobufCMessageDescriptor *desc = message->descriptor;

        json_builder_begin_object(builder);
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *field = &desc->fields[i];
                const guint8 *base = (const guint8 *)message;

                if (field->label == PROTOBUF_C_LABEL_REPEATED) {
                        size_t n = *(const size_t *)(base + field->quantifier_offset);
                        const guint8 *values = *(guint8 *const *)(base + field->offset);

                        if (n == 0)
                                continue;
                        json_builder_set_member_name(builder, field->name);
                        json_builder_begin_array(builder);
                        for (size_t k = 0; k < n; k++)
                                add_value(builder, field, values + k * value_size(field));
                        json_builder_end_array(builder);
                        continue;
                }
                if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                        /* Only the member the case names is set. */
                        if (*(const uint32_t *)(base + field->quantifier_offset) != field->id)
                                continue;
                } else if (is_default(field, base + field->offset)) {
                        continue;
                }
                json_builder_set_member_name(builder, field->name);
                add_value(builder, field, base + field->offset);
        }
        json_builder_end_object(builder);
}

JsonNode *cli_payload_to_json(const char *payload_type, const guint8 *data, gsize len)
{
        const ProtobufCMessageDescriptor *desc = cli_payload_descriptor(payload_type);
        g_autoptr(JsonBuilder) builder = NULL;
        ProtobufCMessage *message;
        JsonNode *node;

        if (!desc)
                return NULL;
        message = protobuf_c_message_unpack(desc, NULL, len, data);
        if (!message)
                return NULL;
        builder = json_builder_new();
        add_message(builder, message);
        node = json_builder_get_root(builder);
        protobuf_c_message_free_unpacked(message, NULL);
        return node;
}
