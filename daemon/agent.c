/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-agent: one Context holding every resource, one GLib main loop:
 * the broker, the audit log, the process manager and the D-Bus front (whose
 * sd_event is driven by a GSource on that same loop).
 */
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "agent-log.h"
#include "agent.h"
#include "audit-log.h"
#include "broker.h"
#include "config.h"
#include "dbus-front.h"
#include "process-manager.h"

/* How long queued output may drain on SIGTERM before connections are cut. */
#define SHUTDOWN_DRAIN_MS 2000
/* After the bus connection is lost: how often to try again. */
#define BUS_RETRY_MS 5000

typedef struct {
        const AgentOptions *options;
        Config *config;
        Broker *broker;
        AuditLog *audit;
        ProcessManager *process_manager;
        DbusFront *front;
        GSource *bus_retry; /* reconnecting after the bus went away */
        gboolean ready;     /* READY=1 sent */
        GMainLoop *loop;
        GPtrArray *sources; /* signal and watchdog sources, destroyed on exit */
        gboolean stopping;
        int exit_code;
} Context;

static void context_clear(Context *ctx)
{
        if (ctx->sources) {
                for (guint i = 0; i < ctx->sources->len; i++)
                        g_source_destroy(ctx->sources->pdata[i]);
                g_ptr_array_unref(ctx->sources);
        }
        if (ctx->bus_retry) {
                g_source_destroy(ctx->bus_retry);
                g_clear_pointer(&ctx->bus_retry, g_source_unref);
        }
        /* The front first: it watches the process manager; calls still pending are answered as cancelled. */
        g_clear_pointer(&ctx->front, dbus_front_free);
        /* The process manager next: its connections live in the broker. */
        g_clear_pointer(&ctx->process_manager, process_manager_free);
        g_clear_pointer(&ctx->broker, broker_free);
        g_clear_pointer(&ctx->audit, audit_log_free);
        g_clear_pointer(&ctx->config, config_free);
        g_clear_pointer(&ctx->loop, g_main_loop_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Context, context_clear)

static Config *context_load_config(Context *ctx, GError **error)
{
        Config *config = config_load(ctx->options->config_path, ctx->options->config_explicit, error);

        if (config && ctx->options->socket_path) {
                g_free(config->broker.socket_path);
                config->broker.socket_path = g_strdup(ctx->options->socket_path);
        }
        return config;
}

static void on_broker_shut_down(Broker *broker, gpointer user_data)
{
        Context *ctx = user_data;

        g_main_loop_quit(ctx->loop);
}

/* Every collector is stopped: now the broker drains and closes. */
static void on_collectors_stopped(ProcessManager *pm, gpointer user_data)
{
        Context *ctx = user_data;

        g_message("shutting down: collectors stopped; %u clients connected",
                  broker_get_n_connections(ctx->broker));
        sd_notify(0, "STATUS=Shutting down: draining the broker");
        broker_shutdown(ctx->broker, SHUTDOWN_DRAIN_MS, on_broker_shut_down, ctx);
}

static gboolean on_terminate(gpointer user_data)
{
        Context *ctx = user_data;

        if (ctx->stopping) {
                /* A second signal: no more waiting; collectors still running get SIGKILL. */
                g_message("second termination signal; exiting now");
                g_main_loop_quit(ctx->loop);
                return G_SOURCE_CONTINUE;
        }
        ctx->stopping = TRUE;
        if (ctx->front)
                dbus_front_set_state(ctx->front, "stopping");
        g_message("shutting down: stopping collectors");
        sd_notify(0, "STOPPING=1\nSTATUS=Shutting down: stopping collectors");
        process_manager_shutdown(ctx->process_manager, on_collectors_stopped, ctx);
        return G_SOURCE_CONTINUE;
}

static void context_update_status(Context *ctx);

/* SIGHUP and Agent1.Reload(): %FALSE when the new configuration is refused (the current one stays). */
static gboolean context_reload(Context *ctx, GError **error)
{
        g_autoptr(GError) local_error = NULL;
        g_autoptr(Config) config = NULL;
        g_auto(GStrv) changes = NULL;

        sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" G_GINT64_FORMAT, g_get_monotonic_time());
        if (ctx->front)
                dbus_front_set_state(ctx->front, "reloading");
        config = context_load_config(ctx, &local_error);
        if (!config || !process_manager_check_config(config, &local_error)) {
                g_warning("reload: %s; keeping the current configuration", local_error->message);
                sd_notify(0, "READY=1");
                if (ctx->front)
                        dbus_front_set_state(ctx->front, ctx->stopping ? "stopping" : "running");
                g_propagate_prefixed_error(error, g_steal_pointer(&local_error),
                                           "reload refused, the current configuration stays: ");
                return FALSE;
        }
        /* Also when the path did not change: SIGHUP is how logrotate asks for a new file. */
        if (!audit_log_reopen(ctx->audit, config->rpc.audit_log_path, &local_error)) {
                g_warning("reload: %s; the audit log stays %s", local_error->message,
                          audit_log_get_path(ctx->audit) ? audit_log_get_path(ctx->audit) : "journal-only");
                g_clear_error(&local_error);
        }

        changes = config_diff(ctx->config, config);
        if (!changes[0])
                g_message("reload: no changes");
        for (char **line = changes; *line; line++) {
                gboolean needs_restart = g_str_has_prefix(*line, "[broker] socket_path:") ||
                                         g_str_has_prefix(*line, "[broker] socket_mode:");
                /* How a collector is run changes with its next process; its settings are sent at once. */
                gboolean next_start = g_str_has_prefix(*line, "[collector ") &&
                                      g_regex_match_simple("^\\[collector [^]]+\\] (type|exec|socket|unit|"
                                                           "heartbeat_interval_seconds):",
                                                           *line, 0, 0);

                g_message("reload: %s%s", *line,
                          needs_restart ? " (takes effect after a restart)"
                          : next_start  ? " (takes effect at the collector's next start)"
                                        : "");
        }
        broker_apply_config(ctx->broker, &config->broker);
        broker_apply_rpc_config(ctx->broker, &config->rpc);
        if (!ctx->stopping)
                process_manager_apply_config(ctx->process_manager, config);
        g_clear_pointer(&ctx->config, config_free);
        ctx->config = g_steal_pointer(&config);
        sd_notify(0, "READY=1");
        context_update_status(ctx);
        if (ctx->front) {
                dbus_front_collectors_changed(ctx->front);
                dbus_front_set_state(ctx->front, ctx->stopping ? "stopping" : "running");
        }
        return TRUE;
}

static gboolean on_reload(gpointer user_data)
{
        context_reload(user_data, NULL);
        return G_SOURCE_CONTINUE;
}

static gboolean on_metrics(gpointer user_data)
{
        Context *ctx = user_data;
        g_autofree char *json = broker_get_metrics_json(ctx->broker);
        g_autofree char *collectors = process_manager_to_json(ctx->process_manager);

        g_message("metrics: %s", json);
        g_message("collectors: %s", collectors);
        return G_SOURCE_CONTINUE;
}

/* STATUS= for systemctl status: one line, kept current as collectors change state. */
static void context_update_status(Context *ctx)
{
        g_autoptr(GPtrArray) list = NULL;
        guint running = 0;

        if (!ctx->process_manager || ctx->stopping)
                return;
        list = process_manager_list(ctx->process_manager);
        for (guint i = 0; i < list->len; i++) {
                ProcessManagerCollectorInfo *info = list->pdata[i];

                if (info->state == COLLECTOR_STATE_RUNNING || info->state == COLLECTOR_STATE_PAUSED)
                        running++;
        }
        sd_notifyf(0, "STATUS=%u of %u collectors running; broker on %s; %s", running, list->len,
                   broker_get_socket_description(ctx->broker),
                   ctx->front ? "D-Bus front on " DBUS_FRONT_SERVICE : "no D-Bus front");
}

static void on_collector_state(ProcessManager *pm, const char *id, CollectorState old_state,
                               CollectorState new_state, const char *reason, gpointer user_data)
{
        context_update_status(user_data);
}

/*
 * DAEMONEYE_DEBUG_STALL=1 in the environment: SIGUSR2 blocks the main loop for
 * good, so a test can see the systemd watchdog restart a stuck agent.
 */
static gboolean on_debug_stall(gpointer user_data)
{
        g_warning("debug: SIGUSR2 with DAEMONEYE_DEBUG_STALL=1: blocking the main loop now");
        for (;;)
                pause();
        return G_SOURCE_REMOVE;
}

static gboolean on_watchdog(gpointer user_data)
{
        sd_notify(0, "WATCHDOG=1");
        return G_SOURCE_CONTINUE;
}

static void context_add_source(Context *ctx, GSource *source, GSourceFunc func)
{
        g_source_set_callback(source, func, ctx, NULL);
        g_source_attach(source, NULL);
        g_ptr_array_add(ctx->sources, source);
}

static void context_watch_signals(Context *ctx)
{
        guint64 watchdog_usec = 0;

        context_add_source(ctx, g_unix_signal_source_new(SIGTERM), on_terminate);
        context_add_source(ctx, g_unix_signal_source_new(SIGINT), on_terminate);
        context_add_source(ctx, g_unix_signal_source_new(SIGHUP), on_reload);
        context_add_source(ctx, g_unix_signal_source_new(SIGUSR1), on_metrics);
        if (g_strcmp0(g_getenv("DAEMONEYE_DEBUG_STALL"), "1") == 0)
                context_add_source(ctx, g_unix_signal_source_new(SIGUSR2), on_debug_stall);
        if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0)
                context_add_source(ctx, g_timeout_source_new((guint)MAX(watchdog_usec / 2000, 1)),
                                   on_watchdog);
}

