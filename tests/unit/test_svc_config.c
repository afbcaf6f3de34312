#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/quant.h"
#include "base/buf.h"
#include "service/config.h"
#include "service/engine_impl.h"
#include "tap.h"

static svc_config *load(const char *text, base_err *out_e, char *err, size_t errlen)
{
    svc_config *c = base_alloc_zero(1, sizeof(*c));
    *out_e = svc_config_load_string(text, c, err, errlen);
    return c;
}

/* A fixture that does not load makes the rest of a test meaningless: stop the run. */
#define MUST_LOAD(e, err)                                                                          \
    do {                                                                                           \
        TST_OK(e);                                                                                 \
        if ((e) != BASE_OK) {                                                                      \
            printf("Bail out! fixture: %s\n", (err));                                              \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static void done(svc_config *c)
{
    svc_config_fini(c);
    base_free(c);
}

/* A config text and what its refusal must say. */
typedef struct refusal {
    const char *text;
    const char *needle;
} refusal;

/* Each of @cases fails to load with BASE_EINVAL, a reason that names its needle, and nothing loaded. */
static void expect_refusals(const refusal *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        base_err e = BASE_OK;
        char err[256] = "";
        svc_config *c = load(cases[i].text, &e, err, sizeof(err));
        TST_EQ(e, BASE_EINVAL);
        TST_TRUE(strstr(err, cases[i].needle) != NULL);
        if (strstr(err, cases[i].needle) == NULL) {
            printf("#   case %zu: \"%s\"\n", i, err);
        }
        TST_TRUE(c != NULL && c->n_policies == 0);
        done(c);
    }
}

static void full_config_loads_with_defaults(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[server]\n"
                         "url = ipc:///tmp/a.sock, tcp://127.0.0.1:7000\n"
                         "pull_url = ipc:///tmp/p.sock\n"
                         "[policy intents]\n"
                         "dim = 8\n"
                         "actions = x, y,\n"
                         "  z\n"
                         "signal.resolved = 1\n"
                         "signal.thumbs_down = -0.5\n"
                         "window_ms = 60000\n",
                         &e, err, sizeof(err));
    TST_OK(e);
    if (e != BASE_OK) {
        printf("# %s\n", err);
        done(c);
        return;
    }
    TST_EQ(c->n_urls, 2);
    TST_STREQ(c->urls[1], "tcp://127.0.0.1:7000");
    TST_STREQ(c->pull_url, "ipc:///tmp/p.sock");
    TST_STREQ(c->redis_url, "");
    TST_EQ(c->max_message_bytes, 1u << 20);
    TST_EQ(c->contexts, 128);
    TST_EQ(c->group_commit_us, 1000);
    TST_EQ(c->ipc_mode, 0600);
    TST_STREQ(c->ipc_group, "");
    TST_EQ(c->reply_timeout_ms, 1000);
    TST_STREQ(c->appendfsync, "always"); /* acknowledged means on disk: docs/operations.md */
    TST_STREQ(c->log_format, "text");
    const svc_policy_config *p = svc_config_policy(c, "intents");
    TST_TRUE(p != NULL);
    TST_EQ(p->n_actions, 3);
    TST_STREQ(p->actions[2], "z");
    TST_EQ(p->head.dim, 8);
    TST_EQ(p->head.n_actions, 3);
    TST_EQ(p->max_candidates, 3);
    TST_EQ(p->reward.n_signals, 2);
    TST_NEAR(p->reward.signal[1].weight, -0.5, 0);
    TST_EQ(p->reward.window_ms, 60000);
    TST_TRUE(svc_config_policy(c, "other") == NULL);
    done(c);
}

static void feature_map_keys_load(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[policy p]\ndim = 12\nactions = a, b\nsignal.s = 1\n"
                         "features = rff\nrff_dim = 96\nbandwidth = 0.5\n"
                         "[policy q]\ndim = 12\nactions = a, b\nsignal.s = 1\nfeatures = quad\n"
                         "[policy r]\ndim = 12\nactions = a, b\nsignal.s = 1\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    const svc_policy_config *p = svc_config_policy(c, "p");
    TST_EQ(p->head.features, POL_FEATURES_RFF);
    TST_EQ(p->head.rff_dim, 96);
    TST_NEAR(p->head.bandwidth, 0.5, 0);
    TST_EQ(svc_config_policy(c, "q")->head.features, POL_FEATURES_QUAD);
    TST_EQ(svc_config_policy(c, "r")->head.features, POL_FEATURES_LINEAR); /* the default */
    done(c);
}

