"""Compatibility names: the server is :mod:`kalshi_platform.sim.app` (assembly, lifecycle),
its WebSocket feed :mod:`.feed`, its REST market data :mod:`.rest_market`."""

from kalshi_platform.sim.app import SimError, SimServer, SimStats
from kalshi_platform.sim.protocol import WS_PATH

__all__ = ["SimError", "SimServer", "SimStats", "WS_PATH"]
