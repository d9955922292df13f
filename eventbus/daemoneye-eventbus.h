/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * libdaemoneye-eventbus: topics, framing and the client of the DaemonEye
 * EventBus. Link with `pkg-config --cflags --libs daemoneye-eventbus`.
 */
#include "deb-error.h"
#include "deb-topic.h"
#include "deb-topic-trie.h"
#include "deb-frame.h"
#include "deb-client.h"
#include "deb-backoff.h"
#include "deb-breaker.h"
