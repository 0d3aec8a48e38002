"""A simulator state for the audit tests: act on the chain, tamper through the CLI, read as diff does."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dualwrite import bridge
from dualwrite.audit.diff import LotteryDiff, State, diff
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain
from dualwrite.structs import LegacySummary, LotterySummary

def sha3(b: bytes) -> bytes:
    return hashlib.sha3_256(b).digest()


class Out:
    def __init__(self, code: int, out: str, err: str = "") -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


class World:
    """One simulator state file; the chain (to act) and the sim backend (to read, as diff does)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.chain = Chain(path)
        self.backend = open_backend(BackendConfig(backend="sim", state=path))

    # -- chain actions ------------------------------------------------------------------

    def call(self, function: str, *args: str) -> dict[str, Any]:
        module = function.split("::", 1)[0]
        home = "lottery" if module == "history_bridge" else "lottery_multi"
        return self.chain.run(f"{home}::{function}", list(args), profile=home)

    def init(self, *, dual_write: bool = True, abort_on_mismatch: bool = True, abort_on_missing: bool = False,
             mirror: bool = True, bridge_on: bool = True) -> World:
        self.call("history::init_history")
        if bridge_on:
            self.call("history_bridge::init_bridge")
        if dual_write:
            self.call("legacy_bridge::init_dual_write", f"bool:{str(abort_on_mismatch).lower()}",
                      f"bool:{str(abort_on_missing).lower()}")
        if mirror:
            self.call("legacy_bridge::enable_legacy_mirror")
        return self

    def finalize(self, *ids: int, **changes: Any) -> list[LotterySummary]:
        out = []
        for i in ids:
            s = make_summary(i).model_copy(update=changes) if changes else make_summary(i)
            self.chain.finalize(s)
            out.append(s)
        return out

    def expect(self, lottery_id: int, h: bytes) -> None:
        self.call("legacy_bridge::set_expected_hash", f"u64:{lottery_id}", f"hex:{h.hex()}")

    def import_legacy(self, lottery_id: int, data: bytes) -> dict[str, Any]:
        return self.call("history::import_legacy_summary_admin", f"u64:{lottery_id}", f"hex:{data.hex()}",
                         f"hex:{sha3(data).hex()}")

    # -- the CLI, in-process ------------------------------------------------------------

    def dw(self, *args: str) -> Out:
        """``dualwrite ARGS --state STATE`` in-process (the real click command)."""
        r = CliRunner().invoke(cli, [*args, "--state", str(self.path)], catch_exceptions=False)
        return Out(r.exit_code, r.stdout, r.stderr)

    def sim(self, *args: str) -> str:
        """``dualwrite sim ARGS``; must exit 0."""
        r = self.dw("sim", *args)
        assert r.code == 0, r.out + r.err
        return r.out

    def tamper(self, lottery_id: int, *args: str) -> str:
        return self.sim("tamper", str(lottery_id), *args)

    def verify(self, *args: str) -> Out:
        return self.dw("verify", *args)

    def heal(self, *args: str) -> Out:
        return self.dw("heal", *args)

    # -- reads --------------------------------------------------------------------------

    def diff(self, lottery_id: int) -> LotteryDiff:
        return diff(self.backend, lottery_id)

    def state_of(self, lottery_id: int) -> State:
        return self.diff(lottery_id).state

    def legacy(self, lottery_id: int) -> LegacySummary | None:
        return bridge.get_legacy(self.backend, lottery_id)

    def events(self, type_name: str, lottery_id: int) -> list[dict]:
        return self.chain.events(type_name, lottery_id)

    def event_names(self, lottery_id: int) -> list[str]:
        return [e["type"].rsplit("::", 1)[-1] for e in self.chain.events(lottery_id=lottery_id)]

    def close(self) -> None:
        self.backend.close()
        self.chain.close()


@pytest.fixture
def world(tmp_path: Path):
    w = World(tmp_path / "state.sqlite")
    yield w
    w.close()
