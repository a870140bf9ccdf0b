/* Part of _core.c (included once from there).
 *
 * One market's price-time book on the YES scale (docs/trading-api.md §4.3). Each side is an
 * array of levels sorted by key (bids: price, asks: −price), best level last; a level is a
 * FIFO doubly-linked list of its resting orders with its live total. Adding at an existing
 * level, removing any order and taking the front are O(1) (plus a binary search for a new or
 * emptied level). The book holds a reference to every resting order.
 */

struct Level {
    long long key, price, qty, live;
    OrderObject *head, *tail;
};

typedef struct {
    Level **a;
    Py_ssize_t n, cap;
} Side;

struct BookObject {
    PyObject_HEAD
    Side bids, asks;
};

static PyTypeObject BookType;

/* index of the level with ``key`` or -1; *pos = where it would be inserted */
static Py_ssize_t side_find(Side *s, long long key, Py_ssize_t *pos) {
    Py_ssize_t lo = 0, hi = s->n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (s->a[mid]->key < key) lo = mid + 1;
        else hi = mid;
    }
    *pos = lo;
    return (lo < s->n && s->a[lo]->key == key) ? lo : -1;
}

static Level *side_best(Side *s) { return s->n ? s->a[s->n - 1] : NULL; }

static Level *side_level(Side *s, long long key, int create) {
    Py_ssize_t pos, i = side_find(s, key, &pos);
    if (i >= 0) return s->a[i];
    if (!create) return NULL;
    if (s->n == s->cap) {
        Py_ssize_t cap = s->cap ? s->cap * 2 : 16;
        Level **a = PyMem_Realloc(s->a, cap * sizeof(Level *));
        if (a == NULL) { PyErr_NoMemory(); return NULL; }
        s->a = a;
        s->cap = cap;
    }
    Level *lv = PyMem_Calloc(1, sizeof(Level));
    if (lv == NULL) { PyErr_NoMemory(); return NULL; }
    lv->key = key;
    lv->price = key < 0 ? -key : key;
    memmove(&s->a[pos + 1], &s->a[pos], (s->n - pos) * sizeof(Level *));
    s->a[pos] = lv;
    s->n++;
    return lv;
}

static void side_drop(Side *s, Level *lv) {
    Py_ssize_t pos, i;
    if (s->n && s->a[s->n - 1] == lv) i = s->n - 1;
    else i = side_find(s, lv->key, &pos);
    memmove(&s->a[i], &s->a[i + 1], (s->n - i - 1) * sizeof(Level *));
    s->n--;
    PyMem_Free(lv);
}

static Side *book_side(BookObject *b, int is_bid) { return is_bid ? &b->bids : &b->asks; }

/* append ``o`` at the back of its level */
static int book_add(BookObject *b, OrderObject *o) {
    if (o->lv != NULL) { PyErr_SetString(PyExc_ValueError, "order already rests in a book"); return -1; }
    Level *lv = side_level(book_side(b, o->is_bid), o->is_bid ? o->price : -o->price, 1);
    if (lv == NULL) return -1;
    if (__builtin_add_overflow(lv->qty, o->remaining, &lv->qty)) {
        PyErr_SetString(PyExc_OverflowError, "level total out of int64 range");
        return -1;
    }
    o->prev = lv->tail;
    o->next = NULL;
    if (lv->tail) lv->tail->next = o; else lv->head = o;
    lv->tail = o;
    lv->live++;
    o->lv = lv;
    o->book = b;
    Py_INCREF(o);
    return 0;
}

/* take ``o`` out of its level (its remaining already off the level's total); drops the
   level when empty and the book's reference to ``o`` */
static void book_unlink(OrderObject *o) {
    Level *lv = o->lv;
    BookObject *b = o->book;
    if (o->prev) o->prev->next = o->next; else lv->head = o->next;
    if (o->next) o->next->prev = o->prev; else lv->tail = o->prev;
    o->prev = o->next = NULL;
    o->lv = NULL;
    o->book = NULL;
    if (--lv->live == 0) side_drop(book_side(b, o->is_bid), lv);
    Py_DECREF(o);
}

