"""An emulated Supra RPC node over the simulator's state: the read endpoints of supra-cli.md, "RPC node".

Same paths (v3, and the v1 forms Supra's TypeScript SDK still calls), JSON shapes, headers
(``x-supra-chain-id`` on every response, ``x-supra-cursor`` on event pages), status codes and
``{"message": ...}`` error bodies as the node. Fault options (a share of 503s or 429s with
``Retry-After``, added latency, dropped connections) drive the client's retry drills.

The stack is the standard library's threaded HTTP/1.1 server with keep-alive: one thread and
one SQLite connection per client connection, so a client's pool of N connections is served
by N threads reading the WAL in parallel. Measured on this project's 2-core machine
(``benchmarks/verify.py``) it serves the 10,000-lottery ``verify --all`` within the 20 s goal;
the request cost is dominated by the client and the views, not by the server's parsing.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from dualwrite.bcs.types import AddressType, BoolType, BytesType, StringType, UIntType
from dualwrite.errors import DualwriteError, InputError, MoveAbort
from dualwrite.words import count

MAX_EVENTS_LIMIT = 100
DEFAULT_EVENTS_LIMIT = 20
MAX_BODY = 1 << 20
#: what only the emulated node answers (a real node has no such path): the state it serves and its modules,
#: so `--backend sim --rpc-url URL` can check it reads the chain it writes, and learn the module addresses
SIM_INFO_PATH = "dualwrite/v1/sim"


@dataclass
class Faults:
    """What the node does wrong, for drills: shares are 0..1, latency in seconds."""

    share_503: float = 0.0
    share_429: float = 0.0
    retry_after: int = 1
    latency: float = 0.0
    share_drop: float = 0.0
    seed: int | None = None
    # the write path's drills (``sim/node.py``): accepted and never executed, 503 on submit, a slow commit
    share_txn_drop: float = 0.0
    share_mempool_full: float = 0.0
    commit_delay: float = 0.0
    mempool_size: int | None = None
    #: ``node-hash=smr``: answer each submit with a digest of the node's own (as a real Supra node does, whose
    #: hash is not the client's), and serve the transaction under it
    own_hash: bool = False

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._txn_rng = random.Random(None if self.seed is None else self.seed + 1)
        self._lock = threading.Lock()

    def draw_txn(self) -> str | None:
        """What a submitted transaction meets: ``drop`` (accepted, never executed), ``full`` (503), or nothing."""
        if not (self.share_txn_drop or self.share_mempool_full):
            return None
        with self._lock:
            x = self._txn_rng.random()
        if x < self.share_mempool_full:
            return "full"
        if x < self.share_mempool_full + self.share_txn_drop:
            return "drop"
        return None

    def draw(self) -> str | None:
        """Which fault this request gets, if any."""
        with self._lock:
            x = self._rng.random()
        for kind, share in (("drop", self.share_drop), ("503", self.share_503), ("429", self.share_429)):
            if x < share:
                return kind
            x -= share
        return None

    @property
    def active(self) -> bool:
        return bool(self.share_503 or self.share_429 or self.latency or self.share_drop)


FAULT_KINDS = ("503", "429", "retry-after", "latency", "drop", "txn-drop", "mempool-full", "commit-delay",
               "mempool-size", "node-hash")
_SHARES = {"503": "share_503", "429": "share_429", "drop": "share_drop", "txn-drop": "share_txn_drop",
           "mempool-full": "share_mempool_full"}


def parse_fault(text: str, faults: Faults) -> None:
    """``503=20%``, ``429=0.1``, ``retry-after=2``, ``latency=50ms``, ``drop=5%`` (requests); ``txn-drop=10%``
    (a share of submitted transactions accepted and never executed), ``mempool-full=20%`` (a share of submits
    answered 503), ``mempool-size=N`` (503 once N transactions wait), ``commit-delay=200ms`` (transactions)."""
    kind, sep, value = text.partition("=")
    kind = kind.strip().lower()
    value = value.strip()
    if not sep or not value:
        raise InputError(f"--fault {text!r}: expected KIND=VALUE (503=20%, 429=10%, retry-after=2, latency=50ms, "
                         f"drop=5%, txn-drop=10%, mempool-full=20%, mempool-size=100, commit-delay=200ms)")
    try:
        if kind in _SHARES:
            share = float(value[:-1]) / 100 if value.endswith("%") else float(value)
            if not 0 <= share <= 1:
                raise ValueError
            setattr(faults, _SHARES[kind], share)
        elif kind in ("latency", "commit-delay"):
            m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)?", value)
            if not m:
                raise ValueError
            setattr(faults, kind.replace("-", "_"), float(m[1]) / (1000 if m[2] in (None, "ms") else 1))
        elif kind == "retry-after":
            faults.retry_after = int(value)
            if faults.retry_after < 0:
                raise ValueError
        elif kind == "node-hash":
            if value not in ("smr", "dualwrite"):
                raise ValueError
            faults.own_hash = value == "smr"
        elif kind == "mempool-size":
            faults.mempool_size = int(value)
            if faults.mempool_size < 1:
                raise ValueError
        else:
            raise InputError(f"--fault {text!r}: unknown kind {kind!r} ({', '.join(FAULT_KINDS)})")
    except ValueError:
        raise InputError(f"--fault {text!r}: {value!r} is not a valid value for {kind}") from None
    if faults.share_503 + faults.share_429 + faults.share_drop > 1:
        raise InputError(f"--fault {text!r}: the shares of 503, 429 and drop add up to more than 100%")
    if faults.share_txn_drop + faults.share_mempool_full > 1:
        raise InputError(f"--fault {text!r}: the shares of txn-drop and mempool-full add up to more than 100%")


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def abort_message(e: MoveAbort, style: str = "node") -> str:
    """The node's text for a view that aborted (v11.7: the code in decimal, then where); the same
    writer as ``dualwrite-supra``'s (``sim/abort_styles.py``)."""
    from dualwrite.sim.abort_styles import view_abort_message

    return view_abort_message(e, style)


