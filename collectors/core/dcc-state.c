/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector state machine as a table: what each lifecycle operation (and
 * UPDATE_CONFIG) does in each state. HEALTH_CHECK and GET_CAPABILITIES run in
 * every state; shutdowns are decided by dcc-shutdown.c.
 */
#include "dcc-private.h"

#define R DCC_TRANSITION_RUN
#define N DCC_TRANSITION_NOOP
#define X DCC_TRANSITION_REFUSE

enum { COL_START, COL_STOP, COL_RESTART, COL_PAUSE, COL_RESUME, COL_UPDATE_CONFIG, N_COLS };

/*
 * START, STOP and PAUSE name the state they lead to, so asking again once
 * there is a harmless success (the RPC client retries them). RESUME is
 * refused while RUNNING: it means "leave PAUSED", and a RESUME of a
 * collector that was never paused points at a confused caller.
 * STARTING and STOPPING refuse everything: a transition is half done.
 * FAILED is left by START, STOP (which still calls stop, to release what a
 * broken run holds) and RESTART.
 */
static const DccTransition transitions[][N_COLS] = {
        /*                     START STOP RESTART PAUSE RESUME UPDATE_CONFIG */
        [DCC_STATE_STOPPED] = {R, N, R, X, X, R},
        [DCC_STATE_STARTING] = {X, X, X, X, X, X},
        [DCC_STATE_RUNNING] = {N, R, R, R, X, R},
        [DCC_STATE_PAUSED] = {X, R, R, N, R, R},
        [DCC_STATE_STOPPING] = {X, X, X, X, X, X},
        [DCC_STATE_FAILED] = {R, R, R, X, X, R},
};

DccTransition dcc_state_transition(DccState state, int operation)
{
        int col;

        switch (operation) {
        case DCC_OP(START):
                col = COL_START;
                break;
        case DCC_OP(STOP):
                col = COL_STOP;
                break;
        case DCC_OP(RESTART):
                col = COL_RESTART;
                break;
        case DCC_OP(PAUSE):
                col = COL_PAUSE;
                break;
        case DCC_OP(RESUME):
                col = COL_RESUME;
                break;
        case DCC_OP(UPDATE_CONFIG):
                col = COL_UPDATE_CONFIG;
                break;
        default:
                return DCC_TRANSITION_REFUSE;
        }
        if (state < DCC_STATE_STOPPED || state > DCC_STATE_FAILED)
                return DCC_TRANSITION_REFUSE;
        return transitions[state][col];
}

const char *dcc_state_to_string(DccState state)
{
        switch (state) {
        case DCC_STATE_STOPPED:
                return "stopped";
        case DCC_STATE_STARTING:
                return "starting";
        case DCC_STATE_RUNNING:
                return "running";
        case DCC_STATE_PAUSED:
                return "paused";
        case DCC_STATE_STOPPING:
                return "stopping";
        case DCC_STATE_FAILED:
                return "failed";
        }
        return "unknown";
}

const char *dcc_rpc_operation_to_string(int operation)
{
        switch (operation) {
        case DCC_OP(START):
                return "start";
        case DCC_OP(STOP):
                return "stop";
        case DCC_OP(RESTART):
                return "restart";
        case DCC_OP(HEALTH_CHECK):
                return "health_check";
        case DCC_OP(UPDATE_CONFIG):
                return "update_config";
        case DCC_OP(GRACEFUL_SHUTDOWN):
                return "graceful_shutdown";
        case DCC_OP(FORCE_SHUTDOWN):
                return "force_shutdown";
        case DCC_OP(GET_CAPABILITIES):
                return "get_capabilities";
        case DCC_OP(PAUSE):
                return "pause";
        case DCC_OP(RESUME):
                return "resume";
        default:
                return "unknown";
        }
}
