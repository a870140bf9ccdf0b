"""tests/exchange: puts this folder on sys.path (oracle.py, streams.py) and registers the
``slow`` marker (soak tests, off unless KALSHI_SLOW_TESTS=1)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long soak test, off by default")
