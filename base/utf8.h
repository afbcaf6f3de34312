#ifndef BASE_UTF8_H
#define BASE_UTF8_H

/*
 * UTF-8 validation (RFC 3629, strict). A valid sequence is one of
 *
 *   00..7f                              U+0000..U+007F
 *   c2..df 80..bf                       U+0080..U+07FF
 *   e0..ef 80..bf 80..bf                U+0800..U+FFFF, except U+D800..U+DFFF
 *   f0..f4 80..bf 80..bf 80..bf         U+10000..U+10FFFF
 *
 * so overlong forms (c0 80 for U+0000, e0 80 af for '/'), UTF-16 surrogates
 * (ed a0 80), code points past U+10FFFF (f4 90 80 80) and the bytes f5..ff
 * are invalid. NUL (00) is valid UTF-8; callers that forbid it check it
 * themselves.
 *
 * Used where peer text enters (the wire decoder refuses strings that are not
 * UTF-8) and where text leaves (error messages are cut on a character
 * boundary, JSON output refuses invalid strings).
 *
 * Pure functions over (s, n); @s need not be NUL-terminated and may be NULL
 * when @n is 0. Thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>

/*
 * base_utf8_char_len() - length of the character that starts @s.
 * @s: at least @n bytes (borrowed)   @n: bytes available, may be 0
 * Return: 1..4, the length of the valid sequence at @s; 0 if @n is 0, if the
 *         bytes at @s are not a valid sequence, or if it needs more than @n.
 */
size_t base_utf8_char_len(const char *s, size_t n);

/*
 * base_utf8_valid() - whether s[0..n) is a whole number of valid sequences.
 * Return: true for valid UTF-8 (the empty string included).
 */
bool base_utf8_valid(const char *s, size_t n);

/*
 * base_utf8_cut() - the longest prefix of s[0..n) that is valid UTF-8.
 * For a valid string cut at @n bytes (as snprintf's "%.48s" or a size limit
 * cuts it), that is the last character boundary at or before @n: a character
 * the cut split is left out whole.
 * Return: a length in 0..n; n exactly when base_utf8_valid(s, n).
 */
size_t base_utf8_cut(const char *s, size_t n);

/*
 * base_percent_decode() - URL percent-decoding of s[0..n) into @out (@len bytes, NUL
 * terminated): "%XX" (hex, either case) is that byte, and with @plus_is_space a '+' is a
 * space (query strings). False if it does not fit, holds a malformed escape, or would
 * hold a NUL byte.
 */
bool base_percent_decode(const char *s, size_t n, bool plus_is_space, char *out, size_t len);

#endif
