/* Part of _core.c (included once from there).
 *
 * The exchange state matching needs (CoreObject, the C base of engine.Exchange), the events
 * of one command (built only while ``_ev`` is a list: events.py structs) and price-time
 * matching (docs/trading-api.md §4.3): an incoming order takes the best opposite level while
 * it crosses, each trade printing at the resting order's price; self-trade prevention is the
 * taker's: taker_at_cross stops the taker at its own resting order, maker cancels that order
 * and goes on.
 */

typedef struct {
    PyObject_HEAD
    PyObject *markets, *accounts, *orders, *client_ids, *groups, *fills, *expiry, *ev;
    PyObject *touched, *handlers;
    long long next_order, next_trade, fees_collected, rounding_collected, ts, precision;
    long long max_open_orders;
    char history, events;
} CoreObject;

/* event and result types (events.py) and helpers, set at module init */
static PyObject *T_OrderView, *T_OrderUpdate, *T_BookDelta, *T_Trade, *T_Fill;
static PyObject *T_PositionUpdate, *T_Result, *reject_fn, *client_id_match, *heappush_fn;
static PyObject *KW_order, *KW_error;

/* call ``fn`` with ``n`` new references (any NULL: fail); the references are released */
static PyObject *call_steal(PyObject *fn, PyObject **a, Py_ssize_t n, PyObject *kwnames) {
    PyObject *r = NULL;
    Py_ssize_t i;
    for (i = 0; i < n; i++) if (a[i] == NULL) break;
    if (i == n)
        r = PyObject_Vectorcall(fn, a, (size_t)(n - (kwnames ? PyTuple_GET_SIZE(kwnames) : 0)),
                                kwnames);
    for (i = 0; i < n; i++) Py_XDECREF(a[i]);
    return r;
}

static PyObject *ref(PyObject *o) { Py_INCREF(o); return o; }
#define LONG(x) PyLong_FromLongLong(x)

static PyObject *order_view(OrderObject *o) {
    int resting = streq(o->status, S_resting);
    PyObject *a[25] = {
        ref(o->order_id), ref(o->user_id), ref(o->client_order_id), ref(o->ticker),
        ref(o->side), ref(o->action), ref(S_limit), ref(o->status), LONG(o->price),
        LONG(P1 - o->price), LONG(o->initial), LONG(o->filled),
        LONG(resting ? o->remaining : 0), LONG(o->taker_fill_cost), LONG(o->maker_fill_cost),
        LONG(o->taker_fees), LONG(o->maker_fees), ref(o->expiration_ts), LONG(o->created_ts),
        LONG(o->updated_ts), ref(o->stp), ref(o->group_id), PyBool_FromLong(o->post_only),
        PyBool_FromLong(o->reduce_only), ref(o->tif)};
    return call_steal(T_OrderView, a, 25, NULL);
}

static PyObject *result_with(PyObject *kw, PyObject *value) {  /* steals value */
    PyObject *a[1] = {value};
    return call_steal(T_Result, a, 1, kw);
}

static int ev_append(CoreObject *s, PyObject *e) {  /* steals e */
    if (e == NULL) return -1;
    int r = PyList_Append(s->ev, e);
    Py_DECREF(e);
    return r;
}

/* a user_orders event; returns the view it built (None with events off), new reference */
static PyObject *emit_order(CoreObject *s, OrderObject *o) {
    if (s->ev == Py_None) Py_RETURN_NONE;
    PyObject *v = order_view(o);
    if (v == NULL) return NULL;
    PyObject *a[1] = {ref(v)};
    if (ev_append(s, call_steal(T_OrderUpdate, a, 1, NULL)) < 0) { Py_DECREF(v); return NULL; }
    return v;
}

static int emit_delta(CoreObject *s, MarketObject *m, int is_bid, long long price,
                      long long delta, long long ts) {
    m->seq++;
    if (s->ev == Py_None) return 0;
    PyObject *a[6] = {ref(m->ticker), LONG(m->seq), ref(is_bid ? S_yes : S_no),
                      LONG(is_bid ? price : P1 - price), LONG(delta), LONG(ts)};
    return ev_append(s, call_steal(T_BookDelta, a, 6, NULL));
}

