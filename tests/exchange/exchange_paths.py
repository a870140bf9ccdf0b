"""Paths of the real captures the exchange tests read (../shared beside the repo)."""

from pathlib import Path

SHARED_REST = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "kalshi" / "rest"
