"""Round-trip latency figures shared by the order-entry benchmarks (``bench exchange-fix``,
``bench exchange-rest``; issue 13 §7): nearest-rank percentiles of the measured round trips,
in microseconds."""

from __future__ import annotations

PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))


def percentile(xs: list[int], q: float) -> int:
    """The nearest-rank ``q`` quantile (0..1) of ``xs`` (the element at ``int(q * n)`` of the
    sorted values, the largest for ``q = 1``); 0 when ``xs`` is empty."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0


def rtt_summary_us(rtt_ns: list[int]) -> dict[str, float]:
    """Round trips (ns) → ``{"p50", "p90", "p99", "max"}`` in µs, rounded to 0.1 µs."""
    return {k: round(percentile(rtt_ns, q) / 1000, 1) for k, q in PERCENTILES}