/* Ready once the broker listens and, with a D-Bus front, once its name is ours. */
static void context_ready(Context *ctx)
{
        if (ctx->front)
                dbus_front_set_state(ctx->front, ctx->stopping ? "stopping" : "running");
        if (ctx->ready)
                return;
        ctx->ready = TRUE;
        sd_notify(0, "READY=1");
        context_update_status(ctx);
}

static gboolean front_reload(gpointer user_data, GError **error)
{
        return context_reload(user_data, error);
}

static void front_shutdown(gpointer user_data)
{
        Context *ctx = user_data;

        if (!ctx->stopping)
                on_terminate(ctx);
}

static void front_name_acquired(gpointer user_data)
{
        context_ready(user_data);
}

static gboolean context_start_front(Context *ctx, GError **error);

static gboolean on_bus_retry(gpointer user_data)
{
        Context *ctx = user_data;
        g_autoptr(GError) error = NULL;

        if (ctx->stopping || context_start_front(ctx, &error)) {
                g_clear_pointer(&ctx->bus_retry, g_source_unref);
                return G_SOURCE_REMOVE;
        }
        g_debug("D-Bus: %s", error->message);
        return G_SOURCE_CONTINUE;
}

/* The connection is gone: drop the front (not from within its own callback) and try again later. */
static gboolean on_front_dropped(gpointer user_data)
{
        Context *ctx = user_data;

        g_clear_pointer(&ctx->front, dbus_front_free);
        if (!ctx->stopping && !ctx->bus_retry) {
                ctx->bus_retry = g_timeout_source_new(BUS_RETRY_MS);
                g_source_set_callback(ctx->bus_retry, on_bus_retry, ctx, NULL);
                g_source_attach(ctx->bus_retry, NULL);
        }
        return G_SOURCE_REMOVE;
}

