"""The sim's FIX order gateway: FIXT.1.1 / FIX 5.0 SP2 as Kalshi offers it (docs/fix.md,
docs/trading-api.md §4.2).

* :mod:`.protocol` — tags, enums and the value formats of Kalshi's FIX dictionary;
* :mod:`.auth` — the logon signature (RSA-PSS / Ed25519 over Kalshi's pre-hash string);
* :mod:`.engine` — :class:`EngineHub`, the one writer in front of an ``Exchange`` or
  ``DurableExchange`` (group commit) that tells listeners about every result;
* :mod:`.orders` — FIX application messages → exchange-core commands, results → reports;
* :mod:`.session` — one FIX session: logon, sequence numbers, heartbeats, resend, logout;
* :mod:`.server` — :class:`FixServer`, the asyncio TCP/TLS acceptor.

The gateway knows the exchange core only through its public API (commands, ``Result``,
queries); encoding and parsing are ``simplefix``'s.
"""

from kalshi_platform.fix.engine import EngineHub
from kalshi_platform.fix.server import FixServer

__all__ = ["EngineHub", "FixServer"]
