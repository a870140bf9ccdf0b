/* EventBlock: a run of the plant's DeltaEvent and BBO events in columnar form, and the
   BlockBuilder that feed_lines appends them to (instead of building one tuple an event).
   Part of the _delta extension: _delta.c includes it after delta_book.h.

   Why: a replay into the storage sinks made ~1.14 Python objects of 8-9 fields per frame on
   the plant's thread and freed them on the sink's, which cost the plant more than its own
   work (measured: 0.46 µs a frame, against 0.56 µs for the whole --sink none path). A block
   is one object per recording chunk: per event kind a run of fixed-width int64 records, and
   the block's own string table. The stream counts a block as len(block) events; a consumer
   that wants events gets exactly the tuples feed_lines' emit would have built
   (EventBlock.events), and a storage sink reads the records straight into Arrow columns
   (kalshi_platform/storage/_columns.c, read_records).

   Records (little-endian int64, one per field of the event's NamedTuple, in field order, then
   one null mask: bit f set = field f is None):
     delta (kind 0): ticker, ts_ns, sid, seq, side, price, delta, recv_ns      (9 slots)
     bbo (kind 1):   ticker, ts_ns, yes_bid, yes_bid_size, yes_ask, yes_ask_size, seq,
                     recv_ns, state                                            (10 slots)
   A str field (ticker, side, state) holds an index into the block's string table: 0 "yes",
   1 "no", 2 the live state, then the tickers in first-use order. */
#ifndef KALSHI_DELTA_BLOCK_H
#define KALSHI_DELTA_BLOCK_H
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define K_DELTA 0
#define K_BBO 1
#define DELTA_W 8
#define BBO_W 9
#define STR_YES 0
#define STR_NO 1
#define STR_LIVE 2

/* ---------------------------------------------------------------- EventBlock */

typedef struct {
    PyObject_HEAD
    PyObject *strs;            /* tuple of str: the string table */
    PyObject *kinds;           /* bytes: one kind an event, stream order */
    PyObject *rec[2];          /* bytes: the delta / bbo records */
    PyObject *soff, *sdata;    /* bytes: int32 offsets (len(strs) + 1) and UTF-8 of strs */
    Py_ssize_t n[2];
} EventBlock;

static const int KIND_W[2] = {DELTA_W, BBO_W};
static PyTypeObject EventBlockType; /* defined below */