def cli_arg(value: Any, param, index: int) -> str:
    """A ``ViewRequest`` argument (Move JSON) as the simulator's ``TYPE:VALUE`` argument."""
    where = f"argument {index + 1}"
    if isinstance(param, BoolType):
        if not isinstance(value, bool):
            raise HttpError(400, f"Invalid arguments: {where}: expected a JSON bool, got {json.dumps(value)}")
        return f"bool:{'true' if value else 'false'}"
    if isinstance(param, UIntType):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise HttpError(400, f"Invalid arguments: {where}: expected a {param.name} as a decimal string")
        return f"{param.name}:{value}"
    if isinstance(param, BytesType):
        if not isinstance(value, str) or not value.startswith("0x"):
            raise HttpError(400, f"Invalid arguments: {where}: expected vector<u8> as 0x hex")
        return f"hex:{value[2:]}"
    if isinstance(param, AddressType):
        return f"address:{value}"
    if isinstance(param, StringType):
        return f"string:{value}"
    raise HttpError(400, f"Invalid arguments: {where}: unsupported parameter type {param.name}")


def node_txn(txn: dict[str, Any]) -> dict[str, Any]:
    """The CLI's transaction JSON in the node's form: ``header.sender.Move``, ``expiration_timestamp``."""
    from datetime import datetime, timezone

    header = dict(txn["header"])
    secs = header.pop("expiration_timestamp_secs")
    header["sender"] = {"Move": header["sender"]}
    header["expiration_timestamp"] = {"microseconds_since_unix_epoch": secs * 1_000_000,
                                      "utc_date_time": datetime.fromtimestamp(secs, timezone.utc).isoformat()}
    return {**{k: v for k, v in txn.items() if k != "block_height"}, "header": header}


