"""Figures of ``bench fanout`` (:mod:`kalshi_platform.bench.fanout`): per-run analysis of what
the subscriber processes saw, the checks, the targets and the tables.

Units: latencies in µs (``int``), rates in events (``ev``) or messages (``msg``) per second
per subscriber (``int``), times in s. A ratio is ``ours / baseline`` (for latency > 1 means
slower than the baseline, for rates > 1 means faster).
"""

from __future__ import annotations

from typing import Any, Sequence

from kalshi_platform.bench.fanout_systems import LABELS, SHORT, TRANSPORTS

RATIO_BASES = ("zmq", "mpq")


# -- one run ---------------------------------------------------------------------------------


def _expand(rec: Any) -> tuple[Any, Any]:
    """``[start, count, t]`` rows → per-event ``(seq, t)`` arrays."""
    import numpy as np

    cnt = rec[:, 1]
    total = int(cnt.sum())
    offsets = np.cumsum(cnt) - cnt
    seqs = np.repeat(rec[:, 0] - offsets, cnt) + np.arange(total, dtype=np.int64)
    return seqs, np.repeat(rec[:, 2], cnt)


def _segments(rec: Any) -> tuple[tuple[int, int], ...]:
    """Contiguous runs ``[a, b)`` of seqs in receipt order."""
    import numpy as np

    if not len(rec):
        return ()
    ends = rec[:, 0] + rec[:, 1]
    cut = np.flatnonzero(rec[1:, 0] != ends[:-1]) + 1
    firsts = np.concatenate(([0], cut))
    lasts = np.concatenate((cut - 1, [len(rec) - 1]))
    return tuple((int(rec[a, 0]), int(ends[b])) for a, b in zip(firsts, lasts))


def _pct(lat: Any) -> dict[str, int | None]:
    import numpy as np

    if not len(lat):
        return {"p50": None, "p99": None, "p999": None, "max": None, "n": 0}
    p = np.percentile(lat, [50, 99, 99.9])
    return {"p50": int(round(p[0])), "p99": int(round(p[1])), "p999": int(round(p[2])),
            "max": int(round(float(lat.max()))), "n": int(len(lat))}


def _subscriber(res: dict, commit: Any, n: int, t0: int, warmup: int, wl: Any) -> dict:
    """One subscriber's figures and checks; ``lat`` (µs array) is returned under ``_lat``.

    ``ok``: every event it got equals the one published (digest), none twice, none out of
    order (``backwards``), none outside the run; loss (``lost``, seq holes counted in
    ``order_breaks``) is a figure, not a failure."""
    import numpy as np

    if res.get("error"):
        raise RuntimeError(f"subscriber failed: {res['error']}\n{res.get('trace', '')}")
    rec = np.frombuffer(res["records"], dtype=np.int64).reshape(-1, 3)
    seqs, t = _expand(rec)
    valid = (seqs >= 1) & (seqs <= n)
    uniq = int(np.unique(seqs[valid]).size)
    keep = valid & (seqs > warmup)
    lat = (t[keep] - commit[seqs[keep] - 1]) / 1000.0
    span = (int(rec[-1, 2]) - t0) / 1e9 if len(rec) else 0.0
    step = rec[1:, 0] - (rec[:-1, 0] + rec[:-1, 1]) if len(rec) else rec[:0, 0]
    breaks, backwards = int(np.count_nonzero(step)), int(np.count_nonzero(step < 0))
    top = int(seqs.max()) if len(seqs) else 0
    tail_lost = res.get("end_seq") is not None and res["end_seq"] > top
    digest_ok = None
    if res.get("digest") is not None:
        digest_ok = res["digest"] == wl.digest(_segments(rec))
    out = {"delivered": uniq, "lost": n - uniq, "duplicates": int(valid.sum()) - uniq,
           "order_breaks": breaks, "backwards": backwards, "messages": int(len(rec)),
           "ev_per_s": int(uniq / span) if span > 0 else None,
           "msg_per_s": int(len(rec) / span) if span > 0 else None,
           "latency_us": _pct(lat), "gap_msgs": res["gap_msgs"], "snapshots": res["snapshots"],
           "ended": res["ended"], "end_told_tail_lost": bool(tail_lost),
           "digest_ok": digest_ok,
           "cpu_us_per_event": round(res["cpu_s"] * 1e6 / uniq, 2) if uniq else None,
           "_lat": lat}
    out["ok"] = bool(digest_ok is not False and out["duplicates"] == 0 and backwards == 0
                     and int(valid.sum()) == len(seqs))
    return out


