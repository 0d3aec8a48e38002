"""How a simulator chain begins: at genesis (the three modules published, nothing initialised) or
deployed (``history::init_history`` and ``history_bridge::init_bridge`` run, as a node is after its
deployment scripts). ``sim init`` and the container image's entry points share these steps.

A state made here in one go is made under a temporary name and linked into place, so a second
process (another one-shot container, say) never sees a half-made chain: it sees none, or all of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dualwrite.errors import BackendError, InputError, MoveAbort

START_ENV = "DUALWRITE_SIM_START"
STARTS = ("deployed", "genesis")

#: (profile, function, args): what a deployment runs after publishing the modules
DEPLOY_STEPS: tuple[tuple[str, str, list[str]], ...] = (
    ("lottery_multi", "history::init_history", []),
    ("lottery", "history_bridge::init_bridge", []),
)
_MODULE_RESOURCES = ("history::ArchiveLedger", "history_bridge::LegacyArchive", "legacy_bridge::DualWriteControl",
                     "legacy_bridge::MirrorConfig")


def run_steps(chain, steps) -> list[dict[str, Any]]:
    """Run each ``(profile, function, args)`` as its profile; one already done is reported, not an error."""
    done = []
    for profile, fn, args in steps:
        try:
            txn = chain.run(f"{profile}::{fn}", args, profile=profile)
            done.append({"function": fn, "result": "ok", "version": txn["block_height"]})
        except MoveAbort as e:
            if e.name != "E_ALREADY_INITIALIZED":
                raise
            done.append({"function": fn, "result": "already initialised"})
    return done


def initialised(chain) -> list[str]:
    """The module resources that exist (empty at genesis)."""
    from dualwrite.sim import modules as M

    homes = {M.LEDGER: chain.addresses.lottery_multi, M.BRIDGE: chain.addresses.lottery,
             M.CONTROL: chain.addresses.lottery_multi, M.MIRROR: chain.addresses.lottery_multi}
    return [name for name in _MODULE_RESOURCES if chain.store.resource(homes[name], name) is not None]


def start_from_env() -> str:
    start = os.environ.get(START_ENV, "").strip() or "deployed"
    if start not in STARTS:
        raise InputError(f"{START_ENV}={start!r}: expected one of {', '.join(STARTS)}")
    return start


def create_state(path: Path, start: str = "deployed", *, lottery_multi: str | None = None,
                 lottery: str | None = None) -> bool:
    """Create the chain's state file at *path* if it is not there; True when this call made it.

    Built under a temporary name in the same folder, then hard-linked to *path* (which fails when
    another process got there first: its chain is kept, ours is dropped)."""
    from dualwrite.sim.chain import Chain

    path = Path(path)
    if path.exists():
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)
        chain = Chain(tmp, lottery_multi=lottery_multi, lottery=lottery, create=True)
        try:
            if start == "deployed":
                run_steps(chain, DEPLOY_STEPS)
        finally:
            chain.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: a rename (replaces only a file made since)
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    except OSError as e:
        raise BackendError(f"simulator state {path}: cannot create it ({e.strerror or e})") from None
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            try:
                leftover.unlink()
            except OSError:
                pass
