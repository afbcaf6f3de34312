#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/heap.h"
#include "base/hset.h"
#include "base/itab.h"
#include "base/mpcheck.h"
#include "base/queue.h"
#include "base/record.h"
#include "base/thread.h"
#include "base/utf8.h"
#include "tap.h"

/* An entry of the itab tests: its hash, its link, and the order it went in. */
typedef struct itab_ent {
    uint64_t hash;
    void *link;
    uint64_t seq;
    int live;
} itab_ent;

/* The live entries of @hash in @all[0..n), newest first, into @out; how many. */
static size_t itab_model(const itab_ent *all, size_t n, uint64_t hash, const itab_ent **out)
{
    size_t k = 0;
    for (size_t i = n; i-- > 0;) {
        if (all[i].live && all[i].hash == hash) {
            out[k++] = &all[i];
        }
    }
    return k;
}

static int itab_drained;

static void itab_count_drained(void *e)
{
    ((itab_ent *)e)->live = 0;
    itab_drained++;
}

/* A random run over an itab and its model. */
typedef struct itab_run {
    itab_ent *all;
    const itab_ent **want;
    size_t cap, n, live;
    size_t walks, bad_walks, resizing; /* lookups; wrong ones; made between two arrays */
    uint64_t x;
} itab_run;

enum { ITAB_HASHES = 3000 };

/* A run of at most @cap inserts from random state @seed (free .all and .want after). */
static itab_run itab_run_new(size_t cap, uint64_t seed)
{
    return (itab_run){.all = base_alloc_zero(cap, sizeof(itab_ent)),
                      .want = base_alloc_zero(cap, sizeof(itab_ent *)),
                      .cap = cap,
                      .x = seed};
}

/*
 * One random step: with chance @ins_of_8 / 8 (and while entries are left) an insert, else the
 * removal of a random live entry; then a lookup of a random hash, checked against the model:
 * exactly the live entries of the hash, newest first.
 */
static void itab_step(base_itab *t, itab_run *r, unsigned ins_of_8)
{
    uint64_t x = r->x;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    r->x = x;
    if (r->n < r->cap && (x % 8 < ins_of_8 || r->live == 0)) {
        itab_ent *e = &r->all[r->n];
        e->hash = (x >> 8) % ITAB_HASHES * 0x100000001b3ULL; /* spread over the bits */
        e->seq = r->n++;
        e->live = 1;
        base_itab_insert(t, e);
        r->live++;
    } else if (r->live > 0) {
        size_t i = (size_t)(x >> 16) % r->n;
        while (!r->all[i].live) {
            i = (i + 1) % r->n;
        }
        base_itab_remove(t, &r->all[i]);
        r->all[i].live = 0;
        r->live--;
    }
    uint64_t h = (x >> 24) % ITAB_HASHES * 0x100000001b3ULL;
    size_t k = itab_model(r->all, r->n, h, r->want), got = 0;
    base_itab_walk w;
    bool ok = true;
    r->resizing += t->t[1] != NULL;
    for (itab_ent *e = base_itab_first(t, h, &w); e != NULL; e = base_itab_next(t, &w)) {
        ok = ok && got < k && r->want[got] == e;
        got++;
    }
    r->walks++;
    r->bad_walks += !(ok && got == k);
}

/*
 * Random inserts and removes (few distinct hashes, so chains hold many of one hash and of
 * others) through many doublings, each lookup checked against the model, including while the
 * table is between two arrays.
 */
static void itab_walks_newest_first_through_growth(void)
{
    enum { N = 20000 };
    itab_run r = itab_run_new(N, 0x9e3779b97f4a7c15ULL);
    base_itab t;
    TST_OK(base_itab_init(&t, 1, offsetof(itab_ent, link), offsetof(itab_ent, hash)));
    while (r.n < N) {
        itab_step(&t, &r, 6);
    }
    TST_EQ(r.bad_walks, 0);
    TST_EQ(t.count, r.live);
    TST_TRUE(r.resizing > 0); /* lookups did run while it was between two arrays */
    TST_TRUE(t.size[0] >= r.live);
    printf("# itab: %zu walks, %zu live, %zu buckets, %zu walks while resizing\n", r.walks, r.live,
           t.size[0], r.resizing);
    itab_drained = 0;
    base_itab_drain(&t, itab_count_drained);
    TST_EQ(itab_drained, (long long)r.live);
    TST_EQ(t.count, 0);
    base_itab_walk w;
    TST_TRUE(base_itab_first(&t, r.all[0].hash, &w) == NULL);
    base_itab_fini(&t);
    base_free(r.all);
    base_free(r.want);
}

