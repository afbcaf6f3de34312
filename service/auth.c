#include "service/auth.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/hset.h"
#include "base/log.h"
#include "reward/alarm.h"

#define GENERATIONS 3

typedef struct client {
    svc_client_config cfg;
    proto_mac_key *mk[SVC_CLIENT_KEYS_MAX]; /* cfg.key prepared: one per key */
    pthread_mutex_t lk;                     /* the outcome bucket */
    double tokens;
    int64_t refill_ms;
    bool alarm;              /* over its outcome cap lately (guarded by lk) */
    rwd_alarm rate;          /* CUSUM on its feedback per second (guarded by lk) */
    int64_t rate_sec;        /* the second being counted (guarded by lk) */
    uint64_t rate_count;     /* feedback in it so far (guarded by lk) */
    int64_t last_refused_ms; /* guarded by lk */
    atomic_uint_fast64_t alarms;
    atomic_uint_fast64_t accepted, unauthorized, forbidden, rate_limited;
} client;

struct svc_auth {
    bool enabled;
    bool ops_pages_open;
    int64_t window_ms;
    uint32_t n_clients;
    client *clients; /* [n_clients] */
    uint32_t n_policies;
    char policy_names[SVC_MAX_POLICIES][BASE_NAME_MAX + 1]; /* what the clients' masks index */
    atomic_uint_fast64_t unknown;

