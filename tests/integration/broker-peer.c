/* SPDX-License-Identifier: Apache-2.0 */
/*
 * broker-peer: a real EventBus client process for the broker integration
 * tests, built on libdaemoneye-eventbus.
 *
 *   broker-peer --socket S publish --topic T... --count N [--rate R] [--end-topic E]
 *                                  [--window W --progress-topic T]
 *   broker-peer --socket S subscribe --pattern P... [--expect N] [--publishers K] [--end-topic E]
 *                                    [--progress-topic T [--progress-every N]]
 *   broker-peer --socket S stall --pattern P... [--publishers K] [--end-topic E]
 *   broker-peer --socket S hold [--pattern P...]
 *   broker-peer --socket S partial [--announce N] [--body M]
 *
 * Every payload is "<publisher id> <sequence>", sequences counting from 1 per
 * publisher across all its topics; after its last message a publisher sends
 * "END <publisher id>" on the end topic. Per-publisher order is preserved by
 * the broker, so a subscriber that has seen a publisher's END has seen every
 * message of it the broker delivered: counts are exact, not "at least".
 *
 * With --window, a publisher never runs more than W messages ahead of the
 * count its one subscriber reports on the progress topic: that subscriber's
 * queue in the broker can then never overflow, however the machine schedules
 * it, while a subscriber that reports nothing (a stalled one) still overflows.
 *
 * --ready-file F is written (atomically) once the peer is set up: connected,
 * subscriptions acknowledged. Results go to stdout as key=value tokens; the
 * exit status says whether the run met its expectations.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemoneye-eventbus.h"
#include "raw-conn.h"

/* Above this much unwritten output a publisher lets the socket drain first. */
#define PUBLISH_HIGH_WATERMARK (1024u * 1024u)

static char *arg_socket = NULL;
static char *arg_ready_file = NULL;
static char *arg_client_id = NULL;
static char **arg_topics = NULL;
static char **arg_patterns = NULL;
static char *arg_end_topic = NULL;
static gint64 arg_count = 1;
static gint64 arg_expect = -1;
static gint arg_publishers = 1;
static gint arg_rate = 0;
static gint arg_timeout_ms = 60000;
static gboolean arg_allow_gaps = FALSE;
static gint arg_announce = 1000;
static gint arg_body = 10;
static char *arg_progress_topic = NULL;
static gint arg_progress_every = 100;
static gint arg_window = 0;

static const GOptionEntry option_entries[] = {
        {"socket", 0, 0, G_OPTION_ARG_FILENAME, &arg_socket, "Broker socket", "PATH"},
        {"ready-file", 0, 0, G_OPTION_ARG_FILENAME, &arg_ready_file, "Written once set up", "PATH"},
        {"client-id", 0, 0, G_OPTION_ARG_STRING, &arg_client_id, "Client and publisher id", "ID"},
        {"topic", 0, 0, G_OPTION_ARG_STRING_ARRAY, &arg_topics, "publish: topic (repeatable)", "T"},
        {"pattern", 0, 0, G_OPTION_ARG_STRING_ARRAY, &arg_patterns, "Subscription (repeatable)", "P"},
        {"end-topic", 0, 0, G_OPTION_ARG_STRING, &arg_end_topic, "Topic of END markers", "E"},
        {"count", 0, 0, G_OPTION_ARG_INT64, &arg_count, "publish: messages per topic", "N"},
        {"rate", 0, 0, G_OPTION_ARG_INT, &arg_rate, "publish: messages per second (0: unpaced)", "R"},
        {"expect", 0, 0, G_OPTION_ARG_INT64, &arg_expect, "subscribe: messages expected", "N"},
        {"publishers", 0, 0, G_OPTION_ARG_INT, &arg_publishers, "END markers to wait for", "K"},
        {"allow-gaps", 0, 0, G_OPTION_ARG_NONE, &arg_allow_gaps, "subscribe: gaps are expected", NULL},
        {"timeout-ms", 0, 0, G_OPTION_ARG_INT, &arg_timeout_ms, "Give up after this long", "MS"},
        {"announce", 0, 0, G_OPTION_ARG_INT, &arg_announce, "partial: announced body length", "N"},
        {"body", 0, 0, G_OPTION_ARG_INT, &arg_body, "partial: body bytes actually sent", "N"},
        {"progress-topic", 0, 0, G_OPTION_ARG_STRING, &arg_progress_topic, "Flow-control topic", "T"},
        {"progress-every", 0, 0, G_OPTION_ARG_INT, &arg_progress_every, "subscribe: report every N", "N"},
        {"window", 0, 0, G_OPTION_ARG_INT, &arg_window,
         "publish: at most N messages ahead of the reported progress", "N"},
        {},
};

