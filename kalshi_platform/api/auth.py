"""Kalshi API request signing (docs/kalshi-api.md §2).

Every REST request and the WebSocket handshake carry three headers (§2.1):

* ``KALSHI-ACCESS-KEY``: the API key id;
* ``KALSHI-ACCESS-TIMESTAMP``: Unix time in **milliseconds**, as a decimal string;
* ``KALSHI-ACCESS-SIGNATURE``: standard base64 (with padding) of the signature of
  ``timestamp_ms + METHOD + path`` (§2.2), where ``path`` is the URL path including the
  ``/trade-api/v2`` prefix and **without** the query string.

Algorithms (§2.3): RSA keys sign with RSA-PSS, SHA-256, MGF1(SHA-256), salt length = digest
length (32 bytes); Ed25519 keys sign the same text with plain Ed25519. Private keys are
unencrypted PEM: PKCS#1 (``RSA PRIVATE KEY``) or PKCS#8 (``PRIVATE KEY``).

Key material never appears in logs, reprs or error messages; a key file readable by group or
others is loaded but logged as a warning.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
import time
from pathlib import Path
from typing import Union
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

__all__ = [
    "AuthError",
    "PrivateKey",
    "PublicKey",
    "HEADER_KEY",
    "HEADER_TIMESTAMP",
    "HEADER_SIGNATURE",
    "load_private_key",
    "load_public_key",
    "signing_message",
    "Signer",
    "verify_signature",
]

log = logging.getLogger(__name__)

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

PrivateKey = Union[rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ed25519.Ed25519PublicKey]

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_MAX_KEY_FILE = 1 << 20  # a PEM key is a few KiB; refuse to slurp anything huge


class AuthError(ValueError):
    """A key cannot be used for signing or verifying: missing or unreadable file, malformed or
    encrypted PEM, unsupported key type (only RSA and Ed25519), or an empty key id.

    The message names the file and the problem, never key material.
    """


def _read_key_file(path: str | os.PathLike, what: str) -> bytes:
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AuthError(f"{what} file {p}: no such file") from None
    except OSError as e:
        raise AuthError(f"{what} file {p}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise AuthError(f"{what} file {p}: is a directory")
    if st.st_size > _MAX_KEY_FILE:
        raise AuthError(f"{what} file {p}: {st.st_size} bytes is too large for a PEM key")
    if what == "private key" and st.st_mode & 0o077:
        log.warning("private key file %s is readable by group/others (mode %s); "
                    "run: chmod 600 %s", p, oct(stat.S_IMODE(st.st_mode)), p)
    try:
        return p.read_bytes()
    except OSError as e:
        raise AuthError(f"{what} file {p}: {e.strerror or e}") from None


def _check_private(key: object, source: str) -> PrivateKey:
    if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key
    raise AuthError(f"{source}: unsupported key type {type(key).__name__.lstrip('_')}; "
                    "Kalshi accepts RSA or Ed25519 keys")


def load_private_key(path: str | os.PathLike | None = None) -> PrivateKey:
    """Load an unencrypted PEM private key (RSA PKCS#1 or PKCS#8, or Ed25519 PKCS#8).

    ``path`` defaults to ``settings.private_key_path`` (``KALSHI_PRIVATE_KEY_PATH``).
    Logs a warning (never the key) when the file is readable by group or others.

    Raises :class:`AuthError` when no path is configured, the file is missing, unreadable or a
    directory, the PEM is malformed or password-protected, or the key is neither RSA nor
    Ed25519 (docs/kalshi-api.md §2.3).
    """
    if path is None:
        from kalshi_platform.config import get_settings

        path = get_settings().private_key_path
        if path is None:
            raise AuthError("no private key configured: set KALSHI_PRIVATE_KEY_PATH")
    data = _read_key_file(path, "private key")
    source = f"private key file {Path(path).expanduser()}"
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # "Password was not given but private key is encrypted"
        raise AuthError(f"{source}: the key is password-protected; "
                        "decrypt it first (openssl pkey -in KEY -out KEY.plain)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise AuthError(f"{source}: not a valid PEM private key") from None
    return _check_private(key, source)


def load_public_key(path_or_pem: str | bytes | os.PathLike | PublicKey | PrivateKey) -> PublicKey:
    """A public key for :func:`verify_signature`, from a PEM file path, PEM text/bytes, or a key
    object. A private key (object or PEM) yields its public half, which is convenient for
    tests and the local sim server.

    Raises :class:`AuthError` on a missing file, malformed PEM or unsupported key type.
    """
    if isinstance(path_or_pem, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        return path_or_pem
    if isinstance(path_or_pem, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return path_or_pem.public_key()
    if isinstance(path_or_pem, bytes):
        data, source = path_or_pem, "public key PEM"
    elif isinstance(path_or_pem, str) and path_or_pem.lstrip().startswith("-----BEGIN"):
        data, source = path_or_pem.encode(), "public key PEM"
    elif isinstance(path_or_pem, (str, os.PathLike)):
        data = _read_key_file(path_or_pem, "public key")
        source = f"public key file {Path(path_or_pem).expanduser()}"
    else:
        raise AuthError(f"cannot load a public key from {type(path_or_pem).__name__}")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise AuthError(f"{source}: not a valid PEM public key") from None
    if isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        return key
    raise AuthError(f"{source}: unsupported key type {type(key).__name__.lstrip('_')}; "
                    "Kalshi accepts RSA or Ed25519 keys")


def signing_message(ts_ms: int, method: str, path: str) -> bytes:
    """The bytes Kalshi signs: ``f"{ts_ms}{METHOD}{path}"`` in UTF-8 (docs/kalshi-api.md §2.2).

    ``ts_ms`` is Unix time in milliseconds; ``method`` is upper-cased; ``path`` is the URL path
    including ``/trade-api/v2`` — any query string (``?…``) or fragment is dropped, and a full
    URL is reduced to its path. Example: ``(1731900000000, "GET",
    "/trade-api/v2/markets/trades?ticker=X&limit=1000")`` →
    ``b"1731900000000GET/trade-api/v2/markets/trades"``.

    Raises :class:`ValueError` for a non-integer or negative timestamp or an empty method.
    """
    if type(ts_ms) is not int or ts_ms < 0:
        raise ValueError(f"ts_ms must be a non-negative int (Unix ms), got {ts_ms!r}")
    if not method:
        raise ValueError("method must not be empty")
    if "://" in path:
        path = urlsplit(path).path
    path = path.split("?", 1)[0].split("#", 1)[0]
    return f"{ts_ms}{method.upper()}{path}".encode()


class Signer:
    """Signs Kalshi requests with one API key (docs/kalshi-api.md §2).

    ``key_id`` is the ``KALSHI-ACCESS-KEY`` value; ``private_key`` an RSA or Ed25519 private
    key object (see :func:`load_private_key`). The repr shows the key id and key type only.
    Raises :class:`AuthError` for an empty key id or an unsupported key type.
    """

    __slots__ = ("key_id", "_key")

    def __init__(self, key_id: str, private_key: PrivateKey) -> None:
        if not isinstance(key_id, str) or not key_id.strip():
            raise AuthError("API key id is empty: set KALSHI_API_KEY_ID")
        self.key_id = key_id.strip()
        self._key = _check_private(private_key, "signer")

    @classmethod
    def from_pem_file(cls, key_id: str, path: str | os.PathLike | None = None) -> "Signer":
        """A signer from a PEM file (default ``KALSHI_PRIVATE_KEY_PATH``); raises
        :class:`AuthError` as :func:`load_private_key` does."""
        return cls(key_id, load_private_key(path))

    @property
    def key_type(self) -> str:
        """``"rsa"`` or ``"ed25519"``."""
        return "rsa" if isinstance(self._key, rsa.RSAPrivateKey) else "ed25519"

    def public_key(self) -> PublicKey:
        """The matching public key (for verification, e.g. by the local sim server)."""
        return self._key.public_key()

    def sign(self, ts_ms: int, method: str, path: str) -> str:
        """Base64 signature of :func:`signing_message` ``(ts_ms, method, path)``: RSA-PSS
        SHA-256 / MGF1 SHA-256 / salt 32 bytes for RSA keys, Ed25519 otherwise (§2.3)."""
        return base64.b64encode(sign_bytes(self._key, signing_message(ts_ms, method, path))
                                ).decode("ascii")

    def headers(self, method: str, path: str, ts_ms: int | None = None) -> dict[str, str]:
        """The three ``KALSHI-ACCESS-*`` headers for one request; ``ts_ms`` defaults to now
        (Unix ms). ``path`` as in :func:`signing_message` (query string ignored)."""
        if ts_ms is None:
            ts_ms = time.time_ns() // 1_000_000
        return {
            HEADER_KEY: self.key_id,
            HEADER_TIMESTAMP: str(ts_ms),
            HEADER_SIGNATURE: self.sign(ts_ms, method, path),
        }

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r}, key_type={self.key_type!r})"

    def __reduce__(self):  # keep private keys out of pickles (and so out of process dumps)
        raise TypeError("Signer cannot be pickled")


def verify_signature(public_key: PublicKey, signature_b64: str, ts_ms: int, method: str,
                     path: str) -> bool:
    """``True`` iff ``signature_b64`` is a valid Kalshi signature of ``(ts_ms, method, path)``
    under ``public_key`` (RSA-PSS with salt = digest length, or Ed25519; §2.3).

    Never raises for a bad signature (malformed base64, wrong length, wrong key → ``False``);
    raises :class:`AuthError` only if ``public_key`` is not an RSA/Ed25519 public key. Used by
    the local sim server to authenticate clients.
    """
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return False
    try:
        msg = signing_message(ts_ms, method, path)
    except ValueError:
        return False
    return verify_bytes(public_key, sig, msg)


def sign_bytes(private_key: PrivateKey, msg: bytes) -> bytes:
    """The raw signature of ``msg`` in Kalshi's scheme (§2.3): RSA-PSS SHA-256 / MGF1 SHA-256 /
    salt = digest length for an RSA key, plain Ed25519 for an Ed25519 key. Shared by REST
    request signing and the FIX logon (kalshi_platform/fix/auth.py). Raises
    :class:`AuthError` for another key type."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(msg, _PSS, hashes.SHA256())
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(msg)
    raise AuthError(f"unsupported private key type {type(private_key).__name__}")


def verify_bytes(public_key: PublicKey, sig: bytes, msg: bytes) -> bool:
    """``True`` iff ``sig`` (raw bytes) signs ``msg`` under ``public_key`` in the scheme of
    :func:`sign_bytes`; ``False`` for a wrong signature. Raises :class:`AuthError` when
    ``public_key`` is not an RSA/Ed25519 public key."""
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(sig, msg, _PSS, hashes.SHA256())
        elif isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(sig, msg)
        else:
            raise AuthError(f"unsupported public key type {type(public_key).__name__}")
    except InvalidSignature:
        return False
    return True
