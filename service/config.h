#ifndef SERVICE_CONFIG_H
#define SERVICE_CONFIG_H

/*
 * The daemon's configuration: an INI file read with libinih, then
 * command-line overrides. Documented with a complete example in
 * docs/configuration.md.
 *
 *   [server]
 *   url = ipc:///tmp/rlfeed.sock        ; REQ/REP endpoint(s), comma separated
 *   pull_url = ipc:///tmp/rlfeed-pull.sock
 *   http_url = http://127.0.0.1:9808    ; /healthz, /readyz, /metrics, /dashboard; empty: none
 *   redis =                             ; empty: start a private redis-server
 *
 *   [policy intents]
 *   dim = 64
 *   actions = intent_0, intent_1, intent_2
 *   signal.resolved = 1.0
 *   window_ms = 600000
 *
 * Every key is validated: unknown sections or keys, malformed numbers and
 * out-of-range values fail the load with the file, line and key in the
 * error message. A section header or key given twice is refused.
 *
 * Invariants of the load (service/config.c):
 * 1. A key's value reaches its parser once, whole: libinih hands each indented
 *    continuation line over as a further call with the same section and key, and
 *    these are joined first. A list (url; actions, no_explore, portfolio; a
 *    client's key, ops, policies) takes a line break as a comma, without making an
 *    empty item when the line ends in one; any other key refuses a continuation.
 * 2. Sections are opened in file order, also those with no keys (libinih reports
 *    keys only; svc_config_prescan() lists the headers): an empty [signal P.N] is an
 *    event signal of weight 1, an empty [policy P] or [client C] is checked as one
 *    that lacks its required keys, an unknown one is refused.
 * 3. [signal POLICY.NAME] belongs to the longest POLICY defined above it such that
 *    the section's name begins with "POLICY.".
 *
 * The loaded svc_config is immutable and may be read from any thread.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"
#include "policy/head.h"
#include "policy/portfolio.h"
#include "proto/auth.h"
#include "reward/join.h"

#define SVC_MAX_POLICIES 64
#define SVC_MAX_URLS 8
#define SVC_URL_MAX 512
#define SVC_HTTP_URL_DEFAULT "http://127.0.0.1:9808"
#define SVC_CHARTJS_DEFAULT "/usr/share/javascript/chart.js/chart.min.js" /* libjs-chart.js */
#define SVC_ROLLUP_KEEP_MAX 100800                                        /* 70 days of minutes */
#define SVC_MAX_CLIENTS 64
/*
 * libinih keeps at most 49 bytes of a section header's name and cuts longer ones without a
 * word: so a [policy NAME] or [client NAME] name holds at most 42 bytes, and a
 * [signal POLICY.NAME] at most 41 for POLICY and NAME together. Longer headers are refused.
 */
#define SVC_INI_SECTION_MAX 49
#define SVC_SECTION_NAME_MAX (SVC_INI_SECTION_MAX - 7)
#define SVC_INI_NAME_MAX 49 /* libinih names a continued key by its first 49 bytes only */
/* Sections in one file: [server], 64 policies of 32 signals each, 64 clients fit. */
#define SVC_INI_SECTIONS_MAX 4096
#define SVC_CONFIG_VALUE_MAX (4u << 20) /* one key's value, its continuation lines joined */
#define SVC_MAX_SEGMENTS 16             /* segment.NAME keys per policy */
#define SVC_OPEN_MAX_CANDIDATES 64      /* an open set's default max_candidates */
#define SVC_NO_EXPLORE_IDS_MAX 1024     /* no_explore ids of an open set */
#define SVC_CLIENT_KEYS_MAX 4           /* keys per client at once: room to rotate */

