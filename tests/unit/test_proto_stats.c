/*
 * Unit tests for proto/stats.c: the stats reply encoded from a proto_stats in the key order
 * docs/protocol.md section 6 gives (checked through the JSON printer), decoded back to the
 * same struct, and a decoder that ignores what it does not know but refuses wrong types.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "proto/errors.h"
#include "proto/json.h"
#include "proto/stats.h"
#include "tap.h"

/* TST_OK that stops the run (TAP "Bail out!") when later checks would read a failed result. */
#define MUST_OK(expr)                                                                              \
    do {                                                                                           \
        base_err must_e_ = (expr);                                                                 \
        TST_OK(must_e_);                                                                           \
        if (must_e_ != BASE_OK) {                                                                  \
            printf("Bail out! %s failed\n", #expr);                                                \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static const char want_json[] =
    "{\"ok\":true,\"policies\":{\"faq\":{\"decisions\":1,\"logged\":2,\"unlogged\":3,"
    "\"overflow\":4,\"feedback\":5,\"duplicates\":6,\"unknown_event\":7,\"pending\":8,"
    "\"joined\":9,\"defaulted\":10,\"mean_reward\":0.5,\"updates\":11,\"learn_errors\":12,"
    "\"store_errors\":13,\"snapshots\":14,\"model_version\":15,"
    "\"model_checksum\":\"895ffd2426749cd7\",\"dim\":64,\"last_applied_id\":\"1700-0\","
    "\"next_lsn\":16,\"learn_trace\":\"00000000000000ab\",\"reward_version\":\"v1\","
    "\"serve\":\"production\",\"canary\":0.25,\"registry_errors\":24,\"reward_alarm\":\"up\","
    "\"reward_alarms\":3,\"role\":\"follower\",\"owner\":\"inst-a\",\"forwarded\":25,"
    "\"inbox\":26,\"inbox_bad\":27,\"inbox_conflicts\":29,"
    "\"join\":{\"pending\":17,\"deferred\":18,\"joined\":19,\"defaulted\":20,\"unknown\":21,"
    "\"not_activated\":22,\"activations\":28,\"dangling\":23,\"matched\":30,\"duplicate\":31,"
    "\"corrected\":32,"
    "\"late\":33,\"late_correction\":34,\"early\":35,\"unknown_event\":36,"
    "\"rejected_signal\":37,\"rejected_value\":38,\"rejected_limit\":39,"
    "\"rejected_rate\":40,\"latency\":{\"lt_1s\":50,\"lt_10s\":51,\"lt_1m\":52,"
    "\"lt_10m\":53,\"lt_1h\":54,\"lt_6h\":55,\"lt_1d\":56,\"ge_1d\":57}},"
    "\"slots\":{\"online\":{\"decisions\":60,\"joined\":61,\"mean_reward\":0.75,"
    "\"model_version\":15},\"production\":{\"decisions\":62,\"joined\":63,"
    "\"mean_reward\":0.125,\"model_version\":7}},"
    "\"portfolio\":{\"serving\":\"ridge/ucb:0.25\",\"switches\":2,\"live\":1,\"members\":["
    "{\"name\":\"ridge/greedy:0.01\",\"live\":true,\"estimate\":0.5,\"vs_serving\":-0.25,"
    "\"se\":0.125,\"share\":0.0625,\"updates\":70},{\"name\":\"ridge/ucb:0.25\",\"live\":false,"
    "\"estimate\":0.75,\"vs_serving\":0.0,\"se\":0.0,\"share\":0.0,\"updates\":71}]}}},"
    "\"rejected\":{\"bad_request\":1,\"internal\":2},"
    "\"storage\":{\"redis\":\"up\",\"queue_depth\":0,\"queue_capacity\":65536,"
    "\"written\":22,\"failed\":0,\"trimmed\":5,\"audit_failed\":2,\"pull_paused\":3,"
    "\"url\":\"unix:/tmp/r.sock\"}}";

/* The policy of want_json, in caller storage zeroed first (so memcmp can compare). */
static void fill_policy(proto_policy_stats *p)
{
    memset(p, 0, sizeof(*p));
    memcpy(p->name, "faq", 4);
    p->decisions = 1;
    p->logged = 2;
    p->unlogged = 3;
    p->overflow = 4;
    p->feedback = 5;
    p->duplicates = 6;
    p->unknown_event = 7;
    p->pending = 8;
    p->joined = 9;
    p->defaulted = 10;
    p->mean_reward = 0.5;
    p->updates = 11;
    p->learn_errors = 12;
    p->store_errors = 13;
    p->snapshots = 14;
    p->model_version = 15;
    p->model_checksum = 0x895ffd2426749cd7ull;
    p->dim = 64;
    memcpy(p->last_applied_id, "1700-0", 7);
    p->next_lsn = 16;
    p->learn_trace = 0xab;
    memcpy(p->reward_version, "v1", 3);
    p->join.pending = 17;
    p->join.deferred = 18;
    p->join.joined = 19;
    p->join.defaulted = 20;
    p->join.unknown = 21;
    p->join.not_activated = 22;
    p->join.activations = 28;
    p->join.dangling = 23;
    for (int s = 0; s < PROTO_ST_JOIN_COUNT; s++) {
        p->join.status[s] = 30 + (uint64_t)s;
    }
    for (int b = 0; b < PROTO_LATENCY_BUCKETS; b++) {
        p->join.latency[b] = 50 + (uint64_t)b;
    }
    memcpy(p->serve, "production", 11);
    p->canary = 0.25;
    p->registry_errors = 24;
    memcpy(p->reward_alarm, "up", 3);
    p->reward_alarms = 3;
    memcpy(p->role, "follower", 9);
    memcpy(p->owner, "inst-a", 7);
    p->forwarded = 25;
    p->inbox = 26;
    p->inbox_bad = 27;
    p->inbox_conflicts = 29;
    p->slots[0] = (proto_slot_stats){60, 61, 0.75, 15};
    p->slots[1] = (proto_slot_stats){62, 63, 0.125, 7};
    memcpy(p->portfolio.serving, "ridge/ucb:0.25", 15);
    p->portfolio.switches = 2;
    p->portfolio.live = 1;
    p->portfolio.n_members = 2;
    memcpy(p->portfolio.member[0].name, "ridge/greedy:0.01", 18);
    p->portfolio.member[0].live = true;
    p->portfolio.member[0].estimate = 0.5;
    p->portfolio.member[0].vs_serving = -0.25;
    p->portfolio.member[0].se = 0.125;
    p->portfolio.member[0].share = 0.0625;
    p->portfolio.member[0].updates = 70;
    memcpy(p->portfolio.member[1].name, "ridge/ucb:0.25", 15);
    p->portfolio.member[1].estimate = 0.75;
    p->portfolio.member[1].updates = 71;
}

static void stats_reply_keeps_the_documented_key_order_and_round_trips(void)
{
    proto_policy_stats *p = base_alloc(sizeof(*p));
    proto_stats s, back;
    base_buf b;
    char *json = NULL;

    MUST_OK(p != NULL ? BASE_OK : BASE_ENOMEM);
    fill_policy(p);
    memset(&s, 0, sizeof(s));
    s.n_policies = 1;
    s.policies = p;
    s.rejected[PROTO_E_BAD_REQUEST] = 1;
    s.rejected[PROTO_E_INTERNAL] = 2;
    s.storage = (proto_storage_stats){PROTO_REDIS_UP, 0, 65536, 22, 0, 5, 2, 3, "unix:/tmp/r.sock"};
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_reply_stats(&b, &s));
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &json));
    TST_STREQ(json, want_json);
    base_free(json);

    MUST_OK(proto_stats_decode(b.data, b.len, &back));
    TST_EQ(back.n_policies, 1);
    TST_TRUE(back.n_policies == 1 && memcmp(back.policies, p, sizeof(*p)) == 0);
    TST_TRUE(memcmp(back.rejected, s.rejected, sizeof(s.rejected)) == 0);
    TST_TRUE(back.storage.redis == PROTO_REDIS_UP && back.storage.queue_capacity == 65536 &&
             back.storage.written == 22 && back.storage.trimmed == 5 &&
             back.storage.audit_failed == 2 && back.storage.pull_paused == 3);
    proto_stats_fini(&back);
    proto_stats_fini(&back); /* idempotent */

    /* Too small a buffer: nothing is left behind. */
    base_buf_fini(&b);
    base_buf_init(&b, 64);
    TST_EQ(proto_reply_stats(&b, &s), BASE_ELIMIT);
    TST_EQ(b.len, 0);
    base_buf_fini(&b);
    base_free(p);
}

