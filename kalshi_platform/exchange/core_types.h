/* Part of _core.c (included once from there; not a separate module).
 *
 * The engine's record types as C structs with Python attributes: Order (a live or finished
 * order, linked into its book level while it rests), Account (one user's cash) and Position
 * (one user's position in one market). Integers are int64: prices micro-dollars, counts
 * centi-contracts, money 1e-8 dollars; setting an attribute out of int64 range raises
 * OverflowError. Each type pickles through __reduce__ (the WAL snapshot).
 */

#define P1 1000000LL

__extension__ typedef __int128 i128;  /* gcc/clang: products and 128-bit money */

typedef struct Level Level;
typedef struct BookObject BookObject;

typedef struct OrderObject {
    PyObject_HEAD
    PyObject *order_id, *user_id, *client_order_id, *ticker, *side, *action, *tif;
    PyObject *expiration_ts, *stp, *group_id, *status;
    long long price, initial, remaining, filled, created_ts, updated_ts;
    long long taker_fill_cost, maker_fill_cost, taker_fees, maker_fees, w, cum, applied;
    char is_bid, is_yes, post_only, reduce_only, cancel_on_pause;
    struct OrderObject *prev, *next; /* FIFO links inside the level (borrowed) */
    Level *lv;                       /* the level it rests in, NULL when not resting */
    BookObject *book;                /* the book holding it (borrowed), NULL when not resting */
} OrderObject;

static PyTypeObject OrderType, AccountType, PositionType;

/* interned strings */
static PyObject *S_yes, *S_no, *S_buy, *S_sell, *S_resting, *S_canceled, *S_executed;
static PyObject *S_limit, *S_open, *S_gtc, *S_ioc, *S_fok, *S_taker, *S_maker, *S_bid;
static PyObject *S_ask, *S_empty, *S_orders, *S_pop, *S_record, *S_user_id, *S_triggered;
static PyObject *S_events, *S_expire, *S_check_groups, *S_order, *S_error, *S_zero;

/* a == b for str objects (identity first); False for non-str */
static int streq(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (!PyUnicode_Check(a) || !PyUnicode_Check(b)) return 0;
    return PyUnicode_Compare(a, b) == 0;
}

#define OBJ(T, f) {#f, T_OBJECT, offsetof(T, f), 0, NULL}
#define OBJ_RO(T, f) {#f, T_OBJECT, offsetof(T, f), READONLY, NULL}
#define LL(T, f) {#f, T_LONGLONG, offsetof(T, f), 0, NULL}
#define BOOL(T, f) {#f, T_BOOL, offsetof(T, f), 0, NULL}

/* -- Order ------------------------------------------------------------------------------ */

#define N_ORDER_OBJS 11
#define N_ORDER_LLS 13
#define N_ORDER_BOOLS 5

static PyObject **order_objs(OrderObject *o) { return &o->order_id; }
static long long *order_lls(OrderObject *o) { return &o->price; }
static char *order_bools(OrderObject *o) { return &o->is_bid; }

static OrderObject *order_alloc(void) {
    OrderObject *o = PyObject_New(OrderObject, &OrderType);
    if (o == NULL) return NULL;
    PyObject **objs = order_objs(o);
    for (int i = 0; i < N_ORDER_OBJS; i++) { objs[i] = Py_None; Py_INCREF(Py_None); }
    memset(order_lls(o), 0, N_ORDER_LLS * sizeof(long long));
    memset(order_bools(o), 0, N_ORDER_BOOLS);
    o->prev = o->next = NULL;
    o->lv = NULL;
    o->book = NULL;
    return o;
}

static PyObject *ref_(PyObject *o) { Py_INCREF(o); return o; }

static void set_obj(PyObject **slot, PyObject *v) {
    Py_INCREF(v);
    Py_XSETREF(*slot, v);
}

