"""Paper trading on the sim: kill switch, reconciliation on restart, unknown outcomes, the
``trade`` CLI with each example strategy (issue 14 Acceptance "Risk", "Reconciliation", §7).

The sim runs in-process on a thread (``sim --replay FILE --liquidity --speed 0``); the
engine's own order table (``Exchange.user_orders``) and positions are the independent view
of what the venue holds.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import COCKPIT, REPO_ROOT, wait_until
from paper_support import NodeThread, SimThread, signer
from kalshi_platform.trading import Strategy, contracts
from kalshi_platform.trading.model import OrderStatus, TradingState
from kalshi_platform.trading.risk_config import risk_config_from_dict

pytestmark = pytest.mark.skipif(not COCKPIT.is_file(), reason="bundled recording missing")
TICK = 10_000
RISK = risk_config_from_dict({"max_orders_per_s": 200})  # speed 0: the recording in < 1 s


class _Quoter(Strategy):
    """Once per market: a YES bid and a NO bid ``behind`` ticks behind the touch."""

    def on_start(self) -> None:
        self.behind = int(self.config.get("behind", 10))
        self.done: set[str] = set()

    def on_bbo(self, bbo) -> None:
        if bbo.state != "live" or bbo.yes_bid is None or bbo.yes_ask is None \
                or bbo.ticker in self.done or self.ctx.open_orders(bbo.ticker):
            return
        self.done.add(bbo.ticker)
        b = self.behind * TICK
        self.ctx.buy_yes(bbo.ticker, max(bbo.yes_bid - b, TICK), contracts(1))
        self.ctx.buy_no(bbo.ticker, max(1_000_000 - bbo.yes_ask - b, TICK), contracts(1))


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kalshi_platform", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _tickers(sim) -> list[str]:
    return sorted(sim.call(lambda: list(sim.exchange.markets)))


def test_kill_switch_cancels_every_open_order_on_the_sim_in_one_round_trip_and_halts():
    with SimThread(COCKPIT) as sim:
        tickers = _tickers(sim)
        with NodeThread(sim, _Quoter(), tickers, key=signer("alice"), risk=RISK) as nt:
            wait_until(sim.replay_done, 30, "replay done")
            wait_until(lambda: len(sim.resting("alice")) == 2 * len(tickers), 20,
                       "every quote resting at the sim")
            wait_until(lambda: nt.on_loop(lambda: nt.venue.in_flight == 0 and all(
                o.status is OrderStatus.RESTING for o in nt.node.oms.open_orders())), 10,
                "every quote acknowledged")

            def kill():
                n = len(nt.node.oms.open_orders())
                nt.node.ctx.kill("manual (test)")
                # every cancel is on the wire before the first answer: one round trip
                return n, nt.venue.in_flight, nt.node.risk.state

            n, sent, state = nt.on_loop(kill)
            assert n == 2 * len(tickers) and sent == n and state is TradingState.HALTED
            wait_until(lambda: sim.resting("alice") == [], 10, "no resting order at the sim")
            wait_until(lambda: nt.on_loop(lambda: not nt.node.oms.open_orders()), 10,
                       "every order canceled in the node")

            def after():  # halted: a new order is refused by risk, nothing reaches the sim
                o = nt.node.ctx.buy_yes(tickers[0], TICK, contracts(1))
                return o.status, o.reason

            status, reason = nt.on_loop(after)
            assert status is OrderStatus.REJECTED and "halt" in reason.lower()
            assert sim.resting("alice") == []
            assert nt.node.kill.reason == "manual (test)"


class _PositionAndQuote(Strategy):
    """On the first two-sided BBO of ``ticker``: buy 2 YES at the ask (IOC) and rest a YES
    bid 5 ticks below the bid; never again once it holds a position or an open order (so a
    restarted copy that reconciled must place nothing)."""

    def on_start(self) -> None:
        self.ticker = self.config["ticker"]
        self.placed = 0

    def on_bbo(self, bbo) -> None:
        if bbo.ticker != self.ticker or bbo.state != "live" or bbo.yes_ask is None \
                or bbo.yes_bid is None:
            return
        if self.ctx.position(self.ticker) or self.ctx.open_orders(self.ticker) or self.placed:
            return
        self.placed += 2
        self.ctx.buy_yes(self.ticker, bbo.yes_ask, contracts(2), tif="immediate_or_cancel")
        self.ctx.buy_yes(self.ticker, max(bbo.yes_bid - 5 * TICK, TICK), contracts(1))


def test_restart_mid_run_picks_up_open_orders_and_position_nothing_doubled():
    with SimThread(COCKPIT) as sim:
        tickers = _tickers(sim)
        tk = tickers[0]
        key = signer("alice")
        first = NodeThread(sim, _PositionAndQuote({"ticker": tk}), tickers, key=key,
                           risk=RISK, cancel_on_stop=False)  # a crash: nothing canceled
        with first:
            wait_until(lambda: len(sim.resting("alice")) == 1 and nt_pos(sim, tk) == 200, 30,
                       "position and resting order at the sim")
            wait_until(lambda: first.on_loop(lambda: len(first.node.fills) >= 1
                                             and first.venue.in_flight == 0), 10)
        venue_orders = sim.resting("alice")
        fills_at_sim = sim.call(lambda: len(sim.exchange.fills.get("alice", ())))
        strat = _PositionAndQuote({"ticker": tk})
        with NodeThread(sim, strat, tickers, key=key, risk=RISK) as second:
            n = second.node
            # reconciled on start (and again after the private WS subscribed)
            assert n.portfolio.pos(tk) == 200
            opened = second.on_loop(lambda: [(o.venue_order_id, o.client_order_id, o.remaining,
                                              o.external) for o in n.oms.open_orders()])
            assert opened == [(venue_orders[0].order_id, venue_orders[0].client_order_id, 100,
                               False)]
            wait_until(lambda: second.on_loop(lambda: n.books.books.get(tk) is not None
                                              and n.books.books[tk].bbo is not None), 20,
                       "the restarted strategy sees the market")
            assert strat.placed == 0  # it saw its position and order: placed nothing
            assert second.on_loop(lambda: len(n.fills)) == fills_at_sim  # not doubled
            assert not n.reconcile_notes  # our position agrees with the venue's
            nxt = second.on_loop(lambda: n.ctx.buy_yes(tk, TICK, contracts(1)))
            assert int(nxt.client_order_id.split("-")[-1]) > \
                int(venue_orders[0].client_order_id.split("-")[-1])  # ids continue
            wait_until(lambda: len(sim.resting("alice")) == 2, 10, "new order at the sim")
        # the second run canceled all on stop: its own order and the imported one
        assert sim.resting("alice") == []
        assert nt_pos(sim, tk) == 200


def nt_pos(sim, ticker: str) -> int:
    """The engine's position of alice in ``ticker`` (centi-contracts)."""
    return sim.call(lambda: next((p.position for p in sim.exchange.positions("alice")
                                  if p.ticker == ticker), 0))


