/*
 * Unit tests for service/auth.c on a manual clock: the clock window, the replay memory
 * across its generations (a replay is refused for as long as its proof could be accepted,
 * memory does not grow past auth_replay_max, and a full window answers unavailable), scopes,
 * the outcome cap with its alarm, and the per-client counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/auth.h"
#include "proto/request.h"
#include "service/auth.h"
#include "service/config.h"
#include "tap.h"

#define T0 1700000000000LL
#define WINDOW 1000

static int64_t clock_ms = T0;

static int64_t manual_now(void)
{
    return clock_ms;
}

static const uint8_t key_fe[PROTO_AUTH_KEY_BYTES] = {1, 2, 3};

/* A stats request for @policy signed by "fe" at @ts with @nonce into @b; decoded into @r. */
static void signed_stats(base_buf *b, proto_request *r, const char *policy, int64_t ts,
                         const char *nonce)
{
    proto_error err;
    base_buf_reset(b);
    TST_OK(proto_encode_stats(b, policy));
    TST_OK(proto_auth_sign(b, "fe", key_fe, ts, nonce));
    TST_OK(proto_request_decode(b->data, b->len, r, &err));
}

static proto_errcode check(svc_auth *a, const base_buf *b, const proto_request *r, proto_op op,
                           const char *policy, proto_error *err)
{
    return svc_auth_check(a, r, b->data, b->len, NULL, op, policy, true, err, NULL);
}

static svc_config *config(uint32_t replay_max)
{
    char text[2048], stored[PROTO_AUTH_KEY_STRING_LEN + 1], why[256];
    uint8_t salt[PROTO_AUTH_SALT_BYTES] = {0};
    svc_config *c = base_alloc_zero(1, sizeof(*c));
    proto_auth_key_string(salt, key_fe, stored);
    snprintf(text, sizeof(text),
             "[server]\nauth = on\nauth_window_ms = %d\nauth_replay_max = %u\n"
             "[policy p]\ndim = 2\nactions = a\nsignal.s = 1\n"
             "[policy q]\ndim = 2\nactions = a\nsignal.s = 1\n"
             "[client fe]\nkey = %s\nops = ops, feedback\npolicies = p\n"
             "outcome_rate_per_s = 1\noutcome_burst = 2\n"
             "[client bulk]\nkey = %s\nops = feedback\n",
             WINDOW, replay_max, stored, stored);
    if (svc_config_load_string(text, c, why, sizeof(why)) != BASE_OK) {
        printf("Bail out! config: %s\n", why);
        exit(1);
    }
    return c;
}

/* An auth of config(@replay_max) on the manual clock at T0, and a request buffer. */
typedef struct fixture {
    svc_config *c;
    svc_auth *a;
    base_buf b;
} fixture;

static void fixture_init(fixture *x, uint32_t replay_max)
{
    x->c = config(replay_max);
    x->a = NULL;
    TST_OK(svc_auth_new(x->c, &x->a));
    clock_ms = T0;
    svc_auth_set_clock(x->a, manual_now);
    base_buf_init(&x->b, 1u << 20);
}

static void fixture_fini(fixture *x)
{
    base_buf_fini(&x->b);
    svc_auth_free(x->a);
    svc_config_fini(x->c);
    base_free(x->c);
}

