/* BookCore: the slots of an OrderBook, its delta apply and its top (the BBO rule).
   Part of the _delta extension: _delta.c includes it after its constants. */
#ifndef KALSHI_DELTA_BOOK_H
#define KALSHI_DELTA_BOOK_H
#include <Python.h>
#include <structmember.h>
#include <stdint.h>

/* ---------------------------------------------------------------- BookCore */

typedef struct {
    PyObject_HEAD
    PyObject *ticker, *sid, *yes, *no, *best_yes, *best_no, *state, *market_id;
} Book;

static int book_traverse(Book *b, visitproc visit, void *arg) {
    Py_VISIT(b->ticker); Py_VISIT(b->sid); Py_VISIT(b->yes); Py_VISIT(b->no);
    Py_VISIT(b->best_yes); Py_VISIT(b->best_no); Py_VISIT(b->state); Py_VISIT(b->market_id);
    return 0;
}

static int book_clear(Book *b) {
    Py_CLEAR(b->ticker); Py_CLEAR(b->sid); Py_CLEAR(b->yes); Py_CLEAR(b->no);
    Py_CLEAR(b->best_yes); Py_CLEAR(b->best_no); Py_CLEAR(b->state); Py_CLEAR(b->market_id);
    return 0;
}

static void book_dealloc(Book *b) {
    PyObject_GC_UnTrack(b);
    book_clear(b);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyObject *BookError;   /* created at module init */

/* TypeError: a ladder price, a level size or a best price that is not an int. Returns -1. */
static int not_int(const char *what, PyObject *v) {
    PyErr_Format(PyExc_TypeError, "order book %s must be an int, not %.100s", what,
                 Py_TYPE(v)->tp_name);
    return -1;
}
static PyObject *STALE_STATE; /* the "stale" state object, from set_stale */

/* Marks the book stale and sets BookError's message in *err (a new str). */
static int book_fail(Book *b, PyObject **err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    PyObject *m = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (m == NULL) return -1;
    if (STALE_STATE != NULL) Py_XSETREF(b->state, Py_NewRef(STALE_STATE));
    *err = m;
    return -2;
}

/* *bestp = the highest price of ladder (None when empty): the best level was removed.
   Returns 0 or -1 (TypeError for a price that is not an int: no Python code runs while the
   borrowed best key is held). */
static int new_best(PyObject *ladder, PyObject **bestp) {
    PyObject *k, *v, *top = NULL;
    Py_ssize_t pos = 0;
    int64_t topv = 0;
    while (PyDict_Next(ladder, &pos, &k, &v)) {
        if (!PyLong_Check(k)) return not_int("price", k);
        int64_t kv = PyLong_AsLongLong(k);
        if (kv == -1 && PyErr_Occurred()) return -1;
        if (top == NULL || kv > topv) {
            top = k;
            topv = kv;
        }
    }
    Py_XSETREF(*bestp, Py_NewRef(top ? top : Py_None));
    return 0;
}

/* An int value of the book as int64 (*out; 0 for NULL, or for None when none_ok, then
   *has = 0): TypeError for anything else, so no __index__ runs while C holds borrowed
   references into the book. Returns 0 or -1. */
static int book_int(PyObject *v, int none_ok, const char *what, int64_t *out, int *has) {
    *out = 0;
    *has = v != NULL && !(none_ok && v == Py_None);
    if (!*has) return 0;
    if (!PyLong_Check(v)) return not_int(what, v);
    *out = PyLong_AsLongLong(v);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Adds delta at price on one ladder. Returns 1 (top of that side may have changed), 0 (it
   cannot have), -1 (a Python error), -2 (a BookError: *err its message, book stale). */
static int book_apply(Book *b, int is_no, int64_t price, int64_t delta, PyObject **err) {
    PyObject *ladder = is_no ? b->no : b->yes;
    PyObject **bestp = is_no ? &b->best_no : &b->best_yes;
    const char *side = is_no ? "no" : "yes";
    if (ladder == NULL || !PyDict_CheckExact(ladder) || b->ticker == NULL) {
        PyErr_SetString(PyExc_TypeError, "order book not initialised (ladders, ticker)");
        return -1;
    }
    PyObject *key = PyLong_FromLongLong(price);
    if (key == NULL) return -1;
    Py_INCREF(ladder);
    int64_t old, best, nv;
    int has_old, has_best, r = -1;
    PyObject *cur = PyDict_GetItemWithError(ladder, key);
    if ((cur == NULL && PyErr_Occurred()) || book_int(cur, 0, "level size", &old, &has_old) ||
        book_int(*bestp, 1, "best price", &best, &has_best))
        goto done;
    if (__builtin_add_overflow(old, delta, &nv)) nv = delta > 0 ? INT64_MAX : INT64_MIN;
    if (nv > MAX_SIZE) {
        r = book_fail(b, err, "%S: %s level %lld would exceed 10^10 contracts", b->ticker, side,
                      (long long)price);
    } else if (nv > 0) {
        PyObject *size = PyLong_FromLongLong(nv);
        if (size == NULL) goto done;
        r = PyDict_SetItem(ladder, key, size);
        Py_DECREF(size);
        if (r < 0) goto done;
        if (!has_best || price > best) {
            Py_XSETREF(*bestp, Py_NewRef(key));
            r = 1;
        } else {
            r = price == best;
        }
    } else if (nv == 0) {
        r = 0; /* a zero delta on an absent level: nothing changed */
        if (has_old) {
            if (PyDict_DelItem(ladder, key) < 0) { r = -1; goto done; }
            r = has_best && price == best;
            if (r && new_best(ladder, bestp) < 0) r = -1; /* the best level went */
        }
    } else {
        r = book_fail(b, err, "%S: %s level %lld would go negative (%lld + %lld)", b->ticker,
                      side, (long long)price, (long long)old, (long long)delta);
    }
done:
    Py_DECREF(key);
    Py_DECREF(ladder);
    return r;
}

PyDoc_STRVAR(apply_doc,
"apply_delta(side, price, delta) -> bool\n\n"
"Add ``delta`` (signed c-contracts) at ``price`` (µ$) on ``side`` (``'yes'``, else the NO\n"
"ladder). A level reaching 0 is removed. Returns True when the top of that side may have\n"
"changed (price at or above the previous best), False when it cannot have. Raises\n"
"BookError and marks the book ``stale`` (the ladder unchanged) if the level would go\n"
"negative or past 10^10 contracts.");

static PyObject *book_apply_delta(Book *b, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "apply_delta(side, price, delta)");
        return NULL;
    }
    int is_yes = PyUnicode_Check(args[0]) && PyUnicode_CompareWithASCIIString(args[0], "yes") == 0;
    int64_t price = PyLong_AsLongLong(args[1]);
    if (price == -1 && PyErr_Occurred()) return NULL;
    int64_t delta = PyLong_AsLongLong(args[2]);
    if (delta == -1 && PyErr_Occurred()) return NULL;
    PyObject *err = NULL;
    int r = book_apply(b, !is_yes, price, delta, &err);
    if (r == -1) return NULL;
    if (r == -2) {
        PyErr_SetObject(BookError, err);
        Py_DECREF(err);
        return NULL;
    }
    return PyBool_FromLong(r);
}

