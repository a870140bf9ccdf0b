/* One orderbook_delta frame (and its recording envelope) → checked fixed-point values.
   Part of the _delta extension: _delta.c includes it after its constants. */
#ifndef KALSHI_DELTA_FRAME_H
#define KALSHI_DELTA_FRAME_H
#include "delta_json.h"
#include <stdarg.h>

/* ---------------------------------------------------------------- the delta frame */

enum { ABSENT = 0, PRESENT = 1 };
enum { D_OK = 0, D_NOT_DELTA = 1, D_INVALID = 2 };

typedef struct {
    int type; /* 0 absent/not a string, 1 orderbook_delta, 2 another type */
    int has_sid, has_seq;
    int64_t sid, seq;
    int has_msg;
    int has_ticker;
    unsigned char ticker[4 * MAX_TICKER];
    size_t ticker_len;
    int has_side;
    unsigned char side[48];
    size_t side_len;
    int has_pd, has_df, has_price, has_delta;
    unsigned char pd[MAX_NUMBER_TEXT + 8], df[MAX_NUMBER_TEXT + 8];
    size_t pd_len, df_len;
    int64_t price_c, delta_n;
    int has_ts_ms;
    int64_t ts_ms;
    int ts_kind; /* 0 none, 1 int seconds, 2 string */
    int64_t ts_s;
    const unsigned char *ts_str; /* the string token of ts */
    char err[160];
    int err_set;
} Delta;

static void fail(Delta *d, const char *fmt, ...) {
    if (d->err_set) return;
    va_list ap;
    va_start(ap, fmt);
    PyOS_vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    d->err_set = 1;
}

static const char *kind_of(unsigned char ch) {
    switch (ch) {
    case '"': return "str";
    case '{': return "object";
    case '[': return "array";
    case 't': case 'f': return "bool";
    case 'n': return "null";
    default: return "number";
    }
}

/* An int field (or null when nullable): 1 present, 0 null, -1 syntax. A wrong type or a
   fraction is recorded in d->err and the value skipped. */
static int int_field(Cur *c, Delta *d, const char *path, int64_t *out, int *fits) {
    if (*c->p == 'n') return lit(c, "null") ? -1 : 0;
    if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
        int is_int;
        if (num_token(c, out, &is_int, fits)) return -1;
        if (!is_int) {
            fail(d, "Expected `int`, got `float` - at `%s`", path);
            return 0;
        }
        return 1;
    }
    fail(d, "Expected `int | null`, got `%s` - at `%s`", kind_of(*c->p), path);
    return skip_value(c, 1) ? -1 : 0;
}

/* A string field into buf (cap bytes) or null: 1 present, 0 null/wrong type, -1 syntax. */
static int str_field(Cur *c, Delta *d, const char *path, unsigned char *buf, size_t cap,
                     size_t *len, size_t *chars) {
    if (*c->p == '"') return str_token(c, buf, cap, len, chars) ? -1 : 1;
    if (*c->p == 'n') return lit(c, "null") ? -1 : 0;
    fail(d, "Expected `str | null`, got `%s` - at `%s`", kind_of(*c->p), path);
    return skip_value(c, 1) ? -1 : 0;
}

static int counter(Cur *c, Delta *d, const char *path, int64_t *out) {
    int fits = 0;
    int r = int_field(c, d, path, out, &fits);
    if (r == 1 && (!fits || *out < 1)) {
        fail(d, "Expected `int` >= 1 and < 2^63 - at `%s`", path);
        return 0;
    }
    return r;
}

/* ``ts_ms`` (is_ms: int ms) or ``ts`` (int s, or RFC3339 text kept as its token), each
   within 2000..2100 or null. Returns 0, or -1 on a syntax error. */
