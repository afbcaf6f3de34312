/*
 * Policies managed at run time (docs/operations.md, "Policies at run time"): while a
 * traffic thread keeps deciding and posting feedback, `rlfeed policy` creates a policy (an
 * open action set), changes another one twice (a change the head follows: epsilon; one it
 * cannot: the dimension, a new head version), and retires the first; rlfeedd picks each up
 * without a restart and no request of the traffic fails. A restart then serves what the
 * catalog says, with the same model version and checksum; the audit trail names each change
 * with its diff.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/hash.h"
#include "client/rlfeed_client.h"
#include "daemon.h"
#include "http.h"
#include "proc.h"
#include "proto/json.h"
#include "proto/request.h"
#include "storage/store.h"
#include "tap.h"

static const char CONFIG[] =
    "[server]\ntick_ms = 5\nregistry_poll_ms = 100\nrollup_period_ms = 100\n"
    "[policy base]\ndim = 4\nactions = a, b, c\nepsilon = 0.3\n"
    "signal.resolved = 1\nwindow_ms = 200\n";

typedef struct traffic {
    const char *url;
    atomic_bool stop;
    atomic_bool base_on;    /* send to base */
    atomic_uint base_dim;   /* its embedding length */
    atomic_bool answers_on; /* send to answers */
    atomic_int failures;
    atomic_int sent;
    char last_error[256];
} traffic;

static bool decide(rlfeed_client *c, base_buf *b, const char *policy, uint32_t dim,
                   const float *features, uint32_t action_dim, uint64_t *rng, rlfeed_reply *r)
{
    float x[8];
    const char *ids[3] = {"a", "b", "c"};
    float bl[3] = {0.5f, 0.0f, -0.5f};
    for (uint32_t j = 0; j < dim; j++) {
        x[j] = (float)(base_u64_to_unit(base_splitmix64(rng)) - 0.5);
    }
    proto_decide_req q = {.policy = policy,
                          .embedding = x,
                          .dim = dim,
                          .n_cand = 3,
                          .cand_ids = ids,
                          .base_logits = bl,
                          .features = features,
                          .action_dim = action_dim};
    uint8_t *rep = NULL;
    size_t len = 0;
    base_buf_reset(b);
    bool ok = proto_encode_decide(b, &q) == BASE_OK &&
              rlfeed_client_call(c, b->data, b->len, &rep, &len) == BASE_OK &&
              rlfeed_reply_decode(rep, len, r) == BASE_OK;
    base_free(rep);
    return ok;
}

static void *traffic_main(void *arg)
{
    traffic *t = arg;
    rlfeed_client *c = NULL;
    base_buf b;
    base_buf_init(&b, 1u << 16);
    uint64_t rng = 3;
    const float feat[3 * 2] = {1, 0, 0, 1, 1, 1};
    if (rlfeed_client_open(t->url, 5000, &c) != BASE_OK) {
        atomic_fetch_add(&t->failures, 1);
        return NULL;
    }
    while (!atomic_load(&t->stop)) {
        rlfeed_reply r;
        bool any = false;
        if (atomic_load(&t->base_on)) {
            any = true;
            bool ok = decide(c, &b, "base", atomic_load(&t->base_dim), NULL, 0, &rng, &r);
            if (ok && r.ok && base_splitmix64(&rng) % 2 == 0) {
                char fb[160];
                snprintf(fb, sizeof(fb),
                         "{\"v\":1,\"op\":\"feedback\",\"policy\":\"base\",\"event_id\":\"%s\","
                         "\"signal\":\"resolved\"}",
                         r.event_id);
                base_buf_reset(&b);
                uint8_t *rep = NULL;
                size_t len = 0;
                char why[64];
                ok = proto_json_to_msgpack(fb, &b, why, sizeof(why)) == BASE_OK &&
                     rlfeed_client_call(c, b.data, b.len, &rep, &len) == BASE_OK &&
                     rlfeed_reply_decode(rep, len, &r) == BASE_OK;
                base_free(rep);
            }
            if (!ok || !r.ok) {
                atomic_fetch_add(&t->failures, 1);
                snprintf(t->last_error, sizeof(t->last_error), "base: %s",
                         ok ? r.error.message : "transport");
            }
            atomic_fetch_add(&t->sent, 1);
        }
        if (atomic_load(&t->answers_on)) {
            any = true;
            bool ok = decide(c, &b, "answers", 4, feat, 2, &rng, &r);
            if (!ok || !r.ok) {
                atomic_fetch_add(&t->failures, 1);
                snprintf(t->last_error, sizeof(t->last_error), "answers: %s",
                         ok ? r.error.message : "transport");
            }
            atomic_fetch_add(&t->sent, 1);
        }
        if (!any) {
            tst_nap();
        }
    }
    rlfeed_client_close(c);
    base_buf_fini(&b);
    return NULL;
}

