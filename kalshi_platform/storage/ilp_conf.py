"""The ILP client conf string of the QuestDB writer, and how its errors are classified.

Conf strings are the ``questdb`` client's (QuestDB docs "Client configuration string"):
``http::addr=host:9000;key=value;...``. The writer pins ILP protocol version 1 (text; every
QuestDB 8.x takes it), turns the client's own retries and auto-flush off (the writer retries
and batches itself) and takes its batch size and interval from the documented
``auto_flush_rows`` / ``auto_flush_interval`` keys when the string sets them.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from questdb import QuestDBError

#: ILP error text of a row the server rejects as invalid (HTTP 400): "[id: …, code: invalid, line: N]"
_INVALID_RE = re.compile(r"code:\s*invalid\b|\bcode\":\s*\"invalid\"")

#: the client's documented HTTP auto-flush defaults (rows, seconds)
DEFAULT_BATCH_ROWS = 75_000
DEFAULT_FLUSH_INTERVAL_S = 1.0


class WriterError(RuntimeError):
    """The writer cannot start (bad conf string, unusable spool directory)."""


def is_invalid_data_error(err: BaseException) -> bool:
    """True when QuestDB rejected the request's *data* (HTTP 400 ``code: invalid``): resending
    it unchanged would fail again. Everything else (refused, timeout, 5xx) is transient."""
    return isinstance(err, QuestDBError) and bool(_INVALID_RE.search(str(err)))


def _conf_keys(conf: str) -> dict[str, str]:
    body = conf.split("::", 1)[1] if "::" in conf else ""
    return {kv.split("=", 1)[0].strip(): kv.split("=", 1)[1].strip()
            for kv in body.split(";") if "=" in kv}


def ilp_conf(conf: str) -> str:
    """Complete a client conf string: pin ILP protocol version 1 (text; every QuestDB 8.x
    accepts it) and disable the client's own retries and auto-flush unless the string already
    sets them. Raises :class:`WriterError` for a conf that is not ``http``/``https``/``tcp``."""
    conf = conf.strip()
    schema = conf.split("::", 1)[0].lower() if "::" in conf else ""
    if schema not in ("http", "https", "tcp", "tcps"):
        raise WriterError(f"QuestDB conf must start with http::, https::, tcp:: or tcps::, got {conf!r}")
    if not conf.endswith(";"):
        conf += ";"
    keys = set(_conf_keys(conf))
    extra = {"protocol_version": "1", "auto_flush": "off"}
    if schema.startswith("http"):
        extra["retry_timeout"] = "0"
    for k, v in extra.items():
        if k not in keys:
            conf += f"{k}={v};"
    return conf


def conf_batching(conf: str) -> tuple[int | None, float | None]:
    """``(auto_flush_rows, auto_flush_interval in s)`` as a conf string sets them (``None``
    where it does not; ``off`` is ``None``). Raises :class:`WriterError` for a value that is
    not a positive integer."""
    keys = _conf_keys(conf)
    out: list[Any] = []
    for k, scale in (("auto_flush_rows", 1), ("auto_flush_interval", 1000)):
        v = keys.get(k)
        if v is None or v.lower() == "off":
            out.append(None)
            continue
        if not v.isdigit() or int(v) < 1:
            raise WriterError(f"QuestDB conf: {k} must be a positive integer or off, got {v!r}")
        out.append(int(v) if scale == 1 else int(v) / scale)
    return out[0], out[1]
