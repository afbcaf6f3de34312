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
#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "storage/codec.h"
#include "storage/spill_impl.h"
#include "storage/streamid.h"

#define MAGIC "RLFSPILL"
#define MAGIC_LEN 8u
#define HEADER_LEN (MAGIC_LEN + 4u)
#define END_LEN (4u + 8u + 8u)
#define HASH_SEED 0x7370696c6cULL /* "spill" */
#define FLUSH_BYTES (1u << 20)    /* write(2) in chunks of about this much */
#define NAME_TRIES 1000           /* a later millisecond when a name is taken */

struct sto_spill {
    int fd;
    char dir[PATH_MAX];
    char tmp[PATH_MAX];
    char path[PATH_MAX]; /* the final name */
    bool replace;        /* publish by rename() over path (replay's rewrite) */
    bool own_tmp;        /* tmp was created by this writer (abort removes it) */
    base_buf out;        /* bytes not written yet */
    base_buf rec;        /* scratch: one record's encoding */
    uint64_t count;
    uint64_t hash;
    base_err err; /* sticky: the first failure */
};

void sto_spill_put_err(char *errbuf, size_t errlen, const char *what, const char *path, int err)
{
    if (errbuf != NULL && errlen > 0) {
        (void)snprintf(errbuf, errlen, "%s %s: %s", what, path,
                       err != 0 ? strerror(err) : "failed"); /* truncation is fine */
    }
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

/* A policy as the store accepts it in a key: 1..BASE_NAME_MAX bytes, no brace. */
static bool valid_policy(const char *p, size_t n)
{
    if (n == 0 || n > BASE_NAME_MAX || memchr(p, '\0', n) != NULL) {
        return false;
    }
    return memchr(p, '{', n) == NULL && memchr(p, '}', n) == NULL;
}

/* An id as the store sends it: "<ms>-<seq>", at most BASE_STREAM_ID_MAX bytes. */
static bool valid_id(const char *id, size_t n)
{
    char tmp[BASE_STREAM_ID_MAX + 1];
    sto_sid sid;
    if (n == 0 || n > BASE_STREAM_ID_MAX || memchr(id, '\0', n) != NULL) {
        return false;
    }
    memcpy(tmp, id, n);
    tmp[n] = '\0';
    return sto_sid_parse(tmp, &sid);
}

/* ---- writing ---------------------------------------------------------------- */

static base_err write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return BASE_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return BASE_OK;
}

static base_err flush_out(sto_spill *w)
{
    base_err e = write_all(w->fd, w->out.data, w->out.len);
    base_buf_reset(&w->out);
    return e;
}

base_err sto_spill_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    base_err e = BASE_EIO;
    if (fd >= 0) {
        e = fsync(fd) == 0 ? BASE_OK : BASE_EIO;
        (void)close(fd); /* read-only handle */
    }
    return e;
}

static sto_spill *writer_new(void)
{
    sto_spill *w = base_alloc_zero(1, sizeof(*w));
    if (w != NULL) {
        w->fd = -1;
        base_buf_init(&w->out, (size_t)FLUSH_BYTES + STO_SPILL_FRAME_MAX + 16u);
        base_buf_init(&w->rec, STO_MAX_VALUE);
    }
    return w;
}

static void writer_free(sto_spill *w)
{
    if (w == NULL) {
        return;
    }
    if (w->fd >= 0) {
        (void)close(w->fd); /* abandoned: the data does not matter */
    }
    base_buf_fini(&w->out);
    base_buf_fini(&w->rec);
    base_free(w);
}

/* Write the header into a writer whose fd is open. */
static base_err begin(sto_spill *w)
{
    uint8_t h[HEADER_LEN];
    memcpy(h, MAGIC, MAGIC_LEN);
    put_le32(h + MAGIC_LEN, STO_SPILL_VERSION);
    w->hash = base_hash64(h, sizeof(h), HASH_SEED);
    return base_buf_append(&w->out, h, sizeof(h));
}

