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
