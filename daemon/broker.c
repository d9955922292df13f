/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker: listener, accept, routing, limits, timers.
 *
 * All sockets sit in one epoll set, polled by one GSource on the GLib loop.
 * Each dispatch handles up to EPOLL_BATCH ready sockets, one bounded read
 * each (level-triggered, so a flooding publisher just gets its next turn in
 * the next dispatch, after the others); the queues that got data during the
 * dispatch are flushed once at its end, saving write calls at high rates.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "broker-private.h"

#define EPOLL_BATCH 64
#define ACCEPT_PAUSE_MS 250
#define HOUSEKEEPING_SECONDS 30
#define SHUTDOWN_POLL_MS 20
#define REFUSAL_LOG_INTERVAL_US (10 * G_USEC_PER_SEC)

/* epoll data of the listening socket; connections use their own pointer. */
static char listener_tag;

typedef struct {
        GSource source;
        Broker *broker;
} BrokerSource;

static void broker_end_dispatch(Broker *broker);

static void broker_accept(Broker *broker);

/** broker_connection_set_events: makes epoll watch @events for @c (no call if unchanged). */
void broker_connection_set_events(BrokerConnection *c, guint32 events)
{
        struct epoll_event ev = {.events = events, .data.ptr = c};

        if (c->epoll_events == events || c->fd < 0)
                return;
        if (epoll_ctl(c->broker->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                g_error("epoll_ctl(MOD) on a registered fd failed: %s", g_strerror(errno));
        c->epoll_events = events;
}

/** broker_mark_dirty: @c gets flushed at the end of the current dispatch. */
void broker_mark_dirty(Broker *broker, BrokerConnection *c)
{
        if (c->dirty)
                return;
        c->dirty = TRUE;
        g_ptr_array_add(broker->dirty, c);
}

/** broker_schedule_deadline: makes the timer fire no later than @deadline_us (monotonic). */
void broker_schedule_deadline(Broker *broker, gint64 deadline_us)
{
        gint64 current = g_source_get_ready_time(broker->timer_source);

        if (current < 0 || deadline_us < current)
                g_source_set_ready_time(broker->timer_source, deadline_us);
}

/** broker_connection_detach: takes a closed @c out of the broker; it is freed at the end of the dispatch. */
void broker_connection_detach(Broker *broker, BrokerConnection *c)
{
        g_queue_unlink(&broker->connections, &c->link);
        g_assert(broker->n_open > 0);
        broker->n_open--;
        g_ptr_array_add(broker->dead, c);
}

static void collect_match(gpointer value, gpointer user_data)
{
        Broker *broker = user_data;
        BrokerConnection *c = value;

        /* Several patterns of one connection may match: deliver once. */
        if (c->generation == broker->generation)
                return;
        c->generation = broker->generation;
        g_ptr_array_add(broker->matched, c);
}

static MessageLane lane_for_message_type(int message_type)
{
        switch (message_type) {
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_HEARTBEAT:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_REQUEST:
        case DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_RESPONSE:
                return MESSAGE_LANE_CONTROL;
        default:
                return MESSAGE_LANE_DATA;
        }
}

/**
 * broker_deliver:
 *
 * Counts the publish, copies the frame once into a shared message and queues
 * it for every connection with a matching subscription, which are left in
 * broker->matched for the caller (the RPC router looks for the target there).
 */
void broker_deliver(Broker *broker, BrokerConnection *sender, const DebEnvelope *env, const DebFrame *frame,
                    gint64 ingress_us, BrokerTopicStats *stats)
{
        g_autoptr(Message) message = NULL;

        broker->metrics->total.published++;
        sender->published++;
        if (stats)
                stats->published++;

        broker->generation++;
        broker->matched->len = 0; /* no free func: cheaper than g_ptr_array_set_size() per publish */
        deb_topic_trie_match(broker->trie, env->topic, collect_match, broker);
        if (broker->matched->len == 0)
                return;

        message = message_new(frame->data, frame->size, lane_for_message_type(env->message_type), ingress_us,
                              stats);
        for (guint i = 0; i < broker->matched->len; i++)
                broker_connection_enqueue(broker->matched->pdata[i], message);
}

/**
 * broker_route_publish:
 * @frame: the frame as received; its bytes are what every subscriber gets
 * @stats: (nullable) the counters of the topic's prefix
 *
 * Routes one published frame: replies (response.<correlation_id>) and
 * requests go to the RPC router (broker-rpc.c), which decides who may see
 * them; everything else to every matching subscription.
 */
void broker_route_publish(Broker *broker, BrokerConnection *sender, const DebEnvelope *env,
                          const DebFrame *frame, gint64 ingress_us, BrokerTopicStats *stats)
{
        int type = env->message_type;

        if (broker_topic_is_rpc_response(env->topic)) {
                broker_rpc_route_response(broker, sender, env, frame, ingress_us, stats);
                return;
        }
        if (G_UNLIKELY(type == DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_REQUEST ||
                       type == DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_RPC_RESPONSE)) {
                broker_rpc_route_request(broker, sender, env, frame, ingress_us, stats);
                return;
        }
        broker_deliver(broker, sender, env, frame, ingress_us, stats);
}

static void broker_refuse(Broker *broker, int fd)
{
        DebEnvelope env = DAEMONEYE__EVENTBUS__ENVELOPE__INIT;
        Daemoneye__Eventbus__Error err = DAEMONEYE__EVENTBUS__ERROR__INIT;
        g_autofree char *text = NULL;
        g_autofree guint8 *payload = NULL;
        g_autoptr(Message) message = NULL;
        static gint64 last_log_us;
        gint64 now = g_get_monotonic_time();
        ssize_t r;

        text = g_strdup_printf("broker: %u clients connected, the limit (max_subscribers)", broker->n_open);
        err.code = DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_TOO_MANY_CLIENTS;
        err.message = text;
        err.fatal = TRUE;
        payload = g_malloc(protobuf_c_message_get_packed_size(&err.base) + 1);
        env.message_type = DAEMONEYE__EVENTBUS__MESSAGE_TYPE__MESSAGE_TYPE_ERROR;
        env.payload_type = (char *)daemoneye__eventbus__error__descriptor.name;
        env.payload.len = protobuf_c_message_pack(&err.base, payload);
        env.payload.data = payload;
        env.timestamp_us = (guint64)g_get_real_time();
        message = message_new_envelope(&env);

        /* A fresh socket has room for a small frame; if not, the client learns from the close. */
        r = send(fd, message->data, message->size, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)r;
        close(fd);
        broker->metrics->connections_refused++;

        /* Refusals come in floods: one line per interval, not one per client. */
        if (now - last_log_us >= REFUSAL_LOG_INTERVAL_US) {
                g_warning("refusing connections: %u clients connected, the limit (max_subscribers); "
                          "%" G_GUINT64_FORMAT " refused so far",
                          broker->n_open, broker->metrics->connections_refused);
                last_log_us = now;
        }
}

static gboolean accept_resume(gpointer user_data)
{
        Broker *broker = user_data;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener_tag};

        g_clear_pointer(&broker->accept_pause, g_source_unref);
        if (broker->accepting && epoll_ctl(broker->epoll_fd, EPOLL_CTL_ADD, broker->socket.fd, &ev) < 0)
                g_warning("resuming accept on %s: %s", broker_socket_describe(&broker->socket),
                          g_strerror(errno));
        return G_SOURCE_REMOVE;
}

/* Out of file descriptors: a level-triggered listener would wake us forever, so stop watching it briefly. */
static void accept_pause(Broker *broker, int err)
{
        static gint64 last_log_us;
        static guint64 pauses;
        gint64 now = g_get_monotonic_time();

        /* The condition can last: one line per interval, not one per pause. */
        pauses++;
        if (now - last_log_us >= REFUSAL_LOG_INTERVAL_US) {
                g_warning("accept on %s: %s; pausing accept for %d ms (%" G_GUINT64_FORMAT " pauses so far)",
                          broker_socket_describe(&broker->socket), g_strerror(err), ACCEPT_PAUSE_MS, pauses);
                last_log_us = now;
        }
        epoll_ctl(broker->epoll_fd, EPOLL_CTL_DEL, broker->socket.fd, NULL);
        broker->accept_pause = g_timeout_source_new(ACCEPT_PAUSE_MS);
        g_source_set_callback(broker->accept_pause, accept_resume, broker, NULL);
        g_source_attach(broker->accept_pause, NULL);
}

/*
 * Makes @fd (transfer full: closed on failure) a connection in HANDSHAKE
 * state: watched for input, with the handshake deadline armed.
 */
static BrokerConnection *broker_register(Broker *broker, int fd, GError **error)
{
        struct epoll_event ev = {.events = EPOLLIN};
        BrokerConnection *c;

        c = broker_connection_new(broker, fd, ++broker->next_session);
        ev.data.ptr = c;
        if (epoll_ctl(broker->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "broker: cannot watch the connection of session %s: epoll_ctl(ADD): %s",
                            c->session_id, g_strerror(errsv));
                broker_connection_free(c);
                return NULL;
        }
        c->epoll_events = EPOLLIN;
        g_queue_push_tail_link(&broker->connections, &c->link);
        broker->n_open++;
        c->deadline_us = c->connected_us + (gint64)broker->config.startup_timeout_seconds * G_USEC_PER_SEC;
        broker_schedule_deadline(broker, c->deadline_us);
        return c;
}

static void broker_accept(Broker *broker)
{
        while (broker->accepting && !broker->accept_pause) {
                g_autoptr(GError) error = NULL;
                BrokerConnection *c;
                int fd;

                fd = accept4(broker->socket.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                        switch (errno) {
                        case EAGAIN:
                                return;
                        case EINTR:
                        case ECONNABORTED:
                        case EPROTO:
                                continue;
                        default:
                                /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse: never spin on it. */
                                accept_pause(broker, errno);
                                return;
                        }
                }
                broker->metrics->connections_accepted++;
                if (broker->n_open >= broker->config.max_subscribers) {
                        broker_refuse(broker, fd);
                        continue;
                }

                c = broker_register(broker, fd, &error);
                if (!c)
                        g_warning("%s", error->message);
        }
}

static gboolean broker_io_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        Broker *broker = ((BrokerSource *)source)->broker;
        struct epoll_event events[EPOLL_BATCH];
        gint64 now;
        int n;

        /* Can recurse (see broker_new()), but a nested loop iteration must not re-enter the broker. */
        if (broker->in_io_dispatch)
                return G_SOURCE_CONTINUE;
        n = epoll_wait(broker->epoll_fd, events, EPOLL_BATCH, 0);
        if (n < 0) {
                if (errno != EINTR)
                        g_warning("epoll_wait: %s", g_strerror(errno));
                return G_SOURCE_CONTINUE;
        }
        /* One ingress time per batch: latency is measured from here to "fully written". */
        now = g_get_monotonic_time();
        broker->in_io_dispatch = TRUE;
        for (int i = 0; i < n; i++) {
                if (events[i].data.ptr == &listener_tag)
                        broker_accept(broker);
                else
                        broker_connection_handle_io(events[i].data.ptr, events[i].events, now);
        }
        broker_end_dispatch(broker);
        broker->in_io_dispatch = FALSE;
        return G_SOURCE_CONTINUE;
}

