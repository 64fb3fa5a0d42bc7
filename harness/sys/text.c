/* One-line messages and valid UTF-8: the escaping and shortening rules of text.h. */
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    const unsigned c = s[0];
    size_t need;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, min = 0x10000;
    else
        return 0;
    if (n < need)
        return 0;
    unsigned cp = c & (0x7F >> need);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0; /* overlong, beyond Unicode, or a surrogate */
    return need;
}

size_t utf8_valid_prefix(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        const size_t k = utf8_seq(u + i, len - i);
        if (!k)
            break;
        i += k;
    }
    return i;
}

char *utf8_repaired(const char *s)
{
    const size_t n = strlen(s);
    char *out = malloc(3 * n + 1); /* each bad byte becomes 3 bytes */
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const size_t k = utf8_seq(u + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

/* Appends the escaped form of msg to out (of capacity cap) from `used`; returns the new length
 * that it would have (it may exceed cap - 1, like snprintf). */
static size_t escape_into(char *out, size_t cap, size_t used, const char *msg)
{
    const unsigned char *u = (const unsigned char *)msg;
    const size_t n = strlen(msg);
    for (size_t i = 0; i < n;) {
        char piece[8];
        size_t k = utf8_seq(u + i, n - i);
        if (k == 1 && (u[i] < 0x20 || u[i] == 0x7F)) {
            const char *named = u[i] == '\n' ? "\\n" : u[i] == '\r' ? "\\r" : u[i] == '\t' ? "\\t" : NULL;
            if (named)
                snprintf(piece, sizeof piece, "%s", named);
            else
                snprintf(piece, sizeof piece, "\\x%02X", u[i]);
            k = 1;
        } else if (k == 0) {
            snprintf(piece, sizeof piece, "\\x%02X", u[i]);
            k = 1;
        } else {
            memcpy(piece, msg + i, k);
            piece[k] = '\0';
        }
        const size_t pl = strlen(piece);
        if (used + pl < cap)
            memcpy(out + used, piece, pl);
        used += pl;
        i += k;
    }
    if (cap)
        out[used < cap ? used : cap - 1] = '\0';
    return used;
}

/* The start of the UTF-8 character holding byte i of s (never inside a sequence). */
static size_t char_start(const char *s, size_t i)
{
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

void text_one_line(char *out, size_t len, const char *msg, size_t max_bytes)
{
    if (!len)
        return;
    if (max_bytes > len - 1)
        max_bytes = len - 1;
    /* Escape fully first (into a buffer large enough for the worst case), then shorten. */
    const size_t need = 4 * strlen(msg) + 1;
    char *esc = malloc(need);
    if (!esc) {
        escape_into(out, len, 0, msg);
        return;
    }
    const size_t n = escape_into(esc, need, 0, msg);
    if (n <= max_bytes) {
        memcpy(out, esc, n + 1);
        free(esc);
        return;
    }
    char mark[48];
    snprintf(mark, sizeof mark, "...[%zu bytes cut]...", n); /* an upper bound, refined below */
    const size_t room = max_bytes > strlen(mark) + 16 ? max_bytes - strlen(mark) : 16;
    const size_t head = char_start(esc, room / 3);
    const size_t tail_from = char_start(esc, n - (room - room / 3));
    snprintf(mark, sizeof mark, "...[%zu bytes cut]...", tail_from - head);
    snprintf(out, len, "%.*s%s%s", (int)head, esc, mark, esc + tail_from);
    free(esc);
}

void text_print_error(const char *kind, const char *msg)
{
    char line[1200];
    text_one_line(line, sizeof line, msg, 1000);
    fprintf(stderr, "ampbench: %s%s\n", kind, line);
}
