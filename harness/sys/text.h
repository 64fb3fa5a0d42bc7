/* Text that leaves ampbench: messages on one line (control characters and bytes that are not
 * UTF-8 escaped, a long message shortened in the middle so that its start and its reason stay)
 * and strings made valid UTF-8 for JSON files. */
#ifndef AMPBENCH_TEXT_H
#define AMPBENCH_TEXT_H

#include <stddef.h>

/* The length of the longest prefix of s[0..len) that is valid UTF-8 (len when all of it is). */
size_t utf8_valid_prefix(const char *s, size_t len);

/* s as valid UTF-8: every byte that is not part of a valid sequence becomes U+FFFD. Returns a
 * malloc'd copy, or NULL when out of memory. */
char *utf8_repaired(const char *s);

/* msg on one line into out (always NUL-terminated): \n, \r, \t as those escapes, other control
 * characters and invalid UTF-8 bytes as \xNN; when longer than max_bytes (and than len - 1),
 * the middle is replaced by "...[N bytes cut]...", keeping the first third and the last two
 * thirds (the reason, which comes last). */
void text_one_line(char *out, size_t len, const char *msg, size_t max_bytes);

/* "ampbench: <kind><msg>" on stderr as one line, msg through text_one_line (at most 1000 bytes):
 * every message and warning ampbench prints goes through here. */
void text_print_error(const char *kind, const char *msg);

#endif