static void window_and_replays(void)
{
    fixture x;
    proto_request r;
    proto_error err;
    fixture_init(&x, 1024);
    svc_auth *a = x.a;
    base_buf *b = &x.b;

    /* A proof as far ahead as the window allows is accepted once; then it is a replay for
     * as long as its timestamp stays within the window, across generation changes. */
    signed_stats(b, &r, "p", T0 + WINDOW, "n-ahead");
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "p", &err), PROTO_E_NONE);
    for (int64_t t = T0; t <= T0 + 2 * WINDOW; t += WINDOW / 4) {
        clock_ms = t;
        TST_EQ(check(a, b, &r, PROTO_OP_STATS, "p", &err), PROTO_E_UNAUTHORIZED);
    }
    /* Past that it is stale, whatever the memory. */
    clock_ms = T0 + 2 * WINDOW + 1;
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "p", &err), PROTO_E_UNAUTHORIZED);
    TST_TRUE(strncmp(err.message, "stale request", 13) == 0);

    /* Many proofs over many windows: memory is bounded by generations, none refused. */
    int refused = 0;
    for (int i = 0; i < 8000; i++) {
        char nonce[32];
        clock_ms = T0 + 3 * WINDOW + (int64_t)i; /* 8 windows' worth, 1000 per window */
        snprintf(nonce, sizeof(nonce), "n%d", i);
        signed_stats(b, &r, "p", clock_ms, nonce);
        refused += check(a, b, &r, PROTO_OP_STATS, "p", &err) != PROTO_E_NONE;
    }
    TST_EQ(refused, 0);

    /* Scopes: policy q is not fe's; stats of every policy needs policies = *; decide is not
     * in its ops. */
    signed_stats(b, &r, "q", clock_ms, "s1");
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "q", &err), PROTO_E_FORBIDDEN);
    signed_stats(b, &r, "", clock_ms, "s2");
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "", &err), PROTO_E_FORBIDDEN);
    signed_stats(b, &r, "p", clock_ms, "s3");
    TST_EQ(check(a, b, &r, PROTO_OP_DECIDE, "p", &err), PROTO_E_FORBIDDEN);

    /* The outcome cap: burst 2, then rate_limited and the alarm. */
    char alarms[4][SVC_CLIENT_ALARM_MAX];
    TST_EQ(svc_auth_alarms(a, alarms, 4), 0);
    proto_errcode fb[3];
    for (int i = 0; i < 3; i++) {
        char nonce[16];
        snprintf(nonce, sizeof(nonce), "f%d", i);
        signed_stats(b, &r, "p", clock_ms, nonce);
        fb[i] = check(a, b, &r, PROTO_OP_FEEDBACK, "p", &err);
    }
    TST_EQ(fb[0], PROTO_E_NONE);
    TST_EQ(fb[1], PROTO_E_NONE);
    TST_EQ(fb[2], PROTO_E_RATE_LIMITED);
    TST_EQ(svc_auth_alarms(a, alarms, 4), 1);
    TST_STREQ(alarms[0], "client fe: over its outcome cap");

    proto_client_stats cs[2];
    uint32_t n = 0;
    uint64_t unknown = 0;
    svc_auth_stats(a, cs, 2, &n, &unknown);
    TST_EQ(n, 2); /* fe, bulk */
    TST_EQ(cs[0].accepted, 1 + 8000 + 2);
    TST_EQ(cs[0].unauthorized, 10);
    TST_EQ(cs[0].forbidden, 3);
    TST_EQ(cs[0].rate_limited, 1);
    TST_EQ(cs[0].alarms, 1);
    TST_EQ(unknown, 0);

    fixture_fini(&x);
}

