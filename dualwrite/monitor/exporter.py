"""``dualwrite monitor``: checks on an interval in a background thread, serves the last result.

A scrape only renders the last snapshot (an immutable object swapped in by the checker),
so it never waits for a check. A failed check keeps the last good values and says so in
``dual_write_last_check_success`` / ``dual_write_check_errors_total``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from socketserver import ThreadingMixIn
from typing import Callable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from dualwrite.backends.base import Backend
from dualwrite.errors import ChainChanged, DualwriteError, InputError
from dualwrite.monitor.check import DEFAULT_PENDING_GRACE, Snapshot, run_check
from dualwrite.monitor.metrics import MetricsCollector, Status
from dualwrite.words import count, id_ranges

log = logging.getLogger("dualwrite.monitor")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``; port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host.strip("[]"), int(port)


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def snapshot_json(snap: Snapshot) -> dict:
    """A good check's result: every state's count, the ids of every state but ``ok`` as ranges
    (``3-7, 12``, as the commands print and take them), the alert metrics' ids, the switches."""
    by_state: dict[str, list[int]] = {}
    for lottery_id, state in snap.failing_states.items():
        by_state.setdefault(state, []).append(lottery_id)
    return {
        "backend": snap.backend,
        "checked_at": _iso(snap.finished_at),
        "duration_s": round(snap.duration_s, 3),
        "full": snap.full,
        "checked": snap.checked,
        "counts": dict(snap.counts),
        "ids": {state: id_ranges(by_state[state], limit=None) for state in snap.counts if state in by_state},
        "dual_write_mismatch": {"count": snap.mismatch, "ids": id_ranges(snap.mismatch_ids, limit=None)},
        "dual_write_pending": {"count": snap.pending_over_grace, "ids": id_ranges(snap.pending_over_grace_ids, limit=None),
                               "grace_s": snap.pending_grace_s},
        "pending_expectations": {"count": len(snap.pending_ids), "ids": id_ranges(snap.pending_ids, limit=None),
                                 "age_unknown": snap.pending_age_unknown,
                                 "oldest_age_s": round(snap.pending_oldest_age_s, 3)},
        "flags": {"dual_write_enabled": snap.enabled, "abort_on_mismatch": snap.abort_on_mismatch,
                  "abort_on_missing": snap.abort_on_missing, "mirror_enabled": snap.mirror_enabled,
                  "bridge_initialized": snap.bridge_initialized},
    }


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - scrapes every few seconds are not news
        pass