typedef struct {
        GMainLoop *loop;
        GHashTable *last_seq; /* publisher id → guint64 * (last sequence seen) */
        GHashTable *topics;   /* topic → guint64 * (messages) */
        GHashTable *ended;    /* publisher ids whose END arrived */
        guint64 received;
        guint64 acked; /* publish: highest count reported on the progress topic */
        guint64 gaps;
        guint64 malformed;
        guint64 broker_errors;
        gboolean in_order;
        gboolean closed;
        gboolean timed_out;
} Receiver;

static void receiver_init(Receiver *r)
{
        *r = (Receiver){
                .loop = g_main_loop_new(NULL, FALSE),
                .last_seq = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
                .topics = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
                .ended = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
                .in_order = TRUE,
        };
}

static void receiver_clear(Receiver *r)
{
        g_clear_pointer(&r->loop, g_main_loop_unref);
        g_clear_pointer(&r->last_seq, g_hash_table_unref);
        g_clear_pointer(&r->topics, g_hash_table_unref);
        g_clear_pointer(&r->ended, g_hash_table_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Receiver, receiver_clear)

static gboolean receiver_done(Receiver *r)
{
        if (arg_end_topic)
                return g_hash_table_size(r->ended) >= (guint)arg_publishers;
        return arg_expect >= 0 && r->received >= (guint64)arg_expect;
}

/* Splits "<id> <seq>" (not NUL-terminated on the wire) into @id and @seq. */
static gboolean parse_payload(const ProtobufCBinaryData *payload, char *id, gsize id_size, guint64 *seq)
{
        char buf[256];
        char *space, *end;

        if (payload->len == 0 || payload->len >= sizeof(buf))
                return FALSE;
        memcpy(buf, payload->data, payload->len);
        buf[payload->len] = '\0';
        space = strrchr(buf, ' ');
        if (!space || space == buf || (gsize)(space - buf) >= id_size)
                return FALSE;
        *space = '\0';
        g_strlcpy(id, buf, id_size);
        errno = 0;
        *seq = g_ascii_strtoull(space + 1, &end, 10);
        return errno == 0 && *end == '\0' && end != space + 1;
}

static void on_message(DebClient *client, const DebEnvelope *env, gpointer user_data)
{
        Receiver *r = user_data;
        char id[128];
        guint64 seq, *last, *topic_count;

        if (arg_end_topic && g_str_equal(env->topic, arg_end_topic)) {
                /* One END may reach several matching subscriptions of this client; count publishers. */
                if (env->payload.len > 4 && memcmp(env->payload.data, "END ", 4) == 0)
                        g_hash_table_add(r->ended, g_strndup((const char *)env->payload.data + 4,
                                                             env->payload.len - 4));
                else
                        r->malformed++;
                goto out;
        }

        r->received++;
        topic_count = g_hash_table_lookup(r->topics, env->topic);
        if (!topic_count) {
                topic_count = g_new0(guint64, 1);
                g_hash_table_insert(r->topics, g_strdup(env->topic), topic_count);
        }
        (*topic_count)++;

        if (arg_progress_topic && r->received % (guint64)arg_progress_every == 0) {
                char progress[32];

                g_snprintf(progress, sizeof(progress), "%" G_GUINT64_FORMAT, r->received);
                if (!deb_client_publish(client, arg_progress_topic, progress, strlen(progress), NULL, NULL))
                        r->broker_errors++;
        }

        if (!parse_payload(&env->payload, id, sizeof(id), &seq)) {
                r->malformed++;
                goto out;
        }
        last = g_hash_table_lookup(r->last_seq, id);
        if (!last) {
                last = g_new0(guint64, 1);
                g_hash_table_insert(r->last_seq, g_strdup(id), last);
        }
        if (seq <= *last) {
                if (r->in_order)
                        g_printerr("publisher %s: sequence %" G_GUINT64_FORMAT " after %" G_GUINT64_FORMAT
                                   "\n",
                                   id, seq, *last);
                r->in_order = FALSE;
        } else if (seq != *last + 1) {
                r->gaps++;
        }
        *last = MAX(*last, seq);
out:
        if (receiver_done(r))
                g_main_loop_quit(r->loop);
}

static void on_error(DebClient *client, const GError *error, gboolean fatal, gpointer user_data)
{
        Receiver *r = user_data;

        g_printerr("broker-peer %s: %s%s\n", deb_client_get_id(client), fatal ? "fatal: " : "",
                   error->message);
        if (fatal) {
                r->closed = TRUE;
                g_main_loop_quit(r->loop);
        } else {
                r->broker_errors++;
        }
}

static gboolean on_timeout(gpointer user_data)
{
        Receiver *r = user_data;

        r->timed_out = TRUE;
        g_main_loop_quit(r->loop);
        return G_SOURCE_REMOVE;
}

static gint compare_strings(gconstpointer a, gconstpointer b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void receiver_print(Receiver *r)
{
        g_autofree gpointer *keys = NULL;
        guint n;

        printf("received=%" G_GUINT64_FORMAT " publishers=%u in_order=%d gaps=%" G_GUINT64_FORMAT
               " ended=%u malformed=%" G_GUINT64_FORMAT " errors=%" G_GUINT64_FORMAT
               " closed=%d timed_out=%d\n",
               r->received, g_hash_table_size(r->last_seq), r->in_order, r->gaps,
               g_hash_table_size(r->ended), r->malformed, r->broker_errors, r->closed, r->timed_out);

        keys = g_hash_table_get_keys_as_array(r->topics, &n);
        qsort(keys, n, sizeof(gpointer), compare_strings);
        for (guint i = 0; i < n; i++)
                printf("topic:%s=%" G_GUINT64_FORMAT "\n", (const char *)keys[i],
                       *(guint64 *)g_hash_table_lookup(r->topics, keys[i]));
        fflush(stdout);
}

static gboolean write_ready_file(GError **error)
{
        if (!arg_ready_file)
                return TRUE;
        return g_file_set_contents(arg_ready_file, "ready\n", -1, error);
}

static DebClient *connect_client(Receiver *r, GError **error)
{
        g_autoptr(DebClient) client = deb_client_new(arg_client_id);

        deb_client_set_error_func(client, on_error, r);
        if (!deb_client_connect_sync(client, arg_socket, 10000, error))
                return NULL;
        return g_steal_pointer(&client);
}

static gboolean subscribe_all(DebClient *client, Receiver *r, GError **error)
{
        for (char **p = arg_patterns; p && *p; p++)
                if (deb_client_subscribe(client, *p, on_message, r, NULL, error) == 0)
                        return FALSE;
        if (arg_end_topic && deb_client_subscribe(client, arg_end_topic, on_message, r, NULL, error) == 0)
                return FALSE;
        return deb_client_sync(client, 10000, error) && write_ready_file(error);
}

static void receiver_run(Receiver *r)
{
        guint timeout_id;

        if (receiver_done(r))
                return;
        timeout_id = g_timeout_add(arg_timeout_ms, on_timeout, r);
        g_main_loop_run(r->loop);
        if (!r->timed_out)
                g_source_remove(timeout_id);
}

static int run_subscribe(GError **error)
{
        g_auto(Receiver) r = {0};
        g_autoptr(DebClient) client = NULL;
        gboolean ok;

        receiver_init(&r);
        client = connect_client(&r, error);
        if (!client || !subscribe_all(client, &r, error))
                return EXIT_FAILURE;
        receiver_run(&r);
        deb_client_disconnect(client, 1000);
        receiver_print(&r);

        ok = !r.timed_out && !r.closed && r.in_order && r.malformed == 0 && r.broker_errors == 0 &&
             (arg_expect < 0 || r.received == (guint64)arg_expect) && (arg_allow_gaps || r.gaps == 0);
        return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Subscribes and then does not read the socket until SIGUSR1: the broker's
 * queue for it fills up. Then reads what the broker kept for it, until the
 * END markers arrive or the broker closes the connection.
 */
static int run_stall(GError **error)
{
        g_auto(Receiver) r = {0};
        g_autoptr(DebClient) client = NULL;
        sigset_t mask;
        int sig;

        receiver_init(&r);
        client = connect_client(&r, error);
        if (!client || !subscribe_all(client, &r, error))
                return EXIT_FAILURE;

        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        if (sigwait(&mask, &sig) != 0) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_IO, "sigwait failed");
                return EXIT_FAILURE;
        }

        receiver_run(&r);
        deb_client_disconnect(client, 1000);
        receiver_print(&r);
        return r.timed_out ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Stays connected until the broker closes the connection. */
static int run_hold(GError **error)
{
        g_auto(Receiver) r = {0};
        g_autoptr(DebClient) client = NULL;

        receiver_init(&r);
        client = connect_client(&r, error);
        if (!client || !subscribe_all(client, &r, error))
                return EXIT_FAILURE;
        /* Neither an END nor a count ends a hold: only the broker closing it, or the timeout. */
        g_clear_pointer(&arg_end_topic, g_free);
        arg_expect = -1;
        receiver_run(&r);
        receiver_print(&r);
        return r.closed ? EXIT_SUCCESS : EXIT_FAILURE;
}

static void on_progress(DebClient *client, const DebEnvelope *env, gpointer user_data)
{
        Receiver *r = user_data;
        char buf[32];

        if (env->payload.len == 0 || env->payload.len >= sizeof(buf))
                return;
        memcpy(buf, env->payload.data, env->payload.len);
        buf[env->payload.len] = '\0';
        r->acked = MAX(r->acked, g_ascii_strtoull(buf, NULL, 10));
}

static gboolean publish_one(DebClient *client, Receiver *r, const char *topic, const char *payload,
                            GError **error)
{
        if (!deb_client_publish(client, topic, payload, strlen(payload), NULL, error))
                return FALSE;
        /* Flow control: never buffer more than the watermark in this process. */
        while (deb_client_get_pending_bytes(client) > PUBLISH_HIGH_WATERMARK && !r->closed)
                g_main_context_iteration(NULL, TRUE);
        if (r->closed) {
                g_set_error(error, DEB_ERROR, DEB_ERROR_CLOSED, "connection closed while publishing");
                return FALSE;
        }
        return TRUE;
}

static int run_publish(GError **error)
{
        g_auto(Receiver) r = {0};
        g_autoptr(DebClient) client = NULL;
        g_autofree char *end = NULL;
        const char *id;
        guint n_topics = arg_topics ? g_strv_length(arg_topics) : 0;
        gint64 start;
        guint64 seq = 0;

        if (n_topics == 0) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "publish: no --topic");
                return EXIT_FAILURE;
        }
        receiver_init(&r);
        client = connect_client(&r, error);
        if (!client)
                return EXIT_FAILURE;
        if (arg_window > 0) {
                if (!arg_progress_topic || arg_window < 2 * arg_progress_every) {
                        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                                    "publish: --window needs --progress-topic and must be at least twice "
                                    "the subscriber's --progress-every");
                        return EXIT_FAILURE;
                }
                if (deb_client_subscribe(client, arg_progress_topic, on_progress, &r, NULL, error) == 0 ||
                    !deb_client_sync(client, 10000, error))
                        return EXIT_FAILURE;
        }
        if (!write_ready_file(error))
                return EXIT_FAILURE;
        id = deb_client_get_id(client);

        start = g_get_monotonic_time();
        for (gint64 i = 0; i < arg_count; i++) {
                for (guint t = 0; t < n_topics; t++) {
                        char payload[192];

                        /* Closed loop: stay within the window of what the subscriber reported. */
                        while (arg_window > 0 && seq - r.acked >= (guint64)arg_window && !r.closed)
                                g_main_context_iteration(NULL, TRUE);

                        g_snprintf(payload, sizeof(payload), "%s %" G_GUINT64_FORMAT, id, ++seq);
                        if (!publish_one(client, &r, arg_topics[t], payload, error))
                                return EXIT_FAILURE;
                }
                /* Pacing: write out what is due, then wait for the schedule to catch up. */
                while (arg_rate > 0) {
                        gint64 due_us = start + (gint64)(seq * G_USEC_PER_SEC / (guint64)arg_rate);
                        gint64 now = g_get_monotonic_time();

                        if (now >= due_us)
                                break;
                        if (!deb_client_flush(client, 10000, error))
                                return EXIT_FAILURE;
                        if (due_us - now > 200)
                                g_usleep((gulong)MIN(due_us - now, 1000));
                }
        }
        if (arg_end_topic) {
                end = g_strdup_printf("END %s", id);
                if (!publish_one(client, &r, arg_end_topic, end, error))
                        return EXIT_FAILURE;
        }
        if (!deb_client_flush(client, 60000, error))
                return EXIT_FAILURE;
        deb_client_disconnect(client, 10000);

        printf("published=%" G_GUINT64_FORMAT " errors=%" G_GUINT64_FORMAT " seconds=%.3f\n", seq,
               r.broker_errors, (double)(g_get_monotonic_time() - start) / G_USEC_PER_SEC);
        fflush(stdout);
        return r.broker_errors == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * A handshake, then a frame header announcing --announce bytes followed by
 * only --body of them, then nothing: the test kills this process there.
 */
