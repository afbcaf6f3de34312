/*
 * Fuzz target for the configuration loader (service/config.c): every input is taken as the
 * text of an INI file. A file that loads must hold what the daemon relies on (at least one
 * URL and one policy, each with a dimension, actions and a signal, values in their ranges)
 * and pass the exposure check without harm; a file that does not load must say why. Anything
 * else aborts, as do crashes and leaks under the sanitizers. Built with libFuzzer under
 * -Dfuzzing=true, else replayed over tests/fuzz/corpus/fuzz_config/ by replay_main.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "service/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void loaded_must_hold(const svc_config *c)
{
    if (c->n_urls < 1 || c->n_urls > SVC_MAX_URLS || c->n_policies < 1 ||
        c->n_policies > SVC_MAX_POLICIES || c->contexts < 1 || c->write_queue < 16 ||
        c->group_commit_us > 100000 || (c->ipc_mode & 0600) != 0600 || c->ipc_mode > 0777) {
        abort();
    }
    for (uint32_t i = 0; i < c->n_policies; i++) {
        const svc_policy_config *p = &c->policy[i];
        if (p->name[0] == '\0' || p->head.dim == 0 || (!p->open_actions && p->n_actions == 0) ||
            svc_config_policy(c, p->name) != p) {
            abort();
        }
    }
    char exposed[SVC_URL_MAX], err[512];
    (void)svc_config_check_exposure(c, exposed, sizeof(exposed), err, sizeof(err));
    (void)svc_config_check_tls(c, err, sizeof(err));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static svc_config cfg; /* 370 KB: one for the run, not one per input */
    svc_config *c = &cfg;
    char *text = base_alloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0'; /* an embedded NUL ends the file early, as it would for the reader */
    char err[512] = "";
    base_err e = svc_config_load_string(text, c, err, sizeof(err));
    if (e == BASE_OK) {
        loaded_must_hold(c);
        svc_config_fini(c);
    } else if (err[0] == '\0') {
        abort();
    }
    base_free(text);
    return 0;
}
