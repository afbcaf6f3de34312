#include "tools/sim.h"
#include "tools/sim_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/hash.h"
#include "base/record.h"
#include "bench/dataset.h"
#include "client/rlfeed_client.h"

/* Interactions in block @b: the last one may be short. */
static uint64_t block_size(const sim_run *run, uint64_t b)
{
    uint64_t first = b * run->o->block;
    uint64_t left = run->o->n - first;
    return left < run->o->block ? left : run->o->block;
}

static uint32_t argmax_f(const float *v, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

/* *@at = max(*@at, @v), with other threads doing the same. */
static void raise_to(atomic_uint_fast64_t *at, uint64_t v)
{
    uint64_t seen = atomic_load(at);
    while (v > seen && !atomic_compare_exchange_weak(at, &seen, v)) {
        /* seen was reloaded: retry while ours is still higher */
    }
}

/*
 * Interaction @i, turn @turn (1-based; 0 without conversations) of
 * conversation @conv_id (NULL without). Returns whether the decide succeeded,
 * and *out_correct whether it served the label.
 */
static bool interact(sim_worker *w, uint64_t i, const char *conv_id, uint32_t turn,
                     bool *out_correct)
{
    sim_run *run = w->run;
    const sim_opts *o = run->o;
    uint32_t row = run->order[i];
    uint32_t label = run->d->label[row];
    uint32_t k = run->d->n_classes;
    sim_block *b = &run->blocks[i / o->block];
    char event_id[BASE_ID_MAX + 1];
    bool base_hit;
    bool served_hit = false;
    bool decided = false;
    uint64_t total;
    base_err e;

    if (i % o->block == 0) {
        atomic_store(&b->t_start_ns, base_mono_ns());
    }
    rlfeed_base_model_embed(run->m, row, w->emb);
    rlfeed_base_model_logits(run->m, row, w->logits);
    base_hit = argmax_f(w->logits, k) == label;
    if (!sim_format_id(event_id, sizeof(event_id), o->seed, "", i)) {
        sim_note_transport_error(run, i, "event_id", BASE_ELIMIT);
        goto account;
    }
    rlfeed_decide_opts opts = {
        .event_id = event_id,
        .conversation_id = conv_id,
        .turn = conv_id != NULL ? turn : 0,
    };
    e = rlfeed_client_decide_ex(w->client, o->policy, &opts, w->emb, o->dim, k, run->id_ptr,
                                w->logits, &w->reply);
    if (e != BASE_OK) {
        sim_note_transport_error(run, i, "decide", e);
        goto account;
    }
    if (!w->reply.ok) {
        sim_note_reply_error(run, i, "decide", &w->reply);
        goto account;
    }
    if (w->reply.chosen_index >= k ||
        strcmp(w->reply.chosen, run->ids[w->reply.chosen_index]) != 0) {
        sim_note_transport_error(run, i, "decide reply names no candidate", BASE_EPROTO);
        goto account;
    }
    decided = true;
    served_hit = w->reply.chosen_index == label;
    bool prod = strcmp(w->reply.slot, "production") == 0;
    atomic_fetch_add(&b->slot_decided[prod], 1);
    atomic_fetch_add(&b->slot_hits[prod], served_hit);
    raise_to(prod ? &b->max_prod : &b->max_version, w->reply.model_version);
    sim_schedule(w, i, SIM_FB_TURN, served_hit);

account:
    atomic_fetch_add(&b->base_hits, base_hit);
    atomic_fetch_add(&b->served_hits, served_hit);
    atomic_fetch_add(&b->decided, decided);
    total = atomic_fetch_add(&b->done, 1) + 1;
    sim_note_finished(run);
    if (total == block_size(run, i / o->block)) {
        atomic_store(&b->t_done_ns, base_mono_ns());
        atomic_store(&b->complete, 1);
        sim_print_ready(run);
    }
    *out_correct = served_hit;
    return decided;
}

/*
 * Conversation @c: interactions c*T .. min(c*T + T, n) - 1, one frontend, in
 * order, turns 1..T. Its "resolved" (1 if the final turn served the label)
 * follows the final turn's decide, addressed by conversation_id, so the
 * daemon's credit rule spreads it over the conversation's open decisions.
 */
static void converse(sim_worker *w, uint64_t c)
{
    const sim_opts *o = w->run->o;
    uint64_t first = c * o->turns;
    uint64_t end = first + o->turns < o->n ? first + o->turns : o->n;
    char conv_id[BASE_ID_MAX + 1];
    bool correct = false;
    bool decided = false;
    uint64_t i = first;

    if (o->turns == 1) {
        sim_flush_due(w);
        (void)interact(w, first, NULL, 0, &correct); /* errors are counted inside */
        return;
    }
    if (!sim_format_id(conv_id, sizeof(conv_id), o->seed, "c", c)) {
        sim_note_transport_error(w->run, first, "conversation_id", BASE_ELIMIT);
        return;
    }
    for (; i < end && !atomic_load(&w->run->stop); i++) {
        sim_flush_due(w);
        decided = interact(w, i, conv_id, (uint32_t)(i - first + 1), &correct);
    }
    if (i == end && decided) { /* else no final decision: nothing to resolve */
        sim_schedule(w, end - 1, SIM_FB_CONV, correct);
    }
}

static void *worker_main(void *arg)
{
    sim_worker *w = arg;
    sim_run *run = w->run;

    while (!atomic_load(&run->stop)) {
        uint64_t c = atomic_fetch_add(&run->next, 1);
        if (c * run->o->turns >= run->o->n) {
            break;
        }
        converse(w, c);
    }
    sim_drain(w);
    return NULL;
}

/* Interaction order: a seeded permutation of the rows, or uniform draws when n > rows. */
static base_err make_order(sim_run *run)
{
    uint64_t n = run->o->n;
    uint32_t rows = run->d->n_rows;
    uint64_t state = base_hash64(&run->o->seed, sizeof(run->o->seed), ORDER_SALT);
    base_err e = BASE_ENOMEM;
    uint32_t *perm = NULL;

    run->order = base_alloc_array(n, sizeof(*run->order));
    if (run->order == NULL) {
        goto done;
    }
    if (n > rows) {
        for (uint64_t i = 0; i < n; i++) {
            run->order[i] = (uint32_t)(base_u64_to_unit(base_splitmix64(&state)) * rows);
        }
    } else {
        perm = base_alloc_array(rows, sizeof(*perm));
        if (perm == NULL) {
            goto done;
        }
        for (uint32_t i = 0; i < rows; i++) {
            perm[i] = i;
        }
        for (uint32_t i = rows - 1; i > 0; i--) { /* Fisher-Yates */
            uint32_t j = (uint32_t)(base_u64_to_unit(base_splitmix64(&state)) * (i + 1.0));
            uint32_t t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        memcpy(run->order, perm, n * sizeof(*perm));
    }
    e = BASE_OK;

done:
    base_free(perm);
    return e;
}

/* Action ids prefix0..prefix{K-1}. Returns false if one does not fit. */
static bool make_ids(sim_run *run)
{
    uint32_t k = run->d->n_classes;
    bool ok = false;

    run->ids = base_alloc_array(k, sizeof(*run->ids));
    run->id_ptr = base_alloc_array(k, sizeof(*run->id_ptr));
    if (run->ids == NULL || run->id_ptr == NULL) {
        fprintf(stderr, "rlfeed sim: out of memory\n");
        goto done;
    }
    for (uint32_t a = 0; a < k; a++) {
        int n = snprintf(run->ids[a], sizeof(run->ids[a]), "%s%" PRIu32, run->o->prefix, a);
        if (n < 0 || (size_t)n >= sizeof(run->ids[a])) {
            fprintf(stderr, "rlfeed sim: action id too long (max %d bytes)\n", BASE_NAME_MAX);
            goto done;
        }
        run->id_ptr[a] = run->ids[a];
    }
    ok = true;

done:
    return ok;
}

/* One stderr line with the failed requests by error code (nothing if none failed). */
static bool load_data(const sim_opts *o, rlfeed_dataset **out_d)
{
    char errbuf[256] = "";
    base_err e;

    if (o->data == NULL) {
        e = rlfeed_dataset_synthetic(o->seed, out_d);
    } else {
        e = rlfeed_dataset_load_csv(o->data, out_d, errbuf, sizeof(errbuf));
    }
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed sim: %s: %s%s%s\n", o->data != NULL ? o->data : "synthetic",
                base_strerror(e), errbuf[0] != '\0' ? ": " : "", errbuf);
    } else if ((*out_d)->n_classes > BASE_CAND_MAX) {
        fprintf(stderr, "rlfeed sim: %u classes, more than %d candidates\n", (*out_d)->n_classes,
                BASE_CAND_MAX);
        rlfeed_dataset_free(*out_d);
        *out_d = NULL;
        e = BASE_ELIMIT;
    }
    return e == BASE_OK;
}

