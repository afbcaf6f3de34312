#include "tools/erase.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/alloc.h"
#include "proto/auth.h"
#include "tools/regcmd.h"

/* The pseudonym key: the file rlfeedd's pseudonym_key names, else the one kept in Redis. */
static bool load_key(sto_store *s, const char *file, uint8_t key[PROTO_AUTH_KEY_BYTES])
{
    char why[160];
    if (file != NULL) {
        bool ok = proto_pseudonym_key_load(file, key, why, sizeof(why));
        if (!ok) {
            fprintf(stderr, "rlfeed erase: --pseudonym-key %s: %s\n", file, why);
        }
        return ok;
    }
    bool found = false;
    base_err e = sto_pseudonym_key_get(s, key, &found);
    if (e != BASE_OK || !found) {
        fprintf(stderr,
                "rlfeed erase: %s: give --pseudonym-key FILE (the file [server] pseudonym_key "
                "names)\n",
                e != BASE_OK ? regcmd_strerror(s, e) : "no pseudonym key in Redis");
        return false;
    }
    return true;
}

int rlfeed_erase_main(int argc, char **argv)
{
    regcmd_common c = {.cmd = "erase"};
    const char *user = NULL, *conv = NULL, *key_file = NULL;
    bool dry_run = false;
    sto_store *s = NULL;
    int status = REGCMD_EXIT_ERROR;
    uint8_t key[PROTO_AUTH_KEY_BYTES];
    char pu[PROTO_PSEUDONYM_LEN + 1] = "", pc[PROTO_PSEUDONYM_LEN + 1] = "";
    char owner[256];

    for (int i = 0; i < argc; i++) {
        int rc = regcmd_take_common(&c, argc, argv, &i);
        if (rc == 0 && strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
            rc = 1;
        }
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--user", &user);
        }
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--conversation", &conv);
        }
        if (rc == 0) {
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--pseudonym-key", &key_file);
        }
        if (rc == 0) {
            fprintf(stderr, "rlfeed erase: unknown argument '%s'\n", argv[i]);
        }
        if (rc != 1) {
            goto done;
        }
    }
    if ((user == NULL || user[0] == '\0') && (conv == NULL || conv[0] == '\0')) {
        fprintf(stderr, "rlfeed erase: give --user U and/or --conversation C\n");
        goto done;
    }
    if ((user != NULL && strlen(user) > BASE_ID_MAX) ||
        (conv != NULL && strlen(conv) > BASE_ID_MAX)) {
        fprintf(stderr, "rlfeed erase: ids are at most %d bytes\n", BASE_ID_MAX);
        goto done;
    }
    if (!regcmd_finish_common(&c)) {
        goto done;
    }
    s = regcmd_open_policy(&c);
    if (s == NULL) {
        goto done;
    }
    base_err e = sto_lease_holder(s, c.policy, owner, sizeof(owner));
    if (e == BASE_OK && owner[0] != '\0') {
        fprintf(stderr,
                "rlfeed erase: rlfeedd instance \"%s\" holds policy %s: stop it first (its "
                "in-memory state would store the records again)\n",
                owner, c.policy);
        goto done;
    }
    if (e != BASE_OK || !load_key(s, key_file, key)) {
        if (e != BASE_OK) {
            fprintf(stderr, "rlfeed erase: %s\n", regcmd_strerror(s, e));
        }
        goto done;
    }
    proto_pseudonym(key, "user", user != NULL ? user : "", pu);
    proto_pseudonym(key, "conversation", conv != NULL ? conv : "", pc);
    sto_erase_report rep;
    e = sto_erase(s, c.policy, pu, pc, dry_run, &rep);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed erase: %s (some records may be gone: run it again)\n",
                regcmd_strerror(s, e));
        goto done;
    }
    char nd[24], no[24], nj[24], ni[24];
    snprintf(nd, sizeof(nd), "%" PRIu64, rep.decisions);
    snprintf(no, sizeof(no), "%" PRIu64, rep.outcomes);
    snprintf(nj, sizeof(nj), "%" PRIu64, rep.joined);
    snprintf(ni, sizeof(ni), "%" PRIu64, rep.inbox);
    char id[BASE_STREAM_ID_MAX + 1] = "";
    if (!dry_run) {
        /* The audit entry says what was removed, never whose: no id, raw or pseudonymised. */
        sto_field fields[] = {{"action", "erase"},
                              {"who", c.who},
                              {"decisions", nd},
                              {"outcomes", no},
                              {"joined", nj},
                              {"inbox", ni},
                              {"by", user != NULL && conv != NULL ? "user and conversation"
                                     : user != NULL               ? "user"
                                                                  : "conversation"}};
        sto_change ch = {.fields = fields, .n_fields = 7};
        sto_change_result res;
        uint64_t prod = 0;
        e = sto_registry_change(s, c.policy, &ch, &res, &prod, id);
        if (e != BASE_OK) {
            fprintf(stderr, "rlfeed erase: records removed, but the audit entry failed: %s\n",
                    regcmd_strerror(s, e));
            goto done;
        }
    }
    if (c.json) {
        json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:s}", "policy", c.policy,
                              "dry_run", dry_run, "decisions", (json_int_t)rep.decisions,
                              "outcomes", (json_int_t)rep.outcomes, "joined",
                              (json_int_t)rep.joined, "inbox", (json_int_t)rep.inbox,
                              "conversations", (json_int_t)rep.conversations, "audit_id", id);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", text != NULL ? text : "{}");
        base_free(text);
        json_decref(o);
    } else {
        printf("%s: %s %" PRIu64 " decisions, %" PRIu64 " outcomes, %" PRIu64
               " joined examples, %" PRIu64 " inbox entries (%" PRIu64 " conversations)%s%s\n",
               c.policy, dry_run ? "would erase" : "erased", rep.decisions, rep.outcomes,
               rep.joined, rep.inbox, rep.conversations, id[0] != '\0' ? "; audit " : "", id);
    }
    status = REGCMD_EXIT_OK;
done:
    sto_store_close(s);
    return status;
}
