"""Request signature checks of the sim, as Kalshi does them (docs/kalshi-api.md §2).

Every signed request carries ``KALSHI-ACCESS-KEY``, ``KALSHI-ACCESS-TIMESTAMP`` (Unix ms) and
``KALSHI-ACCESS-SIGNATURE`` (base64 RSA-PSS or Ed25519 over ``ts + METHOD + path``, the path
without its query string; §2.2, §2.3). :class:`Authenticator` verifies them against a default
public key (accepted for any key id: the single-user sim) and/or a key id → public key table
(one user per API key, for the trading API: :meth:`Authenticator.add_key`).
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from kalshi_platform.api.auth import load_public_key, verify_signature

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TS = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIG = "KALSHI-ACCESS-SIGNATURE"


class Authenticator:
    """Verifies ``KALSHI-ACCESS-*`` headers.

    Args:
        public_key: default key (PEM path/text or key object, whatever
            :func:`kalshi_platform.api.auth.load_public_key` takes) or ``None``.
        max_skew_s: reject timestamps further than this from now (s).

    Raises ``ValueError``/``OSError`` (from ``load_public_key``) for an unreadable key.
    """

    def __init__(self, public_key: Any = None, max_skew_s: float = 300.0) -> None:
        self.default = load_public_key(public_key) if public_key is not None else None
        self.keys: dict[str, Any] = {}
        self.max_skew_s = max_skew_s

    @property
    def enabled(self) -> bool:
        """Whether any key is configured (otherwise requests are not verified)."""
        return self.default is not None or bool(self.keys)

    def add_key(self, key_id: str, public_key: Any) -> None:
        """Accept signatures of ``key_id`` under ``public_key`` (one user per key)."""
        self.keys[key_id] = load_public_key(public_key)

    def check(self, method: str, path: str,
              headers: Mapping[str, str]) -> tuple[str | None, str | None]:
        """``(key_id, None)`` when the headers sign ``method path``, else ``(None, why)``
        (``why`` is one line). With no key configured: ``(the KALSHI-ACCESS-KEY header or
        None, None)``, unverified."""
        key_id = headers.get(HEADER_KEY) or None
        if not self.enabled:
            return key_id, None
        ts, sig = headers.get(HEADER_TS), headers.get(HEADER_SIG)
        if not key_id or not ts or not sig:
            return None, "missing KALSHI-ACCESS-KEY/-TIMESTAMP/-SIGNATURE headers"
        try:
            ts_ms = int(ts)
        except ValueError:
            return None, "KALSHI-ACCESS-TIMESTAMP is not an integer (ms)"
        if abs(time.time() * 1000 - ts_ms) > self.max_skew_s * 1000:
            return None, "KALSHI-ACCESS-TIMESTAMP too far from server time"
        key = self.keys.get(key_id, self.default)
        if key is None:
            return None, f"unknown API key {key_id}"
        try:
            ok = verify_signature(key, sig, ts_ms, method, path)
        except Exception:  # an unsupported key object: refuse, never crash the server
            ok = False
        return (key_id, None) if ok else (None, "signature does not verify")
