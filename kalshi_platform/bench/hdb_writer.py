"""Benchmark of the chunk → Parquet writer (:mod:`kalshi_platform.storage.hdb_writer`).

Input: a synthetic ``orderbook_deltas`` day grown from the bundled real capture, generated in
Arrow chunks (never the whole day in memory):

* every row copies a real delta row of the capture (its side, price in dollars and signed
  size in contracts), picked at random, so values have the real distribution;
* tickers: the capture's 12 real markets × 8 copies (``T``, ``T-C1`` … ``T-C7``) = 96
  tickers, picked at random per row;
* ``ts`` increases by a random gap (UTC µs) so the rows span about half of one UTC day; ``recv_ts``
  = ``ts`` + 1..5 ms; one ``sid`` with a gapless ``seq``.

Randomness comes from a seeded :class:`random.Random` (``randbytes``) turned into Arrow arrays
with :mod:`pyarrow.compute`, so generating 10M rows costs well under the write itself and the
input is the same on every run. Generation time is excluded from the measured rate; the rate
is rows written (buffering, encoding, compression, fsync, rename) per second of wall time,
best of ``repeat`` runs.
"""

from __future__ import annotations

import functools
import gc
import os
import random
import resource
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from kalshi_platform.storage.hdb_writer import PartitionWriter, day_bounds_us
from kalshi_platform.storage.schema import TABLES

#: the synthetic day (any UTC day works)
BENCH_DAY = date(2026, 8, 7)
TABLE = "orderbook_deltas"
COPIES = 8
CHUNK_ROWS = 100_000  # what QuestDBClient.stream_day yields by default


@functools.lru_cache(maxsize=1)
def _real_delta_rows() -> tuple[list[tuple], list[str]]:
    """Delta rows of the bundled real capture (through the real plant) and its tickers."""
    from kalshi_platform.bench.runner import default_source
    from kalshi_platform.ingestion.recording import feed
    from kalshi_platform.ticker_plant.events import DeltaEvent
    from kalshi_platform.ticker_plant.plant import TickerPlant

    rows: list[tuple] = []
    t = TABLES[TABLE]

    class _Collect:
        def publish(self, e) -> None:
            if type(e) is DeltaEvent:
                rows.extend(t.rows(e))

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    plant = TickerPlant([_Collect()])
    feed(default_source(), plant)
    plant.close()
    if not rows:
        raise RuntimeError("the bundled capture has no orderbook deltas")
    return rows, sorted({r[0] for r in rows})


def _rand_u16(rng: random.Random, n: int) -> pa.Array:
    return pa.Array.from_buffers(pa.uint16(), n, [None, pa.py_buffer(rng.randbytes(2 * n))])


def synthetic_delta_chunks(rows: int, *, chunk_rows: int = CHUNK_ROWS, seed: int = 7,
                           day: date = BENCH_DAY) -> Iterator[pa.Table]:
    """Yield ``rows`` synthetic ``orderbook_deltas`` rows of ``day`` in chunks of
    ``chunk_rows``, in the table's Arrow schema, ordered by ``ts`` (see module docstring)."""
    real, tickers = _real_delta_rows()
    schema = TABLES[TABLE].arrow_schema()
    base_n = 256  # pad the real rows to a power of two for a cheap uniform pick
    base = [real[i % len(real)] for i in range(base_n)]
    tix = {t: i for i, t in enumerate(tickers)}
    base_market = pa.array([tix[r[0]] for r in base], pa.int32())
    base_side = pa.array([r[4] for r in base], pa.string())
    base_price = pa.array([r[5] for r in base], pa.float64())
    base_delta = pa.array([r[6] for r in base], pa.float64())
    names = pa.array([t if k == 0 else f"{t}-C{k}" for t in tickers for k in range(COPIES)],
                     pa.string())
    lo, hi = day_bounds_us(day)
    # uniform gaps in [0, mask] with mask < 2 * mean, mean = half the day per row: the rows
    # span about half the day and can never run past its end
    mean = max(1, (hi - lo) // (2 * max(rows, 1)))
    mask = (1 << ((2 * mean).bit_length() - 1)) - 1
    rng = random.Random(seed)
    ts0 = lo
    seq0 = 1
    done = 0
    while done < rows:
        n = min(chunk_rows, rows - done)
        pick = pc.bit_wise_and(_rand_u16(rng, n), 255).cast(pa.int32())
        copy = pc.bit_wise_and(_rand_u16(rng, n), COPIES - 1).cast(pa.int32())
        ticker_idx = pc.add(pc.multiply(pc.take(base_market, pick), COPIES), copy)
        gaps = pc.bit_wise_and(pa.Array.from_buffers(
            pa.uint32(), n, [None, pa.py_buffer(rng.randbytes(4 * n))]), mask).cast(pa.int64())
        ts = pc.add(pc.cumulative_sum(gaps), ts0)
        lat = pc.add(pc.bit_wise_and(_rand_u16(rng, n), 4095).cast(pa.int64()), 1000)
        recv = pc.add(ts, lat)
        chunk = pa.table([
            pc.take(names, ticker_idx),
            ts.cast(pa.timestamp("us", tz="UTC")),
            pa.array([1] * n, pa.int64()),
            pa.array(range(seq0, seq0 + n), pa.int64()),
            pc.take(base_side, pick),
            pc.take(base_price, pick),
            pc.take(base_delta, pick),
            recv.cast(pa.timestamp("us", tz="UTC")),
        ], schema=schema)
        ts0 = ts[-1].as_py()
        seq0 += n
        done += n
        yield chunk


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; Linux ``ru_maxrss`` is KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


#: what the baseline is: the obvious writer without the project's row-group and file handling
BASELINE = "pyarrow ParquetWriter, a row group per chunk"


def _naive_write(chunks, path: Path, compression: str, fsync: bool) -> None:
    """The baseline: every chunk written as it comes (so a row group per 100k-row chunk) with
    :class:`pyarrow.parquet.ParquetWriter`, the same codec, then fsync and rename, as a
    straightforward EOD export would."""
    import pyarrow.parquet as pq

    tmp = path.with_name("." + path.name + ".tmp")
    w = None
    for c in chunks:
        if w is None:
            w = pq.ParquetWriter(tmp, c.schema, compression=compression)
        w.write_table(c)
    if w is not None:
        w.close()
    if fsync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, path)


