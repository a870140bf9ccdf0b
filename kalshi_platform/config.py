"""Settings from the environment and ``.env`` (pydantic-settings): the one list of env vars.

Every variable is prefixed ``KALSHI_`` and documented in ``env.example``; the environment
overrides ``.env``. Defaults point at a local QuestDB on its standard ports and Kalshi
production, so a laptop with no ``.env`` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Platform settings. Read once per command via :func:`get_settings`.

    Embedded store:
        store_dir: root of the embedded Parquet store (``KALSHI_STORE_DIR``).
        parquet_batch_rows: rows buffered per table before a Parquet file is written.
        parquet_compression: Parquet codec (``zstd``, ``snappy``, ``none``).
        parquet_flush_s: the store also writes every table's buffer once it is this many
            seconds old (``KALSHI_PARQUET_FLUSH_S``; a killed run loses at most this much).
        stream_queue_events: events a storage sink may fall behind the plant in memory
            before the rest spills to disk (``KALSHI_STREAM_QUEUE_EVENTS``), and a subscriber
            transport before it is sent a gap.
        log_level: Python logging level name for stderr logs (``KALSHI_LOG_LEVEL``): DEBUG,
            INFO, WARNING, ERROR or CRITICAL (any case); anything else is a config error.

    QuestDB hot tier (QuestDB docs "ILP overview", "PostgreSQL wire protocol"):
        questdb_host: host for both ILP and PG wire unless overridden below.
        questdb_ilp_protocol: ``http`` (default; errors come back per request) or ``tcp``.
        questdb_ilp_port: ILP port; 9000 for HTTP, 9009 for TCP (``None`` = by protocol).
        questdb_ilp_conf: a full client conf string (``http::addr=h:9000;...``) that replaces
            host/port/protocol when set (same syntax as QuestDB's ``QDB_CLIENT_CONF``).
        questdb_pg_host / questdb_pg_port / questdb_user / questdb_password / questdb_database:
            PG wire connection (defaults 8812, admin/quest/qdb).
        questdb_batch_rows / questdb_flush_interval_ms: writer batching by rows and by time;
            the defaults are the client's documented HTTP auto-flush, 75,000 rows and
            1,000 ms (QuestDB docs "Client configuration string", Auto-flushing).
        questdb_queue_rows: bounded in-memory queue while QuestDB is away; beyond it, rows go
            to the on-disk spool.
        questdb_spool_dir: durable spool directory (append-only segments).
        questdb_spool_fsync: ``batch`` (fsync after each spooled batch; default), ``always``
            (same, stated for clarity of intent) or ``none`` (OS page cache only).
        questdb_close_timeout_s: at shutdown, how long to wait for QuestDB before spooling
            the rows it has not acknowledged.
        questdb_auto_init: before its first row the writer creates the tables over PG wire
            (``db init``), so ILP never auto-creates them with guessed types and no dedup keys.

    Kalshi connectivity (docs/kalshi-api.md §1, §2, §6):
        env: ``prod`` or ``demo``.
        api_key_id: the API key id (``KALSHI-ACCESS-KEY``).
        private_key_path: PEM private key (RSA PKCS#1/PKCS#8 or Ed25519).
        rest_base_url / ws_url: overrides of the environment's URLs (e.g. the local sim).
        read_tokens_per_s / request_cost: client-side token bucket (Basic tier: 200 tokens/s,
            10 tokens per request, i.e. 20 requests/s).

    Historical tier (EOD):
        hdb_dir: local root of the historical Parquet layout.
        s3_uri: ``s3://bucket/prefix`` for uploads (empty = no upload).
        s3_endpoint_url / s3_region: S3-compatible endpoint override and region.
        eod_keep_days: local historical days kept by ``--keep-days`` (0 = keep all).

    Metrics:
        metrics_port: serve Prometheus ``/metrics`` of ``run``/``record``/``sim`` on this port
            (``KALSHI_METRICS_PORT``; ``None`` = off; ``--metrics-port`` overrides).
        metrics_host: the interface it binds (``KALSHI_METRICS_HOST``, loopback by default).
    """

    model_config = SettingsConfigDict(env_prefix="KALSHI_", env_file=".env", extra="ignore",
                                      env_ignore_empty=True)

    # embedded store
    store_dir: Path = Path("store")
    log_level: str = "WARNING"
    parquet_batch_rows: int = 250_000
    parquet_compression: str = "zstd"
    parquet_flush_s: float = 5.0
    stream_queue_events: int = 1_000_000

    # QuestDB
    questdb_host: str = "127.0.0.1"
    questdb_ilp_protocol: Literal["http", "tcp"] = "http"
    questdb_ilp_port: Optional[int] = None
    questdb_ilp_conf: str = ""
    questdb_pg_host: Optional[str] = None
    questdb_pg_port: int = 8812
    questdb_user: str = "admin"
    questdb_password: str = "quest"
    questdb_database: str = "qdb"
    questdb_batch_rows: int = 75_000
    questdb_flush_interval_ms: int = 1_000
    questdb_queue_rows: int = 1_000_000
    questdb_spool_dir: Path = Path("store/_spool")
    questdb_spool_fsync: Literal["batch", "always", "none"] = "batch"
    questdb_close_timeout_s: float = 10.0
    questdb_auto_init: bool = True

    # Kalshi
    env: Literal["prod", "demo"] = "prod"
    api_key_id: str = ""
    private_key_path: Optional[Path] = None
    rest_base_url: str = ""
    ws_url: str = ""
    read_tokens_per_s: float = 200.0
    request_cost: float = 10.0

    # historical tier
    hdb_dir: Path = Path("hdb")
    s3_uri: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    eod_keep_days: int = 0

    # Prometheus /metrics of run, record and sim (None = off)
    metrics_port: Optional[int] = None
    metrics_host: str = "127.0.0.1"

    @property
    def ilp_port(self) -> int:
        """The effective ILP port: explicit, else 9000 (HTTP) or 9009 (TCP)."""
        if self.questdb_ilp_port is not None:
            return self.questdb_ilp_port
        return 9000 if self.questdb_ilp_protocol == "http" else 9009

    @property
    def ilp_conf(self) -> str:
        """QuestDB client conf string (``http::addr=host:9000;`` or ``tcp::addr=...;``)."""
        if self.questdb_ilp_conf:
            return self.questdb_ilp_conf
        return f"{self.questdb_ilp_protocol}::addr={self.questdb_host}:{self.ilp_port};"

    @property
    def pg_host(self) -> str:
        """PG wire host: ``questdb_pg_host`` or ``questdb_host``."""
        return self.questdb_pg_host or self.questdb_host

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, v: str) -> str:
        level = v.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
        return level