/*
 * After a peak the table gives its memory back: it halves step by step as entries go, every
 * lookup on the way still exact, and never below its initial size; a new peak grows it again.
 */
static void itab_shrinks_after_a_peak(void)
{
    enum { N = 40000 };
    itab_run r = itab_run_new(N, 0x2545f4914f6cdd1dULL);
    base_itab t;
    TST_OK(base_itab_init(&t, 64, offsetof(itab_ent, link), offsetof(itab_ent, hash)));
    while (r.n < N / 2) {
        itab_step(&t, &r, 7);
    }
    size_t peak = t.size[t.t[1] != NULL && t.size[1] > t.size[0] ? 1 : 0];
    TST_TRUE(peak >= r.live);
    size_t resizing0 = r.resizing;
    while (r.live > 10) {
        itab_step(&t, &r, 3); /* a third of the steps insert, also while halving */
    }
    for (int i = 0; i < 64; i++) { /* inserts and removes move the last buckets */
        itab_step(&t, &r, 4);
    }
    TST_EQ(r.bad_walks, 0);
    TST_EQ(t.count, r.live);
    TST_TRUE(r.resizing > resizing0); /* lookups ran while it was halving */
    TST_TRUE(t.size[0] < peak / 64);
    TST_TRUE(t.size[0] >= 64); /* its initial size */
    printf("# itab: peak %zu buckets, %zu after, %zu live\n", peak, t.size[0], r.live);
    while (r.n < N) {
        itab_step(&t, &r, 7);
    }
    TST_EQ(r.bad_walks, 0);
    TST_TRUE(t.size[0] >= r.live / 2);
    base_itab_fini(&t);
    base_free(r.all);
    base_free(r.want);
}

static void buf_refuses_growth_past_cap(void)
{
    base_buf b;
    base_buf_init(&b, 16);
    TST_OK(base_buf_append(&b, "0123456789", 10));
    TST_EQ(base_buf_append(&b, "0123456789", 10), BASE_ELIMIT);
    TST_EQ(b.len, 10);
    TST_OK(base_buf_append(&b, "012345", 6));
    TST_EQ(b.len, 16);
    TST_TRUE(memcmp(b.data, "0123456789012345", 16) == 0);
    base_buf_fini(&b);
}

/* The writer keeps its first error and writes nothing after it. */
static void writer_remembers_its_first_error(void)
{
    base_buf b;
    base_buf_init(&b, 16);
    base_writer w = {&b, BASE_OK};
    base_writer_printf(&w, "%s=%d;", "ab", 12);
    base_writer_put(&w, "xy", 2);
    TST_OK(w.err);
    TST_EQ(b.len, 8);
    TST_TRUE(memcmp(b.data, "ab=12;xy", 8) == 0);
    base_writer_printf(&w, "%s", "0123456789"); /* past the cap */
    TST_EQ(w.err, BASE_ELIMIT);
    base_writer_put(&w, "z", 1);
    TST_EQ(w.err, BASE_ELIMIT);
    TST_EQ(b.len, 8);
    base_buf_fini(&b);
}

static void queue_is_fifo_bounded_and_closes(void)
{
    base_queue *q = base_queue_new(2);
    int a = 1, b = 2, c = 3;
    TST_OK(base_queue_push(q, &a));
    TST_OK(base_queue_push(q, &b));
    TST_EQ(base_queue_push(q, &c), BASE_ELIMIT);
    void *out[4];
    size_t n = 0;
    TST_OK(base_queue_pop_batch(q, out, 4, 10, &n));
    TST_EQ(n, 2);
    TST_TRUE(out[0] == &a && out[1] == &b);
    TST_EQ(base_queue_pop_batch(q, out, 4, 1, &n), BASE_ETIMEDOUT);
    TST_OK(base_queue_push(q, &c));
    base_queue_close(q);
    TST_EQ(base_queue_push(q, &a), BASE_ECLOSED);
    TST_OK(base_queue_pop_batch(q, out, 4, -1, &n));
    TST_EQ(n, 1);
    TST_EQ(base_queue_pop_batch(q, out, 4, -1, &n), BASE_ECLOSED);
    base_queue_free(q);
}

