"""Request signing (kalshi_platform.api.auth) against kalshi-api.md §2 and an independent
implementation: keys are generated and signatures checked by the ``openssl`` command line
(OpenSSL's own RSA-PSS / Ed25519 code, not the ``cryptography`` bindings the module uses),
with a fallback to ``cryptography`` for key generation when ``openssl`` is absent."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from kalshi_platform.api.auth import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    AuthError,
    Signer,
    load_private_key,
    load_public_key,
    signing_message,
    verify_signature,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl command not installed")

DOC_TS = 1731900000000
DOC_URL = "https://external-api.kalshi.com/trade-api/v2/markets/trades?ticker=X&limit=1000"


def _openssl(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([OPENSSL, *args], capture_output=True, timeout=60, **kw)


def _write_key(path: Path, kind: str) -> Path:
    """A private key PEM at ``path`` (mode 600): ``pkcs1`` / ``pkcs8`` RSA 2048 or ``ed25519``."""
    if OPENSSL:
        if kind == "pkcs1":
            r = _openssl("genrsa", "-traditional", "-out", str(path), "2048")
        elif kind == "pkcs8":
            r = _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                         "-out", str(path))
        else:
            r = _openssl("genpkey", "-algorithm", "ed25519", "-out", str(path))
        assert r.returncode == 0, r.stderr
    else:
        if kind == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
            fmt = serialization.PrivateFormat.PKCS8
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            fmt = (serialization.PrivateFormat.TraditionalOpenSSL if kind == "pkcs1"
                   else serialization.PrivateFormat.PKCS8)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt,
                                           serialization.NoEncryption()))
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    return {k: _write_key(d / f"{k}.pem", k) for k in ("pkcs1", "pkcs8", "ed25519")}


def test_signing_message_matches_docs_example():
    # kalshi-api.md §2.2: GET …/trade-api/v2/markets/trades?ticker=X&limit=1000 at 1731900000000
    want = b"1731900000000GET/trade-api/v2/markets/trades"
    assert signing_message(DOC_TS, "GET", "/trade-api/v2/markets/trades?ticker=X&limit=1000") == want
    assert signing_message(DOC_TS, "get", DOC_URL) == want
    assert signing_message(DOC_TS, "GET", "/trade-api/ws/v2") == b"1731900000000GET/trade-api/ws/v2"
    with pytest.raises(ValueError):
        signing_message(1.5, "GET", "/x")  # type: ignore[arg-type]


def test_pem_headers_are_the_expected_formats(keys):
    assert keys["pkcs1"].read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert keys["pkcs8"].read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert keys["ed25519"].read_text().startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("kind", ["pkcs1", "pkcs8", "ed25519"])
def test_signature_verifies_with_public_key(keys, kind):
    signer = Signer.from_pem_file("key-123", keys[kind])
    assert signer.key_type == ("ed25519" if kind == "ed25519" else "rsa")
    h = signer.headers("get", DOC_URL, ts_ms=DOC_TS)
    assert set(h) == {HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE}
    assert h[HEADER_KEY] == "key-123" and h[HEADER_TIMESTAMP] == str(DOC_TS)
    sig = h[HEADER_SIGNATURE]
    base64.b64decode(sig, validate=True)  # standard base64 with padding
    pub = load_public_key(keys[kind])
    assert verify_signature(pub, sig, DOC_TS, "GET", "/trade-api/v2/markets/trades")
    # the query string is not part of the message, everything else is
    assert verify_signature(pub, sig, DOC_TS, "GET", "/trade-api/v2/markets/trades?limit=1")
    assert not verify_signature(pub, sig, DOC_TS + 1, "GET", "/trade-api/v2/markets/trades")
    assert not verify_signature(pub, sig, DOC_TS, "POST", "/trade-api/v2/markets/trades")
    assert not verify_signature(pub, sig, DOC_TS, "GET", "/trade-api/v2/markets")
    assert not verify_signature(pub, "not base64!", DOC_TS, "GET", "/trade-api/v2/markets/trades")
    other = Signer("k", ed25519.Ed25519PrivateKey.generate() if kind == "ed25519"
                   else rsa.generate_private_key(public_exponent=65537, key_size=1024))
    assert not verify_signature(other.public_key(), sig, DOC_TS, "GET",
                                "/trade-api/v2/markets/trades")


def test_headers_default_timestamp_is_now_in_ms(keys):
    import time

    signer = Signer.from_pem_file("k", keys["ed25519"])
    before = time.time_ns() // 1_000_000
    h = signer.headers("GET", "/trade-api/v2/exchange/status")
    after = time.time_ns() // 1_000_000
    ts = int(h[HEADER_TIMESTAMP])
    assert before <= ts <= after
    assert verify_signature(signer.public_key(), h[HEADER_SIGNATURE], ts, "GET",
                            "/trade-api/v2/exchange/status")


@needs_openssl
@pytest.mark.parametrize("kind", ["pkcs1", "pkcs8"])
def test_rsa_pss_salt_is_digest_length_per_openssl(keys, kind, tmp_path):
    """OpenSSL verifies the signature as RSA-PSS/SHA-256/MGF1-SHA-256 with a 32-byte salt,
    and rejects it when told the salt is the maximum length (what a wrong client would send)."""
    signer = Signer.from_pem_file("k", keys[kind])
    msg = tmp_path / "msg"
    msg.write_bytes(b"1731900000000GET/trade-api/v2/markets/trades")
    sig = tmp_path / "sig"
    sig.write_bytes(base64.b64decode(signer.sign(DOC_TS, "GET", DOC_URL)))
    pub = tmp_path / "pub.pem"
    assert _openssl("pkey", "-in", str(keys[kind]), "-pubout", "-out", str(pub)).returncode == 0

    def verify(saltlen: str) -> bool:
        r = _openssl("dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt",
                     f"rsa_pss_saltlen:{saltlen}", "-sigopt", "rsa_mgf1_md:sha256",
                     "-verify", str(pub), "-signature", str(sig), str(msg))
        return r.returncode == 0 and b"Verified OK" in r.stdout

    assert verify("32")
    assert not verify("max")


@needs_openssl
def test_ed25519_signature_equals_openssl(keys, tmp_path):
    """Ed25519 is deterministic: our signature must be byte-identical to OpenSSL's."""
    signer = Signer.from_pem_file("k", keys["ed25519"])
    msg = tmp_path / "msg"
    msg.write_bytes(signing_message(DOC_TS, "GET", DOC_URL))
    r = _openssl("pkeyutl", "-sign", "-rawin", "-inkey", str(keys["ed25519"]), "-in", str(msg))
    assert r.returncode == 0, r.stderr
    assert base64.b64decode(signer.sign(DOC_TS, "GET", DOC_URL)) == r.stdout


