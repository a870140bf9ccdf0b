"""``kalshi-platform bench fanout``: the distribution layer measured on this host (issue 10 §7).

Every transport (``ipc://``, ``udp://`` on loopback, ``ws://`` on loopback) side by side in one
run with two baselines measured in the same run: raw pyzmq PUB/SUB over ``ipc://`` (64-byte
messages, and our batch messages) and ``multiprocessing.Queue`` (our batch messages)
(:mod:`.fanout_systems`). Subscribers are separate processes (:mod:`.fanout_workers`), started
once and reused.

Input: real plant events. A synthetic recording grown from the bundled real capture
(:mod:`.synth`) is replayed through a :class:`~kalshi_platform.ticker_plant.plant.TickerPlant`
frame by frame into memory (:func:`build_workload`): one batch per frame (1–2 events: a delta
and, when the top moved, a BBO), as the live plant commits. Each run re-publishes these batches
with controlled pacing; the transports encode them with their real encoders.

Figures (:func:`run_fanout`):

* **latency**: publisher ``commit()`` → decoded in the subscriber process, per event, in µs
  (p50/p99/p99.9/max, pooled over subscribers; the first :data:`WARMUP_EVENTS` of each run are
  left out), at a paced ``rate`` events/s with 1 and 4 subscribers. Timestamps are
  ``time.monotonic_ns()`` (CLOCK_MONOTONIC, one clock for all processes of a host): the
  publisher keeps each batch's commit time, a subscriber stamps each message once it is
  decoded;
* **throughput**: events (and messages) per second delivered to each subscriber, the
  publisher flat out (its rate is reported too), 1 and 4 subscribers; lost events per
  subscriber (all of them keep up, so the target is 0);
* **stall**: a paced run with 4 readers plus one subscriber that reads nothing for the first
  ``stall_s`` seconds, then reads on for ``stall_after_s`` (:data:`STALL_AFTER_S`) more,
  against the same run (next to it) without it: whether the plant kept its pace (its worst
  lateness: a blocked publisher) and the transport's send rate, the readers' latency,
  delivery and loss; what the stalled one lost and whether it was told (a gap, a seq hole,
  or an END past what it got).
  Paced, because flat out the ``ipc://`` publisher merges batches into messages of up to 256
  events, so 100k events are ~400 messages: a stalled subscriber's queues (1000 + 4000
  messages) would never fill;
* **loop stall** (:mod:`.fanout_loop`): the worst gap of the plant's read loop while a Parquet
  store writes, the store on the stream's consumer thread against the old inline publisher.

Correctness checks for every subscriber of every run: every seq once, in order (order breaks,
duplicates and lost events are counted), and the events decoded equal the events published
(a BLAKE2b digest of their msgpack encodings). A wrong answer fails the run's ``ok``.

What belongs to the harness is kept out of the figures: the input is excluded from the
garbage collector's scans (``gc.freeze``) and a collection runs before each run; subscribers
keep every event for the digest, so their collector is off during a run (without both,
gen-2 collections of these large heaps put 10-40 ms tails on every system alike). The
runs' order is latency, throughput, then the stall pairs, each with the systems side by side;
``repeat`` repeats that whole sequence and the tables show the median.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from kalshi_platform.bench.fanout_systems import (BASELINES, LABELS, MPQ_MAXSIZE, TRANSPORTS,
                                                  MpqSystem, StreamSystem, ZmqSystem)

#: events at the start of each run left out of the latency figures (connections warming up)
WARMUP_EVENTS = 500
#: a stall run goes on this long after the stalled subscriber resumed (default)
STALL_AFTER_S = 0.75
#: issue 10 "Targets"
TARGET_P99_US = 500
TARGET_EV_PER_S = 100_000


# -- input ---------------------------------------------------------------------------------------


class _Capture:
    """A stream-like plant publisher keeping each commit's events as one batch."""

    sink_name = "capture"

    def __init__(self) -> None:
        self.batches: list[list] = []
        self._cur: list = []

    def publish(self, ev: Any) -> None:
        self._cur.append(ev)

    def commit(self) -> None:
        if self._cur:
            self.batches.append(self._cur)
            self._cur = []

    def take_failures(self) -> list:
        return []

    def flush(self) -> None:
        self.commit()

    def close(self) -> None:
        self.commit()