/* What a client may do ([client NAME] ops; docs/security.md). */
enum svc_scope {
    SVC_SCOPE_DECIDE = 1u << 0,   /* decide, log, activate */
    SVC_SCOPE_FEEDBACK = 1u << 1, /* feedback */
    SVC_SCOPE_OPS = 1u << 2,      /* stats, health, explain; HTTP metrics, dashboard, policies */
    SVC_SCOPE_ADMIN = 1u << 3,    /* all of the above, and clock (tests) */
};

/* A [client NAME] section: who may talk to rlfeedd when auth = on. */
typedef struct svc_client_config {
    char name[BASE_NAME_MAX + 1];
    uint32_t n_keys;
    uint8_t key[SVC_CLIENT_KEYS_MAX][PROTO_AUTH_KEY_BYTES]; /* derived signing keys */
    uint32_t scopes;                                        /* enum svc_scope bits */
    bool all_policies;                                      /* policies = * */
    uint64_t policy_mask;      /* bit i: policy[i] (resolved at load) */
    char policies[1024];       /* as configured */
    double outcome_rate_per_s; /* outcomes this client may post per second; 0: no cap */
    double outcome_burst;
} svc_client_config;

typedef struct svc_policy_config {
    char name[BASE_NAME_MAX + 1];
    uint32_t n_actions;                 /* 0 for an open set */
    char (*actions)[BASE_NAME_MAX + 1]; /* [n_actions], owned */
    /* The hash of the action names in their order ("a" and 16 hex digits), which checkpoints
     * and decision records carry (the head learns actions by position); "" for an open set.
     * Set by svc_config_actions_finish(). */
    char actions_hash[24];
    bool open_actions;       /* actions = open: head.action_dim features per candidate */
    uint32_t max_candidates; /* default: n_actions (capped at BASE_CAND_MAX); open: 64 */
    pol_head_config head;    /* dim, epsilon, temperature, learning rate, seed */
    char portfolio_spec[BASE_PF_MEMBERS_MAX + 1]; /* auto (default) | off | a member list */
    pol_portfolio_config portfolio; /* resolved from portfolio_spec and head at load */
    double portfolio_mix;           /* challengers' share cap, [0, 1]; < 0: default */
    uint32_t embedding_storage;     /* enum base_emb_storage of its records (f32) */
    rwd_spec reward;                /* signals, clip, default, window */
    uint32_t max_pending;           /* pending decisions in the join */
    double max_embedding_norm;      /* larger embeddings are out_of_range; 0: no cap */
    char *no_explore_spec;          /* as configured ("a, b"); owned, NULL: none */
    uint8_t *no_explore;            /* [n_actions] 1: never explored; owned, NULL: none */
    uint32_t n_no_explore_ids;      /* open sets: the candidate ids never explored */
    char (*no_explore_ids)[BASE_NAME_MAX + 1]; /* [n_no_explore_ids], owned, sorted */
    uint32_t n_segments;                       /* segment.NAME = BUDGET keys */
    char segment[SVC_MAX_SEGMENTS][BASE_NAME_MAX + 1];
    double segment_budget[SVC_MAX_SEGMENTS]; /* most exploration mass a decision may spend */
    char base_version[BASE_NAME_MAX + 1];    /* the frontend's base model, stamped on snapshots */
    uint32_t serve;                          /* enum base_slot serving by default; default online */
    double canary;        /* with serve = production, the share the online slot serves; default 0 */
    uint64_t def_version; /* the policy catalog's version of this definition; 0: the file's */
    bool retired;         /* the catalog retired it (rlfeedd: never served) */
} svc_policy_config;

