/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-procmond: the process collector. collector-core (dcc_main())
 * does the connection, handshake, heartbeats and RPC service; this file is
 * what is left: the settings schema, the scan timer, publishing what the
 * engine finds, and the health figures.
 *
 *   daemoneye-procmond [--id ID] [--connect PATH] [--set KEY=VALUE]...
 *                      [--heartbeat-interval MS] [--autostart] [--verbose]
 *
 * While RUNNING a GLib timer runs procmond_engine_scan() every
 * scan_interval_ms (and once at once after START and RESUME), and every
 * event it emits is published on its topic (events.process.lifecycle,
 * .metadata, .tree, .integrity, .batch). PAUSE stops the timer and keeps
 * the last snapshot, so RESUME reports what changed meanwhile; STOP drops
 * the engine, so the next START begins with a new baseline (batches, no
 * START events for what was already running). New settings apply to the
 * running engine; a new scan_interval_ms restarts the timer.
 *
 * Three scans in a row that cannot list /proc at all move the collector to
 * FAILED (dcc_collector_fail()), for the agent to restart it. While the
 * broker leaves more than max_backlog_bytes of our output unread, scans are
 * skipped (eventbus component DEGRADED).
 */
#include <stdio.h>

#include "daemoneye-collector-core.h"
#include "procmond-engine.h"

#define PROCMOND_ID "procmond"
/* Consecutive failed scans after which collection is declared broken. */
#define PROCMOND_MAX_SCAN_FAILURES 3

typedef struct {
        DccCollector *collector; /* set by the first callback */
        ProcmondEngine *engine;  /* NULL while stopped */
        GSource *scan_timer;     /* while RUNNING */
        GSource *first_scan;     /* the scan right after START and RESUME */

        /* Figures over the life of the process, engines come and go with STOP/START. */
        ProcmondStats last;      /* the current (or last) engine's, as of its last scan */
        guint64 scans_before;    /* of engines already dropped */
        guint64 scan_errors_before;
        guint consecutive_failures;
        char *last_scan_error;
        guint64 events_published;
        guint64 batches_published;
        guint64 publish_errors;
        char *last_publish_error;
        guint scan_publish_errors; /* during the scan in progress */
        guint64 scans_skipped;     /* for the backlog */
        gboolean skipping;         /* the last scan was skipped */
} Procmond;

static const DccConfigKey procmond_schema[] = {
        {.key = "scan_interval_ms", .type = DCC_CONFIG_UINT, .default_value = "1000",
         .min.u = PROCMOND_SCAN_INTERVAL_MS_MIN, .max.u = PROCMOND_SCAN_INTERVAL_MS_MAX,
         .description = "Milliseconds between two scans of /proc"},
        {.key = "batch_size", .type = DCC_CONFIG_UINT, .default_value = "100", .min.u = PROCMOND_BATCH_SIZE_MIN,
         .max.u = PROCMOND_BATCH_SIZE_MAX, .description = "Processes per events.process.batch message"},
        {.key = "enable_hash_verification", .type = DCC_CONFIG_BOOL, .default_value = "true",
         .description = "Hash (SHA-256) every running executable and report changes on events.process.integrity"},
        {.key = "batch_interval_ms", .type = DCC_CONFIG_UINT, .default_value = "60000", .min.u = 0,
         .max.u = PROCMOND_BATCH_INTERVAL_MS_MAX,
         .description = "Milliseconds between two full process tables on events.process.batch (0: at start only)"},
        {.key = "hash_cache_max_entries", .type = DCC_CONFIG_UINT, .default_value = "4096",
         .min.u = PROCMOND_HASH_CACHE_MIN, .max.u = PROCMOND_HASH_CACHE_MAX,
         .description = "Distinct executables whose hash is remembered"},
        /*
         * A stuck agent must not make procmond grow without bound. Nothing is
         * lost but processes that start and end while scans are skipped: the
         * next scan is compared with the last one made.
         */
        {.key = "max_backlog_bytes", .type = DCC_CONFIG_UINT, .default_value = "8388608", .min.u = 65536,
         .max.u = 1073741824,
         .description = "Output the broker has not taken yet beyond which scans are skipped"},
        {NULL},
};

