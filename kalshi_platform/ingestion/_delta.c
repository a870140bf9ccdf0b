/* The orderbook_delta hot path of the ticker plant: decode a frame, apply it to its book.

   Source: docs/kalshi-api.md §7.5 (orderbook_delta), §5 (fixed-point strings); the ranges are
   docs/plant-contract.md's, the same as kalshi_platform/ingestion/units.py checks for the other
   frame types. Three parts, one purpose:

   * decode(text) — one orderbook_delta frame (JSON bytes) → (sid, seq, ticker, side, price µ$,
     delta c-contracts, ts) in fixed-point ints, with every check of the wire contract: sid/seq
     in [1, 2^63) or null, ticker 1..128 characters, side yes/no, price in (0, 1) $, delta
     non-zero within ±10^10 contracts, ts_ms/ts within 2000..2100, strict JSON (escapes, UTF-8,
     any key order, unknown keys and nested values skipped). ``ts`` is ns, None, or the RFC3339
     text when only ``ts`` was sent as a string (the caller parses it). Returns None when the
     value is not an orderbook_delta object (or not JSON at all): the generic decoder decides.
     A bad delta raises ValueError(reason, sid|None, seq|None).
   * BookCore — the base of OrderBook: its slots (ticker, sid, yes, no, best_yes, best_no,
     state, market_id), apply_delta(side, price, delta) on the two dict ladders, top() and
     note_top(last_top), the plant's BBO rule.
   * feed_lines(...) / decode_line(...) — a recording chunk's lines (bare, cockpit, recorder or
     seed envelope) through decode, seq check, book apply and BBO, for as long as every line
     is a delta the common path takes; it stops and reports to the plant at the first line
     that needs anything else (see feed_lines' docstring).

   Files: delta_json.h (strict JSON scanning), delta_frame.h (the frame, its values, the
   envelopes), delta_book.h (BookCore); this file: the module, its entry points and the feed.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define ONE_DOLLAR 1000000LL
#define CENT 10000LL
#define SIZE_SCALE 100LL
#define MAX_SIZE 1000000000000LL /* 10^10 contracts in centi-contracts */
#define MIN_EPOCH_S 946684800LL
#define MAX_EPOCH_S 4102444800LL
#define MIN_EPOCH_NS (MIN_EPOCH_S * 1000000000LL)
#define MAX_EPOCH_NS (MAX_EPOCH_S * 1000000000LL)
#define MAX_NUMBER_TEXT 32
#define MAX_TICKER 128
#define MAX_DEPTH 1000
#define BIG ((int64_t)4000000000000000000LL) /* stands for "too large for any range" */

/* the parts, in order: each uses the constants above and the parts before it */
#include "delta_json.h"
#include "delta_frame.h"
#include "delta_book.h"

/* ---------------------------------------------------------------- module state */

static PyObject *S_YES, *S_NO;

#include "delta_block.h"

static PyObject *long_or_none(int has, int64_t v) {
    if (!has) Py_RETURN_NONE;
    return PyLong_FromLongLong(v);
}

/* The ts of a frame: ns as an int, None, or the text of a string ts (the caller parses). */
static PyObject *ts_object(Delta *d) {
    if (d->has_ts_ms) return PyLong_FromLongLong(d->ts_ms * 1000000LL);
    if (d->ts_kind == 1) return PyLong_FromLongLong(d->ts_s * 1000000000LL);
    if (d->ts_kind == 2) {
        Cur c = {d->ts_str, d->ts_str + 1};
        size_t len, chars, cap;
        /* the token is known to be valid: find its end, then unescape it */
        const unsigned char *q = d->ts_str + 1;
        while (*q != '"') q += (*q == '\\') ? 2 : 1;
        cap = (size_t)(q - d->ts_str);
        c.end = q + 1;
        unsigned char *buf = PyMem_Malloc(cap ? cap : 1);
        if (buf == NULL) return PyErr_NoMemory();
        str_token(&c, buf, cap, &len, &chars);
        PyObject *s = PyUnicode_DecodeUTF8((const char *)buf, (Py_ssize_t)len, "strict");
        PyMem_Free(buf);
        return s;
    }
    Py_RETURN_NONE;
}

