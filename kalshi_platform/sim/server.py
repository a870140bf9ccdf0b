"""Compatibility names: the server is :mod:`kalshi_platform.sim.app` (assembly, lifecycle),
its WebSocket feed :mod:`.feed`, its REST market data :mod:`.rest_market`."""

from kalshi_platform.sim.app import SimError, SimServer, SimStats  # noqa: F401
from kalshi_platform.sim.protocol import WS_PATH  # noqa: F401
