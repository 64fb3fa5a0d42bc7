/* A minimal check harness shared by the C and C++ tests: check(ok, fmt, ...) and CHECK(cond, fmt,
 * ...) (with the file and line) count and report each check (failures on stderr);
 * check_summary() prints "N passed, N failed" and gives the exit code. */
#ifndef AMPBENCH_TEST_CHECK_H
#define AMPBENCH_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int check_passed, check_failed;

static void check_va(int ok, const char *file, int line, const char *fmt, va_list ap)
{
    if (ok) {
        check_passed++;
        return;
    }
    check_failed++;
    if (file)
        fprintf(stderr, "FAIL %s:%d: ", file, line);
    else
        fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
}

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    check_va(ok, NULL, 0, fmt, ap);
    va_end(ap);
}

/* CHECK(cond, fmt, ...): check() naming the file and line of a failure. */
static void check_at(int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), unused));
static void check_at(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    check_va(ok, file, line, fmt, ap);
    va_end(ap);
}
#define CHECK(cond, ...) check_at((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

static int check_summary(void) __attribute__((unused));
static int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed != 0;
}

#endif