class NodeServer(ThreadingHTTPServer):
    """The HTTP server: what every handler shares (state path, faults, chain id)."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: Path, faults: Faults | None = None, *,
                 lottery_multi: str | None = None, lottery: str | None = None, log: bool = False,
                 require_header: tuple[str, str] | None = None) -> None:
        from dualwrite.sim.chain import Chain

        self.state = Path(state)
        self.require_header = require_header  # a provider's key: 401 without it
        from dualwrite.sim.abort_styles import style_from_env

        self.abort_style = style_from_env()  # DUALWRITE_SUPRA_ABORT_STYLE, default "node" (v11.7)
        self.faults = faults or Faults()
        self.log = log
        self.chain_kwargs = {"lottery_multi": lottery_multi, "lottery": lottery}
        with Chain(self.state, **self.chain_kwargs) as c:  # fail at start on a bad state file
            self.addresses = c.addresses
        from dualwrite.sim.node import Mempool

        self.mempool = Mempool(self.state, self.chain_kwargs, self.faults, self.abort_style)
        try:
            super().__init__(address, Handler)
        except BaseException:
            self.mempool.stop()
            raise

    def server_close(self) -> None:
        super().server_close()
        self.mempool.stop()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def info(self) -> dict[str, Any]:
        """``GET /dualwrite/v1/sim``: the state file served, the module addresses, the chain id."""
        from dualwrite.sim.chain import CHAIN_ID

        return {"state": os.path.realpath(self.state), "lottery_multi": self.addresses.lottery_multi,
                "lottery": self.addresses.lottery, "chain_id": CHAIN_ID}

    def env(self) -> dict[str, str]:
        """What a client needs, as the environment variables dualwrite reads (``sim serve --env``)."""
        return {"DUALWRITE_RPC_URL": self.base_url, "DUALWRITE_LOTTERY_MULTI_ADDRESS": self.addresses.lottery_multi,
                "DUALWRITE_LOTTERY_ADDRESS": self.addresses.lottery, "DUALWRITE_STATE": os.path.realpath(self.state),
                "DUALWRITE_SIM_SERVE_PID": str(os.getpid())}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client's pooled connections stay open
    server: NodeServer
    server_version = "dualwrite-sim-node"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._chain = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._chain is not None:
                self._chain.close()

    @property
    def chain(self):
        """This connection's own SQLite connection (connections are not shared between threads)."""
        if self._chain is None:
            from dualwrite.sim.chain import Chain

            self._chain = Chain(self.server.state, **self.server.chain_kwargs)
        return self._chain

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log:
            super().log_message(format, *args)

    # -- plumbing -----------------------------------------------------------------------------

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        from dualwrite.sim.chain import CHAIN_ID

        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-supra-chain-id", str(CHAIN_ID))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self._headers_buffer.append(b"\r\n")  # end_headers(), with the body in the same write
        self._headers_buffer.append(data)
        self.flush_headers()

    def _handle(self, method: str) -> None:
        faults = self.server.faults
        body = None
        if method == "POST":
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self.close_connection = True
                return self._send(400, {"message": "invalid Content-Length"})
            body = self.rfile.read(length)
        need = self.server.require_header
        if need is not None and self.headers.get(need[0]) != need[1]:
            return self._send(401, {"message": f"missing or wrong {need[0]} header"})
        if faults.active:
            if faults.latency:
                threading.Event().wait(faults.latency)  # added latency, on purpose
            kind = faults.draw()
            if kind == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # the peer is gone already
                return
            if kind == "503":
                return self._send(503, {"message": "the archive is still initializing, retry"})
            if kind == "429":
                return self._send(429, {"message": "too many requests"},
                                  {"Retry-After": str(faults.retry_after)})
        from dualwrite.sim.node import Refused

        try:
            status, out, headers = self.route(method, body)
        except Refused as e:
            return self._send(e.status, {"message": e.message})
        except HttpError as e:
            return self._send(e.status, {"message": e.message}, e.headers)
        except MoveAbort as e:
            return self._send(400, {"message": abort_message(e, self.server.abort_style)})
        except InputError as e:
            return self._send(400, {"message": str(e)})
        except DualwriteError as e:
            return self._send(500, {"message": str(e)})
        self._send(status, out, headers)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._send(405, {"message": "method not allowed"})

    do_DELETE = do_PATCH = do_PUT

    # -- the endpoints ------------------------------------------------------------------------

    def route(self, method: str, body: bytes | None) -> tuple[int, Any, dict[str, str] | None]:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if parts == SIM_INFO_PATH.split("/") and method == "GET":
            return 200, self.server.info(), None
        if len(parts) < 3 or parts[0] != "rpc" or parts[1] not in ("v1", "v2", "v3"):
            raise HttpError(404, f"no such endpoint: {url.path}")
        version, rest = parts[1], parts[2:]
        posts = rest == ["view"] or rest in (["transactions", "submit"], ["transactions", "simulate"])
        want = "POST" if posts else "GET"
        if method != want:
            raise HttpError(405, f"{method} not allowed on {url.path}")
        if rest == ["view"]:
            return 200, {"result": self.view(body)}, None
        if version == "v2":
            raise HttpError(404, f"no such endpoint: {url.path}")
        if rest[0] == "events" and len(rest) == 2:
            data, cursor = self.events(rest[1], query)
            return 200, {"data": data}, {"x-supra-cursor": cursor or ""}
        if rest[0] == "transactions" and rest[1:] == ["chain_id"]:
            from dualwrite.sim.chain import CHAIN_ID

            return 200, CHAIN_ID, None
        if rest[0] == "transactions" and rest[1:] in (["submit"], ["simulate"]):
            from dualwrite.sim.node import parse_body

            value = parse_body(body, self.headers.get("Content-Type") or "")
            pool = self.server.mempool
            if rest[1] == "submit":
                return 200, pool.submit(self.chain, value), None
            return 200, node_txn(pool.simulate(self.chain, value)), None
        if rest[0] == "transactions" and rest[1:] == ["estimate_gas_price"]:
            from dualwrite.sim.node import GAS_PRICE

            return 200, {"mean_gas_price": GAS_PRICE, "max_gas_price": GAS_PRICE, "median_gas_price": GAS_PRICE}, None
        if rest[0] == "transactions" and rest[1:] == ["parameters"]:
            from dualwrite.sim.node import MAX_TTL_S

            return 200, {"max_transaction_time_to_live_seconds": MAX_TTL_S}, None
        if rest[0] == "transactions" and len(rest) == 2:
            txn = self.chain.transaction(rest[1])
            if txn is None:
                waiting = self.server.mempool.pending(rest[1])
                if waiting is not None:
                    from dualwrite.sim.node import pending_json

                    return 200, pending_json(waiting, v1=version == "v1"), None
                self.server.mempool.heartbeat(self.chain)
                raise HttpError(404, f"Transaction not found: {rest[1]}")
            return 200, node_txn(txn), None
        if rest[0] == "accounts" and len(rest) == 2:
            return 200, self.account(rest[1]), None
        if version == "v3" and rest == ["block"]:
            # the latest block is the node's clock (expiries are reckoned by it): a live chain keeps producing
            # blocks, so an idle emulator makes one at its clock before answering, as it does for a lookup
            self.server.mempool.heartbeat(self.chain)
            block = self.chain.block()
            if block is None:
                raise HttpError(404, "no block committed yet")
            return 200, self.block_json(block, with_txns=False), None
        if version == "v3" and len(rest) == 3 and rest[:2] == ["block", "height"]:
            height = self.int_param(rest[2], "height")
            block = self.chain.block(height)
            if block is None:
                raise HttpError(404, f"Block not found at height {height}")
            return 200, self.block_json(block, with_txns=True), None
        raise HttpError(404, f"no such endpoint: {url.path}")

    @staticmethod
    def int_param(text: str, name: str) -> int:
        if not text.isascii() or not text.isdigit() or len(text) > 20 or int(text) >= 2**64:
            raise HttpError(400, f"invalid {name}: {text!r} is not a u64")
        return int(text)

    def view(self, body: bytes | None) -> list[Any]:
        try:
            req = json.loads(body or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HttpError(400, f"Invalid view request: body is not JSON ({e})") from None
        if not isinstance(req, dict) or not isinstance(req.get("function"), str):
            raise HttpError(400, "Invalid view request: expected {\"function\", \"type_arguments\", \"arguments\"}")
        type_args = req.get("type_arguments", [])
        args = req.get("arguments", [])
        if not isinstance(type_args, list) or not isinstance(args, list):
            raise HttpError(400, "Invalid view request: type_arguments and arguments must be arrays")
        chain = self.chain
        fn = chain.resolve(req["function"])
        if len(args) != len(fn.params):
            raise HttpError(400, f"Invalid arguments: {fn.module}::{fn.name} takes {count(len(fn.params), 'argument')}, "
                                 f"got {len(args)} (NUMBER_OF_ARGUMENTS_MISMATCH)")
        cli_args = [cli_arg(v, p, i) for i, (v, p) in enumerate(zip(args, fn.params))]
        return chain.view(req["function"], cli_args, type_args=[str(t) for t in type_args])

    def events(self, event_type: str, query: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
        if event_type.count("::") != 2:
            raise HttpError(400, f"invalid event type {event_type!r}: expected 0xADDR::module::EventStruct")
        start = self.int_param(query["start_height"], "start_height") if query.get("start_height") else None
        end = self.int_param(query["end_height"], "end_height") if query.get("end_height") else None
        limit = self.int_param(query["limit"], "limit") if query.get("limit") else DEFAULT_EVENTS_LIMIT
        if not 1 <= limit <= MAX_EVENTS_LIMIT:
            raise HttpError(400, f"invalid limit {limit}: must be between 1 and {MAX_EVENTS_LIMIT}")
        addr, module, name = event_type.split("::")
        if addr.startswith("0x"):
            from dualwrite.sim.accounts import normalize_address

            try:
                addr = normalize_address(addr, "event type")
            except InputError as e:
                raise HttpError(400, str(e)) from None
        return self.chain.events_page(f"{addr}::{module}::{name}", start, end, limit, query.get("start") or None)

    def block_json(self, block: dict[str, Any], *, with_txns: bool) -> dict[str, Any]:
        from dualwrite.sim.chain import block_header

        out: dict[str, Any] = {"header": block_header(block), "execution_statistics": None}
        if with_txns:
            txns = []
            if block["txn_hash"]:
                txn = self.chain.transaction(block["txn_hash"])
                if txn is not None:
                    txns.append({**node_txn(txn), "block_header": None})  # listed inside its block
            out["transactions"] = txns
        return out

    def account(self, address: str) -> dict[str, Any]:
        from dualwrite.sim.accounts import normalize_address

        try:
            addr = normalize_address(address, "address")
        except InputError as e:
            raise HttpError(400, str(e)) from None
        chain = self.chain
        pool = self.server.mempool
        if not pool.account_exists(chain, addr):
            raise HttpError(404, f"Account not found: {addr}")
        return {"sequence_number": chain.sequence_number(addr), "authentication_key": pool.authentication_key(chain, addr)}


def serve(state: Path, host: str = "127.0.0.1", port: int = 0, faults: Faults | None = None, *,
          log: bool = False, announce=lambda server: print(server.base_url, flush=True), require_header: tuple[str, str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; once it listens, ``announce(server)`` (the CLI prints the base URL first)."""
    server = NodeServer((host, port), state, faults, log=log, require_header=require_header,
                        lottery_multi=os.environ.get("DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS") or None,
                        lottery=os.environ.get("DUALWRITE_SIM_LOTTERY_ADDRESS") or None)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        announce(server)
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        for s, h in previous.items():
            signal.signal(s, h)


def start_in_thread(state: Path, faults: Faults | None = None, **kwargs: Any) -> tuple[NodeServer, threading.Thread]:
    """A node on 127.0.0.1 (a free port) in a background thread; stop it with ``stop(server, thread)``."""
    server = NodeServer(("127.0.0.1", 0), state, faults, **kwargs)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


def stop(server: NodeServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)