static void block_dealloc(EventBlock *b) {
    Py_XDECREF(b->strs);
    Py_XDECREF(b->kinds);
    Py_XDECREF(b->rec[0]);
    Py_XDECREF(b->rec[1]);
    Py_XDECREF(b->soff);
    Py_XDECREF(b->sdata);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static Py_ssize_t block_len(EventBlock *b) { return b->n[0] + b->n[1]; }

/* Field f of record r as a new reference: its str, int or None. */
static PyObject *field_object(EventBlock *b, const int64_t *r, int w, int f, int is_str) {
    if ((uint64_t)r[w] & (UINT64_C(1) << f)) Py_RETURN_NONE;
    if (!is_str) return PyLong_FromLongLong(r[f]);
    if (r[f] < 0 || r[f] >= PyTuple_GET_SIZE(b->strs)) {
        PyErr_SetString(PyExc_SystemError, "event block: string index out of range");
        return NULL;
    }
    return Py_NewRef(PyTuple_GET_ITEM(b->strs, r[f]));
}

/* The event of record r of kind k as type(*fields) (a tuple type of the right width). */
static PyObject *record_event(EventBlock *b, int k, const int64_t *r, PyTypeObject *type) {
    static const unsigned STR_FIELDS[2] = {(1u << 0) | (1u << 4), (1u << 0) | (1u << 8)};
    int w = KIND_W[k];
    PyObject *ev = type->tp_alloc(type, w);
    if (ev == NULL) return NULL;
    for (int f = 0; f < w; f++) {
        PyObject *v = field_object(b, r, w, f, (STR_FIELDS[k] >> f) & 1u);
        if (v == NULL) {
            Py_DECREF(ev);
            return NULL;
        }
        PyTuple_SET_ITEM(ev, f, v);
    }
    return ev;
}

static int tuple_type_of_width(PyObject *t, Py_ssize_t w) {
    if (!PyType_Check(t) || !PyType_IsSubtype((PyTypeObject *)t, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "event types must be tuple types");
        return -1;
    }
    PyObject *fields = PyObject_GetAttrString(t, "_fields");
    if (fields == NULL) return -1;
    Py_ssize_t n = PyTuple_Check(fields) ? PyTuple_GET_SIZE(fields) : -1;
    Py_DECREF(fields);
    if (n != w) {
        PyErr_Format(PyExc_TypeError, "%.100s does not have %zd fields", ((PyTypeObject *)t)->tp_name, w);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(block_events_doc,
"events(delta_type, bbo_type, kind=-1) -> list\n\n"
"The block's events in stream order, as ``delta_type(ticker, ts_ns, sid, seq, side, price,\n"
"delta, recv_ns)`` and ``bbo_type(ticker, ts_ns, yes_bid, yes_bid_size, yes_ask, yes_ask_size,\n"
"seq, recv_ns, state)`` (the plant's DeltaEvent and BBO: µ$, c-contracts, ns UTC), the same\n"
"values feed_lines' ``emit`` is given. ``kind`` 0 or 1: only the deltas or the BBO rows.");

static PyObject *block_events(EventBlock *b, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "events(delta_type, bbo_type, kind=-1)");
        return NULL;
    }
    long only = nargs == 3 ? PyLong_AsLong(a[2]) : -1;
    if (only == -1 && PyErr_Occurred()) return NULL;
    if (only != -1 && only != K_DELTA && only != K_BBO) {
        PyErr_SetString(PyExc_ValueError, "kind must be -1 (all), 0 (deltas) or 1 (BBO rows)");
        return NULL;
    }
    if (tuple_type_of_width(a[0], DELTA_W) < 0 || tuple_type_of_width(a[1], BBO_W) < 0)
        return NULL;
    Py_ssize_t total = only == K_DELTA || only == K_BBO ? b->n[only] : block_len(b);
    PyObject *out = PyList_New(total);
    if (out == NULL) return NULL;
    const unsigned char *kinds = (const unsigned char *)PyBytes_AS_STRING(b->kinds);
    const int64_t *rec[2] = {(const int64_t *)PyBytes_AS_STRING(b->rec[0]),
                             (const int64_t *)PyBytes_AS_STRING(b->rec[1])};
    Py_ssize_t at[2] = {0, 0}, j = 0, n = block_len(b);
    for (Py_ssize_t i = 0; i < n; i++) {
        int k = kinds[i];
        const int64_t *r = rec[k] + at[k]++ * (KIND_W[k] + 1);
        if (only != -1 && k != only) continue;
        PyObject *ev = record_event(b, k, r, (PyTypeObject *)a[k]);
        if (ev == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, j++, ev);
    }
    return out;
}

PyDoc_STRVAR(block_part_doc,
"part(kind) -> (n, records, str_offsets, str_data)\n\n"
"The records of one kind (0 deltas, 1 BBO rows) for kalshi_platform.storage._columns\n"
"(read_records): ``n`` rows of width + 1 little-endian int64 (the fields, then the null mask),\n"
"the string table's int32 offsets and UTF-8 bytes (see delta_block.h).");

static PyObject *block_part(EventBlock *b, PyObject *arg) {
    long k = PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (k != K_DELTA && k != K_BBO) {
        PyErr_SetString(PyExc_ValueError, "kind must be 0 (deltas) or 1 (BBO rows)");
        return NULL;
    }
    return Py_BuildValue("(nOOO)", b->n[k], b->rec[k], b->soff, b->sdata);
}

static PyObject *block_count(EventBlock *b, PyObject *arg) {
    long k = PyLong_AsLong(arg);
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (k != K_DELTA && k != K_BBO) {
        PyErr_SetString(PyExc_ValueError, "kind must be 0 (deltas) or 1 (BBO rows)");
        return NULL;
    }
    return PyLong_FromSsize_t(b->n[k]);
}

PyDoc_STRVAR(block_slice_doc,
"slice(lo, hi) -> EventBlock\n\n"
"A block of this block's events lo..hi (stream order; 0 <= lo <= hi <= len), sharing its\n"
"string table: a consumer that must cut a run of events at a row count cuts a block there.");

static PyObject *block_slice(EventBlock *b, PyObject *const *a, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "slice(lo, hi)");
        return NULL;
    }
    Py_ssize_t n = block_len(b), lo = PyLong_AsSsize_t(a[0]);
    if (lo == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t hi = PyLong_AsSsize_t(a[1]);
    if (hi == -1 && PyErr_Occurred()) return NULL;
    if (lo < 0 || hi < lo || hi > n) {
        PyErr_SetString(PyExc_ValueError, "slice bounds outside the block");
        return NULL;
    }
    const unsigned char *kinds = (const unsigned char *)PyBytes_AS_STRING(b->kinds);
    Py_ssize_t first[2] = {0, 0}, cnt[2] = {0, 0};
    for (Py_ssize_t i = 0; i < hi; i++) {
        if (i < lo) first[kinds[i]]++;
        else cnt[kinds[i]]++;
    }
    EventBlock *s = PyObject_New(EventBlock, &EventBlockType);
    if (s == NULL) return NULL;
    s->strs = Py_NewRef(b->strs);
    s->soff = Py_NewRef(b->soff);
    s->sdata = Py_NewRef(b->sdata);
    s->kinds = PyBytes_FromStringAndSize((const char *)kinds + lo, hi - lo);
    s->rec[0] = s->rec[1] = NULL;
    for (int k = 0; k < 2; k++) {
        Py_ssize_t w = (KIND_W[k] + 1) * 8;
        s->n[k] = cnt[k];
        s->rec[k] = PyBytes_FromStringAndSize(PyBytes_AS_STRING(b->rec[k]) + first[k] * w,
                                              cnt[k] * w);
    }
    if (s->kinds == NULL || s->rec[0] == NULL || s->rec[1] == NULL) {
        Py_DECREF(s);
        return NULL;
    }
    return (PyObject *)s;
}

