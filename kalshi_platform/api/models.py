"""Typed records for Kalshi REST responses (docs/kalshi-api.md §3–§5).

Every record is a frozen :class:`msgspec.Struct` built from the decoded JSON object by its
``from_wire`` classmethod. Units inside the platform (:mod:`kalshi_platform.fixedpoint`):

* prices: ``int`` **micro-dollars** (1e-6 USD) — from ``*_dollars`` strings, or from legacy
  integer cents (pre-2026-03-12 fields such as ``yes_bid``/``yes_price``) when the string form
  is absent (§5);
* sizes, volumes, open interest: ``int`` **centi-contracts** (1e-2 contracts) — from ``*_fp``
  strings or legacy integer contract counts;
* times: ``int`` ns since the Unix epoch (UTC) in ``*_ns`` fields, alongside the RFC3339 text
  as sent; candlestick ``end_period_ts`` stays in Unix seconds as on the wire.

No floats: JSON numbers with a fraction (``fee_multiplier``, ``floor_strike``) are decoded as
:class:`decimal.Decimal` by the REST client (see :func:`decode_json`). A wire object that
cannot be interpreted raises :class:`ModelError` naming the object and the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable, Optional

import msgspec

from kalshi_platform.fixedpoint import (
    MAX_SIZE,
    ONE_DOLLAR,
    FixedPointError,
    cents_to_price,
    contracts_to_size,
    parse_price,
    parse_size,
)
from kalshi_platform.ingestion.messages import DecodeError, iso_to_ns
from kalshi_platform.ticker_plant.events import TradeEvent

__all__ = [
    "ModelError",
    "decode_json",
    "ExchangeStatus",
    "Series",
    "Event",
    "PriceRange",
    "Market",
    "Level",
    "Orderbook",
    "Trade",
    "HistoricalCutoff",
    "OHLC",
    "PriceOHLC",
    "Candlestick",
    "Candlesticks",
]

Level = tuple[int, int]  # (price µ$, size centi-contracts)

_DECODER = msgspec.json.Decoder(float_hook=Decimal)


class ModelError(ValueError):
    """A REST object lacks a required field or carries a value that is not valid for it
    (e.g. a price string that is not a decimal, a level outside (0, 1) dollars)."""


def decode_json(data: bytes | str) -> Any:
    """JSON → Python objects with fractional numbers as ``Decimal`` (never ``float``).

    Raises :class:`ModelError` on invalid JSON.
    """
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError as e:
        raise ModelError(f"invalid JSON: {e}") from None


# -- field helpers ---------------------------------------------------------------------------


def _obj(obj: Any, what: str) -> dict:
    if not isinstance(obj, dict):
        raise ModelError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _req_str(obj: dict, key: str, what: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str) or not v:
        raise ModelError(f"{what}: {key} must be a non-empty string, got {v!r}")
    return v


def _opt_str(obj: dict, key: str) -> str | None:
    v = obj.get(key)
    return v if isinstance(v, str) else None


def _fixed(obj: dict, key: str, legacy: str | None, what: str, required: bool,
           parse: Callable[[str], int], convert: Callable[[Any], int], kind: str) -> int | None:
    """Fixed-point units from ``obj[key]`` (string) or else ``obj[legacy]`` (integer units of
    the pre-2026-03-12 era); ``""`` and ``null`` mean "not set" (docs/kalshi-api.md §5)."""
    v = obj.get(key)
    try:
        if isinstance(v, str) and v != "":
            return parse(v)
        if v is None or v == "":
            c = obj.get(legacy) if legacy else None
            if c is None:
                if required:
                    raise ModelError(f"{what}: {key} missing")
                return None
            return convert(c)
        raise ModelError(f"{what}: {key} must be a {kind} string, got {v!r}")
    except FixedPointError as e:
        raise ModelError(f"{what}: {key}: {e}") from None


def _price(obj: dict, key: str, legacy: str | None, what: str, *, required: bool = False,
           lo: int | None = None, hi: int | None = None) -> int | None:
    """µ$ from ``obj[key]`` (dollar string) or ``obj[legacy]`` (integer cents)."""
    out = _fixed(obj, key, legacy, what, required, parse_price, cents_to_price, "dollar")
    if out is not None and ((lo is not None and out < lo) or (hi is not None and out > hi)):
        raise ModelError(f"{what}: {key} {obj.get(key)!r} outside [{lo}, {hi}] micro-dollars")
    return out


def _size(obj: dict, key: str, legacy: str | None, what: str, *,
          required: bool = False, signed: bool = False) -> int | None:
    """Centi-contracts from ``obj[key]`` (``*_fp`` string) or ``obj[legacy]`` (integer);
    negative only when ``signed``."""
    out = _fixed(obj, key, legacy, what, required, parse_size, contracts_to_size, "decimal")
    if out is not None and out < 0 and not signed:
        raise ModelError(f"{what}: {key} {obj.get(key)!r} is negative")
    return out


def _time_ns(obj: dict, key: str, what: str, *, required: bool = False) -> int | None:
    v = obj.get(key)
    if v is None or v == "":
        if required:
            raise ModelError(f"{what}: {key} missing")
        return None
    try:
        return iso_to_ns(v)
    except DecodeError as e:
        raise ModelError(f"{what}: {key}: {e}") from None


def _number(v: Any) -> Decimal | int | None:
    """A JSON number as sent (int, or Decimal from :func:`decode_json`); ``float`` input (from
    a stdlib ``json`` decode) is converted through its repr, which is exact for JSON text."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, Decimal)):
        return v
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str) and v:
        try:
            return Decimal(v)
        except ArithmeticError:
            return None
    return None


