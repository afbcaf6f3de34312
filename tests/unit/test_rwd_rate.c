/*
 * Unit tests for reward/rate: a full bucket, refill and its cap, checks
 * that change nothing, buckets per user, and the bounded table (a new user
 * in a full set takes the least recently used way). Times are plain
 * milliseconds; expected token counts are computed as the module does, so
 * the relative tolerance is 1e-12.
 */

#include <stdio.h>

#include "reward/rate.h"
#include "tap.h"

#define TOL 1e-12

static void test_bucket(void)
{
    rwd_rate *r = rwd_rate_new(1.0, 3.0);
    TST_TRUE(r != NULL);
    if (r == NULL) {
        return;
    }
    TST_NEAR(rwd_rate_tokens(r, "u", 0), 3.0, TOL); /* starts full */
    for (int i = 0; i < 10; i++) {
        TST_NEAR(rwd_rate_tokens(r, "u", 0), 3.0, TOL); /* checking spends nothing */
    }
    rwd_rate_take(r, "u", 0);
    rwd_rate_take(r, "u", 0);
    rwd_rate_take(r, "u", 0);
    TST_NEAR(rwd_rate_tokens(r, "u", 0), 0.0, TOL);
    TST_NEAR(rwd_rate_tokens(r, "u", 500), 0.5, TOL);
    TST_NEAR(rwd_rate_tokens(r, "u", 1500), 1.5, TOL);
    TST_NEAR(rwd_rate_tokens(r, "u", 86400000), 3.0, TOL); /* never more than the burst */
    TST_NEAR(rwd_rate_tokens(r, "v", 0), 3.0, TOL);        /* another user: its own bucket */
    TST_NEAR(rwd_rate_tokens(r, "u", -100), 0.0, TOL);     /* time going back refills nothing */
    rwd_rate_take(r, "u", 2000);
    TST_NEAR(rwd_rate_tokens(r, "u", 2000), 1.0, TOL);
    rwd_rate_free(r);
    rwd_rate_free(NULL);
}

/*
 * The table is bounded: a flood of distinct users takes the least recently
 * used way of each set, so an old user is forgotten (and starts full again)
 * while the newest keep their buckets. The refill (1 token per 1000 s) is
 * too slow to hide the difference.
 */
static void test_bounded(void)
{
    rwd_rate *r = rwd_rate_new(0.001, 2.0);
    TST_TRUE(r != NULL);
    if (r == NULL) {
        return;
    }
    rwd_rate_take(r, "first", 0);
    TST_NEAR(rwd_rate_tokens(r, "first", 1000), 1.0 + 0.001, TOL);
    char id[32];
    const int n = 64 * RWD_RATE_SETS; /* about 64 users per set */
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "flood-%d", i);
        rwd_rate_take(r, id, 1000 + i);
    }
    int64_t end = 1000 + n;
    TST_NEAR(rwd_rate_tokens(r, "first", end), 2.0, TOL); /* forgotten: full again */
    snprintf(id, sizeof(id), "flood-%d", n - 1);
    TST_NEAR(rwd_rate_tokens(r, id, end - 1), 1.0, TOL); /* the newest kept its bucket */
    rwd_rate_free(r);
}

int main(void)
{
    test_bucket();
    test_bounded();
    return tst_done();
}
