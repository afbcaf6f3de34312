/* base/log.h: the JSON line formatter (pure), checked byte for byte and by jansson. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "tap.h"

#define TS_MS 1796185256596LL /* 2026-12-02T04:20:56.596Z */

static json_t *parse(const char *line)
{
    json_error_t err;
    return json_loads(line, 0, &err);
}

static void every_level(void)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int l = BASE_LOG_DEBUG; l <= BASE_LOG_ERROR; l++) {
        char line[512], want[512];
        size_t n = base_log_format_json(line, sizeof(line), TS_MS, (enum base_log_level)l,
                                        "listening on ipc:///tmp/x", NULL, 4242);
        snprintf(want, sizeof(want),
                 "{\"ts\":\"2026-12-02T04:20:56.596Z\",\"level\":\"%s\","
                 "\"msg\":\"listening on ipc:///tmp/x\",\"pid\":4242}\n",
                 names[l]);
        TST_STREQ(line, want);
        TST_EQ(n, strlen(want));
        TST_STREQ(base_log_level_name((enum base_log_level)l), names[l]);
        json_t *o = parse(line);
        TST_TRUE(json_is_object(o));
        TST_STREQ(json_string_value(json_object_get(o, "level")), names[l]);
        TST_EQ(json_integer_value(json_object_get(o, "pid")), 4242);
        json_decref(o);
    }
}

static void with_policy(void)
{
    char line[512];
    base_log_format_json(line, sizeof(line), TS_MS, BASE_LOG_INFO, "restored", "faq", 7);
    TST_STREQ(line, "{\"ts\":\"2026-12-02T04:20:56.596Z\",\"level\":\"info\",\"msg\":\"restored\","
                    "\"policy\":\"faq\",\"pid\":7}\n");
}

static void escapes_quotes_and_controls(void)
{
    char line[512];
    base_log_format_json(line, sizeof(line), 0, BASE_LOG_WARN,
                         "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk", "p\"q", 1);
    TST_STREQ(line, "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"warn\","
                    "\"msg\":\"a\\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0001i\\u001fj\\u007fk\","
                    "\"policy\":\"p\\\"q\",\"pid\":1}\n");
    json_t *o = parse(line);
    TST_STREQ(json_string_value(json_object_get(o, "msg")),
              "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk");
    TST_STREQ(json_string_value(json_object_get(o, "policy")), "p\"q");
    json_decref(o);
}

static void replaces_invalid_utf8(void)
{
    char line[512];
    /* valid é and 😀 kept; a lone continuation byte, an overlong '/', a cut sequence replaced */
    base_log_format_json(line, sizeof(line), 0, BASE_LOG_ERROR,
                         "\xc3\xa9 \xf0\x9f\x98\x80 \x80 \xc0\xaf \xe2\x82", NULL, 1);
    json_t *o = parse(line);
    TST_TRUE(json_is_object(o)); /* jansson refuses invalid UTF-8: the line has none */
    TST_STREQ(json_string_value(json_object_get(o, "msg")),
              "\xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
              "\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(o);
}

static void reports_what_does_not_fit(void)
{
    char small[16];
    size_t n = base_log_format_json(small, sizeof(small), 0, BASE_LOG_INFO, "hello", NULL, 1);
    char big[256];
    size_t m = base_log_format_json(big, sizeof(big), 0, BASE_LOG_INFO, "hello", NULL, 1);
    TST_EQ(n, m);
    TST_TRUE(n >= sizeof(small));
    TST_EQ(strlen(small), sizeof(small) - 1);
    TST_EQ(strlen(big), m);
}

int main(void)
{
    every_level();
    with_policy();
    escapes_quotes_and_controls();
    replaces_invalid_utf8();
    reports_what_does_not_fit();
    return tst_done();
}
