/* Plant events (tuples) -> a storage table's Arrow column buffers, unit conversions
 * included, in one C pass (kalshi_platform/storage/schema.py, _Columnar).
 *
 * read(events, width, ops) -> list, one entry per output column.
 *   events: list or tuple of tuples of exactly `width` items.
 *   ops: one (code, a, b, strict, k) per output column, reading tuple item a (and b):
 *     's'  str as UTF-8                 -> (nulls, validity, offsets int32, chars)
 *     'b'  bool                         -> (nulls, validity, bitmap)
 *     'q'  int64                        -> (nulls, validity, int64 data, lo, hi)
 *     'u'  floor(a / k), int64          -> (nulls, validity, int64 data, lo, hi)
 *     'f'  a / k as float64             -> (nulls, validity, float64 data)
 *     'm'  (a + b) / k as float64       -> same; null unless both are present
 *     'd'  (b - a) / k as float64       -> same; null unless both are present
 *   code: a one-character str; a, b: field indices (b used by 'm', 'd' only); k: the
 *   divisor, > 0 for 'u', 'f', 'm', 'd' and <= 2^53 for 'f', 'm', 'd' (ValueError else).
 *   strict: a None in a (or b) is refused. lo/hi: min/max of the values (None if none).
 * validity is an Arrow validity bitmap (bit set = value present) as bytes, or None when
 * the column has no null; buffers are little-endian bytes, for pyarrow.Array.from_buffers.
 *
 * read_records(parts, width, ops) -> list: the same columns from the records of the plant's
 *   event blocks (kalshi_platform/ingestion/delta_block.h) instead of tuples: see
 *   columns_read_records.
 *
 * split(events, types), positions(events, types): see columns_split, columns_positions.
 *
 * Values are those of Python on the same ints: floor division; int / int true division,
 * taken only where both operands are exact doubles (|x| <= 2^53; then the IEEE quotient is
 * Python's correctly rounded one). Taken: None, an exact int within int64, True/False, an
 * exact str encodable as UTF-8. Anything else (another type, a bigger int, a strict None)
 * raises TypeError, OverflowError, ValueError or UnicodeEncodeError: the caller then
 * converts the batch through its row mapping.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define EXACT (INT64_C(1) << 53)

typedef struct {
    char code;
    Py_ssize_t a, b;
    int strict;
    int64_t k;
    Py_ssize_t nulls;
    PyObject *validity; /* bytes, created at the first null */
    PyObject *data;     /* bytes: values / bitmap / int32 offsets */
    char *chars;        /* 's': PyMem UTF-8 data */
    Py_ssize_t len, cap;
    int64_t lo, hi;
    int seen;
} Col;

static PyObject *zeroed_bytes(Py_ssize_t n) {
    PyObject *b = PyBytes_FromStringAndSize(NULL, n);
    if (b != NULL)
        memset(PyBytes_AS_STRING(b), 0, (size_t)n);
    return b;
}

static int col_init(Col *c, PyObject *op, Py_ssize_t width, Py_ssize_t n) {
    int code;
    long long k;
    if (!PyTuple_Check(op)) { /* PyArg_ParseTuple would raise SystemError */
        PyErr_Format(PyExc_TypeError, "op is not a tuple: %.50s", Py_TYPE(op)->tp_name);
        return -1;
    }
    if (!PyArg_ParseTuple(op, "CnnpL:op", &code, &c->a, &c->b, &c->strict, &k))
        return -1;
    c->code = code > 0 && code < 128 ? (char)code : '?';
    c->k = (int64_t)k;
    int two = c->code == 'm' || c->code == 'd';
    if (c->a < 0 || c->a >= width || (two && (c->b < 0 || c->b >= width))) {
        PyErr_SetString(PyExc_ValueError, "op field index out of range");
        return -1;
    }
    if (strchr("ufmd", c->code) != NULL && c->k <= 0) {
        PyErr_SetString(PyExc_ValueError, "op divisor must be > 0");
        return -1;
    }
    if (strchr("fmd", c->code) != NULL && c->k > EXACT) { /* (double)k would round */
        PyErr_SetString(PyExc_ValueError, "op divisor beyond 2^53");
        return -1;
    }
    Py_ssize_t size;
    switch (c->code) {
    case 's': size = (n + 1) * 4; break;
    case 'b': size = (n + 7) / 8; break;
    case 'q': case 'u': case 'f': case 'm': case 'd': size = n * 8; break;
    default:
        PyErr_Format(PyExc_ValueError, "unknown op %c", c->code);
        return -1;
    }
    c->data = zeroed_bytes(size);
    return c->data == NULL ? -1 : 0;
}

