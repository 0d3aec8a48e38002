"""The one small interface every backend implements, and what it returns.

The bridge flow, diff and heal only ever see ``Backend``: call an entry function,
call a view, say what you are talking to. Function names are module-relative
(``legacy_bridge::set_expected_hash``); the backend puts the module address in front.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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

    def close(self) -> None:
        ...
