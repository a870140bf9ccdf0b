"""tests/exchange: puts this folder on sys.path (oracle.py, streams.py, helpers.py). The
``slow`` marker is registered in pyproject.toml; soak tests here also need KALSHI_SLOW_TESTS=1."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