/* a new resting-status order (GTC, taker_at_cross) that is not in any book yet */
static OrderObject *order_make(PyObject *oid, PyObject *uid, PyObject *ticker, PyObject *side,
                               PyObject *action, long long price, long long count, long long ts) {
    OrderObject *o = order_alloc();
    if (o == NULL) return NULL;
    set_obj(&o->order_id, oid); set_obj(&o->user_id, uid); set_obj(&o->ticker, ticker);
    set_obj(&o->side, side); set_obj(&o->action, action);
    set_obj(&o->tif, S_gtc); set_obj(&o->stp, S_taker); set_obj(&o->status, S_resting);
    o->is_yes = (char)streq(side, S_yes);
    o->is_bid = o->is_yes == streq(action, S_buy);
    o->price = price;
    o->initial = o->remaining = count;
    o->created_ts = o->updated_ts = ts;
    return o;
}

/* Order(order_id, user_id, ticker, side, action, price, count, ts) */
static PyObject *order_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *oid, *uid, *ticker, *side, *action;
    long long price, count, ts;
    static char *kws[] = {"order_id", "user_id", "ticker", "side", "action", "price", "count",
                          "ts", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOLLL", kws, &oid, &uid, &ticker, &side,
                                     &action, &price, &count, &ts))
        return NULL;
    return (PyObject *)order_make(oid, uid, ticker, side, action, price, count, ts);
}

static void order_dealloc(OrderObject *o) {
    PyObject **objs = order_objs(o);
    for (int i = 0; i < N_ORDER_OBJS; i++) Py_CLEAR(objs[i]);
    PyObject_Free(o);
}

/* fields in a flat tuple: the objects, the integers, the flags */
static PyObject *order_fields(OrderObject *o) {
    PyObject *t = PyTuple_New(N_ORDER_OBJS + N_ORDER_LLS + N_ORDER_BOOLS);
    if (t == NULL) return NULL;
    PyObject **objs = order_objs(o);
    int k = 0;
    for (int i = 0; i < N_ORDER_OBJS; i++) { Py_INCREF(objs[i]); PyTuple_SET_ITEM(t, k++, objs[i]); }
    long long *lls = order_lls(o);
    for (int i = 0; i < N_ORDER_LLS; i++) {
        PyObject *v = PyLong_FromLongLong(lls[i]);
        if (v == NULL) { Py_DECREF(t); return NULL; }
        PyTuple_SET_ITEM(t, k++, v);
    }
    char *bs = order_bools(o);
    for (int i = 0; i < N_ORDER_BOOLS; i++) PyTuple_SET_ITEM(t, k++, PyBool_FromLong(bs[i]));
    return t;
}

static PyObject *order_from_fields(PyObject *mod, PyObject *t) {
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != N_ORDER_OBJS + N_ORDER_LLS + N_ORDER_BOOLS) {
        PyErr_SetString(PyExc_TypeError, "_order_from needs the tuple of Order.__reduce__");
        return NULL;
    }
    OrderObject *o = order_alloc();
    if (o == NULL) return NULL;
    int k = 0;
    PyObject **objs = order_objs(o);
    for (int i = 0; i < N_ORDER_OBJS; i++) set_obj(&objs[i], PyTuple_GET_ITEM(t, k++));
    long long *lls = order_lls(o);
    for (int i = 0; i < N_ORDER_LLS; i++) {
        lls[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(t, k++));
        if (lls[i] == -1 && PyErr_Occurred()) { Py_DECREF(o); return NULL; }
    }
    char *bs = order_bools(o);
    for (int i = 0; i < N_ORDER_BOOLS; i++) {
        int b = PyObject_IsTrue(PyTuple_GET_ITEM(t, k++));
        if (b < 0) { Py_DECREF(o); return NULL; }
        bs[i] = (char)b;
    }
    return (PyObject *)o;
}

static PyObject *order_from_func;  /* _core._order_from, set at module init */

static PyObject *order_reduce(OrderObject *o, PyObject *unused) {
    PyObject *f = order_fields(o);
    if (f == NULL) return NULL;
    return Py_BuildValue("O(N)", order_from_func, f);
}