static PyObject *decode_error(Delta *d) {
    PyObject *reason = PyUnicode_DecodeUTF8(d->err, (Py_ssize_t)strlen(d->err), "replace");
    if (reason == NULL) return NULL;
    PyObject *args = Py_BuildValue("(NNN)", reason, long_or_none(d->has_sid, d->sid),
                                   long_or_none(d->has_seq, d->seq));
    if (args == NULL) return NULL;
    PyErr_SetObject(PyExc_ValueError, args);
    Py_DECREF(args);
    return NULL;
}

/* Recent tickers as str objects (their hash computed once): a feed repeats a few thousand. */
#define TICKER_SLOTS 4096
static PyObject *ticker_cache[TICKER_SLOTS];

static PyObject *ticker_object(Delta *d) {
    const unsigned char *t = d->ticker;
    size_t n = d->ticker_len;
    uint64_t h = n, w = 0;
    if (n >= 8) { /* tickers of one event differ at their ends: hash the first and last 8 bytes */
        memcpy(&w, t, 8);
        h ^= w * 0x9E3779B97F4A7C15ULL;
        memcpy(&w, t + n - 8, 8);
    } else {
        memcpy(&w, t, n);
    }
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
    PyObject **slot = &ticker_cache[h & (TICKER_SLOTS - 1)];
    PyObject *s = *slot;
    if (s != NULL && (size_t)PyUnicode_GET_LENGTH(s) == n && !memcmp(PyUnicode_DATA(s), t, n))
        return Py_NewRef(s); /* only ASCII strs are cached: length and bytes say it all */
    s = PyUnicode_DecodeUTF8((const char *)t, (Py_ssize_t)n, "strict");
    if (s != NULL && PyUnicode_IS_ASCII(s)) {
        if (PyObject_Hash(s) == -1) {
            Py_DECREF(s);
            return NULL;
        }
        Py_XSETREF(*slot, Py_NewRef(s));
    }
    return s;
}

PyDoc_STRVAR(decode_doc,
"decode(text: bytes | str, /) -> tuple | None\n\n"
"One ``orderbook_delta`` frame (JSON text) → ``(sid, seq, ticker, side, price µ$, delta\n"
"c-contracts, ts)``: ``sid``/``seq`` int or None, ``side`` ``'yes'``/``'no'``, ``ts`` ns, None\n"
"(no time on the wire) or the RFC3339 text of a string ``ts`` for the caller to parse.\n"
"None when the text is not one JSON object whose ``type`` is ``orderbook_delta``. A bad delta\n"
"raises ``ValueError(reason, sid | None, seq | None)``.");

static PyObject *decode(PyObject *mod, PyObject *arg) {
    Py_buffer view;
    const char *s;
    Py_ssize_t n;
    int own = 0;
    memset(&view, 0, sizeof view);
    if (PyUnicode_Check(arg)) {
        s = PyUnicode_AsUTF8AndSize(arg, &n);
        if (s == NULL) {
            PyErr_Clear(); /* lone surrogates: not JSON this decoder reads */
            Py_RETURN_NONE;
        }
    } else {
        if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
        s = view.buf;
        n = view.len;
        own = 1;
    }
    Delta d;
    Cur c = {(const unsigned char *)s, (const unsigned char *)s + n};
    int st = parse_frame(&c, &d);
    PyObject *res = NULL;
    if (st != D_NOT_DELTA) {
        ws(&c);
        if (c.p != c.end) st = D_NOT_DELTA; /* trailing text: not one JSON value */
    }
    int is_no = 0;
    int64_t price = 0, delta = 0;
    if (st == D_NOT_DELTA) {
        res = Py_NewRef(Py_None);
    } else if (st == D_INVALID || delta_values(&d, &is_no, &price, &delta)) {
        decode_error(&d);
    } else {
        res = Py_BuildValue("(NNNONNN)", long_or_none(d.has_sid, d.sid),
                            long_or_none(d.has_seq, d.seq), ticker_object(&d),
                            is_no ? S_NO : S_YES, PyLong_FromLongLong(price),
                            PyLong_FromLongLong(delta), ts_object(&d));
    }
    if (own) PyBuffer_Release(&view);
    return res;
}

/* ---------------------------------------------------------------- feed_lines */