static void procmond_read_config(Procmond *pm, ProcmondEngineConfig *config)
{
        DccCollector *c = pm->collector;

        procmond_engine_config_init(config);
        /* The schema's ranges are the engine's, so these fit a guint. */
        config->scan_interval_ms = (guint)dcc_collector_get_uint(c, "scan_interval_ms");
        config->batch_size = (guint)dcc_collector_get_uint(c, "batch_size");
        config->enable_hash_verification = dcc_collector_get_bool(c, "enable_hash_verification");
        config->batch_interval_ms = (guint)dcc_collector_get_uint(c, "batch_interval_ms");
        config->hash_cache_max_entries = (guint)dcc_collector_get_uint(c, "hash_cache_max_entries");
}

static void on_emit(const char *topic, const char *payload_type, const guint8 *payload, gsize payload_len,
                    gpointer user_data)
{
        Procmond *pm = user_data;
        g_autoptr(GError) error = NULL;

        if (!dcc_publish(pm->collector, topic, payload_type, payload, payload_len, &error)) {
                pm->publish_errors++;
                pm->scan_publish_errors++;
                g_free(pm->last_publish_error);
                pm->last_publish_error = g_strdup(error->message);
                return;
        }
        pm->events_published++;
        if (g_str_equal(topic, PROCMOND_TOPIC_BATCH))
                pm->batches_published++;
}

static void procmond_timers_stop(Procmond *pm);

static gsize procmond_backlog(Procmond *pm)
{
        DebClient *client = dcc_collector_get_client(pm->collector);

        return client ? deb_client_get_pending_bytes(client) : 0;
}

/* One scan, its events published; skipped while the broker is not keeping up. */
static void procmond_scan(Procmond *pm)
{
        g_autoptr(GError) error = NULL;
        gsize backlog = procmond_backlog(pm);

        if (backlog > dcc_collector_get_uint(pm->collector, "max_backlog_bytes")) {
                if (!pm->skipping)
                        g_warning("procmond: the broker has not taken %zu bytes of events yet: skipping scans "
                                  "until it catches up",
                                  backlog);
                pm->skipping = TRUE;
                pm->scans_skipped++;
                return;
        }
        pm->skipping = FALSE;
        pm->scan_publish_errors = 0;
        if (!procmond_engine_scan(pm->engine, on_emit, pm, &error)) {
                pm->consecutive_failures++;
                g_free(pm->last_scan_error);
                pm->last_scan_error = g_strdup(error->message);
                dcc_collector_count_error(pm->collector);
                g_warning("%s (%u in a row)", error->message, pm->consecutive_failures);
                if (pm->consecutive_failures >= PROCMOND_MAX_SCAN_FAILURES) {
                        procmond_timers_stop(pm);
                        dcc_collector_fail(pm->collector, error);
                }
        } else {
                pm->consecutive_failures = 0;
        }
        pm->last = procmond_engine_get_stats(pm->engine);
        if (pm->scan_publish_errors > 0) {
                dcc_collector_count_error(pm->collector);
                g_warning("procmond: %u events of this scan not published: %s", pm->scan_publish_errors,
                          pm->last_publish_error);
        }
}

static gboolean on_scan_timer(gpointer user_data)
{
        procmond_scan(user_data);
        return G_SOURCE_CONTINUE;
}

static gboolean on_first_scan(gpointer user_data)
{
        Procmond *pm = user_data;

        g_clear_pointer(&pm->first_scan, g_source_unref);
        procmond_scan(pm);
        return G_SOURCE_REMOVE;
}

static void source_clear(GSource **source)
{
        if (!*source)
                return;
        g_source_destroy(*source);
        g_clear_pointer(source, g_source_unref);
}

static void procmond_timers_stop(Procmond *pm)
{
        source_clear(&pm->scan_timer);
        source_clear(&pm->first_scan);
}

/* The periodic timer at the engine's interval, and with @scan_now a scan as soon as the loop is free. */
static void procmond_timers_start(Procmond *pm, gboolean scan_now)
{
        procmond_timers_stop(pm);
        pm->scan_timer = g_timeout_source_new(procmond_engine_get_config(pm->engine)->scan_interval_ms);
        g_source_set_callback(pm->scan_timer, on_scan_timer, pm, NULL);
        g_source_attach(pm->scan_timer, NULL);
        if (scan_now) {
                /* After the reply to START/RESUME went out: the state is RUNNING by then, so publishing works. */
                pm->first_scan = g_idle_source_new();
                g_source_set_callback(pm->first_scan, on_first_scan, pm, NULL);
                g_source_attach(pm->first_scan, NULL);
        }
}

