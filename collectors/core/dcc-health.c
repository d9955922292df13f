/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a collector says about itself: component health and metrics it
 * reports as it goes, HEALTH_CHECK (after letting the collector refresh them)
 * and GET_CAPABILITIES.
 */
#include <string.h>

#include "dcc-private.h"

static const int all_operations[] = {
        DCC_OP(START),          DCC_OP(STOP),          DCC_OP(RESTART),         DCC_OP(HEALTH_CHECK),
        DCC_OP(UPDATE_CONFIG),  DCC_OP(GRACEFUL_SHUTDOWN), DCC_OP(FORCE_SHUTDOWN), DCC_OP(GET_CAPABILITIES),
        DCC_OP(PAUSE),          DCC_OP(RESUME),
};

/* PAUSE and RESUME are offered only by a collector with both callbacks. */
static gboolean operation_is_offered(DccCollector *collector, int operation)
{
        return (operation != DCC_OP(PAUSE) && operation != DCC_OP(RESUME)) || dcc_collector_supports_pause(collector);
}

void dcc_component_free(gpointer data)
{
        DccComponent *component = data;

        g_free(component->name);
        g_free(component->message);
        g_free(component);
}

void dcc_collector_report_component(DccCollector *collector, const char *name, DccHealthStatus status,
                                    const char *message, guint check_interval_ms)
{
        DccComponent *component = NULL;

        g_return_if_fail(collector != NULL);
        g_return_if_fail(name != NULL);

        for (guint i = 0; i < collector->components->len; i++) {
                DccComponent *c = collector->components->pdata[i];
                if (strcmp(c->name, name) == 0) {
                        component = c;
                        break;
                }
        }
        if (!component) {
                component = g_new0(DccComponent, 1);
                component->name = g_strdup(name);
                g_ptr_array_add(collector->components, component);
        }
        component->status = status;
        g_free(component->message);
        component->message = g_strdup(message ? message : "");
        component->last_check_us = g_get_real_time();
        component->check_interval_ms = check_interval_ms;
}

void dcc_collector_set_metric(DccCollector *collector, const char *name, double value)
{
        g_return_if_fail(collector != NULL);
        g_return_if_fail(name != NULL);

        g_hash_table_insert(collector->metrics, g_strdup(name), g_memdup2(&value, sizeof(value)));
}

static int health_rank(DccHealthStatus status)
{
        switch (status) {
        case DCC_HEALTH_HEALTHY:
                return 0;
        case DCC_HEALTH_UNKNOWN:
        case DCC_HEALTH_DEGRADED:
                return 1;
        case DCC_HEALTH_UNHEALTHY:
                return 2;
        }
        return 2;
}

/*
 * The worst component decides, an unchecked (UNKNOWN) one counting as
 * DEGRADED; a FAILED collector is UNHEALTHY whatever its components say, and
 * one half way through a transition is at best DEGRADED.
 */
static DccHealthStatus health_overall(DccCollector *collector)
{
        int worst = 0;

        if (collector->state == DCC_STATE_FAILED)
                return DCC_HEALTH_UNHEALTHY;
        if (collector->state == DCC_STATE_STARTING || collector->state == DCC_STATE_STOPPING)
                worst = 1;
        for (guint i = 0; i < collector->components->len; i++)
                worst = MAX(worst, health_rank(((DccComponent *)collector->components->pdata[i])->status));
        return worst == 0 ? DCC_HEALTH_HEALTHY : worst == 1 ? DCC_HEALTH_DEGRADED : DCC_HEALTH_UNHEALTHY;
}

static void health_reply(DccCollector *collector, DccRequest *request)
{
        Daemoneye__Eventbus__HealthResult result = DAEMONEYE__EVENTBUS__HEALTH_RESULT__INIT;
        g_autofree Daemoneye__Eventbus__ComponentHealth *components = NULL;
        g_autofree Daemoneye__Eventbus__ComponentHealth **component_ptrs = NULL;
        g_autoptr(GArray) metrics = g_array_new(FALSE, TRUE, sizeof(Daemoneye__Eventbus__HealthResult__MetricsEntry));
        g_autoptr(GPtrArray) metric_ptrs = g_ptr_array_new();
        /* Figures collector-core keeps itself, beside the collector's own. */
        const struct {
                const char *name;
                double value;
        } core_metrics[] = {
                {"core.events_published", (double)collector->events_published},
                {"core.heartbeats_sent", (double)collector->heartbeat_sequence},
                {"core.requests_total", (double)collector->requests_total},
                {"core.requests_in_flight", (double)g_hash_table_size(collector->requests)},
        };
        GHashTableIter iter;
        gpointer key, value;
        guint n = collector->components->len;

        components = g_new(Daemoneye__Eventbus__ComponentHealth, MAX(n, 1));
        component_ptrs = g_new(Daemoneye__Eventbus__ComponentHealth *, MAX(n, 1));
        for (guint i = 0; i < n; i++) {
                const DccComponent *c = collector->components->pdata[i];

                daemoneye__eventbus__component_health__init(&components[i]);
                components[i].name = c->name;
                components[i].status = (Daemoneye__Eventbus__HealthStatus)c->status;
                components[i].message = c->message;
                components[i].last_check_us = (guint64)c->last_check_us;
                components[i].check_interval_ms = c->check_interval_ms;
                component_ptrs[i] = &components[i];
        }

        for (gsize i = 0; i < G_N_ELEMENTS(core_metrics); i++) {
                Daemoneye__Eventbus__HealthResult__MetricsEntry entry =
                        DAEMONEYE__EVENTBUS__HEALTH_RESULT__METRICS_ENTRY__INIT;

                entry.key = (char *)core_metrics[i].name;
                entry.value = core_metrics[i].value;
                g_array_append_val(metrics, entry);
        }
        g_hash_table_iter_init(&iter, collector->metrics);
        while (g_hash_table_iter_next(&iter, &key, &value)) {
                Daemoneye__Eventbus__HealthResult__MetricsEntry entry =
                        DAEMONEYE__EVENTBUS__HEALTH_RESULT__METRICS_ENTRY__INIT;

                entry.key = key;
                entry.value = *(double *)value;
                g_array_append_val(metrics, entry);
        }
        /* Pointers last: the array does not move any more. */
        for (guint i = 0; i < metrics->len; i++)
                g_ptr_array_add(metric_ptrs, &g_array_index(metrics, Daemoneye__Eventbus__HealthResult__MetricsEntry, i));

        result.status = (Daemoneye__Eventbus__CollectorStatus)collector->state;
        result.overall = (Daemoneye__Eventbus__HealthStatus)health_overall(collector);
        result.n_components = n;
        result.components = component_ptrs;
        result.n_metrics = metric_ptrs->len;
        result.metrics = (Daemoneye__Eventbus__HealthResult__MetricsEntry **)metric_ptrs->pdata;
        result.last_heartbeat_us = (guint64)collector->last_heartbeat_us;
        result.uptime_ms = (guint64)(g_get_monotonic_time() - collector->created_us) / 1000;
        result.error_count = collector->error_count;
        dcc_request_reply(request, DCC_STATUS(SUCCESS), NULL, &result.base);
}