def _best_s(write: Any, source: Any, repeat: int, gen_s: float) -> float:
    """The best of ``repeat`` timings of ``write(source())``, seconds, less ``gen_s`` (the
    time generating the chunks takes when ``source`` makes them inside the timing)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        src = source()
        t0 = time.perf_counter()
        write(src)
        best = min(best, time.perf_counter() - t0 - gen_s)
    return best


def bench_chunk_writer(rows: int, repeat: int, *, compression: str = "zstd",
                       chunk_rows: int = CHUNK_ROWS, fsync: bool = True,
                       workdir: str | Path | None = None) -> dict:
    """Write a ``rows``-row synthetic ``orderbook_deltas`` day with :class:`PartitionWriter`
    ``repeat`` times; return the best rate.

    The chunks are generated up front when they fit comfortably (≤ 2M rows, so generation is
    not timed); above that they are generated lazily inside the timed loop and the generation
    time, measured separately on the same input, is subtracted. Returns a dict: ``rows``,
    ``repeat``, ``compression``, ``best_s``, ``rows_per_s``, ``mb_per_s`` (Arrow bytes),
    ``file_bytes``, ``files``, ``row_groups``, ``tickers``, ``peak_rss_mib``, and the
    baseline (:data:`BASELINE`, same input, codec and fsync): ``baseline``,
    ``baseline_s``, ``baseline_rows_per_s``.
    Raises ``ValueError`` for ``rows < 1`` or ``repeat < 1``.
    """
    import pyarrow.parquet as pq

    if rows < 1 or repeat < 1:
        raise ValueError("rows and repeat must be >= 1")
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="bench-hdb-")) if own else Path(workdir)
    try:
        pre = rows <= 2_000_000
        chunks = list(synthetic_delta_chunks(rows, chunk_rows=chunk_rows)) if pre else None
        arrow_bytes = (sum(c.nbytes for c in chunks) if chunks else None)
        gen_s = 0.0
        if not pre:  # time generation alone so it can be subtracted
            t0 = time.perf_counter()
            arrow_bytes = 0
            for c in synthetic_delta_chunks(rows, chunk_rows=chunk_rows):
                arrow_bytes += c.nbytes
            gen_s = time.perf_counter() - t0
        def source():
            return chunks if pre else synthetic_delta_chunks(rows, chunk_rows=chunk_rows)

        files: list = []

        def ours(src) -> None:
            w = PartitionWriter(root, TABLE, BENCH_DAY, compression=compression, fsync=fsync)
            for c in src:
                w.write(c)
            files[:] = w.commit()

        best = _best_s(ours, source, repeat, gen_s)
        base = _best_s(lambda src: _naive_write(src, root / "baseline.parquet", compression,
                                                fsync), source, repeat, gen_s)
        meta = [pq.ParquetFile(f.path).metadata for f in files]
        assert sum(m.num_rows for m in meta) == rows
        return {
            "table": TABLE,
            "rows": rows,
            "repeat": repeat,
            "chunk_rows": chunk_rows,
            "compression": compression,
            "fsync": fsync,
            "generated_in_loop": not pre,
            "best_s": round(best, 4),
            "rows_per_s": round(rows / best),
            "mb_per_s": round(arrow_bytes / best / 1e6, 1),
            "arrow_bytes": arrow_bytes,
            "file_bytes": sum(f.bytes for f in files),
            "files": len(files),
            "row_groups": sum(m.num_row_groups for m in meta),
            "tickers": len(_real_delta_rows()[1]) * COPIES,
            "peak_rss_mib": peak_rss_mib(),
            "baseline": BASELINE,
            "baseline_s": round(base, 4),
            "baseline_rows_per_s": round(rows / base),
        }
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