static void procmond_drop_engine(Procmond *pm)
{
        procmond_timers_stop(pm);
        if (!pm->engine)
                return;
        pm->last = procmond_engine_get_stats(pm->engine);
        pm->scans_before += pm->last.scans;
        pm->scan_errors_before += pm->last.errors;
        pm->last.scans = 0;
        pm->last.errors = 0;
        g_clear_pointer(&pm->engine, procmond_engine_free);
}

static void procmond_start(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        Procmond *pm = user_data;
        ProcmondEngineConfig config;
        g_autoptr(GError) error = NULL;

        pm->collector = collector;
        /* stop always comes first from FAILED; this is a second line of defence. */
        procmond_drop_engine(pm);
        procmond_read_config(pm, &config);
        pm->engine = procmond_engine_new(&config, &error);
        if (!pm->engine) {
                dcc_operation_fail(op, g_error_new(DCC_ERROR, DCC_ERROR_RESOURCE, "%s", error->message));
                return;
        }
        pm->consecutive_failures = 0;
        procmond_timers_start(pm, TRUE);
        dcc_operation_complete(op);
}

static void procmond_stop(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        Procmond *pm = user_data;

        pm->collector = collector;
        procmond_drop_engine(pm);
        dcc_operation_complete(op);
}

static void procmond_pause(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        procmond_timers_stop(user_data);
        dcc_operation_complete(op);
}

static void procmond_resume(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        Procmond *pm = user_data;

        if (!pm->engine) {
                dcc_operation_fail(op, g_error_new(DCC_ERROR, DCC_ERROR_FAILED, "procmond: nothing to resume: collection was stopped; send start instead"));
                return;
        }
        procmond_timers_start(pm, TRUE);
        dcc_operation_complete(op);
}

static gboolean procmond_apply_config(DccCollector *collector, const DccConfigChange *changes, gsize n_changes,
                                      gpointer user_data, GError **error)
{
        Procmond *pm = user_data;
        ProcmondEngineConfig config;
        guint old_interval;
        g_autoptr(GError) local = NULL;

        pm->collector = collector;
        /* Stopped: the settings are read at the next start. */
        if (!pm->engine)
                return TRUE;
        old_interval = procmond_engine_get_config(pm->engine)->scan_interval_ms;
        procmond_read_config(pm, &config);
        if (!procmond_engine_update_config(pm->engine, &config, &local)) {
                g_set_error(error, DCC_ERROR, DCC_ERROR_CONFIGURATION, "%s", local->message);
                return FALSE;
        }
        /* Paused: the timer starts again at RESUME, with the new interval. */
        if (pm->scan_timer && config.scan_interval_ms != old_interval)
                procmond_timers_start(pm, FALSE);
        return TRUE;
}

