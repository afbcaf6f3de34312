/*
 * rlfeed-bench-auth: what authentication (auth = on) and pseudonyms cost per request, on one
 * core, with the prepared keys rlfeedd keeps: signing a decide (the client), checking its
 * proof (the daemon), and one pseudonym (the daemon, per user or conversation id).
 * Requests: decide, K = 16 candidates, d = 64 and 768, a conversation id.
 *
 *   rlfeed-bench-auth [N]      (N iterations per measurement, default 200000)
 *
 * Prints one line per size and a JSON line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "proto/auth.h"
#include "proto/request.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    static float emb[768];
    static const uint8_t key[PROTO_AUTH_KEY_BYTES] = {1, 2, 3};
    const char *ids[16];
    float bl[16] = {0};
    char names[16][8], json[512] = "", p[PROTO_PSEUDONYM_LEN + 1];
    long n = argc > 1 ? atol(argv[1]) : 200000;
    proto_mac_key *mk = proto_mac_key_new(key);
    if (n <= 0 || mk == NULL) {
        fprintf(stderr, "usage: rlfeed-bench-auth [N]\n");
        return 2;
    }
    for (int i = 0; i < 16; i++) {
        snprintf(names[i], sizeof(names[i]), "a%d", i);
        ids[i] = names[i];
    }
    for (uint32_t dim = 64; dim <= 768; dim *= 12) {
        proto_decide_req q = {.policy = "faq",
                              .event_id = "ev-1",
                              .conversation_id = "conv-1",
                              .embedding = emb,
                              .dim = dim,
                              .n_cand = 16,
                              .cand_ids = ids,
                              .base_logits = bl};
        base_buf plain, b;
        proto_request r;
        proto_error err;
        base_buf_init(&plain, 1u << 20);
        base_buf_init(&b, 1u << 20);
        (void)proto_encode_decide(&plain, &q);
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            base_buf_reset(&b);
            (void)base_buf_append(&b, plain.data, plain.len);
            (void)proto_auth_sign(&b, "fe", key, 1700000000000, "0123456789abcdef01234567");
        }
        double t1 = now_s();
        if (proto_request_decode(b.data, b.len, &r, &err) != BASE_OK) {
            return 1;
        }
        long ok = 0;
        for (long i = 0; i < n; i++) {
            ok += proto_auth_verify_with(mk, b.data, b.len, &r.auth);
        }
        double t2 = now_s();
        for (long i = 0; i < n; i++) {
            proto_pseudonym_with(mk, "conversation", "conv-2026-12-02-000042", p);
        }
        double t3 = now_s();
        proto_request_fini(&r);
        double sign = (t1 - t0) / (double)n * 1e6, verify = (t2 - t1) / (double)n * 1e6,
               pseudo = (t3 - t2) / (double)n * 1e6;
        printf("d=%u: request %zu bytes (signed %zu): sign %.2f us, verify %.2f us, pseudonym "
               "%.2f us%s\n",
               dim, plain.len, b.len, sign, verify, pseudo, ok == n ? "" : " (VERIFY FAILED)");
        size_t used = strlen(json);
        snprintf(json + used, sizeof(json) - used,
                 "%s{\"dim\":%u,\"bytes\":%zu,\"sign_us\":%.2f,\"verify_us\":%.2f,"
                 "\"pseudonym_us\":%.2f}",
                 used > 0 ? "," : "", dim, b.len, sign, verify, pseudo);
        base_buf_fini(&plain);
        base_buf_fini(&b);
        if (ok != n) {
            return 1;
        }
    }
    printf("{\"bench\":\"auth\",\"n\":%ld,\"results\":[%s]}\n", n, json);
    proto_mac_key_free(mk);
    return 0;
}
