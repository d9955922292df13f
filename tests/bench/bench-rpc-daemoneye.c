/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DaemonEye RPC: the requester is a DebRpcClient on its own DebClient and
 * GMainContext (pushed as thread default on the calling thread), the broker
 * the build's daemoneye-agent (started by bench-peers-daemoneye.c), the
 * responder daemoneye-test-collector dialling the agent's socket, whose
 * collector-core answers HEALTH_CHECK on control.collector.<id>. Pipelined
 * calls are made from the reply callbacks, so the client batches its writes
 * the way the library intends.
 */
#include "bench-rpc.h"

#include <unistd.h>

#include "deb-client.h"
#include "deb-rpc-client.h"

#define COLLECTOR_ID "bench"
#define CONNECT_TIMEOUT_MS 10000
#define READY_TIMEOUT_MS 20000
#define READY_CALL_TIMEOUT_MS 1000

typedef struct _Slot Slot;

struct _BenchRpcPeer {
        const BenchRpcOptions *opts;
        BenchServer *server;
        pid_t collector_pid;
        char *collector_log;

        GMainContext *ctx;
        DebClient *client;
        DebRpcClient *rpc;
        GError *client_error; /* first fatal error of the connection */

        /* the run in progress */
        Slot *slots;
        guint64 n, issued, finished;
        BenchSamples *samples;
        GError *call_error; /* first failed call */
};

/* One outstanding call: reused for the next call when its reply came. */
struct _Slot {
        BenchRpcPeer *peer;
        guint64 index;
        guint64 start_ns;
};

static void on_client_error(DebClient *client, const GError *error, gboolean fatal, gpointer user_data)
{
        BenchRpcPeer *p = user_data;

        if (fatal && !p->client_error)
                p->client_error = g_error_copy(error);
}

static char *peer_logs(BenchRpcPeer *p)
{
        g_autofree char *collector = p->collector_log ? bench_log_tail(p->collector_log, 1500) : NULL;

        return g_strdup_printf("\n--- collector log (tail) ---\n%s", collector ? collector : "(none)");
}

static void deb_rpc_stop(BenchRpcPeer *p)
{
        if (p->rpc)
                deb_rpc_client_free(g_steal_pointer(&p->rpc));
        if (p->client) {
                deb_client_disconnect(p->client, 5000);
                g_clear_pointer(&p->client, deb_client_unref);
        }
        if (p->ctx) {
                g_main_context_pop_thread_default(p->ctx);
                g_clear_pointer(&p->ctx, g_main_context_unref);
        }
        if (p->collector_pid > 0)
                bench_stop(p->collector_pid);
        if (p->server)
                bench_system_daemoneye.stop(p->server);
        g_clear_error(&p->client_error);
        g_clear_error(&p->call_error);
        g_free(p->collector_log);
        g_free(p);
}

/*
 * The collector subscribes after its handshake, and the broker may answer
 * "no collector" until then: call until a HealthCheck succeeds.
 */
static gboolean wait_collector_ready(BenchRpcPeer *p, GError **error)
{
        guint64 deadline = bench_now_ns() + (guint64)READY_TIMEOUT_MS * 1000000u;
        g_autoptr(GError) last = NULL;

        for (;;) {
                g_clear_error(&last);
                if (deb_rpc_client_call_sync(p->rpc, COLLECTOR_ID,
                                             DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_HEALTH_CHECK,
                                             NULL, READY_CALL_TIMEOUT_MS, NULL, &last))
                        return TRUE;
                if (!bench_child_alive(p->collector_pid)) {
                        g_autofree char *logs = peer_logs(p);

                        g_set_error(error, BENCH_ERROR, 0, "%s exited before answering a HealthCheck%s",
                                    p->opts->collector_path, logs);
                        return FALSE;
                }
                if (p->client_error) {
                        g_set_error(error, BENCH_ERROR, 0, "requester connection: %s",
                                    p->client_error->message);
                        return FALSE;
                }
                if (bench_now_ns() > deadline) {
                        g_autofree char *logs = peer_logs(p);

                        g_set_error(
                                error, BENCH_ERROR, 0,
                                "no successful HealthCheck of collector '%s' through the broker within %u "
                                "ms; last: %s%s",
                                COLLECTOR_ID, READY_TIMEOUT_MS, last->message, logs);
                        return FALSE;
                }
                g_usleep(20000);
        }
}