static void col_free(Col *c) {
    Py_CLEAR(c->validity);
    Py_CLEAR(c->data);
    PyMem_RawFree(c->chars); /* raw: read_records allocates it without the GIL */
    c->chars = NULL;
}

static int set_null(Col *c, Py_ssize_t i, Py_ssize_t n) {
    if (c->strict) {
        PyErr_SetString(PyExc_ValueError, "null in a non-null field");
        return -1;
    }
    if (c->validity == NULL) { /* every row before i was valid */
        c->validity = zeroed_bytes((n + 7) / 8);
        if (c->validity == NULL)
            return -1;
        unsigned char *v = (unsigned char *)PyBytes_AS_STRING(c->validity);
        for (Py_ssize_t r = 0; r < i; r++)
            v[r >> 3] |= (unsigned char)(1u << (r & 7));
    }
    c->nulls++;
    return 0;
}

static int get_int(PyObject *v, int64_t *out) {
    if (!PyLong_CheckExact(v)) {
        PyErr_Format(PyExc_TypeError, "not an int: %.50s", Py_TYPE(v)->tp_name);
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "int beyond int64");
        return -1;
    }
    if (x == -1 && PyErr_Occurred())
        return -1;
    *out = (int64_t)x;
    return 0;
}

static int put_chars(Col *c, const char *s, Py_ssize_t size) {
    if (size == 0) /* chars may still be NULL: no memcpy to it (undefined even for 0) */
        return 0;
    if (size > INT32_MAX - c->len) {
        PyErr_SetString(PyExc_OverflowError, "string column over 2 GiB");
        return -1;
    }
    if (c->len + size > c->cap) {
        Py_ssize_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + size)
            cap *= 2;
        char *q = PyMem_RawRealloc(c->chars, (size_t)cap);
        if (q == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        c->chars = q;
        c->cap = cap;
    }
    memcpy(c->chars + c->len, s, (size_t)size);
    c->len += size;
    return 0;
}

static int put_str(Col *c, PyObject *v) {
    if (!PyUnicode_CheckExact(v)) {
        PyErr_Format(PyExc_TypeError, "not a str: %.50s", Py_TYPE(v)->tp_name);
        return -1;
    }
    Py_ssize_t size;
    const char *s = PyUnicode_AsUTF8AndSize(v, &size);
    if (s == NULL)
        return -1;
    return put_chars(c, s, size);
}

static int put_double(Col *c, Py_ssize_t i, int64_t num) {
    if (num > EXACT || num < -EXACT) {
        PyErr_SetString(PyExc_ValueError, "value beyond 2^53");
        return -1;
    }
    double y = (double)num / (double)c->k;
    memcpy(PyBytes_AS_STRING(c->data) + 8 * i, &y, 8);
    return 0;
}

static void put_int(Col *c, Py_ssize_t i, int64_t y) {
    memcpy(PyBytes_AS_STRING(c->data) + 8 * i, &y, 8);
    if (!c->seen || y < c->lo)
        c->lo = y;
    if (!c->seen || y > c->hi)
        c->hi = y;
    c->seen = 1;
}

/* Column c's value of row i from tuple ev: 1 null, 0 value, -1 error. */
static int col_put(Col *c, PyObject *ev, Py_ssize_t i) {
    PyObject *v = PyTuple_GET_ITEM(ev, c->a);
    PyObject *w = (c->code == 'm' || c->code == 'd') ? PyTuple_GET_ITEM(ev, c->b) : NULL;
    if (v == Py_None || w == Py_None)
        return 1;
    int64_t x, y;
    switch (c->code) {
    case 's':
        return put_str(c, v);
    case 'b':
        if (v != Py_True && v != Py_False) {
            PyErr_Format(PyExc_TypeError, "not a bool: %.50s", Py_TYPE(v)->tp_name);
            return -1;
        }
        if (v == Py_True)
            PyBytes_AS_STRING(c->data)[i >> 3] |= (char)(1u << (i & 7));
        return 0;
    case 'q':
        if (get_int(v, &x) < 0)
            return -1;
        put_int(c, i, x);
        return 0;
    case 'u':
        if (get_int(v, &x) < 0)
            return -1;
        y = x / c->k;
        if (x % c->k != 0 && x < 0)
            y -= 1; /* C truncates toward zero; Python floors */
        put_int(c, i, y);
        return 0;
    case 'f':
        if (get_int(v, &x) < 0)
            return -1;
        return put_double(c, i, x);
    default: /* 'm', 'd' */
        if (get_int(v, &x) < 0 || get_int(w, &y) < 0)
            return -1;
        if (x > EXACT || x < -EXACT || y > EXACT || y < -EXACT) {
            PyErr_SetString(PyExc_ValueError, "value beyond 2^53");
            return -1;
        }
        return put_double(c, i, c->code == 'm' ? x + y : y - x);
    }
}

