/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * The KEY=VALUE arguments of `config`, typed the way a collector's schema
 * expects them: true/false a boolean (b), an integer an int64 (x), a decimal
 * number a double (d), anything else a string (s).
 */

/**
 * cli_setting_value_parse:
 *
 * Returns: (transfer full) @text as a b, x, d or s value; %NULL with
 *   #CLI_ERROR_USAGE for an integer that does not fit in 64 bits.
 */
GVariant *cli_setting_value_parse(const char *text, GError **error);

/**
 * cli_settings_parse:
 * @assignments: %NULL-terminated "KEY=VALUE" strings
 *
 * Keys are letters, digits, '_', '-' and '.'; each may appear once.
 * Returns: (transfer full) an a{sv} of the settings in the given order, or
 *   %NULL with #CLI_ERROR_USAGE naming the bad argument.
 */
GVariant *cli_settings_parse(const char *const *assignments, GError **error);

G_END_DECLS
