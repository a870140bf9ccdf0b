/* kalshi_platform.trading._step: the backtest's per-frame step in C (docs/trading.md
 * "Backtest: the frame step"; kalshi_platform/trading/backtest.py builds it).
 *
 * FrameStep(frame, recv_ns=None, raw=None) is what the recording reader calls for every
 * decoded frame (``frame`` is the ``decoded`` marker when the plant already took it):
 *
 * 1. ``plant_frame(frame, recv_ns, raw)``: the ticker plant appends the frame's events to
 *    ``events`` (a list; nothing later in the step feeds the plant);
 * 2. ``stopped`` raises ``stopped_exc``; ``frames`` counts the frame; no events: done;
 * 3. the clock moves to the frame's time T (``recv_ns``, else the first event's int
 *    ``ts_ns``) when T is later: ``start_clock(T)`` the first time, ``clock.run_until(T-1)``
 *    when something is due before T, then ``clock.now = T``;
 * 4. every event is followed by the exchange core: a ``delta_type`` event of a market in
 *    ``known`` whose level the follower keeps only as a number (no materialized level at its
 *    price, the price below the side's ``watch``) is added to that side's ``ladder`` here
 *    (the size, dropped at 0 or below); any other delta goes to ``delta(ev)``, any other
 *    event to ``follow(ev)`` (the Python rules, follower.py / backtest.py);
 * 5. the events get stream seqs ``seq+1 ..``; with no feed latency and nothing due at the
 *    clock's now they go to ``on_market(seq, ev)`` at once, else to ``late(at, first,
 *    events)`` (scheduled at now + ``feed_latency``);
 * 6. ``events`` is emptied and what is due at now runs (``clock.run_until(now)``).
 *
 * ``lines(chunk, kind, other, start, end)`` is the reader's chunk path when the plant has its
 * compiled delta path (``plant_lines``, the plant's ``process_lines``; None when it has
 * not): one line (one frame) at a time through it, then steps 2-6 for a line the plant took,
 * the frame's time being the ``recv_ns`` its ``delta_type``/``bbo_type`` events carry; a line
 * the plant hands back goes to the reader's ``other``, which calls the step itself.
 *
 * ``start``/``end`` are byte offsets into ``chunk`` (ValueError when negative).
 *
 * ``yes``/``no``: the follower's ticker -> side maps (objects with ``ladder``, ``levels``,
 * ``watch``); ``delta_type``/``bbo_type`` must be tuple types and ``stopped_exc`` an
 * exception class (TypeError else). Times and sizes are Python ints (no C arithmetic on them). A Python exception
 * raised by any callback propagates (the events stay in ``events``: the venue empties it
 * before its next run).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

static PyObject *S_now, *S_run_until, *S_levels, *S_watch, *S_ladder, *S_heap, *S_yes, *S_no;
static PyObject *ZERO;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *plant_frame, *events, *clock, *heap, *yes, *no, *known, *delta, *follow;
    PyObject *start_clock, *late, *stopped_exc, *decoded, *delta_type, *on_market;
    PyObject *bbo_type, *plant_lines, *other;  /* other: the reader's, during lines() */
    int took_other;
    long long feed_latency, frames, seq;
    char stopped, timed;
} FrameStep;

/* 1 when the scheduler's first item is due at ``op`` ``t`` (Py_LE: at or before), 0 when
 * not (or nothing is scheduled), -1 on error. The heap holds (ts, n, fn) tuples. */
static int due(FrameStep *st, PyObject *t, int op) {
    if (PyList_GET_SIZE(st->heap) == 0) return 0;
    PyObject *item = PyList_GET_ITEM(st->heap, 0);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 1) {
        PyErr_SetString(PyExc_TypeError, "scheduler item is not a (ts, n, fn) tuple");
        return -1;
    }
    Py_INCREF(item);
    int rc = PyObject_RichCompareBool(PyTuple_GET_ITEM(item, 0), t, op);
    Py_DECREF(item);
    return rc;
}

