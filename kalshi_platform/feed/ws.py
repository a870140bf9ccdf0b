"""``ws://HOST:PORT``: the plant's event stream as JSON over a WebSocket (docs/feed-protocol.md,
"WebSocket transport"), for remote subscribers, notebooks and browsers.

This module holds what both sides share: the URL and its options (:func:`parse_url`), the
JSON form of events and snapshot books (:func:`event_json` / :func:`event_from_json`,
:func:`book_json` / :func:`book_from_json`), the server's messages and the client's commands.
The server is :mod:`kalshi_platform.feed.ws_server` (:func:`attach`, the ``--publish`` entry
point), the client :mod:`kalshi_platform.feed.ws_client` (:class:`Client`, a
``TransportClient`` for :class:`~kalshi_platform.feed.subscriber.Subscriber`).

JSON form of an event (exact, lossless): ``feed`` and ``seq`` (the stream seq) first, then the
event's fields named as the columns of its table in :mod:`kalshi_platform.storage.schema`
(as :mod:`kalshi_platform.feed.jsonfmt` names them for ``subscribe --jsonl``): prices are
decimal strings in dollars (``"0.5600"``, :func:`~kalshi_platform.fixedpoint.price_to_str`),
sizes decimal strings in contracts (``"2002.35"``), timestamps ``ts``/``recv_ts`` integer ns
UTC, Kalshi's own message seq is ``kalshi_seq``. A ``deltas`` event carries ``type``
(``delta`` or ``snapshot``); a book-snapshot event carries its ladders whole, ``yes``/``no``
``[[price, size], ...]`` (NO bids at NO prices). A BBO also carries the derived ``mid`` and
``spread`` (exact; ignored when decoding). A decoder ignores keys it does not know.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any, Callable
from urllib.parse import parse_qsl, urlparse

import orjson

from kalshi_platform.feed.jsonfmt import bbo_fields, event_json, levels_json
from kalshi_platform.feed.protocol import BookState, ProtocolError
from kalshi_platform.feed.transports import TransportError
from kalshi_platform.fixedpoint import FixedPointError, parse_price, parse_size
from kalshi_platform.stream.codec import FEEDS
from kalshi_platform.ticker_plant.events import (
    BBO,
    DeltaEvent,
    FeedEvent,
    FillEvent,
    LifecycleEvent,
    QuarantineRecord,
    SnapshotEvent,
    TickerEvent,
    TradeEvent,
)

__all__ = ["WsConfig", "parse_url", "event_json", "event_from_json", "book_json",
           "book_from_json", "Command", "CommandError", "parse_command", "attach",
           "WsTransport", "WS_VERSION", "DEFAULT_FEEDS"]

#: version of the JSON messages (the ``hello`` message carries it)
WS_VERSION = 1
#: feeds of a ``subscribe`` that names none (as the Subscriber's default)
DEFAULT_FEEDS = tuple(f for f in FEEDS if f != "quarantine")
DEPTHS = ("full", "bbo")

# -- URL and options ----------------------------------------------------------------------


@dataclass(frozen=True)
class WsConfig:
    """The server's settings, from the URL ``ws://HOST:PORT[?key=value&...]``.

    Attributes:
        host: address to bind (``127.0.0.1`` when the URL's host is empty).
        port: TCP port (``0``: the kernel picks one; :attr:`WsTransport.url` tells it).
        client_queue: events queued for one client before it is cut off with a ``gap``
            and a fresh snapshot (URL key ``client_queue``).
        stream_queue: events the server as a whole may fall behind the plant before the
            stream runner drops (then every client gets a gap; key ``stream_queue``).
        heartbeat_s: an idle client gets a ``heartbeat`` this often (key ``heartbeat``).
        end_timeout_s: at the end of the stream, how long the server waits for clients to
            take what is queued for them, then END, before it closes (key ``end_timeout``).
        history: the last events kept in memory for ``subscribe`` with ``from_seq`` (a
            subscriber started before its publisher, a reconnect; key ``history``, 0 = none).
        max_message_events: events in one ``events`` message at most.
        max_tickers: tickers in one ``subscribe`` at most (key ``max_tickers``).
    """

    host: str = "127.0.0.1"
    port: int = 0
    client_queue: int = 10_000
    stream_queue: int = 200_000
    heartbeat_s: float = 1.0
    end_timeout_s: float = 5.0
    history: int = 20_000
    max_message_events: int = 1000
    max_tickers: int = 10_000

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"


_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "client_queue": ("client_queue", int), "stream_queue": ("stream_queue", int),
    "heartbeat": ("heartbeat_s", float), "end_timeout": ("end_timeout_s", float),
    "max_tickers": ("max_tickers", int), "history": ("history", int),
}


def parse_url(url: str) -> WsConfig:
    """``ws://HOST:PORT[/][?client_queue=N&stream_queue=N&heartbeat=S&end_timeout=S&
    history=N&max_tickers=N]`` → :class:`WsConfig`. Raises :class:`TransportError` (not ws, no port, bad option)."""
    u = urlparse(url)
    if u.scheme != "ws":
        raise TransportError(f"not a ws:// URL: {url!r}")
    try:
        port = u.port
    except ValueError:
        raise TransportError(f"bad port in {url!r}") from None
    if port is None:
        raise TransportError(f"{url!r}: give a port, e.g. ws://127.0.0.1:8770")
    cfg = WsConfig(host=u.hostname or "127.0.0.1", port=port)
    for key, value in parse_qsl(u.query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise TransportError(f"{url!r}: unknown option {key!r} (known: "
                                 + ", ".join(_OPTIONS) + ")")
        field, conv = _OPTIONS[key]
        try:
            v = conv(value)
        except ValueError:
            raise TransportError(f"{url!r}: {key}={value!r} is not a number") from None
        if not (v >= 0 if key == "history" else v > 0):
            raise TransportError(f"{url!r}: {key} must be positive")
        cfg = replace(cfg, **{field: v})
    return cfg


# -- exact decimal strings (memoised: a feed repeats the same prices and sizes) ----------

def _pp(text: Any) -> int | None:
    return None if text is None else parse_price(text)


def _ps(text: Any) -> int | None:
    return None if text is None else parse_size(text)


def encode_event(seq: int, ev: Any) -> bytes:
    """:func:`event_json` as compact UTF-8 JSON bytes (one element of an ``events`` list)."""
    return orjson.dumps(event_json(seq, ev))


# -- JSON objects → events ---------------------------------------------------------------


def _levels_from(x: Any) -> list[tuple[int, int]]:
    return [(parse_price(p), parse_size(q)) for p, q in x]


def _bbo_from(o: dict) -> BBO:
    return BBO(o["ticker"], o["ts"], _pp(o["yes_bid"]), _ps(o["yes_bid_size"]),
               _pp(o["yes_ask"]), _ps(o["yes_ask_size"]), o["kalshi_seq"], o["recv_ts"],
               o["state"])


def _deltas_from(o: dict) -> DeltaEvent | SnapshotEvent:
    if o["type"] == "snapshot":
        return SnapshotEvent(o["ticker"], o["ts"], o["sid"], o["kalshi_seq"],
                             _levels_from(o["yes"]), _levels_from(o["no"]), o["recv_ts"])
    if o["type"] != "delta":
        raise ValueError(f"unknown deltas type {o['type']!r}")
    return DeltaEvent(o["ticker"], o["ts"], o["sid"], o["kalshi_seq"], o["side"],
                      parse_price(o["price"]), parse_size(o["delta"]), o["recv_ts"])


def _trade_from(o: dict) -> TradeEvent:
    return TradeEvent(o["ticker"], o["ts"], o["trade_id"], parse_price(o["yes_price"]),
                      parse_price(o["no_price"]), parse_size(o["count"]), o["taker_side"],
                      o["recv_ts"])


def _ticker_from(o: dict) -> TickerEvent:
    return TickerEvent(o["ticker"], o["ts"], _pp(o["price"]), _pp(o["yes_bid"]),
                       _pp(o["yes_ask"]), _ps(o["yes_bid_size"]), _ps(o["yes_ask_size"]),
                       _ps(o["volume"]), _ps(o["open_interest"]), o["recv_ts"])


def _lifecycle_from(o: dict) -> LifecycleEvent:
    return LifecycleEvent(o["ticker"], o["ts"], o["event_type"], o["result"],
                          _pp(o["settlement_value"]), o["detail"], o["recv_ts"])


def _fill_from(o: dict) -> FillEvent:
    return FillEvent(o["ticker"], o["ts"], o["trade_id"], o["order_id"], o["side"],
                     o["action"], o["is_taker"], parse_price(o["yes_price"]),
                     parse_size(o["count"]), _pp(o["fee_cost"]), _ps(o["post_position"]),
                     o["recv_ts"])


def _feed_from(o: dict) -> FeedEvent:
    return FeedEvent(o["ts"], o["kind"], o["sid"], o["expected_seq"], o["got_seq"],
                     o["detail"])


def _quarantine_from(o: dict) -> QuarantineRecord:
    raw = base64.b64decode(o["raw_b64"], validate=True) if "raw_b64" in o else o["raw"]
    return QuarantineRecord(o["recv_ts"], o["reason"], raw)


_FROM_JSON: dict[str, Callable[[dict], Any]] = {
    "bbo": _bbo_from, "deltas": _deltas_from, "trades": _trade_from, "tickers": _ticker_from,
    "lifecycle": _lifecycle_from, "fills": _fill_from, "feed_events": _feed_from,
    "quarantine": _quarantine_from,
}


def event_from_json(o: Any) -> tuple[int, Any]:
    """A JSON event object → ``(stream seq, plant event)`` in integer units (the inverse of
    :func:`event_json`). Raises :class:`ProtocolError` on a malformed object."""
    try:
        seq = o["seq"]
        if type(seq) is not int:
            raise TypeError(f"seq {seq!r} is not an integer")
        return seq, _FROM_JSON[o["feed"]](o)
    except (KeyError, TypeError, ValueError, FixedPointError) as e:
        raise ProtocolError(f"bad ws event {str(o)[:120]}: {type(e).__name__}: {e}") from None


# -- snapshot books -------------------------------------------------------------------------


def book_json(b: BookState) -> dict[str, Any]:
    """One snapshot book → ``{"ticker", "state", "sid", "yes", "no", "bbo"}`` (ladders
    ``[[price, size], ...]`` best first or ``null`` in a BBO-only snapshot; ``bbo`` the
    book's last live BBO as the fields of a ``bbo`` event, without ``feed``/``seq``)."""
    return {"ticker": b.ticker, "state": b.state, "sid": b.sid,
            "yes": None if b.yes is None else levels_json(b.yes),
            "no": None if b.no is None else levels_json(b.no),
            "bbo": None if b.bbo is None else bbo_fields(b.bbo)}


def book_from_json(o: Any) -> BookState:
    """Inverse of :func:`book_json`. Raises :class:`ProtocolError`."""
    try:
        return BookState(o["ticker"], o["state"], o["sid"],
                         None if o["yes"] is None else _levels_from(o["yes"]),
                         None if o["no"] is None else _levels_from(o["no"]),
                         None if o["bbo"] is None else _bbo_from(o["bbo"]))
    except (KeyError, TypeError, ValueError, FixedPointError) as e:
        raise ProtocolError(f"bad ws snapshot book {str(o)[:120]}: {e}") from None


# -- server messages -----------------------------------------------------------------------


def message(kind: str, **fields: Any) -> bytes:
    """A server message ``{"type": kind, **fields}`` as JSON bytes."""
    return orjson.dumps({"type": kind, **fields})


def events_message(run_id: str, frags: list[bytes]) -> bytes:
    """``{"type":"events","run_id":R,"events":[...]}`` from pre-encoded event objects."""
    return b'{"type":"events","run_id":' + orjson.dumps(run_id) + b',"events":[' \
        + b",".join(frags) + b"]}"


def snapshot_message(run_id: str, seq: int, depth: bool, books: list[BookState]) -> bytes:
    """``{"type":"snapshot","run_id","seq","depth":"full"|"bbo","books":[...]}``."""
    return message("snapshot", run_id=run_id, seq=seq, depth="full" if depth else "bbo",
                   books=[book_json(b) for b in books])


# -- client commands -----------------------------------------------------------------------


class CommandError(ValueError):
    """A client command the server refuses (answered with an ``error`` message naming
    ``cmd``, the command's ``cmd`` when it had a readable one)."""

    def __init__(self, text: str, cmd: str | None = None) -> None:
        super().__init__(text)
        self.cmd = cmd


@dataclass(frozen=True)
class Command:
    """A parsed client command: ``cmd`` (subscribe, unsubscribe, snapshot, ping), ``feeds``
    and ``tickers`` (``None``: not given / all), ``depth`` (``True`` = full ladders),
    ``min_seq`` (snapshot), ``from_seq`` and ``run_id`` (subscribe: resume from this seq of
    this run), ``id`` (ping's, echoed)."""

    cmd: str
    feeds: frozenset[str] | None = None
    tickers: frozenset[str] | None = None
    depth: bool = True
    min_seq: int = 0
    from_seq: int | None = None
    run_id: str | None = None
    id: Any = None


def _names(o: dict, key: str, limit: int) -> frozenset[str] | None:
    v = o.get(key)
    if v is None:
        return None
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise CommandError(f"{key} must be a list of non-empty strings")
    if len(v) > limit:
        raise CommandError(f"at most {limit} {key} per command, got {len(v)}")
    return frozenset(v)


def parse_command(data: Any, max_tickers: int = 10_000) -> Command:
    """One client message (text) → :class:`Command`. Raises :class:`CommandError` for
    anything else: not JSON, not an object, unknown ``cmd``, unknown feed, bad tickers,
    depth other than ``full``/``bbo``, bad ``min_seq``/``from_seq``/``run_id``."""
    if not isinstance(data, str):
        raise CommandError("commands are JSON text messages")
    try:
        o = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise CommandError(f"not JSON: {e}") from None
    if not isinstance(o, dict):
        raise CommandError('a command is a JSON object such as {"cmd": "subscribe", ...}')
    cmd = o.get("cmd")
    if cmd not in ("subscribe", "unsubscribe", "snapshot", "ping"):
        raise CommandError(f"unknown cmd {str(cmd)[:40]!r}: use subscribe, unsubscribe, "
                           "snapshot or ping")
    try:
        return _command(o, cmd, max_tickers)
    except CommandError as e:
        raise CommandError(str(e), cmd) from None


def _command(o: dict, cmd: str, max_tickers: int) -> Command:
    feeds = _names(o, "feeds", len(FEEDS))
    if feeds is not None and not feeds <= set(FEEDS):
        raise CommandError(f"unknown feed(s) {', '.join(sorted(feeds - set(FEEDS)))[:200]}; "
                           f"choose from {', '.join(FEEDS)}")
    depth = o.get("depth", "full")
    if depth not in DEPTHS:
        raise CommandError('depth must be "full" or "bbo"')
    min_seq = o.get("min_seq", 0)
    if type(min_seq) is not int or min_seq < 0:
        raise CommandError("min_seq must be a non-negative integer")
    from_seq, run_id = o.get("from_seq"), o.get("run_id")
    if from_seq is not None and (type(from_seq) is not int or from_seq < 1):
        raise CommandError("from_seq must be a positive integer")
    if run_id is not None and not isinstance(run_id, str):
        raise CommandError("run_id must be a string")
    if cmd == "subscribe" and feeds is None:
        feeds = frozenset(DEFAULT_FEEDS)
    return Command(cmd, feeds, _names(o, "tickers", max_tickers), depth == "full", min_seq,
                   from_seq, run_id, o.get("id"))


# -- entry points (transports.py imports this module by scheme) -------------------------


class WsTransport:
    """The publisher side of one ``ws://`` URL (:class:`~kalshi_platform.feed.transports.
    Transport`): ``url`` (the bound address), ``close()``, ``stats()`` (sent, dropped,
    subscribers, lag, per-client counters), and ``server``
    (:class:`~kalshi_platform.feed.ws_server.WsServer`)."""

    def __init__(self, server: Any, runner: Any, mirror_runner: Any) -> None:
        self.server = server
        self._runner = runner
        self._mirror_runner = mirror_runner

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.close()

    def stats(self) -> dict[str, Any]:
        st = self.server.stats()
        st["lag"] = self._runner.lag + st["inbox"]
        st["dropped"] += self._runner.dropped
        st["mirror_lag"] = self._mirror_runner.lag
        return st


def attach(stream: Any, url: str, settings: Any = None) -> WsTransport:
    """Serve ``stream`` (an :class:`~kalshi_platform.stream.bus.EventStream`, before its first
    event) on ``url`` (``ws://HOST:PORT[?options]``, :func:`~kalshi_platform.feed.ws.
    parse_url`). Raises :class:`~kalshi_platform.feed.transports.TransportError` for a bad URL
    and :class:`OSError` when it cannot bind. ``settings.stream_queue_events`` bounds the book
    mirror's in-memory queue (it spills beyond)."""
    from kalshi_platform.feed.snapshots import MirrorConsumer
    from kalshi_platform.feed.ws_server import WsServer

    cfg = parse_url(url)
    mirror = MirrorConsumer(stream.run_id)
    holder: dict[str, Any] = {}
    server = WsServer(stream.run_id, cfg, mirror,
                      mirror_failed=lambda: getattr(holder.get("m"), "failed", None))
    server.start()
    try:
        name = f"ws-{cfg.host}:{server.url.rsplit(':', 1)[1]}"
        holder["m"] = stream.attach(mirror, name + "-books", overflow="spill",
                                    max_events=getattr(settings, "stream_queue_events",
                                                       1_000_000))
        runner = stream.attach(server.consumer, name, overflow="drop",
                               max_events=cfg.stream_queue)
    except BaseException:
        server.close()
        raise
    return WsTransport(server, runner, holder["m"])


def __getattr__(name: str) -> Any:  # lazy: the client side need not import the server
    if name == "Client":
        from kalshi_platform.feed.ws_client import Client

        return Client
    raise AttributeError(name)
