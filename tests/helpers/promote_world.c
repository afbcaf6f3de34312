#include "promote_world.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/hash.h"
#include "policy/head.h"
#include "proc.h"

static const double w[PW_ACTIONS][PW_DIM] = {
    {1.0, 0.0, 0.0, 0.0},
    {0.0, 1.0, 0.0, 0.0},
    {-0.7, -0.7, 0.0, 0.0},
};

static double unit(uint64_t *st)
{
    return base_u64_to_unit(base_splitmix64(st));
}

/* Box-Muller: one N(0, 1) draw. */
static double normal(uint64_t *st)
{
    double u1 = unit(st), u2 = unit(st);
    if (u1 < 1e-300) {
        u1 = 1e-300;
    }
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Draw example @i of @seed; the reward of every action into @out_r. */
static base_decision *draw(const char *policy, uint64_t seed, uint64_t i, double out_r[PW_ACTIONS])
{
    uint64_t st = base_hash64(&i, sizeof(i), seed);
    base_decision *d = base_decision_new(PW_DIM, PW_ACTIONS);
    if (d == NULL) {
        return NULL;
    }
    base_strlcpy(d->policy, policy, sizeof(d->policy));
    (void)snprintf(d->event_id, sizeof(d->event_id), "ev-%llu-%llu", (unsigned long long)seed,
                   (unsigned long long)i);
    d->ts_ms = 1700000000000 + (int64_t)i;
    for (uint32_t k = 0; k < PW_DIM; k++) {
        d->embedding[k] = (float)normal(&st);
    }
    for (uint32_t a = 0; a < PW_ACTIONS; a++) {
        double m = 0.0;
        for (uint32_t k = 0; k < PW_DIM; k++) {
            m += w[a][k] * d->embedding[k];
        }
        out_r[a] = 0.5 + 0.2 * m + 0.1 * normal(&st);
        d->action[a] = a;
        d->base_logit[a] = (float)normal(&st);
        d->pmf[a] = 1.0f / 3.0f;
    }
    d->chosen = (uint32_t)(unit(&st) * PW_ACTIONS) % PW_ACTIONS;
    return d;
}

base_joined *pw_example(const char *policy, uint64_t seed, uint64_t i)
{
    double r[PW_ACTIONS];
    base_decision *d = draw(policy, seed, i, r);
    base_joined *j = d != NULL ? base_joined_new(d) : NULL;
    if (j == NULL) {
        base_decision_free(d);
        return NULL;
    }
    j->reward = r[d->chosen];
    j->n_outcomes = 1;
    j->joined_ts_ms = d->ts_ms + 1000;
    base_strlcpy(j->spec_version, PW_SPEC, sizeof(j->spec_version));
    return j;
}

bool pw_write_joined(sto_store *s, const char *policy, uint64_t seed, uint64_t first, size_t n,
                     const char *spec, size_t unknown_every, char *out_last_id)
{
    enum { BATCH = 256 };
    sto_append items[BATCH];
    base_joined *js[BATCH];
    bool ok = true;
    for (size_t done = 0; ok && done < n;) {
        size_t m = n - done < BATCH ? n - done : BATCH;
        for (size_t k = 0; k < m; k++) {
            js[k] = pw_example(policy, seed, first + done + k);
            ok = ok && js[k] != NULL;
            if (js[k] != NULL) {
                base_strlcpy(js[k]->spec_version, spec, sizeof(js[k]->spec_version));
                if (unknown_every > 0 && (first + done + k) % unknown_every == 0) {
                    js[k]->unknown = true;
                    js[k]->reward = 0.0;
                    js[k]->n_outcomes = 0;
                }
            }
            memset(&items[k], 0, sizeof(items[k]));
            items[k].kind = STO_JOINED;
            items[k].policy = policy;
            items[k].rec = js[k];
        }
        ok = ok && sto_store_append(s, items, m) == BASE_OK;
        for (size_t k = 0; k < m; k++) {
            ok = ok && items[k].out_err == BASE_OK;
            base_joined_free(js[k]);
        }
        if (ok && out_last_id != NULL) {
            base_strlcpy(out_last_id, items[m - 1].out_id, BASE_STREAM_ID_MAX + 1);
        }
        done += m;
    }
    return ok;
}

base_snapshot *pw_train(const char *policy, uint64_t version, double sign, size_t n)
{
    pol_head_config cfg;
    pol_head *h = NULL;
    base_snapshot *m = NULL;
    pol_head_config_default(&cfg, PW_DIM, PW_ACTIONS);
    cfg.seed = 7;
    if (pol_head_new(&cfg, &h) != BASE_OK) {
        return NULL;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        double r[PW_ACTIONS];
        base_decision *d = draw(policy, 99991, i, r);
        ok = d != NULL && pol_head_learn(h, d, sign * r[d->chosen]) == BASE_OK;
        base_decision_free(d);
    }
    if (ok && pol_head_snapshot(h, &m) == BASE_OK) {
        base_strlcpy(m->policy, policy, sizeof(m->policy));
        base_strlcpy(m->spec_version, PW_SPEC, sizeof(m->spec_version));
        base_strlcpy(m->base_version, PW_BASE, sizeof(m->base_version));
        m->version = version;
        m->ts_ms = 1700000000000;
    }
    pol_head_free(h);
    return m;
}

bool pw_joined_id(sto_store *s, const char *policy, size_t k, char *out)
{
    sto_entry *e = NULL;
    size_t got = 0;
    bool ok = sto_store_read(s, STO_JOINED, policy, "", k + 1, &e, &got) == BASE_OK && got == k + 1;
    if (ok) {
        base_strlcpy(out, e[k].id, BASE_STREAM_ID_MAX + 1);
    }
    sto_entries_free(STO_JOINED, e, got);
    return ok;
}

pid_t pw_spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    if (pid != 0) {
        return pid < 0 ? -1 : pid;
    }
    int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fo < 0 || fe < 0) {
        _exit(126);
    }
    dup2(fo, STDOUT_FILENO);
    dup2(fe, STDERR_FILENO);
    close(fo);
    close(fe);
    execv(argv[0], argv);
    _exit(127);
}

char *pw_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL) {
        return NULL;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap * 2 + 8192;
            char *g = realloc(buf, cap);
            if (g == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = g;
        }
        size_t k = fread(buf + len, 1, 4096, f);
        len += k;
        if (k < 4096) {
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

int pw_run(const char *dir, json_t **out_json, const char *const *args)
{
    char out[4200], err[4200];
    char *argv[64];
    int n = 0;
    const char *bin = tst_env_path("RLFEED");
    if (bin == NULL) {
        return -1;
    }
    argv[n++] = (char *)(uintptr_t)bin;
    for (; args[n - 1] != NULL && n < 63; n++) {
        argv[n] = (char *)(uintptr_t)args[n - 1];
    }
    argv[n] = NULL;
    (void)snprintf(out, sizeof(out), "%s/out.txt", dir);
    (void)snprintf(err, sizeof(err), "%s/err.txt", dir);
    pid_t pid = pw_spawn(argv, out, err);
    int st = 0;
    if (pid < 0 || !tst_wait_exit(pid, 120000, &st)) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            (void)tst_wait_exit(pid, 5000, NULL);
        }
        return -1;
    }
    if (out_json != NULL) {
        char *text = pw_slurp(out);
        *out_json = text != NULL ? json_loads(text, 0, NULL) : NULL;
        free(text);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