    pthread_mutex_t replay_lk;
    base_hset seen[GENERATIONS]; /* [0] the current generation */
    int64_t gen_start_ms;
    size_t replay_max;
    int64_t (*now_ms)(void); /* the wall clock proofs are checked against */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

base_err svc_auth_new(const svc_config *c, svc_auth **out)
{
    svc_auth *a = base_alloc_zero(1, sizeof(*a));
    if (a == NULL) {
        return BASE_ENOMEM;
    }
    a->enabled = c->auth;
    a->ops_pages_open = c->ops_pages_open;
    a->window_ms = c->auth_window_ms;
    a->replay_max = c->auth_replay_max;
    a->n_clients = c->n_clients;
    a->n_policies = c->n_policies;
    for (uint32_t i = 0; i < c->n_policies; i++) {
        memcpy(a->policy_names[i], c->policy[i].name, sizeof(a->policy_names[i]));
    }
    a->clients = base_alloc_zero(c->n_clients > 0 ? c->n_clients : 1, sizeof(client));
    if (a->clients == NULL) {
        base_free(a);
        return BASE_ENOMEM;
    }
    pthread_mutex_init(&a->replay_lk, NULL);
    for (int g = 0; g < GENERATIONS; g++) {
        base_hset_init(&a->seen[g], a->replay_max);
    }
    int64_t now = base_mono_ns() / 1000000;
    for (uint32_t i = 0; i < c->n_clients; i++) {
        client *cl = &a->clients[i];
        cl->cfg = c->client[i];
        pthread_mutex_init(&cl->lk, NULL);
        cl->tokens = cl->cfg.outcome_burst;
        cl->refill_ms = now;
        rwd_alarm_init(&cl->rate);
        cl->rate_sec = -1;
        for (uint32_t k = 0; k < cl->cfg.n_keys; k++) {
            cl->mk[k] = proto_mac_key_new(cl->cfg.key[k]);
            if (cl->mk[k] == NULL) {
                a->n_clients = i + 1; /* what svc_auth_free() must undo */
                svc_auth_free(a);
                return BASE_ENOMEM;
            }
        }
    }
    a->now_ms = wall_ms;
    a->gen_start_ms = wall_ms();
    *out = a;
    return BASE_OK;
}

void svc_auth_free(svc_auth *a)
{
    if (a == NULL) {
        return;
    }
    for (uint32_t i = 0; i < a->n_clients; i++) {
        pthread_mutex_destroy(&a->clients[i].lk);
        for (uint32_t k = 0; k < SVC_CLIENT_KEYS_MAX; k++) {
            proto_mac_key_free(a->clients[i].mk[k]);
        }
    }
    for (int g = 0; g < GENERATIONS; g++) {
        base_hset_fini(&a->seen[g]);
    }
    pthread_mutex_destroy(&a->replay_lk);
    base_free(a->clients);
    base_free(a);
}

bool svc_auth_enabled(const svc_auth *a)
{
    return a != NULL && a->enabled;
}

void svc_auth_set_clock(svc_auth *a, int64_t (*now_ms)(void))
{
    pthread_mutex_lock(&a->replay_lk);
    a->now_ms = now_ms;
    a->gen_start_ms = now_ms();
    pthread_mutex_unlock(&a->replay_lk);
}

bool svc_auth_ops_pages_open(const svc_auth *a)
{
    return !svc_auth_enabled(a) || a->ops_pages_open;
}

static client *find_client(svc_auth *a, const char *name)
{
    for (uint32_t i = 0; i < a->n_clients; i++) {
        if (strcmp(a->clients[i].cfg.name, name) == 0) {
            return &a->clients[i];
        }
    }
    return NULL;
}

/*
 * Remember @mac (only look, without @keep); false when it was seen already (a replay) or the
 * memory is full.
 */
static proto_errcode remember(svc_auth *a, const uint8_t *mac, int64_t now, bool keep,
                              proto_error *err)
{
    uint64_t key = 0;
    proto_errcode code = PROTO_E_NONE;

    memcpy(&key, mac, sizeof(key));
    key = key != 0 ? key : 1;
    pthread_mutex_lock(&a->replay_lk);
    while (now - a->gen_start_ms >= a->window_ms) {
        base_hset_fini(&a->seen[GENERATIONS - 1]);
        memmove(&a->seen[1], &a->seen[0], (GENERATIONS - 1) * sizeof(a->seen[0]));
        base_hset_init(&a->seen[0], a->replay_max);
        /* After a long idle spell, start the generation now rather than step by step. */
        a->gen_start_ms =
            now - a->gen_start_ms >= 2 * a->window_ms ? now : a->gen_start_ms + a->window_ms;
    }
    for (int g = 0; g < GENERATIONS && code == PROTO_E_NONE; g++) {
        if (base_hset_get(&a->seen[g], key, NULL)) {
            code = PROTO_E_UNAUTHORIZED;
            proto_error_set(err, code, "replayed request: this proof was already used");
        }
    }
    if (code == PROTO_E_NONE && keep) {
        base_err e = base_hset_put(&a->seen[0], key, 1);
        if (e != BASE_OK) {
            code = PROTO_E_UNAVAILABLE;
            proto_error_set(err, code,
                            e == BASE_ELIMIT ? "replay memory full (auth_replay_max); retry"
                                             : "out of memory for the replay memory; retry");
        }
    }
    pthread_mutex_unlock(&a->replay_lk);
    return code;
}

/* Who sent it: the client, or NULL with the refusal in @err (and *code). */
static client *authenticate(svc_auth *a, const proto_auth *proof, const uint8_t *msg, size_t len,
                            const svc_auth_http *http, proto_errcode *code, proto_error *err)
{
    client *cl = NULL;
    int64_t now = a->now_ms();

    *code = PROTO_E_UNAUTHORIZED;
    if (!proof->present) {
        proto_error_set(err, *code,
                        http != NULL ? "missing Authorization header (auth is on)"
                                     : "missing field 'auth' (auth is on)");
        atomic_fetch_add(&a->unknown, 1);
        return NULL;
    }
    cl = find_client(a, proof->client);
    if (cl == NULL) {
        proto_error_set(err, *code, "unknown client");
        atomic_fetch_add(&a->unknown, 1);
        return NULL;
    }
    int64_t skew = proof->ts_ms - now;
    if (skew > a->window_ms || skew < -a->window_ms) {
        proto_error_set(err, *code,
                        "stale request: ts is %lld ms from the server's clock (window %lld ms)",
                        (long long)skew, (long long)a->window_ms);
        goto refused;
    }
    bool ok = false;
    for (uint32_t k = 0; k < cl->cfg.n_keys && !ok; k++) {
        ok = http != NULL ? proto_auth_http_verify_with(cl->mk[k], proof, http->method,
                                                        http->target, http->body, http->body_len)
                          : proto_auth_verify_with(cl->mk[k], msg, len, proof);
    }
    if (!ok) {
        proto_error_set(err, *code, "wrong mac: not signed with a key of client %s", cl->cfg.name);
        goto refused;
    }
    *code = PROTO_E_NONE;
    return cl;
refused:
    atomic_fetch_add(&cl->unauthorized, 1);
    return NULL;
}

/*
 * The proof of @cl's request, authenticated and within its scopes, is used now: refused if it
 * was used before (a replay) or the memory is full. Only after the scope checks, so that a
 * refused request changes nothing, the replay memory included.
 */
static proto_errcode use_proof(svc_auth *a, client *cl, const proto_auth *proof, bool use,
                               proto_error *err)
{
    proto_errcode code = remember(a, proof->mac, a->now_ms(), use, err);
    if (code == PROTO_E_UNAUTHORIZED) {
        atomic_fetch_add(&cl->unauthorized, 1);
    }
    return code;
}

static uint32_t scope_of(proto_op op)
{
    switch (op) {
    case PROTO_OP_DECIDE:
    case PROTO_OP_LOG:
    case PROTO_OP_ACTIVATE:
        return SVC_SCOPE_DECIDE;
    case PROTO_OP_FEEDBACK:
        return SVC_SCOPE_FEEDBACK;
    case PROTO_OP_STATS:
    case PROTO_OP_HEALTH:
    case PROTO_OP_EXPLAIN:
        return SVC_SCOPE_OPS;
    case PROTO_OP_CLOCK:
        break;
    }
    return SVC_SCOPE_ADMIN;
}

/*
 * Clear @cl's cap alarm once SVC_CLIENT_ALARM_QUIET_MS passed without a refusal (at @now,
 * monotonic ms). Called with cl->lk held: by health (svc_auth_alarms) and by the next
 * refusal, so a later episode is raised, logged and counted as its own.
 */
static void clear_cap_alarm_if_quiet(client *cl, int64_t now)
{
    if (cl->alarm && now - cl->last_refused_ms >= SVC_CLIENT_ALARM_QUIET_MS) {
        cl->alarm = false;
        base_log(BASE_LOG_INFO, "client %s: alarm cleared: within its outcome cap for %d s",
                 cl->cfg.name, SVC_CLIENT_ALARM_QUIET_MS / 1000);
    }
}

/* One token of @cl's outcome bucket at the monotonic clock; false when empty. */
/* Return the token take_outcome() took for a request refused after it. */
static void give_back_outcome(client *cl)
{
    if (cl->cfg.outcome_rate_per_s <= 0.0) {
        return;
    }
    pthread_mutex_lock(&cl->lk);
    cl->tokens += 1.0;
    if (cl->tokens > cl->cfg.outcome_burst) {
        cl->tokens = cl->cfg.outcome_burst;
    }
    pthread_mutex_unlock(&cl->lk);
}

/* Take one of @cl's outcome tokens (only look, without @take); false when there is none. */
static bool take_outcome(client *cl, bool take)
{
    bool ok = true;
    if (cl->cfg.outcome_rate_per_s <= 0.0) {
        return true;
    }
    int64_t now = base_mono_ns() / 1000000;
    pthread_mutex_lock(&cl->lk);
    cl->tokens += (double)(now - cl->refill_ms) * cl->cfg.outcome_rate_per_s / 1000.0;
    if (cl->tokens > cl->cfg.outcome_burst) {
        cl->tokens = cl->cfg.outcome_burst;
    }
    cl->refill_ms = now;
    if (cl->tokens >= 1.0) {
        cl->tokens -= take ? 1.0 : 0.0;
    } else {
        ok = false;
        clear_cap_alarm_if_quiet(cl, now);
        cl->last_refused_ms = now;
        if (!cl->alarm) {
            cl->alarm = true;
            atomic_fetch_add(&cl->alarms, 1);
            base_log(BASE_LOG_WARN,
                     "client %s: alarm raised: over its outcome cap (%g per s, burst %g); its "
                     "feedback is refused as rate_limited",
                     cl->cfg.name, cl->cfg.outcome_rate_per_s, cl->cfg.outcome_burst);
        }
    }
    pthread_mutex_unlock(&cl->lk);
    return ok;
}

/*
 * Count one feedback of @cl at wall time @now_ms in the CUSUM (reward/alarm.h) on the square
 * root of its feedback per second: each second that ended (and, up to a minute of them, the
 * silent seconds after it) is one sample. Raised upward only: a client going quiet is no
 * alarm.
 */
static void watch_rate(client *cl, int64_t now_ms)
{
    int64_t sec = now_ms / 1000;
    pthread_mutex_lock(&cl->lk);
    if (cl->rate_sec >= 0 && sec > cl->rate_sec) {
        int64_t quiet = sec - cl->rate_sec - 1;
        bool was_up = cl->rate.state == RWD_ALARM_UP;
        /* The square root steadies Poisson-like counts: its spread hardly depends on the rate. */
        (void)rwd_alarm_add(&cl->rate, sqrt((double)cl->rate_count));
        for (int64_t i = 0; i < quiet && i < 60; i++) {
            (void)rwd_alarm_add(&cl->rate, 0.0);
        }
        /* Only "up" is an alarm here: a quiet spell's "down" is neither raised nor cleared. */
        bool up = cl->rate.state == RWD_ALARM_UP;
        if (up && !was_up) {
            atomic_fetch_add(&cl->alarms, 1);
            base_log(BASE_LOG_WARN,
                     "client %s: alarm raised: outcome rate far above its recent range (%" PRIu64
                     " in the last second, mean %.1f)",
                     cl->cfg.name, cl->rate_count, cl->rate.mean);
        } else if (was_up && !up) {
            base_log(BASE_LOG_INFO, "client %s: outcome rate alarm cleared", cl->cfg.name);
        }
        cl->rate_count = 0;
    }
    if (sec >= cl->rate_sec) {
        cl->rate_sec = sec;
        cl->rate_count++;
    }
    pthread_mutex_unlock(&cl->lk);
}

/*
 * Whether @cl may name @policy ("": every policy, as stats without one, or a page that shows
 * them all); if not, counted and said in @err.
 */
static bool policy_allowed(svc_auth *a, client *cl, const char *policy, proto_error *err)
{
    if (cl->cfg.all_policies) {
        return true;
    }
    bool allowed = false;
    if (policy[0] == '\0') {
        proto_error_set(err, PROTO_E_FORBIDDEN, "client %s may see only some policies: name one",
                        cl->cfg.name);
    } else {
        for (uint32_t i = 0; i < a->n_policies && !allowed; i++) {
            allowed =
                (cl->cfg.policy_mask >> i & 1) != 0 && strcmp(a->policy_names[i], policy) == 0;
        }
        if (!allowed) {
            proto_error_set(err, PROTO_E_FORBIDDEN, "client %s may not use policy %.64s",
                            cl->cfg.name, policy);
        }
    }
    if (!allowed) {
        atomic_fetch_add(&cl->forbidden, 1);
    }
    return allowed;
}

proto_errcode svc_auth_check(svc_auth *a, const proto_request *req, const uint8_t *msg, size_t len,
                             const svc_auth_http *http, proto_op op, const char *policy, bool use,
                             proto_error *err, bool *out_limited)
{
    proto_errcode code = PROTO_E_NONE;
    proto_auth hp;
    const proto_auth *proof = &req->auth;

    if (!svc_auth_enabled(a)) {
        return PROTO_E_NONE;
    }
    if (http != NULL) {
        memset(&hp, 0, sizeof(hp));
        if (http->header != NULL && proto_auth_http_parse(http->header, &hp, err) != BASE_OK) {
            atomic_fetch_add(&a->unknown, 1);
            return PROTO_E_UNAUTHORIZED;
        }
        proof = &hp;
    }
    client *cl = authenticate(a, proof, msg, len, http, &code, err);
    if (cl == NULL) {
        return code;
    }
    uint32_t scope = scope_of(op);
    bool in_scope = (cl->cfg.scopes & (scope | SVC_SCOPE_ADMIN)) != 0;
    if (!in_scope) {
        proto_error_set(err, PROTO_E_FORBIDDEN, "client %s may not %s", cl->cfg.name,
                        proto_op_name(op));
        atomic_fetch_add(&cl->forbidden, 1);
        return PROTO_E_FORBIDDEN;
    }
    if (op != PROTO_OP_HEALTH && op != PROTO_OP_CLOCK && !policy_allowed(a, cl, policy, err)) {
        return PROTO_E_FORBIDDEN;
    }
    /* The cap before the replay memory, which keeps only what passes: a refusal keeps nothing. */
    if (op == PROTO_OP_FEEDBACK && !take_outcome(cl, use)) {
        proto_error_set(err, PROTO_E_RATE_LIMITED, "client %s is over its outcome rate cap",
                        cl->cfg.name);
        atomic_fetch_add(&cl->rate_limited, 1);
        return PROTO_E_RATE_LIMITED;
    }
    code = use_proof(a, cl, proof, use, err);
    if (code != PROTO_E_NONE) {
        if (op == PROTO_OP_FEEDBACK && use) {
            give_back_outcome(cl); /* a replay or a full memory takes no token */
        }
        return code;
    }
    if (out_limited != NULL) {
        *out_limited = !cl->cfg.all_policies;
    }
    if (!use) {
        return PROTO_E_NONE; /* checked only: the request is not carried out */
    }
    if (op == PROTO_OP_FEEDBACK) {
        watch_rate(cl, a->now_ms());
    }
    atomic_fetch_add(&cl->accepted, 1);
    return PROTO_E_NONE;
}

proto_errcode svc_auth_check_scope(svc_auth *a, const svc_auth_http *http, uint32_t scope,
                                   const char *policy, bool use, proto_error *err)
{
    proto_errcode code = PROTO_E_NONE;
    proto_auth hp;

    if (!svc_auth_enabled(a)) {
        return PROTO_E_NONE;
    }
    memset(&hp, 0, sizeof(hp));
    if (http->header != NULL && proto_auth_http_parse(http->header, &hp, err) != BASE_OK) {
        atomic_fetch_add(&a->unknown, 1);
        return PROTO_E_UNAUTHORIZED;
    }
    client *cl = authenticate(a, &hp, NULL, 0, http, &code, err);
    if (cl == NULL) {
        return code;
    }
    if ((cl->cfg.scopes & (scope | SVC_SCOPE_ADMIN)) == 0) {
        proto_error_set(err, PROTO_E_FORBIDDEN, "client %s may not read this page", cl->cfg.name);
        atomic_fetch_add(&cl->forbidden, 1);
        return PROTO_E_FORBIDDEN;
    }
    if (!policy_allowed(a, cl, policy, err)) {
        return PROTO_E_FORBIDDEN;
    }
    code = use_proof(a, cl, &hp, use, err);
    if (code != PROTO_E_NONE) {
        return code;
    }
    if (use) {
        atomic_fetch_add(&cl->accepted, 1);
    }
    return PROTO_E_NONE;
}

uint32_t svc_auth_alarms(svc_auth *a, char (*out)[SVC_CLIENT_ALARM_MAX], uint32_t max)
{
    uint32_t n = 0;
    int64_t now = base_mono_ns() / 1000000;
    for (uint32_t i = 0; svc_auth_enabled(a) && i < a->n_clients; i++) {
        client *cl = &a->clients[i];
        pthread_mutex_lock(&cl->lk);
        clear_cap_alarm_if_quiet(cl, now);
        bool capped = cl->alarm, fast = cl->rate.state == RWD_ALARM_UP;
        pthread_mutex_unlock(&cl->lk);
        if (capped && n < max) {
            snprintf(out[n], SVC_CLIENT_ALARM_MAX, "client %s: over its outcome cap", cl->cfg.name);
        }
        n += capped;
        if (fast && n < max) {
            snprintf(out[n], SVC_CLIENT_ALARM_MAX, "client %s: outcome rate up", cl->cfg.name);
        }
        n += fast;
    }
    return n;
}

void svc_auth_stats(svc_auth *a, proto_client_stats *out, uint32_t max, uint32_t *n_out,
                    uint64_t *unknown)
{
    uint32_t n = 0;
    for (uint32_t i = 0; a != NULL && i < a->n_clients && n < max; i++, n++) {
        client *cl = &a->clients[i];
        memcpy(out[n].name, cl->cfg.name, sizeof(out[n].name));
        out[n].accepted = atomic_load(&cl->accepted);
        out[n].unauthorized = atomic_load(&cl->unauthorized);
        out[n].forbidden = atomic_load(&cl->forbidden);
        out[n].rate_limited = atomic_load(&cl->rate_limited);
        out[n].alarms = atomic_load(&cl->alarms);
    }
    *n_out = n;
    *unknown = a != NULL ? atomic_load(&a->unknown) : 0;
}

/* ------------------------------------------------------------------ kept across a restart */

/*
 * The kept memory: KEEP_MAGIC, the current generation's start (int64, ms), then per
 * generation, newest first, its count (uint64) and its keys (uint64 each); native byte
 * order, as it is read back by the same binary on the same machine.
 */
static const char KEEP_MAGIC[8] = {'r', 'l', 'f', 'r', 'p', 'l', 'y', '1'};

base_err svc_auth_keep(svc_auth *a, base_buf *out)
{
    base_err e = BASE_OK;
    pthread_mutex_lock(&a->replay_lk);
    int64_t start = a->gen_start_ms;
    e = base_buf_append(out, KEEP_MAGIC, sizeof(KEEP_MAGIC));
    if (e == BASE_OK) {
        e = base_buf_append(out, &start, sizeof(start));
    }
    for (int g = 0; g < GENERATIONS && e == BASE_OK; g++) {
        const base_hset *set = &a->seen[g];
        uint64_t n = set->n;
        e = base_buf_append(out, &n, sizeof(n));
        for (size_t i = 0; i < set->cap && e == BASE_OK; i++) {
            if (set->key[i] != 0) {
                e = base_buf_append(out, &set->key[i], sizeof(set->key[i]));
            }
        }
    }
    pthread_mutex_unlock(&a->replay_lk);
    return e;
}

base_err svc_auth_restore(svc_auth *a, const uint8_t *p, size_t n, uint64_t *out_n)
{
    uint64_t count[GENERATIONS];
    int64_t start = 0;
    size_t at = sizeof(KEEP_MAGIC) + sizeof(start);
    *out_n = 0;
    if (n < at || memcmp(p, KEEP_MAGIC, sizeof(KEEP_MAGIC)) != 0) {
        return BASE_EPROTO;
    }
    memcpy(&start, p + sizeof(KEEP_MAGIC), sizeof(start));
    /* The whole layout first: nothing is restored from bytes keep() did not write. */
    size_t first[GENERATIONS];
    for (int g = 0; g < GENERATIONS; g++) {
        if (n - at < sizeof(count[g])) {
            return BASE_EPROTO;
        }
        memcpy(&count[g], p + at, sizeof(count[g]));
        at += sizeof(count[g]);
        if (count[g] > (n - at) / sizeof(uint64_t)) {
            return BASE_EPROTO;
        }
        first[g] = at;
        at += (size_t)count[g] * sizeof(uint64_t);
    }
    if (at != n) {
        return BASE_EPROTO;
    }
    base_err e = BASE_OK;
    pthread_mutex_lock(&a->replay_lk);
    for (int g = 0; g < GENERATIONS && e == BASE_OK; g++) {
        for (uint64_t i = 0; i < count[g] && e == BASE_OK; i++) {
            uint64_t key;
            memcpy(&key, p + first[g] + i * sizeof(key), sizeof(key));
            e = key != 0 ? base_hset_put(&a->seen[g], key, 1) : BASE_OK;
            *out_n += e == BASE_OK && key != 0;
        }
    }
    /* Its generations keep their age: they rotate out as they would have. */
    a->gen_start_ms = start;
    pthread_mutex_unlock(&a->replay_lk);
    return e;
}