static void decision_clone_copies_arrays(void)
{
    base_decision *d = base_decision_new(3, 2);
    TST_TRUE(d != NULL);
    base_strlcpy(d->event_id, "ev-1", sizeof(d->event_id));
    d->embedding[2] = 0.5f;
    d->action[1] = 7;
    d->pmf[0] = 0.25f;
    d->pmf[1] = 0.75f;
    d->chosen = 1;
    base_decision *c = base_decision_clone(d);
    TST_TRUE(c != NULL && c->embedding != d->embedding);
    TST_STREQ(c->event_id, "ev-1");
    TST_NEAR(c->embedding[2], 0.5, 0);
    TST_EQ(c->action[1], 7);
    TST_NEAR(c->pmf[1], 0.75, 0);
    TST_EQ(c->chosen, 1);
    base_decision_free(c);
    base_decision_free(d);
    TST_TRUE(base_decision_new(BASE_DIM_MAX + 1, 1) == NULL);
}

static void strlcpy_truncates_and_reports(void)
{
    char s[4];
    TST_TRUE(base_strlcpy(s, "abc", sizeof(s)));
    TST_TRUE(!base_strlcpy(s, "abcd", sizeof(s)));
    TST_STREQ(s, "abc");
}

static void hash_is_deterministic_and_seeded(void)
{
    TST_TRUE(base_hash64("ev-1", 4, 1) == base_hash64("ev-1", 4, 1));
    TST_TRUE(base_hash64("ev-1", 4, 1) != base_hash64("ev-1", 4, 2));
    TST_TRUE(base_hash64("ev-1", 4, 1) != base_hash64("ev-2", 4, 1));
    double u = base_u64_to_unit(UINT64_MAX);
    TST_TRUE(u < 1.0 && u > 0.999);
}

/*
 * Outputs of base_hash64() recorded before it was rebuilt on base_fnv1a64():
 * event ids are sampled and decisions replayed by these values, so they must
 * never change.
 */
static void hash64_keeps_its_recorded_values(void)
{
    TST_TRUE(base_hash64("", 0, 0) == 0xf52a15e9a9b5e89bULL);
    TST_TRUE(base_hash64("", 0, 1) == 0x10401663822dcddfULL);
    TST_TRUE(base_hash64("a", 1, 0) == 0x02c0bdbf481420f8ULL);
    TST_TRUE(base_hash64("a", 1, 0x5eed) == 0x38597ff2fd537830ULL);
    TST_TRUE(base_hash64("foobar", 6, 1) == 0x1832d3c221be8070ULL);
    TST_TRUE(base_hash64("ev-1", 4, 0) == 0xff3cb54c5d876d3cULL);
    TST_TRUE(base_hash64("ev-1", 4, 1) == 0x9881cc4c2544da48ULL);
    TST_TRUE(base_hash64("ev-1", 4, 0x5eed) == 0x3d7646baa60ca75eULL);
}

/* The published FNV-1a test vectors (Fowler, Noll, Vo), and streaming. */
static void fnv1a64_matches_reference_vectors(void)
{
    TST_TRUE(base_fnv1a64(NULL, 0, BASE_FNV_OFFSET) == 0xcbf29ce484222325ULL);
    TST_TRUE(base_fnv1a64("a", 1, BASE_FNV_OFFSET) == 0xaf63dc4c8601ec8cULL);
    TST_TRUE(base_fnv1a64("foobar", 6, BASE_FNV_OFFSET) == 0x85944171f73967e8ULL);
    TST_TRUE(base_fnv1a64("ev-1", 4, BASE_FNV_OFFSET) == 0xd68fca6084eb0c44ULL);
    uint64_t h = base_fnv1a64("foo", 3, BASE_FNV_OFFSET);
    TST_TRUE(base_fnv1a64("bar", 3, h) == 0x85944171f73967e8ULL);
}

