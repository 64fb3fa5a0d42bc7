/* A minimal check harness shared by the C tests: check(ok, fmt, ...) counts and reports each
 * check (failures on stderr); check_summary() prints "N passed, N failed" and gives the exit
 * code. */
#ifndef AMPBENCH_TEST_CHECK_H
#define AMPBENCH_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int check_passed, check_failed;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void check(int ok, const char *fmt, ...)
{
    if (ok) {
        check_passed++;
        return;
    }
    check_failed++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static int check_summary(void) __attribute__((unused));
static int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed != 0;
}

#endif