/* The book's top (yes_bid, yes_bid_size, yes_ask, yes_ask_size) as a new tuple, None for an
   empty side; YES ask = 1 - best NO bid. *crossed: both sides present and yes_bid >= yes_ask. */
static PyObject *book_top(Book *b, int *crossed) {
    PyObject *t = PyTuple_New(4), *item[4] = {NULL, NULL, NULL, NULL};
    int64_t yb = 0, ya = 0;
    int both = 1;
    if (t == NULL) return NULL;
    for (int side = 0; side < 2; side++) {
        PyObject *best = side ? b->best_no : b->best_yes, *ladder = side ? b->no : b->yes;
        if (best == NULL || best == Py_None) {
            item[2 * side] = Py_NewRef(Py_None);
            item[2 * side + 1] = Py_NewRef(Py_None);
            both = 0;
            continue;
        }
        if (!PyLong_Check(best)) {
            not_int("best price", best);
            goto error;
        }
        int64_t v = PyLong_AsLongLong(best);
        if (v == -1 && PyErr_Occurred()) goto error;
        PyObject *size = ladder != NULL && PyDict_Check(ladder)
                         ? PyDict_GetItemWithError(ladder, best) : NULL;
        if (size == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, best);
            goto error;
        }
        if (side) {
            if (__builtin_sub_overflow(ONE_DOLLAR, v, &ya)) {
                PyErr_SetString(PyExc_OverflowError, "best NO bid out of range");
                goto error;
            }
            item[2] = PyLong_FromLongLong(ya);
            if (item[2] == NULL) goto error;
        } else {
            yb = v;
            item[0] = Py_NewRef(best);
        }
        item[2 * side + 1] = Py_NewRef(size);
    }
    for (int i = 0; i < 4; i++) PyTuple_SET_ITEM(t, i, item[i]);
    *crossed = both && yb >= ya;
    return t;
