/*
 * rlfeed: the command-line client.
 *
 *   rlfeed decide|log|feedback|stats|health|call [--url URL] [--timeout-ms N] [JSON|-]
 *   rlfeed sim [options]
 *   rlfeed promote|rollback|history|audit|serve|erase --policy P [--redis URL] [options]
 *   rlfeed policy put|get|list|retire [--redis URL] [options]
 *
 * The request body is the JSON argument, or stdin when it is absent or "-"
 * (an empty body, or no argument with a terminal on stdin, is {}). "v":1 and
 * "op" (the subcommand) are filled in when missing; `call` sends any op and
 * requires "op". The reply is printed as one line of JSON. Exit status: 0 for
 * "ok":true, 1 for "ok":false (the reply is still printed), 2 for usage
 * errors, bad JSON and transport failures (message on stderr). The registry
 * commands have their own exit codes (tools/regcmd.h).
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <gsl/gsl_errno.h>
#include <jansson.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "client/rlfeed_client.h"
#include "bench/learn.h"
#include "bench/serve.h"
#include "tools/policycmd.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "tools/erase.h"
#include "tools/keycmd.h"
#include "tools/promote.h"
#include "tools/registry_cli.h"
#include "tools/sim.h"

#define CLI_MAX_JSON (16u << 20) /* bytes of a JSON request body */
#define CLI_DEFAULT_TIMEOUT_MS 5000

enum { EXIT_OK_REPLY = 0, EXIT_ERROR_REPLY = 1, EXIT_USAGE = 2 };

typedef struct cli_args {
    const char *cmd;
    const char *url;
    const char *body;     /* NULL or "-": stdin */
    const char *policy;   /* --policy: "policy" when the body has none */
    const char *event_id; /* explain EVENT_ID: "event_id" when the body has none */
    const char *key_file; /* --key, else $RLFEED_KEY: sign requests (proto/auth.h) */
    const char *tls_ca;   /* --tls-ca, else $RLFEED_TLS_CA: for tls+tcp:// URLs */
    const char *tls_cert; /* --tls-cert, else $RLFEED_TLS_CERT: a client certificate */
    const char *tls_key;  /* --tls-key, else $RLFEED_TLS_KEY: its key ("": in tls_cert) */
    const char *tls_name; /* --tls-name: the name the server's certificate must carry */
    int timeout_ms;
} cli_args;

