/* SPDX-License-Identifier: Apache-2.0 */
#include <time.h>

#include "proc-diff.h"
#include "proc-integrity.h"
#include "proc-proto.h"
#include "procmond-engine.h"

G_DEFINE_QUARK(procmond-error-quark, procmond_error)

/* An integrity event waiting for the lifecycle events of its scan. */
typedef struct {
        GBytes *payload;
} PendingEvent;

struct _ProcmondEngine {
        ProcmondEngineConfig config;
        char *proc_root;
        ProcScanner *scanner;
        ProcIntegrity *integrity; /* NULL without enable_hash_verification */
        ProcSnapshot *snapshot;   /* the last scan */
        ProcProto *proto;
        GPtrArray *pending;       /* GBytes * of integrity events */
        guint scans_since_batch;
        gboolean batch_requested;
        guint64 hashes_before; /* computed by trackers dropped by update_config */
        ProcmondStats stats;
        /* Set for the duration of one scan. */
        ProcmondEmitFunc emit;
        gpointer emit_data;
};

void procmond_engine_config_init(ProcmondEngineConfig *config)
{
        *config = (ProcmondEngineConfig){
                .scan_interval_ms = 1000,
                .batch_size = 100,
                .enable_hash_verification = TRUE,
                .batch_interval_ms = 60000,
                .hash_cache_max_entries = 4096,
                .proc_root = NULL,
        };
}

static gboolean check_range(const char *name, guint value, guint min, guint max, GError **error)
{
        if (value >= min && value <= max)
                return TRUE;
        g_set_error(error, PROCMOND_ERROR, PROCMOND_ERROR_INVALID_CONFIG,
                    "procmond: %s=%u is out of range, accepted %u..%u", name, value, min, max);
        return FALSE;
}

gboolean procmond_engine_config_validate(const ProcmondEngineConfig *config, GError **error)
{
        return check_range("scan_interval_ms", config->scan_interval_ms, PROCMOND_SCAN_INTERVAL_MS_MIN,
                           PROCMOND_SCAN_INTERVAL_MS_MAX, error) &&
               check_range("batch_size", config->batch_size, PROCMOND_BATCH_SIZE_MIN, PROCMOND_BATCH_SIZE_MAX,
                           error) &&
               check_range("batch_interval_ms", config->batch_interval_ms, 0, PROCMOND_BATCH_INTERVAL_MS_MAX,
                           error) &&
               check_range("hash_cache_max_entries", config->hash_cache_max_entries, PROCMOND_HASH_CACHE_MIN,
                           PROCMOND_HASH_CACHE_MAX, error);
}

ProcmondEngine *procmond_engine_new(const ProcmondEngineConfig *config, GError **error)
{
        g_autoptr(ProcmondEngine) engine = NULL;

        if (!procmond_engine_config_validate(config, error))
                return NULL;
        engine = g_new0(ProcmondEngine, 1);
        engine->config = *config;
        engine->proc_root = g_strdup(config->proc_root ? config->proc_root : "/proc");
        engine->config.proc_root = engine->proc_root;
        engine->proto = proc_proto_new();
        engine->pending = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
        engine->scanner = proc_scanner_new(engine->proc_root, error);
        if (!engine->scanner)
                return NULL;
        if (config->enable_hash_verification) {
                engine->integrity = proc_integrity_new(engine->proc_root, config->hash_cache_max_entries, error);
                if (!engine->integrity)
                        return NULL;
        }
        return g_steal_pointer(&engine);
}

void procmond_engine_free(ProcmondEngine *engine)
{
        if (!engine)
                return;
        proc_scanner_free(engine->scanner);
        proc_integrity_free(engine->integrity);
        proc_snapshot_free(engine->snapshot);
        proc_proto_free(engine->proto);
        g_ptr_array_unref(engine->pending);
        g_free(engine->proc_root);
        g_free(engine);
}

gboolean procmond_engine_update_config(ProcmondEngine *engine, const ProcmondEngineConfig *config,
                                       GError **error)
{
        g_autoptr(ProcIntegrity) integrity = NULL;

        if (!procmond_engine_config_validate(config, error))
                return FALSE;
        if (config->proc_root && g_strcmp0(config->proc_root, engine->proc_root) != 0) {
                g_set_error(error, PROCMOND_ERROR, PROCMOND_ERROR_INVALID_CONFIG,
                            "procmond: proc_root cannot change while running (%s -> %s)", engine->proc_root,
                            config->proc_root);
                return FALSE;
        }
        if (config->enable_hash_verification && !engine->integrity) {
                integrity = proc_integrity_new(engine->proc_root, config->hash_cache_max_entries, error);
                if (!integrity)
                        return FALSE;
                engine->integrity = g_steal_pointer(&integrity);
        } else if (config->enable_hash_verification) {
                /* Keep what is hashed and reported: a new bound is no reason to read every executable again. */
                hash_cache_set_max_entries(proc_integrity_get_cache(engine->integrity),
                                           config->hash_cache_max_entries);
        } else if (engine->integrity) {
                engine->hashes_before += hash_cache_get_computed(proc_integrity_get_cache(engine->integrity));
                g_clear_pointer(&engine->integrity, proc_integrity_free);
        }
        engine->config = *config;
        engine->config.proc_root = engine->proc_root;
        return TRUE;
}