/* a copy with the same fields, not in any book (amend re-queues a copy) */
static PyObject *order_copy(OrderObject *o, PyObject *unused) {
    PyObject *f = order_fields(o);
    if (f == NULL) return NULL;
    PyObject *n = order_from_fields(NULL, f);
    Py_DECREF(f);
    return n;
}

static PyObject *order_get_resting_in_book(OrderObject *o, void *c) {
    return PyBool_FromLong(o->lv != NULL);
}

static PyMemberDef order_members[] = {
    OBJ_RO(OrderObject, order_id), OBJ_RO(OrderObject, user_id), OBJ(OrderObject, client_order_id),
    OBJ_RO(OrderObject, ticker), OBJ_RO(OrderObject, side), OBJ_RO(OrderObject, action),
    OBJ(OrderObject, tif), OBJ(OrderObject, expiration_ts), OBJ(OrderObject, stp),
    OBJ(OrderObject, group_id), OBJ(OrderObject, status),
    LL(OrderObject, initial),
    LL(OrderObject, filled), LL(OrderObject, created_ts), LL(OrderObject, updated_ts),
    LL(OrderObject, taker_fill_cost), LL(OrderObject, maker_fill_cost),
    LL(OrderObject, taker_fees), LL(OrderObject, maker_fees), LL(OrderObject, w),
    LL(OrderObject, cum), LL(OrderObject, applied),
    {"is_bid", T_BOOL, offsetof(OrderObject, is_bid), READONLY, NULL},
    BOOL(OrderObject, post_only), BOOL(OrderObject, reduce_only),
    BOOL(OrderObject, cancel_on_pause),
    {NULL}};

/* price and remaining are set from Python only on an order that rests in no book (the book's
   level totals depend on them: Book.reduce changes a resting order's remaining) */
static PyObject *order_get_ll(OrderObject *o, void *off) {
    return PyLong_FromLongLong(*(long long *)((char *)o + (size_t)off));
}

static int order_set_ll(OrderObject *o, PyObject *v, void *off) {
    if (v == NULL) { PyErr_SetString(PyExc_AttributeError, "cannot delete"); return -1; }
    if (o->lv != NULL) {
        PyErr_SetString(PyExc_ValueError, "order rests in a book: use Book.reduce");
        return -1;
    }
    long long x = PyLong_AsLongLong(v);
    if (x == -1 && PyErr_Occurred()) return -1;
    *(long long *)((char *)o + (size_t)off) = x;
    return 0;
}

static PyGetSetDef order_getset[] = {
    {"price", (getter)order_get_ll, (setter)order_set_ll, "YES-scale price (micro-dollars)",
     (void *)offsetof(OrderObject, price)},
    {"remaining", (getter)order_get_ll, (setter)order_set_ll, "centi-contracts left",
     (void *)offsetof(OrderObject, remaining)},
    {"in_book", (getter)order_get_resting_in_book, NULL, "True while it rests in a book", NULL},
    {NULL}};

static PyMethodDef order_methods[] = {
    {"__reduce__", (PyCFunction)order_reduce, METH_NOARGS, NULL},
    {"copy", (PyCFunction)order_copy, METH_NOARGS,
     "A copy with the same fields that rests in no book."},
    {NULL}};

static PyTypeObject OrderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.exchange._core.Order",
    .tp_basicsize = sizeof(OrderObject),
    .tp_dealloc = (destructor)order_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Order(order_id, user_id, ticker, side, action, price, count, ts): one order. "
              "price is on the YES scale (micro-dollars), counts centi-contracts, money 1e-8 $; "
              "price and remaining change only through the book (Book.reduce) and fills.",
    .tp_members = order_members,
    .tp_getset = order_getset,
    .tp_methods = order_methods,
    .tp_new = order_new,
};

/* -- Account and Position ------------------------------------------------------------------ */

/* 128-bit money <-> Python int (an account's cash can exceed int64: the backtest's
   market participant is funded with $10^13) */