base_err sto_spill_create(const char *dir, sto_spill **out, char *errbuf, size_t errlen)
{
    base_clock wall;
    base_err e = BASE_ENOMEM;
    sto_spill *w = writer_new();

    if (w == NULL) {
        goto fail;
    }
    base_clock_init_system(&wall);
    long long ms = (long long)base_clock_now_ms(&wall);
    int n = snprintf(w->dir, sizeof(w->dir), "%s", dir);
    if (n < 0 || (size_t)n >= sizeof(w->dir)) {
        e = BASE_EINVAL;
        sto_spill_put_err(errbuf, errlen, "spill directory path too long:", dir, 0);
        goto fail;
    }
    e = BASE_EIO;
    for (int i = 0; i < NAME_TRIES && w->fd < 0; i++, ms++) {
        struct stat st;
        n = snprintf(w->path, sizeof(w->path), "%s/" NAME_PREFIX "%016lld" NAME_SUFFIX, dir, ms);
        int m = snprintf(w->tmp, sizeof(w->tmp), "%s" TMP_SUFFIX, w->path);
        if (n < 0 || (size_t)n >= sizeof(w->path) || m < 0 || (size_t)m >= sizeof(w->tmp)) {
            e = BASE_EINVAL;
            sto_spill_put_err(errbuf, errlen, "spill directory path too long:", dir, 0);
            goto fail;
        }
        if (stat(w->path, &st) == 0) {
            continue; /* taken: never replace a spill file */
        }
        w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd < 0 && errno != EEXIST) {
            sto_spill_put_err(errbuf, errlen, "cannot create", w->tmp, errno);
            goto fail;
        }
        w->own_tmp = w->fd >= 0; /* EEXIST: an unfinished file of a crashed run; keep it */
    }
    if (w->fd < 0) {
        sto_spill_put_err(errbuf, errlen, "no free spill file name in", dir, 0);
        goto fail;
    }
    e = begin(w);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = w;
    w = NULL;
fail:
    sto_spill_abort(w);
    return e;
}

/* A writer that replaces @path (replay's rewrite with new ids). */
base_err sto_spill_create_replacing(const char *path, sto_spill **out, char *errbuf, size_t errlen)
{
    base_err e = BASE_ENOMEM;
    sto_spill *w = writer_new();
    if (w == NULL) {
        goto fail;
    }
    w->replace = true;
    const char *slash = strrchr(path, '/');
    int n = snprintf(w->path, sizeof(w->path), "%s", path);
    int m = snprintf(w->tmp, sizeof(w->tmp), "%s" TMP_SUFFIX, path);
    int d = slash == NULL ? snprintf(w->dir, sizeof(w->dir), ".")
                          : snprintf(w->dir, sizeof(w->dir), "%.*s", (int)(slash - path), path);
    e = BASE_EINVAL;
    if (n < 0 || (size_t)n >= sizeof(w->path) || m < 0 || (size_t)m >= sizeof(w->tmp) || d < 0 ||
        (size_t)d >= sizeof(w->dir)) {
        sto_spill_put_err(errbuf, errlen, "spill file path too long:", path, 0);
        goto fail;
    }
    e = BASE_EIO;
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        sto_spill_put_err(errbuf, errlen, "cannot create", w->tmp, errno);
        goto fail;
    }
    w->own_tmp = true;
    e = begin(w);
    if (e != BASE_OK) {
        goto fail;
    }
    *out = w;
    w = NULL;
fail:
    sto_spill_abort(w);
    return e;
}

base_err sto_spill_add(sto_spill *w, sto_kind kind, const char *policy, const char *id,
                       const void *rec)
{
    uint8_t head[4 + 1 + 1 + BASE_NAME_MAX + 1 + BASE_STREAM_ID_MAX];
    size_t pn = policy != NULL ? strnlen(policy, BASE_NAME_MAX + 1) : 0;
    size_t in = id != NULL ? strnlen(id, BASE_STREAM_ID_MAX + 1) : 0;

    if (w->err != BASE_OK) {
        return w->err;
    }
    if ((unsigned)kind > STO_JOINED || !valid_policy(policy, pn) || !valid_id(id, in)) {
        return BASE_EINVAL; /* this record only: not sticky */
    }
    base_buf_reset(&w->rec);
    base_err e = sto_record_encode(kind, rec, &w->rec);
    if (e == BASE_EINVAL || e == BASE_ELIMIT) {
        return e; /* this record only */
    }
    if (e == BASE_OK) {
        size_t hl = 4 + 1 + 1 + pn + 1 + in;
        put_le32(head, (uint32_t)(hl - 4 + w->rec.len));
        head[4] = (uint8_t)kind;
        head[5] = (uint8_t)pn;
        memcpy(head + 6, policy, pn);
        head[6 + pn] = (uint8_t)in;
        memcpy(head + 7 + pn, id, in);
        size_t at = w->out.len;
        e = base_buf_append(&w->out, head, hl);
        if (e == BASE_OK) {
            e = base_buf_append(&w->out, w->rec.data, w->rec.len);
        }
        if (e == BASE_OK) {
            w->hash = base_hash64(w->out.data + at, hl + w->rec.len, w->hash);
        }
    }
    if (e == BASE_OK && w->out.len >= FLUSH_BYTES) {
        e = flush_out(w);
    }
    if (e == BASE_OK) {
        w->count++;
    }
    w->err = e;
    return e;
}