static int call_discard(PyObject *fn, PyObject *const *args, size_t n) {
    PyObject *r = PyObject_Vectorcall(fn, args, n, NULL);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

static int run_until(FrameStep *st, PyObject *t) {
    PyObject *r = PyObject_CallMethodOneArg(st->clock, S_run_until, t);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* A delta kept as a number: 0 applied here, 1 the Python rule must take it, -1 error. */
static int number_delta(FrameStep *st, PyObject *ev) {
    PyObject *ticker = PyTuple_GET_ITEM(ev, 0), *side = PyTuple_GET_ITEM(ev, 4);
    PyObject *price = PyTuple_GET_ITEM(ev, 5), *delta = PyTuple_GET_ITEM(ev, 6);
    PyObject *sides;
    if (side == S_yes) sides = st->yes;
    else if (side == S_no) sides = st->no;
    else if (!PyUnicode_CheckExact(side)) return 1;  /* not a side: the Python rule */
    else if (PyUnicode_Compare(side, S_yes) == 0) sides = st->yes;
    else if (PyErr_Occurred()) return -1;
    else if (PyUnicode_Compare(side, S_no) == 0) sides = st->no;
    else return PyErr_Occurred() ? -1 : 1;
    PyObject *s = PyDict_GetItemWithError(sides, ticker);
    if (s == NULL) return PyErr_Occurred() ? -1 : 1;
    Py_INCREF(s);
    int rc = -1;
    PyObject *levels = NULL, *watch = NULL, *ladder = NULL, *q = NULL;
    if ((levels = PyObject_GetAttr(s, S_levels)) == NULL) goto done;
    if (!PyDict_Check(levels)) { rc = 1; goto done; }
    PyObject *lv = PyDict_GetItemWithError(levels, price);
    if (lv != NULL) { rc = 1; goto done; }
    if (PyErr_Occurred()) goto done;
    if ((watch = PyObject_GetAttr(s, S_watch)) == NULL) goto done;
    int below = PyObject_RichCompareBool(price, watch, Py_LT);
    if (below < 0) goto done;
    if (!below) { rc = 1; goto done; }
    if ((ladder = PyObject_GetAttr(s, S_ladder)) == NULL) goto done;
    if (!PyDict_Check(ladder)) { rc = 1; goto done; }
    PyObject *cur = PyDict_GetItemWithError(ladder, price);
    if (cur == NULL && PyErr_Occurred()) goto done;
    if ((q = PyNumber_Add(cur != NULL ? cur : ZERO, delta)) == NULL) goto done;
    int positive = PyObject_RichCompareBool(q, ZERO, Py_GT);
    if (positive < 0) goto done;
    if (positive) {
        if (PyDict_SetItem(ladder, price, q) < 0) goto done;
    } else if (cur != NULL) {
        if (PyDict_DelItem(ladder, price) < 0) goto done;
    }
    rc = 0;
done:
    Py_XDECREF(q);
    Py_XDECREF(ladder);
    Py_XDECREF(watch);
    Py_XDECREF(levels);
    Py_DECREF(s);
    return rc;
}

/* Step 4 for one event. */
static int follow_one(FrameStep *st, PyObject *ev) {
    if ((PyObject *)Py_TYPE(ev) == st->delta_type && PyTuple_GET_SIZE(ev) == 8) {
        int listed = PySet_Contains(st->known, PyTuple_GET_ITEM(ev, 0));
        if (listed < 0) return -1;
        if (listed) {
            int rc = number_delta(st, ev);
            if (rc <= 0) return rc;
            return call_discard(st->delta, &ev, 1);
        }
    }
    return call_discard(st->follow, &ev, 1);
}

/* Step 3: the frame's time (a new reference or NULL for none; *err set on error). */
static PyObject *frame_time(FrameStep *st, PyObject *recv_ns, int *err) {
    *err = 0;
    if (recv_ns != Py_None) {
        Py_INCREF(recv_ns);
        return recv_ns;
    }
    PyObject *ev0 = PyList_GET_ITEM(st->events, 0);
    Py_INCREF(ev0);
    PyObject *ts = PySequence_GetItem(ev0, 1);
    Py_DECREF(ev0);
    if (ts == NULL) {
        *err = 1;
        return NULL;
    }
    if (PyLong_CheckExact(ts)) return ts;
    Py_DECREF(ts);
    return NULL;
}

/* Step 3: move the clock to t; returns the clock's now (new reference) or NULL. */
static PyObject *advance(FrameStep *st, PyObject *t) {
    PyObject *now = PyObject_GetAttr(st->clock, S_now);
    if (now == NULL || t == NULL) return now;
    int later = PyObject_RichCompareBool(t, now, Py_GT);
    if (later == 0) return now;
    Py_DECREF(now);
    if (later < 0) return NULL;
    if (!st->timed && call_discard(st->start_clock, &t, 1) < 0) return NULL;
    int early = due(st, t, Py_LT);
    if (early < 0) return NULL;
    if (early) {
        PyObject *one = PyLong_FromLong(1);
        if (one == NULL) return NULL;
        PyObject *before = PyNumber_Subtract(t, one);
        Py_DECREF(one);
        if (before == NULL) return NULL;
        int rc = run_until(st, before);
        Py_DECREF(before);
        if (rc < 0) return NULL;
    }
    if (PyObject_SetAttr(st->clock, S_now, t) < 0) return NULL;
    Py_INCREF(t);
    return t;
}

/* Step 5: the events to the strategy. */
static int deliver(FrameStep *st, PyObject *now, Py_ssize_t n, long long first) {
    int busy = due(st, now, Py_LE);
    if (busy < 0) return -1;
    if (st->on_market == NULL) {
        PyErr_SetString(PyExc_AttributeError, "FrameStep.on_market is not set");
        return -1;
    }
    if (st->feed_latency == 0 && !busy) {
        PyObject *fn = st->on_market;  /* held: a callback may set another one */
        Py_INCREF(fn);
        int rc = 0;
        for (Py_ssize_t i = 0; rc == 0 && i < n && i < PyList_GET_SIZE(st->events); i++) {
            PyObject *args[2] = {PyLong_FromLongLong(first + i), PyList_GET_ITEM(st->events, i)};
            if (args[0] == NULL) {
                rc = -1;
                break;
            }
            Py_INCREF(args[1]);
            rc = call_discard(fn, args, 2);
            Py_DECREF(args[1]);
            Py_DECREF(args[0]);
        }
        Py_DECREF(fn);
        return rc;
    }
    PyObject *lat = PyLong_FromLongLong(st->feed_latency);
    if (lat == NULL) return -1;
    PyObject *at = PyNumber_Add(now, lat), *seq = NULL, *evs = NULL;
    Py_DECREF(lat);
    int rc = -1;
    if (at != NULL && (seq = PyLong_FromLongLong(first)) != NULL &&
        (evs = PyList_GetSlice(st->events, 0, n)) != NULL) {
        PyObject *args[3] = {at, seq, evs};
        rc = call_discard(st->late, args, 3);
    }
    Py_XDECREF(evs);
    Py_XDECREF(seq);
    Py_XDECREF(at);
    return rc;
}

/* -1 (RuntimeError) once tp_clear emptied the step (a collected cycle's other objects may
 * still call it while the cycle is torn down), else 0. */
static int cleared(FrameStep *st) {
    if (st->events != NULL) return 0;
    PyErr_SetString(PyExc_RuntimeError, "FrameStep was cleared (garbage collected)");
    return -1;
}

static PyObject *step_after_plant(FrameStep *st, PyObject *recv_ns) {
    if (st->stopped) {
        PyErr_SetNone(st->stopped_exc);
        return NULL;
    }
    st->frames++;
    Py_ssize_t n = PyList_GET_SIZE(st->events);
    if (n == 0) Py_RETURN_NONE;
    int err;
    PyObject *t = frame_time(st, recv_ns, &err);
    if (err) return NULL;
    PyObject *now = advance(st, t);
    Py_XDECREF(t);
    if (now == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n && i < PyList_GET_SIZE(st->events); i++) {
        PyObject *ev = PyList_GET_ITEM(st->events, i);
        Py_INCREF(ev);
        int rc = follow_one(st, ev);
        Py_DECREF(ev);
        if (rc < 0) goto fail;
    }
    long long first = st->seq + 1;
    st->seq += n;
    if (deliver(st, now, n, first) < 0) goto fail;
    if (PyList_SetSlice(st->events, 0, PyList_GET_SIZE(st->events), NULL) < 0) goto fail;
    int busy = due(st, now, Py_LE);
    if (busy < 0 || (busy && run_until(st, now) < 0)) goto fail;
    Py_DECREF(now);
    Py_RETURN_NONE;
fail:
    Py_DECREF(now);
    return NULL;
}

/* The receipt time the frame's delta or BBO events carry (a new reference; None if none). */
static PyObject *events_recv(FrameStep *st) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(st->events); i++) {
        PyObject *ev = PyList_GET_ITEM(st->events, i);
        PyObject *t = (PyObject *)Py_TYPE(ev);
        if ((t == st->delta_type || t == st->bbo_type) && PyTuple_GET_SIZE(ev) > 7) {
            PyObject *recv = PyTuple_GET_ITEM(ev, 7);
            Py_INCREF(recv);
            return recv;
        }
    }
    Py_RETURN_NONE;
}

