#include "tools/sim.h"
#include "tools/sim_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/record.h"
#include "bench/dataset.h"
#include "client/rlfeed_client.h"

static const char usage_text[] =
    "usage: rlfeed sim [options]\n"
    "  --url URL            service (default $RLFEED_URL or " RLFEED_CLIENT_DEFAULT_URL ");\n"
    "                       with $RLFEED_KEY set, requests are signed with that key file\n"
    "  --policy NAME        policy (default intents)\n"
    "  --data CSV           header line, then label,feature,... rows (default: synthetic\n"
    "                       intents, 8 classes x 24 features)\n"
    "  --n N                interactions (default 60000)\n"
    "  --clients C          concurrent frontends, one thread + connection each (default 4)\n"
    "  --block B            interactions per output row (default 5000)\n"
    "  --seed S             seed of data, base model, order and feedback (default 1)\n"
    "  --dim D              embedding dimension (default 64)\n"
    "  --actions-prefix P   action ids are P0..P{K-1} (default intent_)\n"
    "  --base-accuracy A    target accuracy of the frozen base model (default 0.68)\n"
    "  --thumbs-rate R      probability of a thumbs signal (default 0.3)\n"
    "  --thumbs-noise Q     probability a thumbs signal is flipped (default 0.1)\n"
    "  --turns T            interactions per conversation (default 1: none); with T > 1\n"
    "                       \"resolved\" is sent once per conversation, by conversation_id\n"
    "  --delay-ms D         post each outcome uniform [0, D] ms after its decide\n"
    "                       (default 0); keep D below the policy's window_ms\n"
    "  --timeout-ms N       per request send/receive bound (default 5000)\n"
    "serving slots (through Redis: `rlfeed serve` and `rlfeed promote`, docs/promotion.md):\n"
    "  --redis URL          the daemon's Redis (default $RLFEED_REDIS; `rlfeed stats`\n"
    "                       shows it as storage.url)\n"
    "  --serve MODE         serve from online or production (set in the registry)\n"
    "  --canary C           with production, the share the online slot serves\n"
    "  --promote-at N       run `rlfeed promote` once N interactions are done\n"
    "                       (repeatable, up to 8)\n";

const char *rlfeed_sim_usage(void)
{
    return usage_text;
}

/*
 * Match "--name VALUE" or "--name=VALUE" at argv[*i]. Returns 1 and *out_val
 * on a match (advancing *i past a separate value), -1 if the value is
 * missing, 0 if argv[*i] is another option.
 */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **out_val)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    int rc = 0;

    if (strncmp(a, name, n) == 0) {
        if (a[n] == '=') {
            *out_val = a + n + 1;
            rc = 1;
        } else if (a[n] == '\0') {
            rc = -1;
            if (*i + 1 < argc) {
                *i += 1;
                *out_val = argv[*i];
                rc = 1;
            }
        }
    }
    return rc;
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;
    bool ok = false;

    if (s != NULL && s[0] >= '0' && s[0] <= '9') {
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0' && v >= lo && v <= hi) {
            *out = v;
            ok = true;
        }
    }
    return ok;
}

static bool parse_prob(const char *s, bool open_interval, double *out)
{
    char *end = NULL;
    double v;
    bool ok = false;

    if (s != NULL && s[0] != '\0') {
        errno = 0;
        v = strtod(s, &end);
        if (errno == 0 && *end == '\0' && v >= 0.0 && v <= 1.0 &&
            (!open_interval || (v > 0.0 && v < 1.0))) {
            *out = v;
            ok = true;
        }
    }
    return ok;
}

enum opt_kind { OPT_STR, OPT_U64, OPT_U32, OPT_INT, OPT_PROB, OPT_PROB_OPEN };

typedef struct opt_spec {
    const char *name;
    enum opt_kind kind;
    void *dst;   /* const char **, uint64_t *, uint32_t *, int * or double * */
    uint64_t lo; /* integer kinds: inclusive bounds */
    uint64_t hi;
} opt_spec;

static bool opt_store(const opt_spec *s, const char *v)
{
    uint64_t u = 0;
    bool ok = true;

    switch (s->kind) {
    case OPT_STR:
        *(const char **)s->dst = v;
        break;
    case OPT_U64:
        ok = parse_u64(v, s->lo, s->hi, s->dst);
        break;
    case OPT_U32:
        ok = parse_u64(v, s->lo, s->hi, &u);
        *(uint32_t *)s->dst = (uint32_t)u;
        break;
    case OPT_INT:
        ok = parse_u64(v, s->lo, s->hi, &u);
        *(int *)s->dst = (int)u;
        break;
    case OPT_PROB:
    case OPT_PROB_OPEN:
        ok = parse_prob(v, s->kind == OPT_PROB_OPEN, s->dst);
        break;
    }
    return ok;
}

