/* Strict JSON scanning for the delta decoder: strings (escapes, UTF-8), numbers, values skipped.
   Part of the _delta extension: _delta.c includes it after its constants. */
#ifndef KALSHI_DELTA_JSON_H
#define KALSHI_DELTA_JSON_H
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- JSON scanning */

typedef struct {
    const unsigned char *p, *end;
} Cur;

static inline void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f') v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F') v |= ch - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if invalid. */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    int n;
    unsigned cp;
    if (b >= 0xC2 && b <= 0xDF) { n = 2; cp = b & 0x1F; }
    else if (b >= 0xE0 && b <= 0xEF) { n = 3; cp = b & 0x0F; }
    else if (b >= 0xF0 && b <= 0xF4) { n = 4; cp = b & 0x07; }
    else return 0;
    if (end - p < n) return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

static void put_utf8(unsigned char *o, size_t *k, unsigned cp) {
    if (cp < 0x80) o[(*k)++] = (unsigned char)cp;
    else if (cp < 0x800) {
        o[(*k)++] = (unsigned char)(0xC0 | (cp >> 6));
        o[(*k)++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*k)++] = (unsigned char)(0xE0 | (cp >> 12));
        o[(*k)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        o[(*k)++] = (unsigned char)(0xF0 | (cp >> 18));
        o[(*k)++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*k)++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (unsigned char)(0x80 | (cp & 0x3F));
    }
}

/* 1 for the bytes a string holds as they are: printable ASCII but '"' and '\\' */
static unsigned char PLAIN[256];

static void init_plain(void) {
    for (int i = 0x20; i < 0x80; i++) PLAIN[i] = i != '"' && i != '\\';
}

/* The first byte at or after q that is not PLAIN (or end), 8 bytes at a time. */
static inline const unsigned char *plain_run(const unsigned char *q, const unsigned char *end) {
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    while (end - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
        uint64_t bad = ((quote - ones) & ~quote) | ((slash - ones) & ~slash) |
                       (w - ones * 0x20) | w;
        if (bad & high) break;
        q += 8;
    }
    while (q < end && PLAIN[*q]) q++;
    return q;
}

/* One escape at *pp ('\\' already seen, *pp at the letter after it): its UTF-8 bytes added
   to out (at most cap; *k counts them all) and *pp moved past it. Returns 0 or -1. */
static int escape_seq(const unsigned char **pp, const unsigned char *end, unsigned char *out,
                      size_t cap, size_t *k) {
    const unsigned char *p = *pp;
    unsigned char tmp[4];
    size_t t = 0;
    unsigned cp, lo;
    if (p >= end) return -1;
    switch (*p++) {
    case '"': tmp[t++] = '"'; break;
    case '\\': tmp[t++] = '\\'; break;
    case '/': tmp[t++] = '/'; break;
    case 'b': tmp[t++] = '\b'; break;
    case 'f': tmp[t++] = '\f'; break;
    case 'n': tmp[t++] = '\n'; break;
    case 'r': tmp[t++] = '\r'; break;
    case 't': tmp[t++] = '\t'; break;
    case 'u':
        if (end - p < 4 || hex4(p, &cp)) return -1;
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* a lone low surrogate */
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xDC00 ||
                lo > 0xDFFF)
                return -1;
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        put_utf8(tmp, &t, cp);
        break;
    default: return -1;
    }
    for (size_t i = 0; i < t; i++, (*k)++)
        if (*k < cap) out[*k] = tmp[i];
    *pp = p;
    return 0;
}

/* A JSON string at c->p ('"'): validated (escapes, UTF-8, no control characters). Its
   unescaped text goes to out (at most cap bytes; *len is the full length, so *len > cap means
   it was cut) and its length in code points to *chars. Returns 0, or -1 on a syntax error. */
static int str_token(Cur *c, unsigned char *out, size_t cap, size_t *len, size_t *chars) {
    const unsigned char *p = c->p + 1, *end = c->end;
    const unsigned char *q = plain_run(p, end); /* the common case: plain ASCII to the quote */
    size_t k = (size_t)(q - p), n = k;
    if (out != NULL) memcpy(out, p, k < cap ? k : cap);
    for (p = q;; n++) {
        if (p >= end) return -1;
        unsigned char ch = *p;
        if (ch == '"') break;
        if (ch < 0x20) return -1;
        if (ch == '\\') {
            p++;
            if (escape_seq(&p, end, out, cap, &k)) return -1;
            continue;
        }
        int u = ch < 0x80 ? 1 : utf8_len(p, end);
        if (!u) return -1;
        for (int i = 0; i < u; i++, k++)
            if (k < cap) out[k] = p[i];
        p += u;
    }
    c->p = p + 1;
    *len = k;
    *chars = n;
    return 0;
}

static int skip_str(Cur *c) {
    size_t len, chars;
    return str_token(c, NULL, 0, &len, &chars);
}

/* Whether the number text [s, e) (decimal exponent 309: in [1e308, 1e309)) rounds to an
   infinite double, parsed as Python parses floats (locale-independent, correctly rounded). */
