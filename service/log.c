#include "service/log.h"

static base_err persist_submit(void *impl, svc_persist_item *it)
{
    return svc_persist_submit(impl, it);
}

static void persist_stats(void *impl, svc_log_stats *out)
{
    svc_persist *p = impl;
    /* Refused checkpoints count as refused writes, for health and the metrics. */
    bool ckpt = svc_persist_checkpoints_refused(p);
    out->up = svc_persist_redis_up(p) && !ckpt;
    out->refusing = svc_persist_redis_refusing(p) || (ckpt && svc_persist_redis_up(p));
    out->depth = svc_persist_depth(p);
    out->capacity = svc_persist_capacity(p);
    out->written = svc_persist_written(p);
    out->failed = svc_persist_failed(p);
    out->trimmed = svc_persist_trimmed(p);
    out->audit_failed = svc_persist_audit_failed(p);
    out->url = svc_persist_url(p);
}

static const svc_log_ops persist_ops = {persist_submit, persist_stats};

svc_log svc_log_of_persist(svc_persist *p)
{
    return (svc_log){&persist_ops, p};
}

static base_err store_read(void *impl, sto_kind kind, const char *policy, const char *after,
                           size_t max, sto_entry **out, size_t *out_n)
{
    return sto_store_read(impl, kind, policy, after, max, out, out_n);
}

static base_err store_model(void *impl, const char *policy, base_snapshot **out, bool *out_found)
{
    return sto_store_model_get_online(impl, policy, out, out_found);
}

static const char *store_last_error(void *impl)
{
    return sto_store_refusal(impl);
}

static const svc_log_reader_ops store_ops = {store_read, store_model, store_last_error};

svc_log_reader svc_log_reader_of_store(sto_store *s)
{
    return (svc_log_reader){&store_ops, s};
}
