#ifndef SERVICE_CATALOG_IMPL_H
#define SERVICE_CATALOG_IMPL_H

/*
 * The policy catalog's insides, shared by catalog.c (the follower thread: new
 * definitions, created policies, takeovers) and catalog_apply.c (changed
 * definitions applied on the learner thread) and by no one else.
 */

#include <stdbool.h>

#include "service/config.h"
#include "service/policy_rt.h"

/* A definition waiting for the learner thread; cfg NULL would be a bug. */
struct svc_change {
    struct svc_change *next;
    svc_prt *p;
    svc_policy_config *cfg; /* owned until applied; then kept (struct svc_kept) */
    bool warned;            /* its wait for Redis was logged (once per change) */
};

/* A definition a policy runtime may still point at: freed with the engine. */
struct svc_kept {
    struct svc_kept *next;
    svc_policy_config cfg;
};

/* A definition in a node that can be kept (struct svc_kept): NULL on OOM. */
svc_policy_config *svc_catalog_new_cfg(void);
/* Free a definition made by svc_catalog_new_cfg(). Accepts NULL. */
void svc_catalog_free_cfg(svc_policy_config *cfg);

/*
 * Move what a restore rebuilt in @tmp (head, join, marks, lsns, checkpoint stamps) into
 * @p, and @p's into @tmp (freed by the caller). The caller holds @p's gate as writer,
 * head_lk, prod_lk and join_lk, and is the learner thread, or @p is a follower (whose
 * learner-side state no other thread touches: the learner skips followers).
 */
void svc_catalog_swap_state(svc_prt *p, svc_prt *tmp);

#endif
