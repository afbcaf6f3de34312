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

void sim_note_reply_error(sim_run *run, uint64_t i, const char *what, const rlfeed_reply *r)
{
    rlfeed_errcode c = r->error.code < PROTO_E_COUNT ? r->error.code : PROTO_E_INTERNAL;

    atomic_fetch_add(&run->by_code[c], 1);
    if (atomic_fetch_add(&run->n_errors, 1) < SIM_SHOW_ERRORS) {
        fprintf(stderr, "rlfeed sim: interaction %" PRIu64 ": %s: %s: %s\n", i, what,
                rlfeed_errcode_name(c), r->error.message);
    }
}

void sim_note_transport_error(sim_run *run, uint64_t i, const char *what, base_err e)
{
    unsigned idx = (unsigned)e <= BASE_EINTERNAL ? (unsigned)e : BASE_EINTERNAL;

    atomic_fetch_add(&run->by_err[idx], 1);
    if (atomic_fetch_add(&run->n_errors, 1) < SIM_SHOW_ERRORS) {
        fprintf(stderr, "rlfeed sim: interaction %" PRIu64 ": %s: %s\n", i, what, base_strerror(e));
    }
    if (atomic_fetch_add(&run->n_transport, 1) + 1 == SIM_MAX_TRANSPORT_ERRORS) {
        fprintf(stderr, "rlfeed sim: %u transport errors, stopping\n", SIM_MAX_TRANSPORT_ERRORS);
        atomic_store(&run->stop, true);
    }
}

static double ratio(uint64_t num, uint64_t den)
{
    return den == 0 ? NAN : (double)num / (double)den;
}

void sim_print_header(void)
{
    printf("%5s %12s %9s %10s %10s %9s %13s %12s %13s\n", "block", "interactions", "base_acc",
           "served_acc", "online_acc", "prod_acc", "model_version", "prod_version",
           "decides_per_s");
    fflush(stdout);
}

/* Print every complete block that follows the last printed one, in order. */
void sim_print_ready(sim_run *run)
{
    const sim_opts *o = run->o;

    pthread_mutex_lock(&run->print_lk);
    while (run->next_print < run->n_blocks && atomic_load(&run->blocks[run->next_print].complete)) {
        sim_block *b = &run->blocks[run->next_print];
        uint64_t done = atomic_load(&b->done);
        uint64_t decided = atomic_load(&b->decided);
        uint64_t so_far = (run->next_print + 1) * o->block;
        double secs = (double)(atomic_load(&b->t_done_ns) - atomic_load(&b->t_start_ns)) / 1e9;
        double served = ratio(atomic_load(&b->served_hits), decided);

        if (so_far > o->n) {
            so_far = o->n;
        }
        char online_version[24] = "-", prod_version[24] = "-"; /* "-": no decide of the slot */
        if (atomic_load(&b->slot_decided[0]) > 0) {
            (void)snprintf(online_version, sizeof(online_version), "%" PRIu64,
                           (uint64_t)atomic_load(&b->max_version)); /* fits */
        }
        if (atomic_load(&b->slot_decided[1]) > 0) {
            (void)snprintf(prod_version, sizeof(prod_version), "%" PRIu64,
                           (uint64_t)atomic_load(&b->max_prod)); /* fits */
        }
        printf("%5" PRIu64 " %12" PRIu64 " %9.4f %10.4f %10.4f %9.4f %13s %12s %13.0f\n",
               run->next_print + 1, so_far, ratio(atomic_load(&b->base_hits), done), served,
               ratio(atomic_load(&b->slot_hits[0]), atomic_load(&b->slot_decided[0])),
               ratio(atomic_load(&b->slot_hits[1]), atomic_load(&b->slot_decided[1])),
               online_version, prod_version, secs > 0.0 ? (double)decided / secs : 0.0);
        fflush(stdout);
        run->last_served_acc = served;
        run->next_print++;
        pthread_cond_broadcast(&run->printed);
    }
    pthread_mutex_unlock(&run->print_lk);
}

void sim_print_error_summary(sim_run *run)
{
    uint64_t total = atomic_load(&run->n_errors);

    if (total > 0) {
        fprintf(stderr, "rlfeed sim: %" PRIu64 " failed requests:", total);
        for (unsigned c = 0; c < PROTO_E_COUNT; c++) {
            uint64_t n = atomic_load(&run->by_code[c]);
            if (n > 0) {
                fprintf(stderr, " %s=%" PRIu64, rlfeed_errcode_name((rlfeed_errcode)c), n);
            }
        }
        for (unsigned c = 0; c <= BASE_EINTERNAL; c++) {
            uint64_t n = atomic_load(&run->by_err[c]);
            if (n > 0) {
                fprintf(stderr, " \"%s\"=%" PRIu64, base_strerror((base_err)c), n);
            }
        }
        uint64_t jobs = atomic_load(&run->n_job_failed);
        if (jobs > 0) {
            fprintf(stderr, " promote_failed=%" PRIu64, jobs);
        }
        fprintf(stderr, "\n");
    }
}

/* A JSON number, or null for NaN (no decisions). */
static json_t *json_num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

