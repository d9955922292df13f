/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemoneye-cli watch: subscribes to patterns and prints each message, until
 * --count messages, a signal, or the broker going away. One connection to
 * the broker socket carries every pattern; without the socket, one D-Bus
 * event stream per pattern does.
 */
#include <signal.h>
#include <string.h>

#include <glib-unix.h>

#include "cli.h"
#include "cli-output.h"
#include "deb-topic.h"

/* Subscriptions are live once the broker acknowledged them; it answers at once unless overloaded. */
#define CLI_WATCH_SYNC_TIMEOUT_MS 10000
/* On the way out, unsent Unsubscribe frames do not matter: the broker drops them with the connection. */
#define CLI_WATCH_DISCONNECT_TIMEOUT_MS 1000

typedef struct {
        GPtrArray *connections; /* one, or one event stream per pattern */
        CliOutput *output;
        GMainLoop *loop;
        GPtrArray *patterns; /* distinct, in command-line order */
        gint64 limit;        /* --count, 0: unlimited */
        gint64 received;
        gboolean done;
        GError *error; /* the first failure; ends the run */
} Watcher;

/* What a subscription's callback needs: the watcher and which pattern this is. */
typedef struct {
        Watcher *watcher;
        guint index;
} WatchSubscription;

static void watcher_stop(Watcher *watcher, GError *error)
{
        if (error && !watcher->error)
                watcher->error = error;
        else if (error)
                g_error_free(error);
        watcher->done = TRUE;
        g_main_loop_quit(watcher->loop);
}

/*
 * The client calls the callback of every subscription a message matches, so
 * with overlapping patterns ("events.#", "events.process.+") one message
 * arrives once per pattern; only the first pattern it matches prints it.
 */
static gboolean watcher_is_first_match(Watcher *watcher, guint index, const char *topic)
{
        for (guint i = 0; i < index; i++)
                if (deb_pattern_match(g_ptr_array_index(watcher->patterns, i), topic))
                        return FALSE;
        return TRUE;
}

static void watcher_on_message(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        WatchSubscription *subscription = user_data;
        Watcher *watcher = subscription->watcher;
        GError *error = NULL;

        if (watcher->done || !watcher_is_first_match(watcher, subscription->index, envelope->topic))
                return;
        if (!cli_output_write_envelope(watcher->output, envelope, &error)) {
                watcher_stop(watcher, error);
                return;
        }
        watcher->received++;
        if (watcher->limit > 0 && watcher->received >= watcher->limit)
                watcher_stop(watcher, NULL);
}

static CliConnection *watcher_connection_of(Watcher *watcher, DebClient *client)
{
        for (guint i = 0; i < watcher->connections->len; i++) {
                CliConnection *connection = g_ptr_array_index(watcher->connections, i);

                if (connection->client == client)
                        return connection;
        }
        g_return_val_if_reached(g_ptr_array_index(watcher->connections, 0));
}

static void watcher_on_client_error(DebClient *client, const GError *error, gboolean fatal,
                                    gpointer user_data)
{
        Watcher *watcher = user_data;
        CliConnection *connection = watcher_connection_of(watcher, client);

        if (!fatal) {
                /* A refused request; the subscriptions that are live keep delivering. */
                g_printerr("daemoneye-cli: %s reported: %s\n", connection->peer, error->message);
                return;
        }
        watcher_stop(watcher, g_error_new(CLI_ERROR, CLI_ERROR_FAILED, "%s closed the connection: %s",
                                          connection->peer, error->message));
}

static void watcher_on_output_error(CliOutput *output, const GError *error, gpointer user_data)
{
        watcher_stop(user_data, g_error_copy(error));
}

static gboolean watcher_on_signal(gpointer user_data)
{
        watcher_stop(user_data, NULL);
        return G_SOURCE_CONTINUE;
}

/* Pattern i goes to the one connection, or to its own event stream. */
static CliConnection *watcher_connection_for(Watcher *watcher, guint index)
{
        return g_ptr_array_index(watcher->connections, watcher->connections->len > 1 ? index : 0);
}

static gboolean watcher_subscribe(Watcher *watcher, GError **error)
{
        g_autoptr(GError) local_error = NULL;

        for (guint i = 0; i < watcher->patterns->len; i++) {
                WatchSubscription *subscription = g_new(WatchSubscription, 1);

                *subscription = (WatchSubscription){.watcher = watcher, .index = i};
                if (deb_client_subscribe(watcher_connection_for(watcher, i)->client,
                                         g_ptr_array_index(watcher->patterns, i), watcher_on_message,
                                         subscription, g_free, error) == 0) {
                        g_free(subscription);
                        return FALSE;
                }
        }
        for (guint i = 0; i < watcher->connections->len; i++) {
                CliConnection *connection = g_ptr_array_index(watcher->connections, i);

                if (!deb_client_sync(connection->client, CLI_WATCH_SYNC_TIMEOUT_MS, &local_error)) {
                        g_set_error(error, CLI_ERROR, CLI_ERROR_FAILED, "cannot subscribe at %s: %s",
                                    connection->peer, local_error->message);
                        return FALSE;
                }
        }
        return TRUE;
}

/*
 * Without the broker socket (missing, or not ours to open), the agent may
 * still give us the events over D-Bus: OpenEventStream() returns a socket
 * subscribed to one pattern, so each pattern gets its own. When the bus
 * cannot help either, the socket's error says more, unless the bus refused us.
 */
