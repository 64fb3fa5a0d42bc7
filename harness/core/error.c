/* Error reporting: one thread-local message slot owned by this file. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[16384]; /* long paths fit; the printer shortens */

int amp_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *amp_last_error(void)
{
    return last_error;
}