static int run_partial(GError **error)
{
        g_autoptr(RawConn) conn = NULL;
        g_autofree guint8 *buf = NULL;
        gsize len = DEB_FRAME_HEADER_SIZE + (gsize)MAX(arg_body, 0);

        conn = raw_conn_connect(arg_socket, error);
        if (!conn || !raw_conn_handshake(conn, arg_client_id ? arg_client_id : "partial", 10000, error))
                return EXIT_FAILURE;

        buf = g_malloc0(len);
        deb_frame_write_header(buf, (guint32)arg_announce);
        memset(buf + DEB_FRAME_HEADER_SIZE, 0x0a, len - DEB_FRAME_HEADER_SIZE);
        if (!raw_conn_write(conn, buf, len, error) || !write_ready_file(error))
                return EXIT_FAILURE;
        for (;;)
                pause();
}

int main(int argc, char **argv)
{
        g_autoptr(GOptionContext) context = g_option_context_new("MODE");
        g_autoptr(GError) error = NULL;
        sigset_t mask;
        const char *mode;
        int r;

        /* Blocked from the start, before any thread exists, so only sigwait() sees it. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        g_option_context_add_main_entries(context, option_entries, NULL);
        if (!g_option_context_parse(context, &argc, &argv, &error)) {
                g_printerr("broker-peer: %s\n", error->message);
                return 2;
        }
        if (argc != 2 || !arg_socket || arg_timeout_ms <= 0 || arg_publishers < 1 ||
            arg_progress_every < 1) {
                g_printerr("broker-peer: need --socket and exactly one MODE "
                           "(publish, subscribe, stall, hold, partial)\n");
                return 2;
        }
        mode = argv[1];

        if (g_str_equal(mode, "publish"))
                r = run_publish(&error);
        else if (g_str_equal(mode, "subscribe"))
                r = run_subscribe(&error);
        else if (g_str_equal(mode, "stall"))
                r = run_stall(&error);
        else if (g_str_equal(mode, "hold"))
                r = run_hold(&error);
        else if (g_str_equal(mode, "partial"))
                r = run_partial(&error);
        else {
                g_printerr("broker-peer: unknown mode '%s'\n", mode);
                return 2;
        }
        if (error)
                g_printerr("broker-peer %s: %s\n", mode, error->message);
        return r;
}