static int emit_position(CoreObject *s, MarketObject *m, PositionObject *p, long long ts) {
    p->updated_ts = ts;
    if (s->ev == Py_None) return 0;
    PyObject *a[9] = {ref(p->user_id), ref(m->ticker), LONG(p->pos), LONG(p->cost),
                      LONG(p->realized), LONG(p->fees), LONG(p->volume), LONG(ts),
                      LONG(p->traded)};
    return ev_append(s, call_steal(T_PositionUpdate, a, 9, NULL));
}

/* -- lookups ---------------------------------------------------------------------------- */

static PyObject *lookup(PyObject *d, PyObject *key, PyTypeObject *type) {  /* borrowed */
    PyObject *v = PyDict_GetItemWithError(d, key);
    if (v == NULL) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_KeyError, "%R", key);
        return NULL;
    }
    if (!PyObject_TypeCheck(v, type)) {
        PyErr_Format(PyExc_TypeError, "%R is not a %s", key, type->tp_name);
        return NULL;
    }
    return v;
}

#define ACCOUNT(s, uid) ((AccountObject *)lookup((s)->accounts, (uid), &AccountType))
#define POSITION(m, uid) ((PositionObject *)lookup((m)->positions, (uid), &PositionType))
#define MARKET(s, t) ((MarketObject *)lookup((s)->markets, (t), &MarketType))

/* groups[o.group_id].<attr> (borrowed group; NULL without error when none) */
static PyObject *group_of(CoreObject *s, OrderObject *o) {
    if (o->group_id == Py_None) return NULL;
    return PyDict_GetItemWithError(s->groups, o->group_id);
}