static GSourceFuncs broker_io_funcs = {
        .dispatch = broker_io_dispatch,
};

/* Runs the closed callback of an adopted connection, once. */
static void broker_notify_closed(Broker *broker, BrokerConnection *c)
{
        BrokerClosedFunc func = c->closed_func;

        if (!func || broker->freeing)
                return;
        c->closed_func = NULL;
        broker_connection_log(c, G_LOG_LEVEL_DEBUG, "adopted connection closed; telling its owner");
        func(broker, c->closed_data);
}

/*
 * Flushes what this dispatch queued and frees the connections it closed,
 * after telling the owners of adopted ones. Their callbacks may queue
 * output or close connections in turn: loop until nothing is left.
 */
static void broker_end_dispatch(Broker *broker)
{
        do {
                for (guint i = 0; i < broker->dirty->len; i++) {
                        BrokerConnection *c = broker->dirty->pdata[i];

                        c->dirty = FALSE;
                        if (c->state != CONNECTION_CLOSED)
                                broker_connection_flush(c);
                }
                g_ptr_array_set_size(broker->dirty, 0);

                /* Re-reads the length: a callback may close more connections. */
                for (guint i = 0; i < broker->dead->len; i++)
                        broker_notify_closed(broker, broker->dead->pdata[i]);
                for (guint i = 0; i < broker->dead->len; i++) {
                        BrokerConnection *c = broker->dead->pdata[i];

                        /* Marked by a callback after it closed: it must not be flushed once freed. */
                        if (c->dirty)
                                g_ptr_array_remove_fast(broker->dirty, c);
                        broker_connection_free(c);
                }
                g_ptr_array_set_size(broker->dead, 0);
        } while (broker->dirty->len > 0);
}

