/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * "[collector <id>]" groups: what config.c hands over to config-collector.c.
 * Internal to the configuration library; everyone else uses config.h.
 */
#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

/**
 * collector_config_apply_group:
 * @collectors: of CollectorConfig, in the order first seen; the group's entry
 *   is created on its first file and updated by later ones
 * @id: the validated id from the group name
 *
 * Checks every key of the group in @kf and applies it over the values of
 * earlier files, so a drop-in can override single keys or settings.
 * Returns: %FALSE with a CONFIG_ERROR naming @file, the group, the key and
 *   the accepted range.
 */
gboolean collector_config_apply_group(GPtrArray *collectors, const char *file, GKeyFile *kf,
                                      const char *group, const char *id, GError **error);

/**
 * collector_configs_diff:
 * @old: (nullable) NULL-terminated
 * @new: (nullable) NULL-terminated
 * @lines: "[collector <id>] key: old -> new", "[collector <id>]: added" and
 *   "[collector <id>]: removed" lines are appended here
 */
void collector_configs_diff(CollectorConfig *const *old, CollectorConfig *const *new, GPtrArray *lines);

G_END_DECLS
