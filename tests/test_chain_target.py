"""A plan, a heal run and a chain lock are bound to the chain, not to the read path (issue 20, item 10).

The chain is the state file (sim), the chain id and the module addresses; how it is reached (in-process,
reads over RPC from ``sim serve``, which URL) is not part of it. Real state files, a real emulated node on
127.0.0.1 (started and stopped here), the real click commands.
"""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.audit.heal import Journal, heal
from dualwrite.audit.locks import lock_dir
from dualwrite.audit.verify import verify
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.backends.base import identity_key, identity_of
from dualwrite.cli.main import cli
from dualwrite.evidence import blake3_hex, canonical_json
from tests.audit_world import World
from tests.rpc_node import InThreadNode
from tests.test_cutover import nonzero, started_events, write_jsonl
from tests.test_verify_heal import InterruptingSim


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def served(tmp_path: Path):
    """A chain with 1-3 to register, and the emulated node serving it."""
    w = World(tmp_path / "state.sqlite").init()
    write_jsonl(tmp_path / "l.jsonl", range(1, 4))
    node = InThreadNode(w.path)
    try:
        yield w, node
    finally:
        node.stop()
        w.close()


def over_rpc(w: World, node) -> list[str]:
    return ["--state", str(w.path), "--reads", "rpc", "--rpc-url", node.url,
            "--lottery-multi-address", node.addresses.lottery_multi, "--lottery-address", node.addresses.lottery]