enum { F_END = 0, F_OTHER = 1, F_DELTA = 2, F_CROSSED = 3, F_BOOK_ERROR = 4 };

static PyObject *feed_result(Py_ssize_t pos, Py_ssize_t n, Py_ssize_t nbbo, int64_t clock,
                             int code, PyObject *info) {
    if (info == NULL) return NULL;
    return Py_BuildValue("(nnnLiN)", pos, n, nbbo, (long long)clock, code, info);
}

/* emit(type(*vals)) (the n new references in vals are stolen); an emit raising an Exception
   goes to emit_failed(exc) and sets *stop (a BaseException such as KeyboardInterrupt is not
   the publisher's failure: it propagates, as from the plant's Python publish loop). Returns
   0, or -1 on a Python error. */
static int emit_event(PyObject *emit, PyObject *emit_failed, PyTypeObject *type,
                      PyObject **vals, int n, int *stop) {
    PyObject *ev = type->tp_alloc(type, n);
    int bad = ev == NULL;
    for (int i = 0; i < n; i++) {
        if (vals[i] == NULL) bad = 1;
        if (ev != NULL) PyTuple_SET_ITEM(ev, i, vals[i] ? vals[i] : Py_NewRef(Py_None));
        else Py_XDECREF(vals[i]);
    }
    if (bad) {
        Py_XDECREF(ev);
        return -1;
    }
    PyObject *r = PyObject_CallOneArg(emit, ev);
    Py_DECREF(ev);
    if (r == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
        PyObject *et, *exc, *tb;
        PyErr_Fetch(&et, &exc, &tb);
        PyErr_NormalizeException(&et, &exc, &tb);
        if (tb != NULL && exc != NULL && PyException_SetTraceback(exc, tb) < 0) r = NULL;
        else r = PyObject_CallOneArg(emit_failed, exc ? exc : Py_None);
        Py_XDECREF(et);
        Py_XDECREF(exc);
        Py_XDECREF(tb);
        if (r == NULL) return -1;
        *stop = 1;
    }
    Py_DECREF(r);
    return 0;
}

PyDoc_STRVAR(feed_doc,
"feed_lines(chunk, pos, end, kind, books, seqs, last_top, live, clock_ns, yes_scale, emit,\n"
"           emit_failed, delta_type, bbo_type, block=None) -> (pos, n, n_bbo, clock_ns, code,\n"
"           info)\n\n"
"Run the recording lines of ``chunk[pos:end]`` (bytes) through the delta path: ``kind`` 0\n"
"bare, 1 cockpit, 2 recorder, 3 seed envelope. A line is taken here only when it is a valid\n"
"delta whose ``seq`` is its sid's watermark (``seqs``) + 1, whose book (``books[ticker]``)\n"
"is ``live`` (the object ``live``) on that sid, ``yes_scale`` is false or its side is yes,\n"
"with a receipt time in 2000..2100 and a numeric time (or none). Then the watermark moves,\n"
"``emit(delta_type(ticker, ts, sid, seq, side, price, delta, recv_ns))`` when ``emit`` is\n"
"not None, the delta is applied, and a new top (BookCore.note_top with ``last_top``) counts\n"
"in ``n_bbo`` and is emitted as ``bbo_type(ticker, ts, yes_bid, yes_bid_size, yes_ask,\n"
"yes_ask_size, seq, recv_ns, live)``; a raising emit goes to ``emit_failed(exc)`` and the\n"
"run stops after the line. Blank lines are skipped. Returns where it stopped, the lines\n"
"taken (``n``, the stopping line included for codes 3 and 4), the new tops, the clock and\n"
"why: 0 end or a failed emit (``info`` None); 1 another line (``info`` its (start, end),\n"
"untouched); 2 a valid delta the plant must take itself (``info`` (start, end, recv_ns,\n"
"sid, seq, ticker, side, price, delta, ts), untouched); 3 applied, the top is crossed or\n"
"locked (``info`` (book, ts, seq, recv_ns)); 4 it would break the book (``info`` (book,\n"
"message, sid, ts, seq, recv_ns); the book is stale, the watermark moved). With a ``block``\n"
"(a BlockBuilder; ``emit`` must be None) the same events are appended to it as records\n"
"instead (delta_block.h): the caller takes the block after the call, before any other event\n"
"of the plant, so stream order holds.");

