#include "bench/learn.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/record.h"
#include "bench/dataset.h"
#include "bench/action_world.h"
#include "policy/head.h"
#include "policy/numerics.h"
#include "policy/portfolio.h"
#include "reward/join.h"

typedef struct opts {
    const char *data; /* CSV path, or NULL for --synthetic */
    uint32_t syn_dim, syn_k, syn_n;
    uint64_t seed;
    bool base_weak;
    uint32_t emb_dim;     /* --base weak: embedding length */
    double base_acc;      /* --base weak: target base accuracy */
    bool full;            /* also run the full-information ceiling */
    pol_head_config head; /* dim and n_actions filled per stream */
    bool portfolio;       /* --portfolio auto */
    double half_life, z, z_drop, mix;
    uint64_t min_examples, drop_after;
    bool open; /* --actions open: one shared head, one-hot features per label */
} opts;

/* One stream: rows in order, each a context, base logits and a label. */
typedef struct stream {
    uint32_t n, dim, k;
    float *x;        /* [n x dim] */
    float *logit;    /* [n x k] base logits (zeros without a base) */
    uint32_t *label; /* [n] */
    char name[256];
} stream;

static void stream_free(stream *s)
{
    base_free(s->x);
    base_free(s->logit);
    base_free(s->label);
}

static base_err stream_alloc(stream *s, uint32_t n, uint32_t dim, uint32_t k)
{
    s->n = n;
    s->dim = dim;
    s->k = k;
    s->x = base_alloc_array((size_t)n * dim, sizeof(float));
    s->logit = base_alloc_zero((size_t)n * k, sizeof(float));
    s->label = base_alloc_array(n, sizeof(uint32_t));
    return s->x && s->logit && s->label ? BASE_OK : BASE_ENOMEM;
}

