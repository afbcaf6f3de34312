#ifndef PROTO_STATS_H
#define PROTO_STATS_H

/*
 * The stats reply (docs/protocol.md section 6), encoded from and decoded into plain
 * structs: the daemon fills a proto_stats from its counters and proto_reply_stats() writes
 * it; clients read it with proto_stats_decode().
 *
 *     {"ok":true,
 *      "policies":{"faq":{"decisions":10, ..., "model_checksum":"895ffd2426749cd7", ...,
 *                         "join":{"pending":2, ..., "latency":{"lt_1s":3, ...}}}},
 *      "rejected":{"bad_request":1},
 *      "storage":{"redis":"up", "queue_depth":0, "queue_capacity":65536, "written":22,
 *                 "failed":0, "trimmed":0, "audit_failed":0, "url":"tcp://127.0.0.1:40123"}}
 *
 * Invariants:
 * 1. Keys are written in one fixed order (that of docs/protocol.md's table); 64-bit
 *    checksums travel as 16 lowercase hex digits.
 * 2. "rejected" holds only the codes with a non-zero count.
 * 3. The decoder ignores keys it does not know (later versions add counters); a known key
 *    with a value of the wrong type is an error; an absent one reads as 0 or "".
 *
 * Limits: a decoded reply holds at most PROTO_STATS_MAX_POLICIES policies.
 * Thread-safety: every function is reentrant.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/record.h"
#include "proto/errors.h"
#include "proto/reply.h"

#define PROTO_URL_MAX 511             /* bytes of storage.url */
#define PROTO_OWNER_MAX 200           /* bytes of an instance id (storage/store.h STO_OWNER_MAX) */
#define PROTO_STATS_MAX_POLICIES 1024 /* policies a decoder accepts in one reply */
#define PROTO_LATENCY_BUCKETS 8       /* <1 s, <10 s, <1 min, <10 min, <1 h, <6 h, <1 d, >= 1 d */

/* The join's health of one policy: "join" in the stats reply. */
typedef struct proto_join_health {
    uint64_t pending;                        /* decisions waiting (active or deferred) */
    uint64_t deferred;                       /* of which not yet activated */
    uint64_t joined;                         /* joined examples emitted */
    uint64_t defaulted;                      /* emitted with no outcome, default reward */
    uint64_t unknown;                        /* emitted with no outcome, as unknown */
    uint64_t not_activated;                  /* deferred decisions dropped unactivated */
    uint64_t activations;                    /* successful activations */
    uint64_t dangling;                       /* early outcomes that never found a decision */
    uint64_t status[PROTO_ST_COUNT];         /* outcomes by status */
    uint64_t latency[PROTO_LATENCY_BUCKETS]; /* decision -> outcome time of applied ones */
} proto_join_health;

/* What one serving slot did: an entry of "slots" ("online", "production"). */
typedef struct proto_slot_stats {
    uint64_t decisions;     /* decide requests it served */
    uint64_t joined;        /* joined examples of its decisions learned from */
    double mean_reward;     /* their mean reward */
    uint64_t model_version; /* the version it serves now (production: 0 = the base model) */
} proto_slot_stats;

#define PROTO_SLOTS 2 /* online, production (enum base_slot) */

#define PROTO_PORTFOLIO_MAX 8 /* members of a policy's portfolio (POL_PORTFOLIO_MAX) */

/* One member of the online slot's portfolio: an entry of "portfolio"."members". */
typedef struct proto_member_stats {
    char name[64];     /* "ridge/ucb:0.25" */
    bool live;         /* still learning and scored; false: dropped */
    double estimate;   /* its progressive value estimate (doubly robust) */
    double vs_serving; /* mean difference to the serving member */
    double se;         /* standard error of vs_serving */
    double share;      /* share of the online slot's pmf it serves */
    uint64_t updates;  /* examples its learner applied */
} proto_member_stats;

/* The online slot's portfolio (docs/algorithms.md, "Portfolio"). */
typedef struct proto_portfolio_stats {
    char serving[64];  /* the serving member's name */
    uint64_t switches; /* times the serving member changed */
    uint32_t live;     /* members still live */
    uint32_t n_members;
    proto_member_stats member[PROTO_PORTFOLIO_MAX];
} proto_portfolio_stats;

/* One entry of a policy's "exploration": what decisions of a segment spent exploring. */
#define PROTO_STATS_MAX_SEGMENTS 17
typedef struct proto_segment_stats {
    char name[BASE_NAME_MAX + 1]; /* "*": no segment, or one the policy does not configure */
    uint64_t decisions;
    double mean_explore; /* mean of 1 - the largest probability of the pmf served */
} proto_segment_stats;