/* One recording line read as a delta: the frame, its values, its receipt time. */
typedef struct {
    Delta d;
    int64_t recv, price, delta, ts;
    int has_recv, is_no;
} Line;

/* The line at c (up to c->end) in envelope kind: 1 a valid delta with a numeric time or
   none and a receipt time in 2000..2100 or none (ln filled; ln->ts is the wire's time in ns,
   or clock/the receipt time when it has none), 0 anything else. */
static int read_line(Cur *c, int kind, Line *ln, int64_t clock) {
    unsigned char *scratch = NULL;
    ln->recv = ln->price = ln->delta = 0;
    ln->is_no = 0;
    int st = line_delta(c, kind, &ln->d, &ln->recv, &ln->has_recv, &scratch);
    PyMem_Free(scratch); /* nothing of the frame points into it on a D_OK numeric-time line */
    if (st != D_OK) return 0;
    ws(c);
    Delta *d = &ln->d;
    if (c->p != c->end || delta_values(d, &ln->is_no, &ln->price, &ln->delta)) return 0;
    if (ln->has_recv && (ln->recv < MIN_EPOCH_NS || ln->recv >= MAX_EPOCH_NS)) return 0;
    if (!d->has_ts_ms && d->ts_kind == 2) return 0; /* an RFC3339 time: the generic path */
    ln->ts = d->has_ts_ms ? d->ts_ms * 1000000LL : d->ts_kind == 1 ? d->ts_s * 1000000000LL
             : ln->has_recv ? ln->recv : clock;
    return 1;
}

static PyObject *recv_object(Line *ln) {
    return ln->has_recv ? PyLong_FromLongLong(ln->recv) : Py_NewRef(Py_None);
}

/* feed_lines' arguments and running counts. */
typedef struct {
    const unsigned char *base;
    Py_ssize_t pos, size, n, nbbo;
    int kind, yes_scale;
    int64_t clock;
    PyObject *books, *seqs, *last_top, *live, *emit, *emit_failed;
    PyTypeObject *dtype, *btype;
    BlockBuilder *block; /* events go here instead of to emit (not NULL: emit is NULL) */
} Feed;

static int feed_args(Feed *f, PyObject *const *a, Py_ssize_t nargs) {
    if ((nargs != 14 && nargs != 15) || !PyBytes_Check(a[0]) || !PyDict_CheckExact(a[4]) ||
        !PyDict_CheckExact(a[5]) || !PyDict_Check(a[6])) {
        PyErr_SetString(PyExc_TypeError, "feed_lines(chunk: bytes, pos, end, kind, books: dict, "
                        "seqs: dict, last_top: dict, live, clock_ns, yes_scale, emit, "
                        "emit_failed, delta_type, bbo_type[, block])");
        return -1;
    }
    f->base = (const unsigned char *)PyBytes_AS_STRING(a[0]);
    f->pos = PyLong_AsSsize_t(a[1]);
    f->size = PyLong_AsSsize_t(a[2]);
    f->kind = (int)PyLong_AsLong(a[3]);
    f->clock = PyLong_AsLongLong(a[8]);
    if (PyErr_Occurred()) return -1;
    if (f->size < 0 || f->size > PyBytes_GET_SIZE(a[0])) f->size = PyBytes_GET_SIZE(a[0]);
    if (f->pos < 0) f->pos = 0;
    f->books = a[4], f->seqs = a[5], f->last_top = a[6], f->live = a[7];
    f->yes_scale = PyObject_IsTrue(a[9]);
    if (f->yes_scale < 0) return -1;
    f->emit = a[10] == Py_None ? NULL : a[10], f->emit_failed = a[11];
    f->dtype = (PyTypeObject *)a[12], f->btype = (PyTypeObject *)a[13];
    if (f->emit != NULL && (!PyType_Check(a[12]) || !PyType_IsSubtype(f->dtype, &PyTuple_Type) ||
                            !PyType_Check(a[13]) || !PyType_IsSubtype(f->btype, &PyTuple_Type))) {
        PyErr_SetString(PyExc_TypeError, "delta_type and bbo_type must be tuple types");
        return -1;
    }
    f->block = NULL;
    if (nargs == 15 && a[14] != Py_None) {
        if (!PyObject_TypeCheck(a[14], &BlockBuilderType) || f->emit != NULL) {
            PyErr_SetString(PyExc_TypeError, "block must be a BlockBuilder, and emit None");
            return -1;
        }
        f->block = (BlockBuilder *)a[14];
        if (builder_ready(f->block) < 0) return -1;
    }
    f->n = f->nbbo = 0;
    return 0;
}

