"""Local Kalshi-compatible server: WebSocket v2 market data and REST, replaying a recording.

Layout (one reason to change per module):

* :mod:`.app` — the server: aiohttp assembly, lifecycle, port, auth/rate-limit middleware and
  the extension points for the trading API and FIX (:meth:`SimServer.add_routes`,
  :attr:`SimServer.app`, :attr:`SimServer.feed`, :attr:`SimServer.auth`);
* :mod:`.feed`, :mod:`.ws_commands`, :mod:`.protocol` — the WebSocket market-data feed;
* :mod:`.playback` — index and replay of the recording;
* :mod:`.market_data`, :mod:`.rest_market`, :mod:`.rest_lists`, :mod:`.candles` — REST
  market data; :mod:`.books` — wire renderings of books;
* :mod:`.faults`, :mod:`.limits`, :mod:`.auth` — fault injection, rate limit, signatures.
"""

from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.app import SimError, SimServer

__all__ = ["Faults", "SimError", "SimServer"]
