/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sd_event on the GLib main loop.
 *
 * sd_event's own loop is prepare → wait → dispatch, with the state machine
 * INITIAL → ARMED (prepared, nothing ready yet) or PENDING (something ready)
 * → dispatch → INITIAL. GLib calls prepare and check of every source, but
 * skips check (and dispatch) of a source whose priority is lower than that of
 * a source already found ready during prepare. So prepare can run again while
 * sd_event is still ARMED or PENDING from the last iteration, where
 * sd_event_prepare() would fail with -EBUSY: it must then take the loop where
 * it stands instead.
 */
#include <errno.h>

#include "sd-event-source.h"

typedef struct {
        GSource source;
        sd_event *event;
        gpointer fd_tag;
} SdEventSource;

static void sd_event_source_log_failure(const char *what, int r)
{
        /* Logged and reported "not ready": a broken sd_event must not spin the GLib loop. */
        g_warning("sd-event: %s failed: %s", what, g_strerror(-r));
}

static gboolean sd_event_source_prepare(GSource *source, gint *timeout)
{
        SdEventSource *s = (SdEventSource *)source;
        int r;

        /* Timers live in sd_event's own epoll fd, which is what we poll. */
        *timeout = -1;

        switch (sd_event_get_state(s->event)) {
        case SD_EVENT_PENDING:
                /* Ready from the last check, not dispatched: a higher-priority source ran instead. */
                return TRUE;
        case SD_EVENT_ARMED:
                /* Prepared last time but check was skipped; let check wait on it again. */
                return FALSE;
        case SD_EVENT_INITIAL:
                break;
        default:
                /* FINISHED or EXITING: nothing will ever be ready. */
                return FALSE;
        }

        r = sd_event_prepare(s->event);
        if (r < 0) {
                sd_event_source_log_failure("prepare", r);
                return FALSE;
        }
        return r > 0;
}

static gboolean sd_event_source_check(GSource *source)
{
        SdEventSource *s = (SdEventSource *)source;
        int r;

        switch (sd_event_get_state(s->event)) {
        case SD_EVENT_PENDING:
                return TRUE;
        case SD_EVENT_ARMED:
                break;
        default:
                return FALSE;
        }

        r = sd_event_wait(s->event, 0);
        if (r < 0) {
                sd_event_source_log_failure("wait", r);
                return FALSE;
        }
        return r > 0;
}

static gboolean sd_event_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        SdEventSource *s = (SdEventSource *)source;
        int r;

        (void)callback;
        (void)user_data;

        if (sd_event_get_state(s->event) != SD_EVENT_PENDING)
                return G_SOURCE_CONTINUE;
        r = sd_event_dispatch(s->event);
        if (r < 0)
                sd_event_source_log_failure("dispatch", r);
        /* sd_event_exit() leaves the source in place: the owner decides when the GLib loop ends. */
        return G_SOURCE_CONTINUE;
}

static void sd_event_source_finalize(GSource *source)
{
        SdEventSource *s = (SdEventSource *)source;

        s->event = sd_event_unref(s->event);
}

static GSourceFuncs sd_event_source_funcs = {
        .prepare = sd_event_source_prepare,
        .check = sd_event_source_check,
        .dispatch = sd_event_source_dispatch,
        .finalize = sd_event_source_finalize,
};

GSource *sd_event_source_glib_new(sd_event *event)
{
        SdEventSource *s;

        g_return_val_if_fail(event != NULL, NULL);

        s = (SdEventSource *)g_source_new(&sd_event_source_funcs, sizeof(SdEventSource));
        s->event = sd_event_ref(event);
        s->fd_tag = g_source_add_unix_fd(&s->source, sd_event_get_fd(event), G_IO_IN);
        g_source_set_name(&s->source, "sd-event");
        /*
         * No blocking around dispatch (it costs GLib two wakeups per
         * dispatch): a nested iteration finds sd_event RUNNING, and prepare
         * and check say "not ready" then.
         */
        g_source_set_can_recurse(&s->source, TRUE);
        return &s->source;
}

guint sd_event_source_glib_attach(sd_event *event, GMainContext *context, int priority)
{
        GSource *source = sd_event_source_glib_new(event);
        guint id;

        g_source_set_priority(source, priority);
        id = g_source_attach(source, context);
        g_source_unref(source);
        return id;
}