@dataclass
class Workload:
    """Real plant events in commit batches: ``batches[i]`` starts at stream seq
    ``starts[i]``; ``enc[s - 1]`` is event ``s``'s msgpack ``[code, *fields]``."""

    batches: list[list]
    starts: list[int]
    enc: list[bytes]
    info: dict[str, Any]
    _digests: dict = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return len(self.enc)

    def prefix(self, n_events: int) -> list[list]:
        """The batches holding the first ``n_events`` events (the last one cut)."""
        out = []
        for b, s in zip(self.batches, self.starts):
            if s > n_events:
                break
            out.append(b[:n_events - s + 1])
        return out

    def digest(self, segments: tuple[tuple[int, int], ...]) -> str:
        """BLAKE2b of events ``[a, b)`` for each segment, in order (as a worker hashes)."""
        d = self._digests.get(segments)
        if d is None:
            h = hashlib.blake2b(digest_size=16)
            for a, b in segments:
                h.update(b"".join(self.enc[a - 1:b - 1]))
            d = self._digests[segments] = h.hexdigest()
        return d


def build_workload(n_events: int, workdir: Path, source: Path | None = None) -> Workload:
    """Replay a synthetic recording (grown from ``source``, default the bundled capture)
    through a TickerPlant, one commit per frame, until ``n_events`` events were emitted.
    Raises :class:`FileNotFoundError` without a source recording."""
    import msgspec

    from kalshi_platform.bench.runner import default_source
    from kalshi_platform.bench.synth import write_synthetic_recording
    from kalshi_platform.ingestion.recording import iter_frames
    from kalshi_platform.stream.codec import to_array
    from kalshi_platform.ticker_plant.plant import TickerPlant

    src = source or default_source()
    frames = int(n_events / 1.05) + 2000
    while True:
        rec = workdir / f"fanout-synthetic-{frames}.jsonl"
        write_synthetic_recording(src, rec, frames)
        cap = _Capture()
        plant = TickerPlant([cap])
        for recv_ns, payload in iter_frames(rec):
            plant.process(payload, recv_ns)
            plant.commit()
        rec.unlink()
        if sum(map(len, cap.batches)) >= n_events or frames > 50 * n_events:
            break
        frames *= 2
    batches, starts, s = [], [], 1
    for b in cap.batches:
        if s > n_events:
            break
        b = b[:n_events - s + 1]
        batches.append(b)
        starts.append(s)
        s += len(b)
    enc_fn = msgspec.msgpack.Encoder().encode
    enc = [enc_fn(to_array(e)) for b in batches for e in b]
    kinds: dict[str, int] = {}
    for b in batches:
        for e in b:
            kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
    info = {"source": str(src), "frames": plant.stats.frames, "events": len(enc),
            "batches": len(batches), "events_per_batch": round(len(enc) / len(batches), 3),
            "event_types": kinds, "markets": len(plant.books),
            "mean_event_bytes": round(sum(map(len, enc)) / len(enc), 1)}
    return Workload(batches, starts, enc, info)


# -- subscriber processes ------------------------------------------------------------------------


class WorkerPool:
    """``n`` subscriber processes (``spawn``), each with a pipe and a bounded
    ``multiprocessing.Queue`` (:data:`MPQ_MAXSIZE` messages). Raises :class:`RuntimeError` if
    one does not start within ``timeout`` s."""

    def __init__(self, n: int, timeout: float = 60.0) -> None:
        from kalshi_platform.bench.fanout_workers import worker_main

        ctx = multiprocessing.get_context("spawn")
        self.queues = [ctx.Queue(MPQ_MAXSIZE) for _ in range(n)]
        self.conns = []
        self.procs = []
        for i in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(child, self.queues[i]),
                            name=f"fanout-sub-{i}", daemon=True)
            p.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(p)
        for c in self.conns:
            if not c.poll(timeout) or not c.recv().get("warm"):
                self.close()
                raise RuntimeError("a subscriber process did not start")

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send({"op": "quit"})
            except (OSError, EOFError):
                pass
        for p in self.procs:
            p.join(3.0)
            if p.is_alive():
                p.terminate()
                p.join(1.0)
        for q in self.queues:
            q.cancel_join_thread()
            q.close()