static gboolean broker_timer_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
        Broker *broker = ((BrokerSource *)source)->broker;
        gint64 now = g_get_monotonic_time();
        gint64 next = -1;

        g_source_set_ready_time(source, -1);
        for (GList *l = broker->connections.head; l;) {
                BrokerConnection *c = l->data;

                l = l->next; /* @c may close and leave the list */
                if (c->deadline_us == 0)
                        continue;
                if (c->deadline_us <= now)
                        broker_connection_deadline(c, now);
                if (c->state != CONNECTION_CLOSED && c->deadline_us > 0 &&
                    (next < 0 || c->deadline_us < next))
                        next = c->deadline_us;
        }
        if (next >= 0)
                broker_schedule_deadline(broker, next);
        broker_end_dispatch(broker);
        return G_SOURCE_CONTINUE;
}

static GSourceFuncs broker_timer_funcs = {
        .dispatch = broker_timer_dispatch,
};

/* Gives back the buffers of connections that were idle since the last run. */
static gboolean broker_housekeeping(gpointer user_data)
{
        Broker *broker = user_data;

        for (GList *l = broker->connections.head; l; l = l->next)
                broker_connection_housekeeping(l->data);
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        return G_SOURCE_CONTINUE;
}

static GSource *broker_source_new(Broker *broker, GSourceFuncs *funcs, const char *name)
{
        GSource *source = g_source_new(funcs, sizeof(BrokerSource));

        ((BrokerSource *)source)->broker = broker;
        g_source_set_static_name(source, name);
        return source;
}

