"""``dualwrite verify`` (the CI gate) and ``dualwrite heal`` (repair, journal, resume), on real chain state.

Every state is built by chain actions (entry functions, finalisation) and ``dualwrite sim
tamper``; verify and heal run through the CLI (in-process ``CliRunner``, or a real
subprocess where a process must fail or be killed) or the library calls the CLI wraps.
No mocks: the uncheckable lottery comes from a real ``supra`` that fails, the interruption
from a real Backend subclass that raises ``KeyboardInterrupt`` and from a real ``SIGKILL``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite import bridge
from dualwrite.audit.diff import State
from dualwrite.audit.heal import Journal, heal, plan
from dualwrite.audit.verify import Policy, all_ids, ids_from_file, parse_ids, verify
from dualwrite.backends import BackendConfig, SimBackend, open_backend
from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from dualwrite.errors import InputError, MoveAbort
from dualwrite.sim.chain import Chain
from dualwrite.sim.install import install_supra_script
from dualwrite.sim.store import u64_to_sql
from dualwrite.sim.tamper import non_canonical_bytes
from tests.engines import wait_for

from tests.audit_world import Out, World, sha3, world  # noqa: F401
from tests.envs import base_env




def drift_five(w: World) -> dict[int, str]:
    """Lotteries 1..8 finalised; five of them drifted in five different ways. Returns id -> state."""
    w.finalize(*range(1, 9))
    w.tamper(2, "--set", "status=7", "--set", "proceeds_accum=1", "--fix-hash")
    w.tamper(3, "--bytes", "0102")
    w.tamper(4, "--non-canonical", "--fix-hash")
    w.tamper(5, "--delete")
    w.tamper(6, "--set", "tickets_sold=9")  # archive_hash kept: corrupt
    return {2: "field_drift", 3: "corrupt_legacy", 4: "non_canonical", 5: "missing_legacy", 6: "corrupt_legacy"}


# =========================================================================================================
# verify: which ids


def test_parse_ids_ranges_lists_and_bad_input() -> None:
    assert parse_ids(["10-13", "5,7", "12", "7 9"]) == [10, 11, 12, 13, 5, 7, 9]
    assert parse_ids(["3-5, 12, 20-21"]) == [3, 4, 5, 12, 20, 21]  # the ranges the tool prints (monitor /status)
    for bad in ("1,,2", "1, , 2", "1,  2", "1 ,2"):
        with pytest.raises(InputError, match="empty item"):
            parse_ids([bad])
    assert parse_ids([str(2**64 - 1)]) == [2**64 - 1]
    for bad in ("13-10", "x", "-3", "1-", str(2**64), "1-2000000"):
        with pytest.raises(InputError):
            parse_ids([bad])


def test_verify_range_and_ids_file(world: World, tmp_path: Path) -> None:
    world.init()
    world.finalize(*range(10, 21))
    world.tamper(15, "--set", "status=7", "--fix-hash")
    r = world.verify("10-14", "16-20", "--json")
    assert r.code == 0, r.out
    doc = r.json()
    assert [x["lottery_id"] for x in doc["lotteries"]] == [10, 11, 12, 13, 14, 16, 17, 18, 19, 20]
    r = world.verify("10-20", "--json")
    assert r.code == 1
    assert [x["lottery_id"] for x in r.json()["lotteries"] if not x["passed"]] == [15]

    ids = tmp_path / "ids.txt"
    ids.write_text("# the cutover batch\n10-12\n\n15   # the drifted one\n20\n")
    assert ids_from_file(ids) == [10, 11, 12, 15, 20]
    r = world.verify("--ids-file", str(ids), "--json")
    assert r.code == 1
    assert sorted(x["lottery_id"] for x in r.json()["lotteries"]) == [10, 11, 12, 15, 20]
    # ids given both ways are checked once
    r = world.verify("11", "--ids-file", str(ids), "--json")
    assert r.json()["total"] == 5

    ids.write_text("10\nten\n")
    r = world.verify("--ids-file", str(ids))
    assert r.code == 2 and "ids.txt:2:" in r.err
    assert world.verify().code == 2  # nothing to check is bad usage, not a clean pass


def test_verify_all_pages_past_1000(world: World) -> None:
    world.init()
    n = 1100
    for i in range(1, n + 1):
        world.chain.finalize(make_summary(i))
    # list_finalized is newest first, at most 1000 per call: id 1 is on the second page
    assert bridge.list_finalized(world.backend, 0, 1000)[0] == n
    assert len(bridge.list_finalized(world.backend, 1000, 1000)) == n - 1000
    world.tamper(1, "--set", "status=7", "--fix-hash")
    world.tamper(n, "--delete")
    world.expect(5000, bytes(32))  # pending, not finalised: --all includes it too
    ids = all_ids(world.backend)
    assert len(ids) == n + 1 and set(ids) == set(range(1, n + 1)) | {5000}
    r = world.verify("--all", "--json", "--allow-pending")
    assert r.code == 1
    doc = r.json()
    assert doc["total"] == n + 1
    assert {x["lottery_id"]: x["state"] for x in doc["lotteries"] if not x["passed"]} == {
        1: "field_drift", n: "missing_legacy"}
    assert doc["counts"]["ok"] == n - 2 and doc["counts"]["pending"] == 1


# =========================================================================================================
# verify: exit codes 0 / 1 / 3


def test_verify_exit_0_and_1(world: World) -> None:
    world.init()
    world.finalize(1, 2, 3)
    r = world.verify("1-3")
    assert r.code == 0 and r.out.splitlines()[-1].startswith("CLEAN: 3 lotteries, 3 passed, 0 failed")
    world.tamper(2, "--finalized-at", "7")
    r = world.verify("1-3")
    assert r.code == 1
    assert "FAILED: 3 lotteries, 2 passed, 1 failed" in r.out
    assert "field_drift FAIL" in r.out and "LegacySummary.finalized_at" in r.out


@pytest.fixture
def supra_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bin"
    install_supra_script(d, "dualwrite-supra-real")
    return d


def failing_supra(supra_dir: Path, lottery_id: int) -> Path:
    """A real ``supra`` that fails (as a node error would) when asked for one archived summary."""
    path = supra_dir / "supra"
    path.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *"history::get_summary --args u64:{lottery_id}")\n'
        f'  echo "Error: the node answered HTTP 500 for lottery {lottery_id}" >&2; exit 1;;\nesac\n'
        f'exec "{supra_dir / "dualwrite-supra-real"}" "$@"\n')
    path.chmod(0o755)
    return path


def test_verify_exit_3_when_a_lottery_cannot_be_checked(world: World, supra_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    world.init()
    world.finalize(1, 2, 3)
    supra = failing_supra(supra_dir, 2)
    monkeypatch.setenv("DUALWRITE_STATE", str(world.path))
    local = open_backend(BackendConfig(backend="local", supra_bin=str(supra), retries=0))
    try:
        rep = verify(local, [1, 2, 3], jobs=3)
        assert rep.exit_code == 3
        assert [c.diff.lottery_id for c in rep.checked] == [1, 3] and all(c.passed for c in rep.checked)
        (u,) = rep.unchecked
        assert u.lottery_id == 2 and "HTTP 500 for lottery 2" in u.error and u.error_type == "BackendError"
        doc = rep.to_json()
        assert doc["counts"]["unchecked"] == 1 and doc["clean"] is False and doc["passed"] == 2
        assert {x["lottery_id"]: x["state"] for x in doc["lotteries"]}[2] == "unchecked"

        # a failure outranks could-not-check
        world.tamper(3, "--delete")
        assert verify(local, [1, 2, 3], jobs=1).exit_code == 1
    finally:
        local.close()

    # the same through the CLI, a real process end to end
    env = base_env()
    env["DUALWRITE_STATE"] = str(world.path)
    p = subprocess.run([sys.executable, "-m", "dualwrite", "verify", "1-2", "--backend", "local",
                        "--supra-bin", str(supra), "--retries", "0"],
                       check=False, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "INCOMPLETE" in p.stdout and "unchecked" in p.stdout and "HTTP 500" in p.stdout


def test_verify_exit_3_on_a_corrupted_state_row(world: World) -> None:
    world.init()
    world.finalize(1, 2)
    with sqlite3.connect(world.path) as db:  # a damaged archive row: the read of it fails
        db.execute("UPDATE history SET bcs = x'0001' WHERE lottery_id = ?", (u64_to_sql(2),))
    r = world.verify("1-2", "--json")
    assert r.code == 3
    rows = {x["lottery_id"]: x for x in r.json()["lotteries"]}
    assert rows[1]["state"] == "ok" and rows[2]["state"] == "unchecked" and rows[2]["error"]


# =========================================================================================================
# verify: pending


def age_pending(path: Path, lottery_id: int, seconds: float) -> None:
    """Let the lottery's pending expectation wait: the simulator's clock moves forward (``sim clock --advance``);
    the age counts from the block its Started event landed in."""
    with sqlite3.connect(path) as db:
        (n,) = db.execute("SELECT COUNT(*) FROM events WHERE lottery_id = ? AND type LIKE '%::ArchiveDualWriteStartedEvent'",
                          (u64_to_sql(lottery_id),)).fetchone()
    assert n, f"lottery {lottery_id} has no Started event"
    with Chain(path) as chain:
        chain.advance_clock(seconds)


def test_verify_pending_policy(world: World) -> None:
    world.init()
    world.finalize(1)
    world.expect(2, sha3(make_summary(2).to_bcs()))  # registered, not finalised yet
    r = world.verify("1-2", "--json")
    assert r.code == 1  # pending is not clean by default
    row = {x["lottery_id"]: x for x in r.json()["lotteries"]}[2]
    assert row["state"] == "pending" and row["passed"] is False and row["pending_since"]

    assert world.verify("1-2", "--allow-pending").code == 0
    r = world.verify("1-2", "--allow-pending", "--pending-grace", "2h", "--json")
    assert r.code == 0
    doc = r.json()
    assert doc["policy"] == {"allow_pending": True, "pending_grace_s": 7200.0}
    assert "within the grace" in {x["lottery_id"]: x for x in doc["lotteries"]}[2]["note"]

    # a grace of 0s fails a pending that has waited at all
    r = world.verify("1-2", "--allow-pending", "--pending-grace", "0s", "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["policy"]["pending_grace_s"] == 0.0
    assert "over the 0h00m00s grace" in {x["lottery_id"]: x for x in doc["lotteries"]}[2]["note"]

    # the dual_write_pending alert: waiting for more than 2 hours
    age_pending(world.path, 2, 3 * 3600)
    r = world.verify("2", "--allow-pending", "--pending-grace", "2h", "--json")
    assert r.code == 1 and "pending for 3h00m" in r.json()["lotteries"][0]["note"]
    assert world.verify("2", "--allow-pending", "--pending-grace", "4h").code == 0

    assert world.verify("2", "--pending-grace", "2h").code == 2  # grace without --allow-pending is a usage error
    assert world.verify("2", "--allow-pending", "--pending-grace", "soon").code == 2


def test_verify_pending_that_will_mismatch_fails_even_when_allowed(world: World) -> None:
    world.init(abort_on_mismatch=False)
    world.expect(1, bytes(32))
    world.finalize(1)
    r = world.verify("1", "--allow-pending", "--json")
    assert r.code == 1
    (row,) = r.json()["lotteries"]
    assert row["state"] == "pending" and row["pending_will_match"] is False
    assert "will mismatch" in row["note"]


def test_policy_directly() -> None:
    from datetime import datetime

    from dualwrite.audit.diff import classify

    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    d = classify(1, None, None, bytes(32), now - timedelta(hours=3))
    assert Policy().passes(d, now) == (False, "")
    assert Policy(True).passes(d, now)[0] is True
    assert Policy(True, timedelta(hours=2)).passes(d, now)[0] is False
    assert Policy(True, timedelta(hours=4)).passes(d, now)[0] is True
    unknown_age = classify(1, None, None, bytes(32), None)
    ok, note = Policy(True, timedelta(0)).passes(unknown_age, now)
    assert ok and "not known" in note


# =========================================================================================================
# verify: --jobs, --json, --junit, --report


def mixed_world(w: World) -> dict[int, str]:
    w.init(abort_on_mismatch=False)
    states = drift_five(w)
    w.expect(7, bytes(32))  # 7 is finalised: a stale expectation that will mismatch
    w.expect(40, bytes(32))  # not finalised
    w.import_legacy(41, make_summary(41).to_bcs())
    w.call("history::rollback_legacy_summary_admin", "u64:41")
    return {**states, 7: "pending", 40: "pending", 41: "missing_history", 1: "ok", 8: "ok", 99: "absent"}


def test_verify_jobs_8_same_as_jobs_1(world: World) -> None:
    want = mixed_world(world)
    ids = sorted(want)
    reports = {}
    for jobs in (1, 8):
        r = world.verify(",".join(map(str, ids)), "--jobs", str(jobs), "--json")
        assert r.code == 1
        doc = r.json()
        reports[jobs] = doc
        assert {x["lottery_id"]: x["state"] for x in doc["lotteries"]} == want
    assert reports[1]["lotteries"] == reports[8]["lotteries"]
    assert reports[1]["counts"] == reports[8]["counts"]
    # and the library call, on a bigger batch
    world.finalize(*range(100, 300))
    a = verify(world.backend, range(1, 300), jobs=1).to_json()
    b = verify(world.backend, range(1, 300), jobs=8).to_json()
    assert a["lotteries"] == b["lotteries"] and a["counts"] == b["counts"]


def test_verify_json_fields(world: World) -> None:
    want = mixed_world(world)
    r = world.verify(",".join(map(str, sorted(want))), "--json")
    assert r.code == 1
    doc = r.json()
    assert doc["backend"] == f"sim (state {world.path})"
    assert isinstance(doc["duration_s"], float) and doc["duration_s"] >= 0
    assert doc["started_at"] and doc["exit_code"] == 1 and doc["clean"] is False
    assert doc["total"] == len(want)
    assert doc["counts"] == {"ok": 2, "missing_legacy": 1, "missing_history": 1, "corrupt_legacy": 2,
                             "non_canonical": 1, "field_drift": 1, "hash_mismatch": 0, "pending": 2, "absent": 1,
                             "unchecked": 0}
    assert doc["passed"] == 2 and doc["failed"] == len(want) - 2
    rows = {x["lottery_id"]: x for x in doc["lotteries"]}
    assert [x["lottery_id"] for x in doc["lotteries"]] == sorted(want)
    for lid, state in want.items():
        assert rows[lid]["state"] == state and rows[lid]["reason"]
        assert rows[lid]["passed"] is (state == "ok")
    assert {f["field"]: (f["history"], f["legacy"]) for f in rows[2]["fields"]}["status"] == (
        "Finalized (6)", "Canceled (7)")
    assert rows[3]["evidence"]["path"] == "LotterySummary.id" and "decode_error" in rows[3]["evidence"]
    assert rows[4]["legacy_bytes_hash"] != rows[4]["history_hash"]
    assert rows[7]["expected_hash"] == "0x" + "00" * 32 and rows[7]["pending_will_match"] is False
    assert rows[6]["legacy_archive_hash"] == rows[6]["history_hash"] != rows[6]["legacy_bytes_hash"]


def test_verify_junit_and_report_are_checkable_evidence(world: World, tmp_path: Path) -> None:
    want = mixed_world(world)
    junit, report = tmp_path / "verify.xml", tmp_path / "verify.json"
    r = world.verify(",".join(map(str, sorted(want))), "--junit", str(junit), "--report", str(report))
    assert r.code == 1
    assert f"wrote {junit} (blake3 " in r.out and f"wrote {report} (blake3 " in r.out

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [f"lottery {i}" for i in sorted(want)]
    assert suite.get("tests") == str(len(want)) and suite.get("failures") == str(len(want) - 2)
    assert suite.get("errors") == "0"
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["backend"].startswith("sim (state ")
    for c in cases:
        lid = int(c.get("name").split()[1])
        fail = c.find("failure")
        if want[lid] == "ok":
            assert fail is None
            continue
        assert fail is not None and fail.get("type") == want[lid]
        assert fail.get("message").startswith(want[lid] + ": ")
        evidence = json.loads(fail.text)  # the failure carries the whole diff as JSON
        assert evidence["lottery_id"] == lid and evidence["state"] == want[lid]
    drift = json.loads(next(c for c in cases if c.get("name") == "lottery 2").find("failure").text)
    assert {f["field"] for f in drift["fields"]} == {"status", "proceeds_accum"}

    sidecar = junit.with_name(junit.name + ".b3")
    digest, name = sidecar.read_text().split()
    assert name == junit.name and len(digest) == 64

    ok = CliRunner().invoke(cli, ["evidence", "check", str(junit), str(report)])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(report.read_text())
    assert doc["kind"] == "verify-report" and doc["data"]["counts"]["field_drift"] == 1

    junit.write_bytes(junit.read_bytes().replace(b"lottery 2", b"lottery 9"))
    bad = CliRunner().invoke(cli, ["evidence", "check", str(junit)])
    assert bad.exit_code == 1
    report.write_text(report.read_text().replace('"field_drift": 1', '"field_drift": 0'))
    assert CliRunner().invoke(cli, ["evidence", "check", str(report)]).exit_code == 1


def test_junit_unchecked_is_an_error_not_a_pass(world: World, tmp_path: Path) -> None:
    world.init()
    world.finalize(1, 2)
    with sqlite3.connect(world.path) as db:
        db.execute("UPDATE history SET bcs = x'00' WHERE lottery_id = 2")
    junit = tmp_path / "j.xml"
    assert world.verify("1-2", "--junit", str(junit)).code == 3
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("errors") == "1" and suite.get("failures") == "0"
    case2 = next(c for c in suite.findall("testcase") if c.get("name") == "lottery 2")
    assert case2.find("error") is not None and case2.find("error").get("message").startswith("could not be checked")


# =========================================================================================================
# heal


def journal_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_heal_every_repairable_state(world: World, tmp_path: Path) -> None:
    world.init(abort_on_mismatch=False)
    states = drift_five(world)
    world.tamper(7, "--finalized-at", "1")
    world.import_legacy(9, non_canonical_bytes(make_summary(9)))  # non-canonical through the chain
    world.expect(8, bytes(32))  # and a stale expectation over an exact copy
    world.chain.finalize(make_summary(10))
    world.expect(10, b"\x11" * 32)
    world.call("legacy_bridge::update_flags", "bool:true", "bool:true", "bool:false")
    r = world.verify("--all", "--json")
    assert r.code == 1
    failing = {x["lottery_id"]: x["state"] for x in r.json()["lotteries"] if not x["passed"]}
    assert failing == {**states, 7: "field_drift", 8: "pending", 9: "non_canonical", 10: "pending"}

    dry = world.heal("--json")
    assert dry.code == 0
    plan_doc = dry.json()["plan"]
    assert {p["lottery_id"]: p["verdict"] for p in plan_doc["lotteries"]} == {i: "repair" for i in failing}
    for p in plan_doc["lotteries"]:
        assert [s["action"] for s in p["steps"]] == ["set_expected_hash", "mirror"]
        assert p["steps"][0]["expected_hash"] == "0x" + sha3(make_summary(p["lottery_id"]).to_bcs()).hex()

    journal = tmp_path / "heal.jsonl"
    r = world.heal("--apply", "--journal", str(journal), "--json")
    assert r.code == 0, r.out
    rep = r.json()
    assert sorted(rep["healed"]) == sorted(failing) and rep["not_healed"] == []
    assert all(o["after"] == "ok" for o in rep["outcomes"])
    assert bridge.pending(world.backend) == []
    for i in failing:
        assert world.events("ArchiveDualWriteCompletedEvent", i), i
    assert world.verify("--all").code == 0


def test_heal_with_abort_on_missing_sets_then_mirrors(world: World, tmp_path: Path) -> None:
    world.init(abort_on_missing=True)
    for i in (1, 2, 3):
        world.expect(i, sha3(make_summary(i).to_bcs()))
    world.finalize(1, 2, 3)
    world.tamper(2, "--set", "status=7", "--fix-hash")
    world.tamper(3, "--delete")
    before = bridge.get_legacy(world.backend, 2)
    # the runbook's "mirror first" aborts with E_HISTORY_EXPECTED_MISSING, and its legacy write rolls back
    with pytest.raises(MoveAbort) as e:
        bridge.mirror(world.backend, 2)
    assert e.value.code == 0x1B05
    assert bridge.get_legacy(world.backend, 2) == before
    completed_before = len(world.events("ArchiveDualWriteCompletedEvent", 2))

    r = world.heal("--apply", "--journal", str(tmp_path / "j.jsonl"))
    assert r.code == 0, r.out
    assert "lottery 2: field_drift -> HEALED (set_expected_hash, mirror); re-read diff: ok" in r.out
    for i in (2, 3):
        assert bridge.status(world.backend, i).expected_hash is None
    assert bridge.pending(world.backend) == []
    assert len(world.events("ArchiveDualWriteCompletedEvent", 2)) == completed_before + 1
    assert world.events("ArchiveDualWriteCompletedEvent", 3)
    assert world.verify("--all").code == 0


def test_heal_with_the_mirror_disabled(world: World, tmp_path: Path) -> None:
    world.init()
    world.finalize(1, 2)
    world.tamper(1, "--set", "tickets_sold=1", "--fix-hash")
    world.call("legacy_bridge::disable_legacy_mirror")
    world.finalize(3)  # finalised during maintenance: no legacy copy
    assert world.state_of(3) is State.MISSING_LEGACY
    journal = tmp_path / "j.jsonl"

    dry = world.heal()
    assert dry.code == 1
    assert "mirror OFF" in dry.out
    assert "blocked: the legacy mirror is disabled: a mirror would write nothing; pass --enable-mirror" in dry.out
    v0 = world.chain.version()
    r = world.heal("--apply", "--journal", str(journal))
    assert r.code == 1 and "NOT healed: blocked" in r.out
    assert world.chain.version() == v0  # blocked: nothing was sent

    dry = world.heal("--enable-mirror")
    assert dry.code == 0
    assert "first: legacy_bridge::enable_legacy_mirror()" in dry.out
    assert "last: legacy_bridge::disable_legacy_mirror()" in dry.out
    r = world.heal("--apply", "--enable-mirror", "--journal", str(journal), "--json")
    assert r.code == 0, r.out
    assert sorted(r.json()["healed"]) == [1, 3]
    assert bridge.is_mirror_enabled(world.backend) is False  # off again, as it was
    actions = [x["action"] for x in journal_records(journal) if x.get("event") == "step" and x["status"] == "done"]
    assert actions[0] == "enable_mirror" and actions[-1] == "restore_mirror"
    assert world.verify("--all").code == 0


def test_heal_blocked_when_the_bridge_is_not_initialised(world: World, tmp_path: Path) -> None:
    world.init(bridge_on=False)
    world.finalize(1, 2)
    dry = world.heal("--json")
    assert dry.code == 1
    for p in dry.json()["plan"]["lotteries"]:
        assert p["verdict"] == "blocked" and "history_bridge is not initialised" in p["why"]
        assert "init_bridge must be signed by @lottery" in p["why"]
    v0 = world.chain.version()
    r = world.heal("--apply", "--journal", str(tmp_path / "j.jsonl"))
    assert r.code == 1
    assert "history_bridge NOT initialised" in r.out
    assert r.out.count("NOT healed: blocked: history_bridge is not initialised") == 2
    assert world.chain.version() == v0
    # once the bridge is initialised (by @lottery), the same heal works
    world.call("history_bridge::init_bridge")
    assert world.heal("--apply", "--journal", str(tmp_path / "j.jsonl")).code == 0
    assert world.verify("--all").code == 0


def test_heal_clears_a_stale_pending_expectation(world: World, tmp_path: Path) -> None:
    world.init(abort_on_mismatch=False)
    world.expect(1, bytes(32))
    world.finalize(1, 2)
    assert bridge.pending(world.backend) == [1]
    assert world.verify("--all", "--allow-pending").code == 1  # it will never match
    r = world.heal("--apply", "--journal", str(tmp_path / "j.jsonl"))
    assert r.code == 0, r.out
    assert "lottery 1: pending -> HEALED" in r.out
    assert bridge.pending(world.backend) == []
    assert world.events("ArchiveDualWriteCompletedEvent", 1)
    assert world.verify("--all").code == 0


def test_heal_clears_a_stale_expectation_when_dual_write_is_off(world: World, tmp_path: Path) -> None:
    world.init()
    world.call("legacy_bridge::update_flags", "bool:false", "bool:true", "bool:false")
    world.expect(1, sha3(make_summary(1).to_bcs()))
    world.finalize(1)
    dry = world.heal("--json").json()
    (p,) = dry["plan"]["lotteries"]
    assert [s["action"] for s in p["steps"]] == ["clear_expected_hash"] and "disabled" in p["why"]
    assert world.heal("--apply", "--journal", str(tmp_path / "j.jsonl")).code == 0
    assert bridge.pending(world.backend) == []
    assert world.verify("--all").code == 0


def test_missing_history_is_reported_never_fixed(world: World, tmp_path: Path) -> None:
    world.init()
    world.finalize(1)
    world.tamper(1, "--delete")
    world.import_legacy(2, make_summary(2).to_bcs())
    world.call("history::rollback_legacy_summary_admin", "u64:2")
    legacy_before = bridge.get_legacy(world.backend, 2)

    dry = world.heal("1", "2", "--json")
    assert dry.code == 1
    verdicts = {p["lottery_id"]: p for p in dry.json()["plan"]["lotteries"]}
    assert verdicts[2]["verdict"] == "unhealable" and verdicts[2]["steps"] == []
    assert "cannot be healed" in verdicts[2]["why"] and "import_legacy_summary_admin" in verdicts[2]["why"]

    journal = tmp_path / "j.jsonl"
    r = world.heal("1", "2", "--apply", "--journal", str(journal))
    assert r.code == 1
    assert "lottery 1: missing_legacy -> HEALED" in r.out
    assert "lottery 2: missing_history -> NOT healed: unhealable: history has no summary" in r.out
    assert "1 healed, 1 not healed" in r.out
    assert not [x for x in journal_records(journal) if x.get("lottery_id") == 2 and x.get("event") == "step"]
    assert world.state_of(2) is State.MISSING_HISTORY
    assert bridge.get_legacy(world.backend, 2) == legacy_before
    r = world.verify("1", "2", "--json")
    assert r.code == 1
    assert {x["lottery_id"]: x["state"] for x in r.json()["lotteries"]} == {1: "ok", 2: "missing_history"}


def test_dry_run_changes_nothing(world: World, tmp_path: Path) -> None:
    world.init()
    drift_five(world)
    world.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    v0, events0 = world.chain.version(), len(world.chain.events())
    legacy0 = {i: bridge.get_legacy(world.backend, i) for i in range(1, 9)}
    for args in ((), ("--enable-mirror",), ("--json",), ("2-6", "--enable-mirror", "--json")):
        world.heal(*args, "--journal", str(journal))
    assert world.chain.version() == v0 and len(world.chain.events()) == events0
    assert {i: bridge.get_legacy(world.backend, i) for i in range(1, 9)} == legacy0
    assert bridge.is_mirror_enabled(world.backend) is False
    assert not journal.exists()


def test_journal_records_every_action_and_is_append_only(world: World, tmp_path: Path) -> None:
    world.init()
    states = drift_five(world)
    world.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    r = world.heal("--apply", "--enable-mirror", "--journal", str(journal), "--json")
    assert r.code == 0
    run = r.json()["run"]
    recs = journal_records(journal)
    assert all(x["run"] == run and x["ts"] for x in recs)
    assert recs[0]["event"] == "run_start" and recs[0]["backend"].startswith("sim (state")
    assert recs[0]["plan"]["lotteries"]  # the plan it set out to apply
    assert recs[-1]["event"] == "run_end" and sorted(recs[-1]["healed"]) == sorted(states)
    steps = [x for x in recs if x["event"] == "step"]
    # every action: started, then done with its transaction and events
    assert len(steps) == 2 * (2 + 2 * len(states))
    for started, done in zip(steps[::2], steps[1::2]):
        assert (started["status"], done["status"]) == ("started", "done")
        assert started["key"] == done["key"] and started["call"]
        assert done["transaction_hash"].startswith("0x")
    sets = [x for x in steps if x["action"] == "set_expected_hash" and x["status"] == "done"]
    assert all("ArchiveDualWriteStartedEvent" in x["events"] for x in sets)
    mirrors = [x for x in steps if x["action"] == "mirror" and x["status"] == "done"]
    assert all({"LegacySummaryEvent", "ArchiveDualWriteCompletedEvent"} <= set(x["events"]) for x in mirrors)
    assert {x["lottery_id"]: x["state"] for x in recs if x["event"] == "verify"} == {i: "ok" for i in states}
    # a second run appends; the first run's records stay byte for byte
    first = journal.read_bytes()
    world.tamper(1, "--set", "status=7", "--fix-hash")
    assert world.heal("--apply", "--enable-mirror", "--journal", str(journal)).code == 0
    after = journal.read_bytes()
    assert after.startswith(first) and len(after) > len(first)
    second = journal_records(journal)[len(recs):]
    assert second[0]["event"] == "run_start" and second[0]["run"] != run


# -- resume ----------------------------------------------------------------------------------------------


class InterruptingSim(SimBackend):
    """The sim backend, interrupted (as by Ctrl-C) on the (n+1)-th transaction it is asked to send."""

    def __init__(self, cfg: BackendConfig, runs_before_interrupt: int) -> None:
        super().__init__(cfg)
        self.left = runs_before_interrupt
        self.sent: list[str] = []

    def run(self, function: str, args: list[str]):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        txn = super().run(function, args)
        self.sent.append(function)
        return txn


def assert_resumed_without_repeats(records: list[dict], run: str) -> None:
    resume = next(i for i, x in enumerate(records) if x.get("event") == "run_resume" and x["run"] == run)
    done_before = {x["key"] for x in records[:resume] if x.get("event") == "step" and x["status"] == "done"}
    started_after = {x["key"] for x in records[resume:] if x.get("event") == "step" and x["status"] == "started"}
    assert done_before, "the interrupted run did nothing"
    assert not done_before & started_after, f"repeated: {done_before & started_after}"
    assert records[-1]["event"] == "run_end" and records[-1]["run"] == run


@pytest.mark.parametrize("runs", [1, 2, 3, 6, 7])
def test_resume_after_an_interrupt(world: World, tmp_path: Path, runs: int) -> None:
    world.init(abort_on_missing=True)
    for i in range(1, 7):
        world.expect(i, sha3(make_summary(i).to_bcs()))
    world.finalize(*range(1, 7))
    world.tamper(2, "--set", "status=7", "--fix-hash")
    world.tamper(3, "--delete")
    world.tamper(5, "--non-canonical", "--fix-hash")
    world.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"

    flaky = InterruptingSim(BackendConfig(backend="sim", state=world.path), runs)
    try:
        with pytest.raises(KeyboardInterrupt):
            heal(flaky, None, apply=True, enable_mirror=True, journal=journal)
    finally:
        flaky.close()
    assert flaky.sent[0] == "legacy_bridge::enable_legacy_mirror" and len(flaky.sent) == runs
    assert bridge.is_mirror_enabled(world.backend) is True  # left on by the interrupted run
    recs = journal_records(journal)
    assert recs[-1]["event"] == "step" and recs[-1]["status"] == "started"  # interrupted mid-step
    assert not any(x["event"] == "run_end" for x in recs)
    run = recs[0]["run"]

    rep = heal(world.backend, None, apply=True, enable_mirror=True, journal=journal)
    assert rep.resumed and rep.run_id == run
    assert rep.exit_code == 0, rep.to_json()
    records = journal_records(journal)
    assert_resumed_without_repeats(records, run)
    assert bridge.is_mirror_enabled(world.backend) is False  # the mirror the first run enabled is off again
    assert records[-2]["action"] == "restore_mirror" and records[-2]["status"] == "done"
    assert bridge.pending(world.backend) == []
    assert verify(world.backend, all_ids(world.backend)).exit_code == 0
    # a later run starts afresh: nothing left to resume
    assert Journal(journal).unfinished_run(rep.plan.backend) is None


@pytest.fixture
def local_env(tmp_path: Path, world: World) -> dict[str, str]:
    bindir = tmp_path / "bin"
    install_supra_script(bindir, "supra")
    env = base_env()
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["DUALWRITE_STATE"] = str(world.path)
    return env


def dualwrite(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], check=False, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_resume_after_sigkill_of_a_real_heal(world: World, local_env: dict[str, str], tmp_path: Path) -> None:
    """``dualwrite heal --apply`` through the local backend (a real supra per call), killed mid-run."""
    world.init()
    world.finalize(1, 2, 3)
    for i in (1, 2, 3):
        world.tamper(i, "--set", f"tickets_sold={i}", "--fix-hash")
    world.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    args = ["heal", "--apply", "--enable-mirror", "--backend", "local", "--journal", str(journal)]
    proc = subprocess.Popen([sys.executable, "-m", "dualwrite", *args], env=local_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        def a_mirror_done() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"heal ended before it could be interrupted: {proc.communicate()}")
            return journal.exists() and any(
                x.get("action") == "mirror" and x.get("status") == "done" for x in Journal(journal).records())

        wait_for(a_mirror_done, 120, interval=0.02, what="a mirror step recorded done in the journal")
        os.killpg(proc.pid, signal.SIGKILL)  # the heal and the supra it is running, at once
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    first = Journal(journal).records()
    assert not any(x.get("event") == "run_end" for x in first)
    assert bridge.is_mirror_enabled(world.backend) is True
    mirrored_before = {x["lottery_id"] for x in first if x.get("action") == "mirror" and x["status"] == "done"}
    assert mirrored_before and all(world.state_of(i) is State.OK for i in mirrored_before)

    p = dualwrite(local_env, "heal", "--apply", "--backend", "local", "--journal", str(journal), "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["resumed"] is True and rep["run"] == first[0]["run"]
    assert set(rep["healed"]) == {1, 2, 3} - mirrored_before  # the rest were already ok: left alone
    assert_resumed_without_repeats(Journal(journal).records(), rep["run"])
    assert bridge.is_mirror_enabled(world.backend) is False
    assert world.verify("--all").code == 0  # the same state, read in-process


def test_plan_names_the_chain_order(world: World) -> None:
    world.init(abort_on_missing=True)
    world.expect(1, sha3(make_summary(1).to_bcs()))
    world.finalize(1)
    world.tamper(1, "--bytes", "ff")
    hp = plan(world.backend, [1])
    (lp,) = hp.lotteries
    assert [s.describe() for s in lp.steps] == [
        f"legacy_bridge::set_expected_hash(1, 0x{sha3(make_summary(1).to_bcs()).hex()})",
        "history::mirror_summary_admin(1)"]
    assert hp.abort_on_missing and hp.mirror_enabled and hp.bridge_initialized and hp.control_enabled


# -- edge cases found while testing ---------------------------------------------------------------------


def test_ids_file_duplicates_across_lines_are_checked_once(world: World, tmp_path: Path) -> None:
    world.init()
    world.finalize(10, 11, 12)
    ids = tmp_path / "ids.txt"
    ids.write_text("10\n10-11\n11\n12,10\n")
    assert ids_from_file(ids) == [10, 11, 12]
    r = world.verify("--ids-file", str(ids), "12", "--json")
    assert r.code == 0
    assert [x["lottery_id"] for x in r.json()["lotteries"]] == [10, 11, 12] and r.json()["total"] == 3


class SendThenInterrupt(SimBackend):
    """Interrupted right after the chain committed the (n+1)-th transaction, before the journal says so."""

    def __init__(self, cfg: BackendConfig, runs_before_interrupt: int) -> None:
        super().__init__(cfg)
        self.left = runs_before_interrupt

    def run(self, function: str, args: list[str]):
        txn = super().run(function, args)
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return txn


class SendThenInterruptOnce(SimBackend):
    """The first transaction commits and then Ctrl-C arrives; the process goes on talking to the chain."""

    interrupted = False

    def run(self, function: str, args: list[str]):
        txn = super().run(function, args)
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return txn


def test_ctrl_c_during_enable_turns_off_the_mirror_it_just_turned_on(world: World, tmp_path: Path) -> None:
    """Ctrl-C after enable_legacy_mirror committed but before the journal recorded it done: the process
    (holding the chain lock) re-reads the switch at once, sees its own "on" and turns it off again.
    (A SIGKILL there leaves "started" only: the next run cannot tell whose "on" it is and leaves it
    on, saying so: tests/test_heal_identity_locks.py.)"""
    world.init()
    world.finalize(1, 2)
    world.tamper(1, "--delete")
    world.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    flaky = SendThenInterruptOnce(BackendConfig(backend="sim", state=world.path))  # enable commits, then ^C
    try:
        with pytest.raises(KeyboardInterrupt):
            heal(flaky, None, apply=True, enable_mirror=True, journal=journal)
    finally:
        flaky.close()
    recs = journal_records(journal)
    assert [(r["action"], r["status"]) for r in recs if r.get("event") == "step"] == [
        ("enable_mirror", "started"), ("restore_mirror", "started"), ("restore_mirror", "done")]
    assert bridge.is_mirror_enabled(world.backend) is False
    rep = heal(world.backend, None, apply=True, enable_mirror=True, journal=journal)
    assert rep.resumed and rep.exit_code == 0
    assert [m.action for m in rep.mirror_steps] == ["enable", "disable"]
    assert bridge.is_mirror_enabled(world.backend) is False
    assert verify(world.backend, all_ids(world.backend)).exit_code == 0


def test_resume_redoes_a_done_step_whose_effect_is_gone(world: World, tmp_path: Path) -> None:
    """Between the interrupted run and its resume, the on-call turned the mirror off and cleared the
    expectation: the journal says both steps were done, the chain says they are undone."""
    world.init(abort_on_missing=True)
    for i in (1, 2):
        world.expect(i, sha3(make_summary(i).to_bcs()))
    world.finalize(1, 2)
    world.tamper(1, "--set", "status=7", "--fix-hash")
    world.tamper(2, "--set", "status=7", "--fix-hash")
    world.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    flaky = InterruptingSim(BackendConfig(backend="sim", state=world.path), 2)  # enable mirror; set(2); stop
    try:
        with pytest.raises(KeyboardInterrupt):
            heal(flaky, None, apply=True, enable_mirror=True, journal=journal)
    finally:
        flaky.close()
    assert bridge.pending(world.backend) == [2]
    world.call("legacy_bridge::disable_legacy_mirror")
    world.call("legacy_bridge::clear_expected_hash", "u64:2")

    rep = heal(world.backend, None, apply=True, enable_mirror=True, journal=journal)
    assert rep.resumed
    assert rep.exit_code == 0, rep.to_json()
    assert sorted(rep.to_json()["healed"]) == [1, 2]
    assert bridge.is_mirror_enabled(world.backend) is False
    assert verify(world.backend, all_ids(world.backend)).exit_code == 0


def test_resume_after_a_torn_journal_record(world: World, tmp_path: Path) -> None:
    """A crash mid-write (power loss) leaves half a record with no newline; the next run appends after it."""
    world.init()
    world.finalize(1, 2, 3)
    for i in (1, 2, 3):
        world.tamper(i, "--delete")
    journal = tmp_path / "j.jsonl"
    flaky = InterruptingSim(BackendConfig(backend="sim", state=world.path), 3)
    try:
        with pytest.raises(KeyboardInterrupt):
            heal(flaky, None, apply=True, journal=journal)
    finally:
        flaky.close()
    data = journal.read_bytes()
    journal.write_bytes(data[:-25])  # the last record cut short
    rep = heal(world.backend, None, apply=True, journal=journal)
    assert rep.resumed and rep.exit_code == 0
    rep2 = heal(world.backend, None, apply=True, journal=journal)  # and the journal stays readable
    assert not rep2.resumed and rep2.exit_code == 0
    assert verify(world.backend, all_ids(world.backend)).exit_code == 0


def test_journal_refuses_a_damaged_record_that_is_not_a_torn_write(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.jsonl")
    j.append({"run": "r1", "event": "run_start", "backend": "b"})
    with open(j.path, "ab") as f:
        f.write(b'{"run": "r1", "event": "st')  # torn: no newline
    j.append({"run": "r1", "event": "run_resume", "backend": "b"})  # closes the torn line first
    assert [r["event"] for r in j.records()] == ["run_start", "run_resume"]
    assert j.path.read_bytes().count(b"\n") == 3
    full = json.dumps({"run": "r1", "event": "step", "key": "1:mirror", "action": "mirror", "status": "done",
                       "healed": True, "lottery_id": 1})
    for cut in range(1, len(full)):  # wherever a crash cuts a record, it reads as torn, not as damage
        j2 = Journal(tmp_path / f"cut{cut}.jsonl")
        j2.path.write_text(full[:cut] + "\n" + full + "\n")
        assert j2.records() == [json.loads(full)], full[:cut]
    with open(j.path, "ab") as f:
        f.write(b"not json at all\n")
    j.append({"run": "r1", "event": "run_end"})
    with pytest.raises(InputError, match="record 4 is not JSON"):
        j.records()


def test_heal_without_dual_write_control_mirrors_only(world: World, tmp_path: Path) -> None:
    world.init(dual_write=False)
    world.finalize(1, 2)
    world.tamper(1, "--set", "status=7", "--fix-hash")
    dry = world.heal("--json").json()
    (p,) = dry["plan"]["lotteries"]
    assert [s["action"] for s in p["steps"]] == ["mirror"]  # no control: set_expected_hash would abort 0x1B06
    assert dry["plan"]["chain"]["dual_write_enabled"] is False
    assert world.heal("--apply", "--journal", str(tmp_path / "j.jsonl")).code == 0
    assert world.verify("--all").code == 0


def test_heal_a_drifted_copy_with_a_stale_expectation_while_dual_write_is_off(world: World, tmp_path: Path) -> None:
    """The mirror repairs the copy but cannot consume the expectation (notify returns at once): clear it too."""
    world.init()
    world.call("legacy_bridge::update_flags", "bool:false", "bool:true", "bool:false")
    world.expect(1, sha3(make_summary(1).to_bcs()))
    world.finalize(1)
    world.tamper(1, "--set", "status=7", "--fix-hash")
    assert world.state_of(1) is State.FIELD_DRIFT
    (p,) = world.heal("--json").json()["plan"]["lotteries"]
    assert [s["action"] for s in p["steps"]] == ["mirror", "clear_expected_hash"]
    r = world.heal("--apply", "--journal", str(tmp_path / "j.jsonl"))
    assert r.code == 0, r.out
    assert bridge.pending(world.backend) == []
    assert world.verify("--all").code == 0


class InterruptOnce(SimBackend):
    """Ctrl-C once, on the (n+1)-th transaction; the operator's process then still talks to the chain."""

    def __init__(self, cfg: BackendConfig, runs_before_interrupt: int) -> None:
        super().__init__(cfg)
        self.left = runs_before_interrupt

    def run(self, function: str, args: list[str]):
        if self.left == 0:
            self.left = -1
            raise KeyboardInterrupt
        self.left -= 1
        return super().run(function, args)