static double gauss(uint64_t *st)
{
    double u1 = base_u64_to_unit(base_splitmix64(st));
    double u2 = base_u64_to_unit(base_splitmix64(st));
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* Seeded permutation of 0..n-1 (Fisher-Yates). */
static uint32_t *permutation(uint32_t n, uint64_t seed)
{
    uint32_t *p = base_alloc_array(n, sizeof(uint32_t));
    if (p == NULL) {
        return NULL;
    }
    uint64_t st = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (uint32_t i = 0; i < n; i++) {
        p[i] = i;
    }
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(base_splitmix64(&st) % i);
        uint32_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

/*
 * Synthetic rows shaped like a classification stream: K Gaussian class
 * means N(0, 1) per feature, unit noise. Only for throughput: the accuracy
 * of this stream means little.
 */
static base_err synthetic_stream(const opts *o, stream *s)
{
    base_err e = stream_alloc(s, o->syn_n, o->syn_dim, o->syn_k);
    if (e != BASE_OK) {
        return e;
    }
    double *mean = base_alloc_array((size_t)o->syn_k * o->syn_dim, sizeof(double));
    if (mean == NULL) {
        return BASE_ENOMEM;
    }
    uint64_t st = o->seed;
    for (size_t i = 0; i < (size_t)o->syn_k * o->syn_dim; i++) {
        mean[i] = gauss(&st);
    }
    for (uint32_t r = 0; r < s->n; r++) {
        uint32_t y = (uint32_t)(base_splitmix64(&st) % o->syn_k);
        s->label[r] = y;
        for (uint32_t j = 0; j < s->dim; j++) {
            s->x[(size_t)r * s->dim + j] = (float)(mean[(size_t)y * s->dim + j] + gauss(&st));
        }
    }
    base_free(mean);
    snprintf(s->name, sizeof(s->name), "synthetic-d%u-k%u-n%u", o->syn_dim, o->syn_k, o->syn_n);
    return BASE_OK;
}

/* A CSV dataset in a seeded order, raw (standardised) or through the frozen base. */
/* The stream of --data; *@said when the failure was already reported. */
static base_err csv_stream(const opts *o, stream *s, bool *said)
{
    char err[256] = "";
    rlfeed_dataset *d = NULL;
    rlfeed_base_model *bm = NULL;
    uint32_t *perm = NULL;
    base_err e = rlfeed_dataset_load_csv(o->data, &d, err, sizeof(err));
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed bench: %s: %s\n", o->data, err);
        *said = true; /* not "cannot build the stream" again */
        return e;
    }
    if (o->base_weak) {
        /* The frozen base of `rlfeed sim`, with its own fixed seed: not the stream's. */
        e = rlfeed_base_model_new(d, o->emb_dim, 1, o->base_acc, &bm);
        if (e != BASE_OK) {
            goto out;
        }
    }
    uint32_t dim = o->base_weak ? o->emb_dim : d->n_features;
    e = stream_alloc(s, d->n_rows, dim, d->n_classes);
    perm = permutation(d->n_rows, o->seed);
    if (e != BASE_OK || perm == NULL) {
        e = BASE_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t r = perm[i];
        s->label[i] = d->label[r];
        float *x = s->x + (size_t)i * dim;
        if (bm != NULL) {
            rlfeed_base_model_embed(bm, r, x);
            rlfeed_base_model_logits(bm, r, s->logit + (size_t)i * s->k);
        } else {
            for (uint32_t j = 0; j < dim; j++) {
                x[j] = (float)d->x[(size_t)r * dim + j];
            }
        }
    }
    const char *slash = strrchr(o->data, '/');
    snprintf(s->name, sizeof(s->name), "%s", slash != NULL ? slash + 1 : o->data);
out:
    base_free(perm);
    rlfeed_base_model_free(bm);
    rlfeed_dataset_free(d);
    return e;
}

/* Accuracy of argmax base logits (ties count fractionally). */
static double base_accuracy(const stream *s)
{
    double acc = 0.0;
    for (uint32_t i = 0; i < s->n; i++) {
        const float *l = s->logit + (size_t)i * s->k;
        float best = l[0];
        for (uint32_t a = 1; a < s->k; a++) {
            best = l[a] > best ? l[a] : best;
        }
        uint32_t ties = 0;
        for (uint32_t a = 0; a < s->k; a++) {
            ties += l[a] == best;
        }
        acc += l[s->label[i]] == best ? 1.0 / ties : 0.0;
    }
    return acc / s->n;
}

typedef struct result {
    double accuracy;
    double seconds;
    double cpu_seconds; /* the loop's thread CPU time */
    uint64_t errors;
    pol_portfolio *pf; /* run_bandit: the portfolio at the end */
} result;

/*
 * Row @i as a decision over the K labels, candidate a = label a. With @open, an open action
 * set: every candidate's features are its label one-hot (action index 0, id "a<label>"), so
 * the shared head's interaction features hold a linear model per label (docs/algorithms.md,
 * "Open action sets").
 */
static base_decision *decision_for(const stream *s, uint32_t i, bool open)
{
    base_decision *d = base_decision_new_open(s->dim, s->k, open ? s->k : 0);
    if (d == NULL) {
        return NULL;
    }
    memcpy(d->embedding, s->x + (size_t)i * s->dim, (size_t)s->dim * sizeof(float));
    memcpy(d->base_logit, s->logit + (size_t)i * s->k, (size_t)s->k * sizeof(float));
    for (uint32_t a = 0; a < s->k; a++) {
        d->action[a] = open ? 0 : a;
        if (open) {
            d->features[(size_t)a * s->k + a] = 1.0f;
            snprintf(d->cand_id[a], sizeof(d->cand_id[a]), "a%u", a);
        }
    }
    (void)base_strlcpy(d->policy, "bench", sizeof(d->policy));
    return d;
}

/*
 * The bandit loop, exactly as the service runs it: decide (pmf, sample by
 * event id), the decision pending in the reward join, a "resolved" outcome
 * when the choice was the label, the window closes, the joined example is
 * learned from.
 */
static base_err run_bandit(const opts *o, const stream *s, result *out)
{
    pol_head_config hc = o->head;
    hc.dim = s->dim;
    hc.n_actions = o->open ? 1 : s->k;
    hc.action_dim = o->open ? s->k : 0;
    pol_portfolio_config pc;
    if (o->portfolio) {
        pol_portfolio_config_auto(&pc, &hc);
    } else {
        pol_portfolio_config_single(&pc, &hc);
    }
    pc.half_life = o->half_life;
    pc.mix = o->mix;
    pc.z = o->z;
    pc.z_drop = o->z_drop;
    pc.min_examples = o->min_examples;
    pc.drop_after = o->drop_after;
    pol_portfolio *h = NULL;
    rwd_join *j = NULL;
    rwd_spec spec;
    rwd_spec_default(&spec);
    spec.n_signals = 1;
    rwd_signal_default(&spec.signal[0], "resolved", RWD_EVENT);
    spec.clip_min = 0.0;
    spec.clip_max = 1.0;
    spec.default_reward = 0.0;
    spec.window_ms = 1;
    base_err e = pol_portfolio_new(&pc, &h);
    if (e == BASE_OK) {
        e = rwd_join_new(&spec, 16, &j);
    }
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed bench: head or join: %s\n", base_strerror(e));
        goto out;
    }
    int64_t now = 1700000000000LL;
    uint64_t hits = 0;
    uint64_t t0 = base_mono_ns(), c0 = base_thread_cpu_ns();
    for (uint32_t i = 0; i < s->n; i++) {
        base_decision *d = decision_for(s, i, o->open);
        if (d == NULL) {
            e = BASE_ENOMEM;
            break;
        }
        snprintf(d->event_id, sizeof(d->event_id), "b%" PRIu64 "-%u", o->seed, i);
        d->ts_ms = now;
        if (pol_portfolio_pmf(h, d->embedding, d->n_cand, d->action, d->base_logit, d->pmf) !=
            BASE_OK) {
            out->errors++;
            base_decision_free(d);
            continue;
        }
        d->chosen = pol_sample(d->pmf, d->n_cand, d->event_id, hc.seed);
        bool correct = d->chosen == s->label[i]; /* candidate a is label a */
        hits += correct;
        base_outcome oc;
        memset(&oc, 0, sizeof(oc));
        memcpy(oc.event_id, d->event_id, sizeof(oc.event_id));
        (void)base_strlcpy(oc.signal, "resolved", sizeof(oc.signal));
        oc.value = 1.0;
        if (rwd_join_add_decision(j, d, now) != BASE_OK) {
            out->errors++;
            base_decision_free(d);
            continue;
        }
        rwd_status m = RWD_MATCHED;
        oc.ts_ms = now;
        if (correct && (rwd_join_add_outcome(j, &oc, now, &m) != BASE_OK || m != RWD_MATCHED)) {
            out->errors++;
        }
        now += 1;
        base_joined *jo = NULL;
        if (rwd_join_expire(j, now, &jo, 1) == 1) {
            if (pol_portfolio_learn(h, jo->decision, jo->reward) != BASE_OK) {
                out->errors++;
            }
            base_joined_free(jo);
        }
    }
    out->seconds = (double)(base_mono_ns() - t0) * 1e-9;
    out->cpu_seconds = (double)(base_thread_cpu_ns() - c0) * 1e-9;
    out->accuracy = (double)hits / s->n;
out:
    rwd_join_free(j);
    out->pf = h;
    return e;
}