/* Whether the common path takes this delta: 1 (*sid a new reference, *book borrowed), 0 the
   plant must (its seq is not the watermark + 1, its book is not live on its sid, ...), -1. */
static int fast_book(Feed *f, Line *ln, PyObject *ticker, PyObject **sid, PyObject **book) {
    Delta *d = &ln->d;
    *sid = NULL;
    if (!d->has_sid || !d->has_seq || (f->yes_scale && ln->is_no)) return 0;
    *sid = PyLong_FromLongLong(d->sid);
    if (*sid == NULL) return -1;
    PyObject *last = PyDict_GetItemWithError(f->seqs, *sid);
    if (last == NULL) return PyErr_Occurred() ? -1 : 0;
    if (!PyLong_CheckExact(last)) return 0; /* (no __index__ run on a borrowed value) */
    int64_t lv = PyLong_AsLongLong(last);
    if (lv == -1 && PyErr_Occurred()) return -1;
    if (lv != d->seq - 1) return 0;
    *book = PyDict_GetItemWithError(f->books, ticker);
    if (*book == NULL) return PyErr_Occurred() ? -1 : 0;
    Book *b = (Book *)*book;
    if (!PyObject_TypeCheck(*book, &BookType) || b->state != f->live || b->sid == NULL ||
        !PyLong_CheckExact(b->sid) || b->ticker == NULL ||
        (f->block != NULL && !PyUnicode_CheckExact(b->ticker))) /* a block holds strs only */
        return 0;
    int64_t bs = PyLong_AsLongLong(b->sid);
    if (bs == -1 && PyErr_Occurred()) return -1;
    return bs == d->sid;
}

/* A new top of bk: counted, emitted as a BBO row unless this line's DeltaEvent emit failed
   (*stop: its publisher is marked failed and gets no further event). Returns 0 or -1. */
static int new_top(Feed *f, Line *ln, PyObject *tk, PyObject *top, PyObject *seqv, int *stop) {
    f->nbbo++;
    if (f->block != NULL)
        return builder_bbo(f->block, tk, ln->ts, top, ln->d.seq, ln->has_recv, ln->recv);
    if (f->emit == NULL || *stop) return 0;
    PyObject *vals[9] = {Py_NewRef(tk), PyLong_FromLongLong(ln->ts),
                         Py_NewRef(PyTuple_GET_ITEM(top, 0)), Py_NewRef(PyTuple_GET_ITEM(top, 1)),
                         Py_NewRef(PyTuple_GET_ITEM(top, 2)), Py_NewRef(PyTuple_GET_ITEM(top, 3)),
                         Py_NewRef(seqv), recv_object(ln), Py_NewRef(f->live)};
    return emit_event(f->emit, f->emit_failed, f->btype, vals, 9, stop);
}

/* Take the delta: watermark, DeltaEvent, apply, BBO. Sets *code (F_END, or F_CROSSED /
   F_BOOK_ERROR with *info for the plant) and *stop (an emit failed). Returns 0 or -1.
   The book's ticker is held for the whole step: an emit may rebind the book's slots. */