/* One health call before the traffic starts, so a missing daemon fails fast. */
static bool check_service(const sim_run *run, rlfeed_client *c)
{
    uint8_t *rep = NULL;
    size_t len = 0;
    base_err e = rlfeed_client_health(c, &rep, &len);

    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed sim: no answer from %s within %d ms (%s): is rlfeedd running?\n",
                run->o->url, run->o->timeout_ms, base_strerror(e));
    }
    base_free(rep);
    return e == BASE_OK;
}

static bool open_workers(sim_run *run, sim_worker *ws)
{
    const sim_opts *o = run->o;
    bool ok = false;

    for (uint32_t t = 0; t < o->clients; t++) {
        sim_worker *w = &ws[t];
        w->run = run;
        sim_queue_init(w);
        w->emb = base_alloc_array(o->dim, sizeof(*w->emb));
        w->logits = base_alloc_array(run->d->n_classes, sizeof(*w->logits));
        if (w->emb == NULL || w->logits == NULL) {
            fprintf(stderr, "rlfeed sim: out of memory\n");
            goto done;
        }
        base_err e = rlfeed_client_open(o->url, o->timeout_ms, &w->client);
        if (e != BASE_OK) {
            fprintf(stderr, "rlfeed sim: cannot open a client for %s: %s\n", o->url,
                    base_strerror(e));
            goto done;
        }
        /* A daemon with auth = on: sign with the key file $RLFEED_KEY names, as the CLI does. */
        const char *key_file = getenv("RLFEED_KEY");
        if (key_file != NULL && key_file[0] != '\0') {
            proto_auth_keyfile kf;
            char why[320];
            if (rlfeed_key_load(key_file, &kf, why, sizeof(why)) != BASE_OK) {
                fprintf(stderr, "rlfeed sim: RLFEED_KEY %s\n", why);
                goto done;
            }
            (void)rlfeed_client_use_key(w->client, &kf);
        }
    }
    ok = check_service(run, ws[0].client);

done:
    return ok;
}