static void procmond_report_health(Procmond *pm)
{
        DccCollector *c = pm->collector;
        const ProcmondStats *s = &pm->last;
        guint64 scans = pm->scans_before + s->scans;
        guint64 scan_errors = pm->scan_errors_before + s->errors;
        g_autofree char *enumeration = NULL;
        g_autofree char *eventbus = NULL;
        DccHealthStatus status;

        if (pm->consecutive_failures >= PROCMOND_MAX_SCAN_FAILURES)
                status = DCC_HEALTH_UNHEALTHY;
        else if (pm->consecutive_failures > 0)
                status = DCC_HEALTH_DEGRADED;
        else
                status = DCC_HEALTH_HEALTHY;
        if (pm->consecutive_failures > 0)
                enumeration = g_strdup_printf("last %u scans failed: %s", pm->consecutive_failures,
                                              pm->last_scan_error);
        else
                enumeration = g_strdup_printf("%" G_GUINT64_FORMAT " processes, last scan %.1f ms (%.1f ms CPU), %"
                                              G_GUINT64_FORMAT " scans, %" G_GUINT64_FORMAT " errors%s",
                                              s->processes_seen, (double)s->last_scan_duration_us / 1000.0,
                                              (double)s->last_scan_cpu_us / 1000.0, scans, scan_errors,
                                              pm->engine ? "" : "; not scanning");
        dcc_collector_report_component(c, "process_enumeration", status, enumeration,
                                       pm->scan_timer ? procmond_engine_get_config(pm->engine)->scan_interval_ms
                                                      : 0);

        eventbus = g_strdup_printf("%" G_GUINT64_FORMAT " events published, %" G_GUINT64_FORMAT
                                   " publish errors%s%s",
                                   pm->events_published, pm->publish_errors, pm->scan_publish_errors ? ": " : "",
                                   pm->scan_publish_errors ? pm->last_publish_error : "");
        if (pm->skipping) {
                g_free(eventbus);
                eventbus = g_strdup_printf("%" G_GUINT64_FORMAT " events published; scans skipped: %zu bytes "
                                           "not yet taken by the broker",
                                           pm->events_published, procmond_backlog(pm));
        }
        /* The last scan could not publish everything, or was skipped: what subscribers see has holes. */
        dcc_collector_report_component(c, "eventbus",
                                       pm->scan_publish_errors > 0 || pm->skipping ? DCC_HEALTH_DEGRADED
                                                                                   : DCC_HEALTH_HEALTHY,
                                       eventbus, 0);

        dcc_collector_set_metric(c, "process_enumeration.processes_seen", (double)s->processes_seen);
        dcc_collector_set_metric(c, "process_enumeration.last_scan_duration_us", (double)s->last_scan_duration_us);
        dcc_collector_set_metric(c, "process_enumeration.last_scan_cpu_us", (double)s->last_scan_cpu_us);
        dcc_collector_set_metric(c, "process_enumeration.scans", (double)scans);
        dcc_collector_set_metric(c, "process_enumeration.errors", (double)scan_errors);
        dcc_collector_set_metric(c, "process_enumeration.vanished", (double)s->vanished);
        dcc_collector_set_metric(c, "process_enumeration.unreadable", (double)s->unreadable);
        dcc_collector_set_metric(c, "integrity.hashes_computed", (double)s->hashes_computed);
        dcc_collector_set_metric(c, "integrity.hash_cache_entries", (double)s->hash_cache_entries);
        dcc_collector_set_metric(c, "eventbus.events_published", (double)pm->events_published);
        dcc_collector_set_metric(c, "eventbus.batches_published", (double)pm->batches_published);
        dcc_collector_set_metric(c, "eventbus.publish_errors", (double)pm->publish_errors);
        dcc_collector_set_metric(c, "eventbus.scans_skipped", (double)pm->scans_skipped);
        dcc_collector_set_metric(c, "eventbus.pending_bytes", (double)procmond_backlog(pm));
}

static void procmond_health(DccCollector *collector, DccOperation *op, gpointer user_data)
{
        Procmond *pm = user_data;

        pm->collector = collector;
        procmond_report_health(pm);
        dcc_operation_complete(op);
}

static const char *const procmond_event_types[] = {
        PROCMOND_TOPIC_LIFECYCLE, PROCMOND_TOPIC_METADATA, PROCMOND_TOPIC_TREE,
        PROCMOND_TOPIC_INTEGRITY, PROCMOND_TOPIC_BATCH,    NULL,
};
static const char *const procmond_features[] = {
        "process-lifecycle", "process-metadata", "process-tree", "process-batch", "hash-verification", NULL,
};
/* Another user's /proc/<pid>/exe and the executable behind it. */
static const char *const procmond_capabilities[] = {"CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", NULL};

static const DccCollectorInfo procmond_info = {
        .id = PROCMOND_ID,
        .type = "procmond",
        .description = "DaemonEye process monitor: watches /proc and publishes process lifecycle, metadata, "
                       "tree and executable integrity events.",
        .event_types = procmond_event_types,
        .features = procmond_features,
        .required_capabilities = procmond_capabilities,
        .min_memory_bytes = 16u * 1024u * 1024u,
        .min_cpu_percent = 1,
        .config_schema = procmond_schema,
        .start = procmond_start,
        .stop = procmond_stop,
        .pause = procmond_pause,
        .resume = procmond_resume,
        .health = procmond_health,
        .apply_config = procmond_apply_config,
};

int main(int argc, char **argv)
{
        Procmond pm = {0};
        int status;

        g_set_prgname("daemoneye-procmond");
        status = dcc_main(argc, argv, &procmond_info, &pm);
        /* FORCE_SHUTDOWN returns without stop: release what a run still holds. */
        procmond_drop_engine(&pm);
        g_free(pm.last_scan_error);
        g_free(pm.last_publish_error);
        return status;
}