/* portfolio and portfolio_mix: the resolved members and share cap; the hash moves only when set. */
static void portfolio_keys_load(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[policy p]\ndim = 12\nactions = a, b\nsignal.s = 1\n"
                         "[policy q]\ndim = 12\nactions = a, b\nsignal.s = 1\nportfolio_mix = 0.1\n"
                         "[policy r]\ndim = 12\nactions = a, b\nsignal.s = 1\nportfolio = off\n"
                         "[policy s]\ndim = 12\nactions = a, b\nsignal.s = 1\nportfolio_mix = 1\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    const svc_policy_config *p = svc_config_policy(c, "p"), *q = svc_config_policy(c, "q");
    TST_EQ(p->portfolio.n_members, 2); /* dim 12: the head and its quad member */
    TST_NEAR(p->portfolio.mix, POL_PORTFOLIO_DEFAULT_MIX, 0);
    TST_NEAR(q->portfolio.mix, 0.1, 0);
    TST_EQ(svc_config_policy(c, "r")->portfolio.n_members, 1);
    char hp[32], hq[32], hs[32];
    svc_learner_config_hash(p, hp, sizeof(hp));
    svc_learner_config_hash(q, hq, sizeof(hq));
    svc_learner_config_hash(svc_config_policy(c, "s"), hs, sizeof(hs));
    TST_TRUE(strcmp(hp, hq) != 0);
    TST_TRUE(strcmp(hp, hs) != 0); /* set, even to the default value */
    done(c);
    /* embedding_storage: the default f32 hashes as before; f16 and i8 change the hash. */
    c = load("[policy p]\ndim = 12\nactions = a, b\nsignal.s = 1\n"
             "[policy q]\ndim = 12\nactions = a, b\nsignal.s = 1\nembedding_storage = f32\n"
             "[policy r]\ndim = 12\nactions = a, b\nsignal.s = 1\nembedding_storage = i8\n",
             &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_EQ(svc_config_policy(c, "p")->embedding_storage, BASE_EMB_F32);
    TST_EQ(svc_config_policy(c, "r")->embedding_storage, BASE_EMB_I8);
    svc_learner_config_hash(svc_config_policy(c, "p"), hp, sizeof(hp));
    svc_learner_config_hash(svc_config_policy(c, "q"), hq, sizeof(hq));
    svc_learner_config_hash(svc_config_policy(c, "r"), hs, sizeof(hs));
    TST_TRUE(strcmp(hp, hq) == 0 && strcmp(hp, hs) != 0);
    done(c);
}

static void long_action_lists_load(void)
{
    /* More than inih's default 200-byte line, on one line. */
    char text[8192];
    int n = snprintf(text, sizeof(text), "[policy p]\ndim = 2\nsignal.ok = 1\nactions = ");
    for (int i = 0; i < 300; i++) {
        n += snprintf(text + n, sizeof(text) - (size_t)n, "action_%03d,", i);
    }
    snprintf(text + n, sizeof(text) - (size_t)n, "\n");
    char err[256] = "";
    base_err e;
    svc_config *c = load(text, &e, err, sizeof(err));
    TST_OK(e);
    if (e == BASE_OK) {
        TST_EQ(c->policy[0].n_actions, 300);
        TST_STREQ(c->policy[0].actions[299], "action_299");
    }
    done(c);
}

static void invalid_configs_fail_with_a_reason(void)
{
    refusal cases[] = {
        /* nng parses it with no path at all: refused, not a crash. */
        {"[server]\nurl = ipc://\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
         "invalid value \"ipc://\" for url"},
        {"[policy p]\ndim = 0\nactions = a\nsignal.s = 1\n", "dim"},
        {"[policy p]\ndim = 4x\nactions = a\nsignal.s = 1\n", "dim"},
        {"[policy p]\ndim = 4\nactions = a, a\nsignal.s = 1\n", "duplicate action"},
        {"[policy p]\ndim = 4\nsignal.s = 1\n", "actions"},
        {"[policy p]\ndim = 4\nactions = a\n", "signal"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nsignal.s = 2\n", "twice"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = nan\n", "signal.s"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nepsilon = 1.5\n", "epsilon"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nportfolio_mix = 1.5\n", "portfolio_mix"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nembedding_storage = f64\n",
         "embedding_storage"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\ncolour = red\n", "colour"},
        {"[server]\ncontexts = 0\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n", "contexts"},
        {"[server]\nreply_timeout_ms = 5\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
         "reply_timeout_ms"},
        {"[server]\nappendfsync = sometimes\n", "appendfsync"},
        {"[server]\nipc_mode = 0400\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n", "ipc_mode"},
        {"[server]\nipc_mode = 0999\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n", "ipc_mode"},
        {"[server]\nipc_mode = 01777\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
         "ipc_mode"},
        {"[server]\nipc_group = no-such-group-rlfeed\n[policy p]\ndim = 4\nactions = a\nsignal.s = "
         "1\n",
         "ipc_group"},
        {"[server]\ngroup_commit_us = 100001\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
         "group_commit_us"},
        {"[server]\nlog_format = xml\n", "log_format"},
        /* URLs are checked as what they are for, so --check catches them, not the start. */
        {"[server]\nurl = foo://bar\n", "invalid value \"foo://bar\" for url"},
        {"[server]\nurl = ipc:///tmp/a.sock, tcp://127.0.0.1:abc\n", "for url"},
        {"[server]\npull_url = tcp://127.0.0.1:70000\n", "for pull_url"},
        /* nng would fill in port 80 for these: the port must be written. */
        {"[server]\nurl = ws://127.0.0.1/rlfeed\n", "for url"},
        {"[server]\npull_url = wss://[::1]/feedback\n", "for pull_url"},
        {"[server]\nurl = tcp://127.0.0.1\n", "for url"},
        {"[server]\nhttp_url = http://127.0.0.1:abc\n", "for http_url"},
        {"[server]\nredis = foo://bar\n", "invalid value \"foo://bar\" for redis"},
        /* ... and a password in a refused one is not shown. */
        {"[server]\nredis = tcp://u:secret@host\n", "\"tcp://u:***@host\" for redis"},
        /* An unmatched bracket, a port that is not digits alone. */
        {"[server]\nredis = tcp://:pw@[::1:6379\n", "\"tcp://:***@[::1:6379\" for redis"},
        {"[server]\nredis = tcp://127.0.0.1:+6379\n", "for redis"},
        {"[server]\ninstance_id = "
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "x"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "x"
         "xxxxxxxxxxxxxxxxxxxxx\n",
         "for instance_id"},
        {"[server]\nstandby = yes\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n", "standby"},
        {"[mystery]\nx = 1\n", "mystery"},
        {"[server]\n", "policy"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nclip_min = 2\nclip_max = 1\n", "clip"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nfeatures = cubic\n", "features"},
        {"[policy p]\ndim = 40\nactions = a\nsignal.s = 1\nfeatures = quad\n", "quad: dim <= 32"},
        {"[policy p]\ndim = 4000\nactions = a\nsignal.s = 1\nfeatures = rff\nrff_dim = 200\n",
         "rff: dim + rff_dim"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nrff_dim = 0\n", "rff_dim"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nbandwidth = -1\n", "bandwidth"},
        /* What the daemon would fail to build at start is refused by the check already. */
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nexplorer = softmax\n",
         "explorer softmax needs scores on a logit scale, which learner ridge does not give"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nlearner = pg\nexplorer = ucb\n",
         "explorer ucb needs posterior widths, which learner pg does not give"},
        /* Names reach replies, records and stats, which are UTF-8 (a cut euro sign here). */
        {"[policy p\xe2\x82]\ndim = 4\nactions = a\nsignal.s = 1\n", "UTF-8"},
        {"[policy p]\ndim = 4\nactions = a, b\xe2\x82\nsignal.s = 1\n", "UTF-8"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s\xc0\xaf = 1\n", "UTF-8"},
        {"[policy p]\ndim = 4\nactions = a\n[signal p.s\xed\xa0\x80]\nkind = flag\n", "UTF-8"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nreward_version = v\xff\n", "UTF-8"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nbase_model_version = \xf4\x90\x80\x80\n",
         "UTF-8"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}

/*
 * libinih keeps 49 bytes of a section header's name: a longer one is refused with its line,
 * not cut to a policy, client or signal nobody configured. 42-byte policy names load whole.
 */
static void long_section_names_are_refused_not_cut(void)
{
    char name42[43], text[512];
    memset(name42, 'p', 42);
    name42[42] = '\0';
    snprintf(text, sizeof(text), "[policy %s]\ndim = 4\nactions = a\nsignal.s = 1\n", name42);
    base_err e = BASE_OK;
    char err[256] = "";
    svc_config *c = load(text, &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_STREQ(c->policy[0].name, name42);
    done(c);

    char pol[600], sig[600], cli[600];
    snprintf(pol, sizeof(pol), "[policy %sp]\ndim = 4\nactions = a\nsignal.s = 1\n", name42);
    snprintf(sig, sizeof(sig), "[policy p]\ndim = 4\nactions = a\n\n  [signal p.%s]\nkind = flag\n",
             name42);
    snprintf(cli, sizeof(cli), "[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n[client %sc]\n",
             name42);
    refusal cases[] = {
        {pol, "line 1: section [policy ppppppppppppppppp...] is 50 bytes long"},
        {sig, "line 5: section [signal p.ppppppppppppppp...] is 51 bytes long"},
        {cli, "line 5: section [client ppppppppppppppppp...] is 50 bytes long"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));

    /* The same from a file. */
    char path[] = "/tmp/rlfeed-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;
    TST_TRUE(fp != NULL && fputs(pol, fp) >= 0);
    if (fp != NULL) {
        fclose(fp);
    }
    c = base_alloc_zero(1, sizeof(*c));
    TST_EQ(svc_config_load(path, c, err, sizeof(err)), BASE_EINVAL);
    TST_TRUE(strstr(err, "is 50 bytes long") != NULL);
    done(c);
    unlink(path);
}

static void missing_file_is_an_io_error(void)
{
    svc_config *c = base_alloc_zero(1, sizeof(*c));
    char err[256] = "";
    TST_EQ(svc_config_load("/nonexistent/rlfeed.ini", c, err, sizeof(err)), BASE_EIO);
    TST_TRUE(strstr(err, "/nonexistent/rlfeed.ini") != NULL);
    done(c);
}

static const char *const minimal = "[server]\n"
                                   "url = ipc:///tmp/file.sock\n"
                                   "[policy p]\n"
                                   "dim = 4\n"
                                   "actions = a\n"
                                   "signal.s = 1\n";

static void url_flag_replaces_the_list(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load(minimal, &e, err, sizeof(err));
    MUST_LOAD(e, err);

    /* docs/configuration.md: "--url replaces the list" - as the url key parses it. */
    TST_OK(svc_config_apply_flag(c, "url", "ipc:///tmp/a.sock,tcp://127.0.0.1:7450", err,
                                 sizeof(err)));
    TST_EQ(c->n_urls, 2);
    TST_STREQ(c->urls[0], "ipc:///tmp/a.sock");
    TST_STREQ(c->urls[1], "tcp://127.0.0.1:7450");
    TST_OK(svc_config_apply_flag(c, "url", " tcp://127.0.0.1:1, ipc:///tmp/b.sock,", err,
                                 sizeof(err)));
    TST_EQ(c->n_urls, 2);
    TST_STREQ(c->urls[0], "tcp://127.0.0.1:1");
    TST_STREQ(c->urls[1], "ipc:///tmp/b.sock");
    TST_OK(svc_config_apply_flag(c, "url", "ipc:///tmp/one.sock", err, sizeof(err)));
    TST_EQ(c->n_urls, 1);
    TST_STREQ(c->urls[0], "ipc:///tmp/one.sock");

    /* A bad list changes nothing. */
    TST_EQ(svc_config_apply_flag(c, "url", "a,b,c,d,e,f,g,h,i", err, sizeof(err)), BASE_EINVAL);
    TST_TRUE(strstr(err, "--url") != NULL);
    TST_EQ(svc_config_apply_flag(c, "url", " , ", err, sizeof(err)), BASE_EINVAL);
    TST_EQ(c->n_urls, 1);
    TST_STREQ(c->urls[0], "ipc:///tmp/one.sock");
    done(c);
}

static void other_flags_override_their_keys(void)
{
    char err[256] = "";
    char longval[SVC_URL_MAX + 1];
    base_err e;
    svc_config *c = load(minimal, &e, err, sizeof(err));
    MUST_LOAD(e, err);

    TST_OK(svc_config_apply_flag(c, "pull-url", "ipc:///tmp/pull.sock", err, sizeof(err)));
    TST_STREQ(c->pull_url, "ipc:///tmp/pull.sock");
    TST_OK(svc_config_apply_flag(c, "redis", "unix:/tmp/redis.sock", err, sizeof(err)));
    TST_STREQ(c->redis_url, "unix:/tmp/redis.sock");
    TST_OK(svc_config_apply_flag(c, "data-dir", "/var/lib/rlfeed", err, sizeof(err)));
    TST_STREQ(c->data_dir, "/var/lib/rlfeed");
    TST_OK(svc_config_apply_flag(c, "appendfsync", "always", err, sizeof(err)));
    TST_STREQ(c->appendfsync, "always");

    TST_OK(svc_config_apply_flag(c, "log-format", "json", err, sizeof(err)));
    TST_STREQ(c->log_format, "json");
    TST_EQ(svc_config_apply_flag(c, "log-format", "xml", err, sizeof(err)), BASE_EINVAL);
    TST_TRUE(strstr(err, "--log-format") != NULL);
    TST_STREQ(c->log_format, "json");

    TST_EQ(svc_config_apply_flag(c, "appendfsync", "sometimes", err, sizeof(err)), BASE_EINVAL);
    TST_TRUE(strstr(err, "--appendfsync") != NULL);
    TST_STREQ(c->appendfsync, "always");
    memset(longval, 'x', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    TST_EQ(svc_config_apply_flag(c, "data-dir", longval, err, sizeof(err)), BASE_EINVAL);
    TST_STREQ(c->data_dir, "/var/lib/rlfeed");
    TST_EQ(svc_config_apply_flag(c, "dim", "8", err, sizeof(err)), BASE_EINVAL);
    TST_EQ(c->policy[0].head.dim, 4);
    done(c);
}

/*
 * Plain TCP (and HTTP) beyond loopback is refused without insecure = true, whatever the
 * spelling of the address; loopback, ipc and flags applied afterwards are checked alike.
 */
static void exposure_needs_insecure(void)
{
    static const struct {
        const char *server; /* [server] lines */
        bool exposed;
    } cases[] = {
        {"url = tcp://127.0.0.1:7000\nhttp_url = http://127.0.0.1:9808\n", false},
        {"url = tcp://127.8.9.10:7000\n", false},
        {"url = tcp://localhost:7000\n", false},
        {"url = tcp://[::1]:7000\n", false},
        {"url = tcp6://[::ffff:127.0.0.1]:7000\n", false},
        {"url = ipc:///tmp/x.sock, inproc://x\n", false},
        {"url = ws://127.0.0.1:7000/rlfeed\n", false},
        {"http_url =\n", false},
        {"url = tcp://0.0.0.0:7000\n", true},
        {"url = tcp://:7000\n", true},
        {"url = tcp://*:7000\n", true},
        {"url = tcp://10.1.2.3:7000\n", true},
        {"url = tcp4://192.168.0.1:7000\n", true},
        {"url = tcp://[::]:7000\n", true},
        {"url = tcp://[2001:db8::1]:7000\n", true},
        {"url = tcp://bot.example.com:7000\n", true},
        {"url = ws://0.0.0.0:7000/rlfeed\n", true},
        {"url = ipc:///tmp/a.sock, tcp://10.0.0.1:7000\n", true},
        {"pull_url = tcp://0.0.0.0:7001\n", true},
        {"http_url = http://0.0.0.0:9808\n", true},
        {"http_url = http://[::]:9808\n", true},
        /* nng takes schemes in any case, and ws4/ws6 too. */
        {"url = TCP://0.0.0.0:7000\n", true},
        {"url = Tcp4://127.0.0.1:7000\n", false},
        {"url = ws4://0.0.0.0:7000/rlfeed\n", true},
        {"url = ws6://[::]:7000/rlfeed\n", true},
        {"pull_url = WS://0.0.0.0:7001/rlfeed\n", true},
        /* Host names have no case; an http_url's scheme neither. */
        {"url = tcp://LOCALHOST:7000\nhttp_url = HTTP://LocalHost:9808\n", false},
        {"http_url = HTTP://0.0.0.0:9808\n", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int insecure = 0; insecure < 2; insecure++) {
            char text[512], err[512] = "", exposed[256] = "x";
            base_err e;
            /* The defaults for what the case does not set (a key given twice is refused). */
            const char *sv = cases[i].server;
            bool url = strncmp(sv, "url =", 5) == 0 || strstr(sv, "\nurl =") != NULL;
            bool http = strstr(sv, "http_url =") != NULL;
            snprintf(text, sizeof(text),
                     "[server]\n%s%s%s%s[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
                     url ? "" : "url = ipc:///tmp/rlfeed-t.sock\n",
                     http ? "" : "http_url = http://127.0.0.1:0\n", sv,
                     insecure ? "insecure = true\n" : "");
            svc_config *c = load(text, &e, err, sizeof(err));
            MUST_LOAD(e, err);
            e = svc_config_check_exposure(c, exposed, sizeof(exposed), err, sizeof(err));
            bool refused = cases[i].exposed && !insecure;
            TST_EQ(e, refused ? BASE_EINVAL : BASE_OK);
            TST_EQ(exposed[0] != '\0', cases[i].exposed);
            if (refused) {
                TST_TRUE(strstr(err, "insecure = true") != NULL);
                TST_TRUE(strstr(err, exposed) != NULL);
            }
            if ((e == BASE_EINVAL) != refused) {
                printf("#   case %zu insecure %d: %s\n", i, insecure, cases[i].server);
            }
            done(c);
        }
    }
    /* Every exposed listener is named, not only the first. */
    {
        char err2[512] = "", exposed[512] = "";
        base_err e2;
        svc_config *c2 = load("[server]\nurl = ipc:///tmp/x.sock, tcp://0.0.0.0:7000, "
                              "tcp://10.0.0.1:7001\npull_url = tcp://0.0.0.0:7002\n"
                              "http_url = http://0.0.0.0:7003\ninsecure = true\n[policy p]\n"
                              "dim = 4\nactions = a\nsignal.s = 1\n",
                              &e2, err2, sizeof(err2));
        MUST_LOAD(e2, err2);
        TST_OK(svc_config_check_exposure(c2, exposed, sizeof(exposed), err2, sizeof(err2)));
        TST_STREQ(exposed, "tcp://0.0.0.0:7000, tcp://10.0.0.1:7001, tcp://0.0.0.0:7002 and "
                           "http://0.0.0.0:7003");
        done(c2);
    }
    /* A flag can expose a file that did not. */
    char err[512] = "";
    base_err e;
    svc_config *c = load("[server]\nurl = tcp://127.0.0.1:7000\n[policy p]\ndim = 4\n"
                         "actions = a\nsignal.s = 1\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_OK(svc_config_check_exposure(c, NULL, 0, err, sizeof(err)));
    TST_OK(svc_config_apply_flag(c, "url", "tcp://0.0.0.0:7000", err, sizeof(err)));
    TST_EQ(svc_config_check_exposure(c, NULL, 0, err, sizeof(err)), BASE_EINVAL);
    done(c);
    /* An abstract socket has no permissions: refused without auth or insecure. */
    for (int insecure = 0; insecure < 2; insecure++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "[server]\npull_url = ABSTRACT://rlf\n%s[policy p]\ndim = 4\nactions = a\n"
                 "signal.s = 1\n",
                 insecure ? "insecure = true\n" : "");
        c = load(text, &e, err, sizeof(err));
        MUST_LOAD(e, err);
        TST_EQ(svc_config_check_exposure(c, NULL, 0, err, sizeof(err)),
               insecure ? BASE_OK : BASE_EINVAL);
        TST_TRUE(insecure || strstr(err, "an abstract socket has no file permissions") != NULL);
        done(c);
    }
    /* insecure takes true or false only. */
    c = load("[server]\ninsecure = yes\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n", &e, err,
             sizeof(err));
    TST_EQ(e, BASE_EINVAL);
    TST_TRUE(strstr(err, "insecure") != NULL);
    done(c);
}

#define POL                                                                                        \
    "[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n[policy q]\ndim = 4\nactions = a\nsignal.s "  \
    "= 1\n"
#define K1                                                                                         \
    "s1$000102030405060708090a0b0c0d0e0f$"                                                         \
    "000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"
#define K2                                                                                         \
    "s1$0f0102030405060708090a0b0c0d0e0f$"                                                         \
    "ff0102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f"

static void clients_load_and_bad_ones_fail(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[server]\nauth = on\nauth_window_ms = 5000\nops_pages_open = true\n"
                         "[client fe]\nkey = " K1 ", " K2 "\nops = decide, feedback\n"
                         "policies = q\noutcome_rate_per_s = 5\n" POL "[client admin]\nkey = " K1
                         "\nops = admin\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_TRUE(c->auth);
    TST_EQ(c->auth_window_ms, 5000);
    TST_EQ(c->auth_replay_max, 1000000);
    TST_TRUE(c->ops_pages_open);
    TST_EQ(c->n_clients, 2);
    const svc_client_config *fe = svc_config_client(c, "fe");
    TST_TRUE(fe != NULL);
    if (fe != NULL) {
        TST_EQ(fe->n_keys, 2);
        TST_EQ(fe->key[1][0], 0xff);
        TST_EQ(fe->scopes, SVC_SCOPE_DECIDE | SVC_SCOPE_FEEDBACK);
        TST_TRUE(!fe->all_policies);
        TST_EQ(fe->policy_mask, 2); /* q is the second policy, though the client came first */
        TST_NEAR(fe->outcome_burst, 50.0, 1e-12);
    }
    const svc_client_config *admin = svc_config_client(c, "admin");
    TST_TRUE(admin != NULL && admin->all_policies && admin->outcome_rate_per_s == 0.0);
    TST_TRUE(c->policy[0].max_embedding_norm == 0.0);
    TST_TRUE(c->policy[0].no_explore == NULL);
    done(c);

    c = load("[policy p]\ndim = 2\nno_explore = c, a\nactions = a, b, c\nsignal.s = 1\n", &e, err,
             sizeof(err));
    MUST_LOAD(e, err);
    TST_TRUE(c->policy[0].no_explore != NULL && c->policy[0].no_explore[0] == 1 &&
             c->policy[0].no_explore[1] == 0 && c->policy[0].no_explore[2] == 1);
    done(c);

    c = load(POL, &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_TRUE(!c->auth);
    TST_EQ(c->n_clients, 0);
    done(c);

    refusal cases[] = {
        {"[server]\nauth = on\n" POL, "needs at least one [client NAME]"},
        {"[server]\nauth = yes\n" POL, "auth"},
        {"[server]\nauth_window_ms = 10\n" POL, "auth_window_ms"},
        {"[server]\nauth_replay_max = 5\n" POL, "auth_replay_max"},
        {POL "[client fe]\nops = decide\n", "key is required"},
        {POL "[client fe]\nkey = " K1 "\n", "ops is required"},
        {POL "[client fe]\nkey = s1$00$00\nops = decide\n", "key"},
        {POL "[client fe]\nkey = " K1 "," K1 "," K1 "," K1 "," K1 "\nops = decide\n", "key"},
        {POL "[client fe]\nkey = " K1 "\nops = decide, fly\n", "ops"},
        {POL "[client fe]\nkey = " K1 "\nops = decide\npolicies = p, nope\n", "no policy \"nope\""},
        {POL "[client fe]\nkey = " K1 "\nops = decide\npolicies = *, p\n", "* alone"},
        {POL "[client fe]\nkey = " K1 "\nops = decide\npolicies = p *\n", "* alone"},
        {POL "[client fe]\nkey = " K1 "\nops = decide\npolicies = ,\n", "a list of policy names"},
        {POL "[client fe]\nkey = " K1 "\nops = decide\noutcome_burst = 0.5\n", "outcome_burst"},
        {POL "[client fe]\nkey = " K1 "\nops = decide\ncolour = red\n", "colour"},
        {POL "[client f$e]\nkey = " K1 "\nops = decide\n", "bad client name"},
        /* inih ends the section at the first ']' and drops the rest of the line */
        {POL "[client [x]\nkey = " K1 "\nops = decide\n", "bad client name \"[x\""},
        {"[policy [x]\ndim = 4\nactions = a\nsignal.s = 1\n", "bad policy name \"[x\""},
        {POL "[client c1]x]\nkey = " K1 "\nops = decide\n",
         "text after the section header [client c1]"},
        {"[server]junk\n", "text after the section header [server]"},
        {"[policy a{b}]\ndim = 4\nactions = a\nsignal.s = 1\n", "bad policy name \"a{b}\""},
        /* A portfolio member the head cannot build is named, with the reason. */
        {"[policy p]\ndim = 40\nactions = a\nsignal.s = 1\nportfolio = ridge+quad\n",
         "member 1 \"ridge+quad\": features quad is only for dim <= 32, not 40"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nportfolio = ridge, ridge/igw:0\n",
         "member 2 \"ridge/igw:0\""},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nmax_embedding_norm = -1\n",
         "max_embedding_norm"},
        {"[policy p]\ndim = 4\nactions = a\nsignal.s = 1\nno_explore = a, z\n",
         "no_explore: no action \"z\""},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}

static void open_action_sets_load_and_bad_ones_fail(void)
{
    base_err e = BASE_OK;
    char err[256] = "";
    svc_config *c = load("[policy p]\ndim = 8\nactions = open\naction_dim = 4\n"
                         "no_explore = rate-quote, complaint_handoff\nsignal.s = 1\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    if (c != NULL) {
        const svc_policy_config *p = &c->policy[0];
        TST_TRUE(p->open_actions && p->n_actions == 0 && p->head.n_actions == 1);
        TST_EQ(p->head.action_dim, 4);
        TST_EQ(p->max_candidates, SVC_OPEN_MAX_CANDIDATES);
        TST_EQ(p->portfolio.n_members, 1); /* auto: the shared head alone */
        TST_EQ(p->n_no_explore_ids, 2);
        TST_STREQ(p->no_explore_ids[0], "complaint_handoff"); /* sorted */
        TST_STREQ(p->no_explore_ids[1], "rate-quote");
    }
    done(c);
    refusal cases[] = {
        {"[policy p]\ndim = 8\nactions = open\nsignal.s = 1\n", "needs action_dim"},
        {"[policy p]\ndim = 8\nactions = a, b\naction_dim = 3\nsignal.s = 1\n",
         "need actions = open"},
        {"[policy p]\ndim = 8\nactions = open\n  a\naction_dim = 3\nsignal.s = 1\n",
         "takes no action names"},
        {"[policy p]\ndim = 8\nactions = open\nactions = a\naction_dim = 3\nsignal.s = 1\n",
         "line 4: [policy p] actions given twice (first on line 3)"},
        {"[server]\ncontexts = 8\n\n; a comment\ncontexts: 16\n[policy p]\ndim = 4\nactions = a\n"
         "signal.s = 1\n",
         "line 5: [server] contexts given twice (first on line 2)"},
        {"[policy p]\ndim = 8\nactions = open\naction_dim = 3\nlearner = pg\nsignal.s = 1\n",
         "learner pg cannot learn an open action set"},
        {"[policy p]\ndim = 8\nactions = open\naction_dim = 3\nfeatures = quad\nsignal.s = 1\n",
         "has its own map"},
        {"[policy p]\ndim = 8\nactions = open\naction_dim = 3\ninteraction_dim = 9\nsignal.s = 1\n",
         "interaction_dim 9 does not fit"},
        {"[policy p]\ndim = 8\nactions = open\naction_dim = 0\nsignal.s = 1\n",
         "invalid value \"0\" for action_dim"},
        {"[policy p]\ndim = 8\nactions = open\naction_dim = 2000\nsignal.s = 1\n",
         "for action_dim"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}

/*
 * docs/configuration.md: a value continues on the indented lines below it. A list takes them
 * as further items (a line break separates like a comma, and a line ending in a comma makes
 * no empty item); a one-value key refuses them, rather than keeping its last line.
 */
static void continued_values_join_or_are_refused(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[server]\nurl = ipc:///tmp/a.sock,\n  ipc:///tmp/b.sock\n"
                         "[policy p]\ndim = 2\nactions = a, b,\n  c\n\n  d ; a comment\n"
                         "no_explore = a\n  c\nportfolio = ridge, iwr/greedy:0.02,\n"
                         "  ridge/ucb:0.5\nsignal.s = 1\n"
                         "[policy q]\ndim = 2\nactions = a\nsignal.s = 1\n"
                         "[client fe]\nkey = " K1 ",\n  " K2 "\nops = decide\n  feedback\n"
                         "policies = p\n  q\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_EQ(c->n_urls, 2);
    TST_STREQ(c->urls[0], "ipc:///tmp/a.sock");
    TST_STREQ(c->urls[1], "ipc:///tmp/b.sock");
    const svc_policy_config *p = &c->policy[0];
    TST_EQ(p->n_actions, 4);
    TST_STREQ(p->actions[3], "d");
    TST_TRUE(p->no_explore != NULL && p->no_explore[0] == 1 && p->no_explore[1] == 0 &&
             p->no_explore[2] == 1);
    TST_EQ(p->portfolio.n_members, 3);
    const svc_client_config *fe = svc_config_client(c, "fe");
    TST_TRUE(fe != NULL && fe->n_keys == 2 &&
             fe->scopes == (SVC_SCOPE_DECIDE | SVC_SCOPE_FEEDBACK) && fe->policy_mask == 3);
    done(c);

    /* Without a comma at the end of the line too. */
    c = load("[server]\nurl = ipc:///tmp/a.sock\n  ipc:///tmp/b.sock\n  tcp://127.0.0.1:7450\n"
             "[policy p]\ndim = 2\nactions = a\nsignal.s = 1\n",
             &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_EQ(c->n_urls, 3);
    TST_STREQ(c->urls[2], "tcp://127.0.0.1:7450");
    done(c);

    refusal cases[] = {
        /* 9 members split 5 + 4 are 9, not 4. */
        {"[policy p]\ndim = 2\nactions = a\nsignal.s = 1\nportfolio = ridge, ridge, ridge, "
         "ridge, ridge,\n  ridge, ridge, ridge, ridge\n",
         "more than 8 members"},
        {"[server]\nurl = ipc:///tmp/1.sock, ipc:///tmp/2.sock, ipc:///tmp/3.sock,\n"
         "  ipc:///tmp/4.sock, ipc:///tmp/5.sock, ipc:///tmp/6.sock, ipc:///tmp/7.sock,\n"
         "  ipc:///tmp/8.sock, ipc:///tmp/9.sock\n[policy p]\ndim = 4\nactions = a\n"
         "signal.s = 1\n",
         "for url"},
        {"[policy p]\ndim = 4\n  8\nactions = a\nsignal.s = 1\n",
         "[policy p]: dim takes one value"},
        {"[server]\ncontexts = 4\n  5\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
         "[server]: contexts takes one value"},
        {"[server]\ndata_dir = /var/a\n  /var/b\n[policy p]\ndim = 4\nactions = a\n"
         "signal.s = 1\n",
         "[server]: data_dir takes one value"},
        {"[policy p]\ndim = 4\nactions = a\n[signal p.s]\nweight = 1\n  2\n",
         "[signal p.s]: weight takes one value"},
        {POL "[client fe]\nkey = " K1 "\nops = decide\noutcome_rate_per_s = 1\n  2\n",
         "[client fe]: outcome_rate_per_s takes one value"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}

/* A section header given twice would merge two sections past the duplicate-key check. */
static void repeated_sections_are_refused(void)
{
    refusal cases[] = {
        {"[server]\ncontexts = 4\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n[server]\n"
         "contexts = 5\n",
         "line 7: section [server] given twice (first on line 1)"},
        {POL "[client c]\nkey = " K1 "\nops = decide\n[client c]\nops = admin\n",
         "line 12: section [client c] given twice (first on line 9)"},
        {"[policy p]\ndim = 4\nsignal.s = 1\n[signal p.x]\nkind = flag\n[policy p]\n"
         "actions = a\n",
         "line 6: section [policy p] given twice (first on line 1)"},
        /* An empty one too, and one libinih would take as the value's next line. */
        {"[server]\n[server]\n" POL, "line 2: section [server] given twice"},
        {"[policy p]\ndim = 4\nactions = a\n  [signal p.s]\nkind = flag\n",
         "line 4: section header [signal p.s] is indented under a key"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}

/*
 * A range on a signal that is not a number would be ignored: refused, whichever key comes
 * first. A number's defaults (0..1 onto itself) are unchanged.
 */
static void ranges_only_on_numbers(void)
{
    refusal cases[] = {
        {"[policy p]\ndim = 4\nactions = a\n[signal p.s]\nkind = flag\nmin = 3\n",
         "[signal p.s]: min, max, map_min and map_max apply only to kind = number (this signal "
         "is kind = flag: its value is 0 or 1)"},
        {"[policy p]\ndim = 4\nactions = a\n[signal p.s]\nmap_max = 2\nkind = event\n",
         "(this signal is kind = event: its value is 1)"},
        {"[policy p]\ndim = 4\nactions = a\n[signal p.s]\nmax = 1\n", "[signal p.s]: min, max"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
    base_err e = BASE_OK;
    char err[256] = "";
    svc_config *c = load("[policy p]\ndim = 4\nactions = a\nsignal.e = 1\n[signal p.n]\nkind = "
                         "number\nmap_min = -1\n[signal p.f]\nkind = flag\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    const rwd_spec *r = &c->policy[0].reward;
    TST_EQ(r->n_signals, 3);
    for (uint32_t i = 0; i < r->n_signals; i++) {
        const rwd_signal *g = &r->signal[i];
        TST_TRUE(g->min == 0.0 && g->max == 1.0 && g->map_max == 1.0);
        TST_TRUE(g->map_min == (g->kind == RWD_NUMBER ? -1.0 : 0.0));
    }
    done(c);
}

/* libinih reports keys only: a section without any still counts, in file order. */
static void sections_without_keys_count(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[server]\n[policy p]\ndim = 2\nactions = a\n[signal p.ok]\n"
                         "[signal p.bad]\nweight = -1\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    const rwd_spec *r = &c->policy[0].reward;
    TST_EQ(r->n_signals, 2);
    TST_STREQ(r->signal[0].name, "ok");
    TST_EQ(r->signal[0].kind, RWD_EVENT);
    TST_NEAR(r->signal[0].weight, 1.0, 0);
    TST_NEAR(r->signal[1].weight, -1.0, 0);
    done(c);
    refusal cases[] = {
        {"[bogus]\n" POL, "unknown section [bogus]"},
        {POL "[bogus]\n", "unknown section [bogus]"},
        {POL "[policy r]\n", "policy \"r\": dim is required"},
        {"[policy p]\n[signal p.ok]\nkind = flag\n", "policy \"p\": dim is required"},
        {POL "[client c]\n", "[client c]: key is required"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}

/* [signal POLICY.NAME]: POLICY is the longest policy above it that the name begins with. */
static void dotted_policy_names_keep_their_signals(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[policy faq.v2]\ndim = 2\nactions = a\n[signal faq.v2.resolved]\n"
                         "kind = flag\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_EQ(c->policy[0].reward.n_signals, 1);
    TST_STREQ(c->policy[0].reward.signal[0].name, "resolved");
    done(c);
    c = load("[policy faq]\ndim = 2\nactions = a\nsignal.s = 1\n[policy faq.v2]\ndim = 2\n"
             "actions = a\n[signal faq.v2.resolved]\nkind = flag\n[signal faq.v2.x]\n",
             &e, err, sizeof(err));
    MUST_LOAD(e, err);
    const svc_policy_config *faq = svc_config_policy(c, "faq");
    const svc_policy_config *v2 = svc_config_policy(c, "faq.v2");
    TST_TRUE(faq != NULL && faq->reward.n_signals == 1);
    TST_TRUE(v2 != NULL && v2->reward.n_signals == 2);
    if (v2 != NULL && v2->reward.n_signals == 2) {
        TST_STREQ(v2->reward.signal[0].name, "resolved");
        TST_EQ(v2->reward.signal[0].kind, RWD_FLAG);
    }
    done(c);
    refusal cases[] = {
        {"[policy faq]\ndim = 2\nactions = a\nsignal.s = 1\n[signal nope.x]\nkind = flag\n",
         "[signal nope.x]: no policy above it"},
        {"[policy faq]\ndim = 2\nactions = a\nsignal.s = 1\n[signal faq]\nkind = flag\n",
         "[signal faq]: no policy above it"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));

    /* A policy's catalog text (rlfeed policy put --policy) cuts the same sections out. */
    static const char text[] = "[policy faq]\ndim = 2\nactions = a\n[signal faq.x]\n"
                               "[policy faq.v2]\ndim = 2\nactions = a\n[signal faq.v2.y]\n";
    base_buf b;
    base_buf_init(&b, 1u << 16);
    TST_OK(svc_config_policy_text(text, "faq", &b));
    TST_OK(base_buf_append(&b, "", 1));
    TST_TRUE(b.data != NULL && strstr((const char *)b.data, "[signal faq.x]") != NULL &&
             strstr((const char *)b.data, "faq.v2") == NULL);
    base_buf_reset(&b);
    TST_OK(svc_config_policy_text(text, "faq.v2", &b));
    TST_OK(base_buf_append(&b, "", 1));
    TST_TRUE(b.data != NULL && strstr((const char *)b.data, "[signal faq.v2.y]") != NULL &&
             strstr((const char *)b.data, "[signal faq.x]") == NULL);
    base_buf_fini(&b);
}

/* docs/configuration.md, reward_version: the abuse limits and late_memory_ms are left out. */
static void reward_version_leaves_out_the_limits(void)
{
    char err[256] = "", v0[32], v1[32], v2[32];
    base_err e;
    svc_config *c = load("[policy p]\ndim = 2\nactions = a\nsignal.s = 1\n"
                         "[policy q]\ndim = 2\nactions = a\nsignal.s = 1\nmax_outcomes = 4\n"
                         "user_rate_per_s = 1\nuser_burst = 5\nlate_memory_ms = 99\n"
                         "[policy r]\ndim = 2\nactions = a\nsignal.s = 1\nwindow_ms = 99\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    rwd_spec_version(&c->policy[0].reward, v0, sizeof(v0));
    rwd_spec_version(&c->policy[1].reward, v1, sizeof(v1));
    rwd_spec_version(&c->policy[2].reward, v2, sizeof(v2));
    TST_STREQ(v0, v1);
    TST_TRUE(strcmp(v0, v2) != 0);
    done(c);
}

/* interaction_dim: at most dim, and S + R S <= 4096 with S = min(action_dim, 15). */
static void interaction_dim_fits_the_map(void)
{
    char err[256] = "";
    base_err e;
    svc_config *c = load("[policy p]\ndim = 768\nactions = open\naction_dim = 16\n"
                         "interaction_dim = 272\nsignal.s = 1\n",
                         &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_EQ(c->policy[0].head.interaction_dim, 272);
    done(c);
    refusal cases[] = {
        {"[policy p]\ndim = 768\nactions = open\naction_dim = 16\ninteraction_dim = 273\n"
         "signal.s = 1\n",
         "interaction_dim 273 does not fit (at most dim, and S + R S <= 4096"},
        {"[policy p]\ndim = 768\nactions = open\naction_dim = 16\ninteraction_dim = 300\n"
         "signal.s = 1\n",
         "interaction_dim 300 does not fit"},
    };
    expect_refusals(cases, sizeof(cases) / sizeof(cases[0]));
}

/* docs/configuration.md: an http_url without a numeric port is refused, not served on 80. */
static void http_url_needs_its_port(void)
{
    static const char *const bad[] = {
        "http://127.0.0.1",  "https://127.0.0.1", "http://127.0.0.1/",
        "http://127.0.0.1:", "http://[::1]",      "http://localhost/x:80"};
    static const char *const good[] = {"http://127.0.0.1:9808", "http://127.0.0.1:0",
                                       "http://[::1]:9808",     "http://localhost:80/",
                                       "HTTP://127.0.0.1:9808", "Https://127.0.0.1:9808"};
    char text[512], err[256] = "";
    base_err e;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text),
                 "[server]\nhttp_url = %s\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
                 bad[i]);
        refusal r = {text, "for http_url"};
        expect_refusals(&r, 1);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(text, sizeof(text),
                 "[server]\nhttp_url = %s\n[policy p]\ndim = 4\nactions = a\nsignal.s = 1\n",
                 good[i]);
        svc_config *c = load(text, &e, err, sizeof(err));
        MUST_LOAD(e, err);
        done(c);
    }
    svc_config *c = load(minimal, &e, err, sizeof(err));
    MUST_LOAD(e, err);
    TST_EQ(svc_config_apply_flag(c, "http-url", "http://127.0.0.1", err, sizeof(err)), BASE_EINVAL);
    TST_TRUE(strstr(err, "--http-url") != NULL);
    TST_STREQ(c->http_url, SVC_HTTP_URL_DEFAULT);
    TST_OK(svc_config_apply_flag(c, "http-url", "http://127.0.0.1:0", err, sizeof(err)));
    done(c);
}

int main(void)
{
    full_config_loads_with_defaults();
    feature_map_keys_load();
    portfolio_keys_load();
    long_action_lists_load();
    invalid_configs_fail_with_a_reason();
    long_section_names_are_refused_not_cut();
    missing_file_is_an_io_error();
    url_flag_replaces_the_list();
    other_flags_override_their_keys();
    exposure_needs_insecure();
    clients_load_and_bad_ones_fail();
    open_action_sets_load_and_bad_ones_fail();
    continued_values_join_or_are_refused();
    repeated_sections_are_refused();
    ranges_only_on_numbers();
    sections_without_keys_count();
    dotted_policy_names_keep_their_signals();
    reward_version_leaves_out_the_limits();
    interaction_dim_fits_the_map();
    http_url_needs_its_port();
    return tst_done();
}
