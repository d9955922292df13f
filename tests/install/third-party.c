/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A third-party program built only from the installed headers and the
 * pkg-config file: it connects to a broker, subscribes, publishes one event
 * to itself and exits 0 when it comes back.
 */
#include <daemoneye-eventbus.h>
#include <stdio.h>

static void on_message(DebClient *client, const DebEnvelope *envelope, gpointer user_data)
{
        gboolean *received = user_data;

        *received = envelope->payload.len == 5 && memcmp(envelope->payload.data, "hello", 5) == 0;
}

int main(int argc, char **argv)
{
        g_autoptr(DebClient) client = deb_client_new("third-party");
        g_autoptr(GError) error = NULL;
        gboolean received = FALSE;
        gint64 deadline;

        if (argc != 2) {
                fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
                return 2;
        }
        if (!deb_client_connect_sync(client, argv[1], 5000, &error) ||
            !deb_client_subscribe(client, "events.thirdparty.#", on_message, &received, NULL, &error) ||
            !deb_client_sync(client, 5000, &error) ||
            !deb_client_publish(client, "events.thirdparty.test", "hello", 5, NULL, &error)) {
                fprintf(stderr, "third-party: %s\n", error->message);
                return 1;
        }
        deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        while (!received && g_get_monotonic_time() < deadline)
                g_main_context_iteration(NULL, TRUE);
        deb_client_disconnect(client, 1000);
        return received ? 0 : 1;
}
