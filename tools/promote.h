#ifndef TOOLS_PROMOTE_H
#define TOOLS_PROMOTE_H

/*
 * `rlfeed promote`: the nightly promotion job (docs/promotion.md).
 *
 *   rlfeed promote --policy P [--redis URL] [--who NAME] [--json]
 *       [--candidate VERSION] [--window 24h] [--estimator dr|snips|ips]
 *       [--confidence 0.95] [--margin M] [--min-samples N] [--max-samples N]
 *       [--seed S] [--holdout] [--dry-run] [--plot FILE.svg]
 *
 * 1. Reads the registry: the candidate is --candidate or the registry's
 *    "online"; the baseline is "production" (0 or absent: the base model,
 *    served by a head that learned nothing, built with the candidate's
 *    recorded settings). A candidate that already is production: exit 3,
 *    "already production", nothing evaluated and nothing written (a run that
 *    decided nothing leaves no audit entry).
 * 2. Fitness of the snapshots: both carry their head settings, have the same
 *    shape (dim, n_actions) and, with a production snapshot, the same
 *    base_version; the candidate was trained under the reward spec now in
 *    force (the newest joined example's spec_version).
 * 3. Reads the joined stream from now - window up to its newest entry at the
 *    start, in batches, and keeps the newest --max-samples examples that are
 *    not "unknown", were joined under the spec in force, match the heads'
 *    shape and carry a valid logged pmf (the others are counted by reason).
 *    With --holdout only examples after the candidate's last_joined_id count.
 * 4. For each, the candidate's and production's pmfs on the logged context,
 *    actions and base logits (policy/head.h) are the two targets of
 *    ev_evaluate() (IPS, SNIPS, DR with intervals and the paired
 *    difference), and ev_gate() gives the verdict.
 * 5. PROMOTE: one atomic registry change moves production from the version
 *    evaluated against to the candidate, with an audit entry holding the
 *    report (exit 0; exit 2 "production moved during evaluation: rerun" if
 *    someone moved it meanwhile). HOLD: an audit entry only, exit 3.
 *    NOT_FIT: an audit entry only, exit 4. --dry-run writes nothing and exits
 *    with the verdict's code. Errors and usage: exit 2, nothing written.
 *
 * The report goes to stdout as a table, or as one line of JSON with --json;
 * --plot also draws the estimates and intervals as SVG.
 *
 * Single-threaded; GSL's error handler must be off (the CLI's main does it).
 */

int rlfeed_promote_main(int argc, char **argv);

#endif