def _wait_ready(conns: Sequence[Any], probe: Callable[[], None], timeout: float) -> None:
    """Wait for every worker's ``{"ready": True}``, calling ``probe()`` every 5 ms."""
    from multiprocessing.connection import wait

    waiting = set(range(len(conns)))
    deadline = time.monotonic() + timeout
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(waiting)} subscriber(s) not ready after {timeout} s")
        probe()
        for c in wait([conns[i] for i in waiting], 0.005):
            msg = c.recv()
            if not msg.get("ready"):
                raise RuntimeError(f"subscriber failed: {msg.get('error')}\n{msg.get('trace')}")
            waiting.discard(conns.index(c))


def _collect(conns: Sequence[Any], poke: Callable[[], None], timeout: float) -> list[dict]:
    """Every worker's result, calling ``poke()`` every 50 ms meanwhile."""
    from multiprocessing.connection import wait

    out: list[dict | None] = [None] * len(conns)
    deadline = time.monotonic() + timeout
    while any(r is None for r in out):
        if time.monotonic() > deadline:
            raise RuntimeError(f"subscribers gave no result within {timeout} s")
        poke()
        for c in wait([c for c, r in zip(conns, out) if r is None], 0.05):
            out[conns.index(c)] = c.recv()
    return out  # type: ignore[return-value]


# -- one run -------------------------------------------------------------------------------------


@dataclass
class Drive:
    """What the publisher did: batch commit times (ns), when it started/ended, events sent,
    its worst lateness against the pace (a blocked publisher) and its process's CPU time."""

    times: list[int]
    lens: list[int]
    t0: int
    t_end: int
    events: int
    worst_late_ns: int = 0  # paced: the most a batch was committed after it was due
    cpu_s: float = 0.0  # the publisher process's CPU time until everything was sent


def drive(send: Callable[[int, list], None], batches: Sequence[list], starts: Sequence[int],
          rate: float | None, cap_s: float,
          at: tuple[int, Callable[[], None]] | None = None) -> Drive:
    """Publish ``batches`` (one commit each): paced at ``rate`` events/s (sleeping until each
    batch is due; a late one goes at once), or flat out for at most ``cap_s`` seconds.
    ``at = (i, fn)``: call ``fn()`` just before batch ``i``."""
    at_i, at_fn = at if at is not None else (-1, None)
    mono, sleep = time.monotonic_ns, time.sleep
    times: list[int] = []
    lens: list[int] = []
    cap = int(cap_s * 1e9)
    ns_per_event = 1e9 / rate if rate else 0.0
    t0 = mono()
    done = late = 0
    for i, b in enumerate(batches):
        if rate:
            due = t0 + int(done * ns_per_event)
            now = mono()
            if due > now:
                sleep((due - now) / 1e9)
            elif now - due > late:
                late = now - due
        elif (i & 1023) == 0 and mono() - t0 > cap:
            break
        if i == at_i:
            at_fn()  # type: ignore[misc]
        times.append(mono())
        send(starts[i], b)
        lens.append(len(b))
        done += len(b)
    return Drive(times, lens, t0, mono(), done, worst_late_ns=late)


def make_system(name: str, workdir: str, run_no: int, pool: WorkerPool) -> Any:
    if name in TRANSPORTS:
        return StreamSystem(name, workdir, run_no)
    if name in ("zmq64", "zmq"):
        return ZmqSystem(name, workdir, run_no)
    if name == "mpq":
        return MpqSystem(pool.queues)
    raise ValueError(f"unknown transport {name!r}")