typedef struct svc_config {
    char urls[SVC_MAX_URLS][SVC_URL_MAX]; /* REQ/REP listen URLs */
    uint32_t n_urls;
    char pull_url[SVC_URL_MAX];  /* "" = no PULL socket */
    char http_url[SVC_URL_MAX];  /* /healthz, /readyz, /metrics; "" = none */
    char redis_url[SVC_URL_MAX]; /* "" = embedded redis-server */
    char redis_bin[SVC_URL_MAX]; /* default "redis-server" */
    char data_dir[SVC_URL_MAX];  /* embedded Redis data dir, "" = temporary */
    char appendfsync[16];        /* always (default) | everysec | no */
    char log_format[8];          /* text (default) | json: base_log's lines */
    bool insecure; /* plain TCP or HTTP listeners beyond loopback allowed; default false */
    char tls_cert[SVC_URL_MAX];      /* PEM certificate (chain) of TLS listeners; "" = no TLS */
    char tls_key[SVC_URL_MAX];       /* its PEM key; "" = in tls_cert */
    char tls_client_ca[SVC_URL_MAX]; /* PEM CAs clients' certificates must chain to; "" = none */
    uint32_t ipc_mode;               /* file mode of ipc:// sockets, default 0600 */
    char ipc_group[SVC_URL_MAX];     /* group of ipc:// sockets, "" = the process's */
    uint32_t max_message_bytes;      /* NNG_OPT_RECVMAXSZ, default 1 MiB */
    uint32_t contexts;               /* REP contexts per URL, default 32 */
    uint32_t reply_timeout_ms;       /* longest a reply waits for its peer, default 1000 */
    uint32_t write_queue;            /* storage queue capacity, default 65536 */
    uint32_t group_commit_us;  /* writer: wait for a fuller batch of lazy records, default 1000 */
    uint32_t redis_timeout_ms; /* per command, default 2000 */
    uint32_t ack_timeout_ms;   /* feedback waits this long for Redis, default 1000 */
    uint32_t replicas_ack;     /* acknowledged writes wait for this many replicas; default 0 */
    uint32_t replicas_ack_timeout_ms; /* ... this long at most (WAIT), default 500 */
    char instance_id[SVC_URL_MAX];    /* lease owner name, "" = "<host>:<first url>" */
    uint32_t lease_ms;                /* policy ownership lease, default 10000 */
    bool standby; /* a policy another instance owns waits for its lease; default off: refused */
    bool shared;  /* every instance serves every policy, following those others own; off */
    uint32_t snapshot_interval_ms; /* checkpoint at least this often; default 10000 */
    uint32_t snapshot_every;       /* ... or after this many updates; default 10000 */
    uint64_t retention_ms;         /* stream entries kept at least; default 7 days */
    uint32_t keep_snapshots;       /* newest snapshots kept (plus pinned); default 5 */
    uint32_t tick_ms;              /* join expiry cadence, default 20 */
    uint32_t registry_poll_ms;     /* how often the registry is read, default 250 */
    uint32_t rollup_period_ms;     /* one dashboard rollup per policy this often, default 60000 */
    uint32_t rollup_keep;          /* rollups kept per policy, default 10080 (7 days) */
    char dashboard_chartjs[SVC_URL_MAX]; /* Chart.js file /dashboard/chart.js serves */
    bool auth;                           /* requests must carry a client's proof; default off */
    uint32_t auth_window_ms;             /* clock skew a proof may have, default 30000 */
    uint32_t auth_replay_max;            /* proofs remembered per window, default 1000000 */
    bool ops_pages_open;                 /* auth = on: /metrics, /dashboard without a proof */
    char pseudonym_key[SVC_URL_MAX];     /* file of the key ids are pseudonymised with; "": Redis */
    uint32_t n_clients;
    svc_client_config client[SVC_MAX_CLIENTS];
    /*
     * The policies: the file's, then (in rlfeedd) those the policy catalog adds at run time
     * (service/catalog.c): an entry is filled before the count that covers it is raised, and
     * never moved or removed, so any thread may read entries below the count it loaded.
     */
    _Atomic uint32_t n_policies;
    svc_policy_config policy[SVC_MAX_POLICIES];
    /*
     * standby or shared = on: the policies another instance owns that this one stands by
     * for: those whose lease another held at start, moved out of policy[] by the daemon
     * before the engine is built, then those the catalog creates while another holds their
     * lease (svc_lease_stand_by()). Room for SVC_MAX_POLICIES; NULL in neither mode. An
     * entry is filled before the count that covers it is raised and never moved, so any
     * thread may read the entries below the count it loaded; then read-only but for the
     * flags. The catalog thread takes each over when its lease can be had.
     */
    _Atomic uint32_t n_waiting;
    struct svc_waiting *waiting;
    /*
     * shared = on: by policy[] slot, whether another instance held its lease at start, so
     * that this one follows it (svc_lease_split); the lease thread renews only the others.
     * NULL when shared is off. Cleared by the catalog thread when it takes a policy over.
     */
    struct svc_following *following;
} svc_config;