static PyObject *col_result(Col *c) {
    PyObject *validity = c->validity ? c->validity : Py_None;
    if (c->code == 's') {
        PyObject *chars = PyBytes_FromStringAndSize(c->chars ? c->chars : "", c->len);
        if (chars == NULL)
            return NULL;
        PyObject *r = Py_BuildValue("(nOOO)", c->nulls, validity, c->data, chars);
        Py_DECREF(chars);
        return r;
    }
    if (c->code == 'q' || c->code == 'u') {
        if (!c->seen)
            return Py_BuildValue("(nOOOO)", c->nulls, validity, c->data, Py_None, Py_None);
        return Py_BuildValue("(nOOLL)", c->nulls, validity, c->data, (long long)c->lo,
                             (long long)c->hi);
    }
    return Py_BuildValue("(nOO)", c->nulls, validity, c->data);
}

/* The output list of read / read_records: one col_result per column. */
static PyObject *col_results(Col *cols, Py_ssize_t ncols) {
    PyObject *out = PyList_New(ncols);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t f = 0; f < ncols; f++) {
        PyObject *r = col_result(&cols[f]);
        if (r == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, f, r);
    }
    return out;
}

static void cols_free(Col *cols, Py_ssize_t ncols) {
    if (cols == NULL)
        return;
    for (Py_ssize_t f = 0; f < ncols; f++)
        col_free(&cols[f]);
    PyMem_Free(cols);
}

static int fill(Col *cols, Py_ssize_t ncols, Py_ssize_t width, PyObject *seq) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ev = items[i];
        if (!PyTuple_Check(ev) || PyTuple_GET_SIZE(ev) != width) {
            PyErr_Format(PyExc_TypeError, "event %zd is not a tuple of %zd fields", i, width);
            return -1;
        }
        for (Py_ssize_t f = 0; f < ncols; f++) {
            Col *c = &cols[f];
            int r = col_put(c, ev, i);
            if (r < 0 || (r == 1 && set_null(c, i, n) < 0))
                return -1;
            if (r == 0 && c->validity != NULL)
                PyBytes_AS_STRING(c->validity)[i >> 3] |= (char)(1u << (i & 7));
            if (c->code == 's') {
                int32_t end = (int32_t)c->len;
                memcpy(PyBytes_AS_STRING(c->data) + 4 * (i + 1), &end, 4);
            }
        }
    }
    return 0;
}

static PyObject *columns_read(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *events, *ops;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "OnO!:read", &events, &width, &PyTuple_Type, &ops))
        return NULL;
    PyObject *seq = PySequence_Fast(events, "events must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t ncols = PyTuple_GET_SIZE(ops);
    Col *cols = PyMem_Calloc(ncols ? (size_t)ncols : 1, sizeof(Col));
    PyObject *out = NULL;
    if (cols == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t f = 0; f < ncols; f++)
        if (col_init(&cols[f], PyTuple_GET_ITEM(ops, f), width, n) < 0)
            goto done;
    if (fill(cols, ncols, width, seq) < 0)
        goto done;
    out = col_results(cols, ncols);
done:
    cols_free(cols, ncols);
    Py_DECREF(seq);
    return out;
}

/* split(events, types) -> (parts, first): parts is a list of len(types) + 1 lists, the
 * events whose type is exactly types[i] in list i, in order, every other event in the last
 * list, in order; first[i] is the index in events of the first event of list i (-1 if
 * empty), so callers can order the parts by first appearance. */
