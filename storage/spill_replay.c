/*
 * Spill files read back at start-up (storage/spill.h, sto_spill_replay()): each file's
 * records appended to their streams with their own ids, settled against what Redis
 * already has, the file rewritten first when ids must change, then removed.
 */
#include "storage/spill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "storage/spill_impl.h"
#include "storage/store_impl.h"
#include "storage/streamid.h"

#define REPLAY_CHUNK 1024u /* records per pipelined append */
#define FILES_MAX 4096u    /* spill files considered in one replay */

/* Read the whole file at @path. */
static base_err read_file(const char *path, uint8_t **out, size_t *out_len, char *errbuf,
                          size_t errlen)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    base_err e = BASE_EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) != 0) {
        sto_spill_put_err(errbuf, errlen, "cannot open", path, errno);
        goto fail;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX - 1) {
        e = BASE_ENOMEM;
        goto fail;
    }
    buf = base_alloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        e = BASE_ENOMEM;
        sto_spill_put_err(errbuf, errlen, "out of memory reading", path, 0);
        goto fail;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            sto_spill_put_err(errbuf, errlen, "cannot read", path, r < 0 ? errno : 0);
            goto fail;
        }
        got += (size_t)r;
    }
    *out = buf;
    *out_len = got;
    buf = NULL;
    e = BASE_OK;
fail:
    if (fd >= 0) {
        (void)close(fd); /* read-only handle */
    }
    base_free(buf);
    return e;
}

/* ---- replay ---------------------------------------------------------------- */

/* A stream met in one file: its last id in Redis and the last id given out here. */
typedef struct replay_stream {
    sto_kind kind;
    const char *policy; /* borrowed from the first record of this stream */
    sto_sid top;
    sto_sid last;
} replay_stream;

static replay_stream *stream_of(replay_stream *st, size_t *n, const sto_spill_rec *r)
{
    for (size_t i = 0; i < *n; i++) {
        if (st[i].kind == r->kind && strcmp(st[i].policy, r->policy) == 0) {
            return &st[i];
        }
    }
    replay_stream *s = &st[(*n)++];
    memset(s, 0, sizeof(*s));
    s->kind = r->kind;
    s->policy = r->policy;
    return s;
}

/* Rewrite @path with the records not marked @skip, under their (new) ids. */
static base_err rewrite(const char *path, const sto_spill_rec *r, const bool *skip, size_t n,
                        char *errbuf, size_t errlen)
{
    sto_spill *w = NULL;
    base_err e = sto_spill_create_replacing(path, &w, errbuf, errlen);
    for (size_t i = 0; e == BASE_OK && i < n; i++) {
        if (!skip[i]) {
            e = sto_spill_add(w, r[i].kind, r[i].policy, r[i].id, r[i].rec);
        }
    }
    if (e != BASE_OK) {
        sto_spill_put_err(errbuf, errlen, "rewriting", path, e == BASE_EIO ? errno : 0);
        sto_spill_abort(w);
        return e;
    }
    return sto_spill_commit(w, NULL, 0, errbuf, errlen);
}

/* Append r[i] for every i not skipped, in order, with their ids. */
static base_err append_all(sto_store *s, sto_spill_rec *r, const bool *skip, size_t n,
                           sto_spill_report *rep, char *errbuf, size_t errlen)
{
    sto_append a[REPLAY_CHUNK];
    size_t idx[REPLAY_CHUNK];
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        for (; i < n && k < REPLAY_CHUNK; i++) {
            if (skip[i]) {
                continue;
            }
            memset(&a[k], 0, sizeof(a[k]));
            a[k].kind = r[i].kind;
            a[k].policy = r[i].policy;
            a[k].rec = r[i].rec;
            a[k].id = r[i].id;
            idx[k++] = i;
        }
        base_err e = sto_store_append(s, a, k);
        char words[128]; /* a refusal's, before sto_store_match() clears them */
        base_strlcpy(words, sto_store_refusal(s), sizeof(words));
        if (e != BASE_OK) {
            if (errbuf != NULL && errlen > 0) {
                (void)snprintf(errbuf, errlen, "appending spilled records: %s", base_strerror(e));
            }
            return e;
        }
        for (size_t j = 0; j < k; j++) {
            base_err ie = a[j].out_err;
            if (a[j].out_behind) {
                /* Stored by a replay cut short: it must be the same record. */
                sto_match m = STO_ABSENT;
                const sto_spill_rec *x = &r[idx[j]];
                ie = sto_store_match(s, x->kind, x->policy, x->id, x->rec, &m);
                if (ie == BASE_OK && m != STO_SAME) {
                    ie = BASE_ESTORE; /* someone else is writing this stream now */
                }
                rep->present += ie == BASE_OK;
            } else {
                rep->appended += ie == BASE_OK;
            }
            if (ie != BASE_OK) {
                if (errbuf != NULL && errlen > 0 && a[j].out_refused) {
                    (void)snprintf(errbuf, errlen,
                                   "appending record %s of policy %s: redis refused it (%.200s)",
                                   r[idx[j]].id, r[idx[j]].policy, words);
                } else if (errbuf != NULL && errlen > 0) {
                    (void)snprintf(errbuf, errlen, "appending record %s of policy %s: %s",
                                   r[idx[j]].id, r[idx[j]].policy, base_strerror(ie));
                }
                return ie;
            }
        }
    }
    return BASE_OK;
}

