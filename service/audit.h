#ifndef SERVICE_AUDIT_H
#define SERVICE_AUDIT_H

/*
 * What rlfeedd itself adds to each policy's audit stream
 * (rlfeed:{<policy>}:audit, storage/store.h; docs/operations.md, "Audit
 * trail"), beside the promotions, rollbacks and serving overrides the CLI
 * writes. Every entry starts with the fields the storage layer writes
 * ("moved" 0), then "action", "who" (the instance id), "reason", then the
 * action's details; its time is the entry id. For example
 *
 *     XADD rlfeed:{faq}:audit * moved 0 action restore who rlfeedd@h:4242
 *          reason "start-up" version 1200 learned 17 pending 3
 *
 * Actions: "restore" (every start-up), "config" (the checkpoint restored
 * was stamped with another config hash, reward spec or base model),
 * "retention" (a retention run that removed something).
 *
 * Appending is best effort: a failure is returned (and the callers log and
 * count it), never fatal. Each call is one Redis round trip on the caller's
 * connection: only the main thread at start-up and the writer thread call
 * in, never a request thread.
 */

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "service/engine.h"
#include "storage/store.h"

#define SVC_AUDIT_MAX_DETAILS 16 /* detail pairs of one entry */

/*
 * svc_audit_append() - append one entry to @policy's audit stream: "action"
 * @action, "who" @who, "reason" @reason, then @details in order (all
 * borrowed). Uses sto_registry_change() with nothing to change, so the
 * registry is not touched.
 * Return: BASE_OK; BASE_EINVAL for more than SVC_AUDIT_MAX_DETAILS details
 *         or a bad policy or field name; else what sto_registry_change()
 *         returns.
 */
base_err svc_audit_append(sto_store *s, const char *policy, const char *action, const char *who,
                          const char *reason, const sto_field *details, size_t n_details);

/* svc_audit_append(), a failure logged (with Redis's words for a refusal). Return: appended. */
bool svc_audit_append_logged(sto_store *s, const char *policy, const char *action, const char *who,
                             const char *reason, const sto_field *d, size_t n);

/*
 * svc_audit_startup() - after a successful svc_engine_restore(): per policy
 * one "restore" entry and, when the restored checkpoint's stamps differ
 * from the configuration, one "config" entry, written through @s as @who.
 * Failures are logged; *io_failed counts them. Main thread.
 */
void svc_audit_startup(sto_store *s, const svc_engine *e, const svc_config *cfg, const char *who,
                       uint64_t *io_failed);

#endif
