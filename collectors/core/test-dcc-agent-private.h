/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the files of the test agent (test-dcc-agent*.c); tests use test-dcc-agent.h. */
#include "test-dcc-agent.h"

struct _TestAgent {
        char *collector_id;
        char *dir;
        char *socket_path;
        int listen_fd;
        int fd; /* the connection, -1 when none */
        gboolean closed; /* the collector closed it */
        DebFrameDecoder *decoder;
        DebUnpacker *unpacker;
        GQueue inbox; /* TestMessage *, in arrival order, not yet taken */
        guint next_id;
        GPid pid;
        int stdout_fd;
};

typedef gboolean (*TestMessageMatch)(const TestMessage *message, gconstpointer data);

/** test_agent_fd_above_3: Returns: @fd moved to >= 4 (close-on-exec), so a child's dup2() onto 1 and 3 cannot clobber it. */
int test_agent_fd_above_3(int fd);

/** test_agent_take_fd: makes @fd the agent's connection, with a fresh frame decoder. */
void test_agent_take_fd(TestAgent *agent, int fd);

/** test_agent_reap_now: SIGKILLs a child still running and reaps it. */
void test_agent_reap_now(TestAgent *agent);

/**
 * test_agent_take:
 *
 * Returns: (transfer full) the first inbox message @match accepts, reading
 *   more as needed; %NULL after @timeout_ms or once the collector closed.
 */
TestMessage *test_agent_take(TestAgent *agent, TestMessageMatch match, gconstpointer data, guint timeout_ms);

/** test_agent_match_topic: a TestMessageMatch for the exact topic @data. */
gboolean test_agent_match_topic(const TestMessage *message, gconstpointer data);
