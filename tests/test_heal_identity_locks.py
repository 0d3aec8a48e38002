"""Heal acts only on its own chain's runs, never twice at once, and leaves the mirror as the operator left it.

The drills run real ``dualwrite heal`` processes through the local backend: a real ``supra``
(dualwrite-supra) per call, chosen chain by ``DUALWRITE_STATE``, held inside one call by a named
pipe (tests/heal_gate.py) so the kill lands exactly where the drill says, and killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dualwrite import bridge
from dualwrite.audit.diff import State
from dualwrite.audit.heal import Journal, heal
from dualwrite.errors import ExitCode
from tests.audit_world import World
from tests.engines import wait_for
from tests.envs import base_env
from tests.heal_gate import install_gated_supra, make_gate, release


@pytest.fixture
def chains(tmp_path: Path):
    a, b = World(tmp_path / "chain-a.sqlite"), World(tmp_path / "chain-b.sqlite")
    yield a, b
    a.close()
    b.close()


def env_for(tmp_path: Path, world: World, **extra: str) -> dict[str, str]:
    bindir = tmp_path / "bin"
    if not (bindir / "supra").exists():
        install_gated_supra(bindir)
    env = base_env(**extra)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["DUALWRITE_STATE"] = str(world.path)  # one supra, two chains: the state file is the chain
    return env


def dualwrite(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dualwrite", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the heal and the supra it is running, at once
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()


def journalled(journal: Path, action: str, status: str) -> bool:
    return journal.exists() and any(r.get("action") == action and r.get("status") == status
                                    for r in Journal(journal).records())


def kill_at(env: dict[str, str], journal: Path, gate_fn: str, gate: Path, *args: str) -> str:
    """Start ``heal ARGS``, hold it inside its first ``gate_fn`` call, SIGKILL it there; returns its run id."""
    env = {**env, "DW_TEST_GATE_FUNCTION": gate_fn, "DW_TEST_GATE_FIFO": str(gate)}
    proc = start(env, "heal", *args, "--backend", "local", "--journal", str(journal))
    try:
        def held() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"heal ended before the kill point: {proc.communicate()}")
            return Path(str(gate) + ".waiting").exists()

        wait_for(held, 60, interval=0.02, what=f"heal held inside {gate_fn}")
    finally:
        kill(proc)
    assert proc.returncode == -signal.SIGKILL
    return Journal(journal).records()[0]["run"]


@pytest.mark.slow
def test_a_heal_on_chain_b_never_resumes_chain_a_and_leaves_b_mirror_on(chains, tmp_path: Path) -> None:
    a, b = chains
    a.init()
    a.finalize(3)
    a.tamper(3, "--delete")
    a.call("legacy_bridge::disable_legacy_mirror")  # the operator keeps chain A's mirror off
    b.init()  # chain B: mirror on
    b.finalize(3)
    b.tamper(3, "--set", "tickets_sold=9", "--fix-hash")
    journal = tmp_path / "one-journal.jsonl"

    # chain A: killed right after enable_mirror is journalled done (held in the next call, the set)
    run_a = kill_at(env_for(tmp_path, a), journal, "set_expected_hash", make_gate(tmp_path / "gate"),
                    "3", "--apply", "--enable-mirror")
    assert journalled(journal, "enable_mirror", "done")
    assert bridge.is_mirror_enabled(a.backend) is True  # left on by the killed run

    # chain B, same supra, same journal: a new run, B's mirror untouched
    p = dualwrite(env_for(tmp_path, b), "heal", "3", "--apply", "--backend", "local", "--journal", str(journal), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["resumed"] is False and rep["run"] != run_a
    assert any(run_a in n and "another chain" in n for n in rep["notes"])
    assert rep["healed"] == [3]
    assert [m["action"] for m in rep["mirror_steps"]] == ["leave_on"]
    assert bridge.is_mirror_enabled(b.backend) is True
    assert b.state_of(3) is State.OK
    human = dualwrite(env_for(tmp_path, b), "heal", "3", "--apply", "--backend", "local", "--journal", str(journal))
    assert "mirror: left ON" in human.stdout and human.returncode == 0

    # chain A's own run is still there for chain A: continued, and A's mirror goes back off
    p = dualwrite(env_for(tmp_path, a), "heal", "3", "--apply", "--backend", "local", "--journal", str(journal), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["resumed"] is True and rep["run"] == run_a
    assert [(m["action"], m["status"], m["mirror_after"]) for m in rep["mirror_steps"]] == [("disable", "done", False)]
    assert bridge.is_mirror_enabled(a.backend) is False  # exactly as the operator left it
    assert bridge.is_mirror_enabled(b.backend) is True  # and B's exactly as its operator left it
    assert a.verify("--all").code == 0 and b.verify("--all").code == 0


def age_journal(journal: Path, by: timedelta) -> None:
    """Move every record's time back: the journal as it would be read ``by`` later."""
    out = []
    for line in journal.read_text().splitlines():
        rec = json.loads(line)
        rec["ts"] = (datetime.fromisoformat(rec["ts"]) - by).isoformat()
        out.append(json.dumps(rec))
    journal.write_text("\n".join(out) + "\n")