static int time_field(Cur *c, Delta *d, int is_ms) {
    int fits, r;
    if (is_ms) {
        r = int_field(c, d, "$.msg.ts_ms", &d->ts_ms, &fits);
        d->has_ts_ms = r > 0;
        if (r > 0 && !(d->ts_ms >= MIN_EPOCH_S * 1000 && d->ts_ms < MAX_EPOCH_S * 1000))
            fail(d, "Expected `int` in [%lld, %lld) - at `$.msg.ts_ms`", MIN_EPOCH_S * 1000,
                 MAX_EPOCH_S * 1000);
        return r < 0 ? -1 : 0;
    }
    d->ts_kind = 0;
    if (*c->p == '"') {
        d->ts_str = c->p;
        d->ts_kind = 2;
        return skip_str(c);
    }
    r = int_field(c, d, "$.msg.ts", &d->ts_s, &fits);
    if (r > 0) {
        d->ts_kind = 1;
        if (!(d->ts_s >= MIN_EPOCH_S && d->ts_s < MAX_EPOCH_S))
            fail(d, "Expected `int` in [%lld, %lld) - at `$.msg.ts`", MIN_EPOCH_S, MAX_EPOCH_S);
    }
    return r < 0 ? -1 : 0;
}

static int parse_body(Cur *c, Delta *d) {
    unsigned char kbuf[32];
    const unsigned char *key;
    size_t klen, len, chars;
    int first = 1, r, fits;
    int64_t v;
    /* a repeated "msg": the last one is the body (as JSON readers take it), nothing of the
       one before it is kept (its first error is: a frame with a bad body stays rejected) */
    d->has_ticker = d->has_side = d->has_pd = d->has_df = d->has_price = d->has_delta = 0;
    d->has_ts_ms = d->ts_kind = 0;
    if (obj_open(c)) return -1;
    while ((r = obj_key(c, &first, kbuf, sizeof kbuf, &key, &klen)) == 1) {
        if (KEY_IS(key, klen, "market_ticker")) {
            r = str_field(c, d, "$.msg.market_ticker", d->ticker, sizeof d->ticker,
                          &d->ticker_len, &chars);
            if (r < 0) return -1;
            d->has_ticker = r;
            if (r && (chars < 1 || chars > MAX_TICKER))
                fail(d, "Expected `str` of length 1..%d - at `$.msg.market_ticker`", MAX_TICKER);
            if (!r) fail(d, "Expected `str`, got `null` - at `$.msg.market_ticker`");
        } else if (KEY_IS(key, klen, "side")) {
            r = str_field(c, d, "$.msg.side", d->side, sizeof d->side, &d->side_len, &chars);
            if (r < 0) return -1;
            d->has_side = r;
            if (!r) fail(d, "Expected `str`, got `null` - at `$.msg.side`");
        } else if (KEY_IS(key, klen, "price_dollars")) {
            r = str_field(c, d, "$.msg.price_dollars", d->pd, sizeof d->pd, &d->pd_len, &chars);
            if (r < 0) return -1;
            d->has_pd = r;
        } else if (KEY_IS(key, klen, "delta_fp")) {
            r = str_field(c, d, "$.msg.delta_fp", d->df, sizeof d->df, &d->df_len, &chars);
            if (r < 0) return -1;
            d->has_df = r;
        } else if (KEY_IS(key, klen, "price")) {
            r = int_field(c, d, "$.msg.price", &d->price_c, &fits);
            if (r < 0) return -1;
            d->has_price = r;
        } else if (KEY_IS(key, klen, "delta")) {
            r = int_field(c, d, "$.msg.delta", &d->delta_n, &fits);
            if (r < 0) return -1;
            d->has_delta = r;
        } else if (KEY_IS(key, klen, "ts_ms") || KEY_IS(key, klen, "ts")) {
            if (time_field(c, d, klen == 5)) return -1;
        } else if (KEY_IS(key, klen, "client_order_id")) {
            if (str_field(c, d, "$.msg.client_order_id", NULL, 0, &len, &chars) < 0) return -1;
        } else if (KEY_IS(key, klen, "subaccount")) {
            if (int_field(c, d, "$.msg.subaccount", &v, &fits) < 0) return -1;
        } else if (skip_value(c, 1)) {
            return -1;
        }
    }
    return r;
}