void sim_print_summary(sim_run *run, double seconds)
{
    const sim_opts *o = run->o;
    uint64_t done = 0;
    uint64_t decided = 0;
    uint64_t base_hits = 0;
    uint64_t served_hits = 0;
    json_t *j = json_object();
    json_t *src = NULL;
    char *text = NULL;

    uint64_t slot_decided[2] = {0, 0}, slot_hits[2] = {0, 0};
    for (uint64_t b = 0; b < run->n_blocks; b++) {
        for (int k = 0; k < 2; k++) {
            slot_decided[k] += atomic_load(&run->blocks[b].slot_decided[k]);
            slot_hits[k] += atomic_load(&run->blocks[b].slot_hits[k]);
        }
        done += atomic_load(&run->blocks[b].done);
        decided += atomic_load(&run->blocks[b].decided);
        base_hits += atomic_load(&run->blocks[b].base_hits);
        served_hits += atomic_load(&run->blocks[b].served_hits);
    }
    src = o->data != NULL ? json_string(o->data) : json_string("synthetic");
    if (j == NULL || src == NULL) {
        json_decref(src);
        fprintf(stderr, "rlfeed sim: cannot build the summary (out of memory or bad path)\n");
        goto done;
    }
    (void)json_object_set_new(j, "dataset", src); /* failures surface as missing keys */
    (void)json_object_set_new(j, "interactions", json_integer((json_int_t)done));
    (void)json_object_set_new(j, "clients", json_integer(o->clients));
    (void)json_object_set_new(j, "turns", json_integer(o->turns));
    (void)json_object_set_new(j, "delay_ms", json_integer((json_int_t)o->delay_ms));
    (void)json_object_set_new(j, "base_accuracy", json_num(ratio(base_hits, done)));
    (void)json_object_set_new(j, "served_accuracy_last_block", json_num(run->last_served_acc));
    (void)json_object_set_new(j, "served_accuracy", json_num(ratio(served_hits, decided)));
    (void)json_object_set_new(j, "online_decisions", json_integer((json_int_t)slot_decided[0]));
    (void)json_object_set_new(j, "online_accuracy", json_num(ratio(slot_hits[0], slot_decided[0])));
    (void)json_object_set_new(j, "production_decisions", json_integer((json_int_t)slot_decided[1]));
    (void)json_object_set_new(j, "production_accuracy",
                              json_num(ratio(slot_hits[1], slot_decided[1])));
    (void)json_object_set_new(j, "conversation_outcomes",
                              json_integer((json_int_t)atomic_load(&run->n_conv_outcomes)));
    (void)json_object_set_new(j, "late_outcomes",
                              json_integer((json_int_t)atomic_load(&run->n_late)));
    (void)json_object_set_new(j, "max_queued_feedback",
                              json_integer((json_int_t)atomic_load(&run->max_queued)));
    (void)json_object_set_new(j, "feedback_retries",
                              json_integer((json_int_t)atomic_load(&run->n_retried)));
    (void)json_object_set_new(j, "seconds", json_real(seconds));
    (void)json_object_set_new(j, "errors", json_integer((json_int_t)atomic_load(&run->n_errors)));
    text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (text == NULL) {
        fprintf(stderr, "rlfeed sim: cannot print the summary\n");
        goto done;
    }
    printf("%s\n", text);
    fflush(stdout);

done:
    base_free(text); /* jansson allocates through base_alloc (set in main) */
    json_decref(j);
}

void sim_describe_setup(const sim_opts *o, const rlfeed_dataset *d, const rlfeed_base_model *m)
{
    fprintf(stderr, "rlfeed sim: dataset %s: %u rows, %u classes, %u features",
            o->data != NULL ? o->data : "synthetic", d->n_rows, d->n_classes, d->n_features);
    if (o->data == NULL) {
        fprintf(stderr, " (within-class sd %.3f, nearest-true-mean accuracy %.3f)", d->synth_sd,
                d->synth_bayes_acc);
    }
    fprintf(stderr,
            "\nrlfeed sim: base model: dim %u, logit noise %.3f, sharpness %.3f; calibrated "
            "base accuracy %.4f (target %.4f), softmax-sampled %.4f\n",
            o->dim, rlfeed_base_model_noise_scale(m), rlfeed_base_model_sharpness(m),
            rlfeed_base_model_calib_accuracy(m), o->base_acc,
            rlfeed_base_model_calib_softmax_accuracy(m));
    fprintf(stderr, "rlfeed sim: %" PRIu64 " interactions, %u clients, policy %s at %s\n", o->n,
            o->clients, o->policy, o->url);
    if (o->turns > 1) {
        fprintf(stderr,
                "rlfeed sim: conversations of %u turns (sim-%" PRIu64 "-c<n>); \"resolved\" "
                "once per conversation, by conversation_id\n",
                o->turns, o->seed);
    }
    if (o->delay_ms > 0) {
        fprintf(stderr,
                "rlfeed sim: feedback posted uniform [0, %" PRIu64 "] ms after its decide\n",
                o->delay_ms);
    }
    if (o->delay_ms >= SIM_DEMO_WINDOW_MS) {
        fprintf(stderr,
                "rlfeed sim: warning: --delay-ms %" PRIu64 " is not below %u ms, the window_ms of "
                "examples/demo.ini: outcomes after a policy's window_ms are \"late\" and never "
                "learned from\n",
                o->delay_ms, SIM_DEMO_WINDOW_MS);
    }
}

/* Outcomes the service took but will not learn from, and feedback never sent. */
void sim_print_feedback_warnings(sim_run *run)
{
    uint64_t late = atomic_load(&run->n_late);
    uint64_t dropped = atomic_load(&run->n_dropped);

    if (late > 0) {
        fprintf(stderr,
                "rlfeed sim: warning: %" PRIu64 " outcomes arrived after their join window closed "
                "(\"late\"): --delay-ms (plus a conversation's length) must stay below the "
                "policy's window_ms\n",
                late);
    }
    if (dropped > 0) {
        fprintf(stderr, "rlfeed sim: %" PRIu64 " delayed feedbacks not sent: the run stopped\n",
                dropped);
    }
}
