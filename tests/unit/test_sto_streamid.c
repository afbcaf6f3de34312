/* storage/streamid: parsing, formatting, order and the next id to assign. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/record.h"
#include "storage/streamid.h"
#include "tap.h"

static void parse_accepts_redis_ids_and_formats_them_back(void)
{
    static const char *const good[] = {"0-0", "0-1", "1700000000123-0", "1700000000123-42",
                                       "18446744073709551615-18446744073709551615"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        sto_sid id = {7, 7};
        char back[BASE_STREAM_ID_MAX + 1];
        TST_TRUE(sto_sid_parse(good[i], &id));
        TST_TRUE(sto_sid_format(id, back, sizeof(back)));
        TST_STREQ(back, good[i]);
    }
    sto_sid id = {0, 0};
    TST_TRUE(sto_sid_parse("1700000000123-42", &id));
    TST_TRUE(id.ms == 1700000000123ull && id.seq == 42);
}

static void parse_rejects_what_redis_would_not_write(void)
{
    static const char *const bad[] = {"",
                                      "-",
                                      "5",
                                      "5-",
                                      "-5",
                                      "5--1",
                                      "5-1-2",
                                      "05-1",
                                      "5-01",
                                      "+5-1",
                                      " 5-1",
                                      "5-1 ",
                                      "5-x",
                                      "*",
                                      "5-*",
                                      "18446744073709551616-0",
                                      "0-18446744073709551616",
                                      "99999999999999999999-0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sto_sid id = {3, 4};
        bool ok = sto_sid_parse(bad[i], &id);
        if (ok) {
            printf("# accepted \"%s\"\n", bad[i]);
        }
        TST_TRUE(!ok && id.ms == 3 && id.seq == 4); /* out untouched on failure */
    }
    TST_TRUE(!sto_sid_parse(NULL, &(sto_sid){0, 0}));
}

static void format_refuses_a_short_buffer(void)
{
    char small[5];
    TST_TRUE(!sto_sid_format((sto_sid){12345, 0}, small, sizeof(small)));
    TST_TRUE(sto_sid_format((sto_sid){12, 0}, small, sizeof(small)));
    TST_STREQ(small, "12-0");
}

static void order_is_by_ms_then_seq(void)
{
    TST_EQ(sto_sid_cmp((sto_sid){5, 9}, (sto_sid){6, 0}), -1);
    TST_EQ(sto_sid_cmp((sto_sid){6, 0}, (sto_sid){5, 9}), 1);
    TST_EQ(sto_sid_cmp((sto_sid){6, 1}, (sto_sid){6, 2}), -1);
    TST_EQ(sto_sid_cmp((sto_sid){6, 2}, (sto_sid){6, 2}), 0);
}

static void text_order_puts_the_empty_id_first(void)
{
    TST_EQ(sto_sid_cmp_text("", ""), 0);
    TST_EQ(sto_sid_cmp_text("", "0-0"), -1);
    TST_EQ(sto_sid_cmp_text("0-1", ""), 1);
    TST_EQ(sto_sid_cmp_text("9-0", "10-0"), -1); /* by value, not by text */
    TST_EQ(sto_sid_cmp_text("10-2", "10-10"), -1);
    TST_EQ(sto_sid_cmp_text("10-10", "10-10"), 0);
    TST_EQ(sto_sid_cmp_text("x", "1-0"), -1);
}

static void next_follows_the_wall_clock_and_never_goes_back(void)
{
    sto_sid last = {1000, 3};
    sto_sid n = sto_sid_next(last, 2000); /* clock ahead: its millisecond, seq 0 */
    TST_TRUE(n.ms == 2000 && n.seq == 0);
    n = sto_sid_next(last, 1000); /* same millisecond: next seq */
    TST_TRUE(n.ms == 1000 && n.seq == 4);
    n = sto_sid_next(last, 10); /* clock went back: stay above the last id */
    TST_TRUE(n.ms == 1000 && n.seq == 4);
    n = sto_sid_next((sto_sid){1000, UINT64_MAX}, 1000); /* full sequence: next millisecond */
    TST_TRUE(n.ms == 1001 && n.seq == 0);
    /* A run of assignments in one millisecond is strictly increasing. */
    sto_sid cur = {0, 0};
    int increasing = 1;
    for (int i = 0; i < 1000; i++) {
        sto_sid nx = sto_sid_next(cur, 1700000000000ull + (uint64_t)(i / 100));
        increasing &= sto_sid_cmp(nx, cur) > 0;
        cur = nx;
    }
    TST_TRUE(increasing);
    TST_TRUE(cur.ms == 1700000000009ull && cur.seq == 99);
}

int main(void)
{
    parse_accepts_redis_ids_and_formats_them_back();
    parse_rejects_what_redis_would_not_write();
    format_refuses_a_short_buffer();
    order_is_by_ms_then_seq();
    text_order_puts_the_empty_id_first();
    next_follows_the_wall_clock_and_never_goes_back();
    return tst_done();
}