@pytest.mark.slow
def test_a_stale_run_is_set_aside_and_the_mirror_the_operator_turned_on_stays_on(chains, tmp_path: Path) -> None:
    a, _ = chains
    a.init()
    a.finalize(1, 2, 3)
    for i in (1, 2):
        a.tamper(i, "--delete")
    a.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    run = kill_at(env_for(tmp_path, a), journal, "set_expected_hash", make_gate(tmp_path / "gate"),
                  "--apply", "--enable-mirror")
    assert journalled(journal, "enable_mirror", "done")
    # the operator decides the mirror stays on from now on, and heals the rest by hand (another journal)
    assert a.dw("enable-mirror").code == 0
    assert a.heal("--apply", "--journal", str(tmp_path / "by-hand.jsonl")).code == 0
    age_journal(journal, timedelta(hours=13))  # the next routine heal is the next day
    a.tamper(3, "--set", "tickets_sold=4", "--fix-hash")

    p = dualwrite(env_for(tmp_path, a), "heal", "--apply", "--backend", "local", "--journal", str(journal), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["resumed"] is False and rep["run"] != run and rep["healed"] == [3]
    (note,) = [n for n in rep["notes"] if run in n]
    assert "set aside" in note and "12h00m" in note and "mirror ON" in note
    assert [m["action"] for m in rep["mirror_steps"]] == ["leave_on"]
    assert bridge.is_mirror_enabled(a.backend) is True  # as the operator left it
    assert any(r.get("event") == "run_set_aside" and r["run"] == run for r in Journal(journal).records())
    # set aside for good: a later heal does not look at it again
    again = json.loads(dualwrite(env_for(tmp_path, a), "heal", "--apply", "--backend", "local", "--journal",
                                 str(journal), "--json").stdout)
    assert not any(run in n for n in again["notes"])
    assert bridge.is_mirror_enabled(a.backend) is True and a.verify("--all").code == 0

    # a shorter window, asked for explicitly
    p = dualwrite(env_for(tmp_path, a), "heal", "--apply", "--resume-within", "99999999999999999999d",
                  "--journal", str(journal))
    assert p.returncode == 2 and "--resume-within" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_an_enable_cut_short_is_not_undone_when_the_mirror_is_on_now(chains, tmp_path: Path) -> None:
    """Killed inside enable_legacy_mirror (before it committed); the operator then turned the mirror on
    by hand: the resumed run cannot tell whose "on" it is, so it leaves it on and says so."""
    a, _ = chains
    a.init()
    a.finalize(1)
    a.tamper(1, "--delete")
    a.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    run = kill_at(env_for(tmp_path, a), journal, "enable_legacy_mirror", make_gate(tmp_path / "gate"),
                  "--apply", "--enable-mirror")
    assert journalled(journal, "enable_mirror", "started") and not journalled(journal, "enable_mirror", "done")
    assert bridge.is_mirror_enabled(a.backend) is False  # it never got to the chain
    assert a.dw("enable-mirror").code == 0  # the operator
    p = dualwrite(env_for(tmp_path, a), "heal", "--apply", "--backend", "local", "--journal", str(journal), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["resumed"] is True and rep["run"] == run and rep["healed"] == [1]
    (m,) = rep["mirror_steps"]
    assert m["action"] == "leave_on" and "disable-mirror" in m["why"]
    assert bridge.is_mirror_enabled(a.backend) is True


@pytest.mark.slow
def test_a_second_heal_says_who_holds_the_journal_and_the_chain_and_does_nothing(chains, tmp_path: Path) -> None:
    a, _ = chains
    a.init()
    a.finalize(1, 2, 3)
    for i in (1, 2, 3):
        a.tamper(i, "--delete")
    a.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    gate = make_gate(tmp_path / "gate")
    env = env_for(tmp_path, a, DW_TEST_GATE_FUNCTION="mirror_summary_admin", DW_TEST_GATE_FIFO=str(gate))
    first = start(env, "heal", "--apply", "--enable-mirror", "--backend", "local", "--journal", str(journal))
    try:
        wait_for(lambda: Path(str(gate) + ".waiting").exists() or first.poll() is not None, 60, interval=0.02,
                 what="the first heal inside its first mirror call")
        assert first.poll() is None, first.communicate()
        before = journal.read_bytes()
        plain = env_for(tmp_path, a)
        second = dualwrite(plain, "heal", "--apply", "--enable-mirror", "--backend", "local", "--journal", str(journal))
        assert second.returncode == ExitCode.BUSY == 75, second.stdout + second.stderr
        assert f"pid {first.pid}" in second.stderr and "heal --apply --enable-mirror" in second.stderr
        assert "heal journal" in second.stderr and "nothing was done" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        # another journal, the same chain: the chain lock stops it
        third = dualwrite(plain, "heal", "--apply", "--backend", "local", "--journal", str(tmp_path / "other.jsonl"))
        assert third.returncode == 75 and "the chain" in third.stderr and f"pid {first.pid}" in third.stderr
        assert not (tmp_path / "other.jsonl").exists()
        assert journal.read_bytes() == before  # the refused heals wrote nothing
        release(gate)
        out, err = first.communicate(timeout=120)
        assert first.returncode == 0, out + err
    finally:
        kill(first)
    recs = Journal(journal).records()
    assert {r["run"] for r in recs} == {recs[0]["run"]}  # one run only
    started = [r["key"] for r in recs if r.get("event") == "step" and r["status"] == "started"]
    assert len(started) == len(set(started))  # no step sent twice
    assert bridge.is_mirror_enabled(a.backend) is False
    assert a.verify("--all").code == 0
    # once it has finished, the lock is free again
    assert dualwrite(env_for(tmp_path, a), "heal", "--apply", "--backend", "local", "--journal", str(journal)).returncode == 0


def test_identity_tells_chains_apart_and_stays_the_same_on_one(tmp_path: Path) -> None:
    from dualwrite.backends import BackendConfig, CliBackend, ModuleAddresses, open_backend
    from dualwrite.backends.base import identity_key, identity_of
    from dualwrite.backends.runners import LocalRunner

    from dualwrite.sim.chain import Chain

    install_gated_supra(tmp_path / "bin")
    for name in ("a.sqlite", "b.sqlite"):
        Chain(tmp_path / name).close()  # only a chain made on purpose exists: backends create none
    s1 = open_backend(BackendConfig(backend="sim", state=tmp_path / "a.sqlite"))
    s2 = open_backend(BackendConfig(backend="sim", state=tmp_path / "a.sqlite"))
    s3 = open_backend(BackendConfig(backend="sim", state=tmp_path / "b.sqlite"))
    try:
        assert identity_key(identity_of(s1)) == identity_key(identity_of(s2)) != identity_key(identity_of(s3))
    finally:
        for s in (s1, s2, s3):
            s.close()
    supra = str(tmp_path / "bin" / "supra")

    def key(**cfg) -> str:
        c = BackendConfig(backend="local", supra_bin=supra, **cfg)
        return identity_key(identity_of(CliBackend("local", LocalRunner(supra), c)))

    base = key()
    assert key() == base
    for other in ({"profile": "ops"}, {"config": "/etc/supra.toml"}, {"rpc_url": "https://rpc.example:8443/k/SECRET"},
                  {"addresses": ModuleAddresses("0xabc", None)}):
        assert key(**other) != base, other
    ident = identity_of(CliBackend("local", LocalRunner(supra), BackendConfig(
        backend="local", supra_bin=supra, rpc_url="https://rpc.example:8443/k/SECRET?key=SECRET")))
    assert "SECRET" not in json.dumps(ident) and "rpc.example:8443" in ident["rpc_url"]
    # v6 images take --url: the same node, whichever flag names it, is the same chain; another node is not
    assert key(url="https://rpc.example:8443/k/SECRET") == key(rpc_url="https://rpc.example:8443/k/SECRET")
    assert key(url="https://other.example:8443/") != key(rpc_url="https://rpc.example:8443/k/SECRET")


def test_library_heal_refuses_while_the_journal_is_locked(chains, tmp_path: Path) -> None:
    from dualwrite.audit.locks import Lock
    from dualwrite.errors import HealBusy

    a, _ = chains
    a.init()
    a.finalize(1)
    a.tamper(1, "--delete")
    journal = tmp_path / "j.jsonl"
    with Lock(Journal(journal).lock_path, "test holder"):
        with pytest.raises(HealBusy, match=f"pid {os.getpid()}"):
            heal(a.backend, None, apply=True, journal=journal)
    assert a.state_of(1) is State.MISSING_LEGACY and not journal.exists()
    assert heal(a.backend, None, apply=True, journal=journal).exit_code == 0


def test_a_garbage_line_mid_journal_says_how_to_go_on_and_journal_repair_sets_it_aside(chains, tmp_path: Path) -> None:
    a, _ = chains
    a.init()
    a.finalize(1, 2)
    a.tamper(1, "--delete")
    journal = tmp_path / "j.jsonl"
    assert a.heal("--apply", "--journal", str(journal)).code == 0
    first = journal.read_bytes()
    a.tamper(2, "--delete")
    other = tmp_path / "other.jsonl"
    assert a.heal("--apply", "--journal", str(other)).code == 0
    # garbage in the middle: records before it and after it
    journal.write_bytes(first + b"\x00garbage from a bad copy\n[1,2,3]\n" + other.read_bytes())
    a.tamper(2, "--set", "tickets_sold=3", "--fix-hash")
    before = journal.read_bytes()

    r = a.heal("--apply", "--journal", str(journal))
    assert r.code == 2, r.out + r.err
    n = first.count(b"\n") + 1
    assert f"record {n} is not JSON" in r.err and "--journal-repair" in r.err and "--journal NEW" in r.err
    assert journal.read_bytes() == before and a.state_of(2) is State.FIELD_DRIFT  # nothing done

    r = a.heal("--apply", "--journal-repair", "--journal", str(journal))
    assert r.code == 0, r.out + r.err
    assert "2 damaged lines set aside in" in r.out and "HEALED" in r.out
    rejected = Path(str(journal) + ".rejected").read_bytes()
    assert rejected == b"\x00garbage from a bad copy\n[1,2,3]\n"
    assert journal.read_bytes().startswith(first) and b"\x00" not in journal.read_bytes()
    assert first + other.read_bytes() in journal.read_bytes()  # every good record kept, in order
    again = a.heal("--apply", "--journal-repair", "--journal", str(journal), "--json")
    assert again.code == 0 and again.json()["journal_repair"] == "journal repair: nothing to repair"


def test_the_rpc_identity_is_the_chain_and_the_split_backend_is_its_writer(tmp_path: Path) -> None:
    """Over RPC the identity is the chain the node reports (its chain id) and the addresses, not the URL
    (no secrets either); reads over RPC do not change a writer's identity (issue 20, item 10)."""
    from dualwrite.backends import ModuleAddresses
    from dualwrite.backends.base import identity_key, identity_of
    from dualwrite.backends.rpc import RpcBackend, SplitBackend
    from tests.rpc_node import InThreadNode

    w = World(tmp_path / "state.sqlite")
    node = InThreadNode(w.path)
    try:
        addrs = ModuleAddresses(node.addresses.lottery_multi, node.addresses.lottery)
        r1, r2 = RpcBackend(node.url + "?apikey=SECRET", addrs), RpcBackend(node.url + "?apikey=SECRET", addrs)
        try:
            ident = identity_of(r1)
            assert ident["chain_id"] not in ("", "unknown") and "SECRET" not in json.dumps(ident)
            assert set(ident) == {"backend", "chain_id", "lottery_multi", "lottery"}  # no URL: the path, not the chain
            assert identity_key(ident) == identity_key(identity_of(r2))
            split = SplitBackend(w.backend, r2)
            assert identity_of(split) == identity_of(w.backend)
        finally:
            r1.close()
            r2.close()
    finally:
        node.stop()
        w.close()
