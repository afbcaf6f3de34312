#include "tools/erase.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "proto/auth.h"
#include "storage/erase.h"
#include "storage/server.h"
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
        uint8_t kept[PROTO_AUTH_KEY_BYTES];
        bool found = false;
        if (ok && sto_pseudonym_key_get(s, kept, &found) == BASE_OK && found &&
            memcmp(kept, key, sizeof(kept)) != 0) {
            fprintf(stderr,
                    "rlfeed erase: note: --pseudonym-key %s is not the key kept in this Redis "
                    "(rlfeed:pseudonym-key), which an rlfeedd without pseudonym_key used\n",
                    file);
        }
        proto_secret_wipe(kept, sizeof(kept));
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

#define AOF_REWRITE_TIMEOUT_MS 600000

/*
 * --data-dir: the private redis-server of a stopped rlfeedd, started on its data directory as
 * rlfeedd starts it (the directory's lock refuses while an rlfeedd runs there).
 */
static sto_server *start_private(const char *dir)
{
    sto_server *srv = NULL;
    char err[512] = "", conf[PATH_MAX + 16];
    struct stat st;
    (void)snprintf(conf, sizeof(conf), "%s/redis.conf", dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || stat(conf, &st) != 0) {
        fprintf(stderr,
                "rlfeed erase: --data-dir %s is not the data directory of an rlfeedd that ran "
                "its private redis-server (no %s)\n",
                dir, conf);
        return NULL;
    }
    sto_server_opts o = {.dir = dir, .unix_socket = true, .auth = true};
    base_err e = sto_server_start(&o, &srv, err, sizeof(err));
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed erase: --data-dir %s: %s%s\n", dir, err,
                strstr(err, "in use") != NULL ? ": stop rlfeedd first" : "");
        return NULL;
    }
    return srv;
}

int rlfeed_erase_main(int argc, char **argv)
{
    regcmd_common c = {.cmd = "erase"};
    const char *user = NULL, *conv = NULL, *key_file = NULL, *data_dir = NULL;
    bool dry_run = false;
    sto_store *s = NULL;
    sto_server *srv = NULL;
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
            rc = regcmd_opt(c.cmd, argc, argv, &i, "--data-dir", &data_dir);
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
    if (data_dir != NULL && c.redis_url != NULL) {
        fprintf(stderr, "rlfeed erase: give --redis URL or --data-dir DIR, not both\n");
        goto done;
    }
    if (data_dir != NULL && (srv = start_private(data_dir)) == NULL) {
        goto done;
    }
    if (srv != NULL) {
        c.redis_url = sto_server_url(srv);
        c.where = "--data-dir";
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
    base_err erased = sto_erase(s, c.policy, pu, pc, dry_run, &rep);
    if (erased != BASE_OK) {
        fprintf(stderr, "rlfeed erase: %s (run it again: it finishes what this run began)\n",
                regcmd_strerror(s, erased));
    }
    char nd[24], no[24], nj[24], ni[24];
    snprintf(nd, sizeof(nd), "%" PRIu64, rep.decisions);
    snprintf(no, sizeof(no), "%" PRIu64, rep.outcomes);
    snprintf(nj, sizeof(nj), "%" PRIu64, rep.joined);
    snprintf(ni, sizeof(ni), "%" PRIu64, rep.inbox);
    char id[BASE_STREAM_ID_MAX + 1] = "";
    uint64_t removed = rep.decisions + rep.outcomes + rep.joined + rep.inbox;
    if (removed == 0 && erased == BASE_OK) {
        fprintf(stderr,
                "rlfeed erase: nothing of that customer in policy %s (ids are matched by their "
                "pseudonyms: the key rlfeedd used, --pseudonym-key or the one kept in Redis)\n",
                c.policy);
    }
    if (!dry_run && removed > 0) {
        /*
         * The audit entry says what was removed, never whose: no id, raw or pseudonymised.
         * Written as soon as records are gone, before the compaction, which may fail.
         */
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
    if (erased != BASE_OK) {
        goto done;
    }
    /* The bytes: the streams rewritten, then the AOF, which still holds them in its history. */
    uint64_t compacted = 0;
    if (!dry_run) {
        e = sto_erase_compact(s, c.policy, &compacted);
        if (e != BASE_OK) {
            fprintf(stderr,
                    "rlfeed erase: the removed records' bytes are still in Redis: %s (run it "
                    "again to finish)\n",
                    regcmd_strerror(s, e));
            goto done;
        }
        if (removed == 0 && compacted > 0) {
            fprintf(stderr,
                    "rlfeed erase: finished what an earlier, interrupted erase of policy %s "
                    "left: %" PRIu64 " streams rewritten\n",
                    c.policy, compacted);
        }
    }
    bool rewritten = false, rdb = false;
    char aof[200] = "";
    if (!dry_run && removed + compacted > 0) {
        e = sto_rewrite_aof(s, AOF_REWRITE_TIMEOUT_MS, &rewritten, aof, sizeof(aof));
        if (e != BASE_OK) {
            (void)snprintf(aof, sizeof(aof), "BGREWRITEAOF: %s", regcmd_strerror(s, e));
        }
        if (!rewritten) {
            fprintf(stderr,
                    "rlfeed erase: note: the removed records stay in files on disk until Redis "
                    "rewrites its append-only file (BGREWRITEAOF) and saves its RDB: %s\n",
                    aof);
        }
        /* A dump.rdb in the data directory (a backup's BGSAVE) is saved again, without them. */
        char dump[PATH_MAX + 16];
        struct stat st;
        (void)snprintf(dump, sizeof(dump), "%s/dump.rdb", data_dir != NULL ? data_dir : "");
        if (data_dir != NULL && stat(dump, &st) == 0) {
            e = sto_save_rdb(s);
            rdb = e == BASE_OK;
            if (!rdb) {
                fprintf(stderr, "rlfeed erase: %s still holds the removed records: SAVE: %s\n",
                        dump, regcmd_strerror(s, e));
            }
        }
    }
    if (c.json) {
        json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:s, s:b, s:s, s:b}", "policy",
                              c.policy, "dry_run", dry_run, "decisions", (json_int_t)rep.decisions,
                              "outcomes", (json_int_t)rep.outcomes, "joined",
                              (json_int_t)rep.joined, "inbox", (json_int_t)rep.inbox,
                              "conversations", (json_int_t)rep.conversations, "audit_id", id,
                              "aof_rewritten", rewritten, "aof_note", aof, "rdb_saved", rdb);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", text != NULL ? text : "{}");
        base_free(text);
        json_decref(o);
    } else {
        printf("%s: %s %" PRIu64 " decisions, %" PRIu64 " outcomes, %" PRIu64
               " joined examples, %" PRIu64 " inbox entries (%" PRIu64 " conversations)%s%s%s\n",
               c.policy, dry_run ? "would erase" : "erased", rep.decisions, rep.outcomes,
               rep.joined, rep.inbox, rep.conversations, id[0] != '\0' ? "; audit " : "", id,
               rewritten ? "; append-only file rewritten" : "");
        if (rdb) {
            printf("%s/dump.rdb saved again\n", data_dir);
        }
    }
    status = REGCMD_EXIT_OK;
done:
    sto_store_close(s);
    sto_server_stop(srv);
    return status;
}
