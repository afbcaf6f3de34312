#ifndef TESTS_HELPERS_MEMLOG_H
#define TESTS_HELPERS_MEMLOG_H

/*
 * An in-memory log of record behind the engine's svc_log and svc_log_reader
 * interfaces (service/log.h), for unit tests of replay and checkpoints
 * without Redis. Records are stored encoded with the storage codec and
 * decoded again when read, as Redis would hand them back; ids are
 * "<n>-0" with one counter for every stream. Submitted items complete at
 * once, inside submit, in order (the interface allows it: see log.h).
 * Retention trims are not applied. Thread-safe.
 */

#include <stddef.h>

#include "service/log.h"

typedef struct tst_memlog tst_memlog;

tst_memlog *tst_memlog_new(size_t capacity);
void tst_memlog_free(tst_memlog *m);
/* Make the writer's stats report @depth records waiting (its capacity: a full queue). */
void tst_memlog_set_depth(tst_memlog *m, size_t depth);

/* What Redis would hold if the process died now: a deep copy. */
tst_memlog *tst_memlog_clone(tst_memlog *m);

svc_log tst_memlog_writer(tst_memlog *m);
svc_log_reader tst_memlog_reader(tst_memlog *m);

/* Entries of stream @kind of @policy; the id of the last one into @out_last ("" if none). */
size_t tst_memlog_len(tst_memlog *m, const char *policy, sto_kind kind, char *out_last);

#endif
