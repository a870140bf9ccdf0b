"""The ``kalshi-platform`` exit codes, defined once (every command uses these).

* :data:`OK` (0) — the command did what it was asked;
* :data:`INTERNAL` (1) — an internal error (a bug, or a sink that failed during a run): one
  line on stderr, ``KALSHI_DEBUG=1`` shows the traceback;
* :data:`USAGE` (2) — bad input (an option, a file, an environment value) or a service that
  cannot be reached (QuestDB, S3, Kalshi): one line on stderr saying which.

Only the standard library here: importing this costs nothing at CLI start.
"""

from __future__ import annotations

OK = 0
INTERNAL = 1
USAGE = 2

#: interrupted by Ctrl-C / SIGTERM (128 + SIGINT, the shell's convention)
INTERRUPTED = 130


_CLASS_PREFIX = None


def plain_message(text: str) -> str:
    """``text`` without a leading exception class name (``ArrowInvalid: ...``,
    ``InvalidInputException: ...``, ``HDBError: ...``) and cut to its first line: what a
    user reads says what went wrong, not which Python class carried it."""
    import re

    global _CLASS_PREFIX
    if _CLASS_PREFIX is None:
        _CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Invalid|"
                                   r"Warning|Exit|Failure|Interrupt)\w*: ")
    lines = str(text).strip().splitlines()
    line = lines[0] if lines else ""
    while True:
        stripped = _CLASS_PREFIX.sub("", line, count=1)
        if stripped == line:
            return line
        line = stripped