/* More proofs in one window than auth_replay_max: refused as unavailable, not forgotten. */
static void full_memory_refuses(void)
{
    fixture x;
    proto_request r;
    proto_error err;
    fixture_init(&x, 1024);
    svc_auth *a = x.a;
    base_buf *b = &x.b;
    int ok = 0, unavailable = 0;
    for (int i = 0; i < 1100; i++) {
        char nonce[32];
        snprintf(nonce, sizeof(nonce), "m%d", i);
        signed_stats(b, &r, "p", clock_ms, nonce);
        proto_errcode code = check(a, b, &r, PROTO_OP_STATS, "p", &err);
        ok += code == PROTO_E_NONE;
        unavailable += code == PROTO_E_UNAVAILABLE;
    }
    TST_EQ(ok, 1024);
    TST_EQ(unavailable, 1100 - 1024);
    /* The next window has room again. */
    clock_ms = T0 + WINDOW;
    signed_stats(b, &r, "p", clock_ms, "next");
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "p", &err), PROTO_E_NONE);
    fixture_fini(&x);

    /*
     * Refused requests use no room: more forbidden ones than auth_replay_max (policy q is not
     * fe's) leave every proof of another, allowed request its place.
     */
    fixture_init(&x, 1024);
    a = x.a;
    b = &x.b;
    int forbidden = 0;
    for (int i = 0; i < 1100; i++) {
        char nonce[32];
        snprintf(nonce, sizeof(nonce), "q%d", i);
        signed_stats(b, &r, "q", clock_ms, nonce);
        forbidden += check(a, b, &r, PROTO_OP_STATS, "q", &err) == PROTO_E_FORBIDDEN;
    }
    TST_EQ(forbidden, 1100);
    signed_stats(b, &r, "p", clock_ms, "allowed");
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "p", &err), PROTO_E_NONE);
    /* A forbidden proof sent again is forbidden again, not a replay: nothing was kept. */
    signed_stats(b, &r, "q", clock_ms, "q0");
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "q", &err), PROTO_E_FORBIDDEN);
    /* Feedback over fe's outcome cap (burst 2) keeps nothing either. */
    int limited = 0;
    for (int i = 0; i < 1100; i++) {
        char nonce[32];
        snprintf(nonce, sizeof(nonce), "r%d", i);
        signed_stats(b, &r, "p", clock_ms, nonce);
        limited += check(a, b, &r, PROTO_OP_FEEDBACK, "p", &err) == PROTO_E_RATE_LIMITED;
    }
    TST_EQ(limited, 1100 - 2);
    signed_stats(b, &r, "p", clock_ms, "allowed-2");
    TST_EQ(check(a, b, &r, PROTO_OP_STATS, "p", &err), PROTO_E_NONE);
    fixture_fini(&x);
}

/*
 * A client whose feedback rate jumps far above its recent range raises its rate alarm, also
 * after @pause quiet seconds (which alone raise nothing: a client going quiet is no alarm).
 */
static void rate_alarm(int pause)
{
    fixture x;
    proto_request r;
    proto_error err;
    char alarms[4][SVC_CLIENT_ALARM_MAX] = {""};
    uint64_t rng = 7;
    int raised_at = -1, refused = 0;
    fixture_init(&x, 1u << 20);
    svc_auth *a = x.a;
    base_buf *b = &x.b;
    /* 600 s of 3..7 a second, @pause s of none, then 200 a second. */
    int flood = 600 + pause;
    for (int sec = 0; sec < flood + 10 && raised_at < 0; sec++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        int n = sec < 600 ? 3 + (int)((rng >> 33) % 5) : sec < flood ? 0 : 200;
        for (int k = 0; k < n; k++) {
            char nonce[32];
            clock_ms = T0 + (int64_t)sec * 1000 + k;
            snprintf(nonce, sizeof(nonce), "r%d-%d", sec, k);
            base_buf_reset(b);
            TST_OK(proto_encode_stats(b, "p"));
            if (proto_auth_sign(b, "bulk", key_fe, clock_ms, nonce) != BASE_OK ||
                proto_request_decode(b->data, b->len, &r, &err) != BASE_OK) {
                refused++;
                continue;
            }
            refused += svc_auth_check(a, &r, b->data, b->len, NULL, PROTO_OP_FEEDBACK, "p", true,
                                      &err, NULL) != PROTO_E_NONE;
        }
        if (svc_auth_alarms(a, alarms, 4) > 0) {
            raised_at = sec;
        }
    }
    printf("# pause %d s: rate alarm raised at second %d (flood from %d)\n", pause, raised_at,
           flood);
    TST_EQ(refused, 0);
    TST_TRUE(raised_at >= flood && raised_at <= flood + 3);
    TST_STREQ(alarms[0], "client bulk: outcome rate up");
    fixture_fini(&x);
}

/*
 * The memory kept at a stop and restored at the next start: a proof used before is refused
 * after, in whichever generation it was; bytes keep() did not write restore nothing.
 */
