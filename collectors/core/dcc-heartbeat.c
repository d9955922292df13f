/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Heartbeats on control.health.heartbeat.<id>: every interval, and at once
 * on every state change so the agent need not wait an interval to see one.
 * The sequence number grows by one per heartbeat of this process, from 1;
 * a gap tells the agent heartbeats were lost, a restart at 1 a new process.
 */
#include "dcc-private.h"

void dcc_heartbeat_send(DccCollector *collector)
{
        Daemoneye__Eventbus__Heartbeat heartbeat = DAEMONEYE__EVENTBUS__HEARTBEAT__INIT;
        g_autoptr(GError) error = NULL;
        DebPublishOptions options = {
                .message_type = DCC_MT(HEARTBEAT),
                .payload_type = DCC_PAYLOAD_TYPE_HEARTBEAT,
        };
        guint8 buf[256];
        g_autofree guint8 *big = NULL;
        guint8 *packed = buf;
        gsize len;

        if (!collector->client || !deb_client_is_connected(collector->client))
                return;
        heartbeat.collector_id = collector->id;
        heartbeat.sequence = collector->heartbeat_sequence + 1;
        heartbeat.timestamp_us = (guint64)g_get_real_time();
        heartbeat.status = (Daemoneye__Eventbus__CollectorStatus)collector->state;
        heartbeat.events_published = collector->events_published;
        len = protobuf_c_message_get_packed_size(&heartbeat.base);
        if (len > sizeof(buf))
                packed = big = g_malloc(len);
        protobuf_c_message_pack(&heartbeat.base, packed);

        if (!deb_client_publish(collector->client, collector->topic_heartbeat, packed, len, &options, &error)) {
                collector->error_count++;
                dcc_collector_log(collector, NULL, G_LOG_LEVEL_WARNING, "heartbeat not sent: %s", error->message);
                return;
        }
        collector->heartbeat_sequence = heartbeat.sequence;
        collector->last_heartbeat_us = (gint64)heartbeat.timestamp_us;
}

static gboolean heartbeat_cb(gpointer user_data)
{
        dcc_heartbeat_send(user_data);
        return G_SOURCE_CONTINUE;
}

void dcc_heartbeat_start(DccCollector *collector)
{
        dcc_heartbeat_stop(collector);
        collector->heartbeat_source = g_timeout_source_new(collector->heartbeat_interval_ms);
        g_source_set_callback(collector->heartbeat_source, heartbeat_cb, collector, NULL);
        g_source_attach(collector->heartbeat_source, collector->context);
        dcc_heartbeat_send(collector);
}

void dcc_heartbeat_stop(DccCollector *collector)
{
        dcc_source_clear(&collector->heartbeat_source);
}
