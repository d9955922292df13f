/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * DEB_ERROR:
 *
 * Error domain of libdaemoneye-eventbus. Every error message names what failed,
 * on what, and why: "topic 'events..x': level 2 is empty".
 */
#define DEB_ERROR (deb_error_quark())
GQuark deb_error_quark(void);

typedef enum {
        DEB_ERROR_INVALID_TOPIC,      /* not a valid concrete topic */
        DEB_ERROR_INVALID_PATTERN,    /* not a valid subscription pattern */
        DEB_ERROR_FRAME_TOO_LARGE,    /* a frame length over max_frame_bytes */
        DEB_ERROR_MALFORMED,          /* bytes that do not decode as an Envelope */
        DEB_ERROR_PROTOCOL,           /* a valid frame at the wrong time */
        DEB_ERROR_REFUSED,            /* the broker answered with an Error frame */
        DEB_ERROR_CLOSED,             /* the connection is closed */
        DEB_ERROR_TIMEOUT,            /* a deadline passed */
        DEB_ERROR_IO,                 /* a system call failed; the message has strerror */
        DEB_ERROR_LIMIT,              /* a configured limit was reached */
} DebError;

G_END_DECLS