# -- exchange, series, events ----------------------------------------------------------------


class ExchangeStatus(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /exchange/status`` (docs/kalshi-api.md §3.2). ``resume_time`` is RFC3339 or ``None``."""

    exchange_active: bool
    trading_active: bool
    resume_time: Optional[str] = None
    raw: dict = {}

    @classmethod
    def from_wire(cls, obj: Any) -> "ExchangeStatus":
        o = _obj(obj, "exchange status")
        ea, ta = o.get("exchange_active"), o.get("trading_active")
        if not isinstance(ea, bool) or not isinstance(ta, bool):
            raise ModelError("exchange status: exchange_active/trading_active must be booleans")
        return cls(exchange_active=ea, trading_active=ta,
                   resume_time=_opt_str(o, "exchange_estimated_resume_time"), raw=o)


class Series(msgspec.Struct, frozen=True, kw_only=True):
    """A series (docs/kalshi-api.md §3.3): ``fee_multiplier`` is exact (``Decimal``/``int``)."""

    ticker: str
    title: str = ""
    category: str = ""
    frequency: str = ""
    tags: tuple[str, ...] = ()
    fee_type: Optional[str] = None
    fee_multiplier: Decimal | int | None = None
    raw: dict = {}

    @classmethod
    def from_wire(cls, obj: Any) -> "Series":
        o = _obj(obj, "series")
        return cls(ticker=_req_str(o, "ticker", "series"), title=o.get("title") or "",
                   category=o.get("category") or "", frequency=o.get("frequency") or "",
                   tags=tuple(t for t in (o.get("tags") or ()) if isinstance(t, str)),
                   fee_type=_opt_str(o, "fee_type"),
                   fee_multiplier=_number(o.get("fee_multiplier")), raw=o)


class PriceRange(msgspec.Struct, frozen=True, array_like=True):
    """One entry of a market's ``price_ranges`` (µ$): valid prices are start..end by step."""

    start: int
    end: int
    step: int


class Market(msgspec.Struct, frozen=True, kw_only=True):
    """A market (docs/kalshi-api.md §4). Prices µ$, sizes centi-contracts, times ns UTC; every
    numeric field is ``None`` when the wire did not carry it. ``status`` is the market status
    (``active``, ``finalized``, …), ``result`` ``"yes"``/``"no"``/``"scalar"``/``""``.
    Top-of-book sizes are kept as sent, sign included (Kalshi has sent ``"-3.00"``).
    ``raw`` is the wire object (rules text, custom strikes, …)."""

    ticker: str
    event_ticker: str = ""
    market_type: str = ""
    status: str = ""
    title: str = ""
    yes_sub_title: str = ""
    no_sub_title: str = ""
    open_time: Optional[str] = None
    close_time: Optional[str] = None
    open_ns: Optional[int] = None
    close_ns: Optional[int] = None
    yes_bid: Optional[int] = None
    yes_ask: Optional[int] = None
    no_bid: Optional[int] = None
    no_ask: Optional[int] = None
    last_price: Optional[int] = None
    yes_bid_size: Optional[int] = None
    yes_ask_size: Optional[int] = None
    volume: Optional[int] = None
    volume_24h: Optional[int] = None
    open_interest: Optional[int] = None
    result: str = ""
    settlement_value: Optional[int] = None
    settlement_ns: Optional[int] = None
    price_level_structure: Optional[str] = None
    price_ranges: tuple[PriceRange, ...] = ()
    strike_type: Optional[str] = None
    floor_strike: Decimal | int | None = None
    cap_strike: Decimal | int | None = None
    raw: dict = {}

    @property
    def series_ticker(self) -> str:
        """The series part of the event ticker (``KXHIGHNY`` of ``KXHIGHNY-26JUN15``)."""
        return self.event_ticker.split("-", 1)[0]

    @classmethod
    def from_wire(cls, obj: Any) -> "Market":
        o = _obj(obj, "market")
        t = _req_str(o, "ticker", "market")
        w = f"market {t}"
        ranges = []
        for r in o.get("price_ranges") or ():
            try:
                ranges.append(PriceRange(parse_price(r["start"]), parse_price(r["end"]),
                                         parse_price(r["step"])))
            except (KeyError, TypeError, FixedPointError) as e:
                raise ModelError(f"{w}: price_ranges entry {r!r}: {e}") from None
        return cls(
            ticker=t,
            event_ticker=o.get("event_ticker") or "",
            market_type=o.get("market_type") or "",
            status=o.get("status") or "",
            title=o.get("title") or "",
            yes_sub_title=o.get("yes_sub_title") or "",
            no_sub_title=o.get("no_sub_title") or "",
            open_time=_opt_str(o, "open_time"),
            close_time=_opt_str(o, "close_time"),
            open_ns=_time_ns(o, "open_time", w),
            close_ns=_time_ns(o, "close_time", w),
            yes_bid=_price(o, "yes_bid_dollars", "yes_bid", w),
            yes_ask=_price(o, "yes_ask_dollars", "yes_ask", w),
            no_bid=_price(o, "no_bid_dollars", "no_bid", w),
            no_ask=_price(o, "no_ask_dollars", "no_ask", w),
            last_price=_price(o, "last_price_dollars", "last_price", w),
            # summary fields are reported as sent: Kalshi has served yes_bid_size_fp "-3.00"
            # on a determined market (fortuna_demo markets__high_temp.json)
            yes_bid_size=_size(o, "yes_bid_size_fp", None, w, signed=True),
            yes_ask_size=_size(o, "yes_ask_size_fp", None, w, signed=True),
            volume=_size(o, "volume_fp", "volume", w),
            volume_24h=_size(o, "volume_24h_fp", "volume_24h", w),
            open_interest=_size(o, "open_interest_fp", "open_interest", w),
            result=o.get("result") or "",
            settlement_value=_price(o, "settlement_value_dollars", "settlement_value", w),
            settlement_ns=_time_ns(o, "settlement_ts", w),
            price_level_structure=_opt_str(o, "price_level_structure"),
            price_ranges=tuple(ranges),
            strike_type=_opt_str(o, "strike_type"),
            floor_strike=_number(o.get("floor_strike")),
            cap_strike=_number(o.get("cap_strike")),
            raw=o,
        )


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """An event (docs/kalshi-api.md §3.4) with its markets when the response carried them (nested
    ``event.markets`` with ``with_nested_markets=true``, or the top-level ``markets`` list of
    ``GET /events/{ticker}``)."""

    event_ticker: str
    series_ticker: str = ""
    title: str = ""
    sub_title: str = ""
    mutually_exclusive: Optional[bool] = None
    markets: tuple[Market, ...] = ()
    raw: dict = {}

    @classmethod
    def from_wire(cls, obj: Any, markets: list | None = None) -> "Event":
        o = _obj(obj, "event")
        t = _req_str(o, "event_ticker", "event")
        wire_markets = o.get("markets") or markets or ()
        me = o.get("mutually_exclusive")
        return cls(event_ticker=t, series_ticker=o.get("series_ticker") or "",
                   title=o.get("title") or "", sub_title=o.get("sub_title") or "",
                   mutually_exclusive=me if isinstance(me, bool) else None,
                   markets=tuple(Market.from_wire(m) for m in wire_markets), raw=o)


# -- order book --------------------------------------------------------------------------------


def _levels(raw: Any, side: str, what: str, legacy_cents: bool) -> tuple[Level, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ModelError(f"{what}: {side} must be a list of levels, got {type(raw).__name__}")
    out: dict[int, int] = {}
    for lv in raw:
        if not isinstance(lv, (list, tuple)) or len(lv) != 2:
            raise ModelError(f"{what}: {side} level {lv!r} is not [price, count]")
        p, q = lv
        try:
            price = cents_to_price(p) if legacy_cents else parse_price(p)
            size = contracts_to_size(q) if type(q) is int else parse_size(q)
        except FixedPointError as e:
            raise ModelError(f"{what}: {side} level {lv!r}: {e}") from None
        if not 0 < price < ONE_DOLLAR or not 0 < size <= MAX_SIZE:
            # the WebSocket snapshot's rule (docs/plant-contract.md): one policy for both
            raise ModelError(f"{what}: {side} level {lv!r} outside (0, 1) dollars or "
                             "(0, 10^10] contracts")
        if price in out:
            raise ModelError(f"{what}: {side} has two levels at {p!r}")
        out[price] = size
    return tuple(sorted(out.items(), reverse=True))


class Orderbook(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /markets/{ticker}/orderbook`` (docs/kalshi-api.md §3.6): both ladders are **bids**,
    ``(price µ$, size centi-contracts)``, sorted **best first** (highest price first) whatever
    order the wire used. A NO bid at q is a YES ask at 1 − q."""

    ticker: str
    yes: tuple[Level, ...] = ()
    no: tuple[Level, ...] = ()

    @classmethod
    def from_wire(cls, obj: Any, ticker: str = "") -> "Orderbook":
        """Accepts the current ``orderbook_fp`` (``yes_dollars``/``no_dollars`` as
        ``[price_str, count_str]``) and the legacy ``orderbook`` (``yes``/``no`` as
        ``[cents, count]``, or ``yes_dollars`` as ``[price_str, count_int]``). A missing or
        ``null`` side is empty. Raises :class:`ModelError`."""
        o = _obj(obj, "orderbook")
        ticker = ticker or o.get("ticker") or ""
        what = f"orderbook {ticker}".rstrip()
        fp = o.get("orderbook_fp")
        if isinstance(fp, dict):
            return cls(ticker=ticker, yes=_levels(fp.get("yes_dollars"), "yes_dollars", what, False),
                       no=_levels(fp.get("no_dollars"), "no_dollars", what, False))
        lg = o.get("orderbook")
        if isinstance(lg, dict):
            def side(name: str) -> tuple[Level, ...]:
                if lg.get(f"{name}_dollars") is not None:
                    return _levels(lg[f"{name}_dollars"], f"{name}_dollars", what, False)
                return _levels(lg.get(name), name, what, True)
            return cls(ticker=ticker, yes=side("yes"), no=side("no"))
        raise ModelError(f"{what}: response has neither orderbook_fp nor orderbook")

    @property
    def best_yes_bid(self) -> Level | None:
        return self.yes[0] if self.yes else None

    @property
    def best_no_bid(self) -> Level | None:
        return self.no[0] if self.no else None

    @property
    def yes_asks(self) -> tuple[Level, ...]:
        """YES asks implied by the NO bids (1 − q, same size), best (lowest) first."""
        return tuple((ONE_DOLLAR - p, s) for p, s in self.no)

    @property
    def best_yes_ask(self) -> Level | None:
        return (ONE_DOLLAR - self.no[0][0], self.no[0][1]) if self.no else None


# -- trades ----------------------------------------------------------------------------------


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    """A public trade from ``/markets/trades`` or ``/historical/trades`` (docs/kalshi-api.md §3.7).

    ``yes_price``/``no_price`` µ$ (``no_price`` = 1 − yes when not sent), ``count``
    centi-contracts, ``ts_ns`` = ``created_time`` in ns UTC. ``taker_side`` is
    ``taker_outcome_side`` when present, else the deprecated ``taker_side`` (``"yes"``/``"no"``
    or ``None``). The wire strings are kept in ``*_dollars``/``count_fp`` (``None`` for legacy
    integer-only trades).
    """

    trade_id: str
    ticker: str
    yes_price: int
    no_price: int
    count: int
    taker_side: Optional[str]
    created_time: str
    ts_ns: int
    taker_book_side: Optional[str] = None
    is_block_trade: Optional[bool] = None
    yes_price_dollars: Optional[str] = None
    no_price_dollars: Optional[str] = None
    count_fp: Optional[str] = None

    @classmethod
    def from_wire(cls, obj: Any) -> "Trade":
        o = _obj(obj, "trade")
        tid = _req_str(o, "trade_id", "trade")
        w = f"trade {tid}"
        ticker = _req_str(o, "ticker", w)
        yes = _price(o, "yes_price_dollars", "yes_price", w, lo=0, hi=ONE_DOLLAR)
        if yes is None:  # oldest shape: "price" (cents, YES side)
            yes = _price(o, "price_dollars", "price", w, required=True, lo=0, hi=ONE_DOLLAR)
        no = _price(o, "no_price_dollars", "no_price", w, lo=0, hi=ONE_DOLLAR)
        if no is None:
            no = ONE_DOLLAR - yes  # type: ignore[operator]
        count = _size(o, "count_fp", "count", w, required=True)
        side = o.get("taker_outcome_side") or o.get("taker_side")
        blk = o.get("is_block_trade")
        return cls(trade_id=tid, ticker=ticker, yes_price=yes, no_price=no,  # type: ignore[arg-type]
                   count=count, taker_side=side if side in ("yes", "no") else None,  # type: ignore[arg-type]
                   created_time=_req_str(o, "created_time", w),
                   ts_ns=_time_ns(o, "created_time", w, required=True),  # type: ignore[arg-type]
                   taker_book_side=_opt_str(o, "taker_book_side"),
                   is_block_trade=blk if isinstance(blk, bool) else None,
                   yes_price_dollars=_opt_str(o, "yes_price_dollars"),
                   no_price_dollars=_opt_str(o, "no_price_dollars"),
                   count_fp=_opt_str(o, "count_fp"))

    def to_event(self, recv_ns: int | None = None) -> TradeEvent:
        """The plant's :class:`~kalshi_platform.ticker_plant.events.TradeEvent` for this trade
        (``ts_ns`` = exchange time, ``recv_ns`` = when we fetched it)."""
        return TradeEvent(self.ticker, self.ts_ns, self.trade_id, self.yes_price, self.no_price,
                          self.count, self.taker_side, recv_ns)


class HistoricalCutoff(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /historical/cutoff`` (docs/kalshi-api.md §3.9): trades created before
    ``trades_created_ns`` are served only by ``/historical/trades``; markets settled before
    ``market_settled_ns`` only by ``/historical/markets``. RFC3339 text plus ns UTC."""

    trades_created_ts: str
    trades_created_ns: int
    market_settled_ts: Optional[str] = None
    market_settled_ns: Optional[int] = None
    orders_updated_ts: Optional[str] = None
    orders_updated_ns: Optional[int] = None

    @classmethod
    def from_wire(cls, obj: Any) -> "HistoricalCutoff":
        o = _obj(obj, "historical cutoff")
        w = "historical cutoff"
        return cls(trades_created_ts=_req_str(o, "trades_created_ts", w),
                   trades_created_ns=_time_ns(o, "trades_created_ts", w, required=True),  # type: ignore[arg-type]
                   market_settled_ts=_opt_str(o, "market_settled_ts"),
                   market_settled_ns=_time_ns(o, "market_settled_ts", w),
                   orders_updated_ts=_opt_str(o, "orders_updated_ts"),
                   orders_updated_ns=_time_ns(o, "orders_updated_ts", w))


# -- candlesticks ----------------------------------------------------------------------------


class OHLC(msgspec.Struct, frozen=True, kw_only=True):
    """Open/high/low/close in µ$ (``None`` when not sent, e.g. no trades in the period)."""

    open: Optional[int] = None
    high: Optional[int] = None
    low: Optional[int] = None
    close: Optional[int] = None


class PriceOHLC(OHLC, frozen=True, kw_only=True):
    """Trade-price OHLC plus ``mean`` and ``previous`` (last price before the period), µ$."""

    mean: Optional[int] = None
    previous: Optional[int] = None


def _ohlc(obj: Any, what: str, cls: type, fields: tuple[str, ...]):
    if obj is None:
        return None
    o = _obj(obj, what)
    vals = {}
    for f in fields:  # live: open_dollars …; historical: open … (docs/kalshi-api.md §3.8)
        key = f"{f}_dollars" if f"{f}_dollars" in o else f
        vals[f] = _price(o, key, None, what)
    return cls(**vals)


class Candlestick(msgspec.Struct, frozen=True, kw_only=True):
    """One candle (docs/kalshi-api.md §3.8): ``end_period_ts`` Unix seconds; ``yes_bid``/``yes_ask``
    quote OHLC and ``price`` trade OHLC in µ$; ``volume``/``open_interest`` centi-contracts.
    Accepts both the live (``*_dollars``/``*_fp``) and the historical (no suffix) field names."""

    end_period_ts: int
    yes_bid: Optional[OHLC] = None
    yes_ask: Optional[OHLC] = None
    price: Optional[PriceOHLC] = None
    volume: Optional[int] = None
    open_interest: Optional[int] = None

    @classmethod
    def from_wire(cls, obj: Any) -> "Candlestick":
        o = _obj(obj, "candlestick")
        end = o.get("end_period_ts")
        if type(end) is not int:
            raise ModelError(f"candlestick: end_period_ts must be an int (Unix s), got {end!r}")
        w = f"candlestick {end}"
        four = ("open", "high", "low", "close")

        def qty(name: str) -> int | None:
            key = f"{name}_fp" if f"{name}_fp" in o else name
            if type(o.get(key)) is int:  # legacy integer contracts
                return _size(o, "", key, w)
            return _size(o, key, None, w)

        return cls(end_period_ts=end,
                   yes_bid=_ohlc(o.get("yes_bid"), f"{w} yes_bid", OHLC, four),
                   yes_ask=_ohlc(o.get("yes_ask"), f"{w} yes_ask", OHLC, four),
                   price=_ohlc(o.get("price"), f"{w} price", PriceOHLC,
                               four + ("mean", "previous")),
                   volume=qty("volume"), open_interest=qty("open_interest"))


class Candlesticks(msgspec.Struct, frozen=True, kw_only=True):
    """A market's candles, oldest first as sent."""

    ticker: str
    candlesticks: tuple[Candlestick, ...] = ()

    @classmethod
    def from_wire(cls, obj: Any, ticker: str = "") -> "Candlesticks":
        o = _obj(obj, "candlesticks")
        return cls(ticker=o.get("ticker") or ticker,
                   candlesticks=tuple(Candlestick.from_wire(c)
                                      for c in (o.get("candlesticks") or ())))
