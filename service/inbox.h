#ifndef SERVICE_INBOX_H
#define SERVICE_INBOX_H

/*
 * The inbox thread (shared = on; docs/architecture.md, "Several instances serving one
 * policy"): for every policy this instance owns, it reads the policy's inbox (what the
 * instances following it served and received, storage/store.h, sto_inbox_read()) after
 * the last entry taken, in stream order, and takes each entry as if it had been served or
 * received here at its own service time (svc_prt_take_decision/outcome): the decision
 * becomes pending, the outcome is judged and applied, and each gets the policy's next lsn
 * and is written to the policy's own streams with its inbox id. Entries that do not decode
 * are counted (stats "inbox_bad") and skipped. While the write queue is full it stops and
 * reads the entry again later: nothing forwarded is dropped for want of room.
 *
 * It polls each policy on its own: again at once after a full read, 1 ms after an entry was
 * taken, the interval doubling to SVC_INBOX_IDLE_MS while none comes (so many quiet
 * policies cost few reads).
 */

#include "base/err.h"
#include "service/config.h"
#include "service/engine.h"

#define SVC_INBOX_IDLE_MS 100

typedef struct svc_inbox svc_inbox;

/* Start the thread on its own connection to @url. Return: BASE_OK; BASE_EINVAL; BASE_ENOMEM. */
base_err svc_inbox_start(const char *url, const svc_config *cfg, svc_engine *eng, svc_inbox **out,
                         char *errbuf, size_t errlen);
void svc_inbox_stop(svc_inbox *in); /* accepts NULL; joins the thread */

#endif
