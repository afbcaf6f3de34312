#ifndef SERVICE_CATALOG_H
#define SERVICE_CATALOG_H

/*
 * rlfeedd's side of the policy catalog (docs/operations.md, "Policies at run time"; the
 * catalog itself: storage/store.h, "Policy definitions"; the CLI: rlfeed policy).
 *
 * - At start (svc_catalog_merge(), before the engine is built): the catalog's definitions
 *   override the config file's sections of the same name, retired ones are not served,
 *   and policies only the catalog defines are added. The config file bootstraps; once a
 *   policy is put in the catalog, the catalog's definition is the one in force.
 * - While running (svc_catalog_start()): a thread polls the catalog's change counter every
 *   registry_poll_ms (and rereads everything every few seconds) and applies what changed:
 *   a new policy gets its lease, is recovered from its streams and joins the engine; a
 *   retired one stops being served; a changed one is handed to the learner thread, which
 *   applies it between two batches of learning (svc_catalog_apply_changes()): requests of
 *   that policy wait meanwhile (none fails), its head is checkpointed and the policy is
 *   rebuilt from the checkpoint and its streams under the new definition, exactly as a
 *   restart would, so recovery stays bit-identical. A head the new definition cannot
 *   continue (another dim, action set, learner or map) becomes a new head version that
 *   learns only from decisions made after the change.
 *
 * Threads: merge on the main thread before any other runs; the follower thread; the
 * learner thread applies changes.
 */

#include <stddef.h>

#include "base/err.h"
#include "service/config.h"
#include "service/engine.h"

typedef struct svc_catalog svc_catalog;

/*
 * svc_catalog_merge() - apply the catalog at @url to @cfg (see above); definitions that no
 * longer load are logged and skipped (the file's section, if any, stays in force).
 * Return: BASE_OK; BASE_EIO or BASE_ESTORE if the catalog cannot be read (@errbuf says);
 *         BASE_ENOMEM.
 */
base_err svc_catalog_merge(svc_config *cfg, const char *url, char *errbuf, size_t errlen);

/*
 * svc_catalog_start() - follow the catalog at @url for @eng, whose config is @cfg (the one
 * svc_catalog_merge() merged; entries are appended to it). @owner is this instance's lease
 * owner name (a new policy's lease is taken with it).
 */
base_err svc_catalog_start(const char *url, svc_config *cfg, svc_engine *eng, const char *owner,
                           svc_catalog **out, char *errbuf, size_t errlen);
void svc_catalog_stop(svc_catalog *c); /* accepts NULL */

#endif