/* "standby" (standby = on): present only when the instance stands by for a policy. */
static void stats_standby_round_trips(void)
{
    proto_stats s, back;
    base_buf b;
    char *json = NULL;
    memset(&s, 0, sizeof(s));
    s.storage = (proto_storage_stats){PROTO_REDIS_UP, 0, 8, 0, 0, 0, 0, 0, "u"};
    s.n_standby = 2;
    snprintf(s.standby[0].policy, sizeof(s.standby[0].policy), "faq");
    snprintf(s.standby[0].owner, sizeof(s.standby[0].owner), "host-a:ipc:///run/a.sock");
    snprintf(s.standby[1].policy, sizeof(s.standby[1].policy), "billing");
    snprintf(s.standby[1].owner, sizeof(s.standby[1].owner), "b");
    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_reply_stats(&b, &s));
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &json));
    TST_TRUE(strstr(json, "\"standby\":{\"faq\":\"host-a:ipc:///run/a.sock\",\"billing\":\"b\"}") !=
             NULL);
    base_free(json);
    MUST_OK(proto_stats_decode(b.data, b.len, &back));
    TST_EQ(back.n_standby, 2);
    TST_STREQ(back.standby[1].policy, "billing");
    TST_STREQ(back.standby[0].owner, "host-a:ipc:///run/a.sock");
    proto_stats_fini(&back);
    base_buf_reset(&b);
    s.n_standby = 0;
    MUST_OK(proto_reply_stats(&b, &s));
    MUST_OK(proto_json_from_msgpack(b.data, b.len, &json));
    TST_TRUE(strstr(json, "standby") == NULL);
    base_free(json);
    base_buf_fini(&b);
}