#: the accepted ``KALSHI_LOG_LEVEL`` names
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A bad ``KALSHI_*`` value (environment or ``.env``), as one line naming the variable,
    e.g. ``KALSHI_PARQUET_BATCH_ROWS: expected an integer, got 'abc'``. The CLI prints it and
    exits 2."""


#: pydantic error types -> what the value should have been
_EXPECTED = {
    "int_parsing": "expected an integer", "int_type": "expected an integer",
    "int_from_float": "expected an integer", "float_parsing": "expected a number",
    "float_type": "expected a number", "bool_parsing": "expected true or false",
    "bool_type": "expected true or false", "path_type": "expected a path",
}


def _config_error_line(err: ValidationError) -> str:
    """One line for every bad variable of ``err`` (``; ``-separated)."""
    parts = []
    for e in err.errors():
        name = "KALSHI_" + str(e["loc"][0]).upper() if e.get("loc") else "KALSHI settings"
        what = _EXPECTED.get(e["type"])
        if what is None:
            msg = str(e.get("msg", "invalid value")).splitlines()[0]
            for prefix in ("Value error, ", "Input should be "):
                if msg.startswith(prefix):
                    msg = msg[len(prefix):]
                    if prefix == "Input should be ":
                        msg = "expected " + msg
            what = msg
        got = e.get("input")
        parts.append(f"{name}: {what}" + (f", got {got!r}" if isinstance(got, str) else ""))
    return "; ".join(dict.fromkeys(parts)) or "invalid KALSHI_* settings"


def get_settings() -> Settings:
    """Load settings from the environment and ``./.env``. Raises :class:`ConfigError` (one
    line naming the variable) for a value that does not parse."""
    try:
        return Settings()
    except ValidationError as e:
        raise ConfigError(_config_error_line(e)) from None
