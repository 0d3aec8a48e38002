"""A hostile HTTP server on 127.0.0.1 posing as the RPC node, for the tests that it must not hold a run.

``HostileNode(upstream, rule)`` is a real threaded ``http.server``: each request goes to ``rule(req)``,
which answers it (one of the misbehaviours below) or returns None to pass it on to ``upstream`` (an
emulated node, ``InThreadNode``) unchanged. Every answer it writes stops when the server is stopped,
so a test that fails cannot leave a thread trickling bytes: ``stop()`` (or leaving the ``with``)
sets the stop event, shuts the server down and joins it.

Misbehaviours (each a method writing the answer): ``trickle`` (200, a Content-Length, then one byte
at a time), ``endless`` (200, no length, bytes until the client goes away), ``huge`` (200 with a
body of N bytes, generated as it is sent), ``json`` (any status, headers and body: a 429 with
``Retry-After``, a redirect, an events page with a cursor of our choosing).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

#: the longest any misbehaviour keeps writing (a test's client must have given up long before)
MAX_MISBEHAVE_S = 60.0


@dataclass
class Req:
    method: str
    path: str  # without the query
    query: dict[str, str]
    body: bytes
    n: int  # 1 for the first request the server got
    handler: "Handler" = field(repr=False)

    # -- answers ------------------------------------------------------------------------------

    def json(self, status: int, body, headers: dict[str, str] | None = None) -> bool:
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.handler.head(status, {"Content-Type": "application/json", "Content-Length": str(len(data)),
                                   **(headers or {})})
        self.handler.wfile.write(data)
        return True

    def trickle(self, every: float = 0.05, length: int = 1_000_000) -> bool:
        """200 and a body that arrives one byte every ``every`` seconds (never complete in test time)."""
        self.handler.head(200, {"Content-Type": "application/json", "Content-Length": str(length),
                                "x-supra-chain-id": "255"})
        self.handler.pour(lambda: b" ", every)
        return True

    def endless(self) -> bool:
        """200 without a length (the body ends when the connection does) and bytes as fast as they go."""
        self.handler.close_connection = True
        self.handler.head(200, {"Content-Type": "application/json", "x-supra-chain-id": "255"})
        self.handler.pour(lambda: b"[" * 65536, 0.0)
        return True

    def huge(self, size: int = 200 * 1024 * 1024, announce: bool = True) -> bool:
        """200 and a ``size``-byte JSON body (a string of spaces), generated as it is written."""
        headers = {"Content-Type": "application/json", "x-supra-chain-id": "255"}
        if announce:
            headers["Content-Length"] = str(size)
        else:
            self.handler.close_connection = True
        self.handler.head(200, headers)
        left = [size]

        def chunk() -> bytes:
            n = min(left[0], 1 << 16)
            left[0] -= n
            return b" " * n

        self.handler.pour(chunk, 0.0, until=lambda: left[0] <= 0)
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args) -> None:  # noqa: A002
        pass

    def head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()

    def pour(self, chunk: Callable[[], bytes], every: float, until: Callable[[], bool] = lambda: False) -> None:
        """Write chunks until the client leaves, ``until()``, the server stops or MAX_MISBEHAVE_S pass."""
        self.close_connection = True
        stop = self.server.stopping
        deadline = threading.Event()
        timer = threading.Timer(MAX_MISBEHAVE_S, deadline.set)
        timer.daemon = True
        timer.start()
        try:
            while not until() and not stop.is_set() and not deadline.is_set():
                self.wfile.write(chunk())
                self.wfile.flush()
                if every:
                    stop.wait(every)
        except OSError:
            pass  # the client went away: what it should do
        finally:
            timer.cancel()

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.count += 1
            n = self.server.count
        req = Req(method, url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}, body, n, self)
        self.server.seen.append(f"{method} {url.path}")
        if self.server.rule(req):
            return
        self._forward(method, body)

    def _forward(self, method: str, body: bytes) -> None:
        up = urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(method, self.path, body=body or None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            out = {k: v for k, v in r.getheaders() if k.lower() not in ("connection", "transfer-encoding",
                                                                         "content-length", "keep-alive")}
            out = self.server.rewrite(out)
            out["Content-Length"] = str(len(data))
            self.head(r.status, out)
            self.wfile.write(data)
        finally:
            conn.close()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str | None, rule, rewrite) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.upstream = upstream
        self.rule = rule
        self.rewrite = rewrite
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.count = 0
        self.seen: list[str] = []


class HostileNode:
    """``rule(req) -> bool`` answers (True) or passes the request on to ``upstream`` (False/None);
    ``rewrite(headers) -> headers`` changes the passed-on answers' headers (a chain id, say)."""

    def __init__(self, upstream: str | None, rule: Callable[[Req], bool | None] = lambda req: None,
                 rewrite: Callable[[dict[str, str]], dict[str, str]] = lambda h: h) -> None:
        self.server = _Server(upstream, rule, rewrite)
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self.port = port
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> int:
        return self.server.count

    @property
    def seen(self) -> list[str]:
        return self.server.seen

    def stop(self) -> None:
        self.server.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the hostile node did not stop"

    def __enter__(self) -> "HostileNode":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- what the tests against it share -----------------------------------------------------------------------

OUTER_TIMEOUT_S = 90  # no case needs more than a few seconds; a hang fails the test instead of the run


@pytest.fixture
def world(tmp_path: Path):
    """A simulator state with lotteries 1-3 registered, finalised and mirrored (all ok)."""
    from dualwrite.demo import make_summary
    from tests.audit_world import World, sha3

    w = World(tmp_path / "state.sqlite")
    w.init()
    for i in (1, 2, 3):
        w.expect(i, sha3(make_summary(i).to_bcs()))
    w.finalize(1, 2, 3)
    yield w
    w.close()


def dw(*args: str, env: dict[str, str] | None = None, timeout: float = OUTER_TIMEOUT_S) -> subprocess.CompletedProcess:
    """``dualwrite ARGS`` as a process, under a hard outer timeout."""
    from tests.chain_driver import console_script
    from tests.envs import base_env

    return subprocess.run([console_script("dualwrite"), *args], capture_output=True, text=True,
                          env=env or base_env(), timeout=timeout)


def one_line(p: subprocess.CompletedProcess) -> str:
    """The one line on stderr (and no traceback)."""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    return lines[0]


__all__ = ["HostileNode", "OUTER_TIMEOUT_S", "Req", "dw", "one_line", "world"]