static int group_forget(CoreObject *s, OrderObject *o) {
    PyObject *g = group_of(s, o);
    if (g == NULL) return PyErr_Occurred() ? -1 : 0;
    PyObject *orders = PyObject_GetAttr(g, S_orders);
    if (orders == NULL) return -1;
    PyObject *r = PyObject_CallMethodObjArgs(orders, S_pop, o->order_id, Py_None, NULL);
    Py_DECREF(orders);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int group_remember(CoreObject *s, OrderObject *o) {
    PyObject *g = group_of(s, o);
    if (g == NULL) return PyErr_Occurred() ? -1 : 0;
    PyObject *orders = PyObject_GetAttr(g, S_orders);
    if (orders == NULL) return -1;
    int r = PyObject_SetItem(orders, o->order_id, Py_None);
    Py_DECREF(orders);
    return r;
}

static int group_record(CoreObject *s, OrderObject *o, long long ts, long long qty) {
    PyObject *g = group_of(s, o);
    if (g == NULL) return PyErr_Occurred() ? -1 : 0;
    PyObject *r = PyObject_CallMethod(g, "record", "LL", ts, qty);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return PySet_Add(s->touched, o->group_id);
}

/* -- resting and canceling -------------------------------------------------------------- */

/* take a resting order off the book and release its collateral; returns the view of its
   user_orders event (None with events off). The caller holds a reference to ``o``. */
static PyObject *cancel_resting(CoreObject *s, OrderObject *o, long long ts) {
    MarketObject *m = MARKET(s, o->ticker);
    if (m == NULL) return NULL;
    if (o->book != m->book) {
        PyErr_Format(PyExc_ValueError, "order %R does not rest in its market", o->order_id);
        return NULL;
    }
    PositionObject *p = POSITION(m, o->user_id);
    AccountObject *a = p ? ACCOUNT(s, o->user_id) : NULL;
    if (a == NULL) return NULL;
    o->lv->qty -= o->remaining;
    book_unlink(o);
    if (emit_delta(s, m, o->is_bid, o->price, -o->remaining, ts) < 0) return NULL;
    drop_order(p, o);
    refresh(p, a);
    a->open_orders--;
    set_obj(&o->status, S_canceled);
    o->updated_ts = ts;
    if (group_forget(s, o) < 0) return NULL;
    return emit_order(s, o);
}

static int rest(CoreObject *s, MarketObject *m, OrderObject *o, AccountObject *a, long long ts) {
    if (book_add(m->book, o) < 0) return -1;
    a->open_orders++;
    if (emit_delta(s, m, o->is_bid, o->price, o->remaining, ts) < 0) return -1;
    if (o->expiration_ts != Py_None) {
        PyObject *ns = PyLong_FromLongLong(1000000000LL), *at = NULL, *item = NULL, *r = NULL;
        if (ns) at = PyNumber_Multiply(o->expiration_ts, ns);
        if (at) item = Py_BuildValue("(OLO)", at, s->next_order, o->order_id);
        if (item) r = PyObject_CallFunctionObjArgs(heappush_fn, s->expiry, item, NULL);
        Py_XDECREF(ns); Py_XDECREF(at); Py_XDECREF(item);
        if (r == NULL) return -1;
        Py_DECREF(r);
    }
    return group_remember(s, o);
}

static int crosses(MarketObject *m, int is_bid, long long price) {
    Level *best = side_best(book_side(m->book, !is_bid));
    return best != NULL && (is_bid ? best->price <= price : best->price >= price);
}

/* would ``t`` fill completely (within ``max_cents`` cents, < 0: no cap)? a dry run */
static int fok_ok(MarketObject *m, OrderObject *t, long long max_cents) {
    Side *sd = book_side(m->book, !t->is_bid);
    long long need = t->remaining;
    i128 cost = 0;
    int maker = streq(t->stp, S_maker);
    for (Py_ssize_t i = sd->n - 1; i >= 0; i--) {
        long long price = sd->a[i]->price;
        if (t->is_bid ? price > t->price : price < t->price) break;
        for (OrderObject *mk = sd->a[i]->head; mk; mk = mk->next) {
            if (streq(mk->user_id, t->user_id)) {
                if (maker) continue;
                return 0;
            }
            long long q = need < mk->remaining ? need : mk->remaining;
            cost += (i128)q * (t->is_yes ? price : P1 - price);
            need -= q;
            if (need == 0) return max_cents < 0 || cost <= (i128)max_cents * 1000000;
        }
    }
    return 0;
}

/* -- fills -------------------------------------------------------------------------------- */

static int party(CoreObject *s, MarketObject *m, OrderObject *o, long long price, long long qty,
                 long long fee, int is_taker, long long ts, PyObject *trade_id) {
    PositionObject *p = POSITION(m, o->user_id);
    AccountObject *a = p ? ACCOUNT(s, o->user_id) : NULL;
    long long cash, rounding;
    if (a == NULL || fill_money(p, a, o, price, qty, fee, s->precision, &cash, &rounding) < 0)
        return -1;
    long long cost = qty * (o->is_yes ? price : P1 - price);
    if (__builtin_sub_overflow(m->escrow, cash, &m->escrow)
        || __builtin_add_overflow(s->fees_collected, fee, &s->fees_collected)
        || __builtin_add_overflow(s->rounding_collected, rounding, &s->rounding_collected)
        || __builtin_add_overflow(is_taker ? o->taker_fill_cost : o->maker_fill_cost, cost,
                                  is_taker ? &o->taker_fill_cost : &o->maker_fill_cost)
        || __builtin_add_overflow(is_taker ? o->taker_fees : o->maker_fees, fee,
                                  is_taker ? &o->taker_fees : &o->maker_fees))
        return overflow();
    o->remaining -= qty;
    o->filled += qty;
    o->updated_ts = ts;
    if (!is_taker) {  /* the taker's sums are updated once per sweep (match) */
        if (reweigh(p, o, qty, m) < 0) return -1;
        refresh(p, a);
    }
    if (group_record(s, o, ts, qty) < 0) return -1;
    if (s->ev != Py_None || s->history) {
        PyObject *args[15] = {ref(trade_id), ref(trade_id), ref(o->order_id), ref(o->user_id),
                              ref(m->ticker), ref(o->side), ref(o->action),
                              ref(o->is_bid ? S_bid : S_ask), LONG(qty), LONG(price),
                              LONG(P1 - price), PyBool_FromLong(is_taker), LONG(fee),
                              LONG(rounding), LONG(ts)};
        PyObject *f = call_steal(T_Fill, args, 15, NULL);
        if (f == NULL) return -1;
        if (s->history) {
            PyObject *lst = PyDict_GetItemWithError(s->fills, o->user_id);
            if (lst == NULL && !PyErr_Occurred()) {
                lst = PyList_New(0);
                if (lst && PyDict_SetItem(s->fills, o->user_id, lst) < 0) Py_CLEAR(lst);
                Py_XDECREF(lst);  /* the dict holds it */
            }
            if (lst == NULL || PyList_Append(lst, f) < 0) { Py_DECREF(f); return -1; }
        }
        if (s->ev != Py_None) { if (ev_append(s, f) < 0) return -1; }
        else Py_DECREF(f);
    }
    return is_taker ? 0 : emit_position(s, m, p, ts);
}

/* ``prefix`` + n in lowercase hex, at least 12 digits (Python's f"{n:012x}") */
static PyObject *id_string(const char *prefix, long long n) {
    char digits[16];
    int k = 0;
    unsigned long long u = (unsigned long long)n;
    do { digits[k++] = "0123456789abcdef"[u & 15]; u >>= 4; } while (u);
    while (k < 12) digits[k++] = '0';
    size_t len = strlen(prefix);
    PyObject *s = PyUnicode_New((Py_ssize_t)(len + k), 127);
    if (s == NULL) return NULL;
    char *out = (char *)PyUnicode_1BYTE_DATA(s);
    memcpy(out, prefix, len);
    for (int i = 0; i < k; i++) out[len + i] = digits[k - 1 - i];
    return s;
}

static int trade(CoreObject *s, MarketObject *m, OrderObject *t, OrderObject *mk, Level *lv,
                 long long ts) {
    long long price = lv->price, qty = t->remaining < mk->remaining ? t->remaining : mk->remaining;
    long long tfee, mfee;
    s->next_trade++;
    PyObject *tid = (s->ev != Py_None || s->history)
                        ? id_string("00000000-0000-4000-9000-", s->next_trade) : ref(S_empty);
    if (tid == NULL) return -1;
    int r = -1;
    if (taker_fee(m, qty, price, &tfee) < 0 || fee_of(&m->mf, m->maker_fee, qty, price, &mfee) < 0
        || party(s, m, t, price, qty, tfee, 1, ts, tid) < 0
        || party(s, m, mk, price, qty, mfee, 0, ts, tid) < 0)
        goto done;
    lv->qty -= qty;
    if (mk->remaining == 0) {
        AccountObject *a = ACCOUNT(s, mk->user_id);
        if (a == NULL) goto done;
        book_unlink(mk);  /* lv may be freed */
        set_obj(&mk->status, S_executed);
        a->open_orders--;
        if (group_forget(s, mk) < 0) goto done;
    }
    if (emit_delta(s, m, mk->is_bid, price, -qty, ts) < 0) goto done;
    if (s->ev != Py_None) {
        PyObject *a[7] = {ref(tid), ref(m->ticker), LONG(qty), LONG(price), LONG(P1 - price),
                          ref(t->is_bid ? S_yes : S_no), LONG(ts)};
        if (ev_append(s, call_steal(T_Trade, a, 7, NULL)) < 0) goto done;
    }
    PyObject *v = emit_order(s, mk);
    if (v == NULL) goto done;
    Py_DECREF(v);
    r = 0;
done:
    Py_DECREF(tid);
    return r;
}

/* 1 when self-trade prevention stopped ``t``, 0 when it ran out of crossing orders or
   quantity, -1 on error */
static int sweep(CoreObject *s, MarketObject *m, OrderObject *t, long long ts) {
    Side *sd = book_side(m->book, !t->is_bid);
    while (t->remaining > 0) {
        Level *lv = side_best(sd);
        if (lv == NULL || (t->is_bid ? lv->price > t->price : lv->price < t->price)) break;
        OrderObject *mk = lv->head;
        Py_INCREF(mk);
        int r;
        if (streq(mk->user_id, t->user_id)) {
            if (!streq(t->stp, S_maker)) { Py_DECREF(mk); return 1; }
            PyObject *v = cancel_resting(s, mk, ts);
            r = v ? 0 : -1;
            Py_XDECREF(v);
        } else {
            r = trade(s, m, t, mk, lv, ts);
        }
        Py_DECREF(mk);
        if (r < 0) return -1;
    }
    return 0;
}

/* match ``t``; the taker's collateral sums and position event are updated once, after */
static int match(CoreObject *s, MarketObject *m, OrderObject *t, long long ts) {
    long long before = t->filled;
    int stopped = sweep(s, m, t, ts);
    if (stopped < 0) return -1;
    if (t->filled != before) {
        PositionObject *p = POSITION(m, t->user_id);
        AccountObject *a = p ? ACCOUNT(s, t->user_id) : NULL;
        if (a == NULL || reweigh(p, t, t->filled - before, m) < 0) return -1;
        refresh(p, a);
        if (emit_position(s, m, p, ts) < 0) return -1;
    }
    return stopped;
}