static const char *const request_cmds[] = {"decide", "log",    "feedback", "explain",
                                           "stats",  "health", "call"};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rlfeed <command> [--url URL] [--timeout-ms N] [--policy P] [JSON|-]\n"
            "       rlfeed explain --policy P EVENT_ID\n"
            "       rlfeed sim [options]      (rlfeed sim --help)\n"
            "       rlfeed promote|rollback|history|audit|serve|erase --policy P [--redis URL]\n"
            "              [options]\n"
            "       rlfeed policy put|get|list|retire [--redis URL] [options]\n"
            "       rlfeed key|bench ...      (rlfeed key --help, rlfeed bench --help)\n"
            "\n"
            "commands:\n"
            "  decide     choose among candidates\n"
            "             {\"policy\":..,\"context\":{\"embedding\":[..]},\n"
            "              \"candidates\":[{\"id\":..,\"base_logit\":..}]}\n"
            "  log        record a decision made elsewhere, with its pmf\n"
            "  feedback   report an outcome\n"
            "             {\"policy\":..,\"event_id\":..,\"signal\":..,\"value\":1}\n"
            "  explain    why a logged decision was served as it was\n"
            "             {\"policy\":..,\"event_id\":..}\n"
            "  stats      service and policy counters\n"
            "  health     liveness and readiness\n"
            "  call       send any request; the body must carry \"op\"\n"
            "  sim        simulated chatbot traffic against a running rlfeedd\n"
            "  key new NAME [--out FILE]\n"
            "             a new client key: writes the key file (mode 0600) and prints the\n"
            "             [client NAME] lines for rlfeedd's configuration (docs/security.md)\n"
            "  bench      learning benchmark (rlfeed bench learn --help), serving\n"
            "             benchmark against the raw ceilings (rlfeed bench serve --help) and\n"
            "             open action sets' feature maps (rlfeed bench features --help)\n"
            "\n"
            "registry commands (Redis, not the daemon; docs/promotion.md):\n"
            "  promote    evaluate a candidate against production on the joined log and\n"
            "             promote it if the gate says so\n"
            "             [--candidate VERSION] [--window 24h] [--estimator dr|snips|ips]\n"
            "             [--confidence 0.95] [--margin M] [--min-samples N] [--max-samples N]\n"
            "             [--seed S] [--holdout] [--dry-run] [--plot FILE.svg]\n"
            "             exit 0 promoted, 3 held (or already production), 4 data not fit\n"
            "  rollback   move production back [--to VERSION] (0: the base model) [--reason TEXT]\n"
            "  history    promotions, rollbacks and overrides, oldest first [--limit N]\n"
            "  audit      the whole audit trail (also the daemon's restore, config and\n"
            "             retention entries), oldest first [--limit N]\n"
            "  serve      serving overrides [--mode online|production] [--canary SHARE] [--clear]\n"
            "  erase      remove one customer's records (rlfeedd stopped): --user U and/or\n"
            "             --conversation C [--pseudonym-key FILE] [--data-dir DIR] [--dry-run]\n"
            "  policy     the policy catalog rlfeedd follows: put --file P.ini (a definition,\n"
            "             or a whole config with --policy P), get [--version N], list, retire\n"
            "  each takes --policy P (required, but by policy put and policy list),\n"
            "  --redis URL (default $RLFEED_REDIS), --who NAME (default $USER@hostname) and\n"
            "  --json; exit 2 on errors\n"
            "\n"
            "The body is the JSON argument, or stdin when absent or \"-\". \"v\":1 and \"op\"\n"
            "are added when missing, \"policy\" from --policy. The reply is printed as JSON.\n"
            "  --url URL        default $RLFEED_URL, else " RLFEED_CLIENT_DEFAULT_URL "\n"
            "  --timeout-ms N   send and receive bound (default %d)\n"
            "  --key FILE       sign requests with this client key (default $RLFEED_KEY;\n"
            "                   needed when rlfeedd runs with auth = on)\n"
            "  --tls-ca FILE    for a tls+tcp:// URL: the CAs (PEM) the server must chain to\n"
            "                   (default $RLFEED_TLS_CA)\n"
            "  --tls-cert FILE  a client certificate (PEM) for mutual TLS, --tls-key FILE its\n"
            "                   key if not in the same file ($RLFEED_TLS_CERT, $RLFEED_TLS_KEY)\n"
            "  --tls-name NAME  the DNS name the server's certificate must carry (default:\n"
            "                   the URL's host; an IP address matches no certificate)\n"
            "Exit status: 0 ok:true, 1 ok:false, 2 usage, bad JSON or connection failure.\n",
            CLI_DEFAULT_TIMEOUT_MS);
}

static const char *default_url(void)
{
    const char *env = getenv("RLFEED_URL");
    return env != NULL && env[0] != '\0' ? env : RLFEED_CLIENT_DEFAULT_URL;
}

static bool is_request_cmd(const char *cmd)
{
    bool found = false;
    for (size_t i = 0; i < sizeof(request_cmds) / sizeof(request_cmds[0]); i++) {
        found = found || strcmp(cmd, request_cmds[i]) == 0;
    }
    return found;
}

/* Whether @s is the option @name, alone or as name=value. */
static bool opt_is(const char *s, const char *name)
{
    size_t n = strlen(name);
    return strncmp(s, name, n) == 0 && (s[n] == '\0' || s[n] == '=');
}