/* Returns 0 to run, 1 after --help, 2 on a usage error (reported on stderr). */
int sim_parse_opts(int argc, char **argv, sim_opts *o)
{
    uint64_t promote_at = 0;
    const opt_spec specs[] = {
        {"--url", OPT_STR, &o->url, 0, 0},
        {"--policy", OPT_STR, &o->policy, 0, 0},
        {"--data", OPT_STR, &o->data, 0, 0},
        {"--actions-prefix", OPT_STR, &o->prefix, 0, 0},
        {"--n", OPT_U64, &o->n, 1, SIM_MAX_N},
        {"--block", OPT_U64, &o->block, 1, SIM_MAX_N},
        {"--seed", OPT_U64, &o->seed, 0, UINT64_MAX},
        {"--clients", OPT_U32, &o->clients, 1, SIM_MAX_CLIENTS},
        {"--dim", OPT_U32, &o->dim, 1, BASE_DIM_MAX},
        {"--turns", OPT_U32, &o->turns, 1, SIM_MAX_TURNS},
        {"--delay-ms", OPT_U64, &o->delay_ms, 0, SIM_MAX_DELAY_MS},
        {"--timeout-ms", OPT_INT, &o->timeout_ms, 1, 3600000},
        {"--base-accuracy", OPT_PROB_OPEN, &o->base_acc, 0, 0},
        {"--thumbs-rate", OPT_PROB, &o->thumbs_rate, 0, 0},
        {"--thumbs-noise", OPT_PROB, &o->thumbs_noise, 0, 0},
        {"--redis", OPT_STR, &o->redis, 0, 0},
        {"--serve", OPT_STR, &o->serve, 0, 0},
        {"--canary", OPT_STR, &o->canary, 0, 0},
        {"--promote-at", OPT_U64, &promote_at, 1, SIM_MAX_N},
    };
    const size_t n_specs = sizeof(specs) / sizeof(specs[0]);
    int rc = 2;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        size_t s = 0;
        int m = 0;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            rc = 1;
            goto done;
        }
        while (s < n_specs && m == 0) {
            m = opt_value(argc, argv, &i, specs[s].name, &v);
            s += m == 0;
        }
        if (m == 0) {
            fprintf(stderr, "rlfeed sim: unknown argument '%s'\n", a);
            goto done;
        }
        if (m < 0) {
            fprintf(stderr, "rlfeed sim: %s needs a value\n", a);
            goto done;
        }
        if (!opt_store(&specs[s], v)) {
            fprintf(stderr, "rlfeed sim: bad value '%s' for %s\n", v, specs[s].name);
            goto done;
        }
        if (specs[s].dst == &promote_at) {
            if (o->n_promote == SIM_MAX_PROMOTIONS) {
                fprintf(stderr, "rlfeed sim: at most %u --promote-at\n", SIM_MAX_PROMOTIONS);
                goto done;
            }
            o->promote_at[o->n_promote++] = promote_at;
        }
    }
    if (o->serve != NULL && strcmp(o->serve, "online") != 0 &&
        strcmp(o->serve, "production") != 0) {
        fprintf(stderr, "rlfeed sim: --serve is online or production, not '%s'\n", o->serve);
        goto done;
    }
    double c = 0.0;
    if (o->canary != NULL && !parse_prob(o->canary, false, &c)) {
        fprintf(stderr, "rlfeed sim: --canary is a share in [0, 1], not '%s'\n", o->canary);
        goto done;
    }
    if (o->redis == NULL || o->redis[0] == '\0') {
        o->redis = getenv("RLFEED_REDIS");
    } else if (setenv("RLFEED_REDIS", o->redis, 1) != 0) {
        /* The child rlfeed commands find it there, not on a command line others can read. */
        fprintf(stderr, "rlfeed sim: cannot set RLFEED_REDIS\n");
        goto done;
    }
    if ((o->serve != NULL || o->canary != NULL || o->n_promote > 0) &&
        (o->redis == NULL || o->redis[0] == '\0')) {
        fprintf(stderr, "rlfeed sim: --serve, --canary and --promote-at need --redis URL (or "
                        "$RLFEED_REDIS)\n");
        goto done;
    }
    for (uint32_t k = 1; k < o->n_promote; k++) {
        if (o->promote_at[k] <= o->promote_at[k - 1]) {
            fprintf(stderr, "rlfeed sim: --promote-at points must increase\n");
            goto done;
        }
    }
    rc = 0;

done:
    return rc;
}