def analyze(name: str, results: Sequence[dict], d: Any, wl: Any, *, readers: int, stall: bool,
            rate: float | None, t_sent: int, stats: dict, warmup: int) -> dict[str, Any]:
    """The figures of one run (see :func:`kalshi_platform.bench.fanout.run_once`): per
    subscriber and pooled over the readers (the stalled one apart)."""
    import numpy as np

    n = d.events
    commit = np.repeat(np.array(d.times, dtype=np.int64), np.array(d.lens, dtype=np.int64))
    subs = [_subscriber(r, commit, n, d.t0, warmup, wl) for r in results]
    rd, st = subs[:readers], (subs[readers] if stall else None)
    lat = np.concatenate([s.pop("_lat") for s in subs[:readers]])
    if st is not None:
        st.pop("_lat")
        st["told"] = bool(st["gap_msgs"] or st["order_breaks"] or st["end_told_tail_lost"]
                          or not st["lost"])
    rates = [s["ev_per_s"] or 0 for s in rd]
    secs = (d.t_end - d.t0) / 1e9
    return {
        "system": name, "label": LABELS[name], "mode": "paced" if rate else "flat",
        "subs": readers, "stalled": stall, "rate": rate, "events": n, "batches": len(d.lens),
        "plant_ev_per_s": int(n / secs) if secs > 0 else None,
        "send_ev_per_s": int(n / ((t_sent - d.t0) / 1e9)) if t_sent > d.t0 else None,
        "plant_worst_late_ms": round(d.worst_late_ns / 1e6, 2) if rate else None,
        "publisher_cpu_us_per_event": round(d.cpu_s * 1e6 / n, 2) if n else None,
        "publisher_cores": round(d.cpu_s / ((t_sent - d.t0) / 1e9), 2) if t_sent > d.t0 else None,
        "latency_us": _pct(lat),
        "ev_per_s_min": min(rates), "ev_per_s_median": int(np.median(rates)),
        "msg_per_s_median": int(np.median([s["msg_per_s"] or 0 for s in rd])),
        "sub_cpu_us_per_event": (round(float(np.median([s["cpu_us_per_event"] for s in rd
                                                          if s["cpu_us_per_event"]])), 2)
                                 if any(s["cpu_us_per_event"] for s in rd) else None),
        "lost_readers": sum(s["lost"] for s in rd), "lost_max": max(s["lost"] for s in rd),
        "readers": rd, "stalled_sub": st, "transport": stats,
        "readers_ended": all(s["ended"] for s in rd),
        "ok": all(s["ok"] for s in subs),
    }


# -- figures, checks, targets ------------------------------------------------------------------


def _find(runs: list[dict], system: str, subs: int) -> list[dict]:
    """Every run (one per repeat) of ``system`` to ``subs`` subscribers."""
    return [r for r in runs if r["system"] == system and r["subs"] == subs]