/* Run one Redis command on the unix socket @sock; true unless it failed or answered an error. */
static bool redis_ok(const char *sock, const char *cmd)
{
    redisContext *c = redisConnectUnix(sock);
    redisReply *r = c != NULL && !c->err ? redisCommand(c, cmd) : NULL;
    bool ok = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (r != NULL) {
        freeReplyObject(r);
    }
    if (c != NULL) {
        redisFree(c);
    }
    return ok;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (fp != NULL) {
        fputs(text, fp);
        fclose(fp);
    }
}

/* Poll until a decide to @policy answers ok (want_ok) or with @code; the time it took. */
static int64_t wait_for(tst_daemon *f, const char *policy, uint32_t dim, const float *feat,
                        uint32_t ad, bool want_ok, proto_errcode code)
{
    base_buf b;
    base_buf_init(&b, 1u << 16);
    uint64_t rng = 9;
    int64_t t0 = tst_now_ms(), deadline = t0 + 10000;
    int64_t took = -1;
    while (tst_now_ms() < deadline) {
        rlfeed_reply r;
        if (decide(f->c, &b, policy, dim, feat, ad, &rng, &r) &&
            (want_ok ? r.ok : !r.ok && r.error.code == code)) {
            took = tst_now_ms() - t0;
            break;
        }
        tst_nap();
    }
    base_buf_fini(&b);
    return took;
}

static void stat_pair(tst_daemon *f, const char *policy, long long *version, char *sum, size_t n)
{
    json_t *s = tst_stats(f);
    *version = tst_stat_int(s, policy, "model_version");
    snprintf(sum, n, "%s", tst_stat_str(s, policy, "model_checksum"));
    json_decref(s);
}

