"""Local Kalshi-compatible server: WebSocket v2 market data and REST, replaying a recording.

See :mod:`kalshi_platform.sim.server` (the server), :mod:`.rest` (REST endpoints and fixtures),
:mod:`.books` (wire renderings of books) and :mod:`.faults` (fault injection).
"""

from kalshi_platform.sim.faults import Faults
from kalshi_platform.sim.server import SimError, SimServer

__all__ = ["Faults", "SimError", "SimServer"]
