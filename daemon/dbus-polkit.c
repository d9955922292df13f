/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asynchronous polkit checks of privileged method calls; see dbus-polkit.h.
 *
 * One PolkitQuery per method call being authorized, keyed by the message:
 *   ASKING_BUS    GetConnectionCredentials(sender) to the bus driver
 *   ASKING_POLKIT CheckAuthorization(system-bus-name sender) to polkitd
 *   DECIDED       the verdict, read once by the re-dispatched handler
 */
#include <errno.h>
#include <unistd.h>

#include "dbus-polkit.h"
#include "dbus-util.h"

#define POLKIT_NAME "org.freedesktop.PolicyKit1"
#define POLKIT_PATH "/org/freedesktop/PolicyKit1/Authority"
#define POLKIT_INTERFACE "org.freedesktop.PolicyKit1.Authority"
#define POLKIT_ALLOW_USER_INTERACTION 1u
/* A password prompt may take the user a while; without one polkit answers at once. */
#define POLKIT_INTERACTIVE_TIMEOUT_USEC (5 * 60 * G_USEC_PER_SEC)

typedef enum {
        QUERY_ASKING_BUS,
        QUERY_ASKING_POLKIT,
        QUERY_DECIDED,
} QueryState;

typedef struct {
        DbusPolkit *polkit;
        sd_bus_message *call;
        char *action_id;
        sd_bus_slot *slot; /* the question in flight */
        QueryState state;
        gboolean allowed;
        char *denial; /* why not, for the caller */
        guint32 uid, pid;
        gboolean have_creds;
} PolkitQuery;

struct _DbusPolkit {
        GHashTable *queries; /* sd_bus_message* → PolkitQuery* (owned) */
};

static void polkit_query_free(PolkitQuery *q)
{
        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->call);
        g_free(q->action_id);
        g_free(q->denial);
        g_free(q);
}

/** dbus_polkit_new: see dbus-polkit.h. */
DbusPolkit *dbus_polkit_new(void)
{
        DbusPolkit *polkit = g_new0(DbusPolkit, 1);

        polkit->queries = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                                (GDestroyNotify)polkit_query_free);
        return polkit;
}

/** dbus_polkit_free: see dbus-polkit.h. */
void dbus_polkit_free(DbusPolkit *polkit)
{
        if (!polkit)
                return;
        g_hash_table_unref(polkit->queries);
        g_free(polkit);
}

/** dbus_polkit_describe_sender: see dbus-polkit.h. */
char *dbus_polkit_describe_sender(sd_bus_message *call)
{
        const char *sender = sd_bus_message_get_sender(call);

        return g_strdup_printf("sender=%s", sender ? sender : "(direct)");
}

static char *query_actor(const PolkitQuery *q)
{
        const char *sender = sd_bus_message_get_sender(q->call);

        return g_strdup_printf("uid=%u pid=%u %s", q->uid, q->pid, sender ? sender : "(direct)");
}

/* The verdict is in: the handler runs again on the same message and reads it. */
static void query_decide(PolkitQuery *q, gboolean allowed, const char *denial)
{
        sd_bus *bus = sd_bus_message_get_bus(q->call);
        int r;

        q->slot = sd_bus_slot_unref(q->slot);
        q->state = QUERY_DECIDED;
        q->allowed = allowed;
        q->denial = g_strdup(denial);

        r = sd_bus_message_rewind(q->call, TRUE);
        if (r >= 0)
                r = sd_bus_enqueue_for_read(bus, q->call);
        if (r < 0) {
                g_warning("polkit: cannot dispatch %s again after authorization: %s",
                          sd_bus_message_get_member(q->call), g_strerror(-r));
                sd_bus_reply_method_errorf(q->call, DBUS_ERROR_PERMISSION_DENIED,
                                           "authorization could not be completed: %s", g_strerror(-r));
                g_hash_table_remove(q->polkit->queries, q->call);
        }
}

