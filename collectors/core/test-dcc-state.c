/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The state machine's table (dcc-state.c), cell by cell, as the design
 * states it: what each lifecycle operation and UPDATE_CONFIG does in each
 * state. The wire tests (test-dcc-lifecycle.c) show the same table through
 * a running collector.
 */
#include "dcc-private.h"

#define R DCC_TRANSITION_RUN
#define N DCC_TRANSITION_NOOP
#define X DCC_TRANSITION_REFUSE

static const struct {
        DccState state;
        DccTransition start, stop, restart, pause, resume, update_config;
} expected[] = {
        /* START and STOP name where they lead: asking again once there is a harmless success. */
        {DCC_STATE_STOPPED, R, N, R, X, X, R},
        /* Half-done transitions refuse everything. */
        {DCC_STATE_STARTING, X, X, X, X, X, X},
        {DCC_STATE_RUNNING, N, R, R, R, X, R},
        {DCC_STATE_PAUSED, X, R, R, N, R, R},
        {DCC_STATE_STOPPING, X, X, X, X, X, X},
        /* FAILED is left by start, stop and restart. */
        {DCC_STATE_FAILED, R, R, R, X, X, R},
};

static void test_table(void)
{
        for (gsize i = 0; i < G_N_ELEMENTS(expected); i++) {
                DccState s = expected[i].state;

                g_test_message("state %s", dcc_state_to_string(s));
                g_assert_cmpint(dcc_state_transition(s, DCC_OP(START)), ==, expected[i].start);
                g_assert_cmpint(dcc_state_transition(s, DCC_OP(STOP)), ==, expected[i].stop);
                g_assert_cmpint(dcc_state_transition(s, DCC_OP(RESTART)), ==, expected[i].restart);
                g_assert_cmpint(dcc_state_transition(s, DCC_OP(PAUSE)), ==, expected[i].pause);
                g_assert_cmpint(dcc_state_transition(s, DCC_OP(RESUME)), ==, expected[i].resume);
                g_assert_cmpint(dcc_state_transition(s, DCC_OP(UPDATE_CONFIG)), ==, expected[i].update_config);
        }
}

/* Operations outside the table and states outside the enum are refused, never looked up out of bounds. */
static void test_out_of_range(void)
{
        const int operations[] = {DCC_OP(UNSPECIFIED), DCC_OP(HEALTH_CHECK), DCC_OP(GET_CAPABILITIES),
                                  DCC_OP(GRACEFUL_SHUTDOWN), DCC_OP(FORCE_SHUTDOWN), 99, -1};

        for (gsize i = 0; i < G_N_ELEMENTS(operations); i++)
                g_assert_cmpint(dcc_state_transition(DCC_STATE_RUNNING, operations[i]), ==, X);
        g_assert_cmpint(dcc_state_transition((DccState)0, DCC_OP(START)), ==, X);
        g_assert_cmpint(dcc_state_transition((DccState)7, DCC_OP(START)), ==, X);
        g_assert_cmpint(dcc_state_transition((DccState)-1, DCC_OP(START)), ==, X);
}

static void test_names(void)
{
        g_assert_cmpstr(dcc_state_to_string(DCC_STATE_STOPPED), ==, "stopped");
        g_assert_cmpstr(dcc_state_to_string(DCC_STATE_FAILED), ==, "failed");
        g_assert_cmpstr(dcc_state_to_string((DccState)42), ==, "unknown");
        g_assert_cmpstr(dcc_rpc_operation_to_string(DCC_OP(HEALTH_CHECK)), ==, "health_check");
        g_assert_cmpstr(dcc_rpc_operation_to_string(DCC_OP(RESUME)), ==, "resume");
        g_assert_cmpstr(dcc_rpc_operation_to_string(0), ==, "unknown");
        /* The enum's values are the wire's CollectorStatus, on which heartbeats and replies rely. */
        g_assert_cmpint(DCC_STATE_RUNNING, ==, DAEMONEYE__EVENTBUS__COLLECTOR_STATUS__COLLECTOR_STATUS_RUNNING);
        g_assert_cmpint(DCC_STATE_FAILED, ==, DAEMONEYE__EVENTBUS__COLLECTOR_STATUS__COLLECTOR_STATUS_FAILED);
        g_assert_cmpint(DCC_HEALTH_DEGRADED, ==, DAEMONEYE__EVENTBUS__HEALTH_STATUS__HEALTH_STATUS_DEGRADED);
}

int main(int argc, char **argv)
{
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dcc/state/table", test_table);
        g_test_add_func("/dcc/state/out-of-range", test_out_of_range);
        g_test_add_func("/dcc/state/names", test_names);
        return g_test_run();
}
