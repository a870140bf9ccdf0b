/* Part of _core.c (included once from there).
 *
 * MarketBase (the C part of market.Market: ticker, status, book, positions, seq, escrow, tick
 * grid and fee parameters) and the money of orders and fills (docs/exchange.md "Accounts"):
 * the fee formula, the open-order collateral sums, the reserve and a fill's cash, position
 * cost and realized PnL. Arithmetic is int64, with products that can exceed it in i128;
 * an overflow raises OverflowError (inputs are bounded far below it: counts <= 1e12
 * centi-contracts, prices <= 1e6, money bounded by the deposits).
 */

typedef struct {
    int kind;            /* 0 none, 1 quadratic, 2 flat, 3 the Python function */
    long long num, den, unit;
} Fee;

typedef struct {
    PyObject_HEAD
    PyObject *ticker, *status, *positions, *taker_fee, *maker_fee;
    BookObject *book;
    long long seq, escrow;
    Fee tf, mf;
    long long (*ranges)[3];
    Py_ssize_t nranges;
} MarketObject;

static PyTypeObject MarketType;

static int overflow(void) {
    PyErr_SetString(PyExc_OverflowError, "exchange arithmetic out of int64 range");
    return -1;
}

static int fee_py(PyObject *fn, long long count, long long price, long long *out) {
    PyObject *r = PyObject_CallFunction(fn, "LL", count, price);
    if (r == NULL) return -1;
    *out = PyLong_AsLongLong(r);
    Py_DECREF(r);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* the fee of ``count`` at ``price`` in money units (fees.py: rounded up to ``unit``) */
static int fee_of(Fee *f, PyObject *fn, long long count, long long price, long long *out) {
    i128 x = 0;
    if (f->kind == 0) { *out = 0; return 0; }
    if (f->kind == 3) return fee_py(fn, count, price, out);
    if (f->kind == 1) {
        if (__builtin_mul_overflow((i128)f->num, (i128)count, &x)
            || __builtin_mul_overflow(x, (i128)(price * (P1 - price)), &x))
            return fee_py(fn, count, price, out);
    } else {
        x = (i128)f->num * count;
    }
    i128 q = x / f->den + (x > 0 && x % f->den != 0);  /* ceil (x >= 0: count > 0) */
    i128 r = q * f->unit;
    if (r > INT64_MAX || r < INT64_MIN) return fee_py(fn, count, price, out);
    *out = (long long)r;
    return 0;
}

static int taker_fee(MarketObject *m, long long c, long long p, long long *out) {
    return fee_of(&m->tf, m->taker_fee, c, p, out);
}

/* collateral weight of ``rem`` of ``o``: cost at its limit plus one taker fee */
static int weight(MarketObject *m, OrderObject *o, long long rem, long long *w) {
    if (rem <= 0) { *w = 0; return 0; }
    long long fee, cost;
    if (taker_fee(m, rem, o->price, &fee) < 0) return -1;
    if (__builtin_mul_overflow(rem, o->is_bid ? o->price : P1 - o->price, &cost)
        || __builtin_add_overflow(cost, fee, w))
        return overflow();
    return 0;
}

static int add_order(PositionObject *p, OrderObject *o, MarketObject *m) {
    long long w;
    if (weight(m, o, o->remaining, &w) < 0) return -1;
    long long *pw = o->is_bid ? &p->bid_w : &p->ask_w, *pq = o->is_bid ? &p->bid_q : &p->ask_q;
    long long nw, nq;
    if (__builtin_add_overflow(*pw, w, &nw) || __builtin_add_overflow(*pq, o->remaining, &nq))
        return overflow();  /* nothing changed */
    o->w = w;
    *pw = nw;
    *pq = nq;
    return 0;
}

static void drop_order(PositionObject *p, OrderObject *o) {
    if (o->is_bid) { p->bid_w -= o->w; p->bid_q -= o->remaining; }
    else { p->ask_w -= o->w; p->ask_q -= o->remaining; }
    o->w = 0;
}

/* the collateral formula (ledger.py); saturates at INT64_MAX, which no account covers */
static long long reserve_of(PositionObject *p) {
    i128 pos = p->pos, rb = p->bid_w, ra = p->ask_w;
    if (pos < 0) rb -= (p->bid_q < -pos ? p->bid_q : -pos) * (i128)P1;
    if (pos > 0) ra -= (p->ask_q < pos ? p->ask_q : pos) * (i128)P1;
    i128 r = (rb > 0 ? rb : 0) + (ra > 0 ? ra : 0);
    return r > INT64_MAX ? INT64_MAX : (long long)r;
}

/* bring acct.reserved up to date with the position's collateral */
static void refresh(PositionObject *p, AccountObject *a) {
    long long r = reserve_of(p);
    a->reserved += (i128)r - p->reserve;
    p->reserve = r;
}

/* ``o`` just lost ``qty`` of its remaining (already subtracted): new weight in the sums */
static int reweigh(PositionObject *p, OrderObject *o, long long qty, MarketObject *m) {
    long long w;
    if (weight(m, o, o->remaining, &w) < 0) return -1;
    if (o->is_bid) { p->bid_w += w - o->w; p->bid_q -= qty; }
    else { p->ask_w += w - o->w; p->ask_q -= qty; }
    o->w = w;
    return 0;
}

static long long floordiv128(i128 a, long long b) {
    i128 q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return (long long)q;
}

static long long pymod(long long a, long long b) {
    long long r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

/* one fill of ``qty`` at YES price ``price`` for ``o``'s owner: position (netting YES
   against NO), cost, realized PnL, cash through the order's rounding accumulator.
   *cash = exact contract cash flow (+ received), *rounding = the rounding fee kept. */
static int fill_money(PositionObject *p, AccountObject *a, OrderObject *o, long long price,
                      long long qty, long long fee, long long precision, long long *cash,
                      long long *rounding) {
    long long pos = p->pos, held, close, proceeds, open_cost;
    if (o->is_bid) {
        held = pos < 0 ? -pos : 0;
        close = qty < held ? qty : held;
        proceeds = close * (P1 - price);
        open_cost = (qty - close) * price;
        p->pos = pos + qty;
    } else {
        held = pos > 0 ? pos : 0;
        close = qty < held ? qty : held;
        proceeds = close * price;
        open_cost = (qty - close) * (P1 - price);
        p->pos = pos - qty;
    }
    int bad = 0;
    if (close) {
        long long removed = floordiv128((i128)p->cost * close, held);
        p->cost -= removed;
        bad |= __builtin_add_overflow(p->realized, proceeds - removed, &p->realized);
    }
    bad |= __builtin_add_overflow(p->cost, open_cost, &p->cost);
    *cash = proceeds - open_cost;
    long long exact = *cash - fee, cum;
    bad |= __builtin_add_overflow(o->cum, exact, &cum);
    o->cum = cum;
    long long applied = cum - pymod(cum, precision), delta = applied - o->applied;
    o->applied = applied;
    a->cash += delta;
    bad |= __builtin_add_overflow(p->fees, fee, &p->fees);
    *rounding = exact - delta;
    bad |= __builtin_add_overflow(p->rounding, *rounding, &p->rounding);
    bad |= __builtin_add_overflow(p->volume, qty, &p->volume);
    bad |= __builtin_add_overflow(p->traded, qty * (o->is_bid ? price : P1 - price), &p->traded);
    return bad ? overflow() : 0;
}

/* -- Python wrappers (edits.py, admin.py) ---------------------------------------------- */

static int parse_pom(PyObject *args, PositionObject **p, OrderObject **o, MarketObject **m) {
    return PyArg_ParseTuple(args, "O!O!O!", &PositionType, p, &OrderType, o, &MarketType, m);
}

static PyObject *py_add_order(PyObject *mod, PyObject *args) {
    PositionObject *p; OrderObject *o; MarketObject *m;
    if (!parse_pom(args, &p, &o, &m) || add_order(p, o, m) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_drop_order(PyObject *mod, PyObject *args) {
    PositionObject *p; OrderObject *o;
    if (!PyArg_ParseTuple(args, "O!O!", &PositionType, &p, &OrderType, &o)) return NULL;
    drop_order(p, o);
    Py_RETURN_NONE;
}

static PyObject *py_refresh(PyObject *mod, PyObject *args) {
    PositionObject *p; AccountObject *a;
    if (!PyArg_ParseTuple(args, "O!O!", &PositionType, &p, &AccountType, &a)) return NULL;
    refresh(p, a);
    Py_RETURN_NONE;
}

/* -- MarketBase ------------------------------------------------------------------------ */

static PyObject *market_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    MarketObject *m = (MarketObject *)type->tp_alloc(type, 0);
    if (m == NULL) return NULL;
    m->book = (BookObject *)BookType.tp_alloc(&BookType, 0);
    m->positions = PyDict_New();
    if (m->book == NULL || m->positions == NULL) { Py_DECREF(m); return NULL; }
    set_obj(&m->ticker, S_empty);
    set_obj(&m->status, S_open);
    set_obj(&m->taker_fee, Py_None);
    set_obj(&m->maker_fee, Py_None);
    return (PyObject *)m;
}

static int market_traverse(MarketObject *m, visitproc visit, void *arg) {
    Py_VISIT(m->positions);
    Py_VISIT(m->taker_fee);
    Py_VISIT(m->maker_fee);
    return 0;
}

static int market_clear(MarketObject *m) {
    Py_CLEAR(m->positions);
    Py_CLEAR(m->taker_fee);
    Py_CLEAR(m->maker_fee);
    return 0;
}

static void market_dealloc(MarketObject *m) {
    PyObject_GC_UnTrack(m);
    market_clear(m);
    Py_CLEAR(m->ticker);
    Py_CLEAR(m->status);
    Py_CLEAR(m->book);
    PyMem_Free(m->ranges);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static int parse_fee(PyObject *t, Fee *f) {
    if (!PyArg_ParseTuple(t, "iLLL", &f->kind, &f->num, &f->den, &f->unit)) return -1;
    if (f->kind < 0 || f->kind > 3 || (f->kind != 0 && f->kind != 3 && f->den <= 0)) {
        PyErr_SetString(PyExc_ValueError, "bad fee parameters");
        return -1;
    }
    return 0;
}

/* _set_fees(taker_fn, maker_fn, taker_params, maker_params): params (kind, num, den, unit) */
static PyObject *market_set_fees(MarketObject *m, PyObject *args) {
    PyObject *tfn, *mfn, *tp, *mp;
    Fee tf, mf;
    if (!PyArg_ParseTuple(args, "OOO!O!", &tfn, &mfn, &PyTuple_Type, &tp, &PyTuple_Type, &mp)
        || parse_fee(tp, &tf) < 0 || parse_fee(mp, &mf) < 0)
        return NULL;
    m->tf = tf;
    m->mf = mf;
    set_obj(&m->taker_fee, tfn);
    set_obj(&m->maker_fee, mfn);
    Py_RETURN_NONE;
}

/* _set_ranges([(start, end, step)]) (market.check_price_ranges checked them) */
static PyObject *market_set_ranges(MarketObject *m, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "price ranges must be a list");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    long long (*r)[3] = PyMem_Malloc((n ? n : 1) * sizeof(*r));
    if (r == NULL) { Py_DECREF(seq); return PyErr_NoMemory(); }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "LLL", &r[i][0], &r[i][1], &r[i][2])
            || r[i][2] <= 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "step must be > 0");
            PyMem_Free(r);
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    PyMem_Free(m->ranges);
    m->ranges = r;
    m->nranges = n;
    Py_RETURN_NONE;
}

static int valid_price(MarketObject *m, long long price) {
    if (price <= 0 || price >= P1) return 0;
    for (Py_ssize_t i = 0; i < m->nranges; i++)
        if (m->ranges[i][0] <= price && price <= m->ranges[i][1]
            && (price - m->ranges[i][0]) % m->ranges[i][2] == 0)
            return 1;
    return 0;
}

static PyObject *market_valid_price(MarketObject *m, PyObject *arg) {
    int over;
    if (!PyLong_Check(arg)) Py_RETURN_FALSE;
    long long p = PyLong_AsLongLongAndOverflow(arg, &over);
    if (p == -1 && PyErr_Occurred()) return NULL;
    return PyBool_FromLong(!over && valid_price(m, p));
}

static PyObject *market_get_book(MarketObject *m, void *c) {
    Py_INCREF(m->book);
    return (PyObject *)m->book;
}

static int market_set_book(MarketObject *m, PyObject *v, void *c) {
    if (v == NULL || !PyObject_TypeCheck(v, &BookType)) {
        PyErr_SetString(PyExc_TypeError, "book must be a Book");
        return -1;
    }
    set_obj((PyObject **)&m->book, v);
    return 0;
}

static PyMemberDef market_members[] = {
    OBJ(MarketObject, ticker), OBJ(MarketObject, status), OBJ(MarketObject, positions),
    OBJ_RO(MarketObject, taker_fee), OBJ_RO(MarketObject, maker_fee),
    LL(MarketObject, seq), LL(MarketObject, escrow), {NULL}};

static PyGetSetDef market_getset[] = {
    {"book", (getter)market_get_book, (setter)market_set_book, "The market's Book.", NULL},
    {NULL}};

static PyMethodDef market_methods[] = {
    {"_set_fees", (PyCFunction)market_set_fees, METH_VARARGS, NULL},
    {"_set_ranges", (PyCFunction)market_set_ranges, METH_O, NULL},
    {"valid_price", (PyCFunction)market_valid_price, METH_O,
     "True when a YES price (micro-dollars) is inside (0, $1) and on a tick of price_ranges."},
    {NULL}};

static PyTypeObject MarketType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.exchange._core.MarketBase",
    .tp_basicsize = sizeof(MarketObject),
    .tp_dealloc = (destructor)market_dealloc,
    .tp_traverse = (traverseproc)market_traverse,
    .tp_clear = (inquiry)market_clear,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The state of one market that matching touches (base of market.Market).",
    .tp_members = market_members,
    .tp_getset = market_getset,
    .tp_methods = market_methods,
    .tp_new = market_new,
};