static void broker_copy_config(Broker *broker, const BrokerConfig *config)
{
        char *path = g_strdup(config->socket_path);

        g_free(broker->config.socket_path);
        broker->config = *config;
        broker->config.socket_path = path;
}

/** broker_new: see broker.h. */
Broker *broker_new(const BrokerConfig *config, GError **error)
{
        g_autoptr(Broker) broker = g_new0(Broker, 1);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener_tag};

        broker_copy_config(broker, config);
        broker->socket = (BrokerSocket)BROKER_SOCKET_INIT;
        broker->epoll_fd = -1;
        broker->metrics = broker_metrics_new(config->enable_metrics);
        broker->trie = deb_topic_trie_new();
        broker->unpacker = deb_unpacker_new();
        broker->matched = g_ptr_array_new();
        broker->dirty = g_ptr_array_new();
        broker->dead = g_ptr_array_new();
        broker->rpc = broker_rpc_new(broker);
        g_queue_init(&broker->connections);

        broker->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (broker->epoll_fd < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "epoll_create1: %s",
                            g_strerror(errno));
                return NULL;
        }
        if (!broker_socket_open(&broker->socket, config->socket_path, config->socket_mode, error))
                return NULL;
        if (epoll_ctl(broker->epoll_fd, EPOLL_CTL_ADD, broker->socket.fd, &ev) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "epoll_ctl: %s",
                            g_strerror(errno));
                return NULL;
        }
        broker->accepting = TRUE;

        broker->io_source = broker_source_new(broker, &broker_io_funcs, "broker I/O");
        g_source_add_unix_fd(broker->io_source, broker->epoll_fd, G_IO_IN);
        /*
         * GLib blocks a source that cannot recurse around each dispatch by
         * taking its fd out of the poll set and putting it back, and each of
         * those wakes the context up (an eventfd write and read): four
         * syscalls per dispatch. The dispatch guards itself instead.
         */
        g_source_set_can_recurse(broker->io_source, TRUE);
        g_source_attach(broker->io_source, NULL);

        broker->timer_source = broker_source_new(broker, &broker_timer_funcs, "broker deadlines");
        g_source_set_ready_time(broker->timer_source, -1);
        g_source_attach(broker->timer_source, NULL);

        broker->housekeeping = g_timeout_source_new_seconds(HOUSEKEEPING_SECONDS);
        g_source_set_callback(broker->housekeeping, broker_housekeeping, broker, NULL);
        g_source_set_static_name(broker->housekeeping, "broker housekeeping");
        g_source_attach(broker->housekeeping, NULL);
        return g_steal_pointer(&broker);
}