/* lines(chunk, kind, other, start=0, end=None): the reader's chunk of whole lines through
 * plant_lines (the plant's process_lines) one line at a time, each line the plant took
 * followed by the step (its time: events_recv); a line the plant hands back goes to
 * other(line) through _other, which notes it (the reader steps it by calling the step).
 * Returns the frames fed. */
static PyObject *step_lines(FrameStep *st, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || nargs > 5 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "lines(chunk: bytes, kind, other, start=0, end=None)");
        return NULL;
    }
    if (cleared(st) < 0) return NULL;
    if (st->plant_lines == Py_None) {
        PyErr_SetString(PyExc_TypeError, "the plant has no process_lines");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]), pos = 0, end = size;
    if (nargs > 3 && (pos = PyLong_AsSsize_t(args[3])) == -1 && PyErr_Occurred()) return NULL;
    if (nargs > 4 && args[4] != Py_None && (end = PyLong_AsSsize_t(args[4])) == -1 &&
        PyErr_Occurred())
        return NULL;
    if (pos < 0 || end < 0) {  /* buf + pos must stay inside the chunk */
        PyErr_SetString(PyExc_ValueError, "lines(): start and end must be >= 0");
        return NULL;
    }
    if (end < size) size = end;
    PyObject *mine = PyObject_GetAttrString((PyObject *)st, "_other");
    if (mine == NULL) return NULL;
    PyObject *saved = st->other;
    Py_INCREF(args[2]);
    st->other = args[2];
    const char *buf = PyBytes_AS_STRING(args[0]);
    Py_ssize_t fed = 0;
    PyObject *res = NULL;
    while (pos < size) {
        const char *nl = memchr(buf + pos, '\n', (size_t)(size - pos));
        Py_ssize_t stop = nl != NULL ? (Py_ssize_t)(nl - buf) + 1 : size;
        PyObject *a = PyLong_FromSsize_t(pos), *b = PyLong_FromSsize_t(stop);
        PyObject *r = NULL;
        if (a != NULL && b != NULL) {
            PyObject *call[5] = {args[0], args[1], mine, a, b};
            st->took_other = 0;
            r = PyObject_Vectorcall(st->plant_lines, call, 5, NULL);
        }
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (r == NULL) goto done;
        Py_ssize_t took = PyLong_AsSsize_t(r);
        Py_DECREF(r);
        if (took == -1 && PyErr_Occurred()) goto done;
        if (took < 0 || took > PY_SSIZE_T_MAX - fed) {
            PyErr_Format(PyExc_ValueError, "process_lines returned %zd frames", took);
            goto done;
        }
        fed += took;
        if (took && !st->took_other) {
            PyObject *recv = events_recv(st);
            if (recv == NULL) goto done;
            PyObject *ok = step_after_plant(st, recv);
            Py_DECREF(recv);
            if (ok == NULL) goto done;
            Py_DECREF(ok);
        }
        pos = stop;
    }
    res = PyLong_FromSsize_t(fed);
