/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * cli_prometheus_format:
 * @metrics: the a{sv} of Agent1.GetMetrics
 *
 * The Prometheus text exposition format (0.0.4) of every numeric leaf
 * (booleans as 0/1), named daemoneye_<path joined by '_'> with the keys
 * sanitized to valid names. Where keys are names rather than structure they
 * become labels:
 *  - a dictionary whose values are all dictionaries ("topics":
 *    {"events.process": {published…}}) gives
 *    daemoneye_topic_published{topic="events.process"};
 *  - an array of dictionaries with an "id" or "client_id" string ("collectors":
 *    [{id, state, restart_count…}]) gives
 *    daemoneye_collector_restart_count{collector="procmond"}, and their other
 *    strings labels of daemoneye_collector_info{collector="procmond",state="running"} 1.
 * Each family is printed once with its # TYPE: counter for uint64 values
 * (the agent's running totals) except those named as times, sizes or queue
 * levels (*_us, *_bytes, *high_water, …), and for restart_count and the like;
 * gauge otherwise.
 * Returns: (transfer full) the text, each line ending in '\n'.
 */
char *cli_prometheus_format(GVariant *metrics);

/** cli_prometheus_sanitize_name: Returns: (transfer full) @name with every invalid character as '_'. */
char *cli_prometheus_sanitize_name(const char *name);

G_END_DECLS