static void memory_kept_across_restart(void)
{
    fixture x, y;
    proto_request r[3];
    proto_error err;
    base_buf req[3], kept;
    fixture_init(&x, 1024);
    base_buf_init(&kept, 1u << 20);
    for (int i = 0; i < 3; i++) {
        char nonce[16];
        snprintf(nonce, sizeof(nonce), "k%d", i);
        clock_ms = T0 + (int64_t)i * WINDOW; /* one proof in each generation */
        base_buf_init(&req[i], 1u << 16);
        signed_stats(&req[i], &r[i], "p", clock_ms, nonce);
        TST_EQ(check(x.a, &req[i], &r[i], PROTO_OP_STATS, "p", &err), PROTO_E_NONE);
    }
    TST_OK(svc_auth_keep(x.a, &kept));

    fixture_init(&y, 1024); /* the next start, at T0 */
    uint64_t n = 0;
    /* Cut short, or not what keep() writes: refused, nothing restored. */
    TST_EQ(svc_auth_restore(y.a, kept.data, kept.len - 1, &n), BASE_EPROTO);
    TST_EQ(svc_auth_restore(y.a, kept.data + 1, kept.len - 1, &n), BASE_EPROTO);
    TST_EQ(n, 0);
    clock_ms = T0 + 2 * WINDOW;
    TST_EQ(check(y.a, &req[2], &r[2], PROTO_OP_STATS, "p", &err), PROTO_E_NONE);
    fixture_fini(&y);

    fixture_init(&y, 1024);
    TST_OK(svc_auth_restore(y.a, kept.data, kept.len, &n));
    TST_EQ(n, 3);
    clock_ms = T0 + 2 * WINDOW;
    for (int i = 1; i < 3; i++) { /* k0's ts is out of the window by now */
        TST_EQ(check(y.a, &req[i], &r[i], PROTO_OP_STATS, "p", &err), PROTO_E_UNAUTHORIZED);
        TST_STREQ(err.message, "replayed request: this proof was already used");
    }
    for (int i = 0; i < 3; i++) {
        base_buf_fini(&req[i]);
    }
    base_buf_fini(&kept);
    fixture_fini(&y);
    fixture_fini(&x);
}

/*
 * A request checked only (answered "starting", not carried out): refused as any other would
 * be, but its proof is not used up and a feedback takes no outcome token, so the same bytes
 * are carried out once they come again.
 */
static void checked_only_changes_nothing(void)
{
    fixture x;
    proto_request r;
    proto_error err;
    fixture_init(&x, 1024);
    signed_stats(&x.b, &r, "p", T0, "once");
    for (int i = 0; i < 3; i++) {
        TST_EQ(svc_auth_check(x.a, &r, x.b.data, x.b.len, NULL, PROTO_OP_FEEDBACK, "p", false, &err,
                              NULL),
               PROTO_E_NONE);
    }
    TST_EQ(
        svc_auth_check(x.a, &r, x.b.data, x.b.len, NULL, PROTO_OP_FEEDBACK, "p", true, &err, NULL),
        PROTO_E_NONE);
    TST_EQ(
        svc_auth_check(x.a, &r, x.b.data, x.b.len, NULL, PROTO_OP_FEEDBACK, "p", false, &err, NULL),
        PROTO_E_UNAUTHORIZED); /* now a replay, checked only or not */
    signed_stats(&x.b, &r, "p", T0, "twice");
    TST_EQ(check(x.a, &x.b, &r, PROTO_OP_FEEDBACK, "p", &err), PROTO_E_NONE); /* burst 2 */
    proto_client_stats cs[2];
    uint32_t n = 0;
    uint64_t unknown = 0;
    svc_auth_stats(x.a, cs, 2, &n, &unknown);
    TST_EQ(cs[0].accepted, 2);
    TST_EQ(cs[0].rate_limited, 0);
    fixture_fini(&x);
}

int main(void)
{
    window_and_replays();
    memory_kept_across_restart();
    checked_only_changes_nothing();
    rate_alarm(0);
    rate_alarm(10);
    rate_alarm(120);
    full_memory_refuses();
    return tst_done();
}
