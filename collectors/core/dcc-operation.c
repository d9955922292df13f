/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Completion handles: how a collector's callback tells collector-core that a
 * step (start, stop, pause, resume, health, a cleanup hook) finished, now or
 * later. A handle outlives its request's deadline and the collector itself,
 * so a late completion is always safe and simply goes nowhere.
 */
#include "dcc-private.h"

struct _DccOperation {
        DccCollector *collector; /* NULL once detached */
        const char *name;
        DccRequest *request; /* (nullable) reference */
        DccStepDoneFunc done;
        gpointer done_data;
        GDestroyNotify done_destroy;
        gboolean completed;
};

static void operation_free(DccOperation *op)
{
        if (op->done_destroy)
                op->done_destroy(op->done_data);
        g_clear_pointer(&op->request, dcc_request_unref);
        g_free(op);
}

void dcc_step_run(DccCollector *collector, const char *name, DccOperationFunc func, gpointer func_data,
                  DccRequest *request, DccStepDoneFunc done, gpointer done_data, GDestroyNotify done_destroy)
{
        DccOperation *op;

        if (!func) {
                done(collector, NULL, done_data);
                if (done_destroy)
                        done_destroy(done_data);
                return;
        }
        op = g_new0(DccOperation, 1);
        op->collector = collector;
        op->name = name;
        op->request = request ? dcc_request_ref(request) : NULL;
        op->done = done;
        op->done_data = done_data;
        op->done_destroy = done_destroy;
        g_ptr_array_add(collector->operations, op);
        func(collector, op, func_data);
}

static void operation_finish(DccOperation *op, GError *error /* transfer full, nullable */)
{
        g_autoptr(GError) owned = error;
        DccCollector *collector = op->collector;

        g_return_if_fail(!op->completed);
        op->completed = TRUE;
        if (collector) {
                g_ptr_array_remove_fast(collector->operations, op);
                /* After the end only the exit status matters; nothing is answered any more. */
                if (!dcc_collector_is_finished(collector))
                        op->done(collector, owned, op->done_data);
                else if (owned)
                        dcc_collector_log(collector, op->request, G_LOG_LEVEL_DEBUG,
                                          "%s completed after the end: %s", op->name, owned->message);
        }
        operation_free(op);
}

void dcc_operation_complete(DccOperation *op)
{
        g_return_if_fail(op != NULL);
        operation_finish(op, NULL);
}

void dcc_operation_fail(DccOperation *op, GError *error)
{
        g_return_if_fail(op != NULL);
        if (!error)
                error = g_error_new(DCC_ERROR, DCC_ERROR_FAILED, "%s failed without saying why", op->name);
        operation_finish(op, error);
}

const char *dcc_operation_get_name(DccOperation *op)
{
        g_return_val_if_fail(op != NULL, NULL);
        return op->name;
}

gboolean dcc_operation_is_expired(DccOperation *op)
{
        g_return_val_if_fail(op != NULL, TRUE);
        return !op->collector || dcc_collector_is_finished(op->collector) || (op->request && op->request->expired);
}

void dcc_operations_detach(DccCollector *collector)
{
        for (guint i = 0; i < collector->operations->len; i++) {
                DccOperation *op = collector->operations->pdata[i];

                op->collector = NULL;
                /* Requests and done data refer to the collector: release them now, not at completion. */
                if (op->done_destroy)
                        op->done_destroy(op->done_data);
                op->done_destroy = NULL;
                op->done_data = NULL;
                g_clear_pointer(&op->request, dcc_request_unref);
        }
        g_ptr_array_set_size(collector->operations, 0);
}