/* shared = on: one policy[] slot's follower flag (svc_config.following). */
typedef struct svc_following {
    _Atomic bool on;
    char holder[SVC_URL_MAX]; /* the owner when this instance started following (read once) */
} svc_following;

/* A policy this instance stands by for (standby = on). */
typedef struct svc_waiting {
    svc_policy_config cfg;    /* its definition; moved into policy[] at takeover */
    char holder[SVC_URL_MAX]; /* the instance holding its lease, as last found: the accessors */
    _Atomic bool taken;       /* served by this instance now (or given up) */
    _Atomic bool retired;     /* retired in the catalog: unknown, not stood by for */
} svc_waiting;

/* @w's holder as last found into @out (cut to @size). Any thread. */
void svc_waiting_holder(const svc_waiting *w, char *out, size_t size);

/* Record @holder as @w's holder; true if that changed it. The catalog thread. */
bool svc_waiting_set_holder(svc_waiting *w, const char *holder);

/* shared = on: whether this instance follows policy[@i] (another instance owns it). */
static inline bool svc_config_follows(const svc_config *c, uint32_t i)
{
    return c->following != NULL && atomic_load(&c->following[i].on);
}

/* The waiting entry named @name that is neither taken nor retired, or NULL. Any thread. */
const svc_waiting *svc_config_waiting(const svc_config *c, const char *name);

/*
 * svc_config_load() - parse the INI file at @path into @out (zeroed first,
 * defaults applied). On failure @errbuf names file:line and the problem, and
 * *out holds nothing to free.
 * Return: BASE_OK; BASE_EIO if the file cannot be read; BASE_EINVAL for
 *         any invalid content; BASE_ENOMEM.
 */
base_err svc_config_load(const char *path, svc_config *out, char *errbuf, size_t errlen);

/* Same, from a string (tests). */
base_err svc_config_load_string(const char *text, svc_config *out, char *errbuf, size_t errlen);

/*
 * svc_config_apply_flag() - override a loaded config with the command-line flag
 * --@flag @value. Each flag is parsed as the [server] key it overrides: "url" (a list, comma
 * separated, that replaces the file's whole list; at least one URL), "pull-url" (pull_url),
 * "http-url" (http_url), "redis", "data-dir" (data_dir), "appendfsync" and
 * "log-format" (log_format).
 * @c: a loaded config   @flag: without the leading "--" (borrowed)   @value: borrowed
 * On failure @c is unchanged and @errbuf names the flag.
 * Return: BASE_OK; BASE_EINVAL for another flag or an invalid value.
 */
base_err svc_config_apply_flag(svc_config *c, const char *flag, const char *value, char *errbuf,
                               size_t errlen);

/*
 * svc_config_check_exposure() - whether @c would take requests in the clear from beyond
 * this machine: a REQ/REP or PULL URL of a plain TCP transport (tcp://, tcp4://, tcp6://,
 * ws://) or an http:// http_url whose host is not a loopback address (127.0.0.0/8, ::1,
 * localhost). Names other than localhost, an empty host and "*" count as beyond. Such
 * a config is refused unless insecure = true. Call after the command-line flags.
 * @exposed: every such URL, as "URL, URL and URL" (may be NULL)
 * Return: BASE_OK (nothing exposed, or insecure = true: then *@exposed says what is);
 *         BASE_EINVAL with the reason in @errbuf.
 */