static void manual_clock_moves_only_when_told(void)
{
    base_clock c;
    base_clock_init_manual(&c, 1000);
    TST_EQ(base_clock_now_ms(&c), 1000);
    TST_TRUE(base_clock_advance(&c, 86400000));
    TST_EQ(base_clock_now_ms(&c), 86401000);
    /* Past BASE_CLOCK_MAX_MS (and so never past INT64_MAX) it refuses and stays. */
    TST_TRUE(!base_clock_advance(&c, INT64_MAX - 86400000));
    TST_TRUE(!base_clock_advance(&c, BASE_CLOCK_MAX_MS - 86400999));
    TST_EQ(base_clock_now_ms(&c), 86401000);
    TST_TRUE(!base_clock_set(&c, BASE_CLOCK_MAX_MS + 1));
    TST_EQ(base_clock_now_ms(&c), 86401000);
    TST_TRUE(base_clock_advance(&c, BASE_CLOCK_MAX_MS - 86401000));
    TST_EQ(base_clock_now_ms(&c), BASE_CLOCK_MAX_MS);
    TST_TRUE(base_clock_set(&c, 5));
    TST_EQ(base_clock_now_ms(&c), 5);
    base_clock s;
    base_clock_init_system(&s);
    TST_TRUE(base_clock_now_ms(&s) > 1600000000000LL);
}

/*
 * A timed wait on a base_cond_init_mono() condition variable, to a base_mono_deadline(), lasts
 * until that deadline: were the condition variable on the wall clock (pthread's default), a
 * deadline on the monotonic clock (which starts at boot) would lie decades in the past and
 * the wait would end at once.
 */
static void mono_timed_wait_lasts_its_time(void)
{
    pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv;
    TST_EQ(base_cond_init_mono(&cv), 0);
    uint64_t t0 = base_mono_ns();
    struct timespec until = base_mono_deadline(50u * 1000000u);
    int rc = 0;
    pthread_mutex_lock(&lk);
    while (rc == 0) { /* 0: spurious */
        rc = pthread_cond_timedwait(&cv, &lk, &until);
    }
    pthread_mutex_unlock(&lk);
    uint64_t waited = base_mono_ns() - t0;
    printf("# waited %.1f ms for 50\n", (double)waited / 1e6);
    TST_EQ(rc, ETIMEDOUT);
    TST_TRUE(waited >= 50u * 1000000u);
    pthread_cond_destroy(&cv);
}

static void array_alloc_detects_overflow(void)
{
    TST_TRUE(base_alloc_array(SIZE_MAX / 2, 4) == NULL);
}

static void mpcheck_accepts_well_formed(void)
{
    /* {"a":[1,2.5,"xy"],"b":nil} */
    static const uint8_t ok[] = {0x82, 0xa1, 'a', 0x93, 0x01, 0xcb, 0x40, 0x04, 0,   0,
                                 0,    0,    0,   0,    0xa2, 'x',  'y',  0xa1, 'b', 0xc0};
    TST_OK(base_mpcheck(ok, sizeof(ok), 16, 100));
    static const uint8_t empty_map[] = {0x80};
    TST_OK(base_mpcheck(empty_map, 1, 16, 100));
}

static void mpcheck_rejects_counts_past_end(void)
{
    /* array32 claiming 2^32-1 elements in a 5-byte message */
    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    TST_EQ(base_mpcheck(huge_array, sizeof(huge_array), 16, 100), BASE_EPROTO);
    /* bin32 claiming 1 GiB */
    static const uint8_t huge_bin[] = {0xc6, 0x40, 0x00, 0x00, 0x00, 0x01};
    TST_EQ(base_mpcheck(huge_bin, sizeof(huge_bin), 16, 100), BASE_EPROTO);
    /* map16 of 2 pairs with only one pair present */
    static const uint8_t short_map[] = {0xde, 0x00, 0x02, 0xa1, 'a', 0x01};
    TST_EQ(base_mpcheck(short_map, sizeof(short_map), 16, 100), BASE_EPROTO);
    static const uint8_t trailing[] = {0x01, 0x02};
    TST_EQ(base_mpcheck(trailing, sizeof(trailing), 16, 100), BASE_EPROTO);
    static const uint8_t reserved[] = {0xc1};
    TST_EQ(base_mpcheck(reserved, sizeof(reserved), 16, 100), BASE_EPROTO);
    TST_EQ(base_mpcheck(NULL, 0, 16, 100), BASE_EPROTO);
}