/* Parse the arguments after the command. Returns 0, 1 for --help, 2 on error. */
static int parse_args(int argc, char **argv, cli_args *a)
{
    int rc = EXIT_USAGE;

    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        const char *v = NULL;
        bool is_url = strncmp(s, "--url", 5) == 0 && (s[5] == '\0' || s[5] == '=');
        bool is_tmo = strncmp(s, "--timeout-ms", 12) == 0 && (s[12] == '\0' || s[12] == '=');
        bool is_pol = strncmp(s, "--policy", 8) == 0 && (s[8] == '\0' || s[8] == '=');
        bool is_key = strncmp(s, "--key", 5) == 0 && (s[5] == '\0' || s[5] == '=');
        const char **tls_opt = opt_is(s, "--tls-ca")     ? &a->tls_ca
                               : opt_is(s, "--tls-cert") ? &a->tls_cert
                               : opt_is(s, "--tls-key")  ? &a->tls_key
                               : opt_is(s, "--tls-name") ? &a->tls_name
                                                         : NULL;

        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            rc = 1;
            goto done;
        }
        if (is_url || is_tmo || is_pol || is_key || tls_opt != NULL) {
            const char *eq = strchr(s, '=');
            if (eq != NULL) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                fprintf(stderr, "rlfeed %s: %s needs a value\n", a->cmd, s);
                goto done;
            }
            if (is_url) {
                a->url = v;
            } else if (tls_opt != NULL) {
                *tls_opt = v;
            } else if (is_key) {
                a->key_file = v;
            } else if (is_pol) {
                a->policy = v;
            } else {
                char *end = NULL;
                errno = 0;
                long t = strtol(v, &end, 10);
                if (errno != 0 || end == v || *end != '\0' || t < 1 || t > 3600000) {
                    fprintf(stderr, "rlfeed %s: bad --timeout-ms '%s'\n", a->cmd, v);
                    goto done;
                }
                a->timeout_ms = (int)t;
            }
        } else if (s[0] == '-' && s[1] == '-') {
            fprintf(stderr, "rlfeed %s: unknown option '%s'\n", a->cmd, s);
            goto done;
        } else if (a->body == NULL) {
            a->body = s;
        } else {
            fprintf(stderr, "rlfeed %s: more than one request body\n", a->cmd);
            goto done;
        }
    }
    /* rlfeed explain EVENT_ID: a bare argument that is not a JSON body names the event. */
    if (strcmp(a->cmd, "explain") == 0 && a->body != NULL && strcmp(a->body, "-") != 0 &&
        a->body[strspn(a->body, " \t\r\n")] != '{') {
        a->event_id = a->body;
        a->body = "{}";
        if (a->policy == NULL) {
            fprintf(stderr, "rlfeed explain: EVENT_ID needs --policy P\n");
            goto done;
        }
    }
    rc = 0;

done:
    return rc;
}

/* Read all of stdin (at most CLI_MAX_JSON bytes), NUL-terminated, into @b. */
static base_err read_stdin(base_buf *b)
{
    base_err e = BASE_OK;
    char chunk[65536];
    size_t n;

    for (;;) {
        n = fread(chunk, 1, sizeof(chunk), stdin);
        if (n > 0) {
            e = base_buf_append(b, chunk, n);
            if (e != BASE_OK) {
                goto done;
            }
        }
        if (n < sizeof(chunk)) {
            break;
        }
    }
    e = ferror(stdin) ? BASE_EIO : base_buf_append(b, "", 1);

done:
    return e;
}

/* The body text: the argument, stdin (kept in @b), or "{}". */
static base_err body_text(const cli_args *a, base_buf *b, const char **out_text)
{
    base_err e = BASE_OK;
    bool from_stdin = a->body == NULL || strcmp(a->body, "-") == 0;

    if (!from_stdin) {
        /* An empty or blank argument is `{}`, as empty input is. */
        *out_text = a->body[strspn(a->body, " \t\r\n")] == '\0' ? "{}" : a->body;
    } else if (a->body == NULL && isatty(STDIN_FILENO)) {
        *out_text = "{}"; /* `rlfeed health` at a prompt must not wait for input */
    } else {
        e = read_stdin(b);
        if (e == BASE_OK) {
            const char *t = (const char *)b->data;
            size_t k = strspn(t, " \t\r\n");
            *out_text = t[k] == '\0' ? "{}" : t;
        }
    }
    return e;
}

/*
 * Parse @text, add "v" and "op" when missing, and encode it as msgpack into
 * @out. Returns false after printing why on stderr.
 */