@pytest.mark.parametrize("spec,config", [
    ("examples.market_maker:MarketMaker", "examples/market_maker.toml"),
    ("examples.taker:Taker", None)], ids=["market_maker", "taker"])
def test_examples_run_in_paper_through_the_trade_cli(spec, config, tmp_path):
    """``kalshi-platform trade --venue sim`` with each example for a short run: exit 0, the
    summary, every open order canceled at the sim at the end, and the ``orders`` table in the
    Parquet store (``--store``) holds every order the sim got from this key."""
    pq = pytest.importorskip("pyarrow.parquet")
    with SimThread(COCKPIT) as sim:
        args = ["trade", "--strategy", spec, "--venue", "sim", "--base-url", sim.rest_url,
                "--key-id", "bob", "--duration", "2", "--store", str(tmp_path / "store")]
        if config:
            args += ["--config", config]
        res = _cli(*args)
        assert res.returncode == 0, res.stderr
        out = res.stdout
        assert f"trade {spec.split(':')[1]} on sim" in out
        assert "12 markets" in out and "PnL net $" in out
        ev = int(out.split("events ")[1].split(" ")[0].rstrip(",").replace(",", ""))
        assert ev > 100  # it saw the replayed books
        assert sim.resting("bob") == []
        orders = sim.call(lambda: list(sim.exchange.user_orders("bob", None, None)))
        assert orders, "the strategy placed no order on the sim"
        files = sorted((tmp_path / "store" / "orders").glob("date=*/*.parquet"))
        rows = [r for f in files for r in pq.read_table(f).to_pylist()]
        assert {r["venue_order_id"] for r in rows if r["venue_order_id"]} == \
            {o.order_id for o in orders}
        assert all(r["status"] in ("canceled", "filled") for r in rows
                   if r["venue_order_id"])  # nothing left open