/*
 * Mark the records of policies whose lease another instance than @owner holds: they are
 * not appended (that instance took the policy over and writes its streams now).
 */
static base_err skip_foreign(sto_store *s, const char *owner, const sto_spill_rec *r, size_t n,
                             bool *skip, sto_spill_report *rep)
{
    for (size_t i = 0; i < n; i++) {
        bool seen = false, foreign = false;
        for (size_t j = 0; j < i && !seen; j++) {
            if (strcmp(r[j].policy, r[i].policy) == 0) {
                seen = true;
                foreign = skip[j];
            }
        }
        if (!seen) {
            char holder[STO_OWNER_MAX + 1] = "";
            base_err e = sto_lease_holder(s, r[i].policy, holder, sizeof(holder));
            if (e != BASE_OK) {
                return e;
            }
            foreign = holder[0] != '\0' && strcmp(holder, owner) != 0;
        }
        skip[i] = foreign;
        rep->foreign += foreign;
    }
    return BASE_OK;
}

static base_err replay_file(sto_store *s, const char *path, const char *owner,
                            sto_spill_report *rep, char *errbuf, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0, n = 0, n_st = 0;
    sto_spill_rec *r = NULL;
    replay_stream *st = NULL;
    bool *skip = NULL;
    bool renumbered = false;
    base_clock wall;
    base_err e = read_file(path, &buf, &len, errbuf, errlen);

    if (e != BASE_OK) {
        goto fail;
    }
    e = sto_spill_decode(buf, len, &r, &n);
    base_free(buf);
    buf = NULL;
    if (e != BASE_OK) {
        sto_spill_put_err(errbuf, errlen, "spill file does not decode:", path, 0);
        goto fail;
    }
    rep->records += n;
    e = BASE_ENOMEM;
    st = base_alloc_zero(n + 1, sizeof(*st));
    skip = base_alloc_zero(n + 1, sizeof(*skip));
    if (st == NULL || skip == NULL) {
        goto fail;
    }
    base_clock_init_system(&wall);
    if (owner != NULL) {
        e = skip_foreign(s, owner, r, n, skip, rep);
        if (e != BASE_OK) {
            sto_spill_put_err(errbuf, errlen, "reading the leases of the policies in", path, 0);
            goto fail;
        }
    }
    /*
     * Settle every id first. Ids above the stream's last id are appended as
     * they are; one at or below it may be there already (an attempt whose
     * reply was lost) or not (the stream moved past it): then it takes a new
     * id above the top and every later id of its stream, keeping file order.
     */
    for (size_t i = 0; i < n; i++) {
        if (skip[i]) {
            continue; /* another instance's policy now */
        }
        size_t before = n_st;
        replay_stream *x = stream_of(st, &n_st, &r[i]);
        sto_sid id;
        if (n_st != before) {
            char top[BASE_STREAM_ID_MAX + 1];
            e = sto_store_last_id(s, x->kind, x->policy, top);
            if (e != BASE_OK || !sto_sid_parse(top, &x->top)) {
                e = e != BASE_OK ? e : BASE_EPROTO;
                char why[200], key[STO_KEY_MAX];
                if (sto_stream_key(key, sizeof(key), x->kind, x->policy) != BASE_OK) {
                    base_strlcpy(key, x->policy, sizeof(key));
                }
                if (errbuf != NULL && errlen > 0) {
                    (void)snprintf(errbuf, errlen, "spill file %s: reading the last id of %s: %s",
                                   path, key, sto_store_strerror(s, e, why, sizeof(why)));
                }
                goto fail;
            }
            x->last = x->top;
        }
        (void)sto_sid_parse(r[i].id, &id); /* the decoder checked it */
        if (sto_sid_cmp(id, x->top) <= 0) {
            sto_match m = STO_ABSENT;
            e = sto_store_match(s, r[i].kind, r[i].policy, r[i].id, r[i].rec, &m);
            if (e != BASE_OK) {
                sto_spill_put_err(errbuf, errlen, "looking up a record of", path, 0);
                goto fail;
            }
            if (m == STO_SAME) {
                skip[i] = true;
                rep->present++;
                continue;
            }
        }
        if (sto_sid_cmp(id, x->last) <= 0) {
            id = sto_sid_next(x->last, (uint64_t)base_clock_now_ms(&wall));
            (void)sto_sid_format(id, r[i].id, sizeof(r[i].id)); /* 41 bytes at most */
            renumbered = true;
            rep->renumbered++;
        }
        x->last = id;
    }
    if (renumbered) {
        e = rewrite(path, r, skip, n, errbuf, errlen);
        if (e != BASE_OK) {
            goto fail;
        }
    }
    e = append_all(s, r, skip, n, rep, errbuf, errlen);
    if (e != BASE_OK) {
        if (errbuf != NULL && errlen > 0) {
            char why[512];
            base_strlcpy(why, errbuf, sizeof(why));
            (void)snprintf(errbuf, errlen, "spill file %s: %s", path, why); /* may cut */
        }
        goto fail;
    }
    e = BASE_EIO;
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    (void)snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - path) : 1,
                   slash != NULL ? path : "."); /* a prefix of a path that fit */
    if (unlink(path) != 0 || sto_spill_fsync_dir(dir) != BASE_OK) {
        sto_spill_put_err(errbuf, errlen, "removing the replayed spill file", path, errno);
        goto fail;
    }
    rep->files++;
    e = BASE_OK;