base_err svc_config_check_exposure(const svc_config *c, char *exposed, size_t exposed_len,
                                   char *errbuf, size_t errlen);

/*
 * svc_config_exposure_warning() - with insecure = true, what rlfeedd logs at start: the
 * same sentence as the refusal's, naming every exposed listener. False (@out untouched)
 * when none is.
 */
bool svc_config_exposure_warning(const svc_config *c, char *out, size_t len);

/* The gid of [server] ipc_group; false when it is "" or names no group here. */
bool svc_config_ipc_gid(const svc_config *c, gid_t *out);

/*
 * The auth keys of [server] (auth, auth_window_ms, auth_replay_max) and the keys of a
 * [client NAME] section (service/config_client.c). Return: 1 taken, 0 failed (the reason
 * in @errbuf), -1 (server) not an auth key.
 */
int svc_config_auth_key(svc_config *c, const char *k, const char *v, char *errbuf, size_t errlen);
int svc_config_client_key(svc_config *c, const char *client, const char *k, const char *v,
                          char *errbuf, size_t errlen);
/*
 * svc_config_client_open() - the [client @name] header: checks the name and adds the client
 * (with no keys yet) unless it is there. Return: BASE_OK; BASE_EINVAL, the reason in @errbuf.
 */
base_err svc_config_client_open(svc_config *c, const char *name, char *errbuf, size_t errlen);

/*
 * svc_config_finish() - after the file is parsed (service/config_whole.c): defaults that
 * depend on other keys, and the checks that need the whole configuration (each policy's
 * head, spec, portfolio and actions; the clients). Return: BASE_OK; BASE_EINVAL, the reason
 * in @errbuf.
 */
base_err svc_config_finish(svc_config *c, char *errbuf, size_t errlen);

/*
 * A policy's exploration keys (service/config_explore.c): 1 taken, 0 failed (the reason in
 * @errbuf), -1 not one of them. svc_config_explore_finish() resolves them once the file is
 * read (action names to indexes).
 */
int svc_config_explore_key(svc_policy_config *p, const char *k, const char *v, char *errbuf,
                           size_t errlen);
base_err svc_config_explore_finish(svc_config *c, char *errbuf, size_t errlen);

/*
 * A policy's action-set keys (service/config_actions.c: actions, action_dim,
 * interaction_dim): 1 taken, 0 failed, -1 not one of them. svc_config_actions_finish()
 * checks them once the section is read, sets head.n_actions and the default
 * max_candidates.
 */
int svc_config_actions_key(svc_policy_config *p, const char *k, const char *v, char *errbuf,
                           size_t errlen);
base_err svc_config_actions_finish(svc_policy_config *p, char *errbuf, size_t errlen);

/*
 * Whether a record or a snapshot that carries the action-list hash @acts ("": written before
 * they carried one, taken by its shape alone) indexes @c's list of actions.
 */
static inline bool svc_config_actions_fit(const svc_policy_config *c, const char *acts)
{
    return acts[0] == '\0' || strcmp(acts, c->actions_hash) == 0;
}

/* Resolve and check the clients once the whole file is read. */
base_err svc_config_clients_finish(svc_config *c, char *errbuf, size_t errlen);

/*
 * svc_config_check_tls() - TLS listeners (tls+tcp://, wss://, https://) need tls_cert, and
 * tls_key and tls_client_ca need it too; after the command-line flags (which may replace a
 * TLS listener of the file by another). The files are read at start (service/tls.h).
 * Return: BASE_OK; BASE_EINVAL, the reason in @errbuf.
 */
base_err svc_config_check_tls(const svc_config *c, char *errbuf, size_t errlen);

/*
 * svc_config_check_storage() - what the storage settings need of each other, after the
 * command-line flags: replicas_ack > 0 needs a redis URL (the private redis-server has no
 * replicas). BASE_EINVAL with the reason in @errbuf.
 */