static void mpcheck_enforces_depth_and_object_caps(void)
{
    static const uint8_t deep[] = {0x91, 0x91, 0x91, 0x91, 0x01};
    TST_OK(base_mpcheck(deep, sizeof(deep), 4, 100));
    TST_EQ(base_mpcheck(deep, sizeof(deep), 3, 100), BASE_ELIMIT);
    /* An empty array or map one level past the cap is past it too (protocol.md section 1). */
    static const uint8_t deep_empty[] = {0x91, 0x91, 0x91, 0x90};
    static const uint8_t deep_empty_map[] = {0x91, 0x91, 0x91, 0xde, 0x00, 0x00};
    TST_OK(base_mpcheck(deep_empty, sizeof(deep_empty), 4, 100));
    TST_EQ(base_mpcheck(deep_empty, sizeof(deep_empty), 3, 100), BASE_ELIMIT);
    TST_OK(base_mpcheck(deep_empty_map, sizeof(deep_empty_map), 4, 100));
    TST_EQ(base_mpcheck(deep_empty_map, sizeof(deep_empty_map), 3, 100), BASE_ELIMIT);
    static const uint8_t many[] = {0x94, 1, 2, 3, 4};
    TST_OK(base_mpcheck(many, sizeof(many), 4, 5));
    TST_EQ(base_mpcheck(many, sizeof(many), 4, 4), BASE_ELIMIT);
}

/* The byte strings below are written in hex so that the cases read as in RFC 3629's table. */
static void utf8_accepts_every_sequence_length(void)
{
    TST_TRUE(base_utf8_valid("", 0));
    TST_TRUE(base_utf8_valid(NULL, 0));
    TST_TRUE(base_utf8_valid("ascii", 5));
    TST_TRUE(base_utf8_valid("\x00", 1));             /* NUL is UTF-8; the wire refuses it */
    TST_TRUE(base_utf8_valid("\xc2\x80", 2));         /* U+0080, smallest 2-byte */
    TST_TRUE(base_utf8_valid("\xdf\xbf", 2));         /* U+07FF */
    TST_TRUE(base_utf8_valid("\xe2\x82\xac", 3));     /* U+20AC euro sign */
    TST_TRUE(base_utf8_valid("\xed\x9f\xbf", 3));     /* U+D7FF, just below the surrogates */
    TST_TRUE(base_utf8_valid("\xee\x80\x80", 3));     /* U+E000, just above them */
    TST_TRUE(base_utf8_valid("\xef\xbf\xbf", 3));     /* U+FFFF */
    TST_TRUE(base_utf8_valid("\xf0\x9f\x98\x80", 4)); /* U+1F600, a 4-byte emoji */
    TST_TRUE(base_utf8_valid("\xf4\x8f\xbf\xbf", 4)); /* U+10FFFF, the last code point */
    TST_EQ(base_utf8_char_len("\xf0\x9f\x98\x80", 4), 4);
    TST_EQ(base_utf8_char_len("\xe2\x82\xac", 3), 3);
    TST_EQ(base_utf8_char_len("a", 1), 1);
    TST_EQ(base_utf8_char_len("a", 0), 0);
}

static void utf8_rejects_overlong_surrogate_and_out_of_range(void)
{
    TST_TRUE(!base_utf8_valid("\xc0\x80", 2));             /* overlong U+0000 */
    TST_TRUE(!base_utf8_valid("\xc1\xbf", 2));             /* overlong U+007F */
    TST_TRUE(!base_utf8_valid("\xe0\x80\xaf", 3));         /* overlong '/' */
    TST_TRUE(!base_utf8_valid("\xe0\x9f\xbf", 3));         /* overlong U+07FF */
    TST_TRUE(!base_utf8_valid("\xf0\x8f\xbf\xbf", 4));     /* overlong U+FFFF */
    TST_TRUE(!base_utf8_valid("\xed\xa0\x80", 3));         /* U+D800, a surrogate */
    TST_TRUE(!base_utf8_valid("\xed\xbf\xbf", 3));         /* U+DFFF */
    TST_TRUE(!base_utf8_valid("\xf4\x90\x80\x80", 4));     /* U+110000 */
    TST_TRUE(!base_utf8_valid("\xf5\x80\x80\x80", 4));     /* f5 can only start > U+10FFFF */
    TST_TRUE(!base_utf8_valid("\xf8\x88\x80\x80\x80", 5)); /* the old 5-byte form */
    TST_TRUE(!base_utf8_valid("\xff", 1));
    TST_TRUE(!base_utf8_valid("\x80", 1));          /* a lone continuation byte */
    TST_TRUE(!base_utf8_valid("a\xe2\x28\xa1", 4)); /* a non-continuation inside */
    TST_EQ(base_utf8_char_len("\xed\xa0\x80", 3), 0);
}

