#include "storage/streamid.h"

#include <stdio.h>
#include <string.h>

/* Parse a decimal uint64 in [s, end) with no leading zeros (but "0"). */
static bool parse_u64(const char *s, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = (size_t)(end - s);

    if (n == 0 || n > 20 || (n > 1 && s[0] == '0')) {
        return false;
    }
    for (const char *p = s; p < end; p++) {
        unsigned dgt = (unsigned)(unsigned char)*p - '0';
        if (dgt > 9 || v > (UINT64_MAX - dgt) / 10u) {
            return false;
        }
        v = v * 10u + dgt;
    }
    *out = v;
    return true;
}

bool sto_sid_parse(const char *s, sto_sid *out)
{
    sto_sid id;

    if (s == NULL) {
        return false;
    }
    const char *dash = strchr(s, '-');
    if (dash == NULL || !parse_u64(s, dash, &id.ms) ||
        !parse_u64(dash + 1, dash + 1 + strlen(dash + 1), &id.seq)) {
        return false;
    }
    *out = id;
    return true;
}

bool sto_sid_format(sto_sid id, char *out, size_t size)
{
    int n = snprintf(out, size, "%llu-%llu", (unsigned long long)id.ms, (unsigned long long)id.seq);
    return n > 0 && (size_t)n < size;
}

int sto_sid_cmp(sto_sid a, sto_sid b)
{
    if (a.ms != b.ms) {
        return a.ms < b.ms ? -1 : 1;
    }
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

sto_sid sto_sid_next(sto_sid last, uint64_t now_ms)
{
    sto_sid id;

    if (now_ms > last.ms) {
        id.ms = now_ms;
        id.seq = 0;
    } else if (last.seq < UINT64_MAX) {
        id.ms = last.ms;
        id.seq = last.seq + 1;
    } else {
        /* UINT64_MAX-UINT64_MAX cannot be passed; Redis refuses it as well. */
        id.ms = last.ms + (last.ms < UINT64_MAX);
        id.seq = 0;
    }
    return id;
}

int sto_sid_cmp_text(const char *a, const char *b)
{
    sto_sid x = {0, 0}, y = {0, 0};
    bool hx = a[0] != '\0' && sto_sid_parse(a, &x);
    bool hy = b[0] != '\0' && sto_sid_parse(b, &y);
    if (!hx || !hy) {
        return (hx ? 1 : 0) - (hy ? 1 : 0);
    }
    return sto_sid_cmp(x, y);
}