static void query_deny(PolkitQuery *q, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void query_deny(PolkitQuery *q, const char *format, ...)
{
        g_autofree char *denial = NULL;
        va_list args;

        va_start(args, format);
        denial = g_strdup_vprintf(format, args);
        va_end(args);
        query_decide(q, FALSE, denial);
}

static gboolean polkit_is_missing(const sd_bus_error *error)
{
        return sd_bus_error_has_names(error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                                      "org.freedesktop.DBus.Error.ServiceNotFound",
                                      "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
                                      SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_DISCONNECTED);
}

static int on_check_authorization(sd_bus_message *reply, void *user_data, sd_bus_error *ret_error)
{
        PolkitQuery *q = user_data;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        int authorized = 0, challenge = 0;
        int r;

        if (error) {
                if (polkit_is_missing(error))
                        g_warning(
                                "polkit is not available (%s: %s): refusing %s to uid %u; install and start "
                                "polkitd, or call as root",
                                error->name, error->message, q->action_id, q->uid);
                else
                        g_warning("polkit: CheckAuthorization of %s for uid %u failed: %s: %s; refusing",
                                  q->action_id, q->uid, error->name, error->message);
                query_deny(q, "cannot check authorization for %s: polkit is not available (%s)",
                           q->action_id, error->message);
                return 0;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r > 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r <= 0) {
                g_warning("polkit: unexpected CheckAuthorization reply for %s: %s; refusing", q->action_id,
                          r < 0 ? g_strerror(-r) : "empty");
                query_deny(q, "cannot check authorization for %s: unexpected reply from polkit",
                           q->action_id);
                return 0;
        }
        if (authorized) {
                g_debug("polkit: %s authorized for uid %u", q->action_id, q->uid);
                query_decide(q, TRUE, NULL);
        } else if (challenge)
                query_deny(q, "not authorized for %s: authentication is required%s", q->action_id,
                           sd_bus_message_get_allow_interactive_authorization(q->call) > 0
                                   ? ""
                                   : " (the call did not allow interactive authorization)");
        else
                query_deny(q, "not authorized for %s", q->action_id);
        return 0;
}

static int ask_polkit(PolkitQuery *q)
{
        sd_bus *bus = sd_bus_message_get_bus(q->call);
        const char *sender = sd_bus_message_get_sender(q->call);
        gboolean interactive = sd_bus_message_get_allow_interactive_authorization(q->call) > 0;
        __attribute__((cleanup(sd_bus_message_unrefp))) sd_bus_message *request = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &request, POLKIT_NAME, POLKIT_PATH, POLKIT_INTERFACE,
                                           "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(request, "(sa{sv})sa{ss}us", "system-bus-name", 1, "name", "s",
                                          sender, q->action_id, 0,
                                          interactive ? POLKIT_ALLOW_USER_INTERACTION : 0u, "");
        if (r >= 0)
                r = sd_bus_call_async(bus, &q->slot, request, on_check_authorization, q,
                                      interactive ? POLKIT_INTERACTIVE_TIMEOUT_USEC : 0);
        if (r >= 0)
                q->state = QUERY_ASKING_POLKIT;
        return r;
}

static int on_credentials(sd_bus_message *reply, void *user_data, sd_bus_error *ret_error)
{
        PolkitQuery *q = user_data;
        const sd_bus_error *error = sd_bus_message_get_error(reply);
        g_autoptr(GVariant) creds = NULL;
        int r;

        if (error) {
                query_deny(q, "cannot identify the caller: %s", error->message);
                return 0;
        }
        r = dbus_read_gvariant(reply, "a{sv}", &creds);
        if (r < 0 || !g_variant_lookup(creds, "UnixUserID", "u", &q->uid)) {
                query_deny(q, "cannot identify the caller: the bus did not say its uid");
                return 0;
        }
        if (!g_variant_lookup(creds, "ProcessID", "u", &q->pid))
                q->pid = 0;
        q->have_creds = TRUE;

        /*
         * As systemd's services do: root needs no polkit, so servers without
         * polkitd keep working. Nor does our own uid (an agent run by a user
         * for development): that caller could signal or trace us anyway.
         */
        if (q->uid == 0 || q->uid == (guint32)geteuid()) {
                query_decide(q, TRUE, NULL);
                return 0;
        }
        /* The bus's answer is in: its slot goes before the next question takes its place. */
        q->slot = sd_bus_slot_unref(q->slot);
        r = ask_polkit(q);
        if (r < 0) {
                g_warning("polkit: cannot send CheckAuthorization for %s: %s; refusing", q->action_id,
                          g_strerror(-r));
                query_deny(q, "cannot check authorization for %s: %s", q->action_id, g_strerror(-r));
        }
        return 0;
}

/** dbus_polkit_verify: see dbus-polkit.h. */
int dbus_polkit_verify(DbusPolkit *polkit, sd_bus_message *call, const char *action_id, char **ret_actor,
                       sd_bus_error *ret_error)
{
        PolkitQuery *q = g_hash_table_lookup(polkit->queries, call);
        const char *sender;
        int r;

        if (q) {
                if (q->state != QUERY_DECIDED)
                        return 0;
                if (!q->allowed) {
                        g_message("%s.%s from %s refused: %s", sd_bus_message_get_interface(call),
                                  sd_bus_message_get_member(call),
                                  sd_bus_message_get_sender(call) ? sd_bus_message_get_sender(call) : "?",
                                  q->denial);
                        sd_bus_error_setf(ret_error, DBUS_ERROR_PERMISSION_DENIED, "%s", q->denial);
                        g_hash_table_remove(polkit->queries, call);
                        return -EACCES;
                }
                if (ret_actor)
                        *ret_actor = query_actor(q);
                g_hash_table_remove(polkit->queries, call);
                return 1;
        }

        sender = sd_bus_message_get_sender(call);
        if (!sender)
                return sd_bus_error_setf(ret_error, DBUS_ERROR_PERMISSION_DENIED,
                                         "%s: a call without a sender cannot be authorized", action_id);

        q = g_new0(PolkitQuery, 1);
        q->polkit = polkit;
        q->call = sd_bus_message_ref(call);
        q->action_id = g_strdup(action_id);
        q->state = QUERY_ASKING_BUS;
        r = sd_bus_call_method_async(sd_bus_message_get_bus(call), &q->slot, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetConnectionCredentials", on_credentials, q, "s", sender);
        if (r < 0) {
                polkit_query_free(q);
                return sd_bus_error_setf(ret_error, DBUS_ERROR_PERMISSION_DENIED,
                                         "cannot identify the caller: %s", g_strerror(-r));
        }
        g_hash_table_insert(polkit->queries, call, q);
        return 0;
}