static void utf8_rejects_truncated_sequences(void)
{
    TST_TRUE(!base_utf8_valid("\xc3", 1));
    TST_TRUE(!base_utf8_valid("\xe2\x82", 2));
    TST_TRUE(!base_utf8_valid("\xf0\x9f\x98", 3));
    TST_TRUE(!base_utf8_valid("ab\xe2\x82", 4)); /* truncated at the end */
    TST_TRUE(!base_utf8_valid("\xe2\x82"
                              "ab",
                              4));                    /* truncated in the middle */
    TST_EQ(base_utf8_char_len("\xe2\x82\xac", 2), 0); /* needs 3, only 2 available */
}

static void utf8_cut_keeps_whole_characters(void)
{
    /* "a" then three euro signs: boundaries at 1, 4, 7 and 10. */
    static const char s[] = "a\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";
    static const size_t want[11] = {0, 1, 1, 1, 4, 4, 4, 7, 7, 7, 10};
    for (size_t n = 0; n <= 10; n++) {
        TST_EQ(base_utf8_cut(s, n), want[n]);
    }
    TST_EQ(base_utf8_cut("\xf0\x9f\x98\x80z", 3), 0); /* a 4-byte character cut at 3 */
    TST_EQ(base_utf8_cut("\xf0\x9f\x98\x80z", 4), 4);
    TST_EQ(base_utf8_cut("ok\xc0\x80", 4), 2); /* stops at an invalid sequence */
    TST_EQ(base_utf8_cut(NULL, 0), 0);
}

static void hset_keeps_values_through_growth(void)
{
    base_hset s;
    base_hset_init(&s, 5000);
    uint32_t v = 0;
    TST_TRUE(!base_hset_get(&s, 42, &v)); /* empty */
    TST_EQ(base_hset_put(&s, 0, 1), BASE_EINVAL);
    int ok = 0;
    for (uint64_t k = 1; k <= 5000; k++) {
        ok += base_hset_put(&s, k * 0x9e3779b97f4a7c15ULL, (uint32_t)k) == BASE_OK;
    }
    TST_EQ(ok, 5000);
    TST_EQ(s.n, 5000);
    TST_TRUE(2 * s.n <= s.cap); /* grown at half load */
    int found = 0;
    for (uint64_t k = 1; k <= 5000; k++) {
        found += base_hset_get(&s, k * 0x9e3779b97f4a7c15ULL, &v) && v == (uint32_t)k;
    }
    TST_EQ(found, 5000);
    TST_TRUE(!base_hset_get(&s, 5001 * 0x9e3779b97f4a7c15ULL, NULL));
    /* A new key past max_n is refused; an existing one still takes a new value. */
    TST_EQ(base_hset_put(&s, 7, 1), BASE_ELIMIT);
    TST_OK(base_hset_put(&s, 0x9e3779b97f4a7c15ULL, 99));
    TST_TRUE(base_hset_get(&s, 0x9e3779b97f4a7c15ULL, &v) && v == 99);
    TST_EQ(s.n, 5000);
    base_hset_fini(&s);
    base_hset_fini(&s); /* twice is harmless */
}

typedef struct heap_item {
    uint32_t key;
    uint32_t seq;
    size_t *pos; /* where the heap says it is */
} heap_item;

static bool item_before(const void *a, const void *b)
{
    const heap_item *x = a, *y = b;
    return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static void item_placed(void *elem, size_t i)
{
    *((heap_item *)elem)->pos = i;
}

/* Every parent is not after its children, and each item knows its index. */
static bool heap_ok(const base_heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        const heap_item *it = base_heap_at(h, i);
        if (*it->pos != i || (i > 0 && item_before(it, base_heap_at(h, (i - 1) / 2)))) {
            return false;
        }
    }
    return true;
}

