/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "eventbus.pb-c.h"
#include "proc-scan.h"

G_BEGIN_DECLS

/*
 * proc-proto: ProcInfo to the wire's ProcessInfo, and packing.
 *
 * The messages built point into the ProcInfo they describe and into scratch
 * space owned here (argument vectors, strings repaired to UTF-8), all valid
 * until the next proc_proto_reset(). Command lines and names come from other
 * users' processes and may hold any bytes; a proto3 string must be UTF-8,
 * so invalid sequences are replaced (U+FFFD) rather than sent broken.
 */

typedef struct _ProcProto ProcProto;

/**
 * proc_proto_new:
 *
 * Returns (transfer full) empty scratch space and pack buffer.
 */
ProcProto *proc_proto_new(void);

/**
 * proc_proto_free:
 *
 * Frees the scratch space and the pack buffer.
 */
void proc_proto_free(ProcProto *proto);

/**
 * proc_proto_reset:
 *
 * Releases the scratch space of the messages built so far.
 */
void proc_proto_reset(ProcProto *proto);

/**
 * proc_proto_text:
 *
 * Returns @text when it is valid UTF-8, else a repaired copy valid until the
 * next reset.
 */
const char *proc_proto_text(ProcProto *proto, const char *text);

/**
 * proc_proto_fill_info:
 * @out: (out caller-allocates): initialized here
 *
 * Describes @info as a ProcessInfo message.
 */
void proc_proto_fill_info(ProcProto *proto, const ProcInfo *info, Daemoneye__Eventbus__ProcessInfo *out);

/**
 * proc_proto_pack:
 * @len: (out): size of the packed message
 *
 * Returns (transfer none) @message packed into a buffer reused by the next
 * call.
 */
const guint8 *proc_proto_pack(ProcProto *proto, const ProtobufCMessage *message, gsize *len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcProto, proc_proto_free)

G_END_DECLS
