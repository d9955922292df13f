/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/*
 * A collector's settings: the collector declares a schema (a static array of
 * DccConfigKey ending with a zeroed entry); collector-core parses and checks
 * every value against it, whether it comes from the command line (--set),
 * from a Start request's config_overrides or from an UpdateConfig request's
 * JSON, so a setting is accepted or refused the same way wherever it comes from.
 */

typedef enum {
        DCC_CONFIG_INT,    /* gint64; JSON integer; "-12" */
        DCC_CONFIG_UINT,   /* guint64; JSON integer >= 0; "12" */
        DCC_CONFIG_BOOL,   /* JSON true/false; "true"/"false"/"yes"/"no"/"on"/"off"/"1"/"0" */
        DCC_CONFIG_STRING, /* UTF-8; JSON string; taken as is */
        DCC_CONFIG_DOUBLE, /* finite; JSON number; "0.5" */
} DccConfigType;

/* One bound of a range: the member that fits the key's type (.u for a string's length). */
typedef union {
        gint64 i;
        guint64 u;
        double d;
} DccConfigBound;

typedef struct {
        /* 1..64 bytes of [A-Za-z0-9_-], unique within the schema. */
        const char *key;
        DccConfigType type;
        /* Parsed as a --set value; must lie in the range. NULL: 0, false or "". */
        const char *default_value;
        /*
         * Inclusive range: .i for INT, .u for UINT, .d for DOUBLE, .u as the
         * length in bytes for STRING. Both zero (the default): no limit but
         * the type's. Ignored for BOOL.
         */
        DccConfigBound min;
        DccConfigBound max;
        /*
         * The collector reads this key only when it starts: while it runs, a
         * change is recorded for the next start instead of going through
         * apply_config, and only when the caller accepts a restart.
         */
        gboolean restart_required;
        /* One line for --help, capabilities and error messages. */
        const char *description;
} DccConfigKey;

typedef struct {
        DccConfigType type;
        union {
                gint64 int_value;
                guint64 uint_value;
                gboolean bool_value;
                double double_value;
                const char *string_value; /* never NULL */
        };
} DccConfigValue;

/* One setting changing, as handed to the collector's apply_config callback. */
typedef struct {
        const DccConfigKey *key;
        DccConfigValue old_value;
        DccConfigValue new_value;
} DccConfigChange;

/** dcc_config_type_to_string: "int", "uint", "bool", "string", "double". */
const char *dcc_config_type_to_string(DccConfigType type);

/**
 * dcc_config_value_to_string:
 *
 * Returns: (transfer full) @value as a --set value would spell it
 *   ("42", "true", "0.5"; strings as they are).
 */
char *dcc_config_value_to_string(const DccConfigValue *value);

/** dcc_config_value_equal: Returns: %TRUE if @a and @b have the same type and value. */
gboolean dcc_config_value_equal(const DccConfigValue *a, const DccConfigValue *b);

G_END_DECLS