static bool build_request(const cli_args *a, const char *text, base_buf *out)
{
    json_error_t jerr;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    json_t *op = NULL;
    char *dumped = NULL;
    char errbuf[256] = "";
    bool is_call = strcmp(a->cmd, "call") == 0;
    bool ok = false;
    base_err e;

    if (root == NULL) {
        fprintf(stderr, "rlfeed %s: bad JSON at line %d column %d: %s\n", a->cmd, jerr.line,
                jerr.column, jerr.text);
        goto done;
    }
    if (!json_is_object(root)) {
        fprintf(stderr, "rlfeed %s: the request must be a JSON object\n", a->cmd);
        goto done;
    }
    if ((a->policy != NULL && json_object_get(root, "policy") == NULL &&
         json_object_set_new(root, "policy", json_string(a->policy)) != 0) ||
        (a->event_id != NULL && json_object_get(root, "event_id") == NULL &&
         json_object_set_new(root, "event_id", json_string(a->event_id)) != 0)) {
        fprintf(stderr, "rlfeed %s: bad --policy or event id (not UTF-8?)\n", a->cmd);
        goto done;
    }
    if (json_object_get(root, "v") == NULL &&
        json_object_set_new(root, "v", json_integer(PROTO_VERSION)) != 0) {
        fprintf(stderr, "rlfeed %s: out of memory\n", a->cmd);
        goto done;
    }
    op = json_object_get(root, "op");
    if (op == NULL && is_call) {
        fprintf(stderr, "rlfeed call: the request must carry \"op\"\n");
        goto done;
    }
    if (op == NULL && json_object_set_new(root, "op", json_string(a->cmd)) != 0) {
        fprintf(stderr, "rlfeed %s: out of memory\n", a->cmd);
        goto done;
    }
    if (op != NULL && !is_call &&
        (!json_is_string(op) || strcmp(json_string_value(op), a->cmd) != 0)) {
        fprintf(stderr, "rlfeed %s: \"op\" in the body must be \"%s\" (or use rlfeed call)\n",
                a->cmd, a->cmd);
        goto done;
    }
    dumped = json_dumps(root, JSON_COMPACT);
    if (dumped == NULL) {
        fprintf(stderr, "rlfeed %s: out of memory\n", a->cmd);
        goto done;
    }
    e = proto_json_to_msgpack(dumped, out, errbuf, sizeof(errbuf));
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: cannot encode the request: %s%s%s\n", a->cmd, base_strerror(e),
                errbuf[0] != '\0' ? ": " : "", errbuf);
        goto done;
    }
    ok = true;

done:
    base_free(dumped); /* jansson allocates through base_alloc (set in main) */
    json_decref(root);
    return ok;
}

/* Send @req, print the reply, and map it to an exit status. */
static int exchange(const cli_args *a, const base_buf *req)
{
    int status = EXIT_USAGE;
    rlfeed_client *c = NULL;
    uint8_t *rep = NULL;
    size_t rep_len = 0;
    char *json = NULL;
    rlfeed_reply *r = base_alloc(sizeof(*r)); /* ~4 KiB of pmf: keep it off the stack */
    base_err e;

    if (r == NULL) {
        fprintf(stderr, "rlfeed %s: out of memory\n", a->cmd);
        goto done;
    }
    rlfeed_tls tls = {a->tls_ca, a->tls_cert, a->tls_key, a->tls_name};
    /* Only for a TLS URL: an exported $RLFEED_TLS_CA must not break ipc:// or tcp://. */
    bool tls_url = strncasecmp(a->url, "tls+", 4) == 0 || strncasecmp(a->url, "wss", 3) == 0;
    bool use_tls = tls_url && a->tls_ca != NULL && a->tls_ca[0] != '\0';
    if (tls_url && !use_tls) {
        fprintf(stderr, "rlfeed %s: %s is a TLS URL: give --tls-ca FILE (or $RLFEED_TLS_CA)\n",
                a->cmd, a->url);
        goto done;
    }
    e = rlfeed_client_open_tls(a->url, a->timeout_ms, use_tls ? &tls : NULL, &c);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: cannot open a client for %s: %s\n", a->cmd, a->url,
                base_strerror(e));
        goto done;
    }
    if (a->key_file != NULL && a->key_file[0] != '\0') {
        proto_auth_keyfile kf;
        char why[320];
        if (rlfeed_key_load(a->key_file, &kf, why, sizeof(why)) != BASE_OK) {
            fprintf(stderr, "rlfeed %s: --key %s\n", a->cmd, why);
            goto done;
        }
        (void)rlfeed_client_use_key(c, &kf);
    }
    e = rlfeed_client_call(c, req->data, req->len, &rep, &rep_len);
    if (e == BASE_ETIMEDOUT) {
        fprintf(stderr, "rlfeed %s: no reply within %d ms: is rlfeedd listening at %s?\n", a->cmd,
                a->timeout_ms, a->url);
        goto done;
    }
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: %s: %s\n", a->cmd, a->url, base_strerror(e));
        goto done;
    }
    e = proto_json_from_msgpack(rep, rep_len, &json);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: unreadable reply (%zu bytes): %s\n", a->cmd, rep_len,
                base_strerror(e));
        goto done;
    }
    printf("%s\n", json);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "rlfeed %s: cannot write the reply\n", a->cmd);
        goto done;
    }
    e = rlfeed_reply_decode(rep, rep_len, r);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: the reply is not a valid reply map: %s\n", a->cmd,
                base_strerror(e));
        goto done;
    }
    status = r->ok ? EXIT_OK_REPLY : EXIT_ERROR_REPLY;