/* The counters of one policy: an entry of "policies". */
typedef struct proto_policy_stats {
    char name[BASE_NAME_MAX + 1];
    uint64_t decisions;
    uint64_t logged;
    uint64_t unlogged;
    uint64_t overflow;
    uint64_t feedback;
    uint64_t duplicates;
    uint64_t unknown_event;
    uint64_t pending;
    uint64_t joined;
    uint64_t defaulted;
    double mean_reward;
    uint64_t updates;
    uint64_t learn_errors;
    uint64_t store_errors;
    uint64_t snapshots;
    uint64_t model_version;
    uint64_t model_checksum; /* sent as 16 hex digits */
    uint32_t dim;
    char last_applied_id[BASE_STREAM_ID_MAX + 1];
    uint64_t next_lsn;
    uint64_t learn_trace; /* sent as 16 hex digits */
    char reward_version[BASE_NAME_MAX + 1];
    char serve[16];                  /* the slot serving by default: "online" or "production" */
    double canary;                   /* with serve = production, the online slot's share */
    uint64_t registry_errors;        /* registry reads or production loads that failed */
    char reward_alarm[8];            /* "ok", "up" or "down" (reward/alarm.h) */
    uint64_t reward_alarms;          /* times it was raised */
    char role[16];                   /* "owner" or (shared = on) "follower" */
    char owner[PROTO_OWNER_MAX + 1]; /* the owning instance's id ("" if not known yet) */
    uint64_t forwarded;              /* a follower's records stored in the owner's inbox */
    uint64_t inbox;                  /* an owner's inbox entries taken */
    uint64_t inbox_bad;              /* ... that did not decode, skipped */
    uint64_t inbox_conflicts;        /* ... decisions under an event id another one holds */
    proto_join_health join;
    proto_slot_stats slots[PROTO_SLOTS]; /* by enum base_slot */
    proto_portfolio_stats portfolio;
    uint32_t n_segments; /* "exploration": [0] "*" (no or an unconfigured segment), then each */
    proto_segment_stats segments[PROTO_STATS_MAX_SEGMENTS];
} proto_policy_stats;

/* "storage" */
typedef struct proto_storage_stats {
    proto_redis_state redis;
    uint64_t queue_depth;
    uint64_t queue_capacity;
    uint64_t written;
    uint64_t failed;
    uint64_t trimmed;
    uint64_t audit_failed;       /* audit entries rlfeedd could not append */
    uint64_t pull_paused;        /* times taking PULL messages paused for room to store them */
    char url[PROTO_URL_MAX + 1]; /* the Redis rlfeedd uses, its password shown as "***" */
} proto_storage_stats;

/* "auth.clients.NAME": one configured client's requests (docs/security.md). */
#define PROTO_STATS_MAX_CLIENTS 64
typedef struct proto_client_stats {
    char name[BASE_NAME_MAX + 1];
    uint64_t accepted;     /* requests that passed authentication and scope */
    uint64_t unauthorized; /* stale, wrong mac or replayed, naming this client */
    uint64_t forbidden;    /* an op or policy outside its scope */
    uint64_t rate_limited; /* feedback over the client's outcome cap */
    uint64_t alarms;       /* times its alarm was raised (service/auth.h) */
} proto_client_stats;

/* "standby.POLICY": a policy this instance stands by for, and its owner then (standby = on). */
#define PROTO_STATS_MAX_STANDBY 64
#define PROTO_STATS_OWNER_MAX 200
typedef struct proto_standby_stats {
    char policy[BASE_NAME_MAX + 1];
    char owner[PROTO_STATS_OWNER_MAX + 1];
} proto_standby_stats;

/*
 * A whole stats reply. @policies is borrowed by proto_reply_stats(); proto_stats_decode()
 * allocates it, and proto_stats_fini() frees it.
 */
typedef struct proto_stats {
    uint32_t n_policies;
    proto_policy_stats *policies;     /* [n_policies] */
    uint64_t rejected[PROTO_E_COUNT]; /* requests refused, by code; [PROTO_E_NONE] unused */
    proto_storage_stats storage;
    bool auth;             /* "auth" present: the daemon runs with auth = on */
    uint64_t auth_unknown; /* requests without a proof, or naming no configured client */
    uint32_t n_clients;
    proto_client_stats clients[PROTO_STATS_MAX_CLIENTS];
    uint32_t n_standby; /* "standby" present when > 0 */
    proto_standby_stats standby[PROTO_STATS_MAX_STANDBY];
} proto_stats;

/*
 * proto_reply_stats() - append the stats reply of @s (borrowed) to @out.
 * Return: BASE_OK; BASE_ELIMIT or BASE_ENOMEM from @out, which is then left as it was.
 */
base_err proto_reply_stats(base_buf *out, const proto_stats *s);

/*
 * proto_stats_decode() - decode a stats reply into @out, which owns its policies on
 * success (proto_stats_fini()); nothing is written on failure.
 * Return: BASE_OK; BASE_EPROTO (not an ok stats reply, a known field of the wrong type, an
 *         unreadable checksum, past the caps); BASE_ENOMEM.
 */
base_err proto_stats_decode(const uint8_t *buf, size_t len, proto_stats *out);

/* proto_stats_fini() - free what proto_stats_decode() allocated. Accepts NULL. */
void proto_stats_fini(proto_stats *s);

#endif
