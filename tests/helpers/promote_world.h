#ifndef TESTS_HELPERS_PROMOTE_WORLD_H
#define TESTS_HELPERS_PROMOTE_WORLD_H

/*
 * A synthetic policy for the promotion tests (test_promote, test_promote_kill):
 * contexts x ~ N(0, 1)^PW_DIM, three candidates (actions 0, 1, 2) in every
 * decision, base logits that are pure noise (the frozen base model knows
 * nothing), logged pmf uniform (1/3 each: full support), and the reward of
 * action a
 *
 *     r = 0.5 + 0.2 * (w_a . x) + N(0, 0.1^2),
 *     w_0 = (1, 0, 0, 0), w_1 = (0, 1, 0, 0), w_2 = (-0.7, -0.7, 0, 0).
 *
 * So the base model (a head that learned nothing: greedy on noise) is worth
 * about 0.5, the best action about 0.5 + 0.2 * E[max_a w_a . x] ~ 0.67, the
 * worst about 0.33. A ridge head trained on the rewards is truly better than
 * the base model; one trained on the negated rewards is truly worse.
 * Everything is seeded: same seed, same examples.
 *
 * Also: running the built `rlfeed` (from $RLFEED) with separate stdout and
 * stderr files and a deadline, and reading its JSON output.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/record.h"
#include "storage/store.h"

#define PW_DIM 4
#define PW_ACTIONS 3
#define PW_SPEC "spec-1"
#define PW_BASE "base-1"

/* The decision of example @i of @seed (embedding, logits, uniform pmf, chosen) with its reward. */
base_joined *pw_example(const char *policy, uint64_t seed, uint64_t i);

/*
 * Append @n examples (numbers first..first+n-1) to @policy's joined stream,
 * spec @spec, Redis choosing the ids; every @unknown_every-th one (0: none)
 * is marked unknown. The last id is copied to @out_last_id if not NULL.
 */
bool pw_write_joined(sto_store *s, const char *policy, uint64_t seed, uint64_t first, size_t n,
                     const char *spec, size_t unknown_every, char *out_last_id);

/*
 * A ridge head trained on @n examples of another seed, on the rewards times
 * @sign (+1: good, -1: bad), as snapshot @version of @policy (spec PW_SPEC,
 * base PW_BASE, last_joined_id ""). NULL on failure.
 */
base_snapshot *pw_train(const char *policy, uint64_t version, double sign, size_t n);

/* The id of the @k-th entry (0-based) of @policy's joined stream into @out. */
bool pw_joined_id(sto_store *s, const char *policy, size_t k, char *out);

/* Start `$RLFEED argv...` with stdout to @out_path and stderr to @err_path; -1 on failure. */
pid_t pw_spawn(char *const argv[], const char *out_path, const char *err_path);

/*
 * Run `$RLFEED` with @args (NULL-terminated) and return its exit status (-1
 * if it did not exit normally within 120 s). Its stdout is left in
 * @dir/out.txt, stderr in @dir/err.txt; when @out_json is not NULL, stdout
 * parsed as JSON (NULL if it is not).
 */
int pw_run(const char *dir, json_t **out_json, const char *const *args);

/* The whole file at @path, NUL-terminated (free()), or NULL. */
char *pw_slurp(const char *path);

#endif