@pytest.mark.parametrize("planned_over_rpc", [True, False])
def test_a_plan_applies_on_its_chain_whichever_way_the_reads_go(served, tmp_path: Path, planned_over_rpc: bool) -> None:
    w, node = served
    plain = ["--state", str(w.path)]
    plan_flags, apply_flags = (over_rpc(w, node), plain) if planned_over_rpc else (plain, over_rpc(w, node))
    out = tmp_path / "plan.json"
    r = run("cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(out), *plan_flags)
    assert r.exit_code == 0, r.output
    target = json.loads(out.read_text())["data"]["target"]
    assert target["chain_id"] == 255 and target["state"] == str(w.path.resolve())
    assert target["addresses"] == {"lottery_multi": node.addresses.lottery_multi, "lottery": node.addresses.lottery}
    # a plan for another state file is refused, with the read flags and without
    other = World(tmp_path / "other.sqlite").init()
    try:
        r = run("cutover", "apply", str(out), "--state", str(other.path))
        assert r.exit_code == 2 and "made for another target" in r.stderr and "state" in r.stderr, r.output
        # with the reads over the node of the plan's state, the simulator would write another state than it
        # reads: refused before the plan is even looked at
        r = run("cutover", "apply", str(out), *over_rpc(w, node)[2:], "--state", str(other.path))
        assert r.exit_code == 2 and "serves simulator state" in r.stderr and "two chains" in r.stderr, r.output
        assert started_events(other, 1) == 0
    finally:
        other.close()
    r = run("cutover", "apply", str(out), "--json", *apply_flags)
    assert r.exit_code == 0, r.output
    assert nonzero(json.loads(r.stdout)["counts"]) == {"sent": 3}
    assert [started_events(w, i) for i in (1, 2, 3)] == [1, 1, 1]
    r = run("cutover", "status", str(out), "--json", *apply_flags)
    assert r.exit_code == 6 and json.loads(r.stdout)["counts"]["pending"] == 3, r.output


def resigned(path: Path, **target_changes) -> Path:
    """The plan at ``path`` with its target changed and its digest recomputed (a plan made on another chain)."""
    doc = json.loads(path.read_text())
    doc["data"]["target"].update(target_changes)
    body = {k: v for k, v in doc.items() if k != "blake3"}
    doc["blake3"] = blake3_hex(canonical_json(body))
    out = path.with_name("other-" + path.name)
    out.write_text(json.dumps(doc))
    return out


def test_a_plan_for_another_chain_id_or_other_addresses_is_refused(served, tmp_path: Path) -> None:
    w, node = served
    out = tmp_path / "plan.json"
    assert run("cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(out), *over_rpc(w, node)).exit_code == 0
    for changes, named in (({"chain_id": 7}, "chain_id 7 vs 255"),
                           ({"addresses": {"lottery_multi": "0x" + "ab" * 32, "lottery": node.addresses.lottery}},
                            "lottery_multi address 0x" + "ab" * 32)):
        bad = resigned(out, **changes)
        for flags in (["--state", str(w.path)], over_rpc(w, node)):
            r = run("cutover", "apply", str(bad), *flags)
            assert r.exit_code == 2 and "made for another target" in r.stderr and named in r.stderr, r.output
    assert [started_events(w, i) for i in (1, 2, 3)] == [0, 0, 0]


def test_an_older_plan_on_sim_with_named_addresses_still_applies(tmp_path: Path) -> None:
    """Plans written before the addresses were resolved name them as None on sim: the state file pins them."""
    w = World(tmp_path / "state.sqlite").init()
    try:
        write_jsonl(tmp_path / "l.jsonl", [1])
        out = tmp_path / "plan.json"
        assert run("cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(out), "--state", str(w.path)).exit_code == 0
        old = resigned(out, addresses={"lottery_multi": None, "lottery": None}, chain_id=None)
        r = run("cutover", "apply", str(old), "--json", "--state", str(w.path))
        assert r.exit_code == 0 and nonzero(json.loads(r.stdout)["counts"]) == {"sent": 1}, r.output
        assert started_events(w, 1) == 1
    finally:
        w.close()


def drifted(w: World) -> None:
    w.init()
    w.finalize(1, 2, 3)
    for i in (1, 2, 3):
        w.tamper(i, "--set", "status=7", "--fix-hash")


@pytest.mark.parametrize("first_over_rpc", [True, False])
def test_a_heal_run_is_continued_on_its_chain_whichever_way_the_reads_go(tmp_path: Path, first_over_rpc: bool,
                                                                          monkeypatch) -> None:
    monkeypatch.setenv("DUALWRITE_LOCK_DIR", str(tmp_path / "locks"))
    w = World(tmp_path / "state.sqlite")
    drifted(w)
    node = InThreadNode(w.path)
    journal = tmp_path / "heal.jsonl"
    sim_cfg = BackendConfig(backend="sim", state=w.path)
    rpc_cfg = sim_cfg.replace(reads="rpc", rpc_url=node.url, lottery_multi_address=node.addresses.lottery_multi,
                              lottery_address=node.addresses.lottery)
    try:
        split = open_backend(rpc_cfg)
        try:
            assert identity_key(identity_of(split)) == identity_key(identity_of(w.backend))
            # the first run is cut short after two transactions, through one read path ...
            flaky = InterruptingSim(sim_cfg, 2)
            if first_over_rpc:
                from dualwrite.backends.rpc import SplitBackend

                flaky = SplitBackend(flaky, split.reader)
            with pytest.raises(KeyboardInterrupt):
                heal(flaky, None, apply=True, journal=journal)
            first = Journal(journal).records()[0]["run"]
            # ... and continued through the other
            again = w.backend if first_over_rpc else split
            rep = heal(again, None, apply=True, journal=journal)
            assert rep.resumed and rep.run_id == first and rep.exit_code == 0, rep.to_json()
            recs = Journal(journal).records()
            resumed_at = next(i for i, r in enumerate(recs) if r.get("event") == "run_resume")
            healed_first = [r["lottery_id"] for r in recs[:resumed_at] if r.get("event") == "verify"]
            assert len(healed_first) == 1  # one lottery healed before the interrupt, the others now
            assert sorted(rep.to_json()["healed"] + healed_first) == [1, 2, 3]
            assert verify(w.backend, [1, 2, 3]).exit_code == 0
        finally:
            split.close()
        # one chain, one lock file, whichever way it was reached
        assert [p.name for p in lock_dir().iterdir() if p.name.startswith("chain-")] == \
            [f"chain-{identity_key(identity_of(w.backend))}.lock"]
    finally:
        node.stop()
        w.close()


def test_a_heal_run_on_another_state_is_not_continued(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DUALWRITE_LOCK_DIR", str(tmp_path / "locks"))
    a, b = World(tmp_path / "a.sqlite"), World(tmp_path / "b.sqlite")
    drifted(a)
    drifted(b)
    journal = tmp_path / "heal.jsonl"
    try:
        flaky = InterruptingSim(BackendConfig(backend="sim", state=a.path), 1)
        with pytest.raises(KeyboardInterrupt):
            heal(flaky, None, apply=True, journal=journal)
        node = InThreadNode(b.path)
        try:
            cfg = BackendConfig(backend="sim", state=b.path, reads="rpc", rpc_url=node.url,
                                lottery_multi_address=node.addresses.lottery_multi,
                                lottery_address=node.addresses.lottery)
            with closing(open_backend(cfg)) as split:
                rep = heal(split, None, apply=True, journal=journal)
        finally:
            node.stop()
        assert not rep.resumed and any("on another chain" in n for n in rep.notes), rep.notes
    finally:
        a.close()
        b.close()


def test_an_older_heal_run_recorded_with_its_read_path_is_continued(tmp_path: Path, monkeypatch) -> None:
    """A run recorded by an older dualwrite named the reads' URL and chain id beside the writer's identity."""
    monkeypatch.setenv("DUALWRITE_LOCK_DIR", str(tmp_path / "locks"))
    w = World(tmp_path / "state.sqlite")
    drifted(w)
    journal = tmp_path / "heal.jsonl"
    try:
        old = {**identity_of(w.backend), "reads_rpc_url": "http://127.0.0.1:1", "chain_id": "255"}
        Journal(journal).append({"run": "r0ld", "event": "run_start", "backend": w.backend.describe(), "chain": old,
                                 "chain_key": identity_key(old), "pid": 1, "plan": {}})
        rep = heal(w.backend, None, apply=True, journal=journal)
        assert rep.resumed and rep.run_id == "r0ld" and rep.exit_code == 0, rep.to_json()
    finally:
        w.close()