static PyMethodDef block_methods[] = {
    {"slice", (PyCFunction)(void (*)(void))block_slice, METH_FASTCALL, block_slice_doc},
    {"events", (PyCFunction)(void (*)(void))block_events, METH_FASTCALL, block_events_doc},
    {"part", (PyCFunction)block_part, METH_O, block_part_doc},
    {"count", (PyCFunction)block_count, METH_O, "count(kind) -> rows of kind (0 deltas, 1 BBO)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods block_as_seq = {.sq_length = (lenfunc)block_len};

static PyTypeObject EventBlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.ingestion._delta.EventBlock",
    .tp_basicsize = sizeof(EventBlock),
    .tp_dealloc = (destructor)block_dealloc,
    .tp_as_sequence = &block_as_seq,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A run of DeltaEvent and BBO events in columnar form (see delta_block.h);\n"
              "len() is its number of events. Made by BlockBuilder.take, immutable.",
    .tp_methods = block_methods,
};

/* ---------------------------------------------------------------- BlockBuilder */

typedef struct {
    PyObject_HEAD
    PyObject **strs;          /* strong references: the string table */
    Py_ssize_t nstr, cstr;
    PyObject **hkey;          /* ticker object -> string index (open addressing) */
    int32_t *hval;
    Py_ssize_t hcap;
    unsigned char *kinds;
    Py_ssize_t nk, ck;
    int64_t *rec[2];
    Py_ssize_t n[2], c[2];    /* rows, capacity in rows */
} BlockBuilder;

static void builder_clear(BlockBuilder *bb) {
    for (Py_ssize_t i = 3; i < bb->nstr; i++) Py_CLEAR(bb->strs[i]);
    if (bb->nstr > 3) bb->nstr = 3;
    if (bb->hkey != NULL) memset(bb->hkey, 0, (size_t)bb->hcap * sizeof *bb->hkey);
    bb->nk = bb->n[0] = bb->n[1] = 0;
}

static void builder_dealloc(BlockBuilder *bb) {
    builder_clear(bb);
    for (Py_ssize_t i = 0; i < bb->nstr; i++) Py_CLEAR(bb->strs[i]);
    PyMem_Free(bb->strs);
    PyMem_Free(bb->hkey);
    PyMem_Free(bb->hval);
    PyMem_Free(bb->kinds);
    PyMem_Free(bb->rec[0]);
    PyMem_Free(bb->rec[1]);
    Py_TYPE(bb)->tp_free((PyObject *)bb);
}

static int grow(void **p, Py_ssize_t *cap, Py_ssize_t need, size_t item) {
    if (need <= *cap) return 0;
    Py_ssize_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    void *q = PyMem_Realloc(*p, (size_t)c * item);
    if (q == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *p = q;
    *cap = c;
    return 0;
}

static int builder_init(BlockBuilder *bb, PyObject *args, PyObject *kw) {
    PyObject *live;
    static char *names[] = {"live", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "U:BlockBuilder", names, &live)) return -1;
    if (!PyUnicode_CheckExact(live)) { /* neither type is GC-tracked: no object with a __dict__ */
        PyErr_SetString(PyExc_TypeError, "BlockBuilder(live): live must be a str");
        return -1;
    }
    if (bb->strs != NULL) {
        PyErr_SetString(PyExc_TypeError, "BlockBuilder is initialised once");
        return -1;
    }
    if (grow((void **)&bb->strs, &bb->cstr, 128, sizeof *bb->strs) < 0) return -1;
    bb->strs[STR_YES] = Py_NewRef(S_YES);
    bb->strs[STR_NO] = Py_NewRef(S_NO);
    bb->strs[STR_LIVE] = Py_NewRef(live);
    bb->nstr = 3;
    bb->hcap = 256;
    bb->hkey = PyMem_Calloc((size_t)bb->hcap, sizeof *bb->hkey);
    bb->hval = PyMem_Calloc((size_t)bb->hcap, sizeof *bb->hval);
    if (bb->hkey == NULL || bb->hval == NULL) { /* left uninitialised: builder_ready refuses */
        for (Py_ssize_t i = 0; i < bb->nstr; i++) Py_CLEAR(bb->strs[i]);
        PyMem_Free(bb->strs);
        PyMem_Free(bb->hkey);
        PyMem_Free(bb->hval);
        bb->strs = NULL, bb->hkey = NULL, bb->hval = NULL;
        bb->nstr = bb->cstr = bb->hcap = 0;
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static int builder_ready(BlockBuilder *bb) {
    if (bb->strs == NULL) {
        PyErr_SetString(PyExc_TypeError, "BlockBuilder was not initialised");
        return -1;
    }
    return 0;
}

/* The string index of ticker str tk in the block (added on first use). */
static int64_t ticker_index(BlockBuilder *bb, PyObject *tk) {
    if (2 * (bb->nstr + 1) > bb->hcap) { /* keep the table at most half full: rehash */
        Py_ssize_t cap = bb->hcap * 2;
        PyObject **k = PyMem_Calloc((size_t)cap, sizeof *k);
        int32_t *v = PyMem_Calloc((size_t)cap, sizeof *v);
        if (k == NULL || v == NULL) {
            PyMem_Free(k);
            PyMem_Free(v);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 3; i < bb->nstr; i++) {
            size_t h = ((uintptr_t)bb->strs[i] >> 4) & (size_t)(cap - 1);
            while (k[h] != NULL) h = (h + 1) & (size_t)(cap - 1);
            k[h] = bb->strs[i];
            v[h] = (int32_t)i;
        }
        PyMem_Free(bb->hkey);
        PyMem_Free(bb->hval);
        bb->hkey = k, bb->hval = v, bb->hcap = cap;
    }
    size_t mask = (size_t)(bb->hcap - 1), h = ((uintptr_t)tk >> 4) & mask;
    while (bb->hkey[h] != NULL) {
        if (bb->hkey[h] == tk) return bb->hval[h]; /* held by the table: the same object */
        h = (h + 1) & mask;
    }
    if (bb->nstr >= INT32_MAX || grow((void **)&bb->strs, &bb->cstr, bb->nstr + 1,
                                      sizeof *bb->strs) < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_OverflowError, "event block: too many strings");
        return -1;
    }
    bb->strs[bb->nstr] = Py_NewRef(tk);
    bb->hkey[h] = tk;
    bb->hval[h] = (int32_t)bb->nstr;
    return bb->nstr++;
}

/* A new record of kind k (zeroed), its kind appended; NULL on a memory error. */
static int64_t *new_record(BlockBuilder *bb, int k) {
    int w = KIND_W[k] + 1;
    if (grow((void **)&bb->kinds, &bb->ck, bb->nk + 1, 1) < 0 ||
        grow((void **)&bb->rec[k], &bb->c[k], bb->n[k] + 1, sizeof(int64_t) * (size_t)w) < 0)
        return NULL;
    bb->kinds[bb->nk++] = (unsigned char)k;
    int64_t *r = bb->rec[k] + bb->n[k]++ * w;
    memset(r, 0, sizeof(int64_t) * (size_t)w);
    return r;
}

/* Append a DeltaEvent (ticker str tk). Returns 0 or -1. */
static int builder_delta(BlockBuilder *bb, PyObject *tk, int64_t ts, int64_t sid, int64_t seq,
                         int is_no, int64_t price, int64_t delta, int has_recv, int64_t recv) {
    int64_t ti = ticker_index(bb, tk);
    if (ti < 0) return -1;
    int64_t *r = new_record(bb, K_DELTA);
    if (r == NULL) return -1;
    r[0] = ti, r[1] = ts, r[2] = sid, r[3] = seq, r[4] = is_no ? STR_NO : STR_YES;
    r[5] = price, r[6] = delta, r[7] = recv;
    r[DELTA_W] = has_recv ? 0 : (1 << 7);
    return 0;
}

/* Append a BBO row of the live state: top is the book's (yes_bid, yes_bid_size, yes_ask,
   yes_ask_size) tuple of ints or None. Returns 0 or -1 (OverflowError/TypeError for a top
   value that is not an int64: a book never holds one). */
static int builder_bbo(BlockBuilder *bb, PyObject *tk, int64_t ts, PyObject *top, int64_t seq,
                       int has_recv, int64_t recv) {
    int64_t vals[4];
    int64_t mask = has_recv ? 0 : (1 << 7);
    for (int i = 0; i < 4; i++) {
        PyObject *v = PyTuple_GET_ITEM(top, i);
        vals[i] = 0;
        if (v == Py_None) {
            mask |= (int64_t)1 << (2 + i);
            continue;
        }
        if (!PyLong_CheckExact(v)) {
            PyErr_SetString(PyExc_TypeError, "event block: a top value that is not an int");
            return -1;
        }
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) {
            PyErr_SetString(PyExc_OverflowError, "event block: a top value beyond int64");
            return -1;
        }
        if (x == -1 && PyErr_Occurred()) return -1;
        vals[i] = x;
    }
    int64_t ti = ticker_index(bb, tk);
    if (ti < 0) return -1;
    int64_t *r = new_record(bb, K_BBO);
    if (r == NULL) return -1;
    r[0] = ti, r[1] = ts, r[2] = vals[0], r[3] = vals[1], r[4] = vals[2], r[5] = vals[3];
    r[6] = seq, r[7] = recv, r[8] = STR_LIVE;
    r[BBO_W] = mask;
    return 0;
}

/* The string table as (tuple, int32 offsets bytes, UTF-8 bytes). Returns 0 or -1. */
static int string_table(BlockBuilder *bb, PyObject **strs, PyObject **soff, PyObject **sdata) {
    Py_ssize_t total = 0;
    *strs = PyTuple_New(bb->nstr);
    *soff = PyBytes_FromStringAndSize(NULL, (bb->nstr + 1) * 4);
    if (*strs == NULL || *soff == NULL) return -1;
    int32_t *off = (int32_t *)PyBytes_AS_STRING(*soff);
    off[0] = 0;
    for (Py_ssize_t i = 0; i < bb->nstr; i++) {
        Py_ssize_t len;
        if (PyUnicode_AsUTF8AndSize(bb->strs[i], &len) == NULL) return -1;
        if (len > INT32_MAX - total) {
            PyErr_SetString(PyExc_OverflowError, "event block: strings over 2 GiB");
            return -1;
        }
        total += len;
        off[i + 1] = (int32_t)total;
        PyTuple_SET_ITEM(*strs, i, Py_NewRef(bb->strs[i]));
    }
    *sdata = PyBytes_FromStringAndSize(NULL, total);
    if (*sdata == NULL) return -1;
    char *p = PyBytes_AS_STRING(*sdata);
    for (Py_ssize_t i = 0; i < bb->nstr; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(bb->strs[i], &len);
        if (s == NULL) return -1;
        if (len) memcpy(p + off[i], s, (size_t)len);
    }
    return 0;
}

PyDoc_STRVAR(take_doc,
"take() -> EventBlock\n\n"
"The events appended since the last take, as an immutable EventBlock; the builder starts\n"
"empty again.");

static PyObject *builder_take(BlockBuilder *bb, PyObject *unused) {
    if (builder_ready(bb) < 0) return NULL;
    EventBlock *b = PyObject_New(EventBlock, &EventBlockType);
    if (b == NULL) return NULL;
    b->strs = b->kinds = b->rec[0] = b->rec[1] = b->soff = b->sdata = NULL;
    b->n[0] = bb->n[0], b->n[1] = bb->n[1];
    if (string_table(bb, &b->strs, &b->soff, &b->sdata) < 0) goto error;
    b->kinds = PyBytes_FromStringAndSize((const char *)bb->kinds, bb->nk);
    if (b->kinds == NULL) goto error;
    for (int k = 0; k < 2; k++) {
        b->rec[k] = PyBytes_FromStringAndSize((const char *)bb->rec[k],
                                              bb->n[k] * (KIND_W[k] + 1) * 8);
        if (b->rec[k] == NULL) goto error;
    }
    builder_clear(bb);
    return (PyObject *)b;
error:
    Py_DECREF(b);
    return NULL;
}

static Py_ssize_t builder_len(BlockBuilder *bb) { return bb->nk; }

static PyMethodDef builder_methods[] = {
    {"take", (PyCFunction)builder_take, METH_NOARGS, take_doc},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods builder_as_seq = {.sq_length = (lenfunc)builder_len};

static PyTypeObject BlockBuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.ingestion._delta.BlockBuilder",
    .tp_basicsize = sizeof(BlockBuilder),
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_as_sequence = &builder_as_seq,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "BlockBuilder(live: str): where feed_lines appends DeltaEvent and BBO events as\n"
              "records (its ``block`` argument); ``live`` is the state of its BBO rows. len() is\n"
              "the events appended since the last take().",
    .tp_methods = builder_methods,
    .tp_init = (initproc)builder_init,
    .tp_new = PyType_GenericNew,
};

#endif