static BenchRpcPeer *deb_rpc_start(const BenchRpcOptions *opts, GError **error)
{
        BenchRpcPeer *p = g_new0(BenchRpcPeer, 1);
        DebRpcClientOptions rpc_opts = deb_rpc_client_options_default();
        const char *tmp = bench_tmpdir(error);
        static guint serial;

        p->opts = opts;
        if (!tmp)
                goto fail;
        if (!opts->collector_path || !g_file_test(opts->collector_path, G_FILE_TEST_IS_EXECUTABLE)) {
                g_set_error(error, BENCH_ERROR, 0,
                            "daemoneye-test-collector not found (pass --test-collector or set "
                            "DAEMONEYE_TEST_COLLECTOR)");
                goto fail;
        }
        p->server = bench_system_daemoneye.start(&opts->events, error);
        if (!p->server)
                goto fail;

        p->collector_log = g_strdup_printf("%s/test-collector-%u.log", tmp, ++serial);
        {
                const char *socket_path = bench_daemoneye_socket_path(p->server);
                const char *argv[] = {opts->collector_path, "--connect", socket_path, "--id",
                                      COLLECTOR_ID,         NULL};

                p->collector_pid = bench_spawn(argv, p->collector_log, error);
        }
        if (p->collector_pid < 0)
                goto fail;

        p->ctx = g_main_context_new();
        g_main_context_push_thread_default(p->ctx);
        p->client = deb_client_new("bench-rpc");
        deb_client_set_error_func(p->client, on_client_error, p);
        if (!deb_client_connect_sync(p->client, bench_daemoneye_socket_path(p->server), CONNECT_TIMEOUT_MS,
                                     error)) {
                g_prefix_error(error, "requester: ");
                goto fail;
        }
        /* Every call counts: no retries, and no breaker opening on the timeouts of the readiness probe. */
        rpc_opts.max_pending = MAX(opts->max_window, 1);
        rpc_opts.default_timeout_ms = opts->timeout_ms;
        rpc_opts.retry.max_attempts = 1;
        rpc_opts.breaker.failure_threshold = G_MAXUINT;
        p->rpc = deb_rpc_client_new(p->client, &rpc_opts, error);
        if (!p->rpc || !wait_collector_ready(p, error))
                goto fail;
        return p;

fail:
        deb_rpc_stop(p);
        return NULL;
}

static void on_reply(DebRpcClient *rpc, const DebRpcResponse *response, const GError *error,
                     const DebRpcCallInfo *info, gpointer user_data);

static void slot_call(Slot *slot)
{
        BenchRpcPeer *p = slot->peer;
        g_autoptr(GError) error = NULL;

        slot->index = p->issued;
        slot->start_ns = bench_now_ns();
        if (deb_rpc_client_call(p->rpc, COLLECTOR_ID,
                                DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_HEALTH_CHECK, NULL, 0,
                                on_reply, slot, &error) == 0) {
                if (!p->call_error)
                        p->call_error = g_error_new(BENCH_ERROR, 0, "call %" G_GUINT64_FORMAT ": %s",
                                                    slot->index + 1, error->message);
                return;
        }
        p->issued++;
}

/* Every call ends here exactly once (the RPC client guarantees it, by deadline at worst). */
static void on_reply(DebRpcClient *rpc, const DebRpcResponse *response, const GError *error,
                     const DebRpcCallInfo *info, gpointer user_data)
{
        Slot *slot = user_data;
        BenchRpcPeer *p = slot->peer;
        guint64 now = bench_now_ns();

        p->finished++;
        if (error) {
                if (!p->call_error)
                        p->call_error = g_error_new(BENCH_ERROR, 0, "call %" G_GUINT64_FORMAT " (%s): %s",
                                                    slot->index + 1, info->correlation_id, error->message);
                return;
        }
        bench_samples_add(p->samples, now - slot->start_ns);
        if (p->issued < p->n && !p->call_error)
                slot_call(slot);
}

static gboolean deb_rpc_run_calls(BenchRpcPeer *p, guint64 n, guint window, BenchSamples *samples,
                                  GError **error)
{
        guint w = (guint)MIN((guint64)MAX(window, 1), MAX(n, 1));

        p->n = n;
        p->issued = p->finished = 0;
        p->samples = samples;
        p->slots = g_new0(Slot, w);
        for (guint i = 0; i < w && p->issued < n && !p->call_error; i++) {
                p->slots[i].peer = p;
                slot_call(&p->slots[i]);
        }
        /* after a failure, the calls in flight still end: wait for them, the slots are theirs */
        while (p->finished < p->issued)
                g_main_context_iteration(p->ctx, TRUE);
        g_clear_pointer(&p->slots, g_free);
        p->samples = NULL;
        if (p->call_error) {
                if (!bench_child_alive(p->collector_pid))
                        g_prefix_error(&p->call_error, "(the collector exited) ");
                g_propagate_error(error, g_steal_pointer(&p->call_error));
                return FALSE;
        }
        return TRUE;
}

static BenchServer *deb_rpc_server(BenchRpcPeer *p)
{
        return p->server;
}

static pid_t deb_rpc_server_pid(BenchRpcPeer *p)
{
        return bench_system_daemoneye.server_pid(p->server);
}

static guint64 deb_rpc_responder_cpu_ns(BenchRpcPeer *p)
{
        return bench_process_cpu_ns(p->collector_pid);
}

static void deb_rpc_requester_bytes(BenchRpcPeer *p, guint64 *written, guint64 *read)
{
        DebClientStats stats;

        deb_client_get_stats(p->client, &stats);
        *written = stats.bytes_written;
        *read = stats.bytes_read;
}

const BenchRpcSystem bench_rpc_daemoneye = {
        .name = "daemoneye",
        .description = "DebRpcClient (libdaemoneye-eventbus) -> daemoneye-agent (Unix socket) -> "
                       "daemoneye-test-collector (collector-core) answers HealthCheck -> reply",
        .events = &bench_system_daemoneye,
        .start = deb_rpc_start,
        .stop = deb_rpc_stop,
        .server = deb_rpc_server,
        .server_pid = deb_rpc_server_pid,
        .responder_cpu_ns = deb_rpc_responder_cpu_ns,
        .requester_bytes = deb_rpc_requester_bytes,
        .run_calls = deb_rpc_run_calls,
};