/* The frame object at c (any key order). Returns D_OK / D_NOT_DELTA / D_INVALID (d->err). */
static int parse_frame(Cur *c, Delta *d) {
    unsigned char kbuf[16], tbuf[24];
    const unsigned char *key;
    size_t klen, tlen, chars;
    int first = 1, r;
    memset(d, 0, offsetof(Delta, ticker));
    d->has_ticker = d->has_side = d->has_pd = d->has_df = d->has_price = d->has_delta = 0;
    d->has_ts_ms = d->ts_kind = d->err_set = 0;
    if (obj_open(c)) return D_NOT_DELTA;
    while ((r = obj_key(c, &first, kbuf, sizeof kbuf, &key, &klen)) == 1) {
        if (KEY_IS(key, klen, "type")) {
            d->type = 0;
            if (*c->p == '"') {
                if (str_token(c, tbuf, sizeof tbuf, &tlen, &chars)) return D_NOT_DELTA;
                d->type = KEY_IS(tbuf, tlen, "orderbook_delta") ? 1 : 2;
                if (d->type == 2) return D_NOT_DELTA; /* another type: no need to read on */
            } else if (skip_value(c, 1)) {
                return D_NOT_DELTA;
            }
        } else if (KEY_IS(key, klen, "sid")) {
            r = counter(c, d, "$.sid", &d->sid);
            if (r < 0) return D_NOT_DELTA;
            d->has_sid = r;
        } else if (KEY_IS(key, klen, "seq")) {
            r = counter(c, d, "$.seq", &d->seq);
            if (r < 0) return D_NOT_DELTA;
            d->has_seq = r;
        } else if (KEY_IS(key, klen, "msg")) {
            if (*c->p != '{') {
                fail(d, "Expected `object`, got `%s` - at `$.msg`", kind_of(*c->p));
                if (skip_value(c, 1)) return D_NOT_DELTA;
            } else {
                d->has_msg = 1;
                if (parse_body(c, d) < 0) return D_NOT_DELTA;
            }
        } else if (skip_value(c, 1)) {
            return D_NOT_DELTA;
        }
    }
    if (r < 0 || d->type != 1) return D_NOT_DELTA;
    if (!d->has_msg) fail(d, "Object missing required field `msg`");
    else if (!d->has_ticker) fail(d, "Object missing required field `market_ticker` - at `$.msg`");
    else if (!d->has_side) fail(d, "Object missing required field `side` - at `$.msg`");
    return d->err_set ? D_INVALID : D_OK;
}

/* ---------------------------------------------------------------- units */

/* A fixed-point decimal (grammar -?[0-9]+(\.[0-9]+)?, at most 32 characters, no digit lost
   beyond `decimals`) → integer units; out-of-range magnitudes become ±BIG. Returns 0, or -1
   with the reason in d->err. */