static gboolean watch_connect(const CliOptions *options, GPtrArray *patterns, GPtrArray *connections,
                              GError **error)
{
        g_autoptr(GError) socket_error = NULL;
        g_autoptr(GError) bus_error = NULL;
        CliConnection *connection;

        connection = cli_connection_open(options, &socket_error);
        if (connection) {
                g_ptr_array_add(connections, connection);
                return TRUE;
        }
        if (!g_error_matches(socket_error, CLI_ERROR, CLI_ERROR_NOT_RUNNING) &&
            !g_error_matches(socket_error, CLI_ERROR, CLI_ERROR_NOT_AUTHORIZED)) {
                g_propagate_error(error, g_steal_pointer(&socket_error));
                return FALSE;
        }
        for (guint i = 0; i < patterns->len; i++) {
                connection = cli_connection_open_event_stream(options, g_ptr_array_index(patterns, i),
                                                              &bus_error);
                if (!connection)
                        break;
                g_ptr_array_add(connections, connection);
        }
        if (!bus_error)
                return TRUE;
        g_set_error(error, CLI_ERROR,
                    g_error_matches(bus_error, CLI_ERROR, CLI_ERROR_NOT_RUNNING) ? socket_error->code
                                                                                 : bus_error->code,
                    "%s; over D-Bus: %s", socket_error->message, bus_error->message);
        return FALSE;
}

static gboolean watch_parse_patterns(int argc, char **argv, GPtrArray *patterns, GError **error)
{
        if (argc < 2) {
                g_set_error_literal(error, CLI_ERROR, CLI_ERROR_USAGE, "watch: no pattern given");
                return FALSE;
        }
        for (int i = 1; i < argc; i++) {
                if (!deb_pattern_validate(argv[i], error))
                        return FALSE;
                /* A pattern given twice would be a second subscription printing nothing. */
                if (!g_ptr_array_find_with_equal_func(patterns, argv[i], g_str_equal, NULL))
                        g_ptr_array_add(patterns, argv[i]);
        }
        return TRUE;
}

gboolean cli_watch(CliOptions *options, int argc, char **argv, GError **error)
{
        g_autoptr(GOptionContext) context = g_option_context_new("watch PATTERN…");
        gint64 count = 0;
        const GOptionEntry entries[] = {
                {"count", 'n', 0, G_OPTION_ARG_INT64, &count, "Exit after N messages", "N"},
                {NULL},
        };
        g_autoptr(GPtrArray) patterns = g_ptr_array_new();
        g_autoptr(GPtrArray) connections =
                g_ptr_array_new_with_free_func((GDestroyNotify)cli_connection_free);
        g_autoptr(CliOutput) output = NULL;
        g_autoptr(GMainLoop) loop = NULL;
        g_autoptr(GError) local_error = NULL;
        Watcher watcher = {0};
        guint sigint_id, sigterm_id;

        g_option_context_set_summary(context, "Print the messages whose topic matches any PATTERN.\n"
                                              "'+' matches one level, '#' any number of trailing levels.");
        g_option_context_set_description(
                context,
                "Each message is a line \"TOPIC PAYLOAD\", the payload as text when it is printable\n"
                "UTF-8, else \"base64:…\"; with --json one JSON object per line. Runs until --count\n"
                "messages were printed, or SIGINT/SIGTERM (exit 0), or the broker closes the\n"
                "connection (exit 1). When the broker socket is missing or not accessible, the\n"
                "events come from the agent over D-Bus (OpenEventStream, authorized by polkit).");
        g_option_context_add_main_entries(context, entries, NULL);
        if (!cli_options_parse(options, context, &argc, &argv, error))
                return FALSE;
        if (count < 0) {
                g_set_error(error, CLI_ERROR, CLI_ERROR_USAGE,
                            "watch: --count %" G_GINT64_FORMAT " is negative", count);
                return FALSE;
        }
        if (!watch_parse_patterns(argc, argv, patterns, error))
                return FALSE;

        loop = g_main_loop_new(NULL, FALSE);
        output = cli_output_new(stdout, options->json);
        watcher = (Watcher){.connections = connections,
                            .output = output,
                            .loop = loop,
                            .patterns = patterns,
                            .limit = count};
        cli_output_set_error_func(output, watcher_on_output_error, &watcher);

        /* Installed before connecting, so a Ctrl-C while waiting for the broker also ends cleanly. */
        sigint_id = g_unix_signal_add(SIGINT, watcher_on_signal, &watcher);
        sigterm_id = g_unix_signal_add(SIGTERM, watcher_on_signal, &watcher);

        if (watch_connect(options, patterns, connections, &local_error)) {
                for (guint i = 0; i < connections->len; i++)
                        deb_client_set_error_func(((CliConnection *)connections->pdata[i])->client,
                                                  watcher_on_client_error, &watcher);
                if (!watcher.done && !watcher_subscribe(&watcher, &local_error))
                        watcher_stop(&watcher, g_steal_pointer(&local_error));
                /* g_main_loop_quit() before g_main_loop_run() does not stop it: check first. */
                if (!watcher.done)
                        g_main_loop_run(loop);
                for (guint i = 0; i < connections->len; i++)
                        deb_client_disconnect(((CliConnection *)connections->pdata[i])->client,
                                              CLI_WATCH_DISCONNECT_TIMEOUT_MS);
        } else {
                watcher_stop(&watcher, g_steal_pointer(&local_error));
        }
        g_source_remove(sigint_id);
        g_source_remove(sigterm_id);

        /* Everything printed so far reaches the reader, whatever ended the run. */
        if (!cli_output_flush(output, &local_error))
                watcher_stop(&watcher, g_steal_pointer(&local_error));

        if (watcher.error) {
                g_propagate_error(error, g_steal_pointer(&watcher.error));
                return FALSE;
        }
        return TRUE;
}