def test_trade_cli_bad_input_is_one_line_exit_2():
    base = ["trade", "--strategy", "examples.taker:Taker"]
    res = _cli(*base, "--venue", "kalshi", "--env", "prod", "--markets", "X")
    assert res.returncode == 2 and "--i-understand-this-is-real-money" in res.stderr
    res = _cli(*base, "--venue", "nyse")
    assert res.returncode == 2 and "--venue must be sim or kalshi" in res.stderr
    res = _cli(*base, "--venue", "sim", "--base-url", "http://127.0.0.1:9/trade-api/v2")
    assert res.returncode == 2 and "cannot reach" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_timeout_is_unknown_blocks_the_order_until_reconciliation():
    """A create whose answer does not come within the venue's timeout (the sim delays every
    REST answer by 1 s, the venue gives up after 0.3 s): ``unknown``, the order is blocked
    (a cancel is not sent). Reconciliation from the portfolio endpoints then agrees with the
    engine: an order the sim holds is linked and unblocked (and cancels), one it never got
    (here aiohttp drops the request whose client went away) is rejected, "not at the venue"."""
    with SimThread(COCKPIT) as sim:
        tickers = _tickers(sim)
        tk = tickers[0]
        with NodeThread(sim, Strategy(), tickers, key=signer("alice"), risk=RISK,
                        timeout_s=0.3) as nt:
            wait_until(sim.replay_done, 30, "replay done")
            wait_until(lambda: nt.on_loop(lambda: nt.node.ctx.bbo(tk) is not None), 20,
                       "the market's book live in the node")
            sim.call(lambda: setattr(sim.sim.faults, "delay_s", 1.0))  # slow REST answers
            o = nt.on_loop(lambda: nt.node.ctx.buy_yes(tk, TICK, contracts(1)))
            wait_until(lambda: nt.on_loop(lambda: bool(o.blocked) or o.status.terminal), 10,
                       "order blocked")
            assert o.status is OrderStatus.PENDING_NEW and o.blocked, (o.status, o.reason)
            assert nt.on_loop(lambda: nt.node.ctx.cancel(o)) is False  # blocked: not sent
            sim.call(lambda: setattr(sim.sim.faults, "delay_s", 0.0))
            wait_until(lambda: nt.on_loop(lambda: nt.venue.in_flight == 0), 10)
            nt.on_loop(nt.node.reconcile)
            at_sim = sim.call(lambda: list(sim.exchange.user_orders("alice", None, None)))
            if at_sim:
                assert (o.venue_order_id, o.status, o.blocked) == (
                    at_sim[0].order_id, OrderStatus.RESTING, "")
                assert nt.on_loop(lambda: nt.node.ctx.cancel(o)) is True
                wait_until(lambda: sim.resting("alice") == [], 10, "canceled at the sim")
            else:
                assert o.status is OrderStatus.REJECTED and "not at the venue" in o.reason
            assert len(nt.node.oms.orders) == 1  # no second order was ever placed


def test_trade_cli_ctrl_c_cancels_all_prints_summary_exit_130(tmp_path):
    """SIGINT to a running ``trade``: every open order canceled at the sim, the summary
    printed, exit 130."""
    import signal

    strat = tmp_path / "quoter.py"
    strat.write_text("from kalshi_platform.trading import Strategy, contracts\n"
                     "class Q(Strategy):\n"
                     "    def on_start(self):\n        self.done = set()\n"
                     "    def on_bbo(self, b):\n"
                     "        if b.state != 'live' or b.yes_bid is None or b.ticker in self.done:\n"
                     "            return\n"
                     "        self.done.add(b.ticker)\n"
                     "        self.ctx.buy_yes(b.ticker, max(b.yes_bid - 100000, 10000), contracts(1))\n")
    risk = tmp_path / "risk.toml"
    risk.write_text("[risk]\nmax_orders_per_s = 100\n")
    with SimThread(COCKPIT) as sim:
        p = subprocess.Popen([sys.executable, "-m", "kalshi_platform", "trade", "--strategy",
                              f"{strat}:Q", "--venue", "sim", "--base-url", sim.rest_url,
                              "--key-id", "carol", "--config", str(risk)], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: len(sim.resting("carol")) == 12, 30, "12 bids resting")
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
        assert p.returncode == 130, err
        assert "(interrupted: open orders canceled)" in out and "canceled 12" in out
        assert sim.resting("carol") == []