static PyObject *long_from_i128(i128 x) {
    if (x >= INT64_MIN && x <= INT64_MAX) return PyLong_FromLongLong((long long)x);
    PyObject *hi = PyLong_FromLongLong((long long)(x >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)x);
    PyObject *sh = PyLong_FromLong(64), *t = NULL, *r = NULL;
    if (hi && lo && sh) t = PyNumber_Lshift(hi, sh);
    if (t) r = PyNumber_Or(t, lo);
    Py_XDECREF(hi); Py_XDECREF(lo); Py_XDECREF(sh); Py_XDECREF(t);
    return r;
}

static int i128_from_long(PyObject *v, i128 *out) {
    int over;
    if (!PyLong_Check(v)) { PyErr_SetString(PyExc_TypeError, "money must be an int"); return -1; }
    long long x = PyLong_AsLongLongAndOverflow(v, &over);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (!over) { *out = x; return 0; }
    PyObject *sh = PyLong_FromLong(64), *mask = PyLong_FromUnsignedLongLong(~0ULL);
    PyObject *hi = NULL, *lo = NULL;
    if (sh && mask && (hi = PyNumber_Rshift(v, sh)) != NULL) lo = PyNumber_And(v, mask);
    long long h = hi ? PyLong_AsLongLong(hi) : -1;
    unsigned long long l = lo ? PyLong_AsUnsignedLongLong(lo) : 0;
    Py_XDECREF(sh); Py_XDECREF(mask); Py_XDECREF(hi); Py_XDECREF(lo);
    if (PyErr_Occurred()) {
        PyErr_SetString(PyExc_OverflowError, "money out of 128-bit range");
        return -1;
    }
    *out = ((i128)h << 64) | (i128)l;
    return 0;
}

typedef struct {
    PyObject_HEAD
    PyObject *user_id;
    i128 cash, reserved, deposits;
    long long open_orders;
} AccountObject;

typedef struct {
    PyObject_HEAD
    PyObject *user_id;
    long long pos, cost, realized, fees, rounding, volume, traded;
    long long bid_w, bid_q, ask_w, ask_q, reserve, updated_ts;
} PositionObject;

#define N_POSITION_LLS 13

static PyObject *account_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    PyObject *uid, *cash = NULL, *reserved = NULL, *deposits = NULL;
    long long open_orders = 0;
    static char *kws[] = {"user_id", "cash", "reserved", "open_orders", "deposits", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOLO", kws, &uid, &cash, &reserved,
                                     &open_orders, &deposits))
        return NULL;
    AccountObject *a = (AccountObject *)type->tp_alloc(type, 0);
    if (a == NULL) return NULL;
    set_obj(&a->user_id, uid);
    a->open_orders = open_orders;
    if ((cash && i128_from_long(cash, &a->cash) < 0)
        || (reserved && i128_from_long(reserved, &a->reserved) < 0)
        || (deposits && i128_from_long(deposits, &a->deposits) < 0)) {
        Py_DECREF(a);
        return NULL;
    }
    return (PyObject *)a;
}

static void account_dealloc(AccountObject *a) {
    Py_CLEAR(a->user_id);
    Py_TYPE(a)->tp_free((PyObject *)a);
}

static PyObject *account_reduce(AccountObject *a, PyObject *u) {
    return Py_BuildValue("O(ONNLN)", (PyObject *)Py_TYPE(a), a->user_id, long_from_i128(a->cash),
                         long_from_i128(a->reserved), a->open_orders,
                         long_from_i128(a->deposits));
}

static PyObject *account_get(AccountObject *a, void *off) {
    return long_from_i128(*(i128 *)((char *)a + (size_t)off));
}

static int account_set(AccountObject *a, PyObject *v, void *off) {
    if (v == NULL) { PyErr_SetString(PyExc_AttributeError, "cannot delete"); return -1; }
    return i128_from_long(v, (i128 *)((char *)a + (size_t)off));
}

static PyObject *account_available(AccountObject *a, void *c) {
    return long_from_i128(a->cash - a->reserved);
}

static PyMemberDef account_members[] = {
    OBJ_RO(AccountObject, user_id), LL(AccountObject, open_orders), {NULL}};
