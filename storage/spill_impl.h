#ifndef STORAGE_SPILL_IMPL_H
#define STORAGE_SPILL_IMPL_H

/*
 * What spill.c (writing and decoding spill files) and spill_replay.c (replaying them)
 * share, and no one else.
 */

#include <stddef.h>

#include "base/err.h"
#include "storage/spill.h"

#define NAME_PREFIX "rlfeed-spill-"
#define NAME_SUFFIX ".bin"
#define TMP_SUFFIX ".tmp"

/* "@what @path: strerror(@err)" (or "failed" for 0) into @errbuf, if any. */
void sto_spill_put_err(char *errbuf, size_t errlen, const char *what, const char *path, int err);
/* fsync(2) of directory @dir. Return: BASE_OK; BASE_EIO (errno set). */
base_err sto_spill_fsync_dir(const char *dir);
/* A writer that publishes by rename() over @path (a file being rewritten). */
base_err sto_spill_create_replacing(const char *path, sto_spill **out, char *errbuf, size_t errlen);

#endif