static void on_health_done(DccCollector *collector, const GError *error, gpointer data)
{
        DccRequest *request = data;

        if (request->answered)
                return;
        if (error) {
                dcc_request_fail_error(request, "collector.health_failed", NULL, error);
                return;
        }
        health_reply(collector, request);
}

void dcc_health_handle_check(DccCollector *collector, DccRequest *request)
{
        dcc_step_run(collector, "health_check", collector->info->health, collector->user_data, request,
                     on_health_done, dcc_request_ref(request), (GDestroyNotify)dcc_request_unref);
}

static gsize strv_length0(const char *const *strv)
{
        return strv ? g_strv_length((char **)strv) : 0;
}

void dcc_health_handle_capabilities(DccCollector *collector, DccRequest *request)
{
        static const char *const default_platforms[] = {"linux", NULL};
        const DccCollectorInfo *info = collector->info;
        Daemoneye__Eventbus__Capabilities caps = DAEMONEYE__EVENTBUS__CAPABILITIES__INIT;
        Daemoneye__Eventbus__ResourceRequirements resources = DAEMONEYE__EVENTBUS__RESOURCE_REQUIREMENTS__INIT;
        Daemoneye__Eventbus__TimeoutLimits limits = DAEMONEYE__EVENTBUS__TIMEOUT_LIMITS__INIT;
        Daemoneye__Eventbus__RpcOperation operations[G_N_ELEMENTS(all_operations)];
        const char *const *platforms = info->platforms ? info->platforms : default_platforms;
        gsize n_operations = 0;

        for (gsize i = 0; i < G_N_ELEMENTS(all_operations); i++) {
                if (!operation_is_offered(collector, all_operations[i]))
                        continue;
                operations[n_operations++] = (Daemoneye__Eventbus__RpcOperation)all_operations[i];
        }
        caps.n_event_types = strv_length0(info->event_types);
        caps.event_types = (char **)info->event_types;
        caps.n_operations = n_operations;
        caps.operations = operations;
        resources.min_memory_bytes = info->min_memory_bytes;
        resources.min_cpu_percent = info->min_cpu_percent;
        resources.n_capabilities = strv_length0(info->required_capabilities);
        resources.capabilities = (char **)info->required_capabilities;
        caps.resources = &resources;
        caps.n_platforms = strv_length0(platforms);
        caps.platforms = (char **)platforms;
        caps.n_features = strv_length0(info->features);
        caps.features = (char **)info->features;
        caps.max_concurrent_requests = collector->max_concurrent;
        limits.min_ms = collector->timeout_min_ms;
        limits.max_ms = collector->timeout_max_ms;
        limits.default_ms = collector->timeout_default_ms;
        caps.timeout_limits = &limits;
        dcc_request_reply(request, DCC_STATUS(SUCCESS), NULL, &caps.base);
}

GStrv dcc_health_get_capability_strings(DccCollector *collector)
{
        g_autoptr(GStrvBuilder) builder = g_strv_builder_new();
        const char *const *features = collector->info->features;

        for (gsize i = 0; i < G_N_ELEMENTS(all_operations); i++) {
                g_autofree char *cap = NULL;

                if (!operation_is_offered(collector, all_operations[i]))
                        continue;
                cap = g_strconcat("operation.", dcc_rpc_operation_to_string(all_operations[i]), NULL);
                g_strv_builder_add(builder, cap);
        }
        for (gsize i = 0; features && features[i]; i++) {
                g_autofree char *cap = g_strconcat("feature.", features[i], NULL);
                g_strv_builder_add(builder, cap);
        }
        return g_strv_builder_end(builder);
}
