"""Connecting to NATS and reading JetStream's answers, shared by the publisher, the
subscriber client, the writer and ``nats init`` (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors

from kalshi_platform.feed import nats_wire as w
from kalshi_platform.feed.transports import TransportError

log = logging.getLogger(__name__)

NO_JETSTREAM = "JetStream does not answer: is the server started with -js (or a jetstream block)?"

_ack_decoder = msgspec.json.Decoder(dict)


async def connect(servers: list[str], name: str) -> Any:
    """A nats-py connection to ``servers`` that reconnects forever (0.25 s apart). Raises
    :class:`TransportError` when no server answers the first time."""
    async def quiet(e: Exception) -> None:
        log.debug("nats: %s", e)

    try:  # nats-py retries the first connection as long as reconnects: bound it here
        return await asyncio.wait_for(nats.connect(
            servers=servers, name=name, connect_timeout=2, reconnect_time_wait=0.25,
            max_reconnect_attempts=-1, dont_randomize=True, error_cb=quiet),
            2.0 * len(servers) + 1.0)
    except (OSError, nats.errors.Error, asyncio.TimeoutError) as e:
        raise TransportError(f"cannot connect to {','.join(servers)}: "
                             f"{str(e) or 'no server answered'}") from None


async def stream_last_seqs(js: Any, env: str) -> dict[str, int]:
    """``{"book": last seq, "events": last seq}`` of ``env``'s streams. Raises
    :class:`TransportError` when one is missing (``nats init`` creates them)."""
    out = {}
    for key, name in w.stream_names(env).items():
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            raise TransportError(f"JetStream stream {name} does not exist: run "
                                 f"`kalshi-platform nats init` first") from None
        except nats.js.errors.ServiceUnavailableError:
            raise TransportError(NO_JETSTREAM) from None
        except (nats.errors.Error, asyncio.TimeoutError) as e:
            raise TransportError(f"JetStream stream {name}: {str(e) or 'no answer'}") from None
        out[key] = info.state.last_seq
    return out


def parse_ack(msg: Any) -> tuple[int, bool]:
    """JetStream's answer to one publish → ``(stream seq, duplicate)``.

    Raises ``nats.js.errors.NoStreamResponseError`` for a 503 status without payload (no
    stream captures the subject: no responders), the ``APIError`` subclass of an error answer
    (``{"error": {"code", "description"}}``: ``ServiceUnavailableError`` for 503 during a
    leader election), ``ValueError`` for anything else (not a PubAck)."""
    hdr = msg.headers
    if hdr and hdr.get("Status") == "503":
        raise nats.js.errors.NoStreamResponseError()
    try:
        resp = _ack_decoder.decode(msg.data)
    except msgspec.DecodeError as e:
        raise ValueError(f"not a JetStream ack: {e}") from None
    err = resp.get("error")
    if err is not None:
        raise nats.js.errors.APIError.from_error(err)
    try:
        return int(resp["seq"]), bool(resp.get("duplicate", False))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"not a JetStream ack: {str(resp)[:80]}") from None
