/* SPDX-License-Identifier: Apache-2.0 */
#include "proc-proto.h"

struct _ProcProto {
        GPtrArray *scratch; /* g_free'd on reset */
        guint8 *buf;
        gsize buf_size;
};

ProcProto *proc_proto_new(void)
{
        ProcProto *proto = g_new0(ProcProto, 1);

        proto->scratch = g_ptr_array_new_with_free_func(g_free);
        return proto;
}

void proc_proto_free(ProcProto *proto)
{
        if (!proto)
                return;
        g_ptr_array_unref(proto->scratch);
        g_free(proto->buf);
        g_free(proto);
}

void proc_proto_reset(ProcProto *proto)
{
        g_ptr_array_set_size(proto->scratch, 0);
}

const char *proc_proto_text(ProcProto *proto, const char *text)
{
        char *valid;

        if (g_utf8_validate(text, -1, NULL))
                return text;
        valid = g_utf8_make_valid(text, -1);
        g_ptr_array_add(proto->scratch, valid);
        return valid;
}

void proc_proto_fill_info(ProcProto *proto, const ProcInfo *info, Daemoneye__Eventbus__ProcessInfo *out)
{
        GPtrArray *argv;

        daemoneye__eventbus__process_info__init(out);
        out->pid = (guint32)info->key.pid;
        out->ppid = (guint32)info->ppid;
        out->uid = info->uid;
        out->gid = info->gid;
        out->euid = info->euid;
        out->egid = info->egid;
        out->comm = (char *)proc_proto_text(proto, info->comm);
        out->exe = (char *)proc_proto_text(proto, info->exe);
        out->start_time_ticks = info->key.start_time_ticks;
        out->start_time_us = info->start_time_us;
        out->state = (char *)proc_proto_text(proto, info->state);
        out->rss_bytes = info->rss_bytes;
        out->utime_ticks = info->utime_ticks;
        out->stime_ticks = info->stime_ticks;
        out->cpu_time_us = info->cpu_time_us;
        out->threads = info->threads;
        out->exe_deleted = info->exe_deleted;
        out->kernel_thread = proc_info_is_kernel_thread(info);
        out->exe_sha256 = (char *)(info->exe_sha256 ? info->exe_sha256 : "");

        argv = g_ptr_array_new();
        out->n_cmdline = proc_info_cmdline_argv(info, argv);
        for (guint i = 0; i < argv->len; i++)
                argv->pdata[i] = (gpointer)proc_proto_text(proto, argv->pdata[i]);
        out->cmdline = (char **)argv->pdata;
        g_ptr_array_add(proto->scratch, g_ptr_array_free(argv, FALSE));
}

const guint8 *proc_proto_pack(ProcProto *proto, const ProtobufCMessage *message, gsize *len)
{
        gsize size = protobuf_c_message_get_packed_size(message);

        if (size > proto->buf_size) {
                proto->buf_size = MAX(size, 4096);
                g_free(proto->buf);
                proto->buf = g_malloc(proto->buf_size);
        }
        *len = protobuf_c_message_pack(message, proto->buf);
        return proto->buf;
}
