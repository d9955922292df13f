/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

#include "proc-scan.h"

G_BEGIN_DECLS

/*
 * procmond-engine: procmond's collection logic without transport. Each call
 * to procmond_engine_scan() reads /proc once, compares with the previous
 * scan and hands every resulting event to an emit function as (topic,
 * payload type, packed protobuf). The host (collector-core) owns the timer,
 * calls scan every scan_interval_ms and publishes what it is given.
 *
 * What one scan emits:
 *  - events.process.lifecycle  ProcessLifecycleEvent START / EXIT
 *  - events.process.tree       ProcessTreeEvent, a process got a new parent
 *  - events.process.metadata   ProcessMetadataEvent, comm/exe/cmdline/ids changed
 *  - events.process.integrity  ProcessIntegrityEvent (enable_hash_verification)
 *  - events.process.batch      ProcessBatch × batch_count: the whole table
 *
 * The first scan is the baseline: it reports no START for processes that
 * were already running (they did not start then); the full table goes out
 * as batches instead, so a subscriber still learns the initial state.
 * Batches are then repeated every batch_interval_ms (rounded up to whole
 * scans) and on procmond_engine_request_batch(): publishing the whole table
 * every scan would cost far more than the changes themselves.
 */

#define PROCMOND_ERROR (procmond_error_quark())
GQuark procmond_error_quark(void);

typedef enum {
        PROCMOND_ERROR_INVALID_CONFIG, /* a setting out of its accepted range */
        PROCMOND_ERROR_SCAN,           /* /proc could not be listed */
} ProcmondError;

#define PROCMOND_TOPIC_LIFECYCLE "events.process.lifecycle"
#define PROCMOND_TOPIC_METADATA "events.process.metadata"
#define PROCMOND_TOPIC_TREE "events.process.tree"
#define PROCMOND_TOPIC_INTEGRITY "events.process.integrity"
#define PROCMOND_TOPIC_BATCH "events.process.batch"

#define PROCMOND_TYPE_LIFECYCLE "daemoneye.eventbus.ProcessLifecycleEvent"
#define PROCMOND_TYPE_METADATA "daemoneye.eventbus.ProcessMetadataEvent"
#define PROCMOND_TYPE_TREE "daemoneye.eventbus.ProcessTreeEvent"
#define PROCMOND_TYPE_INTEGRITY "daemoneye.eventbus.ProcessIntegrityEvent"
#define PROCMOND_TYPE_BATCH "daemoneye.eventbus.ProcessBatch"

/* Accepted ranges, also for the collector's config schema. */
#define PROCMOND_SCAN_INTERVAL_MS_MIN 10
#define PROCMOND_SCAN_INTERVAL_MS_MAX 3600000
#define PROCMOND_BATCH_SIZE_MIN 1
#define PROCMOND_BATCH_SIZE_MAX 10000
#define PROCMOND_BATCH_INTERVAL_MS_MAX 86400000
#define PROCMOND_HASH_CACHE_MIN 16
#define PROCMOND_HASH_CACHE_MAX 1000000
/* A batch message stays under this many bytes whatever batch_size says, so
 * it fits the broker's default 1 MiB frame with its envelope. */
#define PROCMOND_BATCH_MAX_BYTES (512 * 1024)

typedef struct {
        guint scan_interval_ms;         /* default 1000 */
        guint batch_size;               /* processes per ProcessBatch, default 100 */
        gboolean enable_hash_verification; /* default TRUE */
        guint batch_interval_ms;        /* default 60000; 0: baseline and on request only */
        guint hash_cache_max_entries;   /* default 4096 distinct executables */
        const char *proc_root;          /* NULL: /proc (tests use a fixture tree) */
} ProcmondEngineConfig;

/**
 * procmond_engine_config_init:
 *
 * Fills @config with the defaults.
 */
void procmond_engine_config_init(ProcmondEngineConfig *config);

/**
 * procmond_engine_config_validate:
 *
 * Checks every setting against its range; the error names the setting and
 * the accepted range.
 */
gboolean procmond_engine_config_validate(const ProcmondEngineConfig *config, GError **error);

/*
 * Receives one event. @payload is a packed protobuf message of
 * @payload_type, valid during the call only.
 */
typedef void (*ProcmondEmitFunc)(const char *topic, const char *payload_type, const guint8 *payload,
                                 gsize payload_len, gpointer user_data);

/* Figures for the health report (components process_enumeration, eventbus). */
typedef struct {
        guint64 scans;
        guint64 processes_seen;         /* in the last scan */
        guint64 last_scan_duration_us;  /* wall clock (monotonic) */
        guint64 last_scan_cpu_us;       /* CPU time of this process during the scan */
        guint64 last_scan_time_us;      /* wall clock, microseconds since the epoch; 0 before any */
        guint64 events_emitted;         /* since creation, batches included */
        guint64 batches_emitted;        /* ProcessBatch messages */
        guint64 errors;                 /* failed scans */
        guint64 vanished;               /* last scan: exited while being read (normal) */
        guint64 unreadable;             /* last scan: entries skipped (normal when unprivileged) */
        guint64 hashes_computed;        /* executables read and hashed since creation */
        guint64 hash_cache_entries;
} ProcmondStats;

typedef struct _ProcmondEngine ProcmondEngine;

/**
 * procmond_engine_new:
 *
 * Validates @config and opens the proc root. Returns (transfer full) the
 * engine, or NULL and @error.
 */
ProcmondEngine *procmond_engine_new(const ProcmondEngineConfig *config, GError **error);

/**
 * procmond_engine_free:
 *
 * Frees the engine and its last snapshot.
 */
void procmond_engine_free(ProcmondEngine *engine);

/**
 * procmond_engine_update_config:
 *
 * Applies a validated @config to a running engine: all settings but
 * proc_root, which must not change. Turning hashing on makes the next scan
 * hash every executable; turning it off drops the cache; a new
 * hash_cache_max_entries keeps what is cached. On error nothing changes.
 */
gboolean procmond_engine_update_config(ProcmondEngine *engine, const ProcmondEngineConfig *config,
                                       GError **error);

/**
 * procmond_engine_get_config:
 *
 * Returns (transfer none) the configuration in force.
 */
const ProcmondEngineConfig *procmond_engine_get_config(const ProcmondEngine *engine);

/**
 * procmond_engine_scan:
 * @emit: (nullable): receives the events of this scan, in order
 *
 * Runs one scan and emits its events. Returns FALSE and sets @error only when
 * /proc cannot be listed at all; the previous snapshot is then kept.
 */
gboolean procmond_engine_scan(ProcmondEngine *engine, ProcmondEmitFunc emit, gpointer user_data,
                              GError **error);

/**
 * procmond_engine_request_batch:
 *
 * Makes the next scan publish the whole table as batches.
 */
void procmond_engine_request_batch(ProcmondEngine *engine);

/**
 * procmond_engine_get_stats:
 *
 * Current figures.
 */
ProcmondStats procmond_engine_get_stats(const ProcmondEngine *engine);

/**
 * procmond_engine_get_snapshot:
 *
 * Returns (transfer none) (nullable) the last snapshot, valid until the next
 * scan.
 */
const ProcSnapshot *procmond_engine_get_snapshot(const ProcmondEngine *engine);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(ProcmondEngine, procmond_engine_free)

G_END_DECLS
