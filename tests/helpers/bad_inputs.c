#include "bad_inputs.h"

#define D "/api/v1/decide"
#define F "/api/v1/feedback"

const tst_bad_input tst_bad_inputs[] = {
    /* No "v": bad_request; over HTTP v is 1 and the missing context is. */
    {"{\"op\":\"decide\",\"policy\":\"t\"}", PROTO_E_BAD_REQUEST, D, 400, PROTO_E_BAD_REQUEST},
    {"{\"v\":2,\"op\":\"decide\"}", PROTO_E_BAD_VERSION, D, 400, PROTO_E_BAD_VERSION},
    /* Over HTTP the op is the path's: another one is bad_request. */
    {"{\"v\":1,\"op\":\"explode\"}", PROTO_E_UNKNOWN_OP, D, 400, PROTO_E_BAD_REQUEST},
    {"{\"v\":1,\"op\":\"decide\",\"policy\":\"nope\",\"context\":{\"embedding\":[1,2,3,4]},"
     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
     PROTO_E_UNKNOWN_POLICY, D, 404, PROTO_E_UNKNOWN_POLICY},
    {"{\"v\":1,\"op\":\"decide\",\"policy\":\"t\",\"context\":{\"embedding\":[1,2,3]},"
     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
     PROTO_E_BAD_DIMENSION, D, 400, PROTO_E_BAD_DIMENSION},
    {"{\"v\":1,\"op\":\"decide\",\"policy\":\"t\",\"context\":{\"embedding\":[1,2,3,4]},"
     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0},{\"id\":\"b\",\"base_logit\":0},"
     "{\"id\":\"c\",\"base_logit\":0},{\"id\":\"d\",\"base_logit\":0}]}",
     PROTO_E_TOO_MANY_CANDIDATES, D, 400, PROTO_E_TOO_MANY_CANDIDATES},
    {"{\"v\":1,\"op\":\"decide\",\"policy\":\"t\",\"context\":{\"embedding\":[1,2,3,4]},"
     "\"candidates\":[{\"id\":\"zzz\",\"base_logit\":0}]}",
     PROTO_E_UNKNOWN_ACTION, D, 400, PROTO_E_UNKNOWN_ACTION},
    {"{\"v\":1,\"op\":\"decide\",\"policy\":\"t\",\"context\":{\"embedding\":[1,2,3,4]},"
     "\"candidates\":[{\"id\":\"a\"}]}",
     PROTO_E_BAD_REQUEST, D, 400, PROTO_E_BAD_REQUEST},
    /* 1e300 is a finite float64 but overflows float32. */
    {"{\"v\":1,\"op\":\"decide\",\"policy\":\"t\",\"context\":{\"embedding\":[1,1e300,0,0]},"
     "\"candidates\":[{\"id\":\"a\",\"base_logit\":0}]}",
     PROTO_E_NOT_FINITE, D, 400, PROTO_E_NOT_FINITE},
    {"{\"v\":1,\"op\":\"feedback\",\"policy\":\"t\",\"event_id\":\"never-decided\","
     "\"signal\":\"resolved\"}",
     PROTO_E_UNKNOWN_EVENT, F, 404, PROTO_E_UNKNOWN_EVENT},
    {"{\"v\":1,\"op\":\"feedback\",\"policy\":\"t\",\"event_id\":\"ev-1\","
     "\"signal\":\"made_up\"}",
     PROTO_E_UNKNOWN_SIGNAL, F, 400, PROTO_E_UNKNOWN_SIGNAL},
    /* Not a map. */
    {"[1,2,3]", PROTO_E_BAD_REQUEST, D, 400, PROTO_E_BAD_REQUEST},
};

const size_t tst_n_bad_inputs = sizeof(tst_bad_inputs) / sizeof(tst_bad_inputs[0]);

long long tst_bad_inputs_count(proto_errcode code, int http)
{
    long long n = 0;
    for (size_t i = 0; i < tst_n_bad_inputs; i++) {
        n += (http ? tst_bad_inputs[i].http_code : tst_bad_inputs[i].code) == code;
    }
    return n;
}
