"""Backends: the embedded simulator (default), a local ``supra``, Docker and Podman containers.

``open_backend(BackendConfig(...))`` returns a ``Backend``; nothing above this package
knows which one it got. A real network is only touched when the user names a backend.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dualwrite.backends.base import Backend, ModuleAddresses, TxnResult
from dualwrite.backends.config import BackendConfig, SettingError
from dualwrite.errors import InputError

BACKEND_NAMES = ("sim", "local", "docker", "podman", "auto", "rpc")
READS = ("auto", "rpc", "cli")


class SimBackend:
    """The embedded simulator, in-process: same results and errors as ``dualwrite-supra``."""

    name = "sim"
    in_process = True  # calls cost CPU, not waiting: concurrency does not help

    def __init__(self, cfg: BackendConfig) -> None:
        from dualwrite.sim.chain import Chain

        # a backend never creates a chain: a state file that is not there is a mistyped path (sim init creates it)
        self.chain = Chain(cfg.state, lottery_multi=os.environ.get("DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS") or None,
                           lottery=os.environ.get("DUALWRITE_SIM_LOTTERY_ADDRESS") or None, create=False)
        self.profile = cfg.profile or "default"
        self.addresses = cfg.addresses
        self._cfg = cfg.replace(state=self.chain.path)

    def run(self, function: str, args: list[str]) -> TxnResult:
        txn = self.chain.run(self.addresses.function_id(function), args, profile=self.profile)
        move = txn["output"]["Move"]
        height = (txn.get("block_header") or {}).get("height", txn.get("block_height"))
        return TxnResult(txn["hash"], txn["status"], move["vm_status"], move["gas_used"], move["events"],
                         txn.get("block_height"), None if height is None else int(height))

    def view(self, function: str, args: list[str]) -> list[Any]:
        return self.chain.view(self.addresses.function_id(function), args)

    def describe(self) -> str:
        return f"sim (state {self.chain.path})"

    def chain_identity(self) -> dict[str, str]:
        return {"backend": "sim", "state": os.path.realpath(self.chain.path),
                "lottery_multi": self.chain.addresses.lottery_multi, "lottery": self.chain.addresses.lottery}

    def pending_since(self, lottery_id: int, expected_hash: bytes | None = None):
        """When the pending expectation was registered (its Started event's block time)."""
        from datetime import datetime, timezone

        t = self.chain.last_event_time("ArchiveDualWriteStartedEvent", lottery_id)
        return None if t is None else datetime.fromtimestamp(t, timezone.utc)

    def chain_now(self):
        """The chain's time (the simulator's clock), so ages hold when the clock was moved forward."""
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self.chain.clock_us() / 1e6, timezone.utc)

    def event_source(self):
        """The event log, paged as the node pages it (``dualwrite events``)."""
        from dualwrite.backends.events import ChainEvents

        return ChainEvents(self.chain)

    def tx_writer(self) -> None:
        """No RPC writer: the simulator runs in-process."""
        return None

    def fork(self) -> "SimBackend":
        """An independent connection for another thread (SQLite connections are not shared)."""
        return SimBackend(self._cfg)

    def close(self) -> None:
        self.chain.close()


def _client_kwargs(cfg: BackendConfig) -> dict[str, Any]:
    """The RPC knobs, as ``RpcClient`` (and ``RpcBackend``, which makes one) take them."""
    from dualwrite.backends.rpc import parse_headers

    return {"headers": parse_headers(cfg.rpc_headers), "timeout": cfg.rpc_timeout, "retries": cfg.rpc_retries,
            "connections": 64, "call_timeout": cfg.call_timeout, "events_max_pages": cfg.events_max_pages,
            "events_timeout": cfg.events_timeout}


def _rpc_reader(cfg: BackendConfig):
    from dualwrite.backends.rpc import RpcBackend

    return RpcBackend(cfg.node_url, cfg.addresses, checkpoint=cfg.events_checkpoint, **_client_kwargs(cfg))


def _sim_reader(cfg: BackendConfig, sim: "SimBackend"):
    """``--backend sim`` with an RPC URL: the node must be ``dualwrite sim serve`` of this very state (else the
    simulator's writes would not be what is read); the module addresses are the state's own, so none need
    giving (given ones must be those). Any other node: one line saying why not, exit 2."""
    from dualwrite.backends.rpc import RpcBackend, RpcClient

    client = RpcClient(cfg.node_url, **_client_kwargs(cfg))
    try:
        info = client.sim_info()
        here = str(sim.chain.path)
        if info is None:
            raise InputError(f"--backend sim --rpc-url {client.url}: that node is not `dualwrite sim serve` (it does "
                             f"not answer GET /dualwrite/v1/sim), so the simulator's writes would not reach it: leave "
                             f"out --rpc-url (or --reads cli) to read in-process, or pick the backend that writes to "
                             f"that node")
        try:
            same = os.path.samefile(info["state"], here)
        except OSError:
            same = False
        if not same:
            raise InputError(f"--rpc-url {client.url} serves simulator state {info['state']}, not this run's {here}: "
                             f"reads and writes would be on two chains; serve this one (dualwrite sim serve --state "
                             f"{here}) or give --state {info['state']}")
        own = sim.chain.addresses
        for opt, given, real in (("--lottery-multi-address", cfg.addresses.lottery_multi, own.lottery_multi),
                                 ("--lottery-address", cfg.addresses.lottery, own.lottery)):
            if given and given.startswith("0x") and given.lower() != real.lower() and _norm(given) != real.lower():
                raise InputError(f"{opt} {given}: the simulator state {here} has that module at {real}")
        return RpcBackend(client.url, ModuleAddresses(own.lottery_multi, own.lottery),
                          checkpoint=cfg.events_checkpoint, client=client)
    except BaseException:
        client.close()
        raise


