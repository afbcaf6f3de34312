#ifndef SERVICE_REGISTRY_H
#define SERVICE_REGISTRY_H

/*
 * The registry follower: rlfeedd serves what each policy's registry
 * (rlfeed:{<policy>}:registry, storage/store.h) names, without a restart.
 *
 * Every registry_poll_ms it reads each policy's registry on its own Redis
 * connection and
 *   - applies "serve" and "canary" (the config's values when a field is
 *     absent) to the policy's runtime (svc_prt_set_serving);
 *   - when "production" names another version than the one served, loads
 *     that snapshot, rebuilds the head from it (pol_head_from_snapshot) and
 *     swaps it in (svc_prt_set_production); version 0 or absent is the base
 *     model, a fresh head of the policy's config.
 * So a promotion or rollback is served within registry_poll_ms plus one
 * snapshot load, on every instance using that Redis.
 *
 * Failures (Redis away, a malformed field, a missing or unloadable
 * snapshot, a shape that does not match the policy) are logged once per
 * distinct failure, counted in the policy's registry_errors, and leave the
 * slot serving what it served; the next poll tries again.
 *
 * Threads: svc_registry_start() and svc_registry_stop() from the main
 * thread only; the follower runs on its own thread.
 */

#include <stddef.h>

#include "base/err.h"
#include "service/config.h"
#include "service/engine.h"

typedef struct svc_registry svc_registry;

/*
 * svc_registry_start() - connect to @url, apply every policy's registry
 * once (so the first decision is served from the right slot), then follow
 * it on a new thread. @cfg and @eng are borrowed and outlive the follower.
 * Return: BASE_OK; BASE_EIO if Redis cannot be reached (reason in @errbuf);
 *         BASE_ENOMEM; BASE_EINTERNAL if the thread cannot start.
 */
base_err svc_registry_start(const char *url, const svc_config *cfg, svc_engine *eng,
                            svc_registry **out, char *errbuf, size_t errlen);

/* Stop following, join the thread, close the connection. Accepts NULL. */
void svc_registry_stop(svc_registry *r);

#endif