static int overflows_double(const unsigned char *s, const unsigned char *e) {
    char small[64], *buf = small;
    size_t n = (size_t)(e - s);
    if (n >= sizeof small && (buf = PyMem_Malloc(n + 1)) == NULL) return 1; /* generic path */
    memcpy(buf, s, n);
    buf[n] = 0;
    double x = PyOS_string_to_double(buf, NULL, NULL); /* NULL: no OverflowError, ±inf */
    if (buf != small) PyMem_Free(buf);
    if (x == -1.0 && PyErr_Occurred()) {
        PyErr_Clear(); /* (cannot happen: the text is a JSON number) */
        return 1;
    }
    return Py_IS_INFINITY(x);
}

/* A JSON number. *is_int: no fraction or exponent; then *val is its value when it fits
   (else *fits = 0). Returns 0 or -1 (syntax, or a magnitude past a double: orjson, and so
   the generic decoder, refuses such text, so the delta path does not read it either). */
static int num_token(Cur *c, int64_t *val, int *is_int, int *fits) {
    const unsigned char *p = c->p, *end = c->end;
    int neg = 0, nonzero = 0, eneg = 0;
    uint64_t v = 0;
    int ok = 1;
    int64_t mag = 0, ex = 0; /* the value is 0.d... x 10^(mag + exponent), d its first non-0 */
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end || *p < '0' || *p > '9') return -1;
    if (*p == '0') p++;
    else {
        nonzero = 1;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v > (UINT64_MAX - 9) / 10) ok = 0;
            else v = v * 10 + (uint64_t)(*p - '0');
            mag++;
            p++;
        }
    }
    *is_int = 1;
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (!nonzero) {
                if (*p != '0') nonzero = 1;
                else mag--;
            }
        *is_int = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9') return -1;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (ex < 1000000000) ex = ex * 10 + (*p - '0');
        *is_int = 0;
    }
    if (nonzero) { /* mag is bounded by the text's length, ex by 10^10: no overflow */
        int64_t e10 = mag + (eneg ? -ex : ex);
        if (e10 > 309 || (e10 == 309 && overflows_double(c->p, p))) return -1;
    }
    c->p = p;
    if (ok && v <= (uint64_t)INT64_MAX) {
        *val = neg ? -(int64_t)v : (int64_t)v;
        *fits = 1;
    } else {
        *val = neg ? -BIG : BIG;
        *fits = 0;
    }
    return 0;
}

static int lit(Cur *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n)) return -1;
    c->p += n;
    return 0;
}

static int skip_value(Cur *c, int depth) {
    if (depth > MAX_DEPTH) return -1;
    ws(c);
    if (c->p >= c->end) return -1;
    switch (*c->p) {
    case '"': return skip_str(c);
    case 't': return lit(c, "true");
    case 'f': return lit(c, "false");
    case 'n': return lit(c, "null");
    case '[':
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == ']') { c->p++; return 0; }
        for (;;) {
            if (skip_value(c, depth + 1)) return -1;
            ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') { c->p++; continue; }
            if (*c->p == ']') { c->p++; return 0; }
            return -1;
        }
    case '{':
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == '}') { c->p++; return 0; }
        for (;;) {
            ws(c);
            if (c->p >= c->end || *c->p != '"' || skip_str(c)) return -1;
            ws(c);
            if (c->p >= c->end || *c->p != ':') return -1;
            c->p++;
            if (skip_value(c, depth + 1)) return -1;
            ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') { c->p++; continue; }
            if (*c->p == '}') { c->p++; return 0; }
            return -1;
        }
    default: {
        int64_t v;
        int is_int, fits;
        return num_token(c, &v, &is_int, &fits);
    }
    }
}

/* Object iteration: obj_open at '{', then obj_key until it returns 0 (end of object). */
static int obj_open(Cur *c) {
    ws(c);
    if (c->p >= c->end || *c->p != '{') return -1;
    c->p++;
    ws(c);
    return 0;
}

/* Reads the next key and the ':' after it: *key points at its text (in place when it holds
   no escape, else unescaped into buf of cap bytes; *klen its full length, so *klen > cap
   means it was cut). Returns 1 (a key), 0 (end of object) or -1 (syntax). *first tracks
   the separator. */
static int obj_key(Cur *c, int *first, unsigned char *buf, size_t cap,
                   const unsigned char **key, size_t *klen) {
    size_t chars;
    ws(c);
    if (c->p >= c->end) return -1;
    if (*c->p == '}') { c->p++; return 0; }
    if (!*first) {
        if (*c->p != ',') return -1;
        c->p++;
        ws(c);
    }
    *first = 0;
    if (c->p >= c->end || *c->p != '"') return -1;
    const unsigned char *q = c->p + 1;
    while (q < c->end && PLAIN[*q]) q++; /* keys are short: byte by byte */
    if (q < c->end && *q == '"') { /* a plain key: compared where it is */
        *key = c->p + 1;
        *klen = (size_t)(q - *key);
        c->p = q + 1;
    } else {
        if (str_token(c, buf, cap, klen, &chars)) return -1;
        *key = buf;
    }
    ws(c);
    if (c->p >= c->end || *c->p != ':') return -1;
    c->p++;
    ws(c);
    return c->p < c->end ? 1 : -1;
}

#define KEY_IS(k, n, lit_) ((n) == sizeof(lit_) - 1 && !memcmp((k), (lit_), sizeof(lit_) - 1))


#endif /* KALSHI_DELTA_JSON_H */