static void front_lost(gpointer user_data, gboolean disconnected, const char *why)
{
        Context *ctx = user_data;

        if (!disconnected) {
                /* Another agent has the name, or the bus policy refuses it to us: two agents must not run.
                 */
                g_critical("D-Bus: %s; stopping (is another daemoneye-agent running? is the bus policy "
                           "org.daemoneye.Agent1.conf installed in /usr/share/dbus-1/system.d, and dbus "
                           "reloaded?)",
                           why);
                ctx->exit_code = 1;
                front_shutdown(ctx);
                return;
        }
        g_warning("D-Bus: %s; the broker and the collectors carry on; reconnecting every %u s", why,
                  BUS_RETRY_MS / 1000);
        g_idle_add(on_front_dropped, ctx);
}

static gboolean context_start_front(Context *ctx, GError **error)
{
        const AgentOptions *options = ctx->options;
        const DbusFrontHooks hooks = {
                .reload = front_reload,
                .shutdown = front_shutdown,
                .name_acquired = front_name_acquired,
                .lost = front_lost,
                .user_data = ctx,
        };
        DbusFrontBusType type = options->bus_address                      ? DBUS_FRONT_BUS_ADDRESS
                                : g_strcmp0(options->bus, "session") == 0 ? DBUS_FRONT_BUS_SESSION
                                                                          : DBUS_FRONT_BUS_SYSTEM;

        ctx->front =
                dbus_front_new(type, options->bus_address, ctx->broker, ctx->process_manager, &hooks, error);
        if (ctx->front)
                g_message("D-Bus: connected; asking for %s", DBUS_FRONT_SERVICE);
        return ctx->front != NULL;
}