static PyObject *columns_split(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *events, *types;
    if (!PyArg_ParseTuple(args, "OO!:split", &events, &PyTuple_Type, &types))
        return NULL;
    PyObject *seq = PySequence_Fast(events, "events must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t nt = PyTuple_GET_SIZE(types);
    PyObject *out = PyList_New(nt + 1), *first = PyList_New(nt + 1), *res = NULL;
    if (out == NULL || first == NULL)
        goto done;
    for (Py_ssize_t t = 0; t <= nt; t++) {
        PyObject *l = PyList_New(0);
        if (l == NULL)
            goto done;
        PyList_SET_ITEM(out, t, l);
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ty = (PyObject *)Py_TYPE(items[i]);
        Py_ssize_t t = 0;
        while (t < nt && PyTuple_GET_ITEM(types, t) != ty)
            t++;
        PyObject *l = PyList_GET_ITEM(out, t);
        if (PyList_GET_SIZE(l) == 0) {
            PyObject *at = PyLong_FromSsize_t(i);
            if (at == NULL)
                goto done;
            PyList_SET_ITEM(first, t, at);
        }
        if (PyList_Append(l, items[i]) < 0)
            goto done;
    }
    for (Py_ssize_t t = 0; t <= nt; t++) {
        if (PyList_GET_ITEM(first, t) == NULL) {
            PyObject *none = PyLong_FromLong(-1);
            if (none == NULL)
                goto done;
            PyList_SET_ITEM(first, t, none);
        }
    }
    res = PyTuple_Pack(2, out, first);
done:
    Py_XDECREF(out);
    Py_XDECREF(first);
    Py_DECREF(seq);
    return res;
}

/* positions(events, types) -> list of the indices of the events whose type is exactly one
 * of types, ascending. */
static PyObject *columns_positions(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *events, *types;
    if (!PyArg_ParseTuple(args, "OO!:positions", &events, &PyTuple_Type, &types))
        return NULL;
    PyObject *seq = PySequence_Fast(events, "events must be a sequence");
    if (seq == NULL)
        return NULL;
    PyObject *out = PyList_New(0);
    Py_ssize_t nt = PyTuple_GET_SIZE(types), n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PyObject *ty = (PyObject *)Py_TYPE(items[i]);
        for (Py_ssize_t t = 0; t < nt; t++) {
            if (PyTuple_GET_ITEM(types, t) != ty)
                continue;
            PyObject *at = PyLong_FromSsize_t(i);
            if (at == NULL || PyList_Append(out, at) < 0)
                Py_CLEAR(out);
            Py_XDECREF(at);
            break;
        }
    }
    Py_DECREF(seq);
    return out;
}


/* ---------------------------------------------------------------- records */

/* One part of read_records: n records of width + 1 int64 (the fields, then a null mask: bit
 * f set = field f is None) from row lo to hi, and the string table of its 's' fields. */
typedef struct {
    const int64_t *rec;
    Py_ssize_t lo, hi, nstr;
    const int32_t *soff;
    const char *sdata;
    Py_ssize_t sdata_len;
} Part;

static int part_init(Part *p, PyObject *item, Py_ssize_t width) {
    PyObject *rec, *soff, *sdata;
    Py_ssize_t n;
    if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "nO!O!O!nn:part", &n, &PyBytes_Type,
                                                  &rec, &PyBytes_Type, &soff, &PyBytes_Type,
                                                  &sdata, &p->lo, &p->hi)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "a part is (n, records, str_offsets, str_data, "
                            "lo, hi)");
        return -1;
    }
    if (n < 0 || n > PY_SSIZE_T_MAX / ((width + 1) * 8) ||
        PyBytes_GET_SIZE(rec) != n * (width + 1) * 8 || p->lo < 0 || p->hi > n ||
        p->lo > p->hi || PyBytes_GET_SIZE(soff) % 4 != 0 || PyBytes_GET_SIZE(soff) < 4) {
        PyErr_SetString(PyExc_ValueError, "a part's sizes do not match its row count");
        return -1;
    }
    p->rec = (const int64_t *)PyBytes_AS_STRING(rec);
    p->soff = (const int32_t *)PyBytes_AS_STRING(soff);
    p->nstr = PyBytes_GET_SIZE(soff) / 4 - 1;
    p->sdata = PyBytes_AS_STRING(sdata);
    p->sdata_len = PyBytes_GET_SIZE(sdata);
    for (Py_ssize_t i = 0; i <= p->nstr; i++) /* offsets: ascending within the data */
        if (p->soff[i] < 0 || p->soff[i] > p->sdata_len || (i && p->soff[i] < p->soff[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "a part's string offsets are out of range");
            return -1;
        }
    return 0;
}