static void heap_orders_removes_and_fixes(void)
{
    enum { N = 1000 };
    static size_t pos[N];
    base_heap h;
    base_heap_init(&h, sizeof(heap_item), N, item_before, item_placed);
    uint64_t st = 7;
    int pushed = 0;
    for (uint32_t i = 0; i < N; i++) {
        heap_item it = {.key = (uint32_t)(base_splitmix64(&st) % 100), .seq = i, .pos = &pos[i]};
        pushed += base_heap_push(&h, &it) == BASE_OK;
    }
    TST_EQ(pushed, N);
    heap_item extra = {.pos = &pos[0]};
    TST_EQ(base_heap_push(&h, &extra), BASE_ELIMIT); /* max_n */
    TST_EQ(h.n, N);
    TST_TRUE(heap_ok(&h));
    /* Remove every third item by its recorded index; change every seventh key. */
    heap_item out;
    int removed_right = 0;
    for (uint32_t i = 0; i < N; i += 3) {
        base_heap_remove(&h, pos[i], &out);
        removed_right += out.seq == i;
        pos[i] = SIZE_MAX;
    }
    TST_EQ(removed_right, (N + 2) / 3);
    for (uint32_t i = 1; i < N; i += 7) {
        if (pos[i] != SIZE_MAX) {
            heap_item *it = base_heap_at(&h, pos[i]);
            it->key = (uint32_t)(base_splitmix64(&st) % 100);
            base_heap_fix(&h, pos[i]);
        }
    }
    TST_TRUE(heap_ok(&h));
    /* Pops come out in (key, seq) order. */
    heap_item prev = {0};
    int in_order = 0;
    size_t n = h.n;
    for (size_t k = 0; k < n; k++) {
        base_heap_pop(&h, &out);
        in_order += k == 0 || !item_before(&out, &prev);
        prev = out;
    }
    TST_EQ(in_order, (int)n);
    TST_EQ(h.n, 0);
    base_heap_fini(&h);
    base_heap_fini(&h); /* twice is harmless */
}

/* A producer thread: after 20 ms, pushes its items, lazily or not. */
typedef struct pusher {
    base_queue *q;
    void **items;
    size_t n;
    bool lazy_last; /* the last one too; false: the last one is urgent */
    bool close;     /* then close the queue */
} pusher;

static void *pusher_main(void *arg)
{
    pusher *ps = arg;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    for (size_t i = 0; i < ps->n; i++) {
        bool lazy = i + 1 < ps->n || ps->lazy_last;
        (void)(lazy ? base_queue_push_lazy(ps->q, ps->items[i])
                    : base_queue_push(ps->q, ps->items[i]));
    }
    if (ps->close) {
        base_queue_close(ps->q);
    }
    return NULL;
}

/*
 * One lazy item queued, @ps pushing from another thread: pop with a 30 s linger and
 * return how many items came; the linger must have ended well before (10 s).
 */
static size_t linger_with(base_queue *q, pusher *ps, void *first, void **out, size_t max)
{
    pthread_t th;
    size_t n = 0;
    TST_OK(base_queue_push_lazy(q, first));
    TST_EQ(pthread_create(&th, NULL, pusher_main, ps), 0);
    uint64_t t0 = base_mono_ns();
    TST_OK(base_queue_pop_linger(q, out, max, 100, 30000000, &n));
    TST_TRUE(base_mono_ns() - t0 < 10000000000u);
    pthread_join(th, NULL);
    return n;
}

/*
 * Group commit (base_queue_pop_linger): lazy items wait out the linger for
 * company; an urgent item, a full batch or a close ends the wait. The waits
 * that must end early linger 30 s and are checked against 10 s: the bound
 * holds on any machine, and a broken wake-up fails it.
 */