const ProcmondEngineConfig *procmond_engine_get_config(const ProcmondEngine *engine)
{
        return &engine->config;
}

void procmond_engine_request_batch(ProcmondEngine *engine)
{
        engine->batch_requested = TRUE;
}

ProcmondStats procmond_engine_get_stats(const ProcmondEngine *engine)
{
        return engine->stats;
}

const ProcSnapshot *procmond_engine_get_snapshot(const ProcmondEngine *engine)
{
        return engine->snapshot;
}

/* Hands one packed event to the host; every event of a scan goes out through here. */
static void engine_publish(ProcmondEngine *engine, const char *topic, const char *type, const guint8 *data,
                           gsize len)
{
        engine->stats.events_emitted++;
        if (engine->emit)
                engine->emit(topic, type, data, len, engine->emit_data);
}

static void engine_emit(ProcmondEngine *engine, const char *topic, const char *type, const ProtobufCMessage *msg)
{
        gsize len;
        const guint8 *data = proc_proto_pack(engine->proto, msg, &len);

        engine_publish(engine, topic, type, data, len);
        proc_proto_reset(engine->proto);
}

static void on_started(const ProcInfo *current, gpointer user_data)
{
        ProcmondEngine *engine = user_data;
        Daemoneye__Eventbus__ProcessLifecycleEvent event = DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_EVENT__INIT;
        Daemoneye__Eventbus__ProcessInfo info;

        proc_proto_fill_info(engine->proto, current, &info);
        event.kind = DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_KIND__PROCESS_LIFECYCLE_KIND_START;
        event.process = &info;
        engine_emit(engine, PROCMOND_TOPIC_LIFECYCLE, PROCMOND_TYPE_LIFECYCLE, &event.base);
}

static void on_exited(const ProcInfo *previous, gpointer user_data)
{
        ProcmondEngine *engine = user_data;
        Daemoneye__Eventbus__ProcessLifecycleEvent event = DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_EVENT__INIT;
        Daemoneye__Eventbus__ProcessInfo info;

        proc_proto_fill_info(engine->proto, previous, &info);
        event.kind = DAEMONEYE__EVENTBUS__PROCESS_LIFECYCLE_KIND__PROCESS_LIFECYCLE_KIND_EXIT;
        event.process = &info;
        event.exit_observed_us = engine->stats.last_scan_time_us;
        engine_emit(engine, PROCMOND_TOPIC_LIFECYCLE, PROCMOND_TYPE_LIFECYCLE, &event.base);
}

static void on_reparented(const ProcInfo *previous, const ProcInfo *current, gpointer user_data)
{
        ProcmondEngine *engine = user_data;
        Daemoneye__Eventbus__ProcessTreeEvent event = DAEMONEYE__EVENTBUS__PROCESS_TREE_EVENT__INIT;
        Daemoneye__Eventbus__ProcessInfo info;

        proc_proto_fill_info(engine->proto, current, &info);
        event.pid = (guint32)current->key.pid;
        event.old_ppid = (guint32)previous->ppid;
        event.new_ppid = (guint32)current->ppid;
        event.process = &info;
        engine_emit(engine, PROCMOND_TOPIC_TREE, PROCMOND_TYPE_TREE, &event.base);
}

static void on_metadata_changed(const ProcInfo *previous, const ProcInfo *current, ProcFields changed,
                                gpointer user_data)
{
        ProcmondEngine *engine = user_data;
        Daemoneye__Eventbus__ProcessMetadataEvent event = DAEMONEYE__EVENTBUS__PROCESS_METADATA_EVENT__INIT;
        Daemoneye__Eventbus__ProcessInfo info, old;
        const char *names[PROC_FIELD_COUNT];

        proc_proto_fill_info(engine->proto, current, &info);
        proc_proto_fill_info(engine->proto, previous, &old);
        event.process = &info;
        event.previous = &old;
        event.n_changed_fields = proc_fields_names(changed, names);
        event.changed_fields = (char **)names;
        engine_emit(engine, PROCMOND_TOPIC_METADATA, PROCMOND_TYPE_METADATA, &event.base);
}

