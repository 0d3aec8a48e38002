"""The one small interface every backend implements, and what it returns.

The bridge flow, diff and heal only ever see ``Backend``: call an entry function,
call a view, say what you are talking to. Function names are module-relative
(``legacy_bridge::set_expected_hash``); the backend puts the module address in front.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from dualwrite.sim.accounts import MODULE_HOME


@dataclass(frozen=True)
class ModuleAddresses:
    """Where the modules live. ``None`` keeps the named form (``lottery_multi::legacy_bridge::...``),
    which the Supra CLI resolves through the profile of that name, as the operators' old script relied on."""

    lottery_multi: str | None = None
    lottery: str | None = None

    def function_id(self, function: str) -> str:
        module = function.split("::", 1)[0]
        home = MODULE_HOME.get(module)
        if home is None:
            raise ValueError(f"unknown module in {function!r}")
        addr = getattr(self, home) or home
        return f"{addr}::{function}"


@dataclass(frozen=True)
class TxnResult:
    """A committed transaction, as the CLI reported it."""

    hash: str | None
    status: str
    vm_status: str
    gas_used: int | None
    events: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None
    block_height: int | None = None  # block_header.height of the run JSON
    confirmed_by: str | None = None  # set when the CLI's report was lost and a lookup found the change

    def event_names(self) -> list[str]:
        return [str(e.get("type", "")).rsplit("::", 1)[-1] for e in self.events]


@runtime_checkable
class Backend(Protocol):
    """Anything that can run entry functions and views of the three modules."""

    name: str

    def run(self, function: str, args: list[str]) -> TxnResult:
        """Submit an entry function; raises MoveAbort, TransactionFailed, BackendError."""
        ...

    def view(self, function: str, args: list[str]) -> list[Any]:
        """Call a view; the ``result`` values in Move JSON. Raises MoveAbort, BackendError."""
        ...

    def describe(self) -> str:
        """One line for people: which backend, which target."""
        ...

    def chain_identity(self) -> dict[str, str]:
        """Which chain this backend acts on, as stable string key/values (no secrets).

        A heal journal matches an interrupted run to the chain by this (and names the chain's lock
        file after it), so it must differ between two chains and stay the same across runs on one —
        whichever way the reads go: the chain, not the path to it. sim: the state file and module
        addresses; over RPC: the chain id and module addresses (not the URL: two URLs of one
        network are one chain); a CLI backend, which cannot name its chain, the target it sends
        to (binary or container, profile, config, the RPC URL it passes on) and the addresses.
        """
        ...

    def close(self) -> None:
        ...


#: an RPC path (reader or writer) is identified by the chain it reaches, nothing of how it reaches it
RPC_IDENTITY_KEYS = ("backend", "chain_id", "lottery_multi", "lottery")
#: keys an older dualwrite put into a backend's identity that name the read path, not the chain
_READ_PATH_KEYS = ("reads_rpc_url",)


def identity_of(backend: Any) -> dict[str, str]:
    """``backend.chain_identity()``; for a backend that lacks it, its kind and description
    (weaker: two chains behind one description would look alike). An RPC identity keeps only
    the chain's keys (``RPC_IDENTITY_KEYS``): the URL, the provider, the signing account are the path."""
    fn = getattr(backend, "chain_identity", None)
    if callable(fn):
        ident = {str(k): str(v) for k, v in fn().items()}
        if ident.get("backend") == "rpc":
            ident = {k: ident[k] for k in RPC_IDENTITY_KEYS if k in ident}
        return ident
    return {"backend": str(getattr(backend, "name", "?")), "describe": backend.describe()}


def without_read_path(identity: dict[str, Any]) -> dict[str, str]:
    """An identity recorded by an older dualwrite, as this one names the same chain: a heal whose reads went
    over RPC recorded the reads' URL and the chain id they carried beside the writer's identity."""
    ident = {str(k): str(v) for k, v in identity.items()}
    if any(k in ident for k in _READ_PATH_KEYS):
        for k in (*_READ_PATH_KEYS, "chain_id"):
            ident.pop(k, None)
    return ident


def identity_key(identity: dict[str, str]) -> str:
    """A short, stable key for an identity (used in lock file names and journal records)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def url_identity(url: str | None) -> str:
    """An RPC URL as identity: scheme, host and port readable; path and query (where provider keys
    live) only as a digest, so the journal never holds them."""
    if not url:
        return ""
    parts = urlsplit(url)
    rest = url[len(f"{parts.scheme}://{parts.netloc}"):] if parts.netloc else url
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number: keep it out of the readable part
        port = ""
    digest = hashlib.sha256(rest.encode()).hexdigest()[:12] if rest else ""
    return f"{parts.scheme}://{host}{port}" + (f" (path sha256:{digest})" if digest else "")
