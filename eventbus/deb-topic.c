/* placeholder-scaffold: replaced by the real module */
#include <glib.h>