static int take(Feed *f, Line *ln, PyObject *sid, Book *bk, int *code, PyObject **info,
                int *stop) {
    PyObject *seqv = PyLong_FromLongLong(ln->d.seq), *err = NULL, *top = NULL;
    PyObject *tk = Py_NewRef(bk->ticker); /* fast_book: not NULL */
    if (seqv == NULL || PyDict_SetItem(f->seqs, sid, seqv) < 0) goto error;
    f->n++;
    if (ln->ts > f->clock) f->clock = ln->ts;
    if (f->block != NULL) {
        if (builder_delta(f->block, tk, ln->ts, ln->d.sid, ln->d.seq, ln->is_no, ln->price,
                          ln->delta, ln->has_recv, ln->recv) < 0)
            goto error;
    } else if (f->emit != NULL) {
        PyObject *vals[8] = {Py_NewRef(tk), PyLong_FromLongLong(ln->ts), Py_NewRef(sid),
                             Py_NewRef(seqv), Py_NewRef(ln->is_no ? S_NO : S_YES),
                             PyLong_FromLongLong(ln->price), PyLong_FromLongLong(ln->delta),
                             recv_object(ln)};
        if (emit_event(f->emit, f->emit_failed, f->dtype, vals, 8, stop) < 0) goto error;
    }
    int r = book_apply(bk, ln->is_no, ln->price, ln->delta, &err);
    if (r == 1) {
        r = note_top(bk, f->last_top, &top);
        if (r == 1) {
            r = new_top(f, ln, tk, top, seqv, stop);
            Py_DECREF(top);
        } else if (r == 2) { /* crossed or locked: the plant's rule (stale, resync) */
            *code = F_CROSSED;
            *info = Py_BuildValue("(OLON)", (PyObject *)bk, (long long)ln->ts, seqv,
                                  recv_object(ln));
            r = *info == NULL ? -1 : 0;
        }
    } else if (r == -2) {
        *code = F_BOOK_ERROR;
        *info = Py_BuildValue("(ONOLON)", (PyObject *)bk, err, sid, (long long)ln->ts, seqv,
                              recv_object(ln));
        r = *info == NULL ? -1 : 0;
    }
    Py_DECREF(seqv);
    Py_DECREF(tk);
    return r < 0 ? -1 : 0;
error:
    Py_XDECREF(seqv);
    Py_DECREF(tk);
    return -1;
}

/* What a line the common path does not take goes back as: (start, end, recv_ns, sid, seq,
   ticker, side, price, delta, ts), ticker stolen. */
static PyObject *delta_info(Line *ln, Py_ssize_t start, Py_ssize_t end, PyObject *ticker) {
    Delta *d = &ln->d;
    return Py_BuildValue("(nnNNNNONNN)", start, end, recv_object(ln),
                         long_or_none(d->has_sid, d->sid), long_or_none(d->has_seq, d->seq),
                         ticker, ln->is_no ? S_NO : S_YES, PyLong_FromLongLong(ln->price),
                         PyLong_FromLongLong(ln->delta), ts_object(d));
}

static PyObject *feed_lines(PyObject *mod, PyObject *const *a, Py_ssize_t nargs) {
    Feed f;
    Line ln;
    if (feed_args(&f, a, nargs) < 0) return NULL;
    while (f.pos < f.size) {
        const unsigned char *ls = f.base + f.pos;
        const unsigned char *nl = memchr(ls, '\n', (size_t)(f.size - f.pos));
        const unsigned char *le = nl ? nl : f.base + f.size;
        Py_ssize_t start = f.pos, end = le - f.base;
        f.pos = nl ? end + 1 : f.size;
        Cur c = {ls, le};
        ws(&c);
        if (c.p == le) continue; /* a blank line */
        if (!read_line(&c, f.kind, &ln, f.clock))
            return feed_result(f.pos, f.n, f.nbbo, f.clock, F_OTHER,
                               Py_BuildValue("(nn)", start, end));
        PyObject *ticker = ticker_object(&ln.d), *sid = NULL, *book = NULL, *info = NULL;
        if (ticker == NULL) return NULL;
        int r = fast_book(&f, &ln, ticker, &sid, &book), code = F_END, stop = 0;
        if (r == 0) {
            Py_XDECREF(sid);
            return feed_result(f.pos, f.n, f.nbbo, f.clock, F_DELTA,
                               delta_info(&ln, start, end, ticker));
        }
        if (r == 1) {
            Py_INCREF(book);
            r = take(&f, &ln, sid, (Book *)book, &code, &info, &stop);
            Py_DECREF(book);
        }
        Py_XDECREF(sid);
        Py_DECREF(ticker);
        if (r < 0) return NULL;
        if (code != F_END || stop)
            return feed_result(f.pos, f.n, f.nbbo, f.clock, code, info ? info : Py_NewRef(Py_None));
    }
    return feed_result(f.size, f.n, f.nbbo, f.clock, F_END, Py_NewRef(Py_None));
}

