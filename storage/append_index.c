/*
 * The event index of an append's chunk (append_index.h): per hour key one HSET, per policy
 * one script for the outcomes, per key one PEXPIRE.
 */
#include "storage/append_index.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

bool sto_idx_pend_init(idx_pend *p, size_t cap)
{
    memset(p, 0, sizeof(*p));
    p->cap = cap;
    p->e = base_alloc_array(cap, sizeof(p->e[0]));
    p->argv = base_alloc_array(4 + IDX_KEYS_MAX + 3 * cap, sizeof(p->argv[0]));
    p->lens = base_alloc_array(4 + IDX_KEYS_MAX + 3 * cap, sizeof(p->lens[0]));
    return p->e != NULL && p->argv != NULL && p->lens != NULL;
}

void sto_idx_pend_fini(idx_pend *p)
{
    base_free(p->e);
    base_free(p->argv);
    base_free(p->lens);
}

static base_err append_cmd(sto_store *s, int argc, const char **argv, const size_t *lens,
                           size_t *replies)
{
    if (redisAppendCommandArgv(s->c, argc, argv, lens) != REDIS_OK) {
        return BASE_EIO; /* hiredis OOM while formatting: the context is unusable */
    }
    ++*replies;
    return BASE_OK;
}

/*
 * Queue the index commands of entries @e[0..n) under @keys[0..n_keys) (argv and lens have
 * room for 4 + n_keys + 3 n); *replies counts them.
 */
static base_err idx_write(sto_store *s, const idx_key *keys, size_t n_keys, const idx_ent *e,
                          size_t n, const char **argv, size_t *lens, size_t *replies)
{
    base_err err = BASE_OK;
    bool done[IDX_KEYS_MAX] = {false}; /* its policy's script is queued */
    for (size_t k = 0; k < n_keys && err == BASE_OK; k++) {
        int argc = 0;
        argv[argc] = "HSET";
        lens[argc++] = 4;
        argv[argc] = keys[k].name;
        lens[argc++] = strlen(keys[k].name);
        for (size_t i = 0; i < n; i++) {
            if (e[i].key == k && !e[i].append) {
                argv[argc] = e[i].field;
                lens[argc++] = strlen(e[i].field);
                argv[argc] = e[i].id;
                lens[argc++] = strlen(e[i].id);
            }
        }
        if (argc > 2) {
            err = append_cmd(s, argc, argv, lens, replies);
        }
    }
    for (size_t k = 0; k < n_keys && err == BASE_OK; k++) {
        /* One script per policy (its keys share a hash tag, so a slot), its keys in order. */
        char numkeys[8], cap[16], pos[IDX_KEYS_MAX][4];
        size_t slot[IDX_KEYS_MAX], n_mine = 0;
        int argc = 3;
        for (size_t q = k; q < n_keys; q++) {
            if (!done[q] && strcmp(keys[q].policy, keys[k].policy) == 0) {
                done[q] = true;
                (void)snprintf(pos[q], sizeof(pos[q]), "%zu", n_mine + 1);
                slot[q] = n_mine++;
                argv[argc] = keys[q].name;
                lens[argc++] = strlen(keys[q].name);
            } else {
                slot[q] = SIZE_MAX;
            }
        }
        (void)snprintf(cap, sizeof(cap), "%u", (unsigned)STO_EVIDX_MAX_OUTCOMES);
        argv[argc] = cap;
        lens[argc++] = strlen(cap);
        size_t outcomes = 0;
        for (size_t i = 0; i < n; i++) {
            if (e[i].append && e[i].key >= k && slot[e[i].key] != SIZE_MAX) {
                argv[argc] = pos[e[i].key];
                lens[argc++] = strlen(pos[e[i].key]);
                argv[argc] = e[i].field;
                lens[argc++] = strlen(e[i].field);
                argv[argc] = e[i].id;
                lens[argc++] = strlen(e[i].id);
                outcomes++;
            }
        }
        if (outcomes > 0) {
            (void)snprintf(numkeys, sizeof(numkeys), "%zu", n_mine);
            argv[0] = "EVAL";
            lens[0] = 4;
            argv[1] = STO_EVIDX_APPEND_OUTCOMES;
            lens[1] = strlen(STO_EVIDX_APPEND_OUTCOMES);
            argv[2] = numkeys;
            lens[2] = strlen(numkeys);
            err = append_cmd(s, argc, argv, lens, replies);
        }
    }
    for (size_t k = 0; k < n_keys && err == BASE_OK; k++) {
        char ttl[24];
        (void)snprintf(ttl, sizeof(ttl), "%" PRIu64, keys[k].ttl);
        const char *pexp[] = {"PEXPIRE", keys[k].name, ttl};
        size_t plen[] = {7, strlen(keys[k].name), strlen(ttl)};
        err = append_cmd(s, 3, pexp, plen, replies);
    }
    return err;
}

/* Queue the chunk's pending entries; *tail counts their replies. */
base_err sto_idx_flush(sto_store *s, idx_pend *p, size_t *tail)
{
    base_err e = idx_write(s, p->keys, p->n_keys, p->e, p->n, p->argv, p->lens, tail);
    p->n = 0;
    p->n_keys = 0;
    return e;
}

/*
 * The event-index entries of each sent item of @k[0..n) (after its XADD or group) into @p
 * for the chunk's end; once the chunk has IDX_KEYS_MAX other hour keys, an item's own
 * commands at once, their replies counted in extra[] (read after the item's).
 */
base_err sto_queue_indexes(sto_store *s, sto_append *items, const size_t *k, size_t n,
                           const bool *sent, uint8_t *extra, size_t *cmds, idx_pend *p)
{
    char key[STO_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        const sto_append *it = &items[k[i]];
        if (!sent[k[i]] || it->id == NULL || it->id[0] == '\0' || p->n == p->cap) {
            continue;
        }
        idx_ent *e = &p->e[p->n];
        sto_evidx_op op = sto_evidx_entry(it, key, e->field);
        if (op == STO_EVIDX_NONE) {
            continue;
        }
        e->append = op == STO_EVIDX_APPEND;
        e->id = it->id;
        size_t at = 0;
        while (at < p->n_keys && strcmp(p->keys[at].name, key) != 0) {
            at++;
        }
        if (at < IDX_KEYS_MAX) {
            if (at == p->n_keys) {
                memcpy(p->keys[at].name, key, sizeof(key));
                p->keys[at].policy = it->policy;
                p->n_keys++;
            }
            p->keys[at].ttl = it->index_ttl_ms;
            e->key = (uint8_t)at;
            p->n++;
            *cmds += 2; /* at most: the chunk bound stays what it was */
            continue;
        }
        idx_key one = {.policy = it->policy, .ttl = it->index_ttl_ms};
        const char *argv[IDX_ARGV_ONE];
        size_t lens[IDX_ARGV_ONE], replies = 0;
        memcpy(one.name, key, sizeof(key));
        e->key = 0;
        base_err err = idx_write(s, &one, 1, e, 1, argv, lens, &replies);
        extra[k[i]] = (uint8_t)replies;
        *cmds += replies;
        if (err != BASE_OK) {
            return err;
        }
    }
    return BASE_OK;
}