def run_once(pool: WorkerPool, wl: Workload, name: str, readers: int, *, stall: bool,
             rate: float | None, n_events: int, cap_s: float, workdir: str,
             run_no: int, stall_events: int = 0) -> dict[str, Any]:
    """One run of ``name`` to ``readers`` subscribers, plus, if ``stall``, one that reads
    nothing until ``stall_events`` events were published, then reads on (it must see a gap);
    returns its figures (:func:`kalshi_platform.bench.fanout_report.analyze`)."""
    from kalshi_platform.bench.fanout_report import analyze

    system = make_system(name, workdir, run_no, pool)
    n = readers + int(stall)
    conns = pool.conns[:n]
    batches = wl.prefix(n_events)
    budget = 30.0 + (n_events / rate * 2 if rate else cap_s * 4)
    at = None
    if stall:
        k = next((i for i, st in enumerate(wl.starts[:len(batches)]) if st > stall_events),
                 len(batches) - 1)
        at = (k, lambda: conns[-1].send("resume"))
    try:
        specs = system.open(n)
        for i, c in enumerate(conns):
            c.send({"op": "run", "system": name, "spec": specs[i],
                    "stall": stall and i == n - 1, "timeout_s": budget})
        _wait_ready(conns, system.probe, 30.0)
        system.after_ready(n)
        gc.collect()  # not inside the measurement
        cpu0 = time.process_time()
        d = drive(system.send, batches, wl.starts, rate, cap_s, at)
        deadline = time.monotonic() + budget
        while system.sent() < d.events and time.monotonic() < deadline:
            time.sleep(0.001)  # polling the publisher's counter, with a deadline
        t_sent = time.monotonic_ns()
        d.cpu_s = time.process_time() - cpu0
        system.close()
        results = _collect(conns, system.poke, budget)
    finally:
        system.finish()
    return analyze(name, results, d, wl, readers=readers, stall=stall, rate=rate,
                   t_sent=t_sent, stats=system.stats(), warmup=WARMUP_EVENTS)


# -- the benchmark -------------------------------------------------------------------------------


def _progress(enabled: bool) -> Callable[[str], None]:
    def say(text: str) -> None:
        if enabled:
            print(text, file=sys.stderr, flush=True)
    return say