done:
    Py_DECREF(mine);
    Py_XSETREF(st->other, saved);
    return res;
}

static PyObject *step_other(FrameStep *st, PyObject *line) {
    if (st->other == NULL) {
        PyErr_SetString(PyExc_TypeError, "_other outside lines()");
        return NULL;
    }
    st->took_other = 1;
    PyObject *fn = st->other;  /* held for the call */
    Py_INCREF(fn);
    PyObject *r = PyObject_CallOneArg(fn, line);
    Py_DECREF(fn);
    return r;
}

static PyMethodDef step_methods[] = {
    {"lines", (PyCFunction)(void (*)(void))step_lines, METH_FASTCALL,
     "lines(chunk, kind, other, start=0, end=None): the reader's chunk a line at a time "
     "through the plant's process_lines, each line then stepped; returns the frames fed"},
    {"_other", (PyCFunction)step_other, METH_O, "a line the plant hands back (lines())"},
    {NULL, NULL, 0, NULL},
};

static PyObject *step_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames) {
    FrameStep *st = (FrameStep *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) {
        PyErr_SetString(PyExc_TypeError, "FrameStep takes positional arguments only");
        return NULL;
    }
    if (nargs < 1 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "FrameStep(frame, recv_ns=None, raw=None)");
        return NULL;
    }
    if (cleared(st) < 0) return NULL;
    PyObject *recv_ns = nargs > 1 ? args[1] : Py_None;
    if (args[0] != st->decoded) {
        PyObject *call[3] = {args[0], recv_ns, nargs > 2 ? args[2] : Py_None};
        if (call_discard(st->plant_frame, call, 3) < 0) return NULL;
    }
    return step_after_plant(st, recv_ns);
}