def test_an_interrupted_heal_turns_off_the_mirror_it_turned_on(world: World, tmp_path: Path) -> None:
    world.init(abort_on_missing=True)
    for i in (1, 2, 3):
        world.expect(i, sha3(make_summary(i).to_bcs()))
    world.finalize(1, 2, 3)
    for i in (1, 2, 3):
        world.tamper(i, "--delete")
    world.call("legacy_bridge::disable_legacy_mirror")
    journal = tmp_path / "j.jsonl"
    flaky = InterruptOnce(BackendConfig(backend="sim", state=world.path), 3)  # enable, set 1, mirror 1, then ^C
    try:
        with pytest.raises(KeyboardInterrupt):
            heal(flaky, None, apply=True, enable_mirror=True, journal=journal)
    finally:
        flaky.close()
    assert bridge.is_mirror_enabled(world.backend) is False  # not left running unattended
    recs = journal_records(journal)
    assert recs[-1]["action"] == "restore_mirror" and recs[-1]["status"] == "done"
    assert not any(x["event"] == "run_end" for x in recs)  # still resumable

    rep = heal(world.backend, None, apply=True, enable_mirror=True, journal=journal)
    assert rep.resumed and rep.exit_code == 0, rep.to_json()
    records = journal_records(journal)
    resume = next(i for i, x in enumerate(records) if x.get("event") == "run_resume")
    done_sets = {x["key"] for x in records[:resume] if x.get("event") == "step" and x["status"] == "done"
                 and x["action"] == "set_expected_hash"}
    resent = {x["key"] for x in records[resume:] if x.get("event") == "step" and x["status"] == "started"}
    assert done_sets and not done_sets & resent
    assert bridge.is_mirror_enabled(world.backend) is False
    assert bridge.pending(world.backend) == []
    assert verify(world.backend, all_ids(world.backend)).exit_code == 0
