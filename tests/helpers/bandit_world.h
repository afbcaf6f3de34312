#ifndef TESTS_HELPERS_BANDIT_WORLD_H
#define TESTS_HELPERS_BANDIT_WORLD_H

/*
 * The synthetic contextual bandit the policy tests learn on, shared by
 * test_pol_head.c and test_pol_learners.c. Header-only (static functions):
 * each test program includes it once.
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/hash.h"
#include "base/record.h"
#include "policy/head.h"

/* A gaussian from two splitmix64 draws (Box-Muller); fixed seeds keep every test repeatable. */
static double gauss(uint64_t *rng)
{
    double u1 = base_u64_to_unit(base_splitmix64(rng));
    double u2 = base_u64_to_unit(base_splitmix64(rng));
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/*
 * The synthetic contextual bandit: d = 16, K = 4, true score t_a = theta_a . x,
 * reward 1 when the chosen action maximises t. The base logits are weakly
 * informative: 0.5 * t_a plus unit gaussian noise.
 */
enum { LD = 16, LK = 4 };

typedef struct world {
    double theta[LK][LD];
} world;

typedef struct bandit_ctx {
    float x[LD];
    uint32_t action[LK];
    float bl[LK];
    uint32_t best; /* the best action (not the candidate index) */
} bandit_ctx;

static void world_draw(const world *w, uint64_t *rng, bandit_ctx *b)
{
    double t[LK];
    for (int j = 0; j < LD; j++) {
        b->x[j] = (float)(gauss(rng) / sqrt((double)LD));
    }
    b->best = 0;
    for (int a = 0; a < LK; a++) {
        t[a] = 0.0;
        for (int j = 0; j < LD; j++) {
            t[a] += w->theta[a][j] * (double)b->x[j];
        }
        b->best = t[a] > t[b->best] ? (uint32_t)a : b->best;
    }
    /* Candidates in a random order, so the head must follow actions, not positions. */
    for (int c = 0; c < LK; c++) {
        b->action[c] = (uint32_t)c;
    }
    for (int c = LK - 1; c > 0; c--) {
        int k = (int)(base_splitmix64(rng) % (uint64_t)(c + 1));
        uint32_t tmp = b->action[c];
        b->action[c] = b->action[k];
        b->action[k] = tmp;
    }
    for (int c = 0; c < LK; c++) {
        b->bl[c] = (float)(0.5 * t[b->action[c]] + gauss(rng));
    }
}

static void world_init(world *w, uint64_t seed)
{
    uint64_t rng = seed;
    for (int a = 0; a < LK; a++) {
        for (int j = 0; j < LD; j++) {
            w->theta[a][j] = gauss(&rng);
        }
    }
}

/* Mean served probability of the best action over @n held-out contexts. */
static double served_accuracy(const pol_head *h, const world *w, uint64_t seed, int n)
{
    uint64_t rng = seed;
    bandit_ctx b;
    float pmf[LK];
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        world_draw(w, &rng, &b);
        if (pol_head_pmf(h, b.x, LK, b.action, b.bl, pmf) != BASE_OK) {
            return -1.0;
        }
        for (int c = 0; c < LK; c++) {
            acc += b.action[c] == b.best ? (double)pmf[c] : 0.0;
        }
    }
    return acc / n;
}

/* Feeds @n examples drawn from @h's served pmf; returns the number of failed calls. */
static int bandit_train(pol_head *h, const world *w, uint64_t seed, int n)
{
    uint64_t rng = seed;
    bandit_ctx b;
    base_decision *d = base_decision_new(LD, LK);
    int failed = d == NULL ? 1 : 0;
    char id[32];
    for (int i = 0; i < n && d != NULL; i++) {
        world_draw(w, &rng, &b);
        memcpy(d->embedding, b.x, sizeof(b.x));
        memcpy(d->action, b.action, sizeof(b.action));
        memcpy(d->base_logit, b.bl, sizeof(b.bl));
        failed += pol_head_pmf(h, b.x, LK, b.action, b.bl, d->pmf) != BASE_OK;
        snprintf(id, sizeof(id), "train-%d", i);
        d->chosen = pol_sample(d->pmf, LK, id, 42);
        double r = d->action[d->chosen] == b.best ? 1.0 : 0.0;
        failed += pol_head_learn(h, d, r) != BASE_OK;
    }
    base_decision_free(d);
    return failed;
}

/*
 * Feeds @n examples logged by a uniform policy (independent of @h), with
 * every context feature multiplied by @x_scale.
 */
#endif