/* The ceiling: the same head, told the reward of every label at every step. */
static base_err run_full(const opts *o, const stream *s, result *out)
{
    pol_head_config hc = o->head;
    hc.dim = s->dim;
    hc.n_actions = o->open ? 1 : s->k;
    hc.action_dim = o->open ? s->k : 0;
    pol_head *h = NULL;
    double *rewards = base_alloc_array(s->k, sizeof(double));
    base_err e = rewards == NULL ? BASE_ENOMEM : pol_head_new(&hc, &h);
    uint64_t hits = 0;
    for (uint32_t i = 0; i < s->n && e == BASE_OK; i++) {
        base_decision *d = decision_for(s, i, o->open);
        if (d == NULL) {
            e = BASE_ENOMEM;
            break;
        }
        snprintf(d->event_id, sizeof(d->event_id), "f%" PRIu64 "-%u", o->seed, i);
        if (pol_head_pmf(h, d->embedding, d->n_cand, d->action, d->base_logit, d->pmf) == BASE_OK) {
            d->chosen = pol_sample(d->pmf, d->n_cand, d->event_id, hc.seed);
            hits += d->chosen == s->label[i];
            for (uint32_t a = 0; a < s->k; a++) {
                rewards[a] = a == s->label[i] ? 1.0 : 0.0;
            }
            out->errors += pol_head_learn_full(h, d, rewards) != BASE_OK;
        } else {
            out->errors++;
        }
        base_decision_free(d);
    }
    out->accuracy = (double)hits / s->n;
    pol_head_free(h);
    base_free(rewards);
    return e;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rlfeed bench learn (--data FILE.csv | --synthetic D,K,N) [options]\n"
               "  --data FILE.csv     header line, then label (0..K-1) and numeric features;\n"
               "                      features are standardised from the whole file\n"
               "  --synthetic D,K,N   N random rows, D features, K classes (throughput runs)\n"
               "  --seed S            order of the rows and sampling (default 1)\n"
               "  --base none|weak    none: raw features, no base logits (default);\n"
               "                      weak: the frozen base of `rlfeed sim` (embedding + logits)\n"
               "  --dim D             --base weak: embedding length (default 64)\n"
               "  --base-accuracy A   --base weak: target accuracy of the base (default 0.68)\n"
               "  --learner NAME      ridge (default), iwr or pg\n"
               "  --explorer NAME     greedy, softmax, igw or ucb (default: the learner's)\n"
               "  --epsilon E         exploration floor (default: the learner's)\n"
               "  --lambda L          ridge prior precision (default: features / 2)\n"
               "  --prior-mean M      ridge prior expected reward (default 0.5)\n"
               "  --gamma G           igw gap weight (default 1000)\n"
               "  --alpha A           ucb width weight (default 0.5)\n"
               "  --learning-rate R   pg and iwr step (default: the learner's)\n"
               "  --kl B              pg: weight of the KL pull toward the base (default 0.3)\n"
               "  --features NAME     linear (default), quad, rff or rff_norm\n"
               "  --rff-dim N         rff, rff_norm: cosines (default 64)\n"
               "  --bandwidth B       rff, rff_norm: kernel width / sqrt(dim) (default 1)\n"
               "  --portfolio off|auto auto (default, as rlfeedd): a portfolio of heads around\n"
               "                      the one above, the serving one selected online;\n"
               "                      off: that head alone\n"
               "  --half-life H       portfolio: discount half-life in examples (0: none)\n"
               "  --z Z, --z-drop Z   portfolio: confidence to switch (1.5), to drop (3)\n"
               "  --min-examples N    portfolio: no switch before N examples (300)\n"
               "  --mix M             portfolio: cap on the share live challengers serve,\n"
               "                      0..1 (1: probability matching, as rlfeedd)\n"
               "  --drop-after N      portfolio: no member dropped before N examples (300)\n"
               "  --no-full           skip the full-information run\n"
               "  --actions open|closed closed (default): a head per label; open: one shared\n"
               "                      head over each label's one-hot features (actions = open)\n"
               "  --interaction-dim R open: context values in the interaction (default: auto)\n"
               "The last line printed is one JSON object.\n");
}