/* Whether column c's value in record r (a part's row) is None. */
static int rec_null(const Col *c, const int64_t *r, Py_ssize_t width) {
    uint64_t mask = (uint64_t)r[width];
    return (mask >> c->a) & 1u || ((c->code == 'm' || c->code == 'd') && ((mask >> c->b) & 1u));
}

/* The first pass over the records, without the GIL: each column's nulls and (a str column)
 * its UTF-8 length in c->len. Returns NULL, or the message of the error to raise. */
static const char *measure_records(Col *cols, Py_ssize_t ncols, Py_ssize_t width,
                                   const Part *parts, Py_ssize_t nparts) {
    for (Py_ssize_t q = 0; q < nparts; q++) {
        const Part *p = &parts[q];
        for (Py_ssize_t row = p->lo; row < p->hi; row++) {
            const int64_t *r = p->rec + row * (width + 1);
            for (Py_ssize_t f = 0; f < ncols; f++) {
                Col *c = &cols[f];
                if (rec_null(c, r, width)) {
                    c->nulls++;
                    continue;
                }
                if (c->code != 's')
                    continue;
                int64_t x = r[c->a];
                if (x < 0 || x >= p->nstr)
                    return "string index out of range";
                c->len += p->soff[x + 1] - p->soff[x];
                if (c->len > INT32_MAX)
                    return "string column over 2 GiB";
            }
        }
    }
    return NULL;
}

static const char *OUT_OF_MEMORY = "out of memory";

/* Between the passes (no GIL needed): a strict column with a null is an error; the exact
 * chars buffer of every str column. Returns NULL or an error message. */
static const char *alloc_records(Col *cols, Py_ssize_t ncols) {
    for (Py_ssize_t f = 0; f < ncols; f++) {
        Col *c = &cols[f];
        if (c->nulls && c->strict)
            return "null in a non-null field";
        if (c->code == 's' && c->len) {
            c->chars = PyMem_RawMalloc((size_t)c->len);
            if (c->chars == NULL)
                return OUT_OF_MEMORY;
            c->cap = c->len;
        }
        c->len = 0;
    }
    return NULL;
}

static const char *rec_double(Col *c, Py_ssize_t i, int64_t num) {
    if (num > EXACT || num < -EXACT)
        return "value beyond 2^53";
    double y = (double)num / (double)c->k;
    memcpy(PyBytes_AS_STRING(c->data) + 8 * i, &y, 8);
    return NULL;
}

/* Column c's value of row i from record r of part p (not None; measured), without the GIL.
 * Returns NULL or an error message. */
static const char *rec_value(Col *c, const Part *p, const int64_t *r, Py_ssize_t i) {
    int64_t x = r[c->a], y;
    switch (c->code) {
    case 's': {
        int32_t size = p->soff[x + 1] - p->soff[x];
        if (size)
            memcpy(c->chars + c->len, p->sdata + p->soff[x], (size_t)size);
        c->len += size;
        return NULL;
    }
    case 'b':
        if (x != 0 && x != 1)
            return "a bool field that is not 0 or 1";
        if (x)
            PyBytes_AS_STRING(c->data)[i >> 3] |= (char)(1u << (i & 7));
        return NULL;
    case 'q':
        put_int(c, i, x);
        return NULL;
    case 'u':
        y = x / c->k;
        if (x % c->k != 0 && x < 0)
            y -= 1; /* C truncates toward zero; Python floors */
        put_int(c, i, y);
        return NULL;
    case 'f':
        return rec_double(c, i, x);
    default: /* 'm', 'd' */
        y = r[c->b];
        if (x > EXACT || x < -EXACT || y > EXACT || y < -EXACT)
            return "value beyond 2^53";
        return rec_double(c, i, c->code == 'm' ? x + y : y - x);
    }
}

