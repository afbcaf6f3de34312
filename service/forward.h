#ifndef SERVICE_FORWARD_H
#define SERVICE_FORWARD_H

/*
 * The forwarder (shared = on; docs/architecture.md, "Several instances serving one
 * policy"): the thread that hands what this instance served and received for policies it
 * follows to their owners, through each policy's inbox stream (storage/store.h,
 * sto_inbox_add()), on its own Redis connection.
 *
 * Producers (nng callbacks) submit items without blocking; a full queue answers
 * BASE_ELIMIT (decide: served unlogged; feedback: `unavailable`). The thread pops a batch,
 * appends its records in one pipeline per policy (sto_inbox_add_batch()), then each record
 * that did not make it alone (retrying on a lost connection, with backoff 50 ms .. 1 s,
 * until it is stored or the forwarder closes), and when an item of the batch is acknowledged
 * (someone waits for it) and replicas are asked for, one WAIT for the batch; then it runs
 * each item's completion, in order. A record retried after a lost connection may be in
 * the inbox twice: the owner drops the copy (duplicate event or outcome id).
 *
 * States: RUNNING -> CLOSED [svc_forward_close]: what is still queued at close gets until
 * the deadline; what is not stored by then completes with BASE_ECLOSED.
 */

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "base/record.h"
#include "storage/store.h"

typedef struct svc_forward svc_forward;
typedef struct svc_fwd_item svc_fwd_item;

/* @result: BASE_OK once the inbox has it (and replicas, if asked); else why not. */
typedef void (*svc_fwd_done)(void *arg, svc_fwd_item *it, base_err result);

struct svc_fwd_item {
    sto_kind kind; /* STO_DECISIONS or STO_OUTCOMES */
    char policy[BASE_NAME_MAX + 1];
    void *rec;         /* base_decision* or base_outcome*; owned by the item */
    bool acked;        /* someone waits for it: replicas are waited for (replicas_ack) */
    svc_fwd_done done; /* may be NULL; runs on the forwarder thread, must not block */
    void *done_arg;
};

/*
 * svc_forward_new() - connect to @url as instance @who (copied) and start the thread;
 * acknowledged items wait for @replicas replicas (0: none) at most @replicas_timeout_ms.
 * Return: BASE_OK; BASE_EINVAL (bad URL); BASE_ENOMEM.
 */
base_err svc_forward_new(const char *url, int timeout_ms, size_t capacity, const char *who,
                         uint32_t replicas, uint32_t replicas_timeout_ms, svc_forward **out,
                         char *errbuf, size_t errlen);

/* A zeroed item owning @rec (NULL on OOM; the caller keeps @rec then). */
svc_fwd_item *svc_fwd_item_new(sto_kind kind, const char *policy, void *rec);
void svc_fwd_item_free(svc_fwd_item *it); /* and its record; accepts NULL */

/* Queue @it (taken on success). Return: BASE_OK; BASE_ELIMIT (full); BASE_ECLOSED. */
base_err svc_forward_submit(svc_forward *f, svc_fwd_item *it);

uint64_t svc_forward_stored(const svc_forward *f); /* records appended to inboxes */
uint64_t svc_forward_failed(const svc_forward *f); /* items completed with an error */
size_t svc_forward_depth(svc_forward *f);
size_t svc_forward_capacity(const svc_forward *f);

/* Stop taking items, store what is queued until @deadline_ns (base_mono_ns()), free @f. */
void svc_forward_close(svc_forward *f, uint64_t deadline_ns);

#endif
