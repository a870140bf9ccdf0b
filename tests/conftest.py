"""Shared paths, data helpers and fixtures of the test suite.

Data policy:

* the real recordings bundled with the repo (``data/recordings``) are always present and are
  what most tests use;
* the wider set of real captures lives in ``../shared/data/real/kalshi`` beside the repo; tests
  that need it skip with a clear reason when it is absent (see :func:`require_shared`).

Helpers here are plain functions (importable as ``from conftest import ...``; ``tests/`` is on
``sys.path`` because this file lives there) plus a few fixtures.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = REPO_ROOT / "data" / "recordings"
SHARED = REPO_ROOT.parent / "shared"
SHARED_KALSHI = SHARED / "data" / "real" / "kalshi"
SHARED_WS = SHARED_KALSHI / "ws"
SHARED_PERPS = SHARED_KALSHI / "perps_demo"

COCKPIT_NAME = "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl"
COCKPIT = RECORDINGS / COCKPIT_NAME
SSMD_TICKER = RECORDINGS / "ssmd_prod_ticker_2026-02-12.jsonl"
SSMD_TRADE = RECORDINGS / "ssmd_prod_trade_2026-02-12.jsonl"
SSMD_EMBEDDED = RECORDINGS / "ssmd_prod_embedded_frames.jsonl"
BUNDLED = (COCKPIT, SSMD_TICKER, SSMD_TRADE, SSMD_EMBEDDED)

#: Kalshi WS order-book captures in ../shared (event contracts only; perps excluded).
SHARED_BOOK_CAPTURES = (
    "cockpit_prod_orderbook_stream_2026-08-07.frames.jsonl",
    "cockpit_prod_orderbook_stream_2026-08-07.json",
    "fortuna_demo_ws__orderbook_trade_noleg.jsonl",
    "fortuna_demo_ws__orderbook_trade_yes.jsonl",
)
PERPS_CAPTURE = SHARED_PERPS / "fortuna_demo_perps_ws__public_orderbook_ticker.jsonl"

SHARED_MISSING = f"real captures in ../shared not available (expected under {SHARED_KALSHI})"


def require_shared(path: Path) -> Path:
    """``path`` if it exists, else skip the calling test with a clear reason."""
    if not path.exists():
        pytest.skip(f"{path.name} not found: {SHARED_MISSING}")
    return path


def shared_ws_captures() -> list[Path]:
    """Every Kalshi WS order-book capture in ../shared that exists (may be empty)."""
    return [SHARED_WS / n for n in SHARED_BOOK_CAPTURES if (SHARED_WS / n).is_file()]


def book_capture_params() -> list:
    """``pytest.param`` list: the bundled cockpit recording plus every shared order-book capture
    (each shared one skipped, with the reason, when ../shared is absent)."""
    params = [pytest.param(COCKPIT, id="bundled-cockpit")]
    for name in SHARED_BOOK_CAPTURES:
        p = SHARED_WS / name
        marks = () if p.is_file() else (pytest.mark.skip(reason=f"{name}: {SHARED_MISSING}"),)
        params.append(pytest.param(p, id="shared-" + name, marks=marks))
    return params


# ---------------------------------------------------------------------------------------------
# recordings as lines


def read_lines(path: Path) -> list[bytes]:
    """The lines of a JSON Lines recording (without line ends; blank lines kept)."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


def nonblank_lines(path: Path) -> list[bytes]:
    return [ln for ln in read_lines(path) if ln.strip()]


def write_lines(path: Path, lines: list[bytes], *, gz: bool = False, final_newline: bool = True
                ) -> Path:
    """Write ``lines`` (bytes or str) as a recording, optionally gzipped."""
    data = b"\n".join(ln.encode() if isinstance(ln, str) else ln for ln in lines)
    if final_newline:
        data += b"\n"
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def write_modified(tmp_path: Path, src: Path, name: str, *, drop: set[int] | None = None,
                   replace: dict[int, bytes] | None = None) -> Path:
    """Copy recording ``src`` into ``tmp_path/name`` with line indexes in ``drop`` removed and
    lines in ``replace`` substituted (indexes refer to ``src``'s lines, 0-based)."""
    drop = drop or set()
    replace = replace or {}
    out = []
    for i, ln in enumerate(read_lines(src)):
        if i in drop:
            continue
        out.append(replace.get(i, ln))
    return write_lines(tmp_path / name, out)


def frame_of_line(line: bytes) -> dict:
    """The Kalshi frame in one recording line (cockpit envelope or bare)."""
    obj = json.loads(line)
    return obj["frame"] if "frame" in obj else obj


def frame_text_of_cockpit_line(line: bytes) -> bytes:
    """The exact bytes of the frame inside a ``{"received_ms":N,"frame":{...}}`` line."""
    m = re.match(rb'^\{"received_ms":\d+,"frame":(.*)\}$', line)
    assert m, line[:80]
    return m.group(1)


def wait_until(cond, timeout: float = 15.0, what: str = "condition") -> None:
    """Wait for an observable condition of another thread or process: bounded, and fails
    the test when it is not reached (a poll, not a sleep standing in for synchronisation)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.001)


async def until(cond, timeout: float = 10.0, what: str = "condition") -> None:
    """:func:`wait_until` for a test body on an event loop: poll ``cond()`` between loop
    turns (the servers under test run on the same loop), bounded, failing the test after
    ``timeout`` s."""
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"{what} not reached in {timeout} s")
        await asyncio.sleep(0.002)