static void queue_linger_waits_for_lazy_items_only(void)
{
    int v[4] = {0, 1, 2, 3};
    void *out[8];
    size_t n = 0;
    base_queue *q = base_queue_new(16);

    /* Lazy items alone: the whole linger passes, then all of them come at once. */
    TST_OK(base_queue_push_lazy(q, &v[0]));
    TST_OK(base_queue_push_lazy(q, &v[1]));
    uint64_t t0 = base_mono_ns();
    TST_OK(base_queue_pop_linger(q, out, 8, 100, 50000, &n));
    TST_TRUE(base_mono_ns() - t0 >= 50000000u);
    TST_EQ(n, 2);
    TST_TRUE(out[0] == &v[0] && out[1] == &v[1]);

    /* An urgent item already queued: no linger. */
    TST_OK(base_queue_push_lazy(q, &v[0]));
    TST_OK(base_queue_push(q, &v[1]));
    t0 = base_mono_ns();
    TST_OK(base_queue_pop_linger(q, out, 8, 100, 30000000, &n));
    TST_TRUE(base_mono_ns() - t0 < 10000000000u);
    TST_EQ(n, 2);

    /* Lingering: lazy pushes do not end it, an urgent one does. */
    void *items[3] = {&v[1], &v[2], &v[3]};
    pusher ps = {q, items, 3, false, false};
    TST_EQ(linger_with(q, &ps, &v[0], out, 8), 4);
    TST_TRUE(out[0] == &v[0] && out[3] == &v[3]);

    /* A batch filled by lazy pushes ends it. */
    ps = (pusher){q, items, 3, true, false};
    TST_EQ(linger_with(q, &ps, &v[0], out, 4), 4);

    /* So does a close; what is queued still comes out. */
    ps = (pusher){q, items, 1, true, true};
    TST_EQ(linger_with(q, &ps, &v[0], out, 8), 2);
    TST_EQ(base_queue_pop_linger(q, out, 8, 100, 30000000, &n), BASE_ECLOSED);
    base_queue_free(q);

    /* A small queue: half its capacity (2 of 4) ends the wait, before producers find it full. */
    q = base_queue_new(4);
    ps = (pusher){q, items, 1, true, false};
    TST_EQ(linger_with(q, &ps, &v[0], out, 8), 2);
    base_queue_free(q);
}

/* A consumer that waits (20 s at most) with a linger of 1 s, for linger_lost_to_another(). */
typedef struct lingerer {
    base_queue *q;
    void *out[4];
    size_t n;
    base_err e;
} lingerer;

static void *lingerer_main(void *arg)
{
    lingerer *l = arg;
    l->e = base_queue_pop_linger(l->q, l->out, 4, 20000, 1000000, &l->n);
    return NULL;
}

/*
 * Two consumers: one lingers on a lazy item, the other takes it. The first then waits on,
 * as its timeout asks, and gets the item pushed after its linger ended (it used to come back
 * empty-handed, ETIMEDOUT, at the end of the linger).
 */
static void linger_lost_to_another(void)
{
    int v[2] = {0, 1};
    void *out[4];
    size_t n = 0;
    base_queue *q = base_queue_new(16);
    lingerer l = {.q = q};
    pthread_t th;
    TST_OK(base_queue_push_lazy(q, &v[0]));
    TST_EQ(pthread_create(&th, NULL, lingerer_main, &l), 0);
    /* Into its linger (not a readiness wait: only a stall near 1 s could miss it). */
    struct timespec ts = {0, 30 * 1000000L};
    nanosleep(&ts, NULL);
    TST_OK(base_queue_pop_batch(q, out, 4, 0, &n));
    TST_EQ(n, 1);
    ts = (struct timespec){1, 200 * 1000000L}; /* past its linger, within its timeout */
    nanosleep(&ts, NULL);
    TST_OK(base_queue_push(q, &v[1]));
    pthread_join(th, NULL);
    TST_OK(l.e);
    TST_TRUE(l.n == 1 && l.out[0] == &v[1]);
    base_queue_free(q);
}

int main(void)
{
    heap_orders_removes_and_fixes();
    hset_keeps_values_through_growth();
    itab_walks_newest_first_through_growth();
    itab_shrinks_after_a_peak();
    utf8_accepts_every_sequence_length();
    utf8_rejects_overlong_surrogate_and_out_of_range();
    utf8_rejects_truncated_sequences();
    utf8_cut_keeps_whole_characters();
    mpcheck_accepts_well_formed();
    mpcheck_rejects_counts_past_end();
    mpcheck_enforces_depth_and_object_caps();
    buf_refuses_growth_past_cap();
    writer_remembers_its_first_error();
    queue_is_fifo_bounded_and_closes();
    queue_linger_waits_for_lazy_items_only();
    linger_lost_to_another();
    decision_clone_copies_arrays();
    strlcpy_truncates_and_reports();
    hash_is_deterministic_and_seeded();
    hash64_keeps_its_recorded_values();
    fnv1a64_matches_reference_vectors();
    manual_clock_moves_only_when_told();
    mono_timed_wait_lasts_its_time();
    array_alloc_detects_overflow();
    return tst_done();
}