static const ProcDiffCallbacks diff_callbacks = {
        .started = on_started,
        .exited = on_exited,
        .reparented = on_reparented,
        .metadata_changed = on_metadata_changed,
};

static Daemoneye__Eventbus__ProcessIntegrityKind integrity_kind_to_proto(ProcIntegrityKind kind)
{
        switch (kind) {
        case PROC_INTEGRITY_HASHED:
                return DAEMONEYE__EVENTBUS__PROCESS_INTEGRITY_KIND__PROCESS_INTEGRITY_KIND_HASHED;
        case PROC_INTEGRITY_CHANGED:
                return DAEMONEYE__EVENTBUS__PROCESS_INTEGRITY_KIND__PROCESS_INTEGRITY_KIND_CHANGED;
        case PROC_INTEGRITY_DELETED:
                return DAEMONEYE__EVENTBUS__PROCESS_INTEGRITY_KIND__PROCESS_INTEGRITY_KIND_DELETED;
        case PROC_INTEGRITY_UNREADABLE:
                return DAEMONEYE__EVENTBUS__PROCESS_INTEGRITY_KIND__PROCESS_INTEGRITY_KIND_UNREADABLE;
        }
        return DAEMONEYE__EVENTBUS__PROCESS_INTEGRITY_KIND__PROCESS_INTEGRITY_KIND_UNSPECIFIED;
}

/*
 * Integrity is computed before the diff so START events carry the hash;
 * its events are held and sent after the lifecycle events of the scan, so a
 * subscriber hears of a process before it hears of its executable.
 */
static void on_integrity(const ProcIntegrityEvent *ev, gpointer user_data)
{
        ProcmondEngine *engine = user_data;
        Daemoneye__Eventbus__ProcessIntegrityEvent event = DAEMONEYE__EVENTBUS__PROCESS_INTEGRITY_EVENT__INIT;
        gsize len;
        const guint8 *data;

        event.kind = integrity_kind_to_proto(ev->kind);
        event.pid = (guint32)ev->process->key.pid;
        event.start_time_ticks = ev->process->key.start_time_ticks;
        event.exe = (char *)proc_proto_text(engine->proto, ev->process->exe);
        event.sha256 = (char *)ev->sha256;
        event.previous_sha256 = (char *)ev->previous_sha256;
        event.device = ev->device;
        event.inode = ev->inode;
        event.mtime_us = ev->mtime_us;
        event.reason = (char *)proc_proto_text(engine->proto, ev->reason ? ev->reason : "");
        data = proc_proto_pack(engine->proto, &event.base, &len);
        g_ptr_array_add(engine->pending, g_bytes_new(data, len));
        proc_proto_reset(engine->proto);
}

static void engine_emit_pending(ProcmondEngine *engine)
{
        for (guint i = 0; i < engine->pending->len; i++) {
                gsize len;
                const guint8 *data = g_bytes_get_data(engine->pending->pdata[i], &len);

                engine_publish(engine, PROCMOND_TOPIC_INTEGRITY, PROCMOND_TYPE_INTEGRITY, data, len);
        }
        g_ptr_array_set_size(engine->pending, 0);
}

static gboolean engine_batch_due(ProcmondEngine *engine, gboolean baseline)
{
        guint every;

        if (baseline || engine->batch_requested)
                return TRUE;
        if (engine->config.batch_interval_ms == 0)
                return FALSE;
        every = (engine->config.batch_interval_ms + engine->config.scan_interval_ms - 1) /
                engine->config.scan_interval_ms;
        return engine->scans_since_batch >= MAX(every, 1);
}

/*
 * The whole table in messages of at most batch_size processes and
 * PROCMOND_BATCH_MAX_BYTES bytes; the split is computed first so that every
 * message carries the final batch_count.
 */