static PyGetSetDef account_getset[] = {
    {"cash", (getter)account_get, (setter)account_set, "money (1e-8 $), reserved included",
     (void *)offsetof(AccountObject, cash)},
    {"reserved", (getter)account_get, (setter)account_set, "collateral of resting orders",
     (void *)offsetof(AccountObject, reserved)},
    {"deposits", (getter)account_get, (setter)account_set, "money deposited in all",
     (void *)offsetof(AccountObject, deposits)},
    {"available", (getter)account_available, NULL,
     "Cash not reserved by resting orders (money units).", NULL},
    {NULL}};
static PyMethodDef account_methods[] = {
    {"__reduce__", (PyCFunction)account_reduce, METH_NOARGS, NULL}, {NULL}};

static PyTypeObject AccountType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.exchange._core.Account",
    .tp_basicsize = sizeof(AccountObject),
    .tp_dealloc = (destructor)account_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Account(user_id): cash and reserved (money, 1e-8 $, 128-bit; cash includes the "
              "collateral reserved by resting orders), open_orders (resting count), deposits.",
    .tp_members = account_members,
    .tp_getset = account_getset,
    .tp_methods = account_methods,
    .tp_new = account_new,
};

/* Position(user_id, *ints): a user id and int64 fields, all zero by default */
static PyObject *position_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    Py_ssize_t na = PyTuple_GET_SIZE(args);
    if ((kw != NULL && PyDict_GET_SIZE(kw)) || na < 1 || na > N_POSITION_LLS + 1) {
        PyErr_Format(PyExc_TypeError, "Position(user_id, up to %d integers)", N_POSITION_LLS);
        return NULL;
    }
    PositionObject *p = (PositionObject *)type->tp_alloc(type, 0);
    if (p == NULL) return NULL;
    set_obj(&p->user_id, PyTuple_GET_ITEM(args, 0));
    long long *v = &p->pos;
    for (Py_ssize_t i = 1; i < na; i++) {
        v[i - 1] = PyLong_AsLongLong(PyTuple_GET_ITEM(args, i));
        if (v[i - 1] == -1 && PyErr_Occurred()) { Py_DECREF(p); return NULL; }
    }
    return (PyObject *)p;
}

static void position_dealloc(PositionObject *p) {
    Py_CLEAR(p->user_id);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static PyObject *position_reduce(PositionObject *p, PyObject *u) {
    PyObject *t = PyTuple_New(N_POSITION_LLS + 1);
    if (t == NULL) return NULL;
    PyTuple_SET_ITEM(t, 0, ref_(p->user_id));
    long long *v = &p->pos;
    for (int i = 0; i < N_POSITION_LLS; i++) {
        PyObject *x = PyLong_FromLongLong(v[i]);
        if (x == NULL) { Py_DECREF(t); return NULL; }
        PyTuple_SET_ITEM(t, i + 1, x);
    }
    return Py_BuildValue("ON", (PyObject *)Py_TYPE(p), t);
}

static PyMemberDef position_members[] = {
    OBJ_RO(PositionObject, user_id), LL(PositionObject, pos), LL(PositionObject, cost),
    LL(PositionObject, realized), LL(PositionObject, fees), LL(PositionObject, rounding),
    LL(PositionObject, volume), LL(PositionObject, traded), LL(PositionObject, bid_w),
    LL(PositionObject, bid_q), LL(PositionObject, ask_w), LL(PositionObject, ask_q),
    LL(PositionObject, reserve), LL(PositionObject, updated_ts), {NULL}};
static PyMethodDef position_methods[] = {
    {"__reduce__", (PyCFunction)position_reduce, METH_NOARGS, NULL}, {NULL}};

static PyTypeObject PositionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.exchange._core.Position",
    .tp_basicsize = sizeof(PositionObject),
    .tp_dealloc = (destructor)position_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Position(user_id): pos signed centi-contracts (YES > 0, NO < 0); cost, realized, "
              "fees, rounding, traded money; volume centi-contracts; bid_w/bid_q/ask_w/ask_q the "
              "open orders' collateral sums; reserve the collateral counted in the account.",
    .tp_members = position_members,
    .tp_methods = position_methods,
    .tp_new = position_new,
};
