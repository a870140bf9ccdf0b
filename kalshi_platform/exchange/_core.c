/* kalshi_platform.exchange._core: the matching core of the exchange simulator in C
 * (docs/exchange.md "The C core").
 *
 * Types: Order, Account, Position (core_types.h), Book (core_book.h), MarketBase and the
 * money of fills (core_ledger.h), the exchange state with matching and events
 * (core_match.h), the Core type and its Python-facing methods (core_api.h). This file holds
 * the two hot commands, order entry (``_create_cmd``: validation, admission, collateral,
 * matching, resting) and cancel, the ``submit`` dispatch and the module set-up. A refused
 * command returns Result(error=errors.reject(kind, ...)): the messages live in errors.py.
 * Deterministic; single writer; no locks.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#include "core_types.h"
#include "core_book.h"
#include "core_ledger.h"
#include "core_match.h"

static long long MAX_SIZE;

enum { F_USER, F_TICKER, F_SIDE, F_ACTION, F_COUNT, F_YES, F_NO, F_COID, F_TIF, F_EXP, F_BMC,
       F_POST, F_REDUCE, F_STP, F_GROUP, F_COP, F_SUB, N_CF };
static const char *CF_NAMES[N_CF] = {
    "user_id", "ticker", "side", "action", "count", "yes_price", "no_price", "client_order_id",
    "time_in_force", "expiration_ts", "buy_max_cost", "post_only", "reduce_only",
    "self_trade_prevention_type", "order_group_id", "cancel_order_on_pause", "subaccount"};
static Py_ssize_t CF_OFF[N_CF], CX_OFF[2];
static PyTypeObject *CreateOrderType, *CancelOrderType;

/* Result(error=errors.reject(kind, *args)) */
static PyObject *rejected(const char *fmt, ...) {
    va_list va;
    va_start(va, fmt);
    PyObject *args = Py_VaBuildValue(fmt, va);
    va_end(va);
    if (args == NULL) return NULL;
    PyObject *e = PyObject_Call(reject_fn, args, NULL);
    Py_DECREF(args);
    if (e == NULL) return NULL;
    return result_with(KW_error, e);
}

static int fields(PyObject *c, PyTypeObject *type, Py_ssize_t *off, int n, PyObject **f) {
    if (Py_TYPE(c) != type) {
        PyErr_Format(PyExc_TypeError, "expected a %s", type->tp_name);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        f[i] = *(PyObject **)((char *)c + off[i]);
        if (f[i] == NULL) { PyErr_SetString(PyExc_AttributeError, "command field unset"); return -1; }
    }
    return 0;
}