def _norm(address: str) -> str:
    from dualwrite.sim.accounts import normalize_address

    try:
        return normalize_address(address, "address").lower()
    except InputError:
        return address.lower()


def writes_over_rpc(cfg: BackendConfig) -> bool:
    """``--writes rpc``, or ``auto`` with both an RPC URL and a private key file."""
    if cfg.writes == "rpc":
        missing = [what for what, v in (("--rpc-url URL", cfg.node_url), ("--private-key-file FILE", cfg.private_key_file))
                   if not v]
        if missing:
            raise InputError(f"--writes rpc needs {' and '.join(missing)}")
        return True
    return cfg.writes == "auto" and bool(cfg.node_url) and bool(cfg.private_key_file)


def _rpc_split(cfg: BackendConfig) -> Backend:
    """Reads and writes over RPC: the node's reader, and a writer that signs with the key and shares its client."""
    from dualwrite.backends.rpc import SplitBackend
    from dualwrite.backends.rpc_write import open_writer

    if cfg.reads == "cli":
        raise InputError("--reads cli with writes over RPC: what is written over RPC is read over RPC too "
                         "(drop --reads cli, or pass --writes cli)")
    reader = _rpc_reader(cfg)
    try:
        writer = open_writer(cfg, reader.client)
    except BaseException:
        reader.close()
        raise
    return SplitBackend(writer, reader)


def open_backend(cfg: BackendConfig | None = None) -> Backend:
    """The backend ``cfg`` names; with an RPC URL, its reads go to the node over HTTP (``--reads cli`` keeps them
    on the CLI), its writes stay where the keys are: the CLI's profiles, or (``--writes rpc``, or an RPC URL and
    ``--private-key-file``) signed here and submitted to the node, with no Supra CLI at all."""
    cfg = cfg or BackendConfig.from_env()
    name = cfg.backend
    if cfg.reads not in READS:
        raise InputError(f"--reads {cfg.reads!r}: expected one of {', '.join(READS)}")
    if writes_over_rpc(cfg):
        return _rpc_split(cfg)
    if name == "rpc":
        if not cfg.node_url:
            raise InputError("--backend rpc needs --rpc-url URL (env DUALWRITE_RPC_URL): the node to read from")
        if cfg.reads == "cli":
            raise InputError("--backend rpc --reads cli: the rpc backend has no CLI; pick a CLI backend for --reads cli")
        return _rpc_reader(cfg)
    if cfg.reads == "rpc" and not cfg.node_url:
        raise InputError("--reads rpc needs --rpc-url URL (env DUALWRITE_RPC_URL)")
    # an RPC URL given (option, environment, settings) is never ignored: reads go to it, on sim too,
    # unless --reads cli keeps them where the backend is (the CLI, or the simulator in-process)
    over_rpc = bool(cfg.node_url) and cfg.reads != "cli"
    if over_rpc and name == "sim":
        writer = _open_writer(cfg, name)
        try:
            reader = _sim_reader(cfg, writer)
        except BaseException:
            writer.close()
            raise
    else:
        reader = _rpc_reader(cfg) if over_rpc else None  # bad addresses or URL: fail before touching a CLI
        try:
            writer = _open_writer(cfg, name)
        except BaseException:
            if reader is not None:
                reader.close()
            raise
    if reader is None:
        return writer
    from dualwrite.backends.rpc import SplitBackend

    return SplitBackend(writer, reader)


def _open_writer(cfg: BackendConfig, name: str) -> Backend:
    if name == "docker-compose":
        name = "docker"
    if name == "sim":
        return SimBackend(cfg)
    if name in ("local", "docker", "podman", "auto"):
        from dualwrite.backends import cli  # the subprocess and container machinery: not imported for sim

        return cli.open_cli_backend(cfg, name)
    raise InputError(f"--backend {cfg.backend!r}: expected one of {', '.join(BACKEND_NAMES)}")


def replace(obj: Any, **changes: Any) -> Any:
    """``dataclasses.replace``, and for the config a validated copy (``BackendConfig.replace``: a frozen class
    of its own, not a pydantic model, so that opening a backend does not import pydantic, and its changes go
    through the rules every other source goes through; a bad one raises ``SettingError``)."""
    if isinstance(obj, BackendConfig):
        return obj.replace(**changes)
    return dataclasses.replace(obj, **changes)


__all__ = ["Backend", "BackendConfig", "ModuleAddresses", "SettingError", "SimBackend", "TxnResult",
           "open_backend", "replace"]


def __getattr__(name: str) -> Any:
    if name == "CliBackend":  # loaded on first use, with the runners (subprocess, docker SDK)
        from dualwrite.backends.cli import CliBackend

        return CliBackend
    raise AttributeError(f"module 'dualwrite.backends' has no attribute {name!r}")
