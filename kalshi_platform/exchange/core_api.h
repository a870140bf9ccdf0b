/* Part of _core.c (included once from there, after order entry, cancel and submit).
 *
 * The Core type (the C base of engine.Exchange: its attributes and methods) and the thin
 * Python-facing wrappers that edits.py and admin.py call (cancel a resting order, match, rest,
 * the price check, the events).
 */

/* -- methods for edits.py / admin.py --------------------------------------------------- */

static PyObject *core_cancel_resting(CoreObject *s, PyObject *args) {
    OrderObject *o;
    long long ts;
    if (!PyArg_ParseTuple(args, "O!L", &OrderType, &o, &ts)) return NULL;
    return cancel_resting(s, o, ts);
}

static PyObject *core_match_py(CoreObject *s, PyObject *args) {
    MarketObject *m; OrderObject *o;
    long long ts;
    if (!PyArg_ParseTuple(args, "O!O!L", &MarketType, &m, &OrderType, &o, &ts)) return NULL;
    int r = match(s, m, o, ts);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *core_rest_py(CoreObject *s, PyObject *args) {
    MarketObject *m; OrderObject *o; AccountObject *a;
    long long ts;
    if (!PyArg_ParseTuple(args, "O!O!O!L", &MarketType, &m, &OrderType, &o, &AccountType, &a, &ts)
        || rest(s, m, o, a, ts) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_crosses_py(CoreObject *s, PyObject *args) {
    MarketObject *m;
    int is_bid;
    long long price;
    if (!PyArg_ParseTuple(args, "O!pL", &MarketType, &m, &is_bid, &price)) return NULL;
    return PyBool_FromLong(crosses(m, is_bid, price));
}

static PyObject *core_price_of_py(CoreObject *s, PyObject *args) {
    MarketObject *m;
    PyObject *yes, *no, *res = NULL, *e;
    long long price;
    if (!PyArg_ParseTuple(args, "O!OO", &MarketType, &m, &yes, &no)) return NULL;
    if (price_of(m, yes, no, &price, &res)) return PyLong_FromLongLong(price);
    if (res == NULL) return NULL;
    e = PyObject_GetAttr(res, S_error);  /* the ExchangeError, unwrapped */
    Py_DECREF(res);
    return e;
}

static PyObject *core_emit_delta_py(CoreObject *s, PyObject *args) {
    MarketObject *m;
    int is_bid;
    long long price, delta, ts;
    if (!PyArg_ParseTuple(args, "O!pLLL", &MarketType, &m, &is_bid, &price, &delta, &ts)
        || emit_delta(s, m, is_bid, price, delta, ts) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_emit_order_py(CoreObject *s, PyObject *arg) {
    OrderObject *o = as_order(arg);
    return o ? emit_order(s, o) : NULL;
}

static PyObject *core_emit_position_py(CoreObject *s, PyObject *args) {
    MarketObject *m;
    PyObject *uid;
    long long ts;
    if (!PyArg_ParseTuple(args, "O!OL", &MarketType, &m, &uid, &ts)) return NULL;
    PositionObject *p = POSITION(m, uid);
    if (p == NULL || emit_position(s, m, p, ts) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_order_view(PyObject *mod, PyObject *arg) {
    OrderObject *o = as_order(arg);
    return o ? order_view(o) : NULL;
}

/* -- Core type ----------------------------------------------------------------------------- */

#define CORE_OBJS(X) X(markets) X(accounts) X(orders) X(client_ids) X(groups) X(fills) \
    X(expiry) X(ev) X(touched) X(handlers)

static PyObject *core_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    CoreObject *s = (CoreObject *)type->tp_alloc(type, 0);
    if (s == NULL) return NULL;
    s->markets = PyDict_New(); s->accounts = PyDict_New(); s->orders = PyDict_New();
    s->client_ids = PyDict_New(); s->groups = PyDict_New(); s->fills = PyDict_New();
    s->expiry = PyList_New(0); s->ev = ref(Py_None); s->touched = PySet_New(NULL);
    s->handlers = PyDict_New();
#define NULLCHECK(f) if (s->f == NULL) { Py_DECREF(s); return NULL; }
    CORE_OBJS(NULLCHECK)
    s->precision = 10000;
    s->max_open_orders = 200000;
    s->history = 1;
    s->events = 1;
    return (PyObject *)s;
}

static int core_traverse(CoreObject *s, visitproc visit, void *arg) {
#define VISIT(f) Py_VISIT(s->f);
    CORE_OBJS(VISIT)
    return 0;
}

static int core_clear(CoreObject *s) {
#define CLEAR(f) Py_CLEAR(s->f);
    CORE_OBJS(CLEAR)
    return 0;
}

static void core_dealloc(CoreObject *s) {
    PyObject_GC_UnTrack(s);
    core_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int core_set_precision(CoreObject *s, PyObject *v, void *c) {
    long long p = v ? PyLong_AsLongLong(v) : 0;
    if (p == -1 && PyErr_Occurred()) return -1;
    if (p <= 0) { PyErr_SetString(PyExc_ValueError, "_precision must be > 0"); return -1; }
    s->precision = p;
    return 0;
}

static PyObject *core_get_precision(CoreObject *s, void *c) { return PyLong_FromLongLong(s->precision); }

static PyMemberDef core_members[] = {
    OBJ(CoreObject, markets), OBJ(CoreObject, accounts), OBJ(CoreObject, orders),
    OBJ(CoreObject, client_ids), OBJ(CoreObject, groups), OBJ(CoreObject, fills),
    OBJ(CoreObject, expiry),
    {"_ev", T_OBJECT, offsetof(CoreObject, ev), READONLY, NULL},
    {"_touched", T_OBJECT, offsetof(CoreObject, touched), 0, NULL},
    {"_handlers", T_OBJECT, offsetof(CoreObject, handlers), 0, NULL},
    LL(CoreObject, next_order), LL(CoreObject, next_trade), LL(CoreObject, fees_collected),
    LL(CoreObject, rounding_collected), LL(CoreObject, ts),
    {"_max_open_orders", T_LONGLONG, offsetof(CoreObject, max_open_orders), 0, NULL},
    {"_history", T_BOOL, offsetof(CoreObject, history), 0, NULL},
    {"_events", T_BOOL, offsetof(CoreObject, events), 0, NULL},
    {NULL}};

static PyGetSetDef core_getset[] = {
    {"_precision", (getter)core_get_precision, (setter)core_set_precision,
     "money units a balance change is floored to", NULL},
    {NULL}};

#define FAST(name, fn, doc) {name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL, doc}
static PyMethodDef core_methods[] = {
    FAST("submit", core_submit,
         "submit(cmd, ts) -> Result: apply one command at UTC time ts (ns); see engine.py."),
    FAST("_create_cmd", core_create_cmd, "Order entry: CreateOrder -> Result."),
    FAST("_cancel_cmd", core_cancel_cmd, "CancelOrder -> Result."),
    {"_cancel_resting", (PyCFunction)core_cancel_resting, METH_VARARGS,
     "_cancel_resting(order, ts): cancel a resting order; its view or None (events off)."},
    {"_match", (PyCFunction)core_match_py, METH_VARARGS,
     "_match(market, order, ts) -> True when self-trade prevention stopped the order."},
    {"_rest", (PyCFunction)core_rest_py, METH_VARARGS, "_rest(market, order, account, ts)."},
    {"_crosses", (PyCFunction)core_crosses_py, METH_VARARGS, "_crosses(market, is_bid, price)."},
    {"_price_of", (PyCFunction)core_price_of_py, METH_VARARGS,
     "_price_of(market, yes_price, no_price) -> YES price or ExchangeError."},
    {"_emit_delta", (PyCFunction)core_emit_delta_py, METH_VARARGS,
     "_emit_delta(market, is_bid, price, delta, ts): next seq, and a BookDelta event."},
    {"_emit_order", (PyCFunction)core_emit_order_py, METH_O,
     "_emit_order(order): a user_orders event; its view or None (events off)."},
    {"_emit_position", (PyCFunction)core_emit_position_py, METH_VARARGS,
     "_emit_position(market, user_id, ts)."},
    {NULL}};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.exchange._core.Core",
    .tp_basicsize = sizeof(CoreObject),
    .tp_dealloc = (destructor)core_dealloc,
    .tp_traverse = (traverseproc)core_traverse,
    .tp_clear = (inquiry)core_clear,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The exchange state order entry and matching touch (base of engine.Exchange).",
    .tp_members = core_members,
    .tp_getset = core_getset,
    .tp_methods = core_methods,
    .tp_new = core_new,
};
