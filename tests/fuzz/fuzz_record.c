/*
 * Fuzz target for the storage record decoders: every input goes through all
 * four decoders. A record that decodes must encode again and decode to the
 * same bytes (the encoders refuse nothing the decoders accept); any
 * violation aborts, which the fuzzer and the corpus replay report as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/record.h"
#include "storage/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Re-encode with @enc and check the bytes decode by @dec and re-encode identically. */
#define CHECK_STABLE(rec, enc, dec, type, freefn)                                                  \
    do {                                                                                           \
        base_buf b1_, b2_;                                                                         \
        type *again_ = NULL;                                                                       \
        base_buf_init(&b1_, (size_t)1 << 26);                                                      \
        base_buf_init(&b2_, (size_t)1 << 26);                                                      \
        base_err e_ = enc((rec), &b1_);                                                            \
        if (e_ == BASE_OK) {                                                                       \
            if (dec(b1_.data, b1_.len, &again_) != BASE_OK || enc(again_, &b2_) != BASE_OK ||      \
                b1_.len != b2_.len || memcmp(b1_.data, b2_.data, b1_.len) != 0) {                  \
                abort();                                                                           \
            }                                                                                      \
        } else if (e_ != BASE_ENOMEM) {                                                            \
            abort();                                                                               \
        }                                                                                          \
        freefn(again_);                                                                            \
        base_buf_fini(&b1_);                                                                       \
        base_buf_fini(&b2_);                                                                       \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    base_decision *d = NULL;
    base_outcome *o = NULL;
    base_joined *j = NULL;
    base_snapshot *m = NULL;

    if (sto_codec_decode_decision(data, size, &d) == BASE_OK) {
        CHECK_STABLE(d, sto_codec_encode_decision, sto_codec_decode_decision, base_decision,
                     base_decision_free);
    }
    if (sto_codec_decode_outcome(data, size, &o) == BASE_OK) {
        CHECK_STABLE(o, sto_codec_encode_outcome, sto_codec_decode_outcome, base_outcome,
                     base_free);
    }
    if (sto_codec_decode_joined(data, size, &j) == BASE_OK) {
        CHECK_STABLE(j, sto_codec_encode_joined, sto_codec_decode_joined, base_joined,
                     base_joined_free);
    }
    if (sto_codec_decode_model(data, size, &m) == BASE_OK) {
        CHECK_STABLE(m, sto_codec_encode_model, sto_codec_decode_model, base_snapshot,
                     base_snapshot_free);
    }
    base_decision_free(d);
    base_free(o);
    base_joined_free(j);
    base_snapshot_free(m);
    return 0;
}
