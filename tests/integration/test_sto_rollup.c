/*
 * storage/rollup against a private redis-server on a unix socket: appends
 * keep the stream at its bound, reads return the newest entries oldest
 * first (across read batches), and fields are matched by name.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "storage/rollup.h"
#include "storage/server.h"
#include "storage/store.h"
#include "tap.h"

#define TIMEOUT_MS 5000

static const char *const NAMES[] = {"t_ms", "count", "mean"};

/* 15 appends with keep 10: 10 entries, the newest, oldest first; NaN survives. */
static void append_trims_to_keep(sto_store *s)
{
    for (int i = 0; i < 15; i++) {
        double v[3] = {1767225600000.0 + 60000.0 * i, (double)i, i % 2 == 0 ? 0.25 * i : NAN};
        TST_OK(sto_rollup_append(s, "ru", 10, NAMES, v, 3));
    }
    uint64_t len = 0;
    TST_OK(sto_rollup_len(s, "ru", &len));
    TST_EQ(len, 10);
    double out[20 * 3];
    size_t n = 0;
    TST_OK(sto_rollup_read(s, "ru", NAMES, 3, 20, out, &n));
    TST_EQ(n, 10);
    bool ok = n == 10;
    for (size_t j = 0; ok && j < n; j++) {
        int i = (int)j + 5;
        ok = out[j * 3] == 1767225600000.0 + 60000.0 * i && out[j * 3 + 1] == (double)i &&
             (i % 2 == 0 ? out[j * 3 + 2] == 0.25 * i : isnan(out[j * 3 + 2]));
    }
    TST_TRUE(ok);
    /* The newest 3 only. */
    TST_OK(sto_rollup_read(s, "ru", NAMES, 3, 3, out, &n));
    TST_EQ(n, 3);
    TST_EQ(out[0 * 3 + 1], 12);
    TST_EQ(out[2 * 3 + 1], 14);
}

/* Fields are found by name, in any order; one the entry lacks reads NaN. */
static void fields_by_name(sto_store *s)
{
    const char *const asked[] = {"mean", "absent", "t_ms"};
    double out[3];
    size_t n = 0;
    TST_OK(sto_rollup_read(s, "ru", asked, 3, 1, out, &n));
    TST_EQ(n, 1);
    TST_TRUE(out[0] == 0.25 * 14 && isnan(out[1]) && out[2] == 1767225600000.0 + 60000.0 * 14);
    TST_OK(sto_rollup_read(s, "none-here", asked, 3, 5, out, &n));
    TST_EQ(n, 0);
}

/* 2500 entries read back across three XREVRANGE batches, in order. */
static void reads_across_batches(sto_store *s)
{
    for (int i = 0; i < 2500; i++) {
        double v[3] = {(double)i, (double)(2 * i), 0.0};
        if (sto_rollup_append(s, "big", 2400, NAMES, v, 3) != BASE_OK) {
            TST_TRUE(false);
            return;
        }
    }
    double *out = base_alloc_array(2500 * 3, sizeof(double));
    size_t n = 0;
    TST_TRUE(out != NULL);
    if (out == NULL) {
        return;
    }
    TST_OK(sto_rollup_read(s, "big", NAMES, 3, 2500, out, &n));
    TST_EQ(n, 2400);
    bool ok = true;
    for (size_t j = 0; j < n && ok; j++) {
        ok = out[j * 3] == (double)(j + 100) && out[j * 3 + 1] == (double)(2 * (j + 100));
    }
    TST_TRUE(ok);
    base_free(out);
}

static void bad_arguments(sto_store *s)
{
    double v[1] = {1.0};
    const char *const bad_name[] = {""};
    TST_TRUE(sto_rollup_append(s, "ru", 0, NAMES, v, 1) == BASE_EINVAL);
    TST_TRUE(sto_rollup_append(s, "ru", 10, NAMES, v, 0) == BASE_EINVAL);
    TST_TRUE(sto_rollup_append(s, "ru", 10, bad_name, v, 1) == BASE_EINVAL);
    TST_TRUE(sto_rollup_append(s, "a{b", 10, NAMES, v, 1) == BASE_EINVAL);
}

int main(void)
{
    sto_server_opts opts = {NULL, NULL, "everysec", true, 10000, false};
    sto_server *srv = NULL;
    sto_store *s = NULL;
    char err[512] = "";

    if (system("command -v redis-server > /dev/null 2>&1") != 0) {
        tst_skip_all("redis-server not found on PATH");
    }
    base_err e = sto_server_start(&opts, &srv, err, sizeof(err));
    TST_OK(e);
    if (e == BASE_OK) {
        e = sto_store_open(sto_server_url(srv), TIMEOUT_MS, &s, err, sizeof(err));
        TST_OK(e);
    }
    if (e != BASE_OK) {
        printf("# %s\n", err);
    } else {
        append_trims_to_keep(s);
        fields_by_name(s);
        reads_across_batches(s);
        bad_arguments(s);
    }
    sto_store_close(s);
    sto_server_stop(srv);
    return tst_done();
}