def run_fanout(*, events: int = 100_000, latency_events: int = 15_000, rate: float = 10_000,
               subscribers: Sequence[int] = (1, 4), transports: Sequence[str] = TRANSPORTS,
               baselines: Sequence[str] = BASELINES, cap_s: float = 3.0, stall: bool = True,
               stall_s: float = 1.5, stall_after_s: float = STALL_AFTER_S, repeat: int = 1,
               loop: bool = True, loop_frames: int = 100_000, loop_rate: float = 25_000,
               loop_batch_rows: int = 50_000, source: Path | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Run every figure (see the module docstring); returns the result dict (JSON-able):
    ``config``, ``input``, ``latency``/``throughput``/``stall`` (lists of runs, one per system,
    subscriber count and repeat), ``loop_stall``, ``figures``, ``checks``, ``targets``,
    ``elapsed_s``. Raises :class:`ValueError` on bad options, :class:`RuntimeError` when a
    subscriber process fails, :class:`FileNotFoundError` without a source recording."""
    from kalshi_platform.bench.fanout_report import checks_of, figures_of, targets_of

    names = list(transports) + list(baselines)
    bad = [x for x in names if x not in TRANSPORTS + BASELINES]
    if (bad or not names or not subscribers or min(subscribers) < 1 or events < 2000
            or latency_events < 2 * WARMUP_EVENTS or repeat < 1 or rate <= 0 or stall_s <= 0):
        raise ValueError(f"bad options: transports {bad or names}, subscribers "
                         f"{list(subscribers)}, events {events} (>= 2000), latency events "
                         f"{latency_events} (>= {2 * WARMUP_EVENTS}), repeat {repeat}, "
                         f"rate {rate}, stall_s {stall_s}")
    say = _progress(progress)
    t_start = time.monotonic()
    cfg = {"events": events, "latency_events": latency_events, "rate": rate,
           "subscribers": list(subscribers), "transports": list(transports),
           "baselines": list(baselines), "flat_cap_s": cap_s, "warmup_events": WARMUP_EVENTS,
           "stall": stall, "stall_s": stall_s, "stall_after_s": stall_after_s,
           "stall_events": int(rate * (stall_s + stall_after_s)), "repeat": repeat,
           "target_p99_us": TARGET_P99_US, "target_ev_per_s": TARGET_EV_PER_S,
           "labels": {k: LABELS[k] for k in names}}
    out: dict[str, Any] = {"config": cfg}
    with tempfile.TemporaryDirectory(prefix="kfo-", dir="/tmp") as tmp:
        say("fanout: building the input (synthetic recording → TickerPlant, one commit per frame)")
        wl = build_workload(max(events, latency_events, cfg["stall_events"]), Path(tmp), source)
        out["input"] = wl.info
        gc.collect()
        gc.freeze()  # the input is this harness's: its objects are never scanned again
        try:
            out.update(_run_plan(cfg, wl, tmp, say))
        finally:
            gc.unfreeze()
        out["loop_stall"] = None
        if loop:
            from kalshi_platform.bench.fanout_loop import run_loop_stall

            say(f"fanout: loop stall while Parquet writes ({loop_frames:,} frames at "
                f"{loop_rate:,.0f}/s, inline, then on the stream)")
            out["loop_stall"] = run_loop_stall(loop_frames, loop_rate, loop_batch_rows,
                                               Path(tmp), source)
    out["figures"] = figures_of(out)
    out["checks"] = checks_of(out)
    out["targets"] = targets_of(out, TARGET_P99_US, TARGET_EV_PER_S)
    out["elapsed_s"] = round(time.monotonic() - t_start, 1)
    return out


def _run_plan(cfg: dict[str, Any], wl: Workload, tmp: str,
              say: Callable[[str], None]) -> dict[str, list]:
    """Every run, systems side by side (interleaved), ``repeat`` times; returns the runs by
    kind (``stall`` holds each pair: without, then with the stalled subscriber)."""
    names = cfg["transports"] + cfg["baselines"]
    subscribers, stall, rate = cfg["subscribers"], cfg["stall"], cfg["rate"]
    max_subs = max(subscribers)
    one = [("latency", s, x) for s in subscribers for x in names]
    one += [("throughput", s, x) for s in subscribers for x in names]
    one += [(k, max_subs, x) for x in names for k in ("nostall", "stall")] if stall else []
    plan = [(rep, *p) for rep in range(cfg["repeat"]) for p in one]
    n_events = {"latency": cfg["latency_events"], "throughput": cfg["events"]}
    out: dict[str, list] = {"latency": [], "throughput": [], "stall": []}
    say(f"fanout: {wl.n_events:,} events; starting {max_subs + int(stall)} subscriber "
        f"processes")
    pool = WorkerPool(max_subs + int(stall))
    try:
        for i, (rep, kind, subs, name) in enumerate(plan, 1):
            t = time.monotonic()
            r = run_once(pool, wl, name, subs, stall=kind == "stall",
                         rate=None if kind == "throughput" else rate,
                         n_events=n_events.get(kind, cfg["stall_events"]),
                         cap_s=cfg["flat_cap_s"], workdir=tmp, run_no=i,
                         stall_events=int(rate * cfg["stall_s"]))
            r["repeat"] = rep
            out["stall" if kind == "nostall" else kind].append(r)
            say(f"[{i}/{len(plan)}] {kind:<10} {name:<5} {subs} sub(s): {_brief(r)} "
                f"({time.monotonic() - t:.1f} s)")
    finally:
        pool.close()
    return out


def _brief(r: dict[str, Any]) -> str:
    lat = r["latency_us"]
    s = (f"p50/p99/p99.9 {lat['p50']}/{lat['p99']}/{lat['p999']} µs; "
         if r["mode"] == "paced" else "")
    s += (f"{r['ev_per_s_min']:,} ev/s per sub (min), lost {r['lost_readers']}, "
          f"send {r['send_ev_per_s']:,} ev/s")
    if r.get("stalled_sub"):
        st = r["stalled_sub"]
        s += f"; stalled one lost {st['lost']:,}, told {st['told']}"
    if not r["ok"]:
        s += " [CHECK FAILED]"
    return s