static int step_traverse(FrameStep *st, visitproc visit, void *arg) {
    Py_VISIT(st->plant_frame);
    Py_VISIT(st->events);
    Py_VISIT(st->clock);
    Py_VISIT(st->heap);
    Py_VISIT(st->yes);
    Py_VISIT(st->no);
    Py_VISIT(st->known);
    Py_VISIT(st->delta);
    Py_VISIT(st->follow);
    Py_VISIT(st->start_clock);
    Py_VISIT(st->late);
    Py_VISIT(st->stopped_exc);
    Py_VISIT(st->decoded);
    Py_VISIT(st->delta_type);
    Py_VISIT(st->on_market);
    Py_VISIT(st->bbo_type);
    Py_VISIT(st->plant_lines);
    Py_VISIT(st->other);
    return 0;
}

static int step_clear(FrameStep *st) {
    Py_CLEAR(st->plant_frame);
    Py_CLEAR(st->events);
    Py_CLEAR(st->clock);
    Py_CLEAR(st->heap);
    Py_CLEAR(st->yes);
    Py_CLEAR(st->no);
    Py_CLEAR(st->known);
    Py_CLEAR(st->delta);
    Py_CLEAR(st->follow);
    Py_CLEAR(st->start_clock);
    Py_CLEAR(st->late);
    Py_CLEAR(st->stopped_exc);
    Py_CLEAR(st->decoded);
    Py_CLEAR(st->delta_type);
    Py_CLEAR(st->on_market);
    Py_CLEAR(st->bbo_type);
    Py_CLEAR(st->plant_lines);
    Py_CLEAR(st->other);
    return 0;
}

static void step_dealloc(FrameStep *st) {
    PyObject_GC_UnTrack(st);
    step_clear(st);
    Py_TYPE(st)->tp_free((PyObject *)st);
}