static bool parse_num(const char *v, double *out)
{
    char *end = NULL;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(x)) {
        return false;
    }
    *out = x;
    return true;
}

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"data", required_argument, NULL, 'd'},
        {"synthetic", required_argument, NULL, 'S'},
        {"seed", required_argument, NULL, 's'},
        {"base", required_argument, NULL, 'b'},
        {"dim", required_argument, NULL, 'D'},
        {"base-accuracy", required_argument, NULL, 'A'},
        {"learner", required_argument, NULL, 'l'},
        {"explorer", required_argument, NULL, 'x'},
        {"epsilon", required_argument, NULL, 'e'},
        {"lambda", required_argument, NULL, 'L'},
        {"prior-mean", required_argument, NULL, 'm'},
        {"gamma", required_argument, NULL, 'g'},
        {"alpha", required_argument, NULL, 'a'},
        {"learning-rate", required_argument, NULL, 'r'},
        {"no-full", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {"kl", required_argument, NULL, 'K'},
        {"features", required_argument, NULL, 'F'},
        {"rff-dim", required_argument, NULL, 'R'},
        {"bandwidth", required_argument, NULL, 'B'},
        {"portfolio", required_argument, NULL, 'P'},
        {"half-life", required_argument, NULL, 'H'},
        {"z", required_argument, NULL, 'z'},
        {"z-drop", required_argument, NULL, 'Z'},
        {"min-examples", required_argument, NULL, 'N'},
        {"drop-after", required_argument, NULL, 'T'},
        {"mix", required_argument, NULL, 'M'},
        {"actions", required_argument, NULL, 'O'},
        {"interaction-dim", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->emb_dim = 64;
    o->base_acc = 0.68;
    o->full = true;
    pol_head_config_default(&o->head, 0, 0);
    o->portfolio = true;
    o->half_life = POL_PORTFOLIO_DEFAULT_HALF_LIFE;
    o->mix = POL_PORTFOLIO_DEFAULT_MIX;
    o->z = POL_PORTFOLIO_DEFAULT_Z;
    o->z_drop = POL_PORTFOLIO_DEFAULT_Z_DROP;
    o->min_examples = POL_PORTFOLIO_DEFAULT_MIN;
    o->drop_after = POL_PORTFOLIO_DEFAULT_DROP_AFTER;
    int c, li = -1;
    double v = 0.0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, &li)) != -1) {
        bool ok = true;
        switch (c) {
        case 'd':
            o->data = optarg;
            break;
        case 'S': {
            unsigned long long dd = 0, kk = 0, nn = 0;
            char tail = 0;
            ok = sscanf(optarg, "%llu,%llu,%llu%c", &dd, &kk, &nn, &tail) == 3 && dd >= 1 &&
                 dd <= BASE_DIM_MAX && kk >= 2 && kk <= BASE_CAND_MAX && nn >= 1 &&
                 nn <= 10000000ULL;
            o->syn_dim = (uint32_t)dd;
            o->syn_k = (uint32_t)kk;
            o->syn_n = (uint32_t)nn;
            break;
        }
        case 's':
            ok = parse_num(optarg, &v) && v >= 0;
            o->seed = (uint64_t)v;
            break;
        case 'b':
            ok = strcmp(optarg, "none") == 0 || strcmp(optarg, "weak") == 0;
            o->base_weak = strcmp(optarg, "weak") == 0;
            break;
        case 'D':
            ok = parse_num(optarg, &v) && v >= 1 && v <= BASE_DIM_MAX;
            o->emb_dim = (uint32_t)v;
            break;
        case 'A':
            ok = parse_num(optarg, &o->base_acc) && o->base_acc > 0 && o->base_acc < 1;
            break;
        case 'l':
            ok = pol_learner_from_name(optarg, &o->head.learner);
            break;
        case 'x':
            ok = pol_explorer_from_name(optarg, &o->head.explorer);
            break;
        case 'e':
            ok = parse_num(optarg, &o->head.epsilon) && o->head.epsilon >= 0;
            break;
        case 'L':
            ok = parse_num(optarg, &o->head.lambda) && o->head.lambda > 0;
            break;
        case 'm':
            ok = parse_num(optarg, &o->head.prior_mean);
            break;
        case 'g':
            ok = parse_num(optarg, &o->head.gamma) && o->head.gamma > 0;
            break;
        case 'a':
            ok = parse_num(optarg, &o->head.ucb_alpha) && o->head.ucb_alpha >= 0;
            break;
        case 'r':
            ok = parse_num(optarg, &o->head.learning_rate) && o->head.learning_rate > 0;
            break;
        case 'K':
            ok = parse_num(optarg, &o->head.kl) && o->head.kl >= 0;
            break;
        case 'F':
            ok = pol_features_from_name(optarg, &o->head.features);
            break;
        case 'R':
            ok = parse_num(optarg, &v) && v >= 1 && v <= POL_RFF_DIM_MAX;
            o->head.rff_dim = (uint32_t)v;
            break;
        case 'B':
            ok = parse_num(optarg, &o->head.bandwidth) && o->head.bandwidth > 0;
            break;
        case 'n':
            o->full = false;
            break;
        case 'P':
            ok = strcmp(optarg, "off") == 0 || strcmp(optarg, "auto") == 0;
            o->portfolio = strcmp(optarg, "auto") == 0;
            break;
        case 'H':
            ok = parse_num(optarg, &o->half_life) && o->half_life >= 0;
            break;
        case 'z':
            ok = parse_num(optarg, &o->z) && o->z >= 0;
            break;
        case 'Z':
            ok = parse_num(optarg, &o->z_drop) && o->z_drop >= 0;
            break;
        case 'N':
            ok = parse_num(optarg, &v) && v >= 0;
            o->min_examples = (uint64_t)v;
            break;
        case 'M':
            ok = parse_num(optarg, &o->mix) && o->mix >= 0 && o->mix <= 1.0;
            break;
        case 'T':
            ok = parse_num(optarg, &v) && v >= 0;
            o->drop_after = (uint64_t)v;
            break;
        case 'I':
            ok = parse_num(optarg, &v) && v >= 1 && v <= BASE_DIM_MAX;
            o->head.interaction_dim = (uint32_t)v;
            break;
        case 'O':
            ok = strcmp(optarg, "open") == 0 || strcmp(optarg, "closed") == 0;
            o->open = strcmp(optarg, "open") == 0;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "rlfeed bench: bad value '%s' for --%s\n", optarg,
                    li >= 0 ? lo[li].name : "?"); /* the option as getopt matched it */
            return 2;
        }
    }
    if ((o->data == NULL) == (o->syn_n == 0) || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (o->data == NULL && o->base_weak) {
        fprintf(stderr, "rlfeed bench: --base weak needs --data\n");
        return 2;
    }
    o->head.seed = o->seed;
    return -1;
}