static int fixed(Delta *d, const unsigned char *t, size_t n, int decimals, const char *field,
                 const char *what, int64_t *out) {
    if (n > MAX_NUMBER_TEXT) {
        fail(d, "%s: %s text is %zu characters long (at most %d)", field, what, n,
             MAX_NUMBER_TEXT);
        return -1;
    }
    size_t i = 0;
    int neg = 0, frac = 0, big = 0;
    int64_t v = 0;
    if (i < n && t[i] == '-') { neg = 1; i++; }
    size_t w0 = i;
    while (i < n && t[i] >= '0' && t[i] <= '9') {
        if (v > BIG / 10) big = 1;
        else v = v * 10 + (t[i] - '0');
        i++;
    }
    int ok = i > w0;
    if (ok && i < n && t[i] == '.') {
        i++;
        size_t f0 = i;
        while (i < n && t[i] >= '0' && t[i] <= '9') {
            if (frac < decimals) {
                if (v > BIG / 10) big = 1;
                else v = v * 10 + (t[i] - '0');
                frac++;
            } else if (t[i] != '0') {
                ok = 2;
            }
            i++;
        }
        if (i == f0) ok = 0;
    }
    if (!ok || i != n) {
        fail(d, "%s: %s '%.*s' is not a decimal number", field, what, (int)n, (const char *)t);
        return -1;
    }
    if (ok == 2) {
        fail(d, "%s: %s '%.*s' has more than %d decimals", field, what, (int)n,
             (const char *)t, decimals);
        return -1;
    }
    for (; frac < decimals; frac++) {
        if (v > BIG / 10) big = 1;
        else v *= 10;
    }
    if (big) v = BIG;
    *out = neg ? -v : v;
    return 0;
}

static int64_t scaled(int64_t v, int64_t k) {
    if (v > BIG / k) return BIG;
    if (v < -BIG / k) return -BIG;
    return v * k;
}