fail:
    base_free(buf);
    base_free(st);
    base_free(skip);
    sto_spill_recs_free(r, n);
    return e;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

base_err sto_spill_replay(sto_store *s, const char *dir, sto_spill_report *out, char *errbuf,
                          size_t errlen)
{
    return sto_spill_replay_as(s, dir, NULL, out, errbuf, errlen);
}

base_err sto_spill_replay_as(sto_store *s, const char *dir, const char *owner,
                             sto_spill_report *out, char *errbuf, size_t errlen)
{
    char *names[FILES_MAX];
    size_t n = 0;
    base_err e = BASE_OK;
    DIR *d = opendir(dir);

    memset(out, 0, sizeof(*out));
    if (d == NULL) {
        e = errno == ENOENT ? BASE_OK : BASE_EIO; /* no directory: nothing was spilled */
        if (e != BASE_OK) {
            sto_spill_put_err(errbuf, errlen, "cannot list", dir, errno);
        }
        return e;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        const char *nm = ent->d_name;
        if (strncmp(nm, NAME_PREFIX, strlen(NAME_PREFIX)) != 0) {
            continue;
        }
        if (has_suffix(nm, NAME_SUFFIX TMP_SUFFIX)) {
            out->partial++;
            continue;
        }
        if (!has_suffix(nm, NAME_SUFFIX) || n == FILES_MAX) {
            continue; /* past FILES_MAX: the next start takes the rest */
        }
        names[n] = base_strdup(nm);
        if (names[n] == NULL) {
            e = BASE_ENOMEM;
            break;
        }
        n++;
    }
    (void)closedir(d); /* read-only handle */
    qsort(names, n, sizeof(names[0]), cmp_names);
    for (size_t i = 0; i < n && e == BASE_OK; i++) {
        char path[PATH_MAX];
        int k = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (k < 0 || (size_t)k >= sizeof(path)) {
            e = BASE_EINVAL;
            sto_spill_put_err(errbuf, errlen, "spill file path too long in", dir, 0);
            break;
        }
        e = replay_file(s, path, owner, out, errbuf, errlen);
    }
    for (size_t i = 0; i < n; i++) {
        base_free(names[i]);
    }
    return e;
}