base_err sto_spill_commit(sto_spill *w, char *out_path, size_t path_len, char *errbuf,
                          size_t errlen)
{
    uint8_t end[END_LEN];
    base_err e = w->err;

    if (e != BASE_OK) {
        sto_spill_put_err(errbuf, errlen, "writing", w->tmp, e == BASE_EIO ? EIO : 0);
        goto fail;
    }
    put_le32(end, 0);
    put_le64(end + 4, w->count);
    put_le64(end + 12, w->hash);
    e = base_buf_append(&w->out, end, sizeof(end));
    if (e == BASE_OK) {
        e = flush_out(w);
    }
    if (e != BASE_OK) {
        sto_spill_put_err(errbuf, errlen, "writing", w->tmp, errno);
        goto fail;
    }
    e = BASE_EIO;
    if (fsync(w->fd) != 0) {
        sto_spill_put_err(errbuf, errlen, "fsync", w->tmp, errno);
        goto fail;
    }
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) {
        sto_spill_put_err(errbuf, errlen, "closing", w->tmp, errno);
        goto fail;
    }
    /* link() never replaces: an existing spill file is never lost. */
    if (w->replace ? rename(w->tmp, w->path) != 0 : link(w->tmp, w->path) != 0) {
        sto_spill_put_err(errbuf, errlen, "publishing", w->path, errno);
        goto fail;
    }
    if (!w->replace) {
        (void)unlink(w->tmp); /* the data is under its final name now */
    }
    if (sto_spill_fsync_dir(w->dir) != BASE_OK) {
        sto_spill_put_err(errbuf, errlen, "fsync of directory", w->dir, errno);
        goto fail;
    }
    if (out_path != NULL && path_len > 0) {
        (void)snprintf(out_path, path_len, "%s", w->path); /* truncation only shortens a name */
    }
    e = BASE_OK;
    writer_free(w);
    return e;
fail:
    sto_spill_abort(w);
    return e;
}

void sto_spill_abort(sto_spill *w)
{
    if (w == NULL) {
        return;
    }
    if (w->own_tmp) {
        (void)unlink(w->tmp); /* unfinished (or already published under its final name) */
    }
    writer_free(w);
}

/* ---- reading ---------------------------------------------------------------- */

void sto_spill_recs_free(sto_spill_rec *r, size_t n)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        sto_record_free(r[i].kind, r[i].rec);
    }
    base_free(r);
}

/* Decode one frame body (after its length field) into @out. */
static base_err decode_frame(const uint8_t *p, size_t len, sto_spill_rec *out)
{
    if (len < 3 || p[0] > (uint8_t)STO_JOINED) {
        return BASE_EPROTO;
    }
    size_t pn = p[1];
    if (2 + pn + 1 > len || !valid_policy((const char *)p + 2, pn)) {
        return BASE_EPROTO;
    }
    size_t in = p[2 + pn];
    size_t off = 3 + pn;
    if (off + in > len || !valid_id((const char *)p + off, in)) {
        return BASE_EPROTO;
    }
    memset(out, 0, sizeof(*out));
    out->kind = (sto_kind)p[0];
    memcpy(out->policy, p + 2, pn);
    memcpy(out->id, p + off, in);
    off += in;
    base_err e = sto_record_decode(out->kind, p + off, len - off, &out->rec);
    if (e != BASE_OK) {
        out->rec = NULL;
        return e == BASE_ENOMEM ? e : BASE_EPROTO;
    }
    return BASE_OK;
}

base_err sto_spill_decode(const uint8_t *buf, size_t len, sto_spill_rec **out, size_t *out_n)
{
    sto_spill_rec *r = NULL;
    size_t n = 0, cap = 0, off = HEADER_LEN;
    base_err e = BASE_EPROTO;

    if (len < HEADER_LEN + END_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0 ||
        get_le32(buf + MAGIC_LEN) != STO_SPILL_VERSION) {
        goto fail;
    }
    uint64_t hash = base_hash64(buf, HEADER_LEN, HASH_SEED);
    for (;;) {
        if (len - off < 4) {
            goto fail;
        }
        uint32_t fl = get_le32(buf + off);
        if (fl == 0) {
            break;
        }
        if (fl > STO_SPILL_FRAME_MAX || fl > len - off - 4 || fl < 3) {
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            sto_spill_rec *g = base_realloc_array(r, ncap, sizeof(*g));
            if (g == NULL) {
                e = BASE_ENOMEM;
                goto fail;
            }
            r = g;
            cap = ncap;
        }
        e = decode_frame(buf + off + 4, fl, &r[n]);
        if (e != BASE_OK) {
            goto fail;
        }
        n++;
        e = BASE_EPROTO;
        hash = base_hash64(buf + off, 4 + (size_t)fl, hash); /* the frame, length included */
        off += 4 + (size_t)fl;
    }
    if (len - off != END_LEN || get_le64(buf + off + 4) != n || get_le64(buf + off + 12) != hash) {
        goto fail;
    }
    *out = r;
    *out_n = n;
    r = NULL;
    n = 0;
    e = BASE_OK;
fail:
    sto_spill_recs_free(r, n);
    return e;
}