/* an exact int in [lo, hi] */
static int int_in(PyObject *v, long long lo, long long hi, long long *out) {
    int over;
    if (!PyLong_CheckExact(v)) return 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &over);
    if (over || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

/* the YES price of a command's yes_price/no_price, or a refusal (*res set) */
static int price_of(MarketObject *m, PyObject *yes, PyObject *no, long long *price,
                    PyObject **res) {
    long long v;
    if ((yes == Py_None) == (no == Py_None)) { *res = rejected("(s)", "one_price"); return 0; }
    PyObject *p = no == Py_None ? yes : no;
    if (!PyLong_CheckExact(p)) { *res = rejected("(sO)", "price_type", p); return 0; }
    if (!int_in(p, 0, P1, &v) || !valid_price(m, no == Py_None ? v : P1 - v)) {
        *res = rejected("(sOO)", "price_grid", yes, no);
        return 0;
    }
    *price = no == Py_None ? v : P1 - v;
    return 1;
}

/* the order options: time in force, STP type, expiration, buy_max_cost (a buy; implies
   fill-or-kill), post_only (GTC only), reduce_only (IOC/FOK only), client_order_id
   (commands.CLIENT_ID), subaccount 0..32. 1: valid, 0: refused (*res set), -1: error */
static int check_options(PyObject **f, int is_buy, int *post, int *reduce, PyObject **res) {
    long long v;
    PyObject *tif = f[F_TIF], *stp = f[F_STP], *bmc = f[F_BMC], *coid = f[F_COID];
    if (!streq(tif, S_gtc) && !streq(tif, S_ioc) && !streq(tif, S_fok)) { *res = rejected("(s)", "tif"); return 0; }
    if (stp != Py_None && !streq(stp, S_taker) && !streq(stp, S_maker)) { *res = rejected("(s)", "stp"); return 0; }
    if (f[F_EXP] != Py_None && (!PyLong_CheckExact(f[F_EXP])
                                || PyObject_RichCompareBool(f[F_EXP], S_zero, Py_GE) != 1)) {
        *res = rejected("(s)", "expiration");
        return 0;
    }
    if (bmc != Py_None && (!is_buy || !PyLong_CheckExact(bmc)
                           || PyObject_RichCompareBool(bmc, S_zero, Py_GT) != 1)) {
        *res = rejected("(s)", "buy_max_cost");
        return 0;
    }
    if ((*post = PyObject_IsTrue(f[F_POST])) < 0 || (*reduce = PyObject_IsTrue(f[F_REDUCE])) < 0)
        return -1;
    int gtc = streq(tif, S_gtc);
    if (*post && (!gtc || bmc != Py_None)) { *res = rejected("(s)", "post_only_tif"); return 0; }
    if (*reduce && gtc && bmc == Py_None) { *res = rejected("(s)", "reduce_only_tif"); return 0; }
    if (coid != Py_None) {
        PyObject *ok = PyUnicode_Check(coid) ? PyObject_CallOneArg(client_id_match, coid) : ref(Py_None);
        if (ok == NULL) return -1;
        Py_DECREF(ok);
        if (ok == Py_None) { *res = rejected("(s)", "client_id"); return 0; }
    }
    if (!int_in(f[F_SUB], 0, 32, &v)) { *res = rejected("(s)", "subaccount"); return 0; }
    return 1;
}

/* a repeated client_order_id (409), the open-order cap and the order group (the user's, not
   triggered); the account (new reference; *fresh: new, not stored yet) or NULL with *res
   set (or an error) */
static AccountObject *admit(CoreObject *s, PyObject **f, PyObject **res, int *fresh) {
    PyObject *uid = f[F_USER], *coid = f[F_COID], *gid = f[F_GROUP];
    if (coid != Py_None) {
        PyObject *key = PyTuple_Pack(2, uid, coid);
        if (key == NULL) return NULL;
        PyObject *prior = PyDict_GetItemWithError(s->client_ids, key);
        Py_DECREF(key);
        if (prior != NULL) { *res = rejected("(sOO)", "duplicate", coid, prior); return NULL; }
        if (PyErr_Occurred()) return NULL;
    }
    PyObject *a = PyDict_GetItemWithError(s->accounts, uid);
    if (a == NULL && PyErr_Occurred()) return NULL;
    *fresh = a == NULL;
    a = a ? ref(a) : PyObject_CallOneArg((PyObject *)&AccountType, uid);
    if (a == NULL) return NULL;
    if (!PyObject_TypeCheck(a, &AccountType)) {
        PyErr_SetString(PyExc_TypeError, "accounts must hold Account objects");
        Py_DECREF(a);
        return NULL;
    }
    if (((AccountObject *)a)->open_orders >= s->max_open_orders) {
        *res = rejected("(sL)", "open_orders", s->max_open_orders);
        Py_DECREF(a);
        return NULL;
    }
    if (gid != Py_None) {
        PyObject *g = PyDict_GetItemWithError(s->groups, gid), *gu = NULL, *trig = NULL;
        int mine = 0, triggered = 0;
        if (g != NULL && (gu = PyObject_GetAttr(g, S_user_id)) != NULL) {
            mine = PyObject_RichCompareBool(gu, uid, Py_EQ);
            Py_DECREF(gu);
            if (mine == 1 && (trig = PyObject_GetAttr(g, S_triggered)) != NULL) {
                triggered = PyObject_IsTrue(trig);
                Py_DECREF(trig);
            }
        }
        if (PyErr_Occurred() || mine < 0 || triggered < 0) { Py_DECREF(a); return NULL; }
        if (g == NULL || !mine) *res = rejected("(sO)", "group_not_found", gid);
        else if (triggered) *res = rejected("(sO)", "group_triggered", gid);
        if (g == NULL || !mine || triggered) { Py_DECREF(a); return NULL; }
    }
    return (AccountObject *)a;
}

/* the accepted order's id (the n-th order: UUID-shaped, from the counter), options and its
   entries in ``orders`` and ``client_ids`` */
static int fill_in(CoreObject *s, OrderObject *o, PyObject **f, int post, int reduce,
                   long long ts) {
    int cop = PyObject_IsTrue(f[F_COP]);
    if (cop < 0) return -1;
    PyObject *oid = id_string("00000000-0000-4000-8000-", ++s->next_order);
    if (oid == NULL) return -1;
    Py_SETREF(o->order_id, oid);
    set_obj(&o->client_order_id, f[F_COID]);
    PyObject *tif = f[F_BMC] != Py_None ? S_fok : streq(f[F_TIF], S_gtc) ? S_gtc
                    : streq(f[F_TIF], S_ioc) ? S_ioc : S_fok;
    set_obj(&o->expiration_ts, f[F_EXP]);
    if (f[F_EXP] != Py_None) {  /* a date in the past is IOC (docs/trading-api.md §4.2) */
        int over;
        long long e = PyLong_AsLongLongAndOverflow(f[F_EXP], &over);
        if (!over && e <= INT64_MAX / 1000000000LL && e * 1000000000LL <= ts) tif = S_ioc;
    }
    set_obj(&o->tif, tif);
    o->post_only = (char)post;
    o->reduce_only = (char)reduce;
    set_obj(&o->stp, f[F_STP] == Py_None ? S_taker : f[F_STP]);
    set_obj(&o->group_id, f[F_GROUP]);
    o->cancel_on_pause = (char)cop;
    if (PyDict_SetItem(s->orders, oid, (PyObject *)o) < 0) return -1;
    if (f[F_COID] == Py_None) return 0;
    PyObject *key = PyTuple_Pack(2, f[F_USER], f[F_COID]);
    int r = key ? PyDict_SetItem(s->client_ids, key, oid) : -1;
    Py_XDECREF(key);
    return r;
}

/* match, then rest or cancel the remainder; the Result with the order's view */
static PyObject *execute(CoreObject *s, MarketObject *m, OrderObject *o, PositionObject *p,
                         AccountObject *a, PyObject *bmc, long long ts) {
    int stopped;
    if (o->tif == S_fok) {
        int over;
        long long cap = bmc == Py_None ? -1 : PyLong_AsLongLongAndOverflow(bmc, &over);
        if (bmc != Py_None && over) cap = -1;  /* beyond int64 cents: no effective cap */
        stopped = !fok_ok(m, o, cap) ? 1 : match(s, m, o, ts);
    } else {
        stopped = match(s, m, o, ts);
    }
    if (stopped < 0) return NULL;
    if (o->remaining) {
        if (stopped || o->tif != S_gtc) {
            drop_order(p, o);
            refresh(p, a);
            set_obj(&o->status, S_canceled);
        } else if (rest(s, m, o, a, ts) < 0) {
            return NULL;
        }
    } else {
        set_obj(&o->status, S_executed);
    }
    PyObject *v = emit_order(s, o);
    if (v == Py_None) { Py_DECREF(v); v = order_view(o); }
    return v ? result_with(KW_order, v) : NULL;
}

/* the body of order entry once the market and price are known */
static PyObject *place(CoreObject *s, MarketObject *m, PyObject **f, long long price,
                       long long count, int post, int reduce, long long ts) {
    PyObject *res = NULL, *uid = f[F_USER];
    int fresh;
    AccountObject *a = admit(s, f, &res, &fresh);
    if (a == NULL) return res;
    OrderObject *o = order_make(S_empty, uid, f[F_TICKER], f[F_SIDE], f[F_ACTION], price, count, ts);
    PyObject *pp = PyDict_GetItemWithError(m->positions, uid);
    PositionObject *p = NULL;
    if (o == NULL || (pp == NULL && PyErr_Occurred())) goto done;
    p = (PositionObject *)(pp ? ref(pp) : PyObject_CallOneArg((PyObject *)&PositionType, uid));
    if (p == NULL) goto done;
    if (!PyObject_TypeCheck(p, &PositionType)) {
        PyErr_SetString(PyExc_TypeError, "positions must hold Position objects");
        goto done;
    }
    if (reduce) {
        long long held = o->is_bid ? -p->pos : p->pos;
        if (count > held) { res = rejected("(sLL)", "reduce_only", count, held); goto done; }
    }
    if (post && crosses(m, o->is_bid, price)) { res = rejected("(s)", "post_only_cross"); goto done; }
    if (add_order(p, o, m) < 0) {  /* open-order sums beyond int64: more than any account */
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) goto done;
        PyErr_Clear();
        res = rejected("(sO)", "too_large", f[F_COUNT]);
        goto done;
    }
    refresh(p, a);
    if (a->cash < a->reserved) {
        PyObject *need = long_from_i128(a->reserved - a->cash);
        drop_order(p, o);
        refresh(p, a);
        if (need) res = rejected("(sN)", "insufficient", need);
        goto done;
    }
    if ((fresh && PyDict_SetItem(s->accounts, uid, (PyObject *)a) < 0)  /* stored once accepted */
        || (pp == NULL && PyDict_SetItem(m->positions, uid, (PyObject *)p) < 0)
        || fill_in(s, o, f, post, reduce, ts) < 0)
        goto done;
    res = execute(s, m, o, p, a, f[F_BMC], ts);
done:
    Py_XDECREF(o);
    Py_XDECREF(p);
    Py_DECREF(a);
    return res;
}