def test_kalshi_venue_is_the_same_code_demo_by_default(tmp_path):
    """``--venue kalshi`` is the sim's code with Kalshi's URLs: demo unless --env prod (with
    the confirmation); pointed at the sim with --base-url it trades there the same way."""
    from kalshi_platform.trading.live import LiveConfigError, endpoints

    assert endpoints("kalshi", "demo", False, None, None) == (
        "https://external-api.demo.kalshi.co/trade-api/v2",
        "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2")
    with pytest.raises(LiveConfigError, match="real money"):
        endpoints("kalshi", "prod", False, None, None)
    assert endpoints("kalshi", "prod", True, None, None)[0] == \
        "https://external-api.kalshi.com/trade-api/v2"
    assert endpoints("sim", "demo", False, "http://127.0.0.1:5/trade-api/v2", None)[1] == \
        "ws://127.0.0.1:5/trade-api/ws/v2"
    with SimThread(COCKPIT) as sim:
        tk = _tickers(sim)[0]
        res = _cli("trade", "--strategy", "examples.taker:Taker", "--venue", "kalshi",
                   "--base-url", sim.rest_url, "--markets", tk, "--key-id", "dave",
                   "--private-key", _pem(tmp_path / "dave.pem"), "--duration", "1")
        assert res.returncode == 0, res.stderr
        assert f"trade Taker on kalshi ({sim.rest_url}), 1 markets" in res.stdout
        assert sim.resting("dave") == []


def _pem(path) -> str:
    """A throwaway Ed25519 private key file (the sim without --users takes any key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return str(path)


def test_private_ws_reconnect_reconciles_a_fill_missed_while_down():
    """The sim drops the venue's private connection (a TCP abort, like a network fault) and,
    in the same engine step, alice trades from elsewhere (an IOC entered at the engine, e.g.
    on the website): its fill frame goes nowhere. The venue reconnects, the node reconciles:
    the order is imported as external, the fill is counted once, the position matches."""
    from kalshi_platform.exchange import commands as C

    with SimThread(COCKPIT) as sim:
        tickers = _tickers(sim)
        tk = tickers[0]
        with NodeThread(sim, Strategy(), tickers, key=signer("alice"), risk=RISK) as nt:
            wait_until(sim.replay_done, 30, "replay done")
            before = nt.venue.reconnects

            def drop_and_trade():
                for c in list(sim.sim.feed.conns):
                    if c.key_id == "alice" and any(s.channel == "fill" for s in c.subs.values()):
                        c.transport.abort()
                best_no = sim.exchange.book_snapshot(tk)["no"][0][0]
                res = sim.trading.host.apply(C.CreateOrder(
                    user_id="alice", ticker=tk, side="yes", action="buy", count=200,
                    yes_price=1_000_000 - best_no, client_order_id="web-1",
                    time_in_force="immediate_or_cancel"))
                return res.ok, res.order.order_id

            ok, oid = sim.call(drop_and_trade)
            assert ok
            wait_until(lambda: nt.venue.reconnects > before, 10, "private WS reconnected")
            # the position can be 200 before reconciliation has imported the order (seen once
            # in a loaded CI run): wait for both, then assert as before
            wait_until(lambda: nt.on_loop(lambda: nt.node.portfolio.pos(tk) == 200
                                          and nt.node.oms.by_venue(oid) is not None), 10,
                       "the missed fill and its order taken by reconciliation")
            n = nt.node
            assert [f.venue_order_id for f in n.fills] == [oid]  # once
            o = n.oms.by_venue(oid)
            assert o is not None and o.external and o.client_order_id == "web-1"
            assert nt_pos(sim, tk) == 200


def test_retry_after_unknown_is_idempotent_over_rest():
    """An order the sim holds but whose outcome we lost (blocked) is retried with the same
    client_order_id: the sim answers 409 order_already_exists with the first order's id, the
    node reconciles and unblocks it; the sim holds one order, not two."""
    with SimThread(COCKPIT) as sim:
        tickers = _tickers(sim)
        tk = tickers[0]
        with NodeThread(sim, Strategy(), tickers, key=signer("alice"), risk=RISK) as nt:
            wait_until(sim.replay_done, 30, "replay done")
            wait_until(lambda: nt.on_loop(lambda: nt.node.ctx.bbo(tk) is not None), 20)
            o = nt.on_loop(lambda: nt.node.ctx.buy_yes(tk, TICK, contracts(1)))
            wait_until(lambda: o.status is OrderStatus.RESTING, 10, "acknowledged")
            vid = o.venue_order_id
            nt.on_loop(lambda: nt.node.oms.block(o, "answer lost (test)"))
            assert nt.on_loop(lambda: nt.node.ctx.retry(o)) is True
            wait_until(lambda: nt.on_loop(lambda: not o.blocked), 10, "reconciled")
            assert (o.venue_order_id, o.status) == (vid, OrderStatus.RESTING)
            assert [v.order_id for v in sim.resting("alice")] == [vid]
            assert nt.node.rejections == []  # the duplicate answer is no reject
