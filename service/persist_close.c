#include "service/persist.h"
#include "service/persist_impl.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "storage/spill.h"

/*
 * After the writer stopped: write what it could not store to a spill file
 * in @dir (records only, in queue order, each with the id it was sent with
 * or a new one), then complete every such item as not stored.
 */
static void spill(svc_persist *p, const char *dir, svc_persist_report *out)
{
    uint64_t records = 0, bad = 0;
    sto_spill *w = NULL;
    base_err e = BASE_OK;

    for (size_t i = 0; i < p->n_left; i++) {
        records += p->left[i]->type == SVC_PERSIST_APPEND;
        out->snapshots += p->left[i]->type == SVC_PERSIST_MODEL;
    }
    if (records > 0 && (dir == NULL || dir[0] == '\0')) {
        (void)snprintf(out->error, sizeof(out->error), "no data_dir to spill them to");
        e = BASE_EINVAL;
    } else if (records > 0) {
        e = sto_spill_create(dir, &w, out->error, sizeof(out->error));
    }
    for (size_t i = 0; e == BASE_OK && i < p->n_left; i++) {
        svc_persist_item *it = p->left[i];
        if (it->type != SVC_PERSIST_APPEND) {
            continue;
        }
        (void)svc_persist_assign_id(p, it,
                                    false); /* ENOMEM leaves no id: the add refuses it, counted */
        base_err ae = sto_spill_add(w, it->kind, it->policy, it->stream_id, it->rec);
        if (ae == BASE_EINVAL || ae == BASE_ELIMIT) {
            bad++; /* a record Redis would not have taken either */
        } else if (ae != BASE_OK) {
            (void)snprintf(out->error, sizeof(out->error), "writing the spill file: %s",
                           base_strerror(ae));
            e = ae;
        }
    }
    if (e == BASE_OK && w != NULL) {
        e = sto_spill_commit(w, out->spill_path, sizeof(out->spill_path), out->error,
                             sizeof(out->error));
        w = NULL;
    }
    sto_spill_abort(w);
    if (e == BASE_OK) {
        out->spilled = records - bad;
        out->lost = bad;
    } else {
        out->lost = records;
        out->spill_path[0] = '\0';
    }
    out->lost += p->lost_oom;
    for (size_t i = 0; i < p->n_left; i++) {
        p->in_hand++; /* svc_persist_complete() counts it down again */
        svc_persist_complete(p, p->left[i], BASE_ECLOSED);
    }
    p->n_left = 0;
}

void svc_persist_close(svc_persist *p, const svc_persist_close_opts *o, svc_persist_report *out)
{
    svc_persist_report unused;
    if (out == NULL) {
        out = &unused;
    }
    memset(out, 0, sizeof(*out));
    if (p == NULL) {
        return;
    }
    p->close_ns = base_mono_ns();
    p->deadline_ns = o->deadline_ns;
    p->outage_wait_ns = o->outage_wait_ms > 0 ? (uint64_t)o->outage_wait_ms * 1000000u : 0;
    /* Close first: once closing is seen, an empty queue stays empty (see reconnect). */
    base_queue_close(p->q);
    atomic_store(&p->closing, true);
    pthread_join(p->thread, NULL);
    if (p->down_since_ns != 0) {
        out->outage_ms = (base_mono_ns() - p->down_since_ns) / 1000000u;
        out->refusing = atomic_load(&p->redis_refusing);
    }
    spill(p, o->spill_dir, out);
    sto_store_close(p->store);
    base_queue_free(p->q);
    base_free(p->left);
    base_free(p->pos);
    base_free(p->url);
    base_free(p);
}