static int check_in(BookObject *b, OrderObject *o) {
    if (o->book != b) {
        PyErr_Format(PyExc_KeyError, "order %R does not rest in this book", o->order_id);
        return -1;
    }
    return 0;
}

static PyObject *book_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    if (PyTuple_GET_SIZE(args) || (kw && PyDict_GET_SIZE(kw))) {
        PyErr_SetString(PyExc_TypeError, "Book() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

static void side_free(Side *s) {
    for (Py_ssize_t i = 0; i < s->n; i++) {
        OrderObject *o = s->a[i]->head;
        while (o) {
            OrderObject *nx = o->next;
            o->prev = o->next = NULL;
            o->lv = NULL;
            o->book = NULL;
            Py_DECREF(o);
            o = nx;
        }
        PyMem_Free(s->a[i]);
    }
    PyMem_Free(s->a);
    s->a = NULL;
    s->n = s->cap = 0;
}

static void book_dealloc(BookObject *b) {
    side_free(&b->bids);
    side_free(&b->asks);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyObject *price_or_none(Level *lv) {
    if (lv == NULL) Py_RETURN_NONE;
    return PyLong_FromLongLong(lv->price);
}

static PyObject *book_best_bid(BookObject *b, PyObject *u) { return price_or_none(side_best(&b->bids)); }
static PyObject *book_best_ask(BookObject *b, PyObject *u) { return price_or_none(side_best(&b->asks)); }

static OrderObject *as_order(PyObject *o) {
    if (!PyObject_TypeCheck(o, &OrderType)) {
        PyErr_SetString(PyExc_TypeError, "expected an Order");
        return NULL;
    }
    return (OrderObject *)o;
}

static PyObject *book_add_py(BookObject *b, PyObject *arg) {
    OrderObject *o = as_order(arg);
    if (o == NULL || book_add(b, o) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *book_remove_py(BookObject *b, PyObject *arg) {
    OrderObject *o = as_order(arg);
    if (o == NULL || check_in(b, o) < 0) return NULL;
    o->lv->qty -= o->remaining;
    book_unlink(o);
    Py_RETURN_NONE;
}

static PyObject *book_reduce_py(BookObject *b, PyObject *args) {
    PyObject *arg;
    long long rem;
    if (!PyArg_ParseTuple(args, "OL", &arg, &rem)) return NULL;
    OrderObject *o = as_order(arg);
    if (o == NULL || check_in(b, o) < 0) return NULL;
    if (rem <= 0 || rem > o->remaining) {
        PyErr_SetString(PyExc_ValueError, "reduce needs 0 < remaining <= the current one");
        return NULL;
    }
    o->lv->qty -= o->remaining - rem;
    o->remaining = rem;
    Py_RETURN_NONE;
}

static PyObject *book_queue_position(BookObject *b, PyObject *arg) {
    OrderObject *o = as_order(arg);
    if (o == NULL || check_in(b, o) < 0) return NULL;
    long long ahead = 0;
    for (OrderObject *x = o->lv->head; x != o; x = x->next) ahead += x->remaining;
    return PyLong_FromLongLong(ahead);
}

static PyObject *book_levels(BookObject *b, PyObject *arg) {
    int is_bid = PyObject_IsTrue(arg);
    if (is_bid < 0) return NULL;
    Side *s = book_side(b, is_bid);
    PyObject *out = PyList_New(s->n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < s->n; i++) {
        Level *lv = s->a[s->n - 1 - i];
        PyObject *t = Py_BuildValue("LL", lv->price, lv->qty);
        if (t == NULL) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, i, t);
    }
    return out;
}

static PyObject *book_resting(BookObject *b, PyObject *u) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (int side = 1; side >= 0; side--) {
        Side *s = book_side(b, side);
        for (Py_ssize_t i = s->n - 1; i >= 0; i--)
            for (OrderObject *o = s->a[i]->head; o; o = o->next)
                if (PyList_Append(out, (PyObject *)o) < 0) { Py_DECREF(out); return NULL; }
    }
    return out;
}

/* violations of the level invariants (totals, counts, links, key order) as strings */
static PyObject *book_check(BookObject *b, PyObject *u) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (int side = 1; side >= 0; side--) {
        Side *s = book_side(b, side);
        for (Py_ssize_t i = 0; i < s->n; i++) {
            Level *lv = s->a[i];
            long long qty = 0, live = 0;
            int bad = (i > 0 && s->a[i - 1]->key >= lv->key) || lv->live == 0;
            for (OrderObject *o = lv->head; o; o = o->next) {
                qty += o->remaining;
                live++;
                bad |= o->lv != lv || o->book != b || o->is_bid != side || o->price != lv->price
                       || o->remaining <= 0 || (o->next ? o->next->prev != o : lv->tail != o);
            }
            if (bad || qty != lv->qty || live != lv->live) {
                PyObject *m = PyUnicode_FromFormat("%s level %lld: totals or links wrong",
                                                   side ? "bid" : "ask", lv->price);
                if (m == NULL || PyList_Append(out, m) < 0) { Py_XDECREF(m); Py_DECREF(out); return NULL; }
                Py_DECREF(m);
            }
        }
    }
    return out;
}

static PyObject *book_from_func;  /* _core._book_from */

static PyObject *book_reduce(BookObject *b, PyObject *u) {
    PyObject *r = book_resting(b, NULL);
    if (r == NULL) return NULL;
    return Py_BuildValue("O(N)", book_from_func, r);
}

/* a book with ``orders`` (Book.resting() order) re-added in turn */
static PyObject *book_from(PyObject *mod, PyObject *orders) {
    PyObject *seq = PySequence_Fast(orders, "_book_from needs a list of orders");
    if (seq == NULL) return NULL;
    BookObject *b = (BookObject *)BookType.tp_alloc(&BookType, 0);
    if (b == NULL) { Py_DECREF(seq); return NULL; }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        OrderObject *o = as_order(PySequence_Fast_GET_ITEM(seq, i));
        if (o == NULL || book_add(b, o) < 0) { Py_DECREF(seq); Py_DECREF(b); return NULL; }
    }
    Py_DECREF(seq);
    return (PyObject *)b;
}

static PyMethodDef book_methods[] = {
    {"best_bid", (PyCFunction)book_best_bid, METH_NOARGS, "Highest bid price or None."},
    {"best_ask", (PyCFunction)book_best_ask, METH_NOARGS, "Lowest ask price (YES scale) or None."},
    {"add", (PyCFunction)book_add_py, METH_O, "Append an order at the back of its level."},
    {"remove", (PyCFunction)book_remove_py, METH_O, "Take a resting order out of the book."},
    {"reduce", (PyCFunction)book_reduce_py, METH_VARARGS,
     "reduce(order, remaining): shrink a resting order in place (keeps its queue place)."},
    {"queue_position", (PyCFunction)book_queue_position, METH_O,
     "Centi-contracts resting ahead of the order at its price (0 at the front)."},
    {"levels", (PyCFunction)book_levels, METH_O, "levels(is_bid): [(price, qty)] best first."},
    {"resting", (PyCFunction)book_resting, METH_NOARGS,
     "Every resting order: bids then asks, best level first, in queue order."},
    {"check", (PyCFunction)book_check, METH_NOARGS, "Violations of the level invariants."},
    {"__reduce__", (PyCFunction)book_reduce, METH_NOARGS, NULL},
    {NULL}};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.exchange._core.Book",
    .tp_basicsize = sizeof(BookObject),
    .tp_dealloc = (destructor)book_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bids and asks of one market on the YES scale: price levels of FIFO queues.",
    .tp_methods = book_methods,
    .tp_new = book_new,
};