static void run_fini(sim_run *run, sim_worker *ws)
{
    if (ws != NULL) {
        for (uint32_t t = 0; t < run->o->clients; t++) {
            rlfeed_client_close(ws[t].client);
            base_free(ws[t].emb);
            base_free(ws[t].logits);
            base_heap_fini(&ws[t].queue);
        }
        base_free(ws);
    }
    base_free(run->blocks);
    base_free(run->order);
    base_free(run->ids);
    base_free(run->id_ptr);
}

int rlfeed_sim_main(int argc, char **argv, const char *default_url)
{
    sim_opts o = {
        .url = default_url,
        .policy = "intents",
        .prefix = "intent_",
        .n = 60000,
        .block = 5000,
        .seed = 1,
        .clients = 4,
        .dim = 64,
        .turns = 1,
        .delay_ms = 0,
        .base_acc = 0.68,
        .thumbs_rate = 0.3,
        .thumbs_noise = 0.1,
        .timeout_ms = SIM_DEFAULT_TIMEOUT_MS,
    };
    sim_run run = {.o = &o, .last_served_acc = NAN};
    sim_worker *ws = NULL;
    rlfeed_dataset *d = NULL;
    rlfeed_base_model *m = NULL;
    bool lock_ready = false;
    int status = 2;
    uint32_t n_started = 0;
    pthread_t promoter;
    bool promoter_started = false;
    base_err e;

    status = sim_parse_opts(argc, argv, &o);
    if (status != 0) {
        if (status == 1) {
            fputs(rlfeed_sim_usage(), stdout);
        } else {
            fputs("(rlfeed sim --help lists the options)\n", stderr);
        }
        status = status == 1 ? 0 : 2;
        goto done;
    }
    status = 2;
    if (!load_data(&o, &d)) {
        goto done;
    }
    run.d = d;
    e = rlfeed_base_model_new(d, o.dim, o.seed, o.base_acc, &m);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed sim: base model: %s\n", base_strerror(e));
        goto done;
    }
    run.m = m;
    sim_describe_setup(&o, d, m);
    run.n_blocks = (o.n + o.block - 1) / o.block;
    run.blocks = base_alloc_zero(run.n_blocks, sizeof(*run.blocks));
    ws = base_alloc_zero(o.clients, sizeof(*ws));
    if (run.blocks == NULL || ws == NULL || make_order(&run) != BASE_OK) {
        fprintf(stderr, "rlfeed sim: out of memory\n");
        goto done;
    }
    if (!make_ids(&run) || !open_workers(&run, ws)) {
        goto done;
    }
    if (pthread_mutex_init(&run.print_lk, NULL) != 0) {
        fprintf(stderr, "rlfeed sim: cannot create a mutex\n");
        goto done;
    }
    if (pthread_cond_init(&run.printed, NULL) != 0) {
        pthread_mutex_destroy(&run.print_lk);
        fprintf(stderr, "rlfeed sim: cannot create a condition variable\n");
        goto done;
    }
    lock_ready = true;
    if (!sim_apply_serving(&run, ws[0].client)) {
        goto done;
    }
    sim_print_header();
    run.start_ns = base_mono_ns();
    if (o.n_promote > 0) {
        if (pthread_create(&promoter, NULL, sim_promoter_main, &run) != 0) {
            fprintf(stderr, "rlfeed sim: cannot start the promotion thread\n");
            goto done;
        }
        promoter_started = true;
    }
    for (uint32_t t = 0; t < o.clients; t++) {
        if (pthread_create(&ws[t].thread, NULL, worker_main, &ws[t]) != 0) {
            fprintf(stderr, "rlfeed sim: cannot start thread %u\n", t);
            atomic_store(&run.stop, true);
            atomic_fetch_add(&run.n_errors, 1); /* the run is incomplete: fail it */
            break;
        }
        n_started++;
    }
    for (uint32_t t = 0; t < n_started; t++) {
        (void)pthread_join(ws[t].thread, NULL); /* fails only for a bad thread id */
    }
    sim_print_ready(&run);
    if (promoter_started) {
        (void)pthread_join(promoter, NULL); /* every block is printed: it runs what is left */
        promoter_started = false;
    }
    sim_print_summary(&run, (double)(base_mono_ns() - run.start_ns) / 1e9);
    sim_print_feedback_warnings(&run);
    sim_print_error_summary(&run);
    status = atomic_load(&run.n_errors) == 0 ? 0 : 1;

done:
    if (promoter_started) {
        pthread_mutex_lock(&run.print_lk);
        atomic_store(&run.stop, true);
        pthread_cond_broadcast(&run.printed);
        pthread_mutex_unlock(&run.print_lk);
        (void)pthread_join(promoter, NULL);
    }
    if (lock_ready) {
        pthread_cond_destroy(&run.printed);
        pthread_mutex_destroy(&run.print_lk);
    }
    run_fini(&run, ws);
    rlfeed_base_model_free(m);
    rlfeed_dataset_free(d);
    return status;
}