/* The value checks of units.py on a decoded delta: side, price, delta. Returns 0, or -1. */
static int delta_values(Delta *d, int *is_no, int64_t *price, int64_t *delta) {
    if (KEY_IS(d->side, d->side_len, "yes")) *is_no = 0;
    else if (KEY_IS(d->side, d->side_len, "no")) *is_no = 1;
    else {
        size_t n = d->side_len < 40 ? d->side_len : 40;
        fail(d, "orderbook_delta side must be 'yes' or 'no', got '%.*s'", (int)n,
             (const char *)d->side);
        return -1;
    }
    if (d->has_pd) {
        if (d->pd_len == 0) { fail(d, "price_dollars is an empty string"); return -1; }
        if (fixed(d, d->pd, d->pd_len, 6, "price_dollars", "price", price)) return -1;
    } else if (d->has_price) {
        *price = scaled(d->price_c, CENT);
    } else {
        fail(d, "price_dollars missing");
        return -1;
    }
    if (*price < 1 || *price > ONE_DOLLAR - 1) {
        if (d->has_pd)
            fail(d, "price_dollars '%.*s' outside [1e-06, 0.999999] dollars", (int)d->pd_len,
                 (const char *)d->pd);
        else
            fail(d, "price_dollars %lld (cents) outside [1e-06, 0.999999] dollars",
                 (long long)d->price_c);
        return -1;
    }
    if (d->has_df) {
        if (d->df_len == 0) { fail(d, "delta_fp is an empty string"); return -1; }
        if (fixed(d, d->df, d->df_len, 2, "delta_fp", "size", delta)) return -1;
    } else if (d->has_delta) {
        *delta = scaled(d->delta_n, SIZE_SCALE);
    } else {
        fail(d, "delta_fp missing");
        return -1;
    }
    if (*delta == 0 || *delta < -MAX_SIZE || *delta > MAX_SIZE) {
        if (d->has_df)
            fail(d, "delta_fp '%.*s' outside [-1e+10, 1e+10] contracts or zero",
                 (int)d->df_len, (const char *)d->df);
        else
            fail(d, "delta_fp %lld (contracts) outside [-1e+10, 1e+10] contracts or zero",
                 (long long)d->delta_n);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- envelopes */

enum { K_BARE = 0, K_COCKPIT = 1, K_RECORDER = 2, K_SEED = 3 };

/* The frame inside a recorder line's "raw" string (its text unescaped into *scratch, which
   the caller frees): D_OK, or D_NOT_DELTA. */
static int raw_frame(Cur *c, Delta *d, unsigned char **scratch) {
    size_t len, chars;
    if (*c->p != '"') return D_NOT_DELTA;
    const unsigned char *start = c->p;
    if (skip_str(c)) return D_NOT_DELTA;
    size_t cap = (size_t)(c->p - start);
    *scratch = PyMem_Malloc(cap);
    if (*scratch == NULL) return D_NOT_DELTA; /* the generic path reports what it can */
    Cur s = {start, c->p};
    str_token(&s, *scratch, cap, &len, &chars);
    Cur inner = {*scratch, *scratch + len};
    if (parse_frame(&inner, d) != D_OK) return D_NOT_DELTA;
    ws(&inner);
    return inner.p == inner.end ? D_OK : D_NOT_DELTA;
}

/* The delta frame of one envelope line. Returns D_OK with the receipt time set, else
   D_NOT_DELTA (anything the generic path must see: another type, a bad delta, an odd
   envelope). *scratch may be set to a buffer the caller frees. */
static int line_delta(Cur *c, int kind, Delta *d, int64_t *recv, int *has_recv,
                      unsigned char **scratch) {
    *has_recv = 0;
    if (kind == K_BARE) return parse_frame(c, d);
    unsigned char kbuf[16];
    const unsigned char *key;
    size_t klen;
    int first = 1, r, got = 0, seen = 0, fits, is_int;
    int64_t v, ms = 0, ns = 0;
    int has_ms = 0, has_ns = 0;
    if (obj_open(c)) return D_NOT_DELTA;
    while ((r = obj_key(c, &first, kbuf, sizeof kbuf, &key, &klen)) == 1) {
        int bit = 0;
        if (KEY_IS(key, klen, "received_ms") && kind != K_RECORDER) bit = 1;
        else if (KEY_IS(key, klen, "recv_ts_ns") && kind != K_COCKPIT) bit = 2;
        else if (KEY_IS(key, klen, "frame") && kind == K_COCKPIT) bit = 4;
        else if (KEY_IS(key, klen, "message") && kind == K_SEED) bit = 4;
        else if (KEY_IS(key, klen, "raw") && kind == K_RECORDER) bit = 4;
        else if (KEY_IS(key, klen, "channel") && kind == K_SEED) bit = 8;
        if (seen & bit) return D_NOT_DELTA; /* a repeated key: the generic path decides */
        seen |= bit;
        if (bit == 1 || bit == 2) {
            if (*c->p == 'n' && kind == K_SEED) {
                if (lit(c, "null")) return D_NOT_DELTA;
                continue;
            }
            if (num_token(c, &v, &is_int, &fits) || !is_int || !fits) return D_NOT_DELTA;
            if (bit == 1) { ms = v; has_ms = 1; } else { ns = v; has_ns = 1; }
        } else if (bit == 4 && kind == K_RECORDER) {
            if (raw_frame(c, d, scratch) != D_OK) return D_NOT_DELTA;
            got = 1;
        } else if (bit == 4) {
            if (parse_frame(c, d) != D_OK) return D_NOT_DELTA;
            got = 1;
        } else if (bit == 8) {
            if (*c->p != '"' || skip_str(c)) return D_NOT_DELTA;
        } else if (skip_value(c, 1)) {
            return D_NOT_DELTA;
        }
    }
    if (r < 0 || !got) return D_NOT_DELTA;
    if (kind == K_SEED && !(seen & 8)) return D_NOT_DELTA; /* a seed envelope names its channel */
    /* the receipt time: recv_ts_ns (recorder; seed first), else received_ms (cockpit; seed) */
    if (has_ns && kind != K_COCKPIT) {
        *recv = ns;
        *has_recv = 1;
    } else if (has_ms && kind != K_RECORDER) {
        if (ms > INT64_MAX / 1000000 || ms < INT64_MIN / 1000000) return D_NOT_DELTA;
        *recv = ms * 1000000;
        *has_recv = 1;
    } else if (kind != K_SEED) {
        return D_NOT_DELTA; /* the cockpit and recorder envelopes require theirs */
    }
    return D_OK;
}



#endif /* KALSHI_DELTA_FRAME_H */