static void engine_emit_batches(ProcmondEngine *engine)
{
        g_autoptr(GPtrArray) sorted = proc_snapshot_sorted(engine->snapshot);
        g_autofree Daemoneye__Eventbus__ProcessInfo *infos = NULL;
        g_autofree Daemoneye__Eventbus__ProcessInfo **ptrs = NULL;
        g_autoptr(GArray) starts = g_array_new(FALSE, FALSE, sizeof(guint));
        guint n = sorted->len;
        gsize bytes = 0;

        infos = g_new(Daemoneye__Eventbus__ProcessInfo, MAX(n, 1));
        ptrs = g_new(Daemoneye__Eventbus__ProcessInfo *, MAX(n, 1));
        for (guint i = 0; i < n; i++) {
                gsize size;
                guint count = starts->len ? i - g_array_index(starts, guint, starts->len - 1) : 0;

                proc_proto_fill_info(engine->proto, sorted->pdata[i], &infos[i]);
                ptrs[i] = &infos[i];
                /* Repeated-field overhead: tag and length, at most 6 bytes. */
                size = protobuf_c_message_get_packed_size(&infos[i].base) + 6;
                if (starts->len == 0 || count >= engine->config.batch_size ||
                    bytes + size > PROCMOND_BATCH_MAX_BYTES) {
                        g_array_append_val(starts, i);
                        bytes = 0;
                }
                bytes += size;
        }
        if (starts->len == 0) {
                guint zero = 0;

                g_array_append_val(starts, zero); /* an empty table is still one batch */
        }

        for (guint b = 0; b < starts->len; b++) {
                Daemoneye__Eventbus__ProcessBatch batch = DAEMONEYE__EVENTBUS__PROCESS_BATCH__INIT;
                guint first = g_array_index(starts, guint, b);
                guint end = b + 1 < starts->len ? g_array_index(starts, guint, b + 1) : n;
                gsize len;
                const guint8 *data;

                batch.processes = ptrs + first;
                batch.n_processes = end - first;
                batch.batch_index = b;
                batch.batch_count = starts->len;
                batch.scan_id = engine->stats.scans;
                batch.scan_time_us = proc_snapshot_get_time_us(engine->snapshot);
                data = proc_proto_pack(engine->proto, &batch.base, &len);
                engine->stats.batches_emitted++;
                engine_publish(engine, PROCMOND_TOPIC_BATCH, PROCMOND_TYPE_BATCH, data, len);
        }
        proc_proto_reset(engine->proto);
        engine->scans_since_batch = 0;
        engine->batch_requested = FALSE;
}

static guint64 clock_us(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (guint64)ts.tv_sec * G_USEC_PER_SEC + (guint64)ts.tv_nsec / 1000;
}

gboolean procmond_engine_scan(ProcmondEngine *engine, ProcmondEmitFunc emit, gpointer user_data,
                              GError **error)
{
        g_autoptr(GError) local_error = NULL;
        g_autoptr(ProcSnapshot) previous = NULL;
        guint64 start_us = clock_us(CLOCK_MONOTONIC);
        /* No threads in procmond: the process CPU clock is the scan's cost. */
        guint64 start_cpu_us = clock_us(CLOCK_PROCESS_CPUTIME_ID);
        ProcSnapshot *current;
        ProcScanStats scan_stats;
        gboolean baseline = engine->snapshot == NULL;

        current = proc_scanner_scan(engine->scanner, engine->snapshot, &local_error);
        if (!current) {
                engine->stats.errors++;
                g_set_error(error, PROCMOND_ERROR, PROCMOND_ERROR_SCAN, "procmond: scan failed: %s",
                            local_error->message);
                return FALSE;
        }
        previous = g_steal_pointer(&engine->snapshot);
        engine->snapshot = current;
        engine->stats.scans++;
        engine->stats.last_scan_time_us = proc_snapshot_get_time_us(current);
        engine->emit = emit;
        engine->emit_data = user_data;

        if (engine->integrity)
                proc_integrity_update(engine->integrity, current, on_integrity, engine);
        if (!baseline)
                proc_diff_run(previous, current, &diff_callbacks, engine);
        engine_emit_pending(engine);

        engine->scans_since_batch++;
        if (engine_batch_due(engine, baseline))
                engine_emit_batches(engine);

        engine->emit = NULL;
        engine->emit_data = NULL;

        scan_stats = proc_scanner_get_stats(engine->scanner);
        engine->stats.processes_seen = proc_snapshot_size(current);
        engine->stats.vanished = scan_stats.vanished;
        engine->stats.unreadable = scan_stats.unreadable;
        if (engine->integrity) {
                HashCache *cache = proc_integrity_get_cache(engine->integrity);

                engine->stats.hashes_computed = engine->hashes_before + hash_cache_get_computed(cache);
                engine->stats.hash_cache_entries = hash_cache_size(cache);
        } else {
                engine->stats.hash_cache_entries = 0;
        }
        engine->stats.last_scan_duration_us = clock_us(CLOCK_MONOTONIC) - start_us;
        engine->stats.last_scan_cpu_us = clock_us(CLOCK_PROCESS_CPUTIME_ID) - start_cpu_us;
        return TRUE;
}
