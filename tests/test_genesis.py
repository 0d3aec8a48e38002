"""A chain at genesis (``sim init --genesis``): the modules published, nothing initialised, so the deployment's
first calls and their wrong-signer aborts can be drilled through ``dualwrite-supra``; and the state the image's
entry points make on their own (``genesis.create_state``), in one piece even when processes race for it."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

from dualwrite.sim.chain import Chain
from dualwrite.sim.genesis import create_state, initialised
from tests.envs import base_env

GAS = ["--gas-unit-price", "100", "--max-gas", "100000"]


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=base_env(**(env or {})), capture_output=True, text=True, timeout=60)


def dw(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "dualwrite", *map(str, args), env=env)


def supra(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(str(Path(sys.executable).with_name("dualwrite-supra")), *args, env={"DUALWRITE_STATE": str(state)})


def test_genesis_then_the_deployment_drilled_through_the_cli(tmp_path: Path) -> None:
    state = tmp_path / "g.sqlite"
    p = dw("sim", "init", "--genesis", "--state", state, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"state": str(state), "genesis": True, "steps": []}
    with Chain(state, create=False) as chain:
        assert initialised(chain) == []
    view = ["move", "tool", "view", "--function-id", "lottery::history_bridge::is_initialized"]
    assert json.loads(supra(state, *view).stdout) == {"result": [False]}
    # nothing works before the deployment: a finalisation has no ledger (0x1B01)
    fin = dw("sim", "finalize", "--state", state, Path(__file__).parents[1] / "fixtures/summaries/lottery-1.json")
    assert fin.returncode == 4 and "E_HISTORY_MISSING (0x1b01)" in fin.stdout, fin.stdout + fin.stderr

    run_ = ["move", "tool", "run", *GAS, "--function-id"]
    p = supra(state, *run_, "lottery_multi::history::init_history", "--profile", "lottery")
    assert p.returncode == 1 and "E_HISTORY_MISSING(0x1b01)" in p.stderr, p.stderr  # the wrong signer (sic)
    p = supra(state, *run_, "lottery::history_bridge::init_bridge", "--profile", "operator")
    assert p.returncode == 1 and "E_NOT_AUTHORIZED(0x101)" in p.stderr, p.stderr
    with Chain(state, create=False) as chain:
        assert initialised(chain) == []  # the aborts wrote nothing
    assert supra(state, *run_, "lottery_multi::history::init_history").returncode == 0
    p = supra(state, *run_, "lottery_multi::history::init_history")
    assert p.returncode == 1 and "E_ALREADY_INITIALIZED(0x1201)" in p.stderr
    assert supra(state, *run_, "lottery::history_bridge::init_bridge", "--profile", "lottery").returncode == 0
    assert json.loads(supra(state, *view).stdout) == {"result": [True]}

    # past genesis now: --genesis refuses it, sim init reports what exists
    p = dw("sim", "init", "--genesis", "--state", state)
    assert p.returncode == 2 and "is past genesis (history::ArchiveLedger, history_bridge::LegacyArchive" in p.stderr
    p = dw("sim", "init", "--state", state, "--json")
    assert [s["result"] for s in json.loads(p.stdout)["steps"]] == ["already initialised", "ok"]


def test_genesis_refuses_further_steps_and_a_read_creates_nothing(tmp_path: Path) -> None:
    p = dw("sim", "init", "--genesis", "--dual-write", "--state", tmp_path / "x.sqlite")
    assert p.returncode == 2 and "--genesis initialises nothing" in p.stderr
    assert not (tmp_path / "x.sqlite").exists()
    p = supra(tmp_path / "y.sqlite", "move", "tool", "view", "--function-id", "lottery_multi::legacy_bridge::is_enabled")
    assert p.returncode == 1 and "does not exist" in p.stderr and list(tmp_path.iterdir()) == []


def _race(path: str, start: str, out) -> None:
    out.put(create_state(Path(path), start))


def test_create_state_is_whole_and_made_once(tmp_path: Path) -> None:
    path = tmp_path / "configs" / "dualwrite-sim.sqlite"
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(str(path), "deployed", q)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    made = sorted(q.get(timeout=5) for _ in procs)
    assert made == [False, False, False, True]
    assert sorted(x.name for x in path.parent.iterdir() if not x.name.endswith(("-wal", "-shm"))) == [path.name]
    with Chain(path, create=False) as chain:
        assert initialised(chain) == ["history::ArchiveLedger", "history_bridge::LegacyArchive"]
    assert create_state(path, "genesis") is False  # an existing chain is never replaced
    g = tmp_path / "g" / "s.sqlite"
    assert create_state(g, "genesis") is True
    with Chain(g, create=False) as chain:
        assert initialised(chain) == []