error:
    for (int i = 0; i < 4; i++) Py_XDECREF(item[i]);
    Py_DECREF(t);
    return NULL;
}

/* The top rule: 2 crossed or locked (nothing recorded), 0 the same top as last_top[ticker],
   1 a new top (recorded in last_top; *top a new reference), -1 a Python error. */
static int note_top(Book *b, PyObject *last_top, PyObject **top) {
    int crossed = 0;
    PyObject *t = book_top(b, &crossed);
    if (t == NULL) return -1;
    if (crossed) {
        Py_DECREF(t);
        return 2;
    }
    PyObject *tk = b->ticker;
    if (tk == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the book has no ticker");
        goto error;
    }
    Py_INCREF(tk); /* held: comparing with last_top's value may run Python code */
    PyObject *old = PyDict_GetItemWithError(last_top, tk);
    if (old == NULL && PyErr_Occurred()) goto error_tk;
    if (old != NULL) {
        Py_INCREF(old);
        int eq = PyObject_RichCompareBool(old, t, Py_EQ);
        Py_DECREF(old);
        if (eq < 0) goto error_tk;
        if (eq) {
            Py_DECREF(tk);
            Py_DECREF(t);
            return 0;
        }
    }
    if (PyDict_SetItem(last_top, tk, t) < 0) goto error_tk;
    Py_DECREF(tk);
    *top = t;
    return 1;
error_tk:
    Py_DECREF(tk);
error:
    Py_DECREF(t);
    return -1;
}

static PyObject *book_top_method(Book *b, PyObject *unused) {
    int crossed;
    return book_top(b, &crossed);
}

static PyObject *book_note_top(Book *b, PyObject *last_top) {
    if (!PyDict_Check(last_top)) {
        PyErr_SetString(PyExc_TypeError, "note_top(last_top: dict)");
        return NULL;
    }
    if (b->ticker == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the book has no ticker");
        return NULL;
    }
    PyObject *top = NULL;
    int r = note_top(b, last_top, &top);
    if (r < 0) return NULL;
    if (r == 2) Py_RETURN_FALSE;
    if (r == 0) Py_RETURN_NONE;
    return top;
}

PyDoc_STRVAR(top_doc,
"top() -> (yes_bid, yes_bid_size, yes_ask, yes_ask_size)\n\n"
"µ$ / c-contracts, None for an empty side; YES ask = 1 − best NO bid.");

PyDoc_STRVAR(note_top_doc,
"note_top(last_top: dict) -> tuple | None | False\n\n"
"The BBO rule on this book's top: False when it is crossed or locked (YES bid >= YES ask;\n"
"nothing recorded), None when it equals ``last_top[ticker]``, else the new top, recorded\n"
"as ``last_top[ticker]``.");

static PyMethodDef book_methods[] = {
    {"apply_delta", (PyCFunction)(void (*)(void))book_apply_delta, METH_FASTCALL, apply_doc},
    {"top", (PyCFunction)book_top_method, METH_NOARGS, top_doc},
    {"note_top", (PyCFunction)book_note_top, METH_O, note_top_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef book_members[] = {
    {"ticker", T_OBJECT, offsetof(Book, ticker), 0, "market ticker"},
    {"sid", T_OBJECT, offsetof(Book, sid), 0, "subscription id feeding this book, or None"},
    {"yes", T_OBJECT, offsetof(Book, yes), 0, "YES bids: dict price µ$ → size c-contracts"},
    {"no", T_OBJECT, offsetof(Book, no), 0, "NO bids: dict price µ$ → size c-contracts"},
    {"best_yes", T_OBJECT, offsetof(Book, best_yes), 0, "best YES bid µ$ or None"},
    {"best_no", T_OBJECT, offsetof(Book, best_no), 0, "best NO bid µ$ or None"},
    {"state", T_OBJECT, offsetof(Book, state), 0, "live / stale / syncing"},
    {"market_id", T_OBJECT, offsetof(Book, market_id), 0, "Kalshi market id or None"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.ingestion._delta.BookCore",
    .tp_basicsize = sizeof(Book),
    .tp_dealloc = (destructor)book_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The slots of an OrderBook and its delta apply (the two ladders are dicts).",
    .tp_traverse = (traverseproc)book_traverse,
    .tp_clear = (inquiry)book_clear,
    .tp_methods = book_methods,
    .tp_members = book_members,
    .tp_new = PyType_GenericNew,
};


#endif /* KALSHI_DELTA_BOOK_H */
