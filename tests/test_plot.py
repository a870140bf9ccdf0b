"""Issue 12 §6: ``kalshi-platform plot`` (kalshi_platform/historical/plot.py, tools/plot.py).

Stores are replayed from the bundled real recordings: the cockpit order-book capture (12 MLB /
WNBA books, no trades: the BBO steps), the ssmd trade capture (10 prod trades, no book: the
trade markers and the volume panel), and the cockpit capture with one BBO-moving delta
removed, so the plant reports a gap and the books go stale (the shaded periods). What was
drawn is compared with the rows read independently with pyarrow; the PNG itself is checked
for its size (IHDR header) and for not being blank (pixel variance).
"""

from __future__ import annotations

import json
import re
import shlex
import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from typer.testing import CliRunner

from conftest import COCKPIT, SSMD_TRADE

pytest.importorskip("matplotlib", reason="matplotlib not installed (the plot/test extras)")

BOOK = "KXMLBGAME-26AUG071910ATHBOS-BOS"      # the cockpit market whose BBO moves (20 rows)
BOOK_DAY = "2026-08-07"
TRADED = "KXBTCMINMON-BTC-26FEB28-5750000"    # 5 trades in the ssmd capture
TRADE_DAY = "2026-02-12"


def _replay(recording: Path, root: Path) -> None:
    from kalshi_platform.tools.replay import run_replay

    run_replay(recording, store=root, sinks=["parquet"])


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """Both bundled captures in one store (two dates)."""
    root = tmp_path_factory.mktemp("plot") / "store"
    _replay(COCKPIT, root)
    _replay(SSMD_TRADE, root)
    return root


@pytest.fixture(scope="module")
def gap_store(tmp_path_factory) -> Path:
    """The cockpit capture without the first BBO-moving delta of BOOK after frame 120: the
    plant sees a seq gap and every book of the sid goes stale for the rest of the capture."""
    tmp = tmp_path_factory.mktemp("plotgap")
    lines = COCKPIT.read_text().splitlines()
    drop = next(i for i, line in enumerate(lines) if i > 120
                and json.loads(line)["frame"].get("type") == "orderbook_delta"
                and json.loads(line)["frame"]["msg"]["market_ticker"] == BOOK)
    rec = tmp / "gap.frames.jsonl"
    rec.write_text("\n".join(lines[:drop] + lines[drop + 1:]) + "\n")
    _replay(rec, tmp / "store")
    return tmp / "store"


def rows(root: Path, table: str, ticker: str, day: str) -> list[dict]:
    """One market-day of ``table`` read straight with pyarrow (no project code), ts in µs."""
    dset = ds.dataset(root / table, format="parquet", partitioning="hive")
    t = dset.to_table(filter=(pc.field("ticker") == ticker)
                      & (pc.field("date").cast("string") == day))
    out = t.to_pylist()
    for r in out:
        r["ts"] = int(r["ts"].timestamp() * 1_000_000 + 0.5)
    return sorted(out, key=lambda r: (r["ts"], r.get("seq") or 0, r.get("trade_id") or ""))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def pixel_stats(path: Path) -> tuple[float, int]:
    """(variance of the grey levels, number of distinct RGB colours)."""
    import numpy as np
    from PIL import Image

    img = Image.open(path).convert("RGB")
    grey = np.asarray(img.convert("L"), dtype="float64")
    rgb = np.asarray(img, dtype="uint32").reshape(-1, 3)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return float(grey.var()), len(np.unique(packed))


