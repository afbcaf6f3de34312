#ifndef TESTS_HELPERS_TAP_H
#define TESTS_HELPERS_TAP_H

/*
 * A minimal TAP producer for meson's 'tap' protocol.
 *
 *   TST_OK(expr)            expr is a base_err; passes when BASE_OK, else prints base_strerror
 *   TST_TRUE(cond)          passes when cond is non-zero
 *   TST_EQ(got, want)       integer equality (long long)
 *   TST_NEAR(got, want, rel_tol)  |got - want| <= rel_tol * max(1, |want|)
 *   TST_STREQ(got, want)    string equality
 *   tst_skip_all(why)       prints "1..0 # SKIP why" and exits 0, unless
 *                           TST_REQUIRE_ALL=1, when it fails instead
 *   return tst_done();      prints the plan, returns the exit status
 *
 * Single-threaded: call the macros from the test's main thread only.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static int tst_n;
static int tst_failed;

static inline void tst_report(int ok, const char *file, int line, const char *what,
                              const char *detail)
{
    tst_n++;
    if (!ok) {
        tst_failed++;
    }
    printf("%s %d - %s:%d %s\n", ok ? "ok" : "not ok", tst_n, file, line, what);
    if (!ok && detail != NULL && detail[0] != '\0') {
        printf("#   %s\n", detail);
    }
    fflush(stdout);
}

#define TST_OK(expr)                                                                               \
    do {                                                                                           \
        base_err tst_e_ = (expr);                                                                  \
        tst_report(tst_e_ == BASE_OK, __FILE__, __LINE__, #expr, base_strerror(tst_e_));           \
    } while (0)

#define TST_TRUE(cond) tst_report((cond) ? 1 : 0, __FILE__, __LINE__, #cond, "false")

#define TST_EQ(got, want)                                                                          \
    do {                                                                                           \
        long long tst_g_ = (long long)(got), tst_w_ = (long long)(want);                           \
        char tst_d_[128];                                                                          \
        snprintf(tst_d_, sizeof(tst_d_), "got %lld, want %lld", tst_g_, tst_w_);                   \
        tst_report(tst_g_ == tst_w_, __FILE__, __LINE__, #got " == " #want, tst_d_);               \
    } while (0)

#define TST_NEAR(got, want, rel_tol)                                                               \
    do {                                                                                           \
        double tst_g_ = (double)(got), tst_w_ = (double)(want);                                    \
        double tst_s_ = fabs(tst_w_) > 1.0 ? fabs(tst_w_) : 1.0;                                   \
        char tst_d_[160];                                                                          \
        snprintf(tst_d_, sizeof(tst_d_), "got %.9g, want %.9g (rel tol %g)", tst_g_, tst_w_,       \
                 (double)(rel_tol));                                                               \
        tst_report(fabs(tst_g_ - tst_w_) <= (rel_tol)*tst_s_, __FILE__, __LINE__,                  \
                   #got " ~ " #want, tst_d_);                                                      \
    } while (0)

#define TST_STREQ(got, want)                                                                       \
    do {                                                                                           \
        const char *tst_g_ = (got), *tst_w_ = (want);                                              \
        char tst_d_[256];                                                                          \
        snprintf(tst_d_, sizeof(tst_d_), "got \"%.100s\", want \"%.100s\"",                        \
                 tst_g_ ? tst_g_ : "(null)", tst_w_);                                              \
        tst_report(tst_g_ != NULL && strcmp(tst_g_, tst_w_) == 0, __FILE__, __LINE__,              \
                   #got " == " #want, tst_d_);                                                     \
    } while (0)

static inline void tst_skip_all(const char *why)
{
    const char *req = getenv("TST_REQUIRE_ALL");
    if (req != NULL && strcmp(req, "1") == 0) {
        printf("1..1\nnot ok 1 - prerequisite missing (TST_REQUIRE_ALL=1): %s\n", why);
        exit(1);
    }
    printf("1..0 # SKIP %s\n", why);
    exit(0);
}

static inline int tst_done(void)
{
    printf("1..%d\n", tst_n);
    return tst_failed == 0 ? 0 : 1;
}

#endif
