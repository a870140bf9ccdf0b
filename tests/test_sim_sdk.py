"""The sim driven by Kalshi's official SDK (``kalshi-python-sync`` 3.34.0; issue 13 §4).

The SDK needs Python >= 3.13; the project runs on 3.11. The test builds (once, cached under
``~/.cache/kalshi-platform-sdk-venv/kalshi-python-sync-<version>``, or
``$KALSHI_SDK_VENV_CACHE``) a 3.13 venv with the SDK from PyPI, starts the sim on loopback
(the bundled cockpit recording + ``data/rest`` fixtures, signed requests verified), and runs
``tests/sim_sdk/driver.py`` under 3.13. The driver calls every market-data call the SDK offers
that the sim serves; the SDK validates each response against its pydantic models. The test
asserts every call ok and checks figures against independent sources: the Decimal oracle's
final books (candles' last BBO, the REST order book) and the fixture files read here.

Skips with a reason when no 3.13 interpreter exists or the SDK cannot be installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import kalshi_oracle as oracle
from conftest import COCKPIT, REPO_ROOT, wait_until
from oracle_compare import oracle_ladders
from sim_support import private_key_file, sim_thread

SDK_VERSION = "3.34.0"
REST = REPO_ROOT / "data" / "rest"
DRIVER = Path(__file__).parent / "sim_sdk" / "driver.py"
CUTOFF = "2026-08-10T00:00:00Z"  # the pregame fixture's market (settled 08-09) is historical
HIST_MARKET = "KXMLBGAME-26AUG091340LAAMIA-LAA"
PY313_CANDIDATES = (os.environ.get("KALSHI_SDK_PYTHON", ""),
                    "/root/.pyenv/versions/3.13.0/bin/python3.13",
                    shutil.which("python3.13") or "", shutil.which("python3.14") or "")


def _python313() -> str | None:
    for p in PY313_CANDIDATES:
        if p and Path(p).is_file():
            try:
                out = subprocess.run([p, "-c", "import sys; print(sys.version_info >= (3, 13))"],
                                     capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if out.stdout.strip() == "True":
                return p
    return None


def _sdk_venv() -> Path:
    """The cached venv's python (built on first use); skips when that is impossible."""
    py = _python313()
    if py is None:
        pytest.skip("no Python >= 3.13 interpreter (kalshi-python-sync needs one); "
                    "set KALSHI_SDK_PYTHON")
    cache = Path(os.environ.get("KALSHI_SDK_VENV_CACHE",
                                Path.home() / ".cache" / "kalshi-platform-sdk-venv"))
    venv = cache / f"kalshi-python-sync-{SDK_VERSION}"
    vpy = venv / "bin" / "python"
    probe = [str(vpy), "-c", f"import kalshi_python_sync as k; assert k.__version__ == "
             f"'{SDK_VERSION}'"]
    if vpy.is_file() and subprocess.run(probe, capture_output=True, timeout=60).returncode == 0:
        return vpy
    tmp = cache / f".building-{SDK_VERSION}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([py, "-m", "venv", str(tmp)], check=True, capture_output=True,
                       timeout=120)
        r = subprocess.run([str(tmp / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                            f"kalshi-python-sync=={SDK_VERSION}"],
                           capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip(f"cannot build the SDK venv with {py}: {e}")
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"cannot install kalshi-python-sync=={SDK_VERSION} from PyPI: {last}")
    shutil.rmtree(venv, ignore_errors=True)
    tmp.rename(venv)  # venv scripts use absolute paths: run its python directly, not pip
    return vpy


def _fixture_markets() -> dict[str, dict]:
    """Every market object in the fixture files (read here, not through the sim)."""
    out: dict[str, dict] = {}

    def walk(x):
        if isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, dict):
            if isinstance(x.get("ticker"), str) and "event_ticker" in x and "status" in x:
                out[x["ticker"]] = x
            else:
                for v in x.values():
                    walk(v)

    for p in REST.rglob("*.json"):
        if not p.name.endswith(".meta.json"):
            walk(json.loads(p.read_bytes()))
    return out


