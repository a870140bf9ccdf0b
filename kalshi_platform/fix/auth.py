"""The FIX logon signature (docs.kalshi.com/fix session management; docs/fix.md "Logon").

RawData (96) of the Logon carries the base64 signature of the pre-hash string
``SendingTime SOH MsgType SOH MsgSeqNum SOH SenderCompID SOH TargetCompID`` (the header values
as sent), with the same key pair as REST: RSA-PSS with SHA-256, MGF1(SHA-256), salt = digest
length, or plain Ed25519 for Ed25519 keys (kalshi_platform/api/auth.py, docs/kalshi-api.md
§2.3). SenderCompID is the API key id.
"""

from __future__ import annotations

import base64
import binascii

from kalshi_platform.api.auth import AuthError, sign_bytes, verify_bytes

SOH = "\x01"


def prehash(sending_time: str, msg_type: str, seq: int | str, sender: str, target: str) -> bytes:
    """The bytes the logon signs (UTF-8)."""
    return SOH.join((sending_time, msg_type, str(seq), sender, target)).encode()


def sign_logon(private_key, sending_time: str, seq: int, sender: str, target: str) -> str:
    """Base64 signature for a Logon (MsgType A) with these header values.

    ``private_key``: an RSA or Ed25519 private key (``api.auth.load_private_key``). Raises
    ``TypeError`` for another key type."""
    try:
        sig = sign_bytes(private_key, prehash(sending_time, "A", seq, sender, target))
    except AuthError:
        raise TypeError("FIX logon keys are RSA or Ed25519") from None
    return base64.b64encode(sig).decode()


def verify_logon(public_key, signature_b64: str, sending_time: str, seq: int | str,
                 sender: str, target: str) -> bool:
    """``True`` iff ``signature_b64`` signs the Logon's pre-hash under ``public_key``; never
    raises for a bad signature or an unsupported key (``False``)."""
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        return verify_bytes(public_key, sig, prehash(sending_time, "A", seq, sender, target))
    except AuthError:
        return False