base_err svc_config_check_storage(const svc_config *c, char *errbuf, size_t errlen);

/* Whether @u is a URL rlfeedd can listen on (url, pull_url); an http_url. */
/*
 * Value parsers (service/config_values.c): false, and *out untouched, for a value that is
 * not one. Numbers are decimal and within [lo, hi]; a mode is octal and gives its owner
 * read and write; a bool is "true" or "false"; copy_str fits @v in @size bytes; parse_urls
 * splits a list (commas and blanks) of at most SVC_MAX_URLS listen URLs; utf8_value says
 * why in @why.
 */
bool svc_config_parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out);
bool svc_config_parse_i64(const char *v, int64_t lo, int64_t hi, int64_t *out);
bool svc_config_parse_double(const char *v, double lo, double hi, double *out);
bool svc_config_parse_mode(const char *v, uint32_t *out);
bool svc_config_parse_bool(const char *v, bool *out);
bool svc_config_copy_str(char *dst, size_t size, const char *v);
bool svc_config_parse_urls(const char *v, char (*urls)[SVC_URL_MAX], uint32_t *out_n);
bool svc_config_utf8_value(const char *v, char *why, size_t whylen);
bool svc_config_listen_url_ok(const char *u);
bool svc_config_http_url_ok(const char *u);

/* The section headers of a config file, in file order, each once (svc_config_prescan()). */
typedef struct svc_config_sections {
    char (*name)[SVC_INI_SECTION_MAX + 1]; /* [n], owned */
    uint32_t n;
} svc_config_sections;

/*
 * svc_config_prescan() - the lines of @text, or of file @fp (left at its start), checked for
 * what libinih cuts or hides: a section header longer than SVC_INI_SECTION_MAX bytes or
 * without its closing "]", one given twice, one indented under a key (libinih would take
 * it as the key's next line), more than SVC_INI_SECTIONS_MAX of them, and a key given
 * twice in one section. On success the headers, in file order, into @out (free with
 * svc_config_sections_fini()); on failure @out holds nothing.
 * Return: BASE_OK; BASE_EINVAL with the line in @errbuf; BASE_ENOMEM.
 */
base_err svc_config_prescan(const char *text, FILE *fp, svc_config_sections *out, char *errbuf,
                            size_t errlen);
void svc_config_sections_fini(svc_config_sections *s); /* accepts a zeroed one */

/* The client named @name, or NULL. */
const svc_client_config *svc_config_client(const svc_config *c, const char *name);

/* Frees what the config owns. Accepts a zeroed config. */
void svc_config_fini(svc_config *c);
/* Frees what one policy's config owns (its arrays), leaving them NULL. */
void svc_policy_config_fini(svc_policy_config *p);

/*
 * Policies as catalog text (service/config_catalog.c; docs/operations.md, "Policies at run
 * time").
 * svc_config_policy_text() - append to @out the lines of @text (a whole config file) that
 * belong to policy @name: its [policy NAME] section and its [signal NAME.SIGNAL] sections,
 * wherever they are in the file. Return: BASE_OK; BASE_EINVAL if @text has no [policy NAME];
 * BASE_ENOMEM or BASE_ELIMIT from @out.
 * svc_config_check_policy_text() - whether @text is a policy definition on its own: only
 * [policy NAME] and [signal NAME.SIGNAL] sections, exactly one policy, and it loads as a
 * config would (every check of svc_config_load()). Its name into @out_name.
 * Return: BASE_OK; BASE_EINVAL with the reason in @errbuf; BASE_ENOMEM.
 */
base_err svc_config_policy_text(const char *text, const char *name, base_buf *out);
base_err svc_config_check_policy_text(const char *text, char *out_name, size_t name_size,
                                      char *errbuf, size_t errlen);

/* The policy named @name, or NULL. */
const svc_policy_config *svc_config_policy(const svc_config *c, const char *name);

#endif
