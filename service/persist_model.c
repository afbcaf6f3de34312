/*
 * The writer's checkpoints (service/persist.h): storing a snapshot, fenced when the instance
 * may be taken over, then the retention it makes safe (trimming the streams and the inbox,
 * pruning old snapshots) with its audit entry, and the log of checkpoints Redis refuses.
 * Runs on the writer thread only (persist.c calls svc_persist_write_model()).
 */
#include "service/persist_impl.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

#include "base/clock.h"
#include "base/log.h"
#include "service/audit.h"

/*
 * A retention run that removed something, in the audit stream (an idle
 * daemon removes nothing and writes nothing). Best effort: logged, counted.
 */
static void audit_retention(svc_persist *p, const svc_persist_item *it, const uint64_t trimmed[3],
                            uint64_t pruned)
{
    static const char *names[3] = {"decisions", "outcomes", "joined"};
    if (p->who[0] == '\0' || trimmed[0] + trimmed[1] + trimmed[2] + pruned == 0) {
        return;
    }
    char num[4][24], reason[160];
    sto_field d[7];
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        (void)snprintf(num[k], sizeof(num[k]), "%" PRIu64, trimmed[k]);
        d[n++] = (sto_field){names[k], num[k]};
    }
    (void)snprintf(num[3], sizeof(num[3]), "%" PRIu64, pruned);
    d[n++] = (sto_field){"snapshots", num[3]};
    const base_snapshot *m = it->rec;
    (void)snprintf(reason, sizeof(reason), "checkpoint %" PRIu64 " stored", m->version);
    if (!svc_audit_append_logged(p->store, it->policy, "retention", p->who, reason, d, n)) {
        atomic_fetch_add(&p->audit_failed, 1);
    }
}

/* Retention after a stored checkpoint; failures only delay it to the next one. */
static void retain(svc_persist *p, const svc_persist_item *it)
{
    uint64_t trimmed[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        uint64_t n = 0;
        if (it->trim.minid[k][0] != '\0' &&
            sto_store_trim(p->store, (sto_kind)k, it->policy, it->trim.minid[k], &n) == BASE_OK) {
            atomic_fetch_add(&p->trimmed, n);
            trimmed[k] = n;
        }
    }
    if (it->trim.inbox_minid[0] != '\0') {
        /* Taken entries: their records are in the policy's own streams (not audited). */
        (void)sto_inbox_trim(p->store, it->policy, it->trim.inbox_minid);
    }
    uint64_t n = 0;
    if (it->trim.keep_snapshots > 0 &&
        sto_store_model_prune(p->store, it->policy, it->trim.keep_snapshots, &n) != BASE_OK) {
        n = 0; /* the next checkpoint prunes again */
    }
    audit_retention(p, it, trimmed, n);
}

/*
 * A checkpoint Redis refused (ESTORE: an ACL without MULTI, out of memory, a key of another
 * type...) loses nothing, as the streams keep every record, but retention waits for a stored
 * one and every start replays the streams: said once per episode, with Redis's words, and
 * health reads degraded until a checkpoint is stored again.
 */
static void note_checkpoint(svc_persist *p, const svc_persist_item *it, base_err e, bool fenced)
{
    if (e == BASE_ESTORE && !fenced && !atomic_exchange(&p->ckpt_refused, true)) {
        base_log_policy(BASE_LOG_WARN, it->policy,
                        "redis: refuses checkpoints (%s): policy %s's checkpoint is not stored; "
                        "the streams keep every record, but retention waits for a stored "
                        "checkpoint and a start replays them",
                        sto_store_refusal(p->store)[0] != '\0' ? sto_store_refusal(p->store)
                                                               : base_strerror(e),
                        it->policy);
    } else if (e == BASE_OK && atomic_exchange(&p->ckpt_refused, false)) {
        base_log_policy(BASE_LOG_INFO, it->policy, "redis: checkpoints stored again");
    }
}

bool svc_persist_write_model(svc_persist *p, svc_persist_item *it)
{
    for (;;) {
        bool fenced = false;
        base_err e = atomic_load(&p->fence) && p->who[0] != '\0'
                         ? sto_store_model_put_fenced(p->store, it->rec, p->who, &fenced)
                         : sto_store_model_put(p->store, it->rec);
        if (fenced) {
            svc_persist_note_fenced(p, it->policy);
        }
        if (e == BASE_OK) {
            retain(p, it);
        }
        note_checkpoint(p, it, e, fenced);
        if (e != BASE_EIO) {
            p->last_ok_ns = base_mono_ns();
            svc_persist_complete(p, it, e);
            return true;
        }
        if (svc_persist_past_deadline(p) || !svc_persist_reconnect(p, false)) {
            svc_persist_leave(p, it);
            return false;
        }
    }
}