def _fixture_trades() -> list[dict]:
    out = []
    for p in REST.rglob("*.json"):
        if p.name.endswith(".meta.json"):
            continue
        doc = json.loads(p.read_bytes())
        if isinstance(doc, dict) and isinstance(doc.get("trades"), list):
            out.extend(doc["trades"])
    return list({t["trade_id"]: t for t in out}.values())


def test_official_sdk_validates_every_market_data_call(tmp_path):
    vpy = _sdk_venv()
    key, pem = private_key_file(tmp_path)
    ref = oracle.replay(COCKPIT)
    ladders = oracle_ladders(ref)
    fixtures = _fixture_markets()
    trades = _fixture_trades()
    recorded = sorted(set(ladders) - set(fixtures))  # markets made up from the recording
    market = recorded[0]
    by_ticker: dict[str, int] = {}
    for t in trades:
        if t["created_time"] >= CUTOFF:  # a market with live (not historical) trades
            by_ticker[t["ticker"]] = by_ticker.get(t["ticker"], 0) + 1
    trade_market = max(sorted(by_ticker), key=lambda t: by_ticker[t])
    hist_trade_market = sorted({t["ticker"] for t in trades if t["created_time"] < CUTOFF})[0]
    with sim_thread(recording=COCKPIT, rest_fixtures=REST, cutoff=CUTOFF, start="now",
                    public_key=key.public_key()) as sim:
        cfg = {"base_url": sim.rest_url, "key_id": "sdk-test", "private_key_pem": str(pem),
               "market": market, "fixture_market": sorted(set(fixtures) - {HIST_MARKET})[0],
               "trade_market": trade_market, "series": market.split("-")[0],
               "event": market.rsplit("-", 1)[0], "historical_market": HIST_MARKET,
               "historical_event": HIST_MARKET.rsplit("-", 1)[0],
               "historical_trade_market": hist_trade_market,
               "start_ts": 0, "end_ts": 4_000_000_000}
        (tmp_path / "cfg.json").write_text(json.dumps(cfg))
        wait_until(sim.done.is_set, 20, "playback finished")  # books at the recording's end
        r = subprocess.run([str(vpy), str(DRIVER), str(tmp_path / "cfg.json")],
                           capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["sdk_version"] == SDK_VERSION
    failed = [f"{x['call']}: {x['detail']}" for x in out["results"] if not x["ok"]]
    assert not failed, "\n".join(failed)
    res = {x["call"]: x["data"] for x in out["results"]}
    assert len(res) == 12 and out["todo"]  # trading calls are listed for the next step

    # independent checks: the oracle's final book of `market`, the fixture files
    yes, no = ladders[market]
    bid = max(yes) if yes else Decimal(0)
    ask = Decimal(1) - max(no) if no else Decimal(1)
    last = res["candlesticks (market, batch, event)"]["last"]
    assert (Decimal(last["bid"]), Decimal(last["ask"])) == (bid, ask)
    book = res["get_market_orderbook(s)"]
    assert {Decimal(p) for p, _ in book["yes"]} == set(sorted(yes)[-3:])
    vol = res["candlesticks (market, batch, event)"]["trade_volume"]
    want = sum(Decimal(t["count_fp"]) for t in trades if t["ticker"] == trade_market)
    assert sum(Decimal(v) for v in vol) == want
    live = set(ladders) | set(fixtures)
    assert res["get_markets (paged)"]["n"] == len(live - {HIST_MARKET})
    assert res["historical (cutoff, markets, market, candlesticks, trades)"]["markets"] == 1
    n_hist = sum(1 for t in trades if t["created_time"] < CUTOFF)
    assert res["historical (cutoff, markets, market, candlesticks, trades)"]["trades"] == n_hist
    assert res["get_trades"]["n"] == len(trades) - n_hist
    hvol = res["historical (cutoff, markets, market, candlesticks, trades)"]["trade_volume"]
    assert sum(Decimal(v) for v in hvol) == sum(
        Decimal(t["count_fp"]) for t in trades if t["ticker"] == hist_trade_market)
    print(json.dumps(out["results"], indent=1), file=sys.stderr)
