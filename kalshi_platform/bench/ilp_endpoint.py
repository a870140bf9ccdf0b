"""A loopback ILP/HTTP endpoint standing in for QuestDB's ``/write`` (tests and ``bench``).

It speaks just enough of QuestDB's HTTP ILP to exercise a writer (QuestDB docs "ILP
overview", HTTP transport): ``POST /write`` answers ``204`` when accepted, ``400`` with
QuestDB's JSON error body (``{"code": "invalid", "message": …, "line": N, "errorId": …}``)
when a line is invalid, ``503`` when told to refuse; ``GET /settings`` and ``/ping`` answer
as a server without protocol negotiation. A request is all-or-nothing: the lines of a refused
or rejected request are not recorded.

Modes (``ILPEndpoint.mode``): ``"accept"`` (record every line), ``"discard"`` (answer 204
without keeping anything: the bench's sink), ``"refuse"`` (503, nothing kept). ``stop()`` and
``start()`` take the listener away and back on the same port (connections refused meanwhile).
``reject`` is a predicate on a line (bytes) that makes the request fail like QuestDB's
``code: invalid``.

Run standalone for the bench: ``python -m kalshi_platform.bench.ilp_endpoint --discard``
prints ``PORT <n>`` and serves until stdin closes.
"""

from __future__ import annotations

import http.server
import json
import socket
import sys
import threading
from typing import Callable


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, code: int, body: bytes = b"", ctype: str = "application/json") -> None:
        self.send_response(code)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/ping"):
            self._reply(204)
        else:
            self._reply(404)

    def do_POST(self) -> None:  # noqa: N802
        ep = self.server.endpoint
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if not self.path.startswith("/write") and not self.path.startswith("/api/v2/write"):
            self._reply(404)
            return
        with ep.lock:
            ep.requests += 1
            mode = ep.mode
            if mode == "discard":
                ep.bytes_received += len(body)
                ep.discarded_requests += 1
        if mode == "discard":
            self._reply(204)
            return
        if mode == "refuse":
            with ep.lock:
                ep.refused += 1
            self._reply(503, json.dumps({"code": "internal_error",
                                          "message": "refused by test endpoint"}).encode())
            return
        lines = [ln for ln in body.split(b"\n") if ln]
        if ep.reject is not None:
            for i, ln in enumerate(lines, 1):
                if ep.reject(ln):
                    with ep.lock:
                        ep.rejected += 1
                    msg = {"code": "invalid",
                           "message": "failed to parse line protocol:errors encountered on "
                                      f"line(s):\nerror in line {i}: rejected by test endpoint",
                           "line": i, "errorId": f"test-{ep.rejected}"}
                    self._reply(400, json.dumps(msg).encode())
                    return
        with ep.lock:
            ep.lines.extend(lines)
            ep.accepted += 1
        self._reply(204)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    endpoint: "ILPEndpoint"

    def __init__(self, *a, **kw) -> None:
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__(*a, **kw)

    def process_request(self, request, client_address) -> None:
        with self.conns_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self.conns_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ILPEndpoint:
    """A QuestDB-like ILP/HTTP endpoint on ``127.0.0.1:port`` (``port=0`` picks one).

    Attributes: ``lines`` (accepted ILP lines, bytes, in arrival order), counters
    ``requests``, ``accepted``, ``refused``, ``rejected``, ``bytes_received``; ``mode``;
    ``reject`` (predicate on a line). Use as a context manager or call ``start``/``close``.
    """

    def __init__(self, port: int = 0, *, mode: str = "accept",
                 reject: Callable[[bytes], bool] | None = None) -> None:
        self.port = port
        self.mode = mode
        self.reject = reject
        self.lock = threading.Lock()
        self.lines: list[bytes] = []
        self.requests = self.accepted = self.refused = self.rejected = 0
        self.discarded_requests = 0
        self.bytes_received = 0
        self._srv: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def conf(self) -> str:
        """The questdb client conf string for this endpoint."""
        return f"http::addr=127.0.0.1:{self.port};"

    def start(self) -> "ILPEndpoint":
        """Listen (again) on the same port."""
        srv = _Server(("127.0.0.1", self.port), _Handler)
        srv.endpoint = self
        self.port = srv.server_address[1]
        self._srv = srv
        self._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and drop open connections (clients see connection refused/reset)."""
        srv, self._srv = self._srv, None
        if srv is None:
            return
        srv.shutdown()
        srv.server_close()
        srv.drop_connections()  # keep-alive connections die too, as when QuestDB goes away

    close = stop

    def __enter__(self) -> "ILPEndpoint":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _main() -> None:  # pragma: no cover - exercised by the bench subprocess
    mode = "discard" if "--discard" in sys.argv else "accept"
    ep = ILPEndpoint(mode=mode).start()
    print(f"PORT {ep.port}", flush=True)
    sys.stdin.read()  # serve until the parent closes our stdin
    ep.stop()


if __name__ == "__main__":  # pragma: no cover
    _main()