/* The second pass, without the GIL: every value, validity bit and string offset. */
static const char *fill_records(Col *cols, Py_ssize_t ncols, Py_ssize_t width,
                                const Part *parts, Py_ssize_t nparts) {
    Py_ssize_t i = 0;
    for (Py_ssize_t q = 0; q < nparts; q++) {
        const Part *p = &parts[q];
        for (Py_ssize_t row = p->lo; row < p->hi; row++, i++) {
            const int64_t *r = p->rec + row * (width + 1);
            for (Py_ssize_t f = 0; f < ncols; f++) {
                Col *c = &cols[f];
                if (!rec_null(c, r, width)) {
                    const char *err = rec_value(c, p, r, i);
                    if (err != NULL)
                        return err;
                    if (c->validity != NULL)
                        PyBytes_AS_STRING(c->validity)[i >> 3] |= (char)(1u << (i & 7));
                }
                if (c->code == 's') {
                    int32_t end = (int32_t)c->len;
                    memcpy(PyBytes_AS_STRING(c->data) + 4 * (i + 1), &end, 4);
                }
            }
        }
    }
    return NULL;
}

/* read_records(parts, width, ops) -> list: as read(), over the rows lo..hi of each part
 * (n, records, str_offsets, str_data, lo, hi) in order, records as built by the plant's
 * event blocks (kalshi_platform/ingestion/delta_block.h): `width` int64 fields and a null
 * mask; an 's' field is an index into its part's string table. */
static PyObject *columns_read_records(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *plist, *ops, *out = NULL;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "O!nO!:read_records", &PyList_Type, &plist, &width,
                          &PyTuple_Type, &ops))
        return NULL;
    if (width < 1 || width > 63) {
        PyErr_SetString(PyExc_ValueError, "width must be 1..63 (the null mask is 64 bits)");
        return NULL;
    }
    Py_ssize_t nparts = PyList_GET_SIZE(plist), ncols = PyTuple_GET_SIZE(ops), n = 0;
    Part *parts = PyMem_Calloc(nparts ? (size_t)nparts : 1, sizeof(Part));
    Col *cols = PyMem_Calloc(ncols ? (size_t)ncols : 1, sizeof(Col));
    PyObject *hold = PyList_GetSlice(plist, 0, nparts); /* the parts' bytes stay alive */
    if (parts == NULL || cols == NULL || hold == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t q = 0; q < nparts; q++) {
        if (part_init(&parts[q], PyList_GET_ITEM(hold, q), width) < 0)
            goto done;
        n += parts[q].hi - parts[q].lo; /* each at most its bytes / 8: no overflow */
    }
    for (Py_ssize_t f = 0; f < ncols; f++)
        if (col_init(&cols[f], PyTuple_GET_ITEM(ops, f), width, n) < 0)
            goto done;
    /* a validity bitmap for every column that may hold a null, dropped below if none did */
    for (Py_ssize_t f = 0; f < ncols; f++)
        if (!cols[f].strict && (cols[f].validity = zeroed_bytes((n + 7) / 8)) == NULL)
            goto done;
    /* the passes over the records touch no Python object: the plant runs meanwhile (one
     * release of the GIL: getting it back can take a switch interval on a busy process) */
    const char *err;
    Py_BEGIN_ALLOW_THREADS
    err = measure_records(cols, ncols, width, parts, nparts);
    if (err == NULL)
        err = alloc_records(cols, ncols);
    if (err == NULL)
        err = fill_records(cols, ncols, width, parts, nparts);
    Py_END_ALLOW_THREADS
    if (err != NULL) {
        if (err == OUT_OF_MEMORY)
            PyErr_NoMemory();
        else
            PyErr_SetString(PyExc_ValueError, err);
        goto done;
    }
    for (Py_ssize_t f = 0; f < ncols; f++)
        if (cols[f].nulls == 0)
            Py_CLEAR(cols[f].validity);
    out = col_results(cols, ncols);
done:
    cols_free(cols, ncols);
    PyMem_Free(parts);
    Py_XDECREF(hold);
    return out;
}

static PyMethodDef methods[] = {
    {"positions", columns_positions, METH_VARARGS,
     "positions(events, types) -> indices of the events of exactly one of types."},
    {"split", columns_split, METH_VARARGS,
     "split(events, types) -> (parts, first): per type (exactly) the events of that type "
     "in order, then the others; the index of each part's first event (-1: none)."},
    {"read_records", columns_read_records, METH_VARARGS,
     "read_records(parts, width, ops) -> as read(), over event-block records: see the "
     "module source."},
    {"read", columns_read, METH_VARARGS,
     "read(events, width, ops) -> per output column (null_count, validity, buffers...): "
     "see the module source."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_columns",
    "Plant events (tuples) -> a storage table's Arrow column buffers in one C pass.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__columns(void) { return PyModule_Create(&module); }