def test_python_side_pss_verification_with_explicit_salt(keys):
    key = load_private_key(keys["pkcs8"])
    sig = base64.b64decode(Signer("k", key).sign(DOC_TS, "GET", DOC_URL))
    key.public_key().verify(sig, b"1731900000000GET/trade-api/v2/markets/trades",
                            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                            hashes.SHA256())


def test_missing_and_malformed_keys_raise_auth_error(tmp_path, keys):
    with pytest.raises(AuthError, match="no such file"):
        load_private_key(tmp_path / "absent.pem")
    with pytest.raises(AuthError, match="is a directory"):
        load_private_key(tmp_path)
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    os.chmod(bad, 0o600)
    with pytest.raises(AuthError, match="not a valid PEM private key") as ei:
        load_private_key(bad)
    assert isinstance(ei.value, ValueError)
    # a truncated real key
    trunc = tmp_path / "trunc.pem"
    trunc.write_text(keys["pkcs1"].read_text()[:300])
    os.chmod(trunc, 0o600)
    with pytest.raises(AuthError):
        load_private_key(trunc)
    with pytest.raises(AuthError, match="not a valid PEM public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(AuthError, match="empty"):
        Signer("", load_private_key(keys["ed25519"]))


def test_unsupported_and_encrypted_keys(tmp_path):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    p = tmp_path / "ec.pem"
    p.write_bytes(ec_key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(p, 0o600)
    with pytest.raises(AuthError, match="unsupported key type"):
        load_private_key(p)
    with pytest.raises(AuthError, match="unsupported key type"):
        Signer("k", ec_key)  # type: ignore[arg-type]
    enc = tmp_path / "enc.pem"
    enc.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")))
    os.chmod(enc, 0o600)
    with pytest.raises(AuthError, match="password-protected"):
        load_private_key(enc)


def test_world_readable_key_warns_without_leaking(keys, tmp_path, caplog):
    p = tmp_path / "open.pem"
    pem = keys["pkcs8"].read_text()
    p.write_text(pem)
    os.chmod(p, 0o644)
    with caplog.at_level(logging.WARNING, logger="kalshi_platform.api.auth"):
        load_private_key(p)
    warn = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warn) == 1 and "readable by group/others" in warn[0].getMessage()
    assert "0o644" in warn[0].getMessage()
    body = "".join(pem.splitlines()[1:3])
    assert body[:40] not in caplog.text
    caplog.clear()
    os.chmod(p, 0o600)
    with caplog.at_level(logging.WARNING, logger="kalshi_platform.api.auth"):
        load_private_key(p)
    assert not caplog.records


def test_repr_and_pickle_do_not_expose_key(keys):
    import pickle

    signer = Signer.from_pem_file("abc-key", keys["pkcs1"])
    r = repr(signer)
    assert r == "Signer(key_id='abc-key', key_type='rsa')"
    with pytest.raises(TypeError):
        pickle.dumps(signer)


def test_default_path_from_settings(keys, monkeypatch):
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(keys["ed25519"]))
    assert isinstance(load_private_key(), ed25519.Ed25519PrivateKey)
    monkeypatch.delenv("KALSHI_PRIVATE_KEY_PATH")
    monkeypatch.chdir(keys["ed25519"].parent)  # no .env here
    with pytest.raises(AuthError, match="KALSHI_PRIVATE_KEY_PATH"):
        load_private_key()