static void destroy_source(GSource **source)
{
        if (!*source)
                return;
        g_source_destroy(*source);
        g_clear_pointer(source, g_source_unref);
}

static void broker_stop_accepting(Broker *broker)
{
        if (broker->socket.fd >= 0 && broker->accepting && !broker->accept_pause)
                epoll_ctl(broker->epoll_fd, EPOLL_CTL_DEL, broker->socket.fd, NULL);
        broker->accepting = FALSE;
        destroy_source(&broker->accept_pause);
        broker_socket_close(&broker->socket);
}

/** broker_free: closes every connection at once and the listening socket. */
void broker_free(Broker *broker)
{
        if (!broker)
                return;
        broker->freeing = TRUE;
        broker_stop_accepting(broker);
        while (broker->connections.head)
                broker_connection_close(broker->connections.head->data, 0);
        broker_end_dispatch(broker);
        g_clear_pointer(&broker->rpc, broker_rpc_free);

        destroy_source(&broker->io_source);
        destroy_source(&broker->timer_source);
        destroy_source(&broker->housekeeping);
        destroy_source(&broker->shutdown_source);
        if (broker->epoll_fd >= 0)
                close(broker->epoll_fd);
        g_clear_pointer(&broker->trie, deb_topic_trie_free);
        g_clear_pointer(&broker->unpacker, deb_unpacker_free);
        g_clear_pointer(&broker->metrics, broker_metrics_free);
        g_ptr_array_unref(broker->matched);
        g_ptr_array_unref(broker->dirty);
        g_ptr_array_unref(broker->dead);
        g_free(broker->config.socket_path);
        g_free(broker);
}

/** broker_apply_config: see broker.h. */
void broker_apply_config(Broker *broker, const BrokerConfig *config)
{
        g_autofree char *path = g_strdup(broker->config.socket_path);
        guint mode = broker->config.socket_mode;

        broker_copy_config(broker, config);
        /* Fixed once bound. */
        g_free(broker->config.socket_path);
        broker->config.socket_path = g_steal_pointer(&path);
        broker->config.socket_mode = mode;
        if (broker->metrics->enabled != config->enable_metrics) {
                broker->metrics->enabled = config->enable_metrics;
                broker->metrics->epoch++;
        }
}

/** broker_apply_rpc_config: see broker.h. */
void broker_apply_rpc_config(Broker *broker, const RpcConfig *config)
{
        broker_rpc_apply_config(broker->rpc, config);
}

