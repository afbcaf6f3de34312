/*
 * `rlfeed bench features`: a world whose answers are described by features and where new
 * answers keep appearing (docs/benchmarks.md, "Open action sets"). The same stream of
 * requests is served by a per-action head (every answer id known in advance, learned
 * separately) and by an open action set's shared head (one model over the context and the
 * answers' features, docs/algorithms.md section 13), each learning from its own choices.
 *
 * The world, per seed: contexts x ~ N(0, I_d); answer m has features z_m ~ N(0, I_k) and is
 * resolved with probability sigmoid(x' A z_m / sqrt(k) + b' z_m / sqrt(k) - 0.5), A of rank
 * 3 and b drawn once. The base model scores each candidate with that logit plus N(0, 1.5^2)
 * noise (a frozen model that is informative but often wrong). Ten answers are live at a
 * time; every 1000 requests (--born-every) two new ones are born and the two oldest retire. A request offers
 * five live answers at random.
 *
 * Reported per head: the mean probability that the served answer resolves, overall, and
 * ("new") on the requests whose best candidate is an answer within its first 100 offers (the
 * first ten answers are not new): there the head must serve an answer it has (almost) no data
 * on. The same for the base model's choice, a random choice and the best answer.
 */
#include "bench/action_world.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/hash.h"
#include "base/record.h"
#include "policy/head.h"
#include "policy/numerics.h"

#define W_LIVE 10 /* answers live at a time */
#define W_CAND 5  /* candidates per request */
#define W_BORN_EVERY_DEFAULT 1000
#define W_NEW_WINDOW 100 /* a new answer's first offers that count as "new" */
#define W_RANK 3

typedef struct world_opts {
    uint32_t n, dim, k, seeds, born_every, interaction_dim;
    uint64_t seed;
    pol_learner learner;
    bool learner_set;
} world_opts;

typedef struct world {
    uint32_t n_answers;
    float *z;         /* [n_answers x k] */
    uint32_t *offers; /* [n_answers] times offered so far */
    double *a;        /* [dim x k] */
    double *b;        /* [k] */
    uint64_t rng;
} world;

typedef struct tally {
    double served, served_new, base, base_new, random, random_new, best, best_new;
    uint64_t n, n_new, errors;
} tally;

