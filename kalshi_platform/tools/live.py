"""``kalshi-platform run``, ``record`` and ``sim``: the live feed and the local Kalshi server.

* ``run``: markets (``--markets``, ``--event``, ``--series``; events and series resolved over
  REST, explicit tickers checked there) → WebSocket ingester → ticker plant → ``--sink``
  (parquet / none), optionally teeing raw frames to ``--record DIR``; a status line every
  ``--status-interval`` s on stderr; SIGINT/SIGTERM or ``--duration`` stop it with everything
  flushed.
* ``record``: the same feed with no sinks, recording raw frames (``--out DIR``). The plant
  still runs, so gaps are resynced and the recording contains the snapshots that heal them.
* ``sim``: the local Kalshi-compatible server (:mod:`kalshi_platform.sim.app`).

Failure policy (one line on stderr, never a traceback or a hang): a bad option, unreadable or
malformed PEM, unknown market/event/series, or credentials the server rejects (HTTP 401) →
exit 2; a host that cannot be reached (REST after its retries, WebSocket after
``--connect-attempts`` tries of at most ``--open-timeout`` s each) → exit 2 as well
(:mod:`kalshi_platform.tools.exitcodes`: bad input or an unreachable service). Once the
WebSocket has connected, disconnects are retried forever with capped backoff. A sink that
fails during the run (full disk, …) is marked failed by the plant while the rest go on; the
command then prints its summary as usual, one line naming the failed sink(s), and exits 1.

The REST and WebSocket clients, the recorder, the stores and the settings are imported inside
the command bodies, so registering these commands costs nothing at CLI start.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional
from urllib.parse import urlparse

import typer
from rich.table import Table

from kalshi_platform.feed.transports import TransportError, parse_publish
from kalshi_platform.logfmt import sink_failures_line
from kalshi_platform.stream.sinks import plant_outputs
from kalshi_platform.ticker_plant.plant import TickerPlant
from kalshi_platform.tools.cli import _fail, _setup_logging, app, console, err_console
from kalshi_platform.tools.sinks import UsageError, build_sinks, parse_sinks

if TYPE_CHECKING:  # imported where used: httpx, websockets, cryptography, pyarrow stay out of start
    from kalshi_platform.api.auth import Signer
    from kalshi_platform.api.rest import RestClient
    from kalshi_platform.live import LiveRun

_LOOPBACK = ("127.0.0.1", "localhost", "::1")

# -- shared helpers -------------------------------------------------------------------------


def split_list(values: List[str] | None) -> list[str]:
    """``["A,B", "C"]`` → ``["A", "B", "C"]`` (order kept, duplicates and blanks dropped)."""
    out: list[str] = []
    for v in values or ():
        out.extend(t.strip() for t in v.split(",") if t.strip())
    return list(dict.fromkeys(out))


async def resolve_markets(client: RestClient, markets: list[str], events: list[str],
                          series: list[str], status: str | None) -> list[str]:
    """Market tickers to subscribe: ``markets`` (each checked to exist over REST), plus every
    market of each event and series with the given ``status`` filter (``open`` …, ``None`` =
    any; docs/kalshi-api.md §3.5).

    Raises :class:`UsageError` for unknown tickers or an event/series without such markets;
    :class:`~kalshi_platform.api.rest.RestError` when REST fails.
    """
    out: list[str] = []
    if markets:
        found: set[str] = set()
        for i in range(0, len(markets), 100):
            chunk = markets[i:i + 100]
            async for m in client.iter_markets(tickers=chunk):
                found.add(m.ticker)
        missing = [t for t in markets if t not in found]
        if missing:
            raise UsageError(f"unknown market{'s' if len(missing) > 1 else ''}: "
                             f"{', '.join(missing)} (not found at {client.base_url})")
        out.extend(markets)
    for kind, names in (("event_ticker", events), ("series_ticker", series)):
        for name in names:
            got = [m.ticker async for m in client.iter_markets(**{kind: name}, status=status)]
            if not got:
                what = "event" if kind == "event_ticker" else "series"
                raise UsageError(f"{what} {name}: no {status + ' ' if status else ''}markets "
                                 f"at {client.base_url} (unknown {what}?)")
            out.extend(got)
    return list(dict.fromkeys(out))


def _signer(key_id: str | None, key_path: Path | None, ws_url: str) -> Signer | None:
    """The WebSocket/REST signer from the options or the settings; ``None`` (a warning for a
    non-loopback host) when no key is configured. A bad or half-given key exits 2."""
    from kalshi_platform.api.auth import AuthError, Signer
    from kalshi_platform.config import get_settings

    settings = get_settings()
    kid = key_id or settings.api_key_id
    path = key_path or settings.private_key_path
    if kid and path:
        try:
            return Signer.from_pem_file(kid, path)
        except AuthError as e:
            _fail(str(e))
    if kid or path:
        _fail("set both the API key id (--key-id / KALSHI_API_KEY_ID) and the private key "
              "(--private-key / KALSHI_PRIVATE_KEY_PATH), or neither")
    host = urlparse(ws_url).hostname or ""
    if host not in _LOOPBACK:
        err_console.print("warning: no API key configured; Kalshi requires a signed WebSocket "
                          "handshake (docs/kalshi-api.md §2.4)", highlight=False)
    return None


def _print_summary(s: dict[str, Any], title: str) -> None:
    """The run/record summary as a two-column table on stdout."""
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    t.add_row("stopped by", s["stopped_by"] or "-")
    t.add_row("elapsed", f"{s['elapsed_s']:.1f} s")
    t.add_row("frames", f"{s['frames']:,}")
    t.add_row("messages", ", ".join(f"{k} {v:,}" for k, v in s["messages_by_type"].items()) or "0")
    t.add_row("markets", f"{s['market_count']} ("
              + ", ".join(f"{k} {v}" for k, v in s["market_states"].items()) + ")")
    t.add_row("gaps / resyncs / reconnects",
              f"{s['gaps']} / {s['resyncs']} / {s['reconnects']}")
    t.add_row("quarantined", str(s["quarantined"]))
    if s["rows_written"] is not None:
        t.add_row("rows written", f"{s['rows_written']:,}")
    if s["recording"] is not None:
        r = s["recording"]
        t.add_row("recorded", f"{r['frames']:,} frames in {len(r['files'])} file(s)"
                  + (f" — {r['failed']}" if r["failed"] else ""))
    console.print(t)


_PUBLISH = typer.Option("", "--publish", help="Also publish the event stream to subscribers: comma-separated ipc://PATH, udp://HOST:PORT, ws://HOST:PORT (docs/feed-protocol.md), nats://HOST:PORT[,HOST:PORT…] (JetStream, docs/scale-out.md).")


def _feed(*, markets: List[str] | None, event: List[str] | None, series: List[str] | None,
          status: str, sink: str, store: Path | None, record_dir: Path | None, gzip: bool,
          rotate_mb: float, ws_url: str | None, base_url: str | None, env: str | None,
          key_id: str | None, private_key: Path | None, duration: float | None,
          use_yes_price: bool, status_interval: float, stale_after: float,
          open_timeout: float, connect_attempts: int, exit_on_close: bool,
          summary_json: Path | None, title: str, publish: str = "",
          metrics_port: int | None = None, shard: str | None = None) -> None:
    """The body of ``run`` and ``record``."""
    from kalshi_platform.config import get_settings

    settings = get_settings()
    tickers = split_list(markets)
    events = split_list(event)
    series_l = split_list(series)
    if not (tickers or events or series_l):
        _fail("give at least one of --markets, --event, --series")
    env, url = _check_options(settings, env=env, ws_url=ws_url, duration=duration,
                              open_timeout=open_timeout, connect_attempts=connect_attempts,
                              stale_after=stale_after, rotate_mb=rotate_mb)
    try:
        sink_names = parse_sinks(sink)
        publish_urls = parse_publish(publish) if publish else []
    except (UsageError, TransportError) as e:
        _fail(str(e))
    metrics_addr = _metrics_address(settings, metrics_port)  # a bad port fails before REST
    signer = _signer(key_id, private_key, url)
    resolved = _resolve(settings, tickers, events, series_l, status=status, base_url=base_url,
                        env=env, signer=signer, open_timeout=open_timeout)
    if shard:
        resolved, publish_urls = _shard_of(shard, resolved, publish_urls)
    live = _build_live(settings, url=url, resolved=resolved, signer=signer,
                       use_yes_price=use_yes_price, record_dir=record_dir, gzip=gzip,
                       rotate_mb=rotate_mb, sink_names=sink_names, store=store,
                       publish_urls=publish_urls, open_timeout=open_timeout,
                       stale_after=stale_after, connect_attempts=connect_attempts,
                       exit_on_close=exit_on_close, status_interval=status_interval,
                       title=title)
    _start_metrics(live, metrics_addr)
    summary = _run_live(live, duration)
    if summary_json is not None:
        try:
            summary_json.parent.mkdir(parents=True, exist_ok=True)
            summary_json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        except OSError as e:
            _fail(f"cannot write {summary_json}: {e.strerror or e}")
    _print_summary(summary, title)
    if summary.get("sink_failures"):  # the run went on without them: say so, exit 1
        _fail(sink_failures_line(summary["sink_failures"]), 1)


def _shard_of(spec: str, resolved: list[str], urls: list[str]) -> tuple[list[str], list[str]]:
    """``--shard K/N``: the markets of shard K, and the nats:// URLs with ``shard=K`` and
    ``lease_s=5`` added where not given (kalshi_platform/feed/nats_shard.py). A bad spec, or
    a shard without any of the markets, is one line and exit 2."""
    from urllib.parse import parse_qsl

    from kalshi_platform.feed.nats_shard import ShardError, markets_of_shard, parse_shard

    try:
        k, n = parse_shard(spec)
    except ShardError as e:
        _fail(str(e))
        raise AssertionError("unreachable") from None
    mine = markets_of_shard(resolved, k, n)
    if not mine:
        _fail(f"shard {k}/{n} has none of the {len(resolved)} market(s); fewer shards?")
    out = []
    for u in urls:
        if u.startswith("nats://"):
            have = dict(parse_qsl(u.partition("?")[2]))
            add = [f"{key}={v}" for key, v in (("shard", k), ("lease_s", 5)) if key not in have]
            if add:
                u += ("&" if "?" in u else "?") + "&".join(add)
        out.append(u)
    return mine, out


def _metrics_address(settings: Any, port: int | None) -> tuple[int, str] | None:
    """``(port, host)`` of the ``/metrics`` endpoint from ``--metrics-port`` or
    ``KALSHI_METRICS_PORT`` (host ``KALSHI_METRICS_HOST``, loopback by default); ``None``
    when neither is set. A port outside 0..65535 exits 2."""
    port = port if port is not None else settings.metrics_port
    if port is None:
        return None
    if not 0 <= port <= 65535:
        _fail(f"--metrics-port must be in 0..65535, got {port}")
    return port, settings.metrics_host


def _start_metrics(live: LiveRun, addr: tuple[int, str] | None) -> None:
    """Start ``live``'s Prometheus endpoint at ``addr`` (``(port, host)``; ``None`` = off) and
    print its URL on stderr; an address that cannot be bound is one line and exit 2."""
    if addr is None:
        return
    try:
        url = live.start_metrics(*addr)
    except OSError as e:
        live.plant.close()
        if live.recorder is not None:
            live.recorder.close()
        _fail(f"cannot serve metrics on {addr[1]}:{addr[0]}: {e.strerror or e}")
    err_console.print(f"metrics: {url}", highlight=False, soft_wrap=True)


def _check_options(settings: Any, *, env: str | None, ws_url: str | None,
                   duration: float | None, open_timeout: float, connect_attempts: int,
                   stale_after: float, rotate_mb: float) -> tuple[str, str]:
    """Check the numeric options, the environment and the WebSocket URL: ``(env, url)``;
    a bad one is one line and exit 2."""
    from kalshi_platform.ingestion.ws_client import WS_URLS

    if duration is not None and duration <= 0:
        _fail("--duration must be > 0 seconds")
    if not 0 < open_timeout <= 120 or connect_attempts < 1 or stale_after < 0 or rotate_mb < 0:
        _fail("--open-timeout must be in (0, 120], --connect-attempts >= 1, "
              "--stale-after and --rotate-mb >= 0")
    env = env or settings.env
    if env not in WS_URLS:
        _fail(f"--env must be prod or demo, got {env!r}")
    url = ws_url or settings.ws_url or WS_URLS[env]
    if urlparse(url).scheme not in ("ws", "wss"):
        _fail(f"--ws-url must be a ws:// or wss:// URL, got {url!r}")
    return env, url


def _resolve(settings: Any, tickers: list[str], events: list[str], series: list[str], *,
             status: str, base_url: str | None, env: str, signer: Signer | None,
             open_timeout: float) -> list[str]:
    """The market tickers to subscribe (:func:`resolve_markets` over REST). An unknown
    market, event or series or rejected credentials exit 2; an unreachable host exits 1."""
    import asyncio

    from kalshi_platform.api.auth import AuthError
    from kalshi_platform.api.models import ModelError
    from kalshi_platform.api.rest import NotFoundError, RestClient, RestError

    st = None if status.lower() in ("", "any", "all") else status.lower()
    try:
        rest = RestClient.from_settings(settings, base_url=base_url or None, env=env,
                                        signer=signer, max_retries=2, timeout_s=open_timeout,
                                        backoff_base_s=0.25, backoff_cap_s=2.0)
    except (ValueError, AuthError) as e:
        _fail(str(e))
        raise AssertionError("unreachable") from None

    async def resolve() -> list[str]:
        async with rest:
            return await resolve_markets(rest, tickers, events, series, st)

    try:
        return asyncio.run(resolve())
    except UsageError as e:
        _fail(str(e))
    except NotFoundError as e:
        _fail(f"not found: {e}")
    except RestError as e:
        _fail(str(e), e.exit_code)
    except ModelError as e:
        _fail(f"unexpected REST response from {rest.base_url}: {e}", 1)
    raise AssertionError("unreachable")


def _build_live(settings: Any, *, url: str, resolved: list[str], signer: Signer | None,
                use_yes_price: bool, record_dir: Path | None, gzip: bool, rotate_mb: float,
                sink_names: list[str], store: Path | None, publish_urls: list[Any],
                open_timeout: float, stale_after: float, connect_attempts: int,
                exit_on_close: bool, status_interval: float, title: str) -> LiveRun:
    """Recorder, sinks, plant and WebSocket client for ``resolved``, wired into a
    :class:`~kalshi_platform.live.LiveRun`. A recorder, store or transport that cannot start
    is one line and exit 2."""
    from kalshi_platform.ingestion.recorder import Recorder, RecorderError
    from kalshi_platform.ingestion.ws_client import DEFAULT_CHANNELS, Backoff, KalshiWSClient
    from kalshi_platform.live import LiveRun
    from kalshi_platform.storage.parquet_store import StoreError

    ws_path = urlparse(url).path or "/"
    headers = (lambda: signer.headers("GET", ws_path)) if signer is not None else None
    subscribe_meta = {"ws_url": url, "markets": resolved, "subscribe_cmds": [
        {"cmd": "subscribe", "params": {"channels": ["orderbook_delta"],
                                        "market_tickers": resolved,
                                        "use_yes_price": use_yes_price}}]}
    recorder = None
    try:
        if record_dir is not None:
            recorder = Recorder(record_dir, gzip=gzip, rotate_mb=rotate_mb, meta=subscribe_meta)
        publishers = build_sinks(sink_names, writer_id=f"live-{time.strftime('%Y%m%dT%H%M%S')}"
                                 f"-{os.getpid()}", settings=settings, store=store)
    except (RecorderError, StoreError, UsageError) as e:
        _fail(str(e))
        raise AssertionError("unreachable") from None
    try:
        outputs, _transports = plant_outputs(publishers, settings, publish=publish_urls,
                                             flush_by_marker=recorder is not None)
    except TransportError as e:
        for p in publishers:
            p.close()
        _fail(str(e))
        raise AssertionError("unreachable") from None
    plant = TickerPlant(outputs, use_yes_price=use_yes_price)
    client = KalshiWSClient(url, plant, resolved, channels=DEFAULT_CHANNELS, headers=headers,
                            use_yes_price=use_yes_price, taps=[recorder] if recorder else [],
                            open_timeout=open_timeout, stale_after=stale_after,
                            backoff=Backoff(), connect_attempts=connect_attempts,
                            exit_on_close=exit_on_close)
    return LiveRun(client, sinks=publishers, recorder=recorder, status_interval=status_interval,
                   store_flush_s=settings.parquet_flush_s if recorder is not None else None,
                   status=lambda line: err_console.print(line, highlight=False, soft_wrap=True),
                   banner=f"{title}: {len(resolved)} market(s) from {url}"
                   + (f", recording to {record_dir}" if record_dir else "")
                   + (f", sinks {','.join(sink_names)}" if sink_names else ""))


def _run_live(live: LiveRun, duration: float | None) -> dict[str, Any]:
    """Run ``live`` until stopped: its summary. Rejected credentials or a feed error exit 2;
    a host that cannot be reached, a failing store or recorder exit 1 (one line each)."""
    import asyncio

    from kalshi_platform.ingestion.recorder import RecorderError
    from kalshi_platform.ingestion.ws_client import FeedAuthError, FeedConnectError, FeedError
    from kalshi_platform.storage.parquet_store import StoreError

    try:
        return asyncio.run(live.run(duration))
    except FeedAuthError as e:
        _fail(str(e))
    except FeedConnectError as e:  # an unreachable service: exitcodes.USAGE (2)
        _fail(str(e))
    except FeedError as e:
        _fail(str(e))
    except (StoreError, RecorderError) as e:
        _fail(str(e), 1)
    raise AssertionError("unreachable")


# Options shared by run and record (typer has no option groups; keep the lists identical).
_MARKETS = typer.Option(None, "--markets", "-m", help="Market tickers (comma-separated, repeatable).")
_EVENT = typer.Option(None, "--event", help="Event ticker(s): all its markets (REST).")
_SERIES = typer.Option(None, "--series", help="Series ticker(s): all its markets (REST).")
_STATUS = typer.Option("open", help="Market status for --event/--series: open, unopened, paused, "
                                    "closed, settled, or any.")
_WS_URL = typer.Option(None, "--ws-url", help="WebSocket URL (default: KALSHI_WS_URL, else the KALSHI_ENV host).")
_BASE_URL = typer.Option(None, "--base-url", help="REST base URL ending in /trade-api/v2 (default: KALSHI_REST_BASE_URL, else the KALSHI_ENV host).")
_ENV = typer.Option(None, help="prod or demo (default: KALSHI_ENV).")
_KEY_ID = typer.Option(None, "--key-id", help="API key id (default: KALSHI_API_KEY_ID).")
_KEY = typer.Option(None, "--private-key", help="PEM private key (default: KALSHI_PRIVATE_KEY_PATH).")
_DURATION = typer.Option(None, help="Stop after this many seconds (default: run until SIGINT/SIGTERM).")
_YES = typer.Option(False, "--use-yes-price/--no-use-yes-price", help="orderbook_delta use_yes_price flag (docs/kalshi-api.md §7.8), always sent.")
_STATUS_IV = typer.Option(5.0, "--status-interval", help="Seconds between status lines (0 = none).")
_STALE = typer.Option(120.0, "--stale-after", help="Reconnect when no frame arrived for this many seconds (0 = never).")
_OPEN_TO = typer.Option(10.0, "--open-timeout", help="Connect/handshake timeout, seconds (also the REST timeout).")
_ATTEMPTS = typer.Option(3, "--connect-attempts", help="Tries before the first successful connection (afterwards: forever).")
_EXIT_CLOSE = typer.Option(False, "--exit-on-close", help="Stop when the server closes the connection cleanly (code 1000), e.g. `sim --exit-when-done`.")
_SUMMARY = typer.Option(None, "--summary-json", help="Also write the final summary as JSON here.")
_VERBOSE = typer.Option(False, "--verbose", "-v", help="Log at INFO.")
_SHARD = typer.Option(None, "--shard", help="K/N: subscribe only the markets of shard K of N (by event: crc32 of the event ticker mod N); nats:// URLs get ?shard=K&lease_s=5 unless given, so two plants of one shard are leader and standby (docs/scale-out.md).")
_METRICS = typer.Option(None, "--metrics-port", help="Serve Prometheus /metrics on this port (0 = any free port; default: KALSHI_METRICS_PORT, else off; host KALSHI_METRICS_HOST, default 127.0.0.1).")


@app.command()
def run(
    markets: Optional[List[str]] = _MARKETS, event: Optional[List[str]] = _EVENT,
    series: Optional[List[str]] = _SERIES, status: str = _STATUS,
    sink: str = typer.Option("parquet", help="Comma-separated sinks: parquet, questdb, none."),
    publish: str = _PUBLISH,
    store: Optional[Path] = typer.Option(None, help="Parquet store root (default: KALSHI_STORE_DIR or ./store)."),
    record: Optional[Path] = typer.Option(None, "--record", help="Also record raw frames to this directory."),
    gzip: bool = typer.Option(False, "--gzip", help="Recording: gzip the files."),
    rotate_mb: float = typer.Option(256.0, "--rotate-mb", help="Recording: new file after this many MiB (and every UTC hour)."),
    ws_url: Optional[str] = _WS_URL, base_url: Optional[str] = _BASE_URL, env: Optional[str] = _ENV,
    key_id: Optional[str] = _KEY_ID, private_key: Optional[Path] = _KEY,
    duration: Optional[float] = _DURATION, use_yes_price: bool = _YES,
    status_interval: float = _STATUS_IV, stale_after: float = _STALE, open_timeout: float = _OPEN_TO,
    connect_attempts: int = _ATTEMPTS, exit_on_close: bool = _EXIT_CLOSE,
    summary_json: Optional[Path] = _SUMMARY, verbose: bool = _VERBOSE,
    metrics_port: Optional[int] = _METRICS, shard: Optional[str] = _SHARD,
) -> None:
    """Live feed: Kalshi WebSocket → books/BBO → sinks, until stopped."""
    from kalshi_platform.config import get_settings

    _setup_logging(verbose)
    _feed(markets=markets, event=event, series=series, status=status, sink=sink,
          store=store or get_settings().store_dir, record_dir=record, gzip=gzip,
          rotate_mb=rotate_mb, ws_url=ws_url, base_url=base_url, env=env, key_id=key_id,
          private_key=private_key, duration=duration, use_yes_price=use_yes_price,
          status_interval=status_interval, stale_after=stale_after, open_timeout=open_timeout,
          connect_attempts=connect_attempts, exit_on_close=exit_on_close,
          summary_json=summary_json, title="run", publish=publish, metrics_port=metrics_port,
          shard=shard)


@app.command(name="record")
def record_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for the recording files."),
    markets: Optional[List[str]] = _MARKETS, event: Optional[List[str]] = _EVENT,
    series: Optional[List[str]] = _SERIES, status: str = _STATUS,
    gzip: bool = typer.Option(False, "--gzip", help="gzip the files (.jsonl.gz)."),
    rotate_mb: float = typer.Option(256.0, "--rotate-mb", help="New file after this many MiB (and every UTC hour)."),
    ws_url: Optional[str] = _WS_URL, base_url: Optional[str] = _BASE_URL, env: Optional[str] = _ENV,
    key_id: Optional[str] = _KEY_ID, private_key: Optional[Path] = _KEY,
    duration: Optional[float] = _DURATION, use_yes_price: bool = _YES,
    status_interval: float = _STATUS_IV, stale_after: float = _STALE, open_timeout: float = _OPEN_TO,
    connect_attempts: int = _ATTEMPTS, exit_on_close: bool = _EXIT_CLOSE,
    summary_json: Optional[Path] = _SUMMARY, verbose: bool = _VERBOSE,
    metrics_port: Optional[int] = _METRICS,
) -> None:
    """Record raw Kalshi WebSocket frames ({"recv_ts_ns","raw"} JSON Lines) for replay."""
    _setup_logging(verbose)
    _feed(markets=markets, event=event, series=series, status=status, sink="none", store=None,
          record_dir=out, gzip=gzip, rotate_mb=rotate_mb, ws_url=ws_url, base_url=base_url,
          env=env, key_id=key_id, private_key=private_key, duration=duration,
          use_yes_price=use_yes_price, status_interval=status_interval,
          stale_after=stale_after, open_timeout=open_timeout,
          connect_attempts=connect_attempts, exit_on_close=exit_on_close,
          summary_json=summary_json, title="record", metrics_port=metrics_port)


@app.command()
def sim(
    replay: Optional[Path] = typer.Option(None, "--replay", help="Recording to serve (any format `replay` reads)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8765, help="Port (0 = any free port; the URLs are printed)."),
    speed: float = typer.Option(1.0, help="Playback pace: 1 = the recording's, 0 = as fast as possible."),
    public_key: Optional[Path] = typer.Option(None, "--public-key", help="Verify signed handshakes against this PEM (public key, or a private key's public half)."),
    rest_fixtures: Optional[Path] = typer.Option(None, "--rest-fixtures", help="Directory of REST JSON fixtures (trades, markets, cutoff) to serve."),
    cutoff: Optional[str] = typer.Option(None, help="Historical cutoff, RFC3339 (splits /markets/trades and /historical/trades)."),
    use_yes_price: Optional[bool] = typer.Option(None, "--use-yes-price/--no-use-yes-price", help="The recording's use_yes_price convention (default: its .meta.json, else no)."),
    start: str = typer.Option("subscribe", help="Start playback at the first order-book subscription ('subscribe': a `run` gets the whole capture) or at once ('now': REST books are served from the start, what `demo` needs; with --speed 0 they are the capture's final books)."),
    exit_when_done: bool = typer.Option(False, "--exit-when-done", help="After playback, close connections (code 1000) and exit."),
    drop_frames: str = typer.Option("", "--drop-frames", help="Fault: drop these playback frames of every connection (1-based, comma-separated)."),
    drop_every: int = typer.Option(0, "--drop-every", help="Fault: drop every N-th playback frame of every connection."),
    disconnect_after: int = typer.Option(0, "--disconnect-after", help="Fault: abort each connection after N playback frames."),
    rest_429: int = typer.Option(0, "--rest-429", help="Fault: answer the first N REST requests with 429."),
    page_cap: int = typer.Option(0, "--page-cap", help="Fault: at most N items per REST page, whatever limit asks."),
    delay_ms: float = typer.Option(0.0, "--delay-ms", help="Fault: delay every WS frame and REST answer by this many ms."),
    ping_interval: float = typer.Option(10.0, "--ping-interval", help="Seconds between heartbeat pings (0 = none)."),
    rate_limit_read: float = typer.Option(0.0, "--rate-limit-read", help="REST GETs/s per API key (or client address) before 429, as Kalshi's read bucket (Basic: 20); 0 = unlimited."),
    rate_limit_write: float = typer.Option(0.0, "--rate-limit-write", help="REST writes/s (POST/PUT/DELETE) per API key before 429 (Kalshi Basic: 10); 0 = unlimited."),
    exchange: bool = typer.Option(False, "--exchange", help="Serve Kalshi's trading API (orders, fills, positions, /admin) from the matching engine (implied by --users, --wal, --liquidity, --starting-balance; docs/exchange.md)."),
    users: Optional[Path] = typer.Option(None, "--users", help="Trading users: TOML \\[\\[user]] (or JSON list) of key_id, public_key (PEM path), balance_cents."),
    starting_balance: int = typer.Option(0, "--starting-balance", help="Cents given to an API key on its first trading request (0 = none)."),
    wal: Optional[Path] = typer.Option(None, "--wal", help="Write-ahead log directory: every accepted command is fsynced before its answer; recovered on start."),
    liquidity: bool = typer.Option(False, "--liquidity", help="With --replay: the recorded books become resting orders of a 'market' participant that users trade against."),
    fix_port: Optional[int] = typer.Option(None, "--fix-port", help="Also serve the FIX gateway (FIXT.1.1, Kalshi's FIX dictionary) on this port of --host (0 = any free port; implies --exchange). Plain TCP on loopback only, else give --fix-tls-cert/--fix-tls-key (docs/fix.md)."),
    fix_tls_cert: Optional[Path] = typer.Option(None, "--fix-tls-cert", help="FIX over TLS: certificate chain (PEM)."),
    fix_tls_key: Optional[Path] = typer.Option(None, "--fix-tls-key", help="FIX over TLS: private key (PEM)."),
    verbose: bool = _VERBOSE, metrics_port: Optional[int] = _METRICS,
) -> None:
    """Local Kalshi-compatible server (WS v2 + REST) replaying a recording, with fault injection."""
    import asyncio

    from kalshi_platform.sim.faults import Faults, parse_indices
    from kalshi_platform.sim.app import SimError, SimServer

    _setup_logging(verbose)
    if replay is None and rest_fixtures is None and not (exchange or users or wal
                                                         or fix_port is not None):
        _fail("give --replay FILE and/or --rest-fixtures DIR (or --exchange)")
    if not 0 <= port <= 65535 or speed < 0 or delay_ms < 0 or ping_interval < 0:
        _fail("--port must be in 0..65535; --speed, --delay-ms, --ping-interval >= 0")
    if rate_limit_read < 0 or rate_limit_write < 0:
        _fail("--rate-limit-read and --rate-limit-write must be >= 0 (0 = unlimited)")
    if start not in ("subscribe", "now"):
        _fail("--start must be 'subscribe' or 'now'")
    try:
        faults = Faults(drop_frames=parse_indices(drop_frames), drop_every=drop_every,
                        disconnect_after=disconnect_after, rest_429=rest_429, page_cap=page_cap,
                        delay_s=delay_ms / 1000)
        server = SimServer(replay, host=host, port=port, speed=speed, faults=faults,
                           public_key=public_key, rest_fixtures=rest_fixtures, cutoff=cutoff,
                           use_yes_price=use_yes_price, ping_interval=ping_interval,
                           start=start, exit_when_done=exit_when_done,
                           rate_limit_read=rate_limit_read, rate_limit_write=rate_limit_write)
    except ValueError as e:
        _fail(str(e))
        return
    fix = None
    if exchange or users or wal or liquidity or starting_balance or fix_port is not None:
        from kalshi_platform.tools.exchange import attach_sim_exchange

        trading = attach_sim_exchange(server, users, starting_balance, wal, liquidity, _fail)
        if fix_port is not None:  # the FIX gateway on the same engine (docs/fix.md)
            from kalshi_platform.tools.fix_client import attach_sim_fix

            fix = attach_sim_fix(server, trading, fix_port, fix_tls_cert, fix_tls_key, _fail)
    from kalshi_platform.config import get_settings

    metrics_addr = _metrics_address(get_settings(), metrics_port)

    async def serve() -> None:
        import signal

        await server.start()
        metrics = _sim_metrics(server, metrics_addr)
        print(f"sim: WebSocket {server.ws_url}", flush=True)
        print(f"sim: REST {server.rest_url}", flush=True)
        if fix is not None:
            print(f"sim: FIX {fix.host}:{fix.port}{' (TLS)' if fix.ssl else ''}", flush=True)
        print(f"sim: {len(server.known)} market(s), {len(server.data.trades)} REST trade(s)"
              + (f", faults {faults}" if faults.active else ""), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(server.finished.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await server.stop()
            if metrics is not None:
                metrics.close()

    try:
        asyncio.run(serve())
    except SimError as e:
        _fail(str(e))
        return
    s = server.stats
    err_console.print(f"sim: played {s.frames_played:,} frames, sent {s.frames_sent:,}, "
                      f"dropped {s.frames_dropped}, injected disconnects "
                      f"{s.disconnects_injected}, connections {s.connections}, REST "
                      f"{s.rest_requests} ({s.rest_429} × 429 injected, "
                      f"{s.rest_rate_limited} × 429 rate-limited)", highlight=False,
                      soft_wrap=True)
    sys.stdout.flush()


def _sim_metrics(server: Any, addr: tuple[int, str] | None) -> Any:
    """The sim's ``/metrics`` endpoint (its counters as ``kalshi_sim_*``) when ``addr`` is
    set, its URL printed on stdout; ``None`` otherwise. A bind failure exits 2."""
    if addr is None:
        return None
    from kalshi_platform.metrics import SimCollector, serve_metrics

    try:
        m = serve_metrics([SimCollector(server)], *addr)
    except OSError as e:
        _fail(f"cannot serve metrics on {addr[1]}:{addr[0]}: {e.strerror or e}")
    print(f"sim: metrics {m.url}", flush=True)
    return m
