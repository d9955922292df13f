/* SPDX-License-Identifier: Apache-2.0 */
#include <math.h> /* isfinite(), a macro: no libm needed */

#include "deb-backoff.h"

struct _DebBackoff {
        DebBackoffPolicy policy;
        guint attempts;  /* attempts made, the first included */
        double delay_ms; /* d(n) for the next retry, before jitter; kept capped so it never overflows */
        DebRandomFunc random_func;
        gpointer random_data;
};

DebBackoffPolicy deb_backoff_policy_default(void)
{
        return (DebBackoffPolicy){
                .max_attempts = 3,
                .base_delay_ms = 100,
                .max_delay_ms = 5000,
                .multiplier = 2.0,
                .jitter = 0.5,
        };
}

gboolean deb_backoff_policy_is_valid(const DebBackoffPolicy *policy)
{
        g_return_val_if_fail(policy, FALSE);

        /* Written so that NaN fails every comparison and is refused. */
        return policy->max_attempts >= 1 && policy->base_delay_ms <= policy->max_delay_ms &&
               policy->multiplier >= 1.0 && isfinite(policy->multiplier) && policy->jitter >= 0.0 &&
               policy->jitter <= 1.0;
}

static double backoff_random_default(gpointer user_data)
{
        return g_random_double();
}

DebBackoff *deb_backoff_new(const DebBackoffPolicy *policy)
{
        DebBackoff *backoff;

        g_return_val_if_fail(deb_backoff_policy_is_valid(policy), NULL);

        backoff = g_new0(DebBackoff, 1);
        backoff->policy = *policy;
        backoff->random_func = backoff_random_default;
        deb_backoff_reset(backoff);
        return backoff;
}

DebBackoff *deb_backoff_new_for_rpc(const DebBackoffPolicy *policy,
                                    Daemoneye__Eventbus__RpcOperation operation)
{
        DebBackoffPolicy p;

        g_return_val_if_fail(deb_backoff_policy_is_valid(policy), NULL);

        p = *policy;
        if (!deb_rpc_operation_is_idempotent(operation))
                p.max_attempts = 1;
        return deb_backoff_new(&p);
}

void deb_backoff_free(DebBackoff *backoff)
{
        g_free(backoff);
}

void deb_backoff_set_random_func(DebBackoff *backoff, DebRandomFunc func, gpointer user_data)
{
        g_return_if_fail(backoff);

        backoff->random_func = func ? func : backoff_random_default;
        backoff->random_data = func ? user_data : NULL;
}

gboolean deb_backoff_next_delay(DebBackoff *backoff, guint *delay_ms)
{
        guint d;
        double r;

        g_return_val_if_fail(backoff, FALSE);
        g_return_val_if_fail(delay_ms, FALSE);

        if (backoff->attempts >= backoff->policy.max_attempts)
                return FALSE;

        /* Whole milliseconds before jitter, so a jitter of 0 gives exactly
         * base, base * multiplier, … truncated, as the policy reads. Both
         * values are in [0, G_MAXUINT], where a cast truncates like floor()
         * without pulling in libm. */
        d = (guint)backoff->delay_ms;
        r = backoff->random_func(backoff->random_data);
        if (!(r >= 0.0)) /* also catches NaN */
                r = 0.0;
        else if (r > 1.0)
                r = 1.0;

        *delay_ms = d - (guint)(backoff->policy.jitter * d * r);

        backoff->attempts++;
        backoff->delay_ms =
                MIN(backoff->delay_ms * backoff->policy.multiplier, (double)backoff->policy.max_delay_ms);
        return TRUE;
}

guint deb_backoff_get_attempts(DebBackoff *backoff)
{
        g_return_val_if_fail(backoff, 0);

        return backoff->attempts;
}

void deb_backoff_reset(DebBackoff *backoff)
{
        g_return_if_fail(backoff);

        backoff->attempts = 1;
        backoff->delay_ms = backoff->policy.base_delay_ms;
}

gboolean deb_rpc_operation_is_idempotent(Daemoneye__Eventbus__RpcOperation operation)
{
        /* The reasons are in the header; keep the two in step. */
        switch (operation) {
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_HEALTH_CHECK:
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_GET_CAPABILITIES:
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_START:
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_STOP:
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_PAUSE:
        case DAEMONEYE__EVENTBUS__RPC_OPERATION__RPC_OPERATION_RESUME:
                return TRUE;
        default:
                return FALSE;
        }
}