done:
    base_free(json);
    base_free(rep);
    base_free(r);
    rlfeed_client_close(c);
    return status;
}

static int cmd_request(int argc, char **argv, const char *cmd)
{
    cli_args a = {.cmd = cmd,
                  .url = default_url(),
                  .timeout_ms = CLI_DEFAULT_TIMEOUT_MS,
                  .key_file = getenv("RLFEED_KEY"),
                  .tls_ca = getenv("RLFEED_TLS_CA"),
                  .tls_cert = getenv("RLFEED_TLS_CERT"),
                  .tls_key = getenv("RLFEED_TLS_KEY")};
    base_buf in;
    base_buf req;
    const char *text = NULL;
    int status = parse_args(argc, argv, &a);
    base_err e;

    base_buf_init(&in, CLI_MAX_JSON + 1); /* and the NUL read_stdin() adds */
    base_buf_init(&req, PROTO_MAX_MSG_BYTES);
    if (status == 1) {
        usage(stdout);
        status = EXIT_OK_REPLY;
        goto done;
    }
    if (status != 0) {
        fprintf(stderr, "(rlfeed --help lists the commands and options)\n");
        goto done;
    }
    status = EXIT_USAGE;
    e = body_text(&a, &in, &text);
    if (e != BASE_OK) {
        fprintf(stderr, "rlfeed %s: cannot read stdin: %s\n", cmd, base_strerror(e));
        goto done;
    }
    if (!build_request(&a, text, &req)) {
        goto done;
    }
    status = exchange(&a, &req);

done:
    base_buf_fini(&req);
    base_buf_fini(&in);
    return status;
}

/* rlfeed promote, rollback, history, serve: Redis, not the daemon (tools/regcmd.h). */
static int registry_cmd(const char *cmd, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_OK_REPLY;
        }
    }
    if (strcmp(cmd, "promote") == 0) {
        return rlfeed_promote_main(argc, argv);
    }
    if (strcmp(cmd, "rollback") == 0) {
        return rlfeed_rollback_main(argc, argv);
    }
    if (strcmp(cmd, "history") == 0) {
        return rlfeed_history_main(argc, argv);
    }
    if (strcmp(cmd, "audit") == 0) {
        return rlfeed_audit_main(argc, argv);
    }
    return rlfeed_serve_main(argc, argv);
}

