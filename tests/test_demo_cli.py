"""``kalshi-platform demo`` against a loopback HTTP server answering with real Kalshi bodies
(``api_fakes.FakeKalshi`` on 127.0.0.1), and its error paths: unknown series, unreachable
port, malformed key, bad options — each one line on stderr, non-zero exit, no traceback.

The server answers the series (KXMLBGAME), its open markets (6 real active markets), an order
book per market and the trade tape with real response bodies; the books and the trades were
captured for other tickers (no capture has all three for one market), so this checks the
command's plumbing and rendering against the served bodies, not market consistency.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from typer.testing import CliRunner

import kalshi_platform.tools.rest_demo  # noqa: F401  (registers `demo`)
from api_fakes import FakeKalshi, bundled, load, serve, unused_port
from conftest import REPO_ROOT
from kalshi_platform.api.auth import verify_signature
from kalshi_platform.tools.cli import app

D = Decimal


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for k in list(os.environ):
        if k.startswith("KALSHI_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)  # no .env


def make_fake() -> FakeKalshi:
    markets = load(bundled("cockpit_prod/markets_KXMLBGAME_open.json"))["markets"]
    single = load(bundled("cockpit_prod/market_single.json"))
    combos = load(bundled("cockpit_prod/combo_orderbooks.json"))
    books = {markets[0]["ticker"]: single["orderbook"]}
    for m, b in zip(markets[1:], combos):
        books[m["ticker"]] = {"orderbook_fp": b["orderbook_fp"]}
    series = load(bundled("cockpit_prod/series_fee_fields.json"))["payloads"]
    fake = FakeKalshi(markets=markets, orderbooks=books,
                      series={k: v["series"] for k, v in series.items()})
    tape = load(bundled("fortuna_demo/trades__public_recorded.json"))
    fake.routes["/trade-api/v2/markets/trades"] = lambda q: (200, tape)
    return fake


def invoke(*args):
    return CliRunner().invoke(app, ["demo", *map(str, args)])


def one_error_line(r) -> str:
    assert r.exit_code != 0
    assert "Traceback" not in r.output and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error:")
    return lines[0]


def test_demo_shows_series_markets_books_and_trades():
    fake = make_fake()
    with serve(fake) as base:
        r = invoke("--series", "KXMLBGAME", "--limit", 2, "--depth", 3, "--trades", 4,
                   "--base-url", base)
    assert r.exit_code == 0, r.output + r.stderr
    out = r.stdout
    series = load(bundled("cockpit_prod/series_fee_fields.json"))["payloads"]["KXMLBGAME"]
    assert "series KXMLBGAME" in out and series["series"]["title"] in out
    assert "(unsigned)" in out
    markets = load(bundled("cockpit_prod/markets_KXMLBGAME_open.json"))["markets"]
    for m in markets[:2]:
        assert m["ticker"] in out
    assert markets[2]["ticker"] not in out  # --limit 2
    # first market's book: top 3 YES bids and NO bids by price (oracle: Decimal sort)
    book = load(bundled("cockpit_prod/market_single.json"))["orderbook"]["orderbook_fp"]
    top_yes = sorted(book["yes_dollars"], key=lambda lv: D(lv[0]), reverse=True)[:3]
    top_no = sorted(book["no_dollars"], key=lambda lv: D(lv[0]), reverse=True)[:3]
    for (yp, ys), (np_, ns) in zip(top_yes, top_no):
        ask = f"{1 - D(np_):.4f}"
        assert any(ln.split() == [yp, ys, np_, ns, ask]
                   for ln in (x.replace("│", " ") for x in out.splitlines())), (yp, np_)
    fourth_yes = sorted(book["yes_dollars"], key=lambda lv: D(lv[0]), reverse=True)[3][0]
    assert fourth_yes not in out  # --depth 3
    # trades: the first 4 of the served tape, in order
    tape = load(bundled("fortuna_demo/trades__public_recorded.json"))["trades"]
    rows = [x.replace("│", " ").split() for x in out.splitlines()]
    for t in tape[:4]:
        assert any(row[2:6] == [t["yes_price_dollars"], t["no_price_dollars"], t["count_fp"],
                                t["taker_outcome_side"]] for row in rows if len(row) >= 6), t
    # requests: status=open filter, page size = limit, depth, trades limit; none signed
    q = {r["path"]: r["query"] for r in fake.log}
    assert q["/trade-api/v2/markets"] == {"series_ticker": "KXMLBGAME", "status": "open",
                                         "limit": "2"}
    assert q[f"/trade-api/v2/markets/{markets[0]['ticker']}/orderbook"] == {"depth": "3"}
    assert q["/trade-api/v2/markets/trades"]["limit"] == "4"
    assert all("kalshi-access-signature" not in {k.lower() for k in r["headers"]}
               for r in fake.log)


def test_demo_signs_when_a_key_is_configured(tmp_path, monkeypatch):
    key = ed25519.Ed25519PrivateKey.generate()
    p = tmp_path / "k.pem"
    p.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    p.chmod(0o600)
    monkeypatch.setenv("KALSHI_API_KEY_ID", "demo-key")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(p))
    fake = make_fake()
    with serve(fake) as base:
        r = invoke("--series", "KXMLBGAME", "--limit", 1, "--base-url", base)
    assert r.exit_code == 0, r.stderr
    assert "(signed)" in r.stdout
    for req in fake.log:
        h = {k.lower(): v for k, v in req["headers"].items()}
        assert h["kalshi-access-key"] == "demo-key"
        assert verify_signature(key.public_key(), h["kalshi-access-signature"],
                                int(h["kalshi-access-timestamp"]), "GET", req["path"])


def test_unknown_series_is_one_line():
    with serve(make_fake()) as base:
        r = invoke("--series", "KXNOSUCH", "--base-url", base)
    line = one_error_line(r)
    assert r.exit_code == 2 and "unknown series 'KXNOSUCH'" in line


def test_series_without_open_markets():
    fake = make_fake()
    fake.markets = []
    with serve(fake) as base:
        r = invoke("--series", "KXMLBGAME", "--base-url", base)
    assert r.exit_code == 0 and "no open markets in series KXMLBGAME" in r.stdout


def test_market_whose_book_vanished_is_reported_inline():
    fake = make_fake()
    first = fake.markets[0]["ticker"]
    del fake.orderbooks[first]
    with serve(fake) as base:
        r = invoke("--series", "KXMLBGAME", "--limit", 2, "--base-url", base)
    assert r.exit_code == 0
    assert f"{first}: GET /trade-api/v2/markets/{first}/orderbook: HTTP 404" in r.stdout


def test_unreachable_host_is_one_line_and_quick():
    import time

    t0 = time.monotonic()
    r = invoke("--series", "KXMLBGAME", "--base-url",
               f"http://127.0.0.1:{unused_port()}/trade-api/v2", "--retries", 1)
    line = one_error_line(r)
    assert r.exit_code == 2 and "cannot connect to 127.0.0.1" in line
    assert time.monotonic() - t0 < 10


def test_server_errors_give_up_with_one_line():
    fake = make_fake()
    fake.fail_next = [503] * 10
    with serve(fake) as base:
        r = invoke("--series", "KXMLBGAME", "--base-url", base, "--retries", 2)
    line = one_error_line(r)
    assert r.exit_code == 2 and "gave up after 3 attempts" in line and "HTTP 503" in line


def test_malformed_key_is_one_line(tmp_path, monkeypatch):
    p = tmp_path / "bad.pem"
    p.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    p.chmod(0o600)
    monkeypatch.setenv("KALSHI_API_KEY_ID", "k")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(p))
    r = invoke("--series", "KXMLBGAME", "--base-url", "http://127.0.0.1:9/trade-api/v2")
    line = one_error_line(r)
    assert r.exit_code == 2 and "not a valid PEM private key" in line
    assert "garbage" not in r.stderr


@pytest.mark.parametrize("args,match", [
    (["--series", "X", "--limit", "0"], "--limit"),
    (["--series", "X", "--depth", "101"], "--depth"),
    (["--series", "X", "--env", "staging"], "--env"),
    (["--series", "X", "--base-url", "not a url"], "base URL"),
])
def test_bad_options_are_one_line(args, match):
    r = invoke(*args)
    assert r.exit_code == 2 and match in one_error_line(r)


def test_console_script_unreachable_exit_code(tmp_path):
    """The real console entry point (subprocess): exit 2 (an unreachable service), one line,
    no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv[0] = 'kalshi-platform'; "
         "from kalshi_platform.tools.cli import main; main()", "demo", "--series", "KXHIGHNY",
         "--base-url", f"http://127.0.0.1:{unused_port()}/trade-api/v2", "--retries", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "cannot connect" in r.stderr
    assert "Traceback" not in r.stderr