int main(void)
{
    tst_daemon f;
    if (!tst_daemon_init(&f, "rlfeed-catalog", CONFIG)) {
        printf("Bail out! fixture\n");
        tst_daemon_fini(&f, false);
        return 1;
    }
    bool up = tst_daemon_start(&f, true, NULL);
    TST_TRUE(up);
    traffic t;
    memset(&t, 0, sizeof(t));
    t.url = f.url;
    atomic_store(&t.base_on, true);
    atomic_store(&t.base_dim, 4);
    pthread_t th;
    bool running = up && pthread_create(&th, NULL, traffic_main, &t) == 0;
    TST_TRUE(running);
    char path[700], base_path[700];
    const float feat[3 * 2] = {1.0f, 0.5f, 0.0f, 1.0f, 0.5f, 0.5f};

    /* 1. Create an open action set. */
    snprintf(path, sizeof(path), "%s/answers.ini", f.dir);
    write_file(path, "[policy answers]\ndim = 4\nactions = open\naction_dim = 2\n"
                     "signal.resolved = 1\nwindow_ms = 200\n");
    const char *put_answers[] = {"policy", "put", "--file", path, NULL};
    TST_EQ(tst_daemon_cli(&f, "ops@test", put_answers), 0);
    int64_t took = wait_for(&f, "answers", 4, feat, 2, true, PROTO_E_NONE);
    printf("# created: served after %lld ms\n", (long long)took);
    TST_TRUE(took >= 0 && took < 5000);
    atomic_store(&t.answers_on, true);

    /* 2. A change the head follows: epsilon 0.3 -> 0. */
    int64_t until = tst_now_ms() + 300;
    while (tst_now_ms() < until) {
        tst_nap(); /* let base learn a little first */
    }
    long long v0 = 0, v1 = 0;
    char sum0[32], sum1[32];
    stat_pair(&f, "base", &v0, sum0, sizeof(sum0));
    snprintf(base_path, sizeof(base_path), "%s/base.ini", f.dir);
    write_file(base_path, "[policy base]\ndim = 4\nactions = a, b, c\nepsilon = 0\n"
                          "signal.resolved = 1\nwindow_ms = 200\n");
    const char *put_base[] = {"policy", "put", "--file", base_path, NULL};
    TST_EQ(tst_daemon_cli(&f, "ops@test", put_base), 0);
    /* Picked up once a decide is served with probability 1 (greedy, no exploration). */
    base_buf b;
    base_buf_init(&b, 1u << 16);
    uint64_t rng = 11;
    int64_t t0 = tst_now_ms();
    took = -1;
    while (tst_now_ms() < t0 + 10000 && took < 0) {
        rlfeed_reply r;
        if (decide(f.c, &b, "base", 4, NULL, 0, &rng, &r) && r.ok &&
            (r.pmf[0] == 1.0f || r.pmf[1] == 1.0f || r.pmf[2] == 1.0f)) {
            took = tst_now_ms() - t0;
        }
    }
    printf("# epsilon change: in force after %lld ms\n", (long long)took);
    TST_TRUE(took >= 0 && took < 5000);
    stat_pair(&f, "base", &v1, sum1, sizeof(sum1));
    printf("# base before the change: version %lld; after: %lld\n", v0, v1);
    TST_TRUE(v1 >= v0); /* the head went on */

    /* A definition over the catalog's 256 KiB is refused, saying so. */
    char big_path[700], cli_log[700];
    snprintf(big_path, sizeof(big_path), "%s/big.ini", f.dir);
    snprintf(cli_log, sizeof(cli_log), "%s/cli.log", f.dir);
    FILE *bf = fopen(big_path, "w");
    bool big_ok =
        bf != NULL && fputs("[policy big]\ndim = 2\nactions = a, b\nsignal.r = 1\n", bf) >= 0;
    for (int k = 0; big_ok && k < 3000; k++) {
        big_ok = fprintf(bf, "; %098d\n", k) > 0;
    }
    TST_TRUE(bf != NULL && fclose(bf) == 0 && big_ok);
    const char *put_big[] = {"policy", "put", "--file", big_path, NULL};
    TST_EQ(tst_daemon_cli(&f, "ops@test", put_big), 2);
    TST_TRUE(tst_file_has(cli_log, "the definition is over 262144 bytes"));

    /* The created policy has dashboard history too, from its first rollup on. */
    long long rows = -1;
    for (int64_t dl = tst_now_ms() + 10000; rows < 1 && tst_now_ms() < dl; tst_nap()) {
        tst_http_response hr;
        if (tst_http_get(f.http_url, "/dashboard/history.json?policy=answers", 5000, &hr) &&
            hr.status == 200 && hr.body != NULL) {
            json_t *hj = json_loads(hr.body, 0, NULL);
            json_t *p0 = json_array_get(json_object_get(hj, "policies"), 0);
            rows = json_integer_value(json_object_get(p0, "rows"));
            json_decref(hj);
        }
        tst_http_response_fini(&hr);
    }
    printf("# answers: %lld rollup rows\n", rows);
    TST_TRUE(rows >= 1);

    /* 3. A change it cannot follow: dim 4 -> 6. Base's traffic pauses around it. */
    atomic_store(&t.base_on, false);
    json_t *js = tst_stats(&f);
    long long matched_before = tst_stat_join(js, "base", "matched");
    json_decref(js);
    write_file(base_path, "[policy base]\ndim = 6\nactions = a, b, c\nepsilon = 0.1\n"
                          "signal.resolved = 1\nwindow_ms = 200\n");
    TST_EQ(tst_daemon_cli(&f, "ops@test", put_base), 0);
    took = wait_for(&f, "base", 6, NULL, 0, true, PROTO_E_NONE);
    printf("# dim change: served at dim 6 after %lld ms\n", (long long)took);
    TST_TRUE(took >= 0 && took < 5000);
    rlfeed_reply r;
    TST_TRUE(decide(f.c, &b, "base", 4, NULL, 0, &rng, &r) && !r.ok &&
             r.error.code == PROTO_E_BAD_DIMENSION);
    long long v2 = 0;
    char sum2[32];
    stat_pair(&f, "base", &v2, sum2, sizeof(sum2));
    printf("# new head version: model version %lld (was %lld)\n", v2, v1);
    TST_TRUE(v2 > v1); /* the version numbers go on */
    /* The rebuilt join goes on counting from the old one's. */
    js = tst_stats(&f);
    long long matched_after = tst_stat_join(js, "base", "matched");
    json_decref(js);
    printf("# join.matched: %lld before the rebuild, %lld after\n", matched_before, matched_after);
    TST_TRUE(matched_before > 0 && matched_after >= matched_before);
    atomic_store(&t.base_dim, 6);
    atomic_store(&t.base_on, true);
    until = tst_now_ms() + 500;
    while (tst_now_ms() < until) {
        tst_nap(); /* base learns at dim 6 */
    }

    /* 4. Retire answers. */
    atomic_store(&t.answers_on, false);
    const char *retire[] = {"policy", "retire", "--policy", "answers", NULL};
    TST_EQ(tst_daemon_cli(&f, "ops@test", retire), 0);
    took = wait_for(&f, "answers", 4, feat, 2, false, PROTO_E_UNKNOWN_POLICY);
    printf("# retired: refused after %lld ms\n", (long long)took);
    TST_TRUE(took >= 0 && took < 5000);

    atomic_store(&t.stop, true);
    if (running) {
        pthread_join(th, NULL);
    }
    printf("# traffic: %d requests, %d failed%s%s\n", atomic_load(&t.sent),
           atomic_load(&t.failures), t.last_error[0] != '\0' ? "; last: " : "", t.last_error);
    TST_TRUE(atomic_load(&t.sent) > 100);
    TST_EQ(atomic_load(&t.failures), 0);

    /* 5. A restart serves what the catalog says, the same model. */
    if (up) {
        /* Settled: nothing pending and the version still for 500 ms (windows of 200 ms). */
        int64_t deadline = tst_now_ms() + 15000, still_since = tst_now_ms();
        long long va = -1, pending = 1;
        char suma[32] = "";
        while (tst_now_ms() < deadline) {
            long long v = 0;
            json_t *s = tst_stats(&f);
            pending = tst_stat_int(s, "base", "pending");
            json_decref(s);
            stat_pair(&f, "base", &v, suma, sizeof(suma));
            if (v != va || pending != 0) {
                va = v;
                still_since = tst_now_ms();
            } else if (tst_now_ms() - still_since >= 500) {
                break;
            }
            tst_nap();
        }
        TST_EQ(tst_daemon_stop(&f), 0);
        up = tst_daemon_start(&f, true, NULL);
        TST_TRUE(up);
        long long vb = 0;
        char sumb[32] = "";
        stat_pair(&f, "base", &vb, sumb, sizeof(sumb));
        printf("# restart: version %lld checksum %s (before: %lld %s)\n", vb, sumb, va, suma);
        TST_EQ(vb, va);
        TST_STREQ(sumb, suma);
        TST_TRUE(decide(f.c, &b, "base", 6, NULL, 0, &rng, &r) && r.ok);
        TST_TRUE(decide(f.c, &b, "answers", 4, feat, 2, &rng, &r) && !r.ok &&
                 r.error.code == PROTO_E_UNKNOWN_POLICY);
        /* Putting it again serves it again. */
        TST_EQ(tst_daemon_cli(&f, "ops@test", put_answers), 0);
        took = wait_for(&f, "answers", 4, feat, 2, true, PROTO_E_NONE);
        TST_TRUE(took >= 0 && took < 5000);
    }

    /* 6. The audit trail: each change with who, version and diff. */
    sto_store *st = NULL;
    char err[256];
    TST_OK(sto_store_open(sto_server_url(f.redis), 5000, &st, err, sizeof(err)));
    sto_audit_entry *a = NULL;
    size_t na = 0, puts = 0;
    bool dim_diff = false;
    TST_OK(sto_audit_read(st, "base", "", 100, &a, &na));
    for (size_t i = 0; i < na; i++) {
        const char *act = sto_audit_field(&a[i], "action");
        const char *diff = sto_audit_field(&a[i], "diff");
        if (act != NULL && strcmp(act, "policy-put") == 0) {
            puts++;
            TST_STREQ(sto_audit_field(&a[i], "who"), "ops@test");
            dim_diff = dim_diff || (diff != NULL && strstr(diff, "- dim = 4") != NULL &&
                                    strstr(diff, "+ dim = 6") != NULL);
        }
    }
    TST_EQ(puts, 2);
    TST_TRUE(dim_diff);
    sto_audit_free(a, na);
    sto_store_close(st);

    /*
     * 7. A put whose announcement failed (the member set refused the SADD) wrote the
     * definition but exits 2; run again, it answers unchanged and announces it, so rlfeedd
     * serves the new policy.
     */
    if (up) {
        const char *sock = sto_server_url(f.redis) + strlen("unix:");
        TST_TRUE(redis_ok(sock, "SET rlfeed:catalog not-a-set"));
        snprintf(path, sizeof(path), "%s/late.ini", f.dir);
        write_file(path, "[policy late]\ndim = 4\nactions = a, b, c\nsignal.resolved = 1\n");
        const char *put_late[] = {"policy", "put", "--file", path, NULL};
        TST_EQ(tst_daemon_cli(&f, "ops@test", put_late), 2);
        TST_TRUE(redis_ok(sock, "DEL rlfeed:catalog") &&
                 redis_ok(sock, "SADD rlfeed:catalog base"));
        TST_TRUE(redis_ok(sock, "SADD rlfeed:catalog answers"));
        TST_EQ(tst_daemon_cli(&f, "ops@test", put_late), 0);
        took = wait_for(&f, "late", 4, NULL, 0, true, PROTO_E_NONE);
        printf("# a put announced again: served after %lld ms\n", (long long)took);
        TST_TRUE(took >= 0 && took < 10000);
    }
    base_buf_fini(&b);
    if (up) {
        TST_EQ(tst_daemon_stop(&f), 0);
    }
    tst_daemon_fini(&f, tst_failed > 0);
    rlfeed_client_lib_fini();
    return tst_done();
}
