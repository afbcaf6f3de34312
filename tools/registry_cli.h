#ifndef TOOLS_REGISTRY_CLI_H
#define TOOLS_REGISTRY_CLI_H

/*
 * `rlfeed rollback`, `rlfeed history`, `rlfeed audit` and `rlfeed serve`: the registry's
 * production pointer moved back, the audit trail read, the serving
 * overrides set (docs/promotion.md, "Rollback and history"). Common options
 * and exit codes: tools/regcmd.h.
 *
 *   rlfeed rollback --policy P [--to VERSION] [--reason TEXT]
 *       Moves production to VERSION (0: the base model), by default to the
 *       version it replaced: the "from" of the newest audit entry that moved
 *       production to the current version. Two rollbacks in a row therefore
 *       undo each other, as `cd -` does; --to goes further back. One atomic
 *       registry change with an audit entry (action "rollback"). Exit 0
 *       moved; 2 nothing to roll back to, already there, a conflict (someone
 *       moved production meanwhile), a missing snapshot, or any error.
 *   rlfeed history --policy P [--limit N]
 *       The audit trail, oldest first (the newest N with --limit): when
 *       (ISO-8601 UTC, from the entry id), action, who, the move, the verdict
 *       and estimate, the reason. --json prints an array of the entries with
 *       their stored reports. Only the registry's entries (actions promote,
 *       rollback, serve); --limit counts those. Exit 0, or 2.
 *   rlfeed audit --policy P [--limit N]
 *       The whole audit trail, oldest first, every action (the registry's
 *       and the daemon's restore, config and retention): when, action, who,
 *       a summary of the fields (history's for the registry's entries,
 *       "name value" pairs otherwise), the reason. --json as history's.
 *       Exit 0, or 2.
 *   rlfeed serve --policy P [--mode online|production] [--canary SHARE] [--clear]
 *       Sets the registry's serving overrides (the daemon follows them within
 *       a second), or with --clear deletes both, with an audit entry (action
 *       "serve"). Exit 0, or 2.
 *
 * Each returns the process exit status; @argv are the arguments after the
 * command name. Single-threaded.
 */

int rlfeed_rollback_main(int argc, char **argv);
int rlfeed_history_main(int argc, char **argv);
int rlfeed_audit_main(int argc, char **argv);
int rlfeed_serve_main(int argc, char **argv);

#endif