def cli(*args: str):
    from kalshi_platform.tools.cli import _register_optional, app

    _register_optional()
    return CliRunner().invoke(app, ["plot", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_cli_writes_a_png_of_the_requested_size(store, tmp_path):
    out = tmp_path / "book.png"
    r = cli("--ticker", BOOK, "--date", BOOK_DAY, "--store", str(store), "--out", str(out),
            "--width", "900", "--height", "600")
    assert r.exit_code == 0, r.output
    assert r.output.count("\n") == 1 and "900x600 px" in r.output
    assert png_size(out) == (900, 600)
    variance, colours = pixel_stats(out)
    assert variance > 100 and colours > 50, (variance, colours)  # lines, text, fills


def test_bid_ask_steps_are_the_bbo_rows(store, tmp_path):
    from kalshi_platform.historical.plot import draw_market_day, load_market_day

    md = load_market_day(store, BOOK, BOOK_DAY)
    want = rows(store, "bbo", BOOK, BOOK_DAY)
    assert len(want) == 20
    assert md.bbo["ts"].to_pylist() == [r["ts"] for r in want]
    assert md.bbo["yes_bid"].to_pylist() == [r["yes_bid"] for r in want]
    d = draw_market_day(md, tmp_path / "b.png")
    assert d.bbo_steps == sum(1 for r in want if r["state"] == "live")
    assert d.trade_points == 0 and d.stale_spans == [] and d.volume == 0
    assert png_size(d.path) == (1200, 800)


def test_trade_markers_match_the_trade_rows(store, tmp_path):
    from kalshi_platform.historical.plot import draw_market_day, load_market_day

    want = rows(store, "trades", TRADED, TRADE_DAY)
    assert len(want) == 5
    d = draw_market_day(load_market_day(store, TRADED, TRADE_DAY), tmp_path / "t.png",
                        width_px=640, height_px=480)
    assert d.trade_points == len(want)
    assert d.volume == sum(r["count"] for r in want) == 405
    # the marker area grows with count: same order, the largest trade the largest dot
    by_count = sorted(range(len(want)), key=lambda i: (want[i]["count"], i))
    assert sorted(range(len(want)), key=lambda i: (d.trade_sizes[i], i)) == by_count
    assert png_size(d.path) == (640, 480)
    assert pixel_stats(d.path)[0] > 100


def test_stale_periods_are_shaded(gap_store, tmp_path):
    from kalshi_platform.historical.plot import draw_market_day, load_market_day

    bbo = rows(gap_store, "bbo", BOOK, BOOK_DAY)
    stale = [r for r in bbo if r["state"] != "live"]
    assert len(stale) == 1 and stale[0]["yes_bid"] is None and stale[0]["yes_ask"] is None
    assert stale[0] is bbo[-1]  # never healed: no snapshot follows in a replay
    # the span runs to the day's last recorded row (deltas keep coming while it is stale)
    end = max(int(r["ts"].timestamp() * 1_000_000 + 0.5) for r in
              ds.dataset(gap_store / "orderbook_deltas", format="parquet",
                         partitioning="hive").to_table(columns=["ts"]).to_pylist())
    d = draw_market_day(load_market_day(gap_store, BOOK, BOOK_DAY), tmp_path / "g.png")
    assert d.stale_spans == [(stale[0]["ts"], end)]
    assert d.bbo_steps == len(bbo) - 1


def test_stale_spans_end_at_the_next_live_row():
    import pyarrow as pa

    from kalshi_platform.historical.plot import stale_spans

    t = pa.table({"ts": [1, 2, 3, 4, 5, 6], "state": ["live", "stale", "syncing", "live",
                                                      "stale", "live"]})
    assert stale_spans(t, 10) == [(2, 4), (5, 6)]
    assert stale_spans(t.slice(0, 5), 10) == [(2, 4), (5, 10)]


@pytest.mark.parametrize("prices", [[0.0, 0.15], [0.2, 0.35], [0.0, 0.01], [0.4, 0.45],
                                    [0.1, 0.9]])
def test_price_tick_labels_say_their_tick_exactly(prices):
    """Every y tick is labelled with its own price: a $0.025 step reads $0.025, not $0.03
    (the labels had at most the decimals of the step's order of magnitude)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from kalshi_platform.historical.plot import _price_axis

    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    _price_axis(ax, prices)
    fig.canvas.draw()
    shown = [(loc, t.get_text()) for loc, t in zip(ax.yaxis.get_majorticklocs(),
                                                   ax.get_yticklabels()) if t.get_text()]
    assert len(shown) >= 3
    for loc, text in shown:
        assert text.startswith("$") and Decimal(text[1:]) == Decimal(f"{loc:.6f}"), (loc, text)


def test_the_historical_tier_plots_the_same(store, tmp_path):
    """The EOD output of the store's day (``eod --source embedded``) gives the same plot."""
    from kalshi_platform.historical.plot import draw_market_day, load_market_day

    hdb = tmp_path / "hdb"
    r = subprocess.run([sys.executable, "-m", "kalshi_platform", "eod", "--source", "embedded",
                        "--store", str(store), "--dest", str(hdb), "--date", TRADE_DAY,
                        "--no-drop"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    a = draw_market_day(load_market_day(store, TRADED, TRADE_DAY), tmp_path / "a.png")
    b = draw_market_day(load_market_day(hdb, TRADED, TRADE_DAY), tmp_path / "b.png")
    assert (a.trade_points, a.volume) == (5, 405)
    assert (b.trade_points, b.volume, b.trade_sizes) == (a.trade_points, a.volume, a.trade_sizes)


@pytest.mark.parametrize("args, says", [
    (["--ticker", "NOPE", "--date", BOOK_DAY], f"no market NOPE on {BOOK_DAY}"),
    (["--ticker", BOOK, "--date", "2026-08-08"], "dates there: 2026-02-12, 2026-08-07"),
    (["--ticker", BOOK, "--date", "2026-8-7"], "--date: expected YYYY-MM-DD"),
    (["--ticker", BOOK, "--date", BOOK_DAY, "--width", "10"], "each side must be 200-10000"),
])
def test_bad_input_is_one_line_exit_2(store, tmp_path, args, says):
    r = cli(*args, "--store", str(store), "--out", str(tmp_path / "x.png"))
    assert r.exit_code == 2, r.output
    out = r.output.strip()
    assert out.count("\n") == 0 and out.startswith("error: ") and says in out, out
    assert not (tmp_path / "x.png").exists()
    if "no market" in out:  # names the markets the store has that day
        assert BOOK in out and TRADED not in out


def test_missing_store_is_one_line_exit_2(tmp_path):
    r = cli("--ticker", BOOK, "--date", BOOK_DAY, "--store", str(tmp_path / "none"),
            "--out", str(tmp_path / "x.png"))
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "no such directory" in r.output


def test_an_unreadable_store_is_a_read_error_not_a_write_error(tmp_path, monkeypatch):
    """A store the user may not read says so (it said "cannot write <out>"), exit 2."""
    import kalshi_platform.historical.plot as plot_mod

    def denied(root, ticker, day):
        raise PermissionError(13, "Permission denied", str(root))

    monkeypatch.setattr(plot_mod, "load_market_day", denied)
    r = cli("--ticker", BOOK, "--date", BOOK_DAY, "--store", str(tmp_path),
            "--out", str(tmp_path / "x.png"))
    assert r.exit_code == 2 and r.output.strip() == f"error: cannot read {tmp_path}: " \
        "Permission denied", r.output


def test_without_matplotlib_it_says_how_to_install(store, tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from kalshi_platform.tools.cli import main\n"
            f"sys.argv = ['kalshi-platform', 'plot', '--ticker', {BOOK!r}, '--date', "
            f"{BOOK_DAY!r}, '--store', {str(store)!r}, '--out', {str(tmp_path / 'x.png')!r}]\n"
            "main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert "pip install 'kalshi-platform[plot]'" in r.stderr


def _readme_plot_section() -> str:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    return readme.split("## Plot a market's day", 1)[1].split("\n## ", 1)[0]


def test_readme_commands_make_the_images_it_shows(tmp_path, monkeypatch):
    """The README's plot commands, run as written in a fresh directory beside the bundled
    data, write PNGs of the size and content of the committed ones it shows."""
    from kalshi_platform.tools.cli import _register_optional, app

    root = Path(__file__).resolve().parents[1]
    section = _readme_plot_section()
    shown = re.findall(r"!\[[^\]]*\]\((docs/img/[^)]+\.png)\)", section)
    commands = re.findall(r"^kalshi-platform (.+)$",
                          section.split("```bash", 1)[1].split("```", 1)[0], re.M)
    assert len(shown) == 2 and len(commands) == 4
    (tmp_path / "data").symlink_to(root / "data")
    (tmp_path / "docs" / "img").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KALSHI_STORE_DIR", raising=False)
    _register_optional()
    outputs = []
    for cmd in commands:
        r = CliRunner().invoke(app, shlex.split(cmd), env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert r.exit_code == 0, (cmd, r.output)
        outputs.append(r.output)
    assert "20 BBO rows, 0 trades" in outputs[2] and "0 BBO rows, 5 trades" in outputs[3]
    for img in shown:
        committed, made = root / img, tmp_path / img
        assert committed.stat().st_size < 150_000
        assert png_size(committed) == png_size(made) == (1200, 800)
        want, got = pixel_stats(committed)[0], pixel_stats(made)[0]
        assert got > 100 and abs(want - got) < 0.05 * got, (img, want, got)
