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
from dualwrite.errors import BackendError, BackendUnavailable, InputError, TransientBackendError

RETRY_STATUS = frozenset({429, 502, 503, 504})
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0
RETRY_AFTER_CAP_S = 60.0
EVENTS_PAGE = 100  # the node's maximum

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
                 retries: int = 8, connections: int = 16) -> None:
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
        self.transport = httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections), retries=0)
        self.base = httpx.URL(base)
        self._headers = [("Accept", "application/json"), ("User-Agent", f"dualwrite/{_version()} httpx"),
                         *(headers or {}).items()]
        self._timeout = {"connect": min(timeout, 5.0), "read": timeout, "write": timeout, "pool": timeout}
        self._urls: dict[str, httpx.URL] = {}
        self.hooks: list = list(RpcClient.default_hooks)  # called with each response
        self._down: str | None = None
        self.chain_id: str | None = None
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

    def _send(self, method: str, path: str, params: dict | None = None, json_body: Any = None,
              content: bytes | None = None, content_type: str | None = None) -> httpx.Response:
        headers = self._headers
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":")).encode()
            content_type = "application/json"
        if content_type is not None:
            headers = [*headers, ("Content-Type", content_type)]
        req = httpx.Request(method, self._url(path), params=params, headers=headers, content=content,
                            extensions={"timeout": self._timeout})
        r = self.transport.handle_request(req)
        try:
            r.read()
        finally:
            r.close()
        r.request = req
        for hook in self.hooks:
            hook(r)
        return r

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

    def request(self, method: str, path: str, *, what: str, retry_status: frozenset[int] = RETRY_STATUS,
                **kw: Any) -> httpx.Response:
        """One request, retried while the failure is transient (a connection error, an answer whose status is
        in ``retry_status``); the last answer or a BackendError."""
        if self._down is not None:  # the node did not answer a whole retry series: do not hammer it
            raise BackendUnavailable(self._down)
        attempt = 0
        while True:
            self.requests += 1
            try:
                r = self._send(method, path, **kw)
            except httpx.TimeoutException as e:
                err: BackendError = TransientBackendError(
                    f"RPC node {self.url}: {what}: no answer in time ({type(e).__name__})")
            except (httpx.TransportError, OSError) as e:  # refused, reset, dropped mid-answer
                err = BackendUnavailable(f"RPC node {self.url}: {what}: {_reason(e)}")
            else:
                if self.chain_id is None:
                    self.chain_id = r.headers.get("x-supra-chain-id")
                if r.status_code not in retry_status:
                    return r
                wait = self._retry_after(r) if r.status_code == 429 else None
                if attempt >= self.retries or (wait is not None and wait > RETRY_AFTER_CAP_S):
                    return r
                attempt += 1
                self.retried += 1
                _backoff_wait.wait(wait if wait is not None else self._backoff(attempt))
                continue
            if attempt >= self.retries:
                if isinstance(err, BackendUnavailable):
                    self._down = f"{err.message} (after {attempt + 1} attempts)"
                    err.message = self._down
                    err.args = (err.message,)
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
        body = self._json(r, what) if r.content else {}
        message = body.get("message") if isinstance(body, dict) else None
        text = str(message) if message is not None else (r.text[:200] or r.reason_phrase)
        if r.status_code in RETRY_STATUS:
            return TransientBackendError(f"RPC node {self.url}: {what}: HTTP {r.status_code} after "
                                         f"{self.retries} retries: {text}")
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
        r = self.request("POST", "rpc/v3/view", what=what,
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
        r = self.request("GET", f"rpc/v3/events/{event_type}", what=what, params=params)
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
               cursor: str | None = None, max_pages: int = 1_000_000) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        """Every page to the end: (events, the cursor after them)."""
        for _ in range(max_pages):
            data, cursor = self.events_page(event_type, start_height, end_height, EVENTS_PAGE, cursor)
            yield data, cursor
            if not cursor or not data:
                return

    def block(self, height: int | None = None) -> dict[str, Any]:
        what = "latest block" if height is None else f"block {height}"
        r = self.request("GET", "rpc/v3/block" if height is None else f"rpc/v3/block/height/{height}", what=what)
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
                 checkpoint=None) -> None:
        missing = [opt for opt, v in (("--lottery-multi-address", addresses.lottery_multi),
                                      ("--lottery-address", addresses.lottery)) if not v]
        if missing:
            raise InputError(
                f"reads over RPC need the module addresses (function ids over HTTP are 0xADDR::module::fn): "
                f"pass {' and '.join(missing)} (env DUALWRITE_LOTTERY_MULTI_ADDRESS, DUALWRITE_LOTTERY_ADDRESS, "
                f"or the settings file)")
        for opt, v in (("--lottery-multi-address", addresses.lottery_multi), ("--lottery-address", addresses.lottery)):
            if not str(v).startswith("0x"):
                raise InputError(f"{opt} {v!r}: reads over RPC need a 0x hex account address")
        self.addresses = addresses
        self.client = RpcClient(url, headers=headers, timeout=timeout, retries=retries, connections=connections)
        self.url = self.client.url
        from dualwrite.backends.events import EventIndex

        self.index = EventIndex(self.client, addresses, checkpoint=checkpoint)

    def view(self, function: str, args: list[str]) -> list[Any]:
        return self.client.view(self.addresses.function_id(function), [_arg(a) for a in args])

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
        """The node (scheme, host, port; the rest only as a digest), the module addresses, and the chain
        id the node reports (``x-supra-chain-id``; one block read if no answer carried it yet)."""
        from dualwrite.backends.base import url_identity as identity_url
        from dualwrite.errors import DualwriteError

        if self.client.chain_id is None:
            try:
                self.client.block()
            except DualwriteError:
                pass  # unknown: a heal then never matches a run recorded with the id (safe side)
        return {"backend": "rpc", "rpc_url": identity_url(str(self.url)), "chain_id": self.client.chain_id or "unknown",
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
        return self.writer.run(function, args)

    def tx_writer(self):
        """The writer's ``RpcWriter`` when writes go over RPC, else None."""
        fn = getattr(self.writer, "tx_writer", None)
        return fn() if callable(fn) else None

    def view(self, function: str, args: list[str]) -> list[Any]:
        return self.reader.view(function, args)

    def describe(self) -> str:
        return f"{self.writer.describe()}; reads over {self.reader.client.describe()}"

    def chain_identity(self) -> dict[str, str]:
        from dualwrite.backends.base import identity_of

        reads = self.reader.chain_identity()
        return {**identity_of(self.writer), "reads_rpc_url": reads["rpc_url"], "chain_id": reads["chain_id"]}

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


__all__ = ["RpcBackend", "RpcClient", "SplitBackend", "block_time", "parse_headers", "redact_url", "time"]