/* broker_adopt_fd() up to registering @fd (transfer full: closed on failure); the caller sets it up. */
static BrokerConnection *broker_adopt(Broker *broker, int fd, const char *expected_client_id, GError **error)
{
        int type = 0;
        socklen_t len = sizeof(type);
        int flags;

        if (broker->shutting_down) {
                close(fd);
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                            "broker: cannot adopt fd %d%s%s: shutting down", fd,
                            expected_client_id ? " for " : "", expected_client_id ? expected_client_id : "");
                return NULL;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
                int errsv = type != 0 ? EPROTOTYPE : errno;

                close(fd);
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "broker: cannot adopt fd %d%s%s: not a stream socket (%s)", fd,
                            expected_client_id ? " for " : "", expected_client_id ? expected_client_id : "",
                            g_strerror(errsv));
                return NULL;
        }
        /* Like accept4(SOCK_NONBLOCK | SOCK_CLOEXEC): never block the loop, never leak into children. */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
                int errsv = errno;

                close(fd);
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "broker: cannot adopt fd %d: fcntl: %s", fd, g_strerror(errsv));
                return NULL;
        }
        return broker_register(broker, fd, error);
}

/** broker_adopt_fd: see broker.h. */
guint64 broker_adopt_fd(Broker *broker, int fd, const char *expected_client_id, BrokerClosedFunc closed_func,
                        gpointer user_data, GDestroyNotify destroy, GError **error)
{
        BrokerConnection *c;

        g_return_val_if_fail(broker != NULL, 0);
        g_return_val_if_fail(fd >= 0, 0);
        g_return_val_if_fail(error == NULL || *error == NULL, 0);

        c = broker_adopt(broker, fd, expected_client_id, error);
        if (!c)
                return 0;
        c->expected_client_id = g_strdup(expected_client_id);
        c->closed_func = closed_func;
        c->closed_data = user_data;
        c->closed_destroy = destroy;
        broker_connection_log(c, G_LOG_LEVEL_DEBUG, "adopted fd %d%s%s", fd,
                              expected_client_id ? ", expecting client id " : "",
                              expected_client_id ? expected_client_id : "");
        return c->session;
}

static BrokerConnection *find_session(GList *list, guint64 session)
{
        for (GList *l = list; l; l = l->next)
                if (((BrokerConnection *)l->data)->session == session)
                        return l->data;
        return NULL;
}

/** broker_adopt_stream_fd: see broker.h. */
guint64 broker_adopt_stream_fd(Broker *broker, int fd, const char *pattern, const char *owner,
                               GError **error)
{
        BrokerConnection *c;

        g_return_val_if_fail(broker != NULL, 0);
        g_return_val_if_fail(fd >= 0, 0);
        g_return_val_if_fail(pattern != NULL, 0);

        if (!deb_pattern_validate(pattern, error)) {
                close(fd);
                return 0;
        }
        if (broker_topic_is_rpc_response(pattern)) {
                close(fd);
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                            "pattern '%s': RPC replies (response.*) are delivered only to their requester",
                            pattern);
                return 0;
        }
        c = broker_adopt(broker, fd, NULL, error);
        if (!c)
                return 0;
        c->stream_pattern = g_strdup(pattern);
        broker_connection_log(c, G_LOG_LEVEL_MESSAGE, "event stream for '%s' opened by %s", pattern,
                              owner ? owner : "(unknown)");
        return c->session;
}

/** broker_forget_closed_func: see broker.h. */
gboolean broker_forget_closed_func(Broker *broker, guint64 session_id)
{
        BrokerConnection *c = find_session(broker->connections.head, session_id);

        /* Closed during this dispatch and not yet told: it sits in the dead list. */
        for (guint i = 0; !c && i < broker->dead->len; i++)
                if (((BrokerConnection *)broker->dead->pdata[i])->session == session_id)
                        c = broker->dead->pdata[i];
        if (!c || !c->closed_func)
                return FALSE;
        c->closed_func = NULL;
        if (c->closed_destroy)
                g_clear_pointer(&c->closed_data, c->closed_destroy);
        c->closed_destroy = NULL;
        return TRUE;
}

/** broker_get_config: Returns: (transfer none) the configuration in force. */
const BrokerConfig *broker_get_config(Broker *broker)
{
        return &broker->config;
}

