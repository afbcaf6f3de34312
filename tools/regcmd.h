#ifndef TOOLS_REGCMD_H
#define TOOLS_REGCMD_H

/*
 * What the registry commands of the rlfeed CLI share: `rlfeed promote`,
 * `rollback`, `history`, `audit` and `serve` (docs/promotion.md). They talk to Redis
 * directly (storage/store.h), not to rlfeedd, so they work while the daemon
 * is down and leave it to follow the registry.
 *
 * Common options, accepted by all five:
 *   --policy P     required
 *   --redis URL    tcp://HOST:PORT, redis://HOST:PORT or unix:/path; default
 *                  $RLFEED_REDIS, else a usage error
 *   --who NAME     recorded in the audit entry; default $USER@hostname
 *   --json         print JSON instead of a table
 * Each takes "--opt VALUE" or "--opt=VALUE".
 *
 * Exit status (cron reads it): 0 done (promoted, rolled back, set); 2 error
 * or usage; 3 not promoted by the gate (or already production); 4 the data
 * were not fit for evaluation.
 *
 * Messages for a person go to stderr; results to stdout. Single-threaded.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/store.h"

enum {
    REGCMD_EXIT_OK = 0,
    REGCMD_EXIT_ERROR = 2,
    REGCMD_EXIT_HOLD = 3,
    REGCMD_EXIT_NOT_FIT = 4,
};

#define REGCMD_WHO_MAX 128
#define REGCMD_TIMEOUT_MS 10000 /* every Redis command */

/*
 * regcmd_strerror() - @e of a command on @s for a message: Redis's words for a refusal, and
 * for BASE_EIO that Redis did not answer in time or the connection broke. In a static
 * buffer: the next call overwrites it (the CLI is one thread).
 */
const char *regcmd_strerror(const sto_store *s, base_err e);

typedef struct regcmd_common {
    const char *cmd;       /* "promote", ...: for messages (borrowed) */
    const char *policy;    /* borrowed from argv */
    const char *redis_url; /* borrowed from argv or the environment */
    const char *where;     /* the option that named the Redis, for messages: NULL: --redis */
    char who[REGCMD_WHO_MAX + 1];
    bool json;
} regcmd_common;

/*
 * regcmd_opt() - match "--name VALUE" or "--name=VALUE" at argv[*i].
 * Return: 1 with *out_val set (and *i advanced past a separate value); 0 if
 *         argv[*i] is not --name; -1 if the value is missing, or a separate one
 *         starts with "--" (an option, not a value: use --name=VALUE; message
 *         printed).
 */
int regcmd_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
               const char **out_val);

/*
 * regcmd_take_common() - consume argv[*i] if it is a common option.
 * Return: 1 taken; 0 not a common option; -1 a usage error (printed).
 */
int regcmd_take_common(regcmd_common *c, int argc, char **argv, int *i);

/*
 * regcmd_finish_common() - fill the defaults (--redis from $RLFEED_REDIS,
 * --who from $USER and the host name) and check that --policy and a Redis
 * URL are there. Return: false after printing why.
 */
bool regcmd_finish_common(regcmd_common *c);

/* Open the store at c->redis_url. Return: NULL after printing why. */
sto_store *regcmd_open(const regcmd_common *c);

/*
 * regcmd_open_policy() - regcmd_open(), for a command that writes: NULL, after printing why,
 * also when the store has nothing of c->policy (sto_policy_known()): a mistyped name must not
 * create keys of its own.
 */
sto_store *regcmd_open_policy(const regcmd_common *c);

/* Decimal uint64 (digits only, no sign). */
bool regcmd_parse_u64(const char *s, uint64_t *out);
/* A finite double, the whole string. */
bool regcmd_parse_double(const char *s, double *out);
/* "90s", "15m", "24h", "7d", or plain seconds; > 0, at most 10 years. Milliseconds into *out. */
bool regcmd_parse_duration(const char *s, int64_t *out_ms);

/* Wall-clock milliseconds since the epoch. */
int64_t regcmd_now_ms(void);
/* @ms as ISO-8601 UTC with milliseconds, "2025-12-02T03:00:00.123Z" (>= 25 bytes). */
void regcmd_iso8601(int64_t ms, char *out, size_t size);
/* The milliseconds part of a stream id ("<ms>-<seq>"); -1 if it does not parse. */
int64_t regcmd_id_ms(const char *id);
/* "base model" for 0, else the decimal version, into @out (>= 24 bytes). */
const char *regcmd_version_text(uint64_t v, char *out, size_t size);

#endif