def _median(vals: list) -> Any:
    """The median of the repeats' values (bools: all true; ``None`` if any is missing)."""
    if not vals or any(v is None for v in vals):
        return None
    if all(isinstance(v, bool) for v in vals):
        return all(vals)
    v = sorted(vals)[(len(vals) - 1) // 2]  # lower median: one of the measured values
    return v


def _figure(title: str, unit: str, runs: list[dict], subs: int, names: Sequence[str],
            get: Any, better: str, target: str | None = None) -> dict[str, Any]:
    """One figure: per system the median over repeats (``values``), every repeat's value
    (``repeats``) and ``ratios`` ours / baseline of the medians."""
    every = {x: [get(r) for r in _find(runs, x, subs)] for x in names}
    values = {x: _median(v) for x, v in every.items()}
    ratios = {}
    for x in names:
        if x in TRANSPORTS:
            v = values[x]
            ratios[x] = {b: (round(v / values[b], 2) if isinstance(values.get(b), (int, float))
                             and not isinstance(v, bool) and values[b] and v is not None
                             else None) for b in RATIO_BASES}
    return {"figure": title, "unit": unit, "subs": subs, "better": better, "values": values,
            "repeats": every, "ratios": ratios, "target": target}


def _cpu_figures(mode: str, runs: list[dict], s: int, names: Sequence[str]) -> list[dict]:
    return [_figure(f"publisher process CPU, {mode}, {s} sub", "cores", runs, s, names,
                    lambda r: r["publisher_cores"], "lower"),
            _figure(f"subscriber CPU per event (median), {mode}, {s} sub", "µs", runs, s,
                    names, lambda r: r["sub_cpu_us_per_event"], "lower")]


def figures_of(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Every figure with its values per system and ratios ``ours / baseline``."""
    cfg = out["config"]
    names = cfg["transports"] + cfg["baselines"]
    rate = f"{cfg['rate']:,.0f}"
    figs = []
    for s in cfg["subscribers"]:
        L = out["latency"]
        for k, lab in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            tgt = f"<= {cfg['target_p99_us']:,} µs" if (k == "p99" and s == 4) else None
            figs.append(_figure(f"latency {lab}, paced {rate} ev/s, {s} sub", "µs", L, s,
                                names, lambda r, k=k: r["latency_us"][k], "lower", tgt))
        figs.append(_figure(f"lost, paced, {s} sub", "events", L, s, names,
                            lambda r: r["lost_readers"], "lower"))
        figs += _cpu_figures("paced", L, s, names)
    for s in cfg["subscribers"]:
        T = out["throughput"]
        tgt = f">= {cfg['target_ev_per_s']:,}" if s == 4 else None
        figs.append(_figure(f"delivered per sub (min), flat out, {s} sub", "ev/s", T, s, names,
                            lambda r: r["ev_per_s_min"], "higher", tgt))
        figs.append(_figure(f"messages per sub (median), flat out, {s} sub", "msg/s", T, s,
                            names, lambda r: r["msg_per_s_median"], "higher"))
        figs.append(_figure(f"lost per sub (max), flat out, {s} sub", "events", T, s, names,
                            lambda r: r["lost_max"], "lower", "0" if s == 4 else None))
        figs.append(_figure(f"publisher sent, flat out, {s} sub", "ev/s", T, s, names,
                            lambda r: r["send_ev_per_s"], "higher"))
        figs += _cpu_figures("flat out", T, s, names)
    if out.get("stall"):
        s = max(cfg["subscribers"])
        L = [r for r in out["stall"] if not r["stalled"]]
        S = [r for r in out["stall"] if r["stalled"]]
        for title, unit, get, better in (
                ("plant worst lateness vs pace", "ms", lambda r: r["plant_worst_late_ms"],
                 "lower"),
                ("publisher sent", "ev/s", lambda r: r["send_ev_per_s"], "higher"),
                ("readers latency p50", "µs", lambda r: r["latency_us"]["p50"], "lower"),
                ("readers latency p99", "µs", lambda r: r["latency_us"]["p99"], "lower"),
                ("readers delivered per sub (min)", "ev/s", lambda r: r["ev_per_s_min"],
                 "higher"),
                ("readers lost (max)", "events", lambda r: r["lost_max"], "lower")):
            figs.append(_figure(f"stall: {title}, paced, {s} readers", unit, L, s, names, get,
                                better))
            figs.append(_figure(f"stall: {title}, paced, {s} readers + 1 stalled", unit, S, s,
                                names, get, better))
        figs.append(_figure("stall: stalled sub lost", "events", S, s, names,
                            lambda r: r["stalled_sub"]["lost"], "-"))
        figs.append(_figure("stall: stalled sub told of its loss (gap, seq hole, END) or lost "
                            "none", "", S, s, names,
                            lambda r: r["stalled_sub"]["told"], "-"))
    return figs


def checks_of(out: dict[str, Any]) -> dict[str, Any]:
    """Correctness over every run: digests, duplicates, order, END, loss of readers."""
    runs = out["latency"] + out["throughput"] + out["stall"]
    failed = [f"{r['mode']} {r['system']} {r['subs']} sub{' +stalled' if r['stalled'] else ''}"
              for r in runs if not r["ok"]]
    digests = sum(1 for r in runs for s in r["readers"] if s["digest_ok"])
    lossy = [f"{r['mode']} {r['system']} {r['subs']} sub: {r['lost_readers']:,} lost"
             for r in runs if r["lost_readers"]]
    ls = out.get("loop_stall")
    unended = [f"{r['mode']} {r['system']} {r['subs']} sub" for r in runs
               if not r["readers_ended"]]
    return {"runs": len(runs), "all_ok": not failed and (ls is None or ls["rows_equal"]),
            "failed_runs": failed, "reader_digests_equal": digests,
            "runs_with_reader_loss": lossy, "runs_where_a_reader_missed_end": unended,
            "loop_stall_rows_equal": None if ls is None else ls["rows_equal"]}


def targets_of(out: dict[str, Any], p99_us: int, ev_per_s: int) -> dict[str, Any]:
    """Issue 10 "Targets" per system: paced p99 with 4 subscribers, flat-out delivery and loss
    with 4 subscribers (medians over repeats; empty when 4 was not among the subscriber
    counts)."""
    cfg = out["config"]
    res: dict[str, Any] = {"p99_us_max": p99_us, "ev_per_s_min": ev_per_s, "systems": {}}
    if 4 not in cfg["subscribers"]:
        return res
    for x in cfg["transports"] + cfg["baselines"]:
        lat, thr = _find(out["latency"], x, 4), _find(out["throughput"], x, 4)
        p99 = _median([r["latency_us"]["p99"] for r in lat])
        rate = _median([r["ev_per_s_min"] for r in thr])
        lost = _median([r["lost_max"] for r in thr])
        res["systems"][x] = {
            "p99_us": p99, "p99_ok": p99 is not None and p99 <= p99_us,
            "ev_per_s_min": rate, "lost_max": lost,
            "throughput_ok": rate is not None and rate >= ev_per_s and lost == 0}
    return res


# -- tables ----------------------------------------------------------------------------------


def _cell(fig: dict, x: str) -> str:
    v = fig["values"].get(x)
    if v is None:
        return "-"
    if isinstance(v, bool):
        s = "yes" if v else "no"
    elif isinstance(v, float):
        s = f"{v:,.2f}"
    else:
        s = f"{v:,}"
    r = fig["ratios"].get(x)
    if r and any(v is not None for v in r.values()):
        s += " (" + " / ".join("-" if r[b] is None else f"{r[b]:.2f}x" for b in RATIO_BASES) + ")"
    return s


def render(out: dict[str, Any], console: Any) -> None:
    """The tables: every figure per system with ratios, the targets, the loop stall."""
    from rich.table import Table

    cfg, inp = out["config"], out["input"]
    names = cfg["transports"] + cfg["baselines"]
    rep = cfg["repeat"]
    t = Table(title=(f"bench fanout: {inp['events']:,} real plant events "
                     f"({inp['events_per_batch']} per commit, {inp['mean_event_bytes']} B each "
                     f"in msgpack), {out['elapsed_s']} s"
                     + (f", median of {rep} repeats" if rep > 1 else "")
                     + "; ours (ours/zmq batch / ours/mp.Queue)"), title_justify="left")
    t.add_column("figure")
    t.add_column("unit")
    for x in names:
        t.add_column(SHORT[x], justify="right")
    t.add_column("target", justify="right")
    for f in out["figures"]:
        t.add_row(f["figure"], f["unit"], *[_cell(f, x) for x in names], f["target"] or "")
    console.print(t)
    console.print("  " + "; ".join(f"{SHORT[x]} = {LABELS[x]}" for x in names)
                  + f"; flat out: publisher capped at {cfg['flat_cap_s']} s; latency leaves out "
                  f"the first {cfg['warmup_events']} events of a run", highlight=False)
    tg = out["targets"]
    if tg["systems"]:
        tt = Table(title="issue 10 targets (4 subscribers)", title_justify="left")
        for c in ("system", "p99 µs (<= %d)" % tg["p99_us_max"], "ok",
                  "ev/s per sub (>= %s)" % f"{tg['ev_per_s_min']:,}", "lost", "ok"):
            tt.add_column(c, justify="left" if c == "system" else "right")
        for x, v in tg["systems"].items():
            tt.add_row(LABELS[x], str(v["p99_us"]), "PASS" if v["p99_ok"] else "FAIL",
                       f"{v['ev_per_s_min']:,}" if v["ev_per_s_min"] is not None else "-",
                       str(v["lost_max"]), "PASS" if v["throughput_ok"] else "FAIL")
        console.print(tt)
    if out.get("loop_stall"):
        _render_loop(out["loop_stall"], console)
    c = out["checks"]
    console.print(f"checks: {c['runs']} runs, {c['reader_digests_equal']} subscriber digests "
                  f"equal to the published events; failed: {c['failed_runs'] or 'none'}; "
                  f"runs where a reader lost events: {c['runs_with_reader_loss'] or 'none'}",
                  highlight=False, markup=False)


def _render_loop(ls: dict[str, Any], console: Any) -> None:
    """The loop-stall table (:mod:`kalshi_platform.bench.fanout_loop`)."""
    from rich.table import Table

    lt = Table(title=(f"read loop while Parquet writes: {ls['frames']:,} frames paced at "
                      f"{ls['rate']:,.0f}/s, batch_rows {ls['batch_rows']:,}, fsync"),
               title_justify="left")
    for c in ("design", "worst call ms", "p99.9 call ms", "worst late ms", "writes in run",
              "write s in run", "worst gc ms (loop / other)", "close s", "rows"):
        lt.add_column(c, justify="left" if c == "design" else "right")
    for k in ("inline", "stream"):
        v = ls[k]
        lt.add_row(v["design"], f"{v['worst_call_ms']:.2f}", f"{v['p999_call_ms']:.2f}",
                   f"{v['worst_late_ms']:.2f}", str(v["writes_in_run"]),
                   f"{v['write_s_in_run']:.2f}",
                   f"{v['gc_worst_loop_ms']:.1f} / {v['gc_worst_other_ms']:.1f}",
                   f"{v['close_s']:.2f}", f"{v['rows']:,}")
    console.print(lt)
    console.print(f"worst loop stall (call / lateness): inline "
                  f"{ls['inline']['worst_call_ms']:.1f} / {ls['inline']['worst_late_ms']:.1f}"
                  f" ms, on the stream {ls['stream']['worst_call_ms']:.1f} / "
                  f"{ls['stream']['worst_late_ms']:.1f} ms; rows equal: {ls['rows_equal']}",
                  highlight=False)