/* ts from a command tuple (cmd, ts) of the Python-facing methods */
static int ts_arg(PyObject *const *args, Py_ssize_t n, const char *name, long long *ts) {
    if (n != 2) { PyErr_Format(PyExc_TypeError, "%s(cmd, ts)", name); return -1; }
    *ts = PyLong_AsLongLong(args[1]);
    return (*ts == -1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *create(CoreObject *s, PyObject *cmd, long long ts) {
    PyObject *f[N_CF], *res = NULL;
    long long count, price;
    int post, reduce;
    if (fields(cmd, CreateOrderType, CF_OFF, N_CF, f) < 0) return NULL;
    PyObject *mo = PyDict_GetItemWithError(s->markets, f[F_TICKER]);
    if (mo == NULL) return PyErr_Occurred() ? NULL : rejected("(sO)", "market_not_found", f[F_TICKER]);
    if (!PyObject_TypeCheck(mo, &MarketType)) {
        PyErr_SetString(PyExc_TypeError, "markets must hold Market objects");
        return NULL;
    }
    MarketObject *m = (MarketObject *)mo;
    if (!streq(m->status, S_open)) return rejected("(sOO)", "market_closed", f[F_TICKER], m->status);
    int is_buy = streq(f[F_ACTION], S_buy);
    if (!(streq(f[F_SIDE], S_yes) || streq(f[F_SIDE], S_no)) || !(is_buy || streq(f[F_ACTION], S_sell)))
        return rejected("(sOO)", "side", f[F_SIDE], f[F_ACTION]);
    if (!int_in(f[F_COUNT], 1, MAX_SIZE, &count)) return rejected("(sO)", "count", f[F_COUNT]);
    if (!price_of(m, f[F_YES], f[F_NO], &price, &res)) return res;
    int ok = check_options(f, is_buy, &post, &reduce, &res);
    if (ok <= 0) return ok < 0 ? NULL : res;
    Py_INCREF(m);
    res = place(s, m, f, price, count, post, reduce, ts);
    Py_DECREF(m);
    return res;
}

static PyObject *cancel(CoreObject *s, PyObject *cmd, long long ts) {
    PyObject *f[2];
    if (fields(cmd, CancelOrderType, CX_OFF, 2, f) < 0) return NULL;
    PyObject *oo = PyDict_GetItemWithError(s->orders, f[1]);
    if (oo == NULL && PyErr_Occurred()) return NULL;
    if (oo == NULL || !PyObject_TypeCheck(oo, &OrderType) || !streq(((OrderObject *)oo)->user_id, f[0]))
        return rejected("(sO)", "order_not_found", f[1]);
    OrderObject *o = (OrderObject *)oo;
    if (!streq(o->status, S_resting)) return rejected("(sOO)", "order_not_resting", f[1], o->status);
    Py_INCREF(o);
    PyObject *v = cancel_resting(s, o, ts);
    if (v == Py_None) { Py_DECREF(v); v = order_view(o); }
    Py_DECREF(o);
    return v ? result_with(KW_order, v) : NULL;
}

static PyObject *core_create_cmd(CoreObject *s, PyObject *const *args, Py_ssize_t n) {
    long long ts;
    return ts_arg(args, n, "_create_cmd", &ts) < 0 ? NULL : create(s, args[0], ts);
}

static PyObject *core_cancel_cmd(CoreObject *s, PyObject *const *args, Py_ssize_t n) {
    long long ts;
    return ts_arg(args, n, "_cancel_cmd", &ts) < 0 ? NULL : cancel(s, args[0], ts);
}

/* -- submit ------------------------------------------------------------------------------ */

static int call_ts(CoreObject *s, PyObject *name, long long ts) {
    PyObject *t = PyLong_FromLongLong(ts);
    if (t == NULL) return -1;
    PyObject *r = PyObject_CallMethodOneArg((PyObject *)s, name, t);
    Py_DECREF(t);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

static int expiry_due(CoreObject *s, long long ts) {
    if (!PyList_Check(s->expiry) || PyList_GET_SIZE(s->expiry) == 0) return 0;
    PyObject *first = PyList_GET_ITEM(s->expiry, 0);
    if (!PyTuple_Check(first) || PyTuple_GET_SIZE(first) < 1) return 0;
    int over;
    long long at = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(first, 0), &over);
    if (at == -1 && PyErr_Occurred()) return -1;
    return over < 0 || (!over && at <= ts);
}

static PyObject *core_submit(CoreObject *s, PyObject *const *args, Py_ssize_t n) {
    if (n != 2) { PyErr_SetString(PyExc_TypeError, "submit(cmd, ts)"); return NULL; }
    PyObject *cmd = args[0], *handler = PyDict_GetItemWithError(s->handlers, (PyObject *)Py_TYPE(cmd));
    if (handler == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_TypeError, "not an exchange command: %s", Py_TYPE(cmd)->tp_name);
        return NULL;
    }
    if (!PyLong_CheckExact(args[1])) {
        PyErr_Format(PyExc_TypeError, "ts must be integer UTC nanoseconds, got %R", args[1]);
        return NULL;
    }
    long long ts = PyLong_AsLongLong(args[1]);
    if (ts == -1 && PyErr_Occurred()) return NULL;
    if (ts > s->ts) s->ts = ts;
    ts = s->ts;
    PyObject *ev = s->events ? PyList_New(0) : ref(Py_None), *res = NULL;
    if (ev == NULL) return NULL;
    Py_INCREF(handler);  /* borrowed from _handlers, which Python code could change */
    Py_XSETREF(s->ev, ref(ev));
    int due = expiry_due(s, ts);
    if (due < 0 || (due && call_ts(s, S_expire, ts) < 0)) goto done;
    if (PyCFunction_Check(handler) && PyCFunction_GET_SELF(handler) == (PyObject *)s
        && (PyCFunction_GET_FUNCTION(handler) == (PyCFunction)(void (*)(void))core_create_cmd
            || PyCFunction_GET_FUNCTION(handler) == (PyCFunction)(void (*)(void))core_cancel_cmd)) {
        /* the C handlers, called without boxing ts */
        res = PyCFunction_GET_FUNCTION(handler) == (PyCFunction)(void (*)(void))core_create_cmd
                  ? create(s, cmd, ts) : cancel(s, cmd, ts);
    } else {
        PyObject *targs[2] = {cmd, PyLong_FromLongLong(ts)};
        if (targs[1] == NULL) goto done;
        res = PyObject_Vectorcall(handler, targs, 2, NULL);
        Py_DECREF(targs[1]);
    }
    if (res == NULL) goto done;
    if (PySet_Check(s->touched) && PySet_GET_SIZE(s->touched) && call_ts(s, S_check_groups, ts) < 0)
        Py_CLEAR(res);
    if (res != NULL && ev != Py_None && PyObject_SetAttr(res, S_events, ev) < 0) Py_CLEAR(res);
done:
    Py_XSETREF(s->ev, ref(Py_None));
    Py_DECREF(ev);
    Py_DECREF(handler);
    return res;
}

#include "core_api.h"

/* -- module --------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"add_order", py_add_order, METH_VARARGS,
     "add_order(position, order, market): count the order's remaining and weight."},
    {"drop_order", py_drop_order, METH_VARARGS,
     "drop_order(position, order): stop counting the order in the open-order sums."},
    {"refresh", py_refresh, METH_VARARGS,
     "refresh(position, account): bring account.reserved up to date."},
    {"order_view", py_order_view, METH_O, "order_view(order) -> events.OrderView."},
    {"_order_from", order_from_fields, METH_O, NULL},
    {"_book_from", book_from, METH_O, NULL},
    {NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_core", NULL, -1, module_methods,
                                       NULL, NULL, NULL, NULL};

static int offsets(PyTypeObject *type, const char **names, int n, Py_ssize_t *off) {
    for (int i = 0; i < n; i++) {
        PyObject *d = PyDict_GetItemString(type->tp_dict, names[i]);
        if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type)
            || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            PyErr_Format(PyExc_TypeError, "%s.%s is not a struct field", type->tp_name, names[i]);
            return -1;
        }
        off[i] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    return 0;
}

static PyObject *import_attr(const char *mod, const char *name) {
    PyObject *m = PyImport_ImportModule(mod);
    if (m == NULL) return NULL;
    PyObject *a = PyObject_GetAttrString(m, name);
    Py_DECREF(m);
    return a;
}

static int init_names(void) {
#define INTERN(var, text) if ((var = PyUnicode_InternFromString(text)) == NULL) return -1;
    INTERN(S_yes, "yes") INTERN(S_no, "no") INTERN(S_buy, "buy") INTERN(S_sell, "sell")
    INTERN(S_resting, "resting") INTERN(S_canceled, "canceled") INTERN(S_executed, "executed")
    INTERN(S_limit, "limit") INTERN(S_open, "open") INTERN(S_gtc, "good_till_canceled")
    INTERN(S_ioc, "immediate_or_cancel") INTERN(S_fok, "fill_or_kill")
    INTERN(S_taker, "taker_at_cross") INTERN(S_maker, "maker") INTERN(S_bid, "bid")
    INTERN(S_ask, "ask") INTERN(S_empty, "") INTERN(S_orders, "orders") INTERN(S_pop, "pop")
    INTERN(S_record, "record") INTERN(S_user_id, "user_id") INTERN(S_triggered, "triggered")
    INTERN(S_events, "events") INTERN(S_expire, "_expire") INTERN(S_check_groups, "_check_groups")
    INTERN(S_order, "order") INTERN(S_error, "error")
    if ((S_zero = PyLong_FromLong(0)) == NULL) return -1;
    if ((KW_order = PyTuple_Pack(1, S_order)) == NULL) return -1;
    if ((KW_error = PyTuple_Pack(1, S_error)) == NULL) return -1;
    return 0;
}

static int init_imports(void) {
    const char *ev = "kalshi_platform.exchange.events";
    if (!(T_OrderView = import_attr(ev, "OrderView")) || !(T_OrderUpdate = import_attr(ev, "OrderUpdate"))
        || !(T_BookDelta = import_attr(ev, "BookDelta")) || !(T_Trade = import_attr(ev, "Trade"))
        || !(T_Fill = import_attr(ev, "Fill")) || !(T_PositionUpdate = import_attr(ev, "PositionUpdate"))
        || !(T_Result = import_attr(ev, "Result"))
        || !(reject_fn = import_attr("kalshi_platform.exchange.errors", "reject"))
        || !(heappush_fn = import_attr("heapq", "heappush")))
        return -1;
    PyObject *rx = import_attr("kalshi_platform.exchange.commands", "CLIENT_ID");
    if (rx == NULL || !(client_id_match = PyObject_GetAttrString(rx, "fullmatch"))) { Py_XDECREF(rx); return -1; }
    Py_DECREF(rx);
    PyObject *ms = import_attr("kalshi_platform.fixedpoint", "MAX_SIZE");
    if (ms == NULL) return -1;
    MAX_SIZE = PyLong_AsLongLong(ms);
    Py_DECREF(ms);
    if (MAX_SIZE == -1 && PyErr_Occurred()) return -1;
    CreateOrderType = (PyTypeObject *)import_attr("kalshi_platform.exchange.commands", "CreateOrder");
    CancelOrderType = (PyTypeObject *)import_attr("kalshi_platform.exchange.commands", "CancelOrder");
    if (!CreateOrderType || !CancelOrderType || !PyType_Check(CreateOrderType) || !PyType_Check(CancelOrderType))
        return -1;
    static const char *cx[2] = {"user_id", "order_id"};
    return offsets(CreateOrderType, CF_NAMES, N_CF, CF_OFF) < 0 ? -1
           : offsets(CancelOrderType, cx, 2, CX_OFF);
}

PyMODINIT_FUNC PyInit__core(void) {
    PyTypeObject *types[] = {&OrderType, &AccountType, &PositionType, &BookType, &MarketType, &CoreType};
    const char *names[] = {"Order", "Account", "Position", "Book", "MarketBase", "Core"};
    if (init_names() < 0 || init_imports() < 0) return NULL;
    PyObject *mod = PyModule_Create(&moduledef);
    if (mod == NULL) return NULL;
    for (int i = 0; i < 6; i++)
        if (PyType_Ready(types[i]) < 0 || PyModule_AddObjectRef(mod, names[i], (PyObject *)types[i]) < 0) {
            Py_DECREF(mod);
            return NULL;
        }
    order_from_func = PyObject_GetAttrString(mod, "_order_from");
    book_from_func = PyObject_GetAttrString(mod, "_book_from");
    if (order_from_func == NULL || book_from_func == NULL) { Py_DECREF(mod); return NULL; }
    return mod;
}
