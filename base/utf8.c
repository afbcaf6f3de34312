#include "base/utf8.h"

#include <stdint.h>

size_t base_utf8_char_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0;
    uint32_t cp = 0, min = 0;

    if (n == 0) {
        goto done;
    }
    if (p[0] < 0x80) {
        len = 1;
        goto done;
    } else if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1fu;
        min = 0x80;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0fu;
        min = 0x800;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07u;
        min = 0x10000;
    } else {
        goto done; /* a continuation byte, or f8..ff */
    }
    if (len > n) {
        len = 0; /* the sequence runs past the end: truncated */
        goto done;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            len = 0;
            goto done;
        }
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    /* Overlong forms, surrogates and code points past Unicode's last (RFC 3629, section 3). */
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        len = 0;
    }
done:
    return len;
}

size_t base_utf8_cut(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t m = base_utf8_char_len(s + i, n - i);
        if (m == 0) {
            break;
        }
        i += m;
    }
    return i;
}

bool base_utf8_valid(const char *s, size_t n)
{
    return base_utf8_cut(s, n) == n;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool base_percent_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi = n - i >= 3 ? hex_digit(s[i + 1]) : -1;
            int lo = n - i >= 3 ? hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                return false;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (ch == '\0' || o + 1 >= len) {
            return false;
        }
        out[o++] = ch;
    }
    if (len == 0) {
        return false;
    }
    out[o] = '\0';
    return true;
}
