#ifndef SERVICE_LEASE_H
#define SERVICE_LEASE_H

/*
 * Policy ownership: exactly one rlfeedd writes a policy's streams. A second
 * instance is refused, or with standby = on stands by for the policies another
 * holds (svc_lease_split(); service/catalog.c takes them over when the lease
 * can be had).
 *
 * At start the daemon takes the lease of every configured policy
 * (storage/store.h, rlfeed:{<policy>}:owner = the instance id, with a TTL of
 * lease_ms) before it writes anything; if another instance holds one, the
 * start fails and names it. A thread renews the leases every lease_ms / 3
 * on its own connection; a lease found held by someone else (possible only
 * after Redis lost it, e.g. an outage longer than lease_ms while another
 * instance started) is reported through svc_lease_lost() and a SIGTERM to
 * this process, which then stops and exits non-zero; with shared = on the
 * policy is stepped down to a follower instead (svc_lease_on_lost()). Stop
 * releases them.
 *
 * The instance id names the instance, not the process: a restarted rlfeedd
 * with the same id (the default is "<hostname>:<first listen URL>") takes
 * its leases over at once, even after a kill -9.
 *
 * States: svc_lease_start() -> RUNNING -> svc_lease_stop() (the renewal thread releases
 * the leases and ends; joined, freed). Threads: start and stop from the main thread only;
 * lost() from any.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "service/config.h"

typedef struct svc_lease svc_lease;

/*
 * svc_lease_start() - take every policy's lease for @owner and start the
 * renewal thread. @cfg is borrowed and outlives the lease.
 * Return: BASE_OK; BASE_EINVAL if a policy is held by another instance
 *         (@errbuf names it and how long its lease still runs); the
 *         store's error if Redis cannot be reached; BASE_ENOMEM.
 */
base_err svc_lease_start(const char *url, svc_config *cfg, const char *owner, svc_lease **out,
                         char *errbuf, size_t errlen);

/*
 * shared = on: a lease found held by another instance while running is not a reason to
 * stop. The policy is marked followed (cfg->following) and @fn(@arg, index, holder) is
 * called on the renewal thread to step its runtime down (svc_engine_step_down()); it must
 * not block. Set once, after start, before the engine serves.
 */
typedef void (*svc_lease_lost_fn)(void *arg, uint32_t policy_index, const char *holder);
void svc_lease_on_lost(svc_lease *l, svc_lease_lost_fn fn, void *arg);

/*
 * svc_lease_split() - standby = on, at start, before svc_lease_start(): take the lease of
 * each of @cfg's policies for @owner; move those another instance holds out of @cfg->policy
 * into @cfg->waiting (with the holder's name). Main thread, before the engine is built.
 * Return: BASE_OK; the store's error; BASE_ENOMEM.
 */
base_err svc_lease_split(const char *url, svc_config *cfg, const char *owner, char *errbuf,
                         size_t errlen);

/*
 * standby or shared = on: stand by for @pc, whose lease @holder holds for another @left_ms
 * (logged): appended to @cfg->waiting, @pc moved into it. Requests for it are answered
 * `unavailable` naming @holder, and service/catalog.c tries its lease every
 * registry_poll_ms. An entry is filled before the count that covers it is raised, so any
 * thread may read the entries below the count it loaded. False (nothing moved) when
 * @cfg has no waiting list (neither mode) or it is full.
 */
bool svc_lease_stand_by(svc_config *cfg, svc_policy_config *pc, const char *holder,
                        int64_t left_ms);

/* Whether a lease was found taken by another instance while running. */
bool svc_lease_lost(const svc_lease *l);

/*
 * Stop renewing, release the leases (best effort), free. Accepts NULL. Waits for the
 * renewal thread until base_mono_ns() reaches @deadline_ns (0: for as long as it takes): a
 * Redis that stopped answering holds a renewal or a release for up to redis_timeout_ms. Past
 * the deadline the leases are left to expire by their TTL, and the thread and @l to the
 * process exit (logged); false then, else true. *@out_lost (may be NULL): whether ownership
 * was lost (svc_lease_lost()), read once the thread ended, or at the deadline.
 */
bool svc_lease_stop(svc_lease *l, uint64_t deadline_ns, bool *out_lost);

/* The default instance id, "<hostname>:<first listen URL>", into @out. */
void svc_lease_default_owner(const svc_config *cfg, char *out, size_t size);

#endif