/** agent_run: see agent.h. */
int agent_run(const AgentOptions *options)
{
        g_auto(Context) ctx = {.options = options};
        g_autoptr(GError) error = NULL;

        agent_log_setup(options->verbose);
        /* Writes use MSG_NOSIGNAL; this covers anything else that writes to a closed pipe. */
        signal(SIGPIPE, SIG_IGN);

        ctx.config = context_load_config(&ctx, &error);
        if (!ctx.config) {
                g_critical("%s", error->message);
                return 1;
        }
        if (!process_manager_check_config(ctx.config, &error)) {
                g_critical("%s", error->message);
                return 1;
        }
        ctx.audit = audit_log_new(ctx.config->rpc.audit_log_path, &error);
        if (!ctx.audit) {
                g_critical("%s", error->message);
                return 1;
        }
        ctx.broker = broker_new(&ctx.config->broker, &error);
        if (!ctx.broker) {
                g_critical("%s", error->message);
                return 1;
        }
        broker_apply_rpc_config(ctx.broker, &ctx.config->rpc);
        ctx.process_manager = process_manager_new(ctx.broker, ctx.config, ctx.audit, &error);
        if (!ctx.process_manager) {
                g_critical("%s", error->message);
                return 1;
        }
        process_manager_add_state_func(ctx.process_manager, on_collector_state, &ctx, NULL);

        ctx.loop = g_main_loop_new(NULL, FALSE);
        ctx.sources = g_ptr_array_new_with_free_func((GDestroyNotify)g_source_unref);
        context_watch_signals(&ctx);

        g_message("daemoneye-agent %s: broker listening on %s (config %s)", DAEMONEYE_VERSION,
                  broker_get_socket_description(ctx.broker),
                  ctx.config->path ? ctx.config->path : "defaults");
        if (g_strcmp0(options->bus, "none") != 0 && !context_start_front(&ctx, &error)) {
                /* Asked for by name: that bus or nothing. The default: run without it, say so. */
                if (options->bus || options->bus_address) {
                        g_critical("D-Bus: %s", error->message);
                        return 1;
                }
                g_warning("D-Bus: %s; running without the D-Bus front (org.daemoneye.Agent1): daemoneye-cli "
                          "and "
                          "busctl cannot reach this agent (start the system bus, or pass --bus-address=ADDR "
                          "or "
                          "--bus=none)",
                          error->message);
                g_clear_error(&error);
        }
        if (!ctx.front)
                context_ready(&ctx);
        process_manager_autostart(ctx.process_manager);

        g_main_loop_run(ctx.loop);

        g_message("stopped");
        return ctx.exit_code;
}

/** agent_check_config: see agent.h. */
int agent_check_config(const AgentOptions *options)
{
        Context ctx = {.options = options};
        g_autoptr(GError) error = NULL;
        g_autoptr(Config) config = context_load_config(&ctx, &error);

        if (!config || !process_manager_check_config(config, &error)) {
                fprintf(stderr, "%s\n", error->message);
                return 1;
        }
        if (config->path)
                printf("configuration OK: %s\n", config->path);
        else
                printf("configuration OK: %s (not found; defaults%s)\n", options->config_path,
                       config->files[0] ? " and drop-ins" : "");
        return 0;
}