/* The portfolio's end state: who served, and each member's progressive estimate. */
static void print_portfolio(const pol_portfolio *pf)
{
    if (pf == NULL) {
        return;
    }
    pol_member_info mi;
    (void)pol_portfolio_member_info(pf, pol_portfolio_leader(pf), &mi);
    printf("\"serving\":\"%s\",\"switches\":%" PRIu64 ",\"members\":[", mi.name,
           pol_portfolio_switches(pf));
    for (uint32_t i = 0; i < pol_portfolio_size(pf); i++) {
        (void)pol_portfolio_member_info(pf, i, &mi);
        printf("%s{\"name\":\"%s\",\"live\":%s,\"estimate\":%.4f,\"vs_serving\":%.4f,"
               "\"se\":%.4f,\"share\":%.4f}",
               i > 0 ? "," : "", mi.name, mi.live ? "true" : "false", mi.estimate, mi.vs_lead,
               mi.se, mi.share);
    }
    printf("],");
}

static int bench_learn(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    pol_numerics_init();
    stream s;
    memset(&s, 0, sizeof(s));
    bool said = false;
    base_err e = o.data != NULL ? csv_stream(&o, &s, &said) : synthetic_stream(&o, &s);
    if (e != BASE_OK) {
        stream_free(&s);
        if (!said) {
            fprintf(stderr, "rlfeed bench: cannot build the stream: %s\n", base_strerror(e));
        }
        return 1;
    }
    result bandit = {0}, full = {0};
    e = run_bandit(&o, &s, &bandit);
    if (e == BASE_OK && o.full) {
        e = run_full(&o, &s, &full);
    }
    if (e != BASE_OK) {
        pol_portfolio_free(bandit.pf);
        stream_free(&s);
        return 1;
    }
    pol_head_config hc = o.head;
    hc.dim = s.dim;
    hc.n_actions = o.open ? 1 : s.k;
    hc.action_dim = o.open ? s.k : 0;
    pol_head *h = NULL;
    if (pol_head_new(&hc, &h) == BASE_OK) {
        hc = *pol_head_get_config(h); /* resolved defaults, for the record */
    }
    pol_head_free(h);
    printf("{\"dataset\":\"%s\",\"seed\":%" PRIu64 ",\"learner\":\"%s\",\"explorer\":\"%s\","
           "\"epsilon\":%g,\"actions\":\"%s\",\"base\":\"%s\",\"n\":%u,\"d\":%u,\"k\":%u,"
           "\"progressive_accuracy\":%.4f,\"base_accuracy\":%.4f,",
           s.name, o.seed, pol_learner_name(hc.learner), pol_explorer_name(hc.explorer), hc.epsilon,
           o.open ? "open" : "closed", o.base_weak ? "weak" : "none", s.n, s.dim, s.k,
           bandit.accuracy, base_accuracy(&s));
    if (o.full) {
        printf("\"full_info_accuracy\":%.4f,", full.accuracy);
    } else {
        printf("\"full_info_accuracy\":null,");
    }
    print_portfolio(bandit.pf);
    printf("\"updates_per_sec\":%.0f,\"updates_per_cpu_sec\":%.0f,\"errors\":%" PRIu64 "}\n",
           bandit.seconds > 0 ? s.n / bandit.seconds : 0.0,
           bandit.cpu_seconds > 0 ? s.n / bandit.cpu_seconds : 0.0, bandit.errors + full.errors);
    pol_portfolio_free(bandit.pf);
    stream_free(&s);
    return bandit.errors + full.errors == 0 ? 0 : 1;
}

int rlfeed_bench_main(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "learn") == 0) {
        return bench_learn(argc, argv);
    }
    if (strcmp(argv[0], "features") == 0) {
        return rlfeed_bench_features(argc, argv);
    }
    fprintf(stderr, "rlfeed bench: unknown benchmark '%s' (try: learn, features, serve)\n",
            argv[0]);
    return 2;
}