static double gauss(uint64_t *st)
{
    double u1 = base_u64_to_unit(base_splitmix64(st));
    double u2 = base_u64_to_unit(base_splitmix64(st));
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

static base_err world_new(const world_opts *o, uint64_t seed, world *w)
{
    memset(w, 0, sizeof(*w));
    w->rng = seed * 0x9e3779b97f4a7c15ULL + 7;
    w->n_answers = W_LIVE + 2 * (o->n / o->born_every + 1);
    w->z = base_alloc_array((size_t)w->n_answers * o->k, sizeof(float));
    w->offers = base_alloc_zero(w->n_answers, sizeof(uint32_t));
    w->a = base_alloc_zero((size_t)o->dim * o->k, sizeof(double));
    w->b = base_alloc_array(o->k, sizeof(double));
    if (w->z == NULL || w->offers == NULL || w->a == NULL || w->b == NULL) {
        return BASE_ENOMEM;
    }
    for (size_t i = 0; i < (size_t)w->n_answers * o->k; i++) {
        w->z[i] = (float)gauss(&w->rng);
    }
    /* A = U V' with U [dim x 3], V [k x 3]: a few directions of the context matter. */
    for (int r = 0; r < W_RANK; r++) {
        double u[64], v[64];
        for (uint32_t i = 0; i < o->dim; i++) {
            u[i] = gauss(&w->rng) / sqrt((double)o->dim);
        }
        for (uint32_t j = 0; j < o->k; j++) {
            v[j] = gauss(&w->rng);
        }
        for (uint32_t i = 0; i < o->dim; i++) {
            for (uint32_t j = 0; j < o->k; j++) {
                w->a[(size_t)i * o->k + j] += 2.0 * u[i] * v[j];
            }
        }
    }
    for (uint32_t j = 0; j < o->k; j++) {
        w->b[j] = 0.7 * gauss(&w->rng);
    }
    return BASE_OK;
}

static void world_free(world *w)
{
    base_free(w->z);
    base_free(w->offers);
    base_free(w->a);
    base_free(w->b);
}

static double logit_of(const world_opts *o, const world *w, const float *x, uint32_t m)
{
    const float *z = w->z + (size_t)m * o->k;
    double s = 0.0;
    for (uint32_t j = 0; j < o->k; j++) {
        double ax = 0.0;
        for (uint32_t i = 0; i < o->dim; i++) {
            ax += (double)x[i] * w->a[(size_t)i * o->k + j];
        }
        s += (ax + w->b[j]) * (double)z[j];
    }
    return s / sqrt((double)o->k) - 0.5;
}

/* A head for the world: per-action (one action per answer) or open (features). */
static base_err head_for(const world_opts *o, const world *w, bool open, uint64_t seed,
                         pol_head **out)
{
    pol_head_config c;
    pol_head_config_default(&c, o->dim, open ? 1 : w->n_answers);
    c.learner = o->learner;
    c.action_dim = open ? o->k : 0;
    c.interaction_dim = open ? o->interaction_dim : 0;
    c.seed = seed;
    return pol_head_new(&c, out);
}

/*
 * One seed: both heads see the same requests (contexts, offers, base scores, and the same
 * uniform for each answer's outcome), each learning from what it served.
 */
static base_err run_seed(const world_opts *o, uint64_t seed, tally *per_action, tally *shared)
{
    world w;
    pol_head *h[2] = {NULL, NULL};
    tally *t[2] = {per_action, shared};
    base_decision *d[2] = {NULL, NULL};
    base_err e = world_new(o, seed, &w);
    for (int k = 0; k < 2 && e == BASE_OK; k++) {
        e = head_for(o, &w, k == 1, seed, &h[k]);
        d[k] = base_decision_new_open(o->dim, W_CAND, k == 1 ? o->k : 0);
        e = e == BASE_OK && d[k] == NULL ? BASE_ENOMEM : e;
    }
    for (uint32_t i = 0; i < o->n && e == BASE_OK; i++) {
        uint32_t oldest = 2 * (i / o->born_every); /* live: oldest .. oldest + W_LIVE - 1 */
        uint32_t pick[W_LIVE];
        for (uint32_t m = 0; m < W_LIVE; m++) {
            pick[m] = oldest + m;
        }
        for (uint32_t c = 0; c < W_CAND; c++) {
            uint32_t j = c + (uint32_t)(base_splitmix64(&w.rng) % (W_LIVE - c));
            uint32_t tmp = pick[c];
            pick[c] = pick[j];
            pick[j] = tmp;
        }
        float x[64];
        for (uint32_t j = 0; j < o->dim; j++) {
            x[j] = (float)gauss(&w.rng);
        }
        double p[W_CAND], u[W_CAND], best = 0.0, mean = 0.0;
        float bl[W_CAND];
        bool is_new = false;
        uint32_t base_pick = 0;
        for (uint32_t c = 0; c < W_CAND; c++) {
            double s = logit_of(o, &w, x, pick[c]);
            p[c] = 1.0 / (1.0 + exp(-s));
            u[c] = base_u64_to_unit(base_splitmix64(&w.rng));
            bl[c] = (float)(s + 1.5 * gauss(&w.rng));
            /* new: the best candidate is an answer within its first offers */
            if (p[c] > best) {
                best = p[c];
                is_new = pick[c] >= W_LIVE && w.offers[pick[c]] < W_NEW_WINDOW;
            }
            mean += p[c] / W_CAND;
            base_pick = bl[c] > bl[base_pick] ? c : base_pick;
            w.offers[pick[c]]++;
        }
        for (int k = 0; k < 2; k++) {
            base_decision *dk = d[k];
            memcpy(dk->embedding, x, o->dim * sizeof(float));
            for (uint32_t c = 0; c < W_CAND; c++) {
                dk->action[c] = k == 1 ? 0 : pick[c];
                dk->base_logit[c] = bl[c];
                if (k == 1) {
                    memcpy(dk->features + (size_t)c * o->k, w.z + (size_t)pick[c] * o->k,
                           o->k * sizeof(float));
                }
            }
            snprintf(dk->event_id, sizeof(dk->event_id), "f%" PRIu64 "-%u", seed, i);
            if (pol_head_pmf(h[k], dk->embedding, W_CAND, dk->action, dk->base_logit, dk->pmf) !=
                BASE_OK) {
                t[k]->errors++;
                continue;
            }
            dk->chosen = pol_sample(dk->pmf, W_CAND, dk->event_id, seed);
            double r = u[dk->chosen] < p[dk->chosen] ? 1.0 : 0.0;
            t[k]->errors += pol_head_learn(h[k], dk, r) != BASE_OK;
            t[k]->served += p[dk->chosen];
            t[k]->base += p[base_pick];
            t[k]->random += mean;
            t[k]->best += best;
            t[k]->n++;
            if (is_new) {
                t[k]->served_new += p[dk->chosen];
                t[k]->base_new += p[base_pick];
                t[k]->random_new += mean;
                t[k]->best_new += best;
                t[k]->n_new++;
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        pol_head_free(h[k]);
        base_decision_free(d[k]);
    }
    world_free(&w);
    return e;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rlfeed bench features [options]\n"
            "  --n N          requests per seed (default 20000)\n"
            "  --dim D        context length, 1..64 (default 16)\n"
            "  --action-dim K answer features, 1..64 (default 8)\n"
            "  --seeds S      seeds 1..S, each a new world (default 5)\n"
            "  --born-every B two new answers (and two retired) every B requests\n"
            "                 (default 1000)\n"
            "  --interaction-dim R  the shared head's R (default: automatic, docs/algorithms.md)\n"
            "  --learner L    ridge (default) or iwr, for both heads\n"
            "The last line printed is one JSON object.\n");
}

static bool parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static void print_tally(const char *name, const tally *t, bool last)
{
    printf("\"%s\":{\"served\":%.4f,\"served_new\":%.4f,\"errors\":%" PRIu64 "}%s", name,
           t->served / (double)t->n, t->served_new / (double)t->n_new, t->errors, last ? "" : ",");
}

int rlfeed_bench_features(int argc, char **argv)
{
    static const struct option lo[] = {
        {"n", required_argument, NULL, 'n'},
        {"dim", required_argument, NULL, 'd'},
        {"action-dim", required_argument, NULL, 'k'},
        {"seeds", required_argument, NULL, 's'},
        {"learner", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"born-every", required_argument, NULL, 'b'},
        {"interaction-dim", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    world_opts o = {.n = 20000,
                    .dim = 16,
                    .k = 8,
                    .seeds = 5,
                    .born_every = W_BORN_EVERY_DEFAULT,
                    .learner = POL_LEARNER_RIDGE};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        bool ok = true;
        switch (c) {
        case 'n':
            ok = parse_u32(optarg, 1000, 10000000, &o.n);
            break;
        case 'd':
            ok = parse_u32(optarg, 1, 64, &o.dim);
            break;
        case 'k':
            ok = parse_u32(optarg, 1, 64, &o.k);
            break;
        case 's':
            ok = parse_u32(optarg, 1, 1000, &o.seeds);
            break;
        case 'b':
            ok = parse_u32(optarg, 10, 1000000, &o.born_every);
            break;
        case 'i':
            ok = parse_u32(optarg, 1, 64, &o.interaction_dim);
            break;
        case 'l':
            ok = pol_learner_from_name(optarg, &o.learner) && o.learner != POL_LEARNER_PG;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "rlfeed bench features: bad value '%s'\n", optarg);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    pol_numerics_init();
    tally per_action = {0}, shared = {0};
    for (uint32_t s = 1; s <= o.seeds; s++) {
        tally a = {0}, b = {0};
        if (run_seed(&o, s, &a, &b) != BASE_OK) {
            fprintf(stderr, "rlfeed bench features: seed %u failed\n", s);
            return 1;
        }
        printf("# seed %u: served %.4f / %.4f (per-action / shared); on new answers %.4f / %.4f;"
               " base %.4f, random %.4f, best %.4f\n",
               s, a.served / (double)a.n, b.served / (double)b.n, a.served_new / (double)a.n_new,
               b.served_new / (double)b.n_new, a.base / (double)a.n, a.random / (double)a.n,
               a.best / (double)a.n);
        per_action.served += a.served / (double)a.n / o.seeds;
        per_action.served_new += a.served_new / (double)a.n_new / o.seeds;
        per_action.errors += a.errors;
        shared.served += b.served / (double)b.n / o.seeds;
        shared.served_new += b.served_new / (double)b.n_new / o.seeds;
        shared.errors += b.errors;
        per_action.base += a.base / (double)a.n / o.seeds;
        per_action.base_new += a.base_new / (double)a.n_new / o.seeds;
        per_action.random += a.random / (double)a.n / o.seeds;
        per_action.random_new += a.random_new / (double)a.n_new / o.seeds;
        per_action.best += a.best / (double)a.n / o.seeds;
        per_action.best_new += a.best_new / (double)a.n_new / o.seeds;
    }
    per_action.n = per_action.n_new = shared.n = shared.n_new = 1; /* already means */
    printf("{\"bench\":\"features\",\"n\":%u,\"dim\":%u,\"action_dim\":%u,\"seeds\":%u,"
           "\"born_every\":%u,\"interaction_dim\":%u,\"learner\":\"%s\",",
           o.n, o.dim, o.k, o.seeds, o.born_every, o.interaction_dim, pol_learner_name(o.learner));
    print_tally("per_action", &per_action, false);
    print_tally("shared", &shared, false);
    printf("\"base\":{\"served\":%.4f,\"served_new\":%.4f},\"random\":{\"served\":%.4f,"
           "\"served_new\":%.4f},\"best\":{\"served\":%.4f,\"served_new\":%.4f}}\n",
           per_action.base, per_action.base_new, per_action.random, per_action.random_new,
           per_action.best, per_action.best_new);
    return per_action.errors + shared.errors == 0 ? 0 : 1;
}