/** broker_get_socket_description: Returns: the socket path, or how it was obtained. */
const char *broker_get_socket_description(Broker *broker)
{
        return broker_socket_describe(&broker->socket);
}

/** broker_get_messages_routed: see broker.h. */
guint64 broker_get_messages_routed(Broker *broker)
{
        return broker->metrics->total.published;
}

/** broker_get_n_connections: Returns: connections currently open. */
guint broker_get_n_connections(Broker *broker)
{
        return broker->n_open;
}

/** broker_get_metrics: Returns: (transfer full) a non-floating a{sv} of counters and clients. */
GVariant *broker_get_metrics(Broker *broker)
{
        GVariantBuilder b, clients;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "connections", g_variant_new_uint32(broker->n_open));
        g_variant_builder_add(&b, "{sv}", "subscriptions",
                              g_variant_new_uint32(deb_topic_trie_size(broker->trie)));
        broker_metrics_add_to_builder(broker->metrics, &b);
        broker_rpc_add_metrics(broker->rpc, &b);

        g_variant_builder_init(&clients, G_VARIANT_TYPE("aa{sv}"));
        for (GList *l = broker->connections.head; l; l = l->next)
                g_variant_builder_add_value(&clients, broker_connection_to_variant(l->data));
        g_variant_builder_add(&b, "{sv}", "clients", g_variant_builder_end(&clients));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

/** broker_get_metrics_json: Returns: (transfer full) broker_get_metrics() as one line of JSON. */
char *broker_get_metrics_json(Broker *broker)
{
        g_autoptr(GVariant) metrics = broker_get_metrics(broker);

        return broker_metrics_to_json(metrics);
}

static void broker_finish_shutdown(Broker *broker)
{
        BrokerShutdownFunc func = broker->shutdown_func;

        for (GList *l = broker->connections.head; l; l = l->next)
                broker_connection_send_error(l->data,
                                             DAEMONEYE__EVENTBUS__ERROR_CODE__ERROR_CODE_SHUTTING_DOWN, NULL,
                                             TRUE, "broker: shutting down");
        /* One last write each for the Error, then close whatever is left. */
        broker_end_dispatch(broker);
        while (broker->connections.head)
                broker_connection_close(broker->connections.head->data, 0);
        broker_end_dispatch(broker);

        broker->shutdown_func = NULL;
        if (func)
                func(broker, broker->shutdown_data);
}

static gboolean broker_shutdown_poll(gpointer user_data)
{
        Broker *broker = user_data;
        gboolean drained = TRUE;

        for (GList *l = broker->connections.head; l && drained; l = l->next) {
                BrokerConnection *c = l->data;

                drained = c->state != CONNECTION_OPEN || subscriber_queue_is_empty(&c->queue);
        }
        if (!drained && g_get_monotonic_time() < broker->shutdown_deadline)
                return G_SOURCE_CONTINUE;

        g_clear_pointer(&broker->shutdown_source, g_source_unref);
        broker_finish_shutdown(broker);
        return G_SOURCE_REMOVE;
}

/** broker_shutdown: see broker.h. */
void broker_shutdown(Broker *broker, guint timeout_ms, BrokerShutdownFunc func, gpointer user_data)
{
        g_return_if_fail(broker->shutdown_source == NULL);

        broker->shutdown_func = func;
        broker->shutdown_data = user_data;
        broker->shutdown_deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
        broker->shutting_down = TRUE;
        broker_stop_accepting(broker);
        /* Input stops; output keeps flowing through EPOLLOUT until drained or the deadline. */
        for (GList *l = broker->connections.head; l; l = l->next)
                broker_connection_stop_reading(l->data);
        broker_end_dispatch(broker);

        broker->shutdown_source = g_timeout_source_new(SHUTDOWN_POLL_MS);
        g_source_set_callback(broker->shutdown_source, broker_shutdown_poll, broker, NULL);
        g_source_attach(broker->shutdown_source, NULL);
}