class Monitor:
    """The checker thread and the HTTP server; ``start()``, then ``stop()`` (idempotent)."""

    def __init__(self, open_backend: Callable[[], Backend], *, interval: float = 60.0,
                 pending_grace: timedelta = DEFAULT_PENDING_GRACE, jobs: int = 4, backend_name: str = "sim",
                 full_every: int = 60) -> None:
        self.open_backend = open_backend
        self.interval = interval
        self.pending_grace = pending_grace
        self.jobs = jobs
        self.backend_name = backend_name
        self.full_every = max(1, full_every)
        self._since_full = 0
        self.snapshot: Snapshot | None = None
        self.status = Status()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cycle_done = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None
        self._server_thread: threading.Thread | None = None
        self._last_ids: tuple[tuple[int, ...], tuple[int, ...]] | None = None
        self._backend: Backend | None = None  # kept between cycles when it reads events incrementally
        self.chain_id: str | None = None  # the chain id the first good cycle's answers named (RPC): held to it
        self.last_rechecked: int | None = None  # lotteries the last good cycle read (all, in a full one)
        self.last_error: str | None = None  # why the latest check failed (None when it succeeded)
        self.last_attempt_at: float | None = None  # unix time the latest check ended, good or not
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(MetricsCollector(self._source))

    # -- checking -----------------------------------------------------------------------

    def _source(self) -> tuple[Snapshot | None, Status, str]:
        with self._lock:
            st = Status(self.status.checks, self.status.errors, self.status.last_success, self.status.last_duration_s)
            return self.snapshot, st, self.backend_name

    def check_once(self) -> bool:
        """One cycle. A backend that reads events (RPC) is kept between good cycles, so a cycle reads only
        the blocks since the last one; any other, and any backend after a failure, is opened afresh,
        so a node or state file that comes back is simply used again."""
        t0 = time.perf_counter()
        snap: Snapshot | None = None
        error = ""
        try:
            backend, self._backend = self._backend, None
            kept = backend is not None
            if backend is None:
                backend = self.open_backend()
                if self.chain_id is not None and callable(getattr(backend, "pin_chain_id", None)):
                    backend.pin_chain_id(self.chain_id)  # a node that comes back on another chain is not followed
            try:
                changed = backend.refresh_events() if kept else None  # the lotteries the new blocks touched
                incremental = changed is not None and self.snapshot is not None and self._since_full < self.full_every - 1
                snap = run_check(backend, pending_grace=self.pending_grace, jobs=self.jobs,
                                 previous=self.snapshot if incremental else None,
                                 changed=changed if incremental else None)
                if self.chain_id is None and getattr(backend, "chain_id", None):
                    self.chain_id = backend.chain_id  # the chain this monitor watches, from its first good cycle on
            finally:
                if snap is not None and callable(getattr(backend, "refresh_events", None)):
                    self._backend = backend
                else:
                    backend.close()
        except ChainChanged as e:
            error = (f"{type(e).__name__}: {e}; this monitor keeps watching chain {self.chain_id} only "
                     f"(restart it to watch another)")
        except DualwriteError as e:
            error = f"{type(e).__name__}: {e}"
        except Exception as e:  # a bug in one cycle must not kill the exporter: count it, log it, go on
            log.exception("check failed with an internal error")
            error = f"internal error: {type(e).__name__}: {e}"
        with self._lock:
            self.status.checks += 1
            self.status.last_duration_s = time.perf_counter() - t0
            self.last_attempt_at = time.time()
            self.last_error = None if snap is not None else error
            if snap is not None:
                self.snapshot = snap
                self.status.last_success = True
                self._since_full = 0 if snap.full else self._since_full + 1
                self.last_rechecked = snap.rechecked
            else:
                self.status.errors += 1
                self.status.last_success = False
            self._cycle_done.notify_all()
        if snap is None:
            log.error("check failed (keeping the last good values): %s", error)
            return False
        ids = (snap.mismatch_ids, snap.pending_over_grace_ids)
        if ids != self._last_ids:  # the ids go to the log when they change; verify has the detail
            for line in snap.log_lines() or ["all clear: no mismatch, nothing pending over the grace"]:
                log.warning(line) if snap.mismatch or snap.pending_over_grace else log.info(line)
            self._last_ids = ids
        log.info("checked %s (%s) in %.3fs (mismatch %d, pending over grace %d)",
                 count(snap.checked, "lottery"), "full" if snap.full else f"{snap.rechecked} read again, the rest unchanged by events",
                 snap.duration_s, snap.mismatch, snap.pending_over_grace)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.check_once()
            # the next cycle starts one interval after this one started (never two at once)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def wait_checks(self, n: int, timeout: float) -> bool:
        """Block until at least ``n`` checks have finished (for callers and tests)."""
        deadline = time.monotonic() + timeout
        with self._cycle_done:
            while self.status.checks < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cycle_done.wait(left)
        return True

    # -- serving ------------------------------------------------------------------------

    def _app(self):
        metrics = make_wsgi_app(self.registry)

        def app(environ, start_response):
            path = environ.get("PATH_INFO", "/")
            if path == "/healthz":
                return self._healthz(start_response)
            if path == "/status":
                return self._status(start_response)
            if path in ("/metrics", "/"):
                return metrics(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics, /status or /healthz\n"]

        return app

    def _healthz(self, start_response):
        """200 while the checker runs (a failing node is a metric, not a reason to restart the exporter)."""
        alive = self._thread is not None and self._thread.is_alive()
        snap, st, _ = self._source()
        body = {"checker_alive": alive, "checks": st.checks, "check_errors": st.errors,
                "last_check_success": st.last_success,
                "last_success_age_s": round(time.time() - snap.finished_at, 3) if snap else None}
        start_response("200 OK" if alive else "503 Service Unavailable", [("Content-Type", "application/json")])
        return [json.dumps(body).encode() + b"\n"]

    def status_json(self) -> dict:
        """The last check as on-call reads it: counts and ids per state, when, and what failed since."""
        with self._lock:
            snap, st = self.snapshot, self.status
            last = {"at": _iso(self.last_attempt_at), "success": st.last_success if st.checks else None,
                    "duration_s": None if st.last_duration_s is None else round(st.last_duration_s, 3),
                    "error": self.last_error}
            checks, errors = st.checks, st.errors
        return {"backend_name": self.backend_name, "checks": checks, "check_errors": errors, "last_check": last,
                "result": None if snap is None else snapshot_json(snap)}

    def _status(self, start_response):
        """``/status``: the last check as JSON (the ids behind the metrics, which the metrics never label)."""
        body = json.dumps(self.status_json(), indent=2).encode() + b"\n"
        start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")])
        return [body]

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self, host: str, port: int) -> None:
        try:
            self._server = make_server(host, port, self._app(), server_class=_Server6 if ":" in host else _Server, handler_class=_QuietHandler)
        except OSError as e:
            raise InputError(f"--listen {host}:{port}: {e.strerror or e}") from None
        self._thread = threading.Thread(target=self._run, name="dualwrite-check", daemon=True)
        self._thread.start()
        self._server_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                               name="dualwrite-http", daemon=True)
        self._server_thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop serving and checking; True when the checker finished its cycle within ``timeout``."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        done = True
        if self._thread is not None:
            self._thread.join(timeout)
            done = not self._thread.is_alive()
        if done and self._backend is not None:
            self._backend.close()  # saves an --events-checkpoint
            self._backend = None
        return done
