"""Reads at the speed of the node: views and events over the Supra RPC node's HTTP API, with httpx.

``RpcClient`` speaks supra-cli.md's "RPC node": ``POST rpc/v3/view``, ``GET rpc/v3/events/{type}``
(paged by the ``x-supra-cursor`` header), blocks. One pooled keep-alive ``httpx.Client`` per
backend, shared by every thread (``--jobs`` threads = requests in flight); retries with
exponential back-off and full jitter on connection errors, 429 (``Retry-After`` honoured),
502, 503 and 504; never on another 4xx. A view abort becomes ``MoveAbort`` through the same
parser as the CLI path (``cli_output.find_abort``).

``RpcBackend`` is the read-only ``rpc`` backend (no Supra CLI at all). ``SplitBackend`` writes
through a CLI backend (which holds the keys) and reads through an ``RpcBackend``: the bridge
flow, diff, verify and heal see one ``Backend`` either way.

Provider keys (``--rpc-header 'Name: value'``) are sent on every request and never printed:
``describe`` names the URL without its userinfo or query, and the header names only.

A hostile or broken node cannot hold a run: every request has a whole-answer deadline
(``call_timeout``; httpx's timeouts are per read, so the deadline is enforced on every socket read
and write through the connection pool's network backend), every answer is read as a stream and
abandoned past its size limit (``MAX_BYTES``), the chain id of the first answer is pinned and an
answer for another chain stops the run (``ChainChanged``), and redirects are refused with the URL
they point to. One request path (``RpcClient.request``) carries all of it, so every caller inherits it.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx

from dualwrite.backends.base import Backend, ModuleAddresses, TxnResult
from dualwrite.backends.cli_output import failure, find_abort
from dualwrite.backends.events import EVENTS_MAX_PAGES, EVENTS_PAGE, EVENTS_TIMEOUT_S, page_through
from dualwrite.errors import BackendError, BackendUnavailable, ChainChanged, InputError, TransientBackendError
from dualwrite.words import count

RETRY_STATUS = frozenset({429, 502, 503, 504})
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0
RETRY_AFTER_CAP_S = 60.0  # the longest Retry-After one retry waits; a node asking for more is not retried
CALL_TIMEOUT_S = 30.0  # the whole-answer deadline of one request (--call-timeout)
KIB, MIB = 1 << 10, 1 << 20
#: the largest answer read, by endpoint kind (README "Reads over the RPC node"): a view's result (a
#: summary, a page of ids, the pending list) is kilobytes, a page of 100 events about 150 KiB, a block
#: with its transactions can be large; past its limit an answer is abandoned unread (exit 3)
MAX_BYTES = {"view": 4 * MIB, "events": 8 * MIB, "block": 16 * MIB, "transaction": 4 * MIB,
             "account": 64 * KIB, "chain_id": 64 * KIB}
DEFAULT_MAX_BYTES = 4 * MIB

WRITE_BACKENDS = "local, docker, docker-compose, podman, auto or sim"
_backoff_wait = threading.Event()  # never set: wait(t) is an interruptible back-off


def redact_url(url: str) -> str:
    """The URL without userinfo, query or fragment: what may be printed (keys travel in those)."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host += f":{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


def parse_headers(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``Name: value`` lines (``--rpc-header``, ``DUALWRITE_RPC_HEADERS`` one per line); values never echoed."""
    out: dict[str, str] = {}
    for n, item in enumerate(items, 1):
        name, sep, value = str(item).partition(":")
        name = name.strip()
        if not sep or not name or any(c in name for c in " \t\r\n") or "\n" in value or "\r" in value:
            raise InputError(f"--rpc-header #{n} ({name or 'empty'!r}): expected 'Name: value'")
        out[name] = value.strip()
    return out


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // KIB} KiB" if n % KIB == 0 else f"{n} bytes"


class _Deadline(threading.local):
    """The monotonic time the current thread's request must be finished by (None: no request)."""

    at: float | None = None


_deadline = _Deadline()


def _clamp(timeout: float | None, exc: type[Exception]) -> float | None:
    """A socket wait of at most ``timeout`` and never past the request's deadline (then ``exc``)."""
    at = _deadline.at
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise exc("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream:
    """A connection whose every read and write waits no longer than the request's deadline allows: a
    node trickling its answer a byte at a time cannot keep a request alive past ``call_timeout``."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore

        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        import httpcore

        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                     _clamp(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend:
    """httpcore's synchronous network backend, its streams wrapped in ``_DeadlineStream``."""

    def __init__(self) -> None:
        import httpcore

        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        import httpcore

        return _DeadlineStream(self._inner.connect_tcp(host, port, _clamp(timeout, httpcore.ConnectTimeout),
                                                       local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        import httpcore

        return _DeadlineStream(self._inner.connect_unix_socket(path, _clamp(timeout, httpcore.ConnectTimeout),
                                                               socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _transport(connections: int) -> httpx.HTTPTransport:
    """httpx's transport with the deadline network backend under its connection pool (httpx takes no
    network backend argument; its pool, httpcore's ``ConnectionPool``, does: set where it keeps it)."""
    t = httpx.HTTPTransport(limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
                            retries=0)
    pool = t._pool
    if not hasattr(pool, "_network_backend"):  # pragma: no cover - a change in httpcore: fail loudly, not silently
        raise RuntimeError("httpcore.ConnectionPool has no _network_backend: the RPC deadline cannot be enforced")
    pool._network_backend = _DeadlineBackend()
    return t


class _TooLarge(Exception):
    pass


class _Bounded(httpx.SyncByteStream):
    """An answer's bytes as they arrive, until more than ``limit`` came: then ``_TooLarge`` (the rest unread)."""

    def __init__(self, inner, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    def __iter__(self):
        total = 0
        for chunk in self._inner:
            total += len(chunk)
            if total > self._limit:
                raise _TooLarge(f"stopped reading after {total:,} bytes")
            yield chunk

    def close(self) -> None:
        self._inner.close()


def _redirect_base(target: httpx.URL, path: str) -> str:
    """The base URL to give instead, when the redirect target ends with the endpoint's own path."""
    shown = redact_url(str(target))
    tail = "/" + path
    return shown[: -len(path)] if shown.endswith(tail) else shown


def _arg(text: str) -> Any:
    """A CLI ``TYPE:VALUE`` argument as the node's Move JSON argument."""
    kind, _, value = text.partition(":")
    if kind == "bool":
        return value == "true"
    if kind in ("u8", "u16", "u32"):
        return int(value)
    if kind == "hex":
        return "0x" + (value[2:] if value.startswith("0x") else value)
    return value  # u64/u128/u256 as decimal strings, addresses as 0x hex


class RpcClient:
    """One node: the HTTP calls, with retries; thread-safe (httpx's transport and pool are)."""

    #: hooks every new client calls with each response (the test suite checks each one against its schema)
    default_hooks: list = []

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0,
                 retries: int = 8, connections: int = 16, call_timeout: float = CALL_TIMEOUT_S,
                 events_max_pages: int | None = None, events_timeout: float | None = None) -> None:
        p = urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise InputError(f"--rpc-url {redact_url(url)!r}: expected an http:// or https:// URL")
        self.url = redact_url(url)
        base = url if url.endswith("/") else url + "/"  # the SDK urljoins "rpc/v3/..." onto the base
        self.retries = retries
        self.header_names = sorted(headers or {})
        # httpx's transport directly: a pooled keep-alive connection per thread in flight, no client-side
        # cookie/auth/redirect layers (a node API has none of those); measured 1.6x the requests per CPU
        # second of httpx.Client.request on this machine
        self.transport = _transport(connections)
        self.base = httpx.URL(base)
        # identity: an answer's size limit is its size on the wire and in memory (no unasked-for inflation)
        self._headers = [("Accept", "application/json"), ("Accept-Encoding", "identity"),
                         ("User-Agent", f"dualwrite/{_version()} httpx"), *(headers or {}).items()]
        self._timeout = {"connect": min(timeout, 5.0), "read": timeout, "write": timeout, "pool": timeout}
        self.call_timeout = call_timeout
        self.events_max_pages = events_max_pages or EVENTS_MAX_PAGES
        self.events_timeout = events_timeout or EVENTS_TIMEOUT_S
        self._urls: dict[str, httpx.URL] = {}
        self.hooks: list = list(RpcClient.default_hooks)  # called with each response
        self._down: str | None = None
        self._changed: str | None = None  # set once an answer named another chain: every later request fails
        self._chain_lock = threading.Lock()
        self.chain_id: str | None = None  # pinned by the first answer that names it
        self.requests = 0
        self.retried = 0

    def close(self) -> None:
        self.transport.close()

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self.base.join(path)
            if len(self._urls) < 64:
                self._urls[path] = url
        return url

    def _send(self, method: str, path: str, params: dict | None = None, json_body: Any = None, *,
              content: bytes | None = None, content_type: str | None = None, what: str = "",
              limit: int = DEFAULT_MAX_BYTES) -> httpx.Response:
        """One attempt, within the deadline the caller set: the answer's head, the chain id check, then
        its body read as a stream and abandoned past ``limit`` bytes."""
        headers = self._headers
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            content_type = "application/json"
        if content_type:
            headers = [*headers, ("Content-Type", content_type)]
        req = httpx.Request(method, self._url(path), params=params, headers=headers, content=content,
                            extensions={"timeout": self._timeout})
        r = self.transport.handle_request(req)
        try:
            self._check_chain(r.headers.get("x-supra-chain-id"), what)
            length = r.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                raise _TooLarge(f"it announced {int(length):,} bytes")
            r.stream = _Bounded(r.stream, limit)
            r.read()
            if len(r.content) > limit:  # inflated past it by a Content-Encoding the node chose unasked
                raise _TooLarge(f"{len(r.content):,} bytes once decoded")
        finally:
            r.close()
        r.request = req
        for hook in self.hooks:
            hook(r)
        return r

    def _check_chain(self, header: str | None, what: str) -> None:
        """Pin the chain id the first answer names; an answer naming another one stops the run."""
        if not header:
            return
        cid = header.strip()
        if self.chain_id is None:
            with self._chain_lock:
                if self.chain_id is None:
                    self.chain_id = cid
        if cid != self.chain_id:
            self._chain_changed(cid, f"{what}: x-supra-chain-id")

    def _chain_changed(self, cid: str, where: str) -> None:
        msg = (f"RPC node {self.url}: {where} says chain {cid}, but this run started on chain {self.chain_id}: "
               f"stopped (nothing from chain {cid} was used; run again to check that chain)")
        with self._chain_lock:
            if self._changed is None:
                self._changed = msg
        raise ChainChanged(self._changed)

    def check_chain(self) -> str:
        """Read the chain id endpoint (``GET rpc/v3/transactions/chain_id``) and hold it to the pinned one
        (pinning it if none yet); ``ChainChanged`` when it names another chain. Called before a write
        that does not go through this client (the CLI signs it), so it never lands on another chain."""
        what = "chain id"
        r = self.request("GET", "rpc/v3/transactions/chain_id", what=what, limit=MAX_BYTES["chain_id"])
        if r.status_code != 200:
            raise self._error(r, what)
        body = self._json(r, what)
        if isinstance(body, bool) or not isinstance(body, (int, str)) or not str(body).strip().isdigit():
            raise BackendError(f"RPC node {self.url}: {what}: expected a bare integer, got {str(body)[:80]}")
        cid = str(int(body))
        if self.chain_id is None:
            with self._chain_lock:
                if self.chain_id is None:
                    self.chain_id = cid
        if cid != self.chain_id:
            self._chain_changed(cid, "the chain id endpoint")
        return cid

    def describe(self) -> str:
        keys = f", headers {', '.join(self.header_names)} (values hidden)" if self.header_names else ""
        return f"RPC node {self.url}{keys}"

    # -- transport -----------------------------------------------------------------------------

    @staticmethod
    def _backoff(attempt: int) -> float:
        return random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))

    @staticmethod
    def _retry_after(r: httpx.Response) -> float | None:
        value = r.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())

    def request(self, method: str, path: str, *, what: str, limit: int = DEFAULT_MAX_BYTES,
                retry_status: frozenset[int] = RETRY_STATUS, **kw: Any) -> httpx.Response:
        """One request, retried while the failure is transient (a connection error, an answer whose status is
        in ``retry_status``); the last answer or a BackendError.

        Each attempt must have its whole answer within ``call_timeout`` seconds (else it is a failed
        attempt, retried like a timeout), at most ``limit`` bytes of it (else ``BackendError``, not
        retried), and for the chain the run started on (else ``ChainChanged``). The answer's
        ``extensions["dualwrite_retries"]`` is how many retries it took, and on a 429 not retried
        because of its Retry-After, ``extensions["dualwrite_retry_after"]`` the wait asked for."""
        if self._changed is not None:  # an answer named another chain: nothing more from this node
            raise ChainChanged(self._changed)
        if self._down is not None:  # the node did not answer a whole retry series: do not hammer it
            raise BackendUnavailable(self._down)
        attempt = 0
        while True:
            self.requests += 1
            late = False
            _deadline.at = time.monotonic() + self.call_timeout
            try:
                r = self._send(method, path, what=what, limit=limit, **kw)
            except httpx.TimeoutException as e:
                late = _deadline.at is not None and time.monotonic() >= _deadline.at - 1e-3
                err: BackendError = TransientBackendError(
                    f"RPC node {self.url}: {what}: no whole answer within --call-timeout {self.call_timeout:g}s"
                    if late else f"RPC node {self.url}: {what}: no answer in time ({type(e).__name__})")
            except (httpx.TransportError, OSError) as e:  # refused, reset, dropped mid-answer
                err = BackendUnavailable(f"RPC node {self.url}: {what}: {_reason(e)}")
            except _TooLarge as e:
                raise BackendError(f"RPC node {self.url}: {what} ({method} {path}): the answer is larger than the "
                                   f"{_size(limit)} limit of that endpoint ({e}); abandoned") from None
            else:
                r.extensions["dualwrite_retries"] = attempt
                if r.status_code not in retry_status:
                    return r
                wait = self._retry_after(r) if r.status_code == 429 else None
                if wait is not None and wait > RETRY_AFTER_CAP_S:
                    r.extensions["dualwrite_retry_after"] = wait
                    return r
                if attempt >= self.retries:
                    return r
                attempt += 1
                self.retried += 1
                _backoff_wait.wait(wait if wait is not None else self._backoff(attempt))
                continue
            finally:
                _deadline.at = None
            if attempt >= self.retries:
                if isinstance(err, BackendUnavailable) or late:  # nobody answers, or never a whole answer
                    self._down = f"{err.message} (after {count(attempt + 1, 'attempt')})"
                    err = BackendUnavailable(self._down)
                raise err
            attempt += 1
            self.retried += 1
            _backoff_wait.wait(self._backoff(attempt))

    def _json(self, r: httpx.Response, what: str) -> Any:
        try:
            return r.json()
        except ValueError:
            raise BackendError(f"RPC node {self.url}: {what}: HTTP {r.status_code}, not JSON: "
                               f"{r.text[:120]!r}") from None

    def _error(self, r: httpx.Response, what: str) -> Exception:
        if 300 <= r.status_code < 400:
            location = r.headers.get("Location")
            if not location:
                return BackendError(f"RPC node {self.url}: {what}: the node answered a redirect (HTTP {r.status_code}) "
                                    f"without a Location; redirects are not followed")
            target = r.request.url.join(location)
            path = r.request.url.raw_path.decode("ascii", "replace").split("?", 1)[0].lstrip("/")
            base_path = self.base.raw_path.decode("ascii", "replace").lstrip("/")
            endpoint = path[len(base_path):] if path.startswith(base_path) else path
            return BackendError(f"RPC node {self.url}: {what}: the node answered a redirect (HTTP {r.status_code}) to "
                                f"{redact_url(str(target))}; redirects are not followed: give that URL "
                                f"(--rpc-url {_redirect_base(target, endpoint)})")
        body = self._json(r, what) if r.content else {}
        message = body.get("message") if isinstance(body, dict) else None
        text = str(message) if message is not None else (r.text[:200] or r.reason_phrase)
        asked = r.extensions.get("dualwrite_retry_after")
        if asked is not None:
            return TransientBackendError(
                f"RPC node {self.url}: {what}: HTTP 429, and the node asks to wait {asked:g}s (Retry-After: "
                f"{r.headers.get('Retry-After', '').strip()}) before the next request, longer than the "
                f"{RETRY_AFTER_CAP_S:g}s a retry waits: not retried"
                + (f" (after {count(r.extensions['dualwrite_retries'], 'retry')})" if r.extensions.get("dualwrite_retries") else "")
                + f": {text}")
        if r.status_code in RETRY_STATUS:
            n = r.extensions.get("dualwrite_retries", self.retries)
            return TransientBackendError(f"RPC node {self.url}: {what}: HTTP {r.status_code} after "
                                         f"{count(n, 'retry')}: {text}")
        abort = find_abort(text)
        if abort is not None:
            return abort
        if r.status_code == 410:  # pruned: the node keeps only recent blocks
            oldest = r.headers.get("x-supra-oldest-block")
            return BackendError(f"RPC node {self.url}: {what}: HTTP 410, the node no longer has that data"
                                + (f" (its oldest block is {oldest}: start at --from-height {oldest}, or use an "
                                   f"archive node)" if oldest else "") + f": {text}")
        if r.status_code in (401, 403):
            return BackendUnavailable(f"RPC node {self.url}: {what}: HTTP {r.status_code} {text} "
                                      f"(check the --rpc-header keys)")
        return failure(text, where=f"RPC node {self.url}, {what} (HTTP {r.status_code})")

    # -- endpoints -------------------------------------------------------------------------------

    def view(self, function_id: str, arguments: list[Any], type_arguments: list[str] = ()) -> list[Any]:
        what = function_id.split("::", 1)[-1]
        r = self.request("POST", "rpc/v3/view", what=what, limit=MAX_BYTES["view"],
                         json_body={"function": function_id, "type_arguments": list(type_arguments),
                                    "arguments": arguments})
        if r.status_code != 200:
            raise self._error(r, what)
        body = self._json(r, what)
        if not isinstance(body, dict) or not isinstance(body.get("result"), list):
            raise BackendError(f"RPC node {self.url}: {what}: expected {{\"result\": [...]}}, got {str(body)[:120]}")
        return body["result"]

    def events_page(self, event_type: str, start_height: int | None = None, end_height: int | None = None,
                    limit: int = EVENTS_PAGE, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        params: dict[str, Any] = {"limit": limit}
        if start_height is not None:
            params["start_height"] = start_height
        if end_height is not None:
            params["end_height"] = end_height
        if cursor:
            params["start"] = cursor
        what = f"events {event_type.rsplit('::', 1)[-1]}"
        r = self.request("GET", f"rpc/v3/events/{event_type}", what=what, params=params, limit=MAX_BYTES["events"])
        if r.status_code != 200:
            raise self._error(r, what)
        body = self._json(r, what)
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict):  # the OpenAPI text's single EventWithContextV3
            data = [data]
        if not isinstance(data, list):
            raise BackendError(f"RPC node {self.url}: {what}: expected {{\"data\": [...]}}, got {str(body)[:120]}")
        return data, (r.headers.get("x-supra-cursor") or None)

    def events(self, event_type: str, start_height: int | None = None, end_height: int | None = None,
               cursor: str | None = None) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """Every page to the end: (events, the cursor after them); a repeated cursor or a scan past its
        page or time budget stops with ``EventScanStopped`` saying where (``events.page_through``)."""
        return page_through(self, event_type, start_height, end_height, cursor)

    def sim_info(self) -> dict[str, Any] | None:
        """What only ``dualwrite sim serve`` answers (``GET /dualwrite/v1/sim``: the state file it serves, the
        module addresses); None from a node that does not (a real one: 404)."""
        from dualwrite.sim.server import SIM_INFO_PATH

        what = "simulator info"
        r = self.request("GET", SIM_INFO_PATH, what=what, limit=MAX_BYTES["account"])
        if r.status_code in (404, 405):
            return None
        if r.status_code != 200:
            raise self._error(r, what)
        body = self._json(r, what)
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("state", "lottery_multi", "lottery")):
            return None
        return body

    def block(self, height: int | None = None) -> dict[str, Any]:
        what = "latest block" if height is None else f"block {height}"
        r = self.request("GET", "rpc/v3/block" if height is None else f"rpc/v3/block/height/{height}", what=what,
                         limit=MAX_BYTES["block"])
        if r.status_code != 200:
            raise self._error(r, what)
        body = self._json(r, what)
        try:
            body["header"]["timestamp"]["microseconds_since_unix_epoch"]
            int(body["header"]["height"])
        except (TypeError, KeyError, ValueError):
            raise BackendError(f"RPC node {self.url}: {what}: no header.height/timestamp in {str(body)[:120]}") from None
        return body


def _version() -> str:
    from dualwrite import __version__

    return __version__


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text and text[0] else type(e).__name__


def block_time(block: dict[str, Any]) -> datetime:
    us = int(block["header"]["timestamp"]["microseconds_since_unix_epoch"])
    return datetime.fromtimestamp(us / 1e6, timezone.utc)


class RpcBackend:
    """The read-only ``rpc`` backend: every view over HTTP; writes refused (exit 2)."""

    name = "rpc"
    in_process = False
    read_only = True

    def __init__(self, url: str, addresses: ModuleAddresses, *, headers: dict[str, str] | None = None,
                 timeout: float = 10.0, retries: int = 8, connections: int = 16,
                 checkpoint=None, call_timeout: float = CALL_TIMEOUT_S, events_max_pages: int | None = None,
                 events_timeout: float | None = None, client: RpcClient | None = None) -> None:
        missing = [opt for opt, v in (("--lottery-multi-address", addresses.lottery_multi),
                                      ("--lottery-address", addresses.lottery)) if not v]
        if missing:
            raise InputError(
                f"reads over RPC need the module addresses (function ids over HTTP are 0xADDR::module::fn, and a "
                f"node cannot resolve the named form): pass {' and '.join(missing)} (env "
                f"DUALWRITE_LOTTERY_MULTI_ADDRESS, DUALWRITE_LOTTERY_ADDRESS, or the settings file; "
                f"`dualwrite sim serve --env` prints them for the emulated node)")
        for opt, v in (("--lottery-multi-address", addresses.lottery_multi), ("--lottery-address", addresses.lottery)):
            if not str(v).startswith("0x"):
                raise InputError(f"{opt} {v!r}: reads over RPC need a 0x hex account address")
        self.addresses = addresses
        self.client = client or RpcClient(url, headers=headers, timeout=timeout, retries=retries,
                                          connections=connections, call_timeout=call_timeout,
                                          events_max_pages=events_max_pages, events_timeout=events_timeout)
        self.url = self.client.url
        from dualwrite.backends.events import EventIndex

        self.index = EventIndex(self.client, addresses, checkpoint=checkpoint)

    def view(self, function: str, args: list[str]) -> list[Any]:
        return self.client.view(self.addresses.function_id(function), [_arg(a) for a in args])

    @property
    def chain_id(self) -> str | None:
        """The chain id this run's answers named (None until one did)."""
        return self.client.chain_id

    def pin_chain_id(self, chain_id: str) -> None:
        """Hold this backend's answers to ``chain_id`` from the first one on (a long-running reader,
        ``dualwrite monitor``, keeps the chain it started on across the backends it opens)."""
        if self.client.chain_id is None:
            self.client.chain_id = str(chain_id)

    def run(self, function: str, args: list[str]) -> TxnResult:
        raise InputError(self.refusal(f"{function} is a write"))

    def tx_writer(self) -> None:
        return None

    @staticmethod
    def refusal(what: str) -> str:
        return (f"the rpc backend is read-only without a key: {what}; writes need --private-key-file FILE (signed "
                f"here, submitted to the node) or a backend that holds the keys ({WRITE_BACKENDS}), "
                f"e.g. --backend podman --rpc-url URL")

    def describe(self) -> str:
        return f"rpc ({self.client.describe()})"

    def chain_identity(self) -> dict[str, str]:
        """The chain id the node reports (``x-supra-chain-id``; one block read if no answer carried it yet) and
        the module addresses: the chain, not the node's URL (two nodes of one network reach one chain)."""
        from dualwrite.errors import DualwriteError

        if self.client.chain_id is None:
            try:
                self.client.check_chain()
            except ChainChanged:
                raise
            except DualwriteError:
                pass  # unknown: a heal then never matches a run recorded with the id (safe side)
        return {"backend": "rpc", "chain_id": self.client.chain_id or "unknown",
                "lottery_multi": self.addresses.lottery_multi or "", "lottery": self.addresses.lottery or ""}

    # -- what only events tell -----------------------------------------------------------------

    def pending_since(self, lottery_id: int, expected_hash: bytes | None = None) -> datetime | None:
        """When the current expectation was registered: its Started event's block time."""
        return self.index.registered_at(lottery_id, expected_hash)

    def legacy_ids(self) -> list[int]:
        """Every id history_bridge has recorded (its LegacySummaryEvents): the legacy archive's listing."""
        return self.index.legacy_ids()

    def refresh_events(self) -> set[int]:
        """Read only the blocks since the last scan (the monitor's next cycle); the lotteries they touched."""
        return self.index.refresh()

    def chain_now(self) -> datetime:
        return block_time(self.client.block())

    def event_source(self) -> RpcClient:
        return self.client

    def close(self) -> None:
        try:
            self.index.save()
        finally:
            self.client.close()


class SplitBackend:
    """Writes through one backend (the CLI, which holds the keys, or the ``RpcWriter``), reads through another
    (the node)."""

    in_process = False

    def __init__(self, writer: Backend, reader: RpcBackend) -> None:
        self.writer = writer
        self.reader = reader
        self.name = writer.name

    def run(self, function: str, args: list[str]) -> TxnResult:
        # the CLI signs and sends through the same node: first make sure it still serves the chain this
        # run read (one small request; a write costs a process), so a write never lands on another chain.
        # The RPC writer sends through the reader's own client: every answer it gets is checked already.
        if self.tx_writer() is None:
            self.reader.client.check_chain()
        return self.writer.run(function, args)

    def tx_writer(self):
        """The writer's ``RpcWriter`` when writes go over RPC, else None."""
        fn = getattr(self.writer, "tx_writer", None)
        return fn() if callable(fn) else None

    def view(self, function: str, args: list[str]) -> list[Any]:
        return self.reader.view(function, args)

    @property
    def chain_id(self) -> str | None:
        return self.reader.chain_id

    def pin_chain_id(self, chain_id: str) -> None:
        self.reader.pin_chain_id(chain_id)

    def describe(self) -> str:
        return f"{self.writer.describe()}; reads over {self.reader.client.describe()}"

    def chain_identity(self) -> dict[str, str]:
        """The writer's: the chain is where the writes land; the way the reads go is not part of it."""
        from dualwrite.backends.base import identity_of

        return identity_of(self.writer)

    def pending_since(self, lottery_id: int, expected_hash: bytes | None = None) -> datetime | None:
        return self.reader.pending_since(lottery_id, expected_hash)

    def legacy_ids(self) -> list[int]:
        return self.reader.legacy_ids()

    def refresh_events(self) -> set[int]:
        return self.reader.refresh_events()

    def chain_now(self) -> datetime:
        return self.reader.chain_now()

    @property
    def index(self):
        return self.reader.index

    @property
    def addresses(self) -> ModuleAddresses:
        return self.reader.addresses

    def event_source(self) -> RpcClient:
        return self.reader.client

    def close(self) -> None:
        try:
            self.reader.close()
        finally:
            self.writer.close()


__all__ = ["MAX_BYTES", "RpcBackend", "RpcClient", "SplitBackend", "block_time", "parse_headers", "redact_url", "time"]