static void stats_decoder_ignores_unknown_keys_and_refuses_wrong_types(void)
{
    base_buf b;
    proto_stats s;

    base_buf_init(&b, PROTO_MAX_MSG_BYTES);
    MUST_OK(proto_json_to_msgpack(
        "{\"ok\":true,\"later\":1,\"policies\":{\"a\":{\"decisions\":3,\"new_counter\":[1],"
        "\"join\":{\"late\":4,\"latency\":{\"lt_1s\":2,\"lt_1y\":9}}},\"b\":{}},"
        "\"rejected\":{\"from_the_future\":7,\"limit\":1},\"storage\":{\"redis\":\"sideways\"}}",
        &b, NULL, 0));
    MUST_OK(proto_stats_decode(b.data, b.len, &s));
    TST_EQ(s.n_policies, 2);
    TST_STREQ(s.policies[0].name, "a");
    TST_EQ(s.policies[0].decisions, 3);
    TST_EQ(s.policies[0].logged, 0);
    TST_EQ(s.policies[0].join.status[PROTO_ST_LATE], 4);
    TST_EQ(s.policies[0].join.latency[0], 2);
    TST_STREQ(s.policies[1].name, "b");
    TST_EQ(s.rejected[PROTO_E_LIMIT], 1);
    TST_EQ(s.storage.redis, PROTO_REDIS_UNKNOWN);
    proto_stats_fini(&s);

    static const char *const bad[] = {
        "{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"\"}}",
        "{\"ok\":true,\"policies\":{\"a\":{\"decisions\":-1}}}",
        "{\"ok\":true,\"policies\":{\"a\":{\"model_checksum\":\"xyz\"}}}",
        "{\"ok\":true,\"policies\":{\"a\":{\"model_checksum\":\"12345678901234567\"}}}",
        "{\"ok\":true,\"policies\":{\"a\":{\"join\":{\"latency\":{\"lt_1s\":\"x\"}}}}}",
        "{\"ok\":true,\"policies\":[]}",
        "{\"ok\":true,\"rejected\":{\"limit\":\"many\"}}",
        "{\"ok\":true,\"storage\":{\"redis\":1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        base_buf_reset(&b);
        MUST_OK(proto_json_to_msgpack(bad[i], &b, NULL, 0));
        TST_EQ(proto_stats_decode(b.data, b.len, &s), BASE_EPROTO);
    }
    base_buf_fini(&b);
}

int main(void)
{
    stats_reply_keeps_the_documented_key_order_and_round_trips();
    stats_decoder_ignores_unknown_keys_and_refuses_wrong_types();
    stats_standby_round_trips();
    return tst_done();
}
