/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * collector-core: socket activation, handshake, heartbeats and the RPC
 * service of a DaemonEye collector, so that a collector author writes only
 * the collection logic and the config schema. Link with
 * `pkg-config --cflags --libs daemoneye-collector-core`.
 */
#include "dcc-config.h"
#include "dcc-collector.h"