/* `rlfeed key|erase|policy|promote|... --help`: what each takes (the others print their own). */
static const struct {
    const char *cmd;
    const char *text;
} command_help[] = {
    {"key", "usage: rlfeed key new NAME [--out FILE]\n"
            "       rlfeed key pseudonym --out FILE\n"
            "  new        a new client key: writes the key file (mode 0600; default NAME.key)\n"
            "             and prints the [client NAME] lines for rlfeedd's configuration\n"
            "             (docs/security.md)\n"
            "  pseudonym  a new pseudonym key file (64 hex digits, mode 0600) for\n"
            "             [server] pseudonym_key\n"},
    {"erase", "usage: rlfeed erase --policy P --user U and/or --conversation C\n"
              "                    [--redis URL | --data-dir DIR] [--pseudonym-key FILE]\n"
              "                    [--who NAME] [--dry-run] [--json]\n"
              "  removes one customer's decisions, outcomes, joined examples, inbox entries and\n"
              "  index fields from Redis, with an audit entry that names no id, and has Redis\n"
              "  rewrite its append-only file; rlfeedd must be stopped. --data-dir: the data\n"
              "  directory of a stopped rlfeedd's private redis-server, started for the erasure\n"
              "  (docs/security.md, \"Erasure\")\n"},
    {"policy", "usage: rlfeed policy put --file P.ini [--policy P] | get --policy P\n"
               "                     [--version N] | list | retire --policy P\n"
               "                     [--redis URL] [--who NAME] [--json]\n"
               "  the policy catalog rlfeedd follows (docs/operations.md, \"Policies at run\n"
               "  time\"): put a definition (or one policy of a whole config with --policy),\n"
               "  get one (--version: an older one), list them, retire one\n"},
    {"promote", "usage: rlfeed promote --policy P [--redis URL] [--who NAME] [--json]\n"
                "    [--candidate VERSION] [--window 24h] [--estimator dr|snips|ips]\n"
                "    [--confidence 0.95] [--margin M] [--min-samples N] [--max-samples N]\n"
                "    [--seed S] [--holdout] [--dry-run] [--plot FILE.svg]\n"
                "  evaluates the candidate snapshot off-policy against production on the\n"
                "  window's joined examples and promotes it, holds, or finds the data unfit;\n"
                "  exit 0 promoted, 3 held, 4 not fit, 2 error (docs/promotion.md)\n"},
    {"rollback", "usage: rlfeed rollback --policy P [--to VERSION] [--reason TEXT] [--redis URL]\n"
                 "                       [--who NAME] [--json]\n"
                 "  moves production back: to the version it replaced, or to --to (0: the\n"
                 "  base model), with an audit entry (docs/promotion.md)\n"},
    {"history", "usage: rlfeed history --policy P [--limit N] [--redis URL] [--json]\n"
                "  the promotions, rollbacks and serve changes of the audit trail, oldest\n"
                "  first (docs/promotion.md)\n"},
    {"audit", "usage: rlfeed audit --policy P [--limit N] [--redis URL] [--json]\n"
              "  the whole audit trail, the daemon's entries too (docs/operations.md)\n"},
    {"serve", "usage: rlfeed serve --policy P [--mode online|production] [--canary SHARE]\n"
              "                    [--clear] [--redis URL] [--who NAME] [--json]\n"
              "  which slot serves, and the canary share, until cleared (docs/promotion.md)\n"},
};

/* The help of @cmd when an argument of @argv[0..argc) asks for it, else NULL. */
static const char *asked_help(const char *cmd, int argc, char **argv)
{
    for (size_t k = 0; k < sizeof(command_help) / sizeof(command_help[0]); k++) {
        if (strcmp(cmd, command_help[k].cmd) != 0) {
            continue;
        }
        for (int i = 0; i < argc; i++) {
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                return command_help[k].text;
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int status = EXIT_USAGE;
    const char *cmd = argc > 1 ? argv[1] : NULL;

    gsl_set_error_handler_off(); /* GSL's default handler aborts; the sim checks results */
    json_set_alloc_funcs(base_alloc, base_free);
    const char *help = cmd != NULL ? asked_help(cmd, argc - 2, argv + 2) : NULL;
    if (cmd == NULL) {
        usage(stderr);
    } else if (help != NULL) {
        fputs(help, stdout);
        status = EXIT_OK_REPLY;
    } else if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        status = EXIT_OK_REPLY;
    } else if (strcmp(cmd, "key") == 0) {
        status = rlfeed_key_main(argc - 2, argv + 2);
    } else if (strcmp(cmd, "sim") == 0) {
        status = rlfeed_sim_main(argc - 2, argv + 2, default_url());
    } else if (strcmp(cmd, "bench") == 0 && argc > 2 && strcmp(argv[2], "serve") == 0) {
        status = rlfeed_bench_serve_main(argc - 3, argv + 3);
    } else if (strcmp(cmd, "bench") == 0) {
        status = rlfeed_bench_main(argc - 2, argv + 2);
    } else if (strcmp(cmd, "erase") == 0) {
        status = rlfeed_erase_main(argc - 2, argv + 2);
    } else if (strcmp(cmd, "policy") == 0) {
        status = rlfeed_policy_main(argc - 2, argv + 2);
    } else if (strcmp(cmd, "promote") == 0 || strcmp(cmd, "rollback") == 0 ||
               strcmp(cmd, "history") == 0 || strcmp(cmd, "audit") == 0 ||
               strcmp(cmd, "serve") == 0) {
        status = registry_cmd(cmd, argc - 2, argv + 2);
    } else if (is_request_cmd(cmd)) {
        status = cmd_request(argc - 2, argv + 2, cmd);
    } else {
        fprintf(stderr, "rlfeed: unknown command '%s' (rlfeed --help lists them)\n", cmd);
    }
    return status;
}
