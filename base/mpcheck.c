#include "base/mpcheck.h"

#include <stdbool.h>

/* Big-endian unsigned read of @n (1, 2 or 4) bytes. */
static uint32_t be(const uint8_t *p, size_t n)
{
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/*
 * Classify the object header at p[0..rem): how many header bytes, how many
 * payload bytes follow it, and how many child objects it contains.
 */
static base_err header(const uint8_t *p, size_t rem, size_t *out_hdr, uint64_t *out_payload,
                       uint64_t *out_children)
{
    uint8_t b = p[0];
    size_t hdr = 1;
    uint64_t payload = 0, children = 0;
    size_t lenbytes = 0;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        /* fixint, nil, bool */
    } else if (b >= 0x80 && b <= 0x8f) {
        children = 2u * (b & 0x0fu);
    } else if (b >= 0x90 && b <= 0x9f) {
        children = b & 0x0fu;
    } else if (b >= 0xa0 && b <= 0xbf) {
        payload = b & 0x1fu;
    } else {
        switch (b) {
        case 0xcc:
        case 0xd0:
            payload = 1;
            break;
        case 0xcd:
        case 0xd1:
            payload = 2;
            break;
        case 0xca:
        case 0xce:
        case 0xd2:
            payload = 4;
            break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
            payload = 8;
            break;
        case 0xd4:
            payload = 2;
            break; /* fixext1: type + 1 */
        case 0xd5:
            payload = 3;
            break;
        case 0xd6:
            payload = 5;
            break;
        case 0xd7:
            payload = 9;
            break;
        case 0xd8:
            payload = 17;
            break;
        case 0xc4:
        case 0xd9:
            lenbytes = 1;
            break; /* bin8, str8 */
        case 0xc5:
        case 0xda:
            lenbytes = 2;
            break;
        case 0xc6:
        case 0xdb:
            lenbytes = 4;
            break;
        case 0xc7:
            lenbytes = 1;
            payload = 1;
            break; /* ext8: len, type */
        case 0xc8:
            lenbytes = 2;
            payload = 1;
            break;
        case 0xc9:
            lenbytes = 4;
            payload = 1;
            break;
        case 0xdc:
        case 0xde:
            lenbytes = 2;
            break; /* array16, map16 */
        case 0xdd:
        case 0xdf:
            lenbytes = 4;
            break;
        default:
            return BASE_EPROTO; /* 0xc1 */
        }
        if (lenbytes > 0) {
            if (rem < 1 + lenbytes) {
                return BASE_EPROTO;
            }
            uint64_t n = be(p + 1, lenbytes);
            hdr += lenbytes;
            if (b == 0xdc || b == 0xdd) {
                children = n;
            } else if (b == 0xde || b == 0xdf) {
                children = 2 * n;
            } else {
                payload += n;
            }
        }
    }
    if (hdr > rem || payload > rem - hdr || children > rem - hdr) {
        return BASE_EPROTO;
    }
    *out_hdr = hdr;
    *out_payload = payload;
    *out_children = children;
    return BASE_OK;
}

/* Whether the header byte @b opens an array or a map (fix, 16 or 32). */
static bool is_container(uint8_t b)
{
    return (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
}

base_err base_mpcheck(const uint8_t *buf, size_t len, size_t max_depth, size_t max_objects)
{
    /* stack[i]: children still expected by the container at depth i. */
    uint64_t stack[BASE_MPCHECK_DEPTH_MAX + 1];
    size_t depth = 0;
    size_t pos = 0;
    size_t n_objects = 0;
    bool done = false;

    if (max_depth > BASE_MPCHECK_DEPTH_MAX) {
        max_depth = BASE_MPCHECK_DEPTH_MAX;
    }
    if (buf == NULL || len == 0) {
        return BASE_EPROTO;
    }
    while (!done) {
        if (pos >= len) {
            return BASE_EPROTO;
        }
        size_t hdr;
        uint64_t payload, children;
        base_err e = header(buf + pos, len - pos, &hdr, &payload, &children);
        if (e != BASE_OK) {
            return e;
        }
        if (++n_objects > max_objects) {
            return BASE_ELIMIT;
        }
        /* An empty container nests as deep as a full one: it counts for the depth too. */
        if (is_container(buf[pos]) && depth == max_depth) {
            return BASE_ELIMIT;
        }
        pos += hdr + (size_t)payload;
        if (children > 0) {
            stack[++depth] = children;
            continue;
        }
        /* A leaf (or empty container) completed: pop finished containers. */
        for (;;) {
            if (depth == 0) {
                done = true;
                break;
            }
            if (--stack[depth] > 0) {
                break;
            }
            depth--;
        }
    }
    return pos == len ? BASE_OK : BASE_EPROTO;
}
