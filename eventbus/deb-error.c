/* SPDX-License-Identifier: Apache-2.0 */
#include "deb-error.h"

G_DEFINE_QUARK(deb-error-quark, deb_error)
