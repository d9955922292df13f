/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tests of daemon/sd-event-source.c: sd_event sources of every kind run on
 * the GLib loop, including when a busier, higher-priority GLib source makes
 * GLib skip our check (the SD_EVENT_ARMED / PENDING cases).
 */
#include <unistd.h>

#include "sd-event-source.h"

typedef struct {
        guint timer_fired;
        guint defer_fired;
        guint io_fired;
        guint post_fired;
        guint glib_busy;
} Fixture;

static int on_timer(sd_event_source *source, uint64_t usec, void *user_data)
{
        Fixture *f = user_data;

        (void)source;
        (void)usec;
        f->timer_fired++;
        return 0;
}

static int on_defer(sd_event_source *source, void *user_data)
{
        Fixture *f = user_data;

        (void)source;
        f->defer_fired++;
        return 0;
}

static int on_post(sd_event_source *source, void *user_data)
{
        Fixture *f = user_data;

        (void)source;
        f->post_fired++;
        return 0;
}

static int on_io(sd_event_source *source, int fd, uint32_t revents, void *user_data)
{
        Fixture *f = user_data;
        char buf[16];

        (void)source;
        (void)revents;
        g_assert_cmpint(read(fd, buf, sizeof(buf)), >, 0);
        f->io_fired++;
        return 0;
}

static gboolean all_fired(const Fixture *f)
{
        return f->timer_fired > 0 && f->defer_fired > 0 && f->io_fired > 0;
}

static gboolean fail_timeout(gpointer user_data)
{
        (void)user_data;
        g_error("the sd_event sources did not run on the GLib loop within 5 s");
        return G_SOURCE_REMOVE;
}

/*
 * A higher-priority GLib source that is not ready at prepare but is after the
 * poll: GLib then skips the check of every lower-priority source, ours
 * included, and prepares it again next iteration while sd_event is ARMED.
 */
static gboolean busy_tick(gpointer user_data)
{
        Fixture *f = user_data;

        f->glib_busy++;
        return G_SOURCE_CONTINUE;
}

static void run_sources(gboolean with_busy_glib_source)
{
        g_autoptr(GMainContext) context = g_main_context_new();
        Fixture f = {0};
        sd_event *event = NULL;
        sd_event_source *timer = NULL, *defer = NULL, *io = NULL, *post = NULL;
        int fds[2];
        guint id, busy_id = 0, timeout_id;
        GSource *source;

        g_main_context_push_thread_default(context);
        g_assert_cmpint(sd_event_new(&event), >=, 0);
        g_assert_cmpint(pipe(fds), ==, 0);

        g_assert_cmpint(sd_event_add_time_relative(event, &timer, CLOCK_MONOTONIC, 20 * 1000, 0, on_timer, &f), >=,
                        0);
        g_assert_cmpint(sd_event_add_defer(event, &defer, on_defer, &f), >=, 0);
        g_assert_cmpint(sd_event_source_set_enabled(defer, SD_EVENT_ONESHOT), >=, 0);
        g_assert_cmpint(sd_event_add_io(event, &io, fds[0], EPOLLIN, on_io, &f), >=, 0);
        g_assert_cmpint(sd_event_add_post(event, &post, on_post, &f), >=, 0);
        g_assert_cmpint(write(fds[1], "x", 1), ==, 1);

        id = sd_event_source_glib_attach(event, context, G_PRIORITY_DEFAULT);
        g_assert_cmpuint(id, >, 0);
        if (with_busy_glib_source) {
                source = g_timeout_source_new(1);
                g_source_set_priority(source, G_PRIORITY_HIGH);
                g_source_set_callback(source, busy_tick, &f, NULL);
                busy_id = g_source_attach(source, context);
                g_source_unref(source);
        }
        source = g_timeout_source_new_seconds(5);
        g_source_set_callback(source, fail_timeout, &f, NULL);
        timeout_id = g_source_attach(source, context);
        g_source_unref(source);

        if (with_busy_glib_source) {
                /*
                 * Iterate while the 1 ms tick keeps making GLib skip our
                 * check, then remove it and expect our sources to have run
                 * or to run: sd_event must not be stuck in ARMED or PENDING.
                 */
                for (int i = 0; i < 200; i++)
                        g_main_context_iteration(context, TRUE);
                g_assert_cmpuint(f.glib_busy, >, 0);
                g_source_destroy(g_main_context_find_source_by_id(context, busy_id));
        }
        while (!all_fired(&f))
                g_main_context_iteration(context, TRUE);

        g_assert_cmpuint(f.timer_fired, ==, 1);
        g_assert_cmpuint(f.defer_fired, ==, 1);
        g_assert_cmpuint(f.io_fired, ==, 1);
        /* A post source runs after any other dispatch. */
        g_assert_cmpuint(f.post_fired, >=, 1);

        /* A second timer after the loop was idle: still driven. */
        f.timer_fired = 0;
        g_assert_cmpint(sd_event_source_set_time_relative(timer, 10 * 1000), >=, 0);
        g_assert_cmpint(sd_event_source_set_enabled(timer, SD_EVENT_ONESHOT), >=, 0);
        while (f.timer_fired == 0)
                g_main_context_iteration(context, TRUE);

        g_source_destroy(g_main_context_find_source_by_id(context, timeout_id));
        g_source_destroy(g_main_context_find_source_by_id(context, id));
        sd_event_source_unref(timer);
        sd_event_source_unref(defer);
        sd_event_source_unref(io);
        sd_event_source_unref(post);
        sd_event_unref(event);
        close(fds[0]);
        close(fds[1]);
        g_main_context_pop_thread_default(context);
}

static void test_sources_run(void)
{
        run_sources(FALSE);
}

static void test_skipped_check(void)
{
        run_sources(TRUE);
}

/* sd_event_exit() does not break the GLib loop or spin it. */
static void test_exit(void)
{
        g_autoptr(GMainContext) context = g_main_context_new();
        sd_event *event = NULL;
        guint id;

        g_assert_cmpint(sd_event_new(&event), >=, 0);
        id = sd_event_source_glib_attach(event, context, G_PRIORITY_DEFAULT);
        g_assert_cmpint(sd_event_exit(event, 0), >=, 0);
        for (int i = 0; i < 5; i++)
                g_main_context_iteration(context, FALSE);
        g_assert_cmpint(sd_event_get_state(event), ==, SD_EVENT_FINISHED);
        /* Nothing ready any more: a non-blocking iteration dispatches nothing. */
        g_assert_false(g_main_context_iteration(context, FALSE));
        g_source_destroy(g_main_context_find_source_by_id(context, id));
        sd_event_unref(event);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/sd-event-source/sources-run", test_sources_run);
        g_test_add_func("/sd-event-source/skipped-check", test_skipped_check);
        g_test_add_func("/sd-event-source/exit", test_exit);

        return g_test_run();
}
