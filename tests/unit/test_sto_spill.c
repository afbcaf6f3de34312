/*
 * storage/spill: the file format, without Redis. Files are written in a
 * temporary directory that the test removes.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/record.h"
#include "proc.h"
#include "storage/codec.h"
#include "storage/spill.h"
#include "tap.h"

static base_decision *decision(const char *event)
{
    base_decision *d = base_decision_new(3, 2);
    if (d != NULL) {
        snprintf(d->policy, sizeof(d->policy), "p");
        snprintf(d->event_id, sizeof(d->event_id), "%s", event);
        d->ts_ms = 1700000000000;
        d->lsn = 7;
        d->chosen = 1;
        for (int i = 0; i < 3; i++) {
            d->embedding[i] = 0.25f * (float)i;
        }
        d->action[0] = 1;
        d->action[1] = 2;
        d->pmf[0] = 0.5f;
        d->pmf[1] = 0.5f;
    }
    return d;
}

static void outcome(base_outcome *o, int i)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->policy, sizeof(o->policy), "p");
    snprintf(o->event_id, sizeof(o->event_id), "ev-%d", i);
    snprintf(o->outcome_id, sizeof(o->outcome_id), "o-%d", i);
    snprintf(o->signal, sizeof(o->signal), "resolved");
    o->value = 1.0;
    o->lsn = (uint64_t)i;
}

/* Names in @dir starting with "rlfeed-spill-": how many, and the first one. */
static int list(const char *dir, char *first, size_t size)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *ent;
    first[0] = '\0';
    while (d != NULL && (ent = readdir(d)) != NULL) {
        if (strncmp(ent->d_name, "rlfeed-spill-", 13) == 0) {
            if (n++ == 0) {
                snprintf(first, size, "%s/%s", dir, ent->d_name);
            }
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static uint8_t *slurp(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n = -1;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0) {
        n = ftell(f);
    }
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    *out_len = buf != NULL ? (size_t)n : 0;
    return buf;
}

/* A file of three records, one of each kind, read back whole. */
static void write_commit_and_decode_round_trip(const char *dir)
{
    char path[1024] = "", first[1024];
    char err[256] = "";
    sto_spill *w = NULL;
    base_outcome o;
    base_decision *d = decision("ev-1");
    base_joined *j = base_joined_new(decision("ev-0"));
    outcome(&o, 1);
    j->reward = 0.5;
    TST_OK(sto_spill_create(dir, &w, err, sizeof(err)));
    if (w == NULL) {
        printf("# %s\n", err);
        return;
    }
    TST_OK(sto_spill_add(w, STO_DECISIONS, "p", "1700000000000-0", d));
    TST_OK(sto_spill_add(w, STO_OUTCOMES, "p", "1700000000000-1", &o));
    TST_OK(sto_spill_add(w, STO_JOINED, "p", "1700000000001-0", j));
    /* Refusals of one record leave the file usable. */
    TST_EQ(sto_spill_add(w, STO_OUTCOMES, "p", "1700000000000", &o), BASE_EINVAL);
    TST_EQ(sto_spill_add(w, STO_OUTCOMES, "p{x}", "1-0", &o), BASE_EINVAL);
    TST_EQ(sto_spill_add(w, STO_OUTCOMES, "", "1-0", &o), BASE_EINVAL);
    TST_EQ(sto_spill_add(w, (sto_kind)3, "p", "1-0", &o), BASE_EINVAL);
    TST_EQ(list(dir, first, sizeof(first)), 1); /* only the .tmp so far */
    TST_TRUE(strstr(first, ".bin.tmp") != NULL);
    TST_OK(sto_spill_commit(w, path, sizeof(path), err, sizeof(err)));
    TST_TRUE(strstr(path, "/rlfeed-spill-") != NULL && strstr(path, ".bin") != NULL);
    TST_EQ(list(dir, first, sizeof(first)), 1); /* the .tmp is gone */
    TST_STREQ(first, path);
    struct stat st;
    TST_TRUE(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);

    size_t len = 0;
    uint8_t *buf = slurp(path, &len);
    sto_spill_rec *r = NULL;
    size_t n = 0;
    TST_OK(sto_spill_decode(buf, len, &r, &n));
    TST_EQ(n, 3);
    if (n == 3) {
        TST_TRUE(r[0].kind == STO_DECISIONS && r[1].kind == STO_OUTCOMES &&
                 r[2].kind == STO_JOINED);
        TST_STREQ(r[0].id, "1700000000000-0");
        TST_STREQ(r[1].id, "1700000000000-1");
        TST_STREQ(r[2].id, "1700000000001-0");
        TST_STREQ(r[1].policy, "p");
        TST_STREQ(((const base_decision *)r[0].rec)->event_id, "ev-1");
        TST_STREQ(((const base_outcome *)r[1].rec)->outcome_id, "o-1");
        TST_TRUE(((const base_joined *)r[2].rec)->reward == 0.5);
    }
    sto_spill_recs_free(r, n);

    /* Every proper prefix, and every single flipped bit, is refused. */
    int prefixes_ok = 0, flips_ok = 0, flips = 0;
    for (size_t k = 0; k < len; k++) {
        sto_spill_rec *x = NULL;
        size_t xn = 0;
        base_err e = sto_spill_decode(buf, k, &x, &xn);
        prefixes_ok += e == BASE_EPROTO;
        sto_spill_recs_free(x, xn);
    }
    for (size_t k = 0; k < len; k++) {
        for (int bit = 0; bit < 8; bit += 3) {
            sto_spill_rec *x = NULL;
            size_t xn = 0;
            buf[k] ^= (uint8_t)(1u << bit);
            base_err e = sto_spill_decode(buf, len, &x, &xn);
            buf[k] ^= (uint8_t)(1u << bit);
            flips++;
            flips_ok += e == BASE_EPROTO;
            sto_spill_recs_free(x, xn);
        }
    }
    TST_EQ(prefixes_ok, (long long)len);
    TST_EQ(flips_ok, flips);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    sto_spill_rec *x = NULL;
    size_t xn = 0;
    TST_EQ(sto_spill_decode(longer, len + 1, &x, &xn), BASE_EPROTO); /* trailing byte */
    free(longer);
    free(buf);
    unlink(path);
    base_decision_free(d);
    base_joined_free(j);
}

/* Two files started in the same millisecond get distinct names; none is replaced. */
static void names_never_collide_and_abort_leaves_nothing(const char *dir)
{
    char p1[1024] = "", p2[1024] = "", first[1024];
    char err[256] = "";
    sto_spill *a = NULL, *b = NULL, *c = NULL;
    base_outcome o;
    outcome(&o, 2);
    TST_OK(sto_spill_create(dir, &a, err, sizeof(err)));
    TST_OK(sto_spill_create(dir, &b, err, sizeof(err)));
    TST_OK(sto_spill_create(dir, &c, err, sizeof(err)));
    if (a == NULL || b == NULL || c == NULL) {
        sto_spill_abort(a);
        sto_spill_abort(b);
        sto_spill_abort(c);
        return;
    }
    TST_OK(sto_spill_add(a, STO_OUTCOMES, "p", "5-0", &o));
    TST_OK(sto_spill_commit(a, p1, sizeof(p1), err, sizeof(err)));
    TST_OK(sto_spill_commit(b, p2, sizeof(p2), err, sizeof(err)));
    sto_spill_abort(c);
    TST_TRUE(strcmp(p1, p2) != 0);
    TST_EQ(list(dir, first, sizeof(first)), 2);
    size_t len = 0;
    uint8_t *buf = slurp(p2, &len);
    sto_spill_rec *r = NULL;
    size_t n = 7;
    TST_OK(sto_spill_decode(buf, len, &r, &n)); /* an empty spill file is valid */
    TST_EQ(n, 0);
    free(buf);
    unlink(p1);
    unlink(p2);
    TST_EQ(list(dir, first, sizeof(first)), 0);
}

static void create_fails_cleanly_without_a_directory(const char *dir)
{
    char missing[1024], err[256] = "";
    sto_spill *w = NULL;
    snprintf(missing, sizeof(missing), "%s/no/such/dir", dir);
    TST_EQ(sto_spill_create(missing, &w, err, sizeof(err)), BASE_EIO);
    TST_TRUE(w == NULL && strstr(err, "no/such/dir") != NULL);
}

int main(void)
{
    char *dir = tst_mkdtemp("rlfeed-spill-unit");
    if (dir == NULL) {
        TST_TRUE(0 && "mkdtemp");
        return tst_done();
    }
    write_commit_and_decode_round_trip(dir);
    names_never_collide_and_abort_leaves_nothing(dir);
    create_fails_cleanly_without_a_directory(dir);
    tst_rm_rf(dir);
    free(dir);
    return tst_done();
}
