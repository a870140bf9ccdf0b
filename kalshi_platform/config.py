"""Settings from the environment and ``.env`` (pydantic-settings): the one list of env vars.

Every variable is prefixed ``KALSHI_`` and documented in ``env.example``. Later subsystems
(QuestDB, REST, WebSocket) add their fields here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform settings. Read once per command via :func:`get_settings`.

    Attributes:
        store_dir: root of the embedded Parquet store (``KALSHI_STORE_DIR``).
        log_level: Python logging level name for stderr logs (``KALSHI_LOG_LEVEL``).
        parquet_batch_rows: rows buffered per table before a Parquet file is written.
        parquet_compression: Parquet codec (``zstd``, ``snappy``, ``none``).
    """

    model_config = SettingsConfigDict(env_prefix="KALSHI_", env_file=".env", extra="ignore")

    store_dir: Path = Path("store")
    log_level: str = "WARNING"
    parquet_batch_rows: int = 250_000
    parquet_compression: str = "zstd"


def get_settings() -> Settings:
    """Load settings from the environment and ``./.env``."""
    return Settings()