static PyObject *step_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *names[] = {"plant_frame", "events", "clock", "yes", "no", "known", "delta",
                            "follow", "start_clock", "late", "stopped_exc", "decoded",
                            "delta_type", "on_market", "bbo_type", "plant_lines",
                            "feed_latency", NULL};
    PyObject *o[16];
    long long lat;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "$OO!OO!O!O!OOOOOOO!OO!OL:FrameStep", names,
                                     &o[0], &PyList_Type, &o[1], &o[2], &PyDict_Type, &o[3],
                                     &PyDict_Type, &o[4], &PySet_Type, &o[5], &o[6], &o[7],
                                     &o[8], &o[9], &o[10], &o[11], &PyType_Type, &o[12],
                                     &o[13], &PyType_Type, &o[14], &o[15], &lat))
        return NULL;
    /* the step reads delta_type / bbo_type events with PyTuple_GET_SIZE / _GET_ITEM */
    if (!PyType_IsSubtype((PyTypeObject *)o[12], &PyTuple_Type) ||
        !PyType_IsSubtype((PyTypeObject *)o[14], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "delta_type and bbo_type must be tuple types");
        return NULL;
    }
    if (!PyExceptionClass_Check(o[10])) {
        PyErr_SetString(PyExc_TypeError, "stopped_exc must be an exception class");
        return NULL;
    }
    PyObject *heap = PyObject_GetAttr(o[2], S_heap);
    if (heap == NULL) return NULL;
    if (!PyList_CheckExact(heap)) {
        Py_DECREF(heap);
        PyErr_SetString(PyExc_TypeError, "clock.heap must be a list");
        return NULL;
    }
    FrameStep *st = (FrameStep *)type->tp_alloc(type, 0);
    if (st == NULL) {
        Py_DECREF(heap);
        return NULL;
    }
    st->vectorcall = step_vectorcall;
    PyObject **slot[16] = {&st->plant_frame, &st->events, &st->clock, &st->yes, &st->no,
                           &st->known, &st->delta, &st->follow, &st->start_clock, &st->late,
                           &st->stopped_exc, &st->decoded, &st->delta_type, &st->on_market,
                           &st->bbo_type, &st->plant_lines};
    for (int i = 0; i < 16; i++) {
        Py_INCREF(o[i]);
        *slot[i] = o[i];
    }
    st->heap = heap;
    st->feed_latency = lat;
    return (PyObject *)st;
}

static PyMemberDef step_members[] = {
    {"frames", T_LONGLONG, offsetof(FrameStep, frames), READONLY, "frames stepped"},
    {"seq", T_LONGLONG, offsetof(FrameStep, seq), READONLY,
     "stream seq of the last event handed on (= events so far)"},
    {"stopped", T_BOOL, offsetof(FrameStep, stopped), 0, "raise stopped_exc at the next frame"},
    {"timed", T_BOOL, offsetof(FrameStep, timed), 0, "the clock was started"},
    {"on_market", T_OBJECT_EX, offsetof(FrameStep, on_market), 0, "on_market(seq, ev)"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject FrameStepType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "kalshi_platform.trading._step.FrameStep",
    .tp_basicsize = sizeof(FrameStep),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "The backtest's per-frame step (see the module docstring).",
    .tp_new = step_new,
    .tp_dealloc = (destructor)step_dealloc,
    .tp_traverse = (traverseproc)step_traverse,
    .tp_clear = (inquiry)step_clear,
    .tp_vectorcall_offset = offsetof(FrameStep, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_members = step_members,
    .tp_methods = step_methods,
};

static struct PyModuleDef step_module = {
    PyModuleDef_HEAD_INIT, "kalshi_platform.trading._step",
    "The backtest's per-frame step in C (see FrameStep).", -1, NULL, NULL, NULL, NULL, NULL,
};

static int intern(PyObject **dst, const char *s) {
    *dst = PyUnicode_InternFromString(s);
    return *dst == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__step(void) {
    if (intern(&S_now, "now") < 0 || intern(&S_run_until, "run_until") < 0 ||
        intern(&S_levels, "levels") < 0 || intern(&S_watch, "watch") < 0 ||
        intern(&S_ladder, "ladder") < 0 || intern(&S_heap, "heap") < 0 ||
        intern(&S_yes, "yes") < 0 || intern(&S_no, "no") < 0)
        return NULL;
    if ((ZERO = PyLong_FromLong(0)) == NULL) return NULL;
    if (PyType_Ready(&FrameStepType) < 0) return NULL;
    PyObject *m = PyModule_Create(&step_module);
    if (m == NULL) return NULL;
    Py_INCREF(&FrameStepType);
    if (PyModule_AddObject(m, "FrameStep", (PyObject *)&FrameStepType) < 0) {
        Py_DECREF(&FrameStepType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
