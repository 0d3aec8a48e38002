"""The verify -> heal -> verify drill through real Supra-CLI backends, end to end.

The same drill on two backends, each driven by the real ``dualwrite`` CLI in a subprocess:

- ``local``: ``dualwrite-supra`` installed as ``supra`` on PATH (one real process per chain call);
- ``podman``: ``podman exec`` into a warm container of the simulator image, whose state
  file is a host directory bind-mounted at /supra/configs.

The host prepares the chain on the same state file (init, finalisation, tampering through
``dualwrite sim``), so every read through the backend is also a check that the host and
the backend see one chain. Few lotteries: every chain call costs a process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from dualwrite.sim.chain import Chain
from dualwrite.sim.install import install_supra_script
from tests.engines import unique_name
from tests.envs import base_env

N = 6
#: lottery -> (tamper arguments, the state verify must report)
TAMPERS = {
    2: (["--set", "status=7", "--set", "total_prize_paid=1000000", "--fix-hash"], "field_drift"),
    4: (["--bytes", "00ff"], "corrupt_legacy"),
    5: (["--non-canonical", "--fix-hash"], "non_canonical"),
    6: (["--delete"], "missing_legacy"),
}


def dualwrite(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], check=False, env=env, capture_output=True, text=True,
                          timeout=timeout)


def out_json(p: subprocess.CompletedProcess) -> Any:
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"exit {p.returncode}, not JSON:\n{p.stdout}\n{p.stderr}") from None


def prepare(state: Path) -> None:
    """On the host: the bridge initialised with the mirror on, N lotteries finalised, four drifted."""
    chain = Chain(state)
    try:
        from dualwrite.sim.genesis import DEPLOY_STEPS, run_steps

        run_steps(chain, DEPLOY_STEPS)  # a container started on the folder has deployed its chain already
        chain.run("lottery_multi::legacy_bridge::enable_legacy_mirror", [], profile="lottery_multi")
        chain.run("lottery_multi::legacy_bridge::init_dual_write", ["bool:true", "bool:true"],
                  profile="lottery_multi")
        for i in range(1, N + 1):
            chain.run("lottery_multi::legacy_bridge::set_expected_hash",
                      [f"u64:{i}", f"hex:{_h(i)}"], profile="lottery_multi")
            chain.finalize(make_summary(i))
    finally:
        chain.close()
    for lid, (args, _) in TAMPERS.items():
        r = CliRunner().invoke(cli, ["sim", "tamper", str(lid), *args, "--state", str(state)])
        assert r.exit_code == 0, r.output


def _h(i: int) -> str:
    return hashlib.sha3_256(make_summary(i).to_bcs()).hexdigest()


def drill(env: dict[str, str], backend: list[str], state: Path, tmp_path: Path, describe: str) -> None:
    # 1. the gate fails, naming exactly the drifted lotteries and how
    p = dualwrite(env, "verify", "--all", "--jobs", "4", "--json", *backend)
    assert p.returncode == 1, p.stdout + p.stderr
    doc = out_json(p)
    assert doc["backend"].startswith(describe)
    assert doc["total"] == N
    failing = {x["lottery_id"]: x["state"] for x in doc["lotteries"] if not x["passed"]}
    assert failing == {lid: state for lid, (_, state) in TAMPERS.items()}
    drift = next(x for x in doc["lotteries"] if x["lottery_id"] == 2)
    assert {f["field"]: f["legacy"] for f in drift["fields"]} == {"status": "Canceled (7)",
                                                                  "total_prize_paid": "1,000,000"}

    # 2. heal what the gate named (abort_on_missing is on: set, then mirror)
    ids = ",".join(str(i) for i in sorted(failing))
    journal = tmp_path / "heal.jsonl"
    p = dualwrite(env, "heal", ids, "--apply", "--journal", str(journal), "--json", *backend)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = out_json(p)
    assert sorted(rep["healed"]) == sorted(failing) and rep["not_healed"] == []
    for o in rep["outcomes"]:
        assert o["done"] == ["set_expected_hash", "mirror"] and o["after"] == "ok"
    recs = [json.loads(line) for line in journal.read_text().splitlines()]
    assert recs[0]["backend"].startswith(describe) and recs[-1]["event"] == "run_end"

    # 3. nothing left pending (the host reads the same chain), and the gate passes
    chain = Chain(state)
    try:
        assert chain.view("lottery_multi::legacy_bridge::pending_expected_hashes") == [[]]
    finally:
        chain.close()
    p = dualwrite(env, "verify", "--all", "--jobs", "4", *backend)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"CLEAN: {N} lotteries, {N} passed, 0 failed" in p.stdout


@pytest.mark.slow
def test_drill_local(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    install_supra_script(bindir, "supra")
    state = tmp_path / "state.sqlite"
    prepare(state)
    env = base_env(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", DUALWRITE_STATE=str(state))
    drill(env, ["--backend", "local"], state, tmp_path, f"local (local {bindir / 'supra'})")


@pytest.mark.engine
@pytest.mark.slow
def test_drill_podman_exec(supra_container, tmp_path: Path) -> None:
    c = supra_container(unique_name("dw-audit"))
    prepare(c.state_db)  # the host writes the state the container reads
    drill(base_env(), ["--backend", "podman", "--container", c.name], c.state_db, tmp_path, f"podman (podman exec {c.name})")
    # the container saw the same chain: the host reads the healed copies
    chain = Chain(c.state_db)
    try:
        for lid in TAMPERS:
            assert chain.legacy_raw(lid).summary_bcs == make_summary(lid).to_bcs()
    finally:
        chain.close()