PyDoc_STRVAR(line_doc,
"decode_line(chunk, start, end, kind) -> tuple | None\n\n"
"The delta of one recording line ``chunk[start:end]`` in envelope ``kind`` (as feed_lines):\n"
"``(recv_ns, sid, seq, ticker, side, price, delta, ts)`` when it is a valid delta with a\n"
"numeric time or none (``ts`` ns or None) and a receipt time in 2000..2100 or none, else\n"
"None (the generic path takes the line).");

static PyObject *decode_line(PyObject *mod, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(a[0])) {
        PyErr_SetString(PyExc_TypeError, "decode_line(chunk: bytes, start, end, kind)");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(a[0]);
    Py_ssize_t s = PyLong_AsSsize_t(a[1]), e = PyLong_AsSsize_t(a[2]);
    int kind = (int)PyLong_AsLong(a[3]);
    if (PyErr_Occurred()) return NULL;
    if (s < 0 || e > size || s > e) {
        PyErr_SetString(PyExc_ValueError, "line outside the chunk");
        return NULL;
    }
    const unsigned char *base = (const unsigned char *)PyBytes_AS_STRING(a[0]);
    Cur c = {base + s, base + e};
    Line ln;
    if (!read_line(&c, kind, &ln, 0)) Py_RETURN_NONE;
    Delta *d = &ln.d;
    return Py_BuildValue("(NNNNONNN)", recv_object(&ln), long_or_none(d->has_sid, d->sid),
                         long_or_none(d->has_seq, d->seq), ticker_object(d),
                         ln.is_no ? S_NO : S_YES, PyLong_FromLongLong(ln.price),
                         PyLong_FromLongLong(ln.delta), ts_object(d));
}

PyDoc_STRVAR(states_doc,
"set_stale(state) -> None\n\nThe ``stale`` state object a book takes on a BookError.");

static PyObject *set_stale(PyObject *mod, PyObject *arg) {
    Py_XSETREF(STALE_STATE, Py_NewRef(arg));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_O, decode_doc},
    {"decode_line", (PyCFunction)(void (*)(void))decode_line, METH_FASTCALL, line_doc},
    {"feed_lines", (PyCFunction)(void (*)(void))feed_lines, METH_FASTCALL, feed_doc},
    {"set_stale", set_stale, METH_O, states_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "kalshi_platform.ingestion._delta",
    "The orderbook_delta hot path: decode a frame, apply it to its book (see the C source).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__delta(void) {
    init_plain();
    if (PyType_Ready(&BookType) < 0 || PyType_Ready(&EventBlockType) < 0 ||
        PyType_Ready(&BlockBuilderType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (m == NULL) return NULL;
    S_YES = PyUnicode_InternFromString("yes");
    S_NO = PyUnicode_InternFromString("no");
    BookError = PyErr_NewExceptionWithDoc(
        "kalshi_platform.ticker_plant.order_book.BookError",
        "A delta would drive a level negative (a missed update) or past 10^10 contracts. The\n"
        "book is marked stale.", PyExc_ValueError, NULL);
    if (S_YES == NULL || S_NO == NULL || BookError == NULL ||
        PyModule_AddObjectRef(m, "BookError", BookError) < 0 ||
        PyModule_AddObjectRef(m, "BookCore", (PyObject *)&BookType) < 0 ||
        PyModule_AddObjectRef(m, "EventBlock", (PyObject *)&EventBlockType) < 0 ||
        PyModule_AddObjectRef(m, "BlockBuilder", (PyObject *)&BlockBuilderType) < 0 ||
        PyModule_AddIntConstant(m, "F_END", F_END) < 0 ||
        PyModule_AddIntConstant(m, "F_OTHER", F_OTHER) < 0 ||
        PyModule_AddIntConstant(m, "F_DELTA", F_DELTA) < 0 ||
        PyModule_AddIntConstant(m, "F_CROSSED", F_CROSSED) < 0 ||
        PyModule_AddIntConstant(m, "F_BOOK_ERROR", F_BOOK_ERROR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
