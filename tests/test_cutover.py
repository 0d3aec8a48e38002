"""cutover plan / apply / status on the simulator, in-process (the real click commands, a real state file)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.cutover import Plan, apply, make_plan, status
from dualwrite.cutover.journal import CutoverJournal
from dualwrite.cutover.plan import target_of
from dualwrite.demo import make_summary
from dualwrite.evidence import check_evidence
from tests.audit_world import World, world  # noqa: F401  (fixture)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "summaries"


def h(i: int, **changes) -> str:
    s = make_summary(i).model_copy(update=changes) if changes else make_summary(i)
    return "0x" + hashlib.sha3_256(s.to_bcs()).hexdigest()


def write_jsonl(path: Path, ids, **changes) -> Path:
    lines = []
    for i in ids:
        s = make_summary(i).model_copy(update=changes) if changes else make_summary(i)
        lines.append(json.dumps(s.to_move_json()))
    path.write_text("\n".join(lines) + "\n")
    return path


def dw(w: World, *args: str):
    r = CliRunner().invoke(cli, [*args, "--state", str(w.path)], catch_exceptions=False)
    return r


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    """apply --json counts every outcome, zeros too: the ones that happened."""
    from dualwrite.cutover.apply import Outcome

    assert list(counts) == [o.value for o in Outcome], counts
    return {k: v for k, v in counts.items() if v}


def started_events(w: World, lid: int) -> int:
    return len(w.events("ArchiveDualWriteStartedEvent", lid))


@pytest.fixture
def chain(world: World, tmp_path: Path):
    """1-3 archived (ok), 4 archived with a drifted copy, 5 pending the right hash, 6 a conflict, 7-12 nothing."""
    world.init(abort_on_missing=False)
    for i in range(1, 5):
        world.expect(i, bytes.fromhex(h(i)[2:]))
        world.finalize(i)
    world.tamper(4, "--set", "tickets_sold=5", "--fix-hash")
    world.expect(5, bytes.fromhex(h(5)[2:]))
    world.expect(6, b"\xab" * 32)
    write_jsonl(tmp_path / "l.jsonl", range(1, 13))
    return world


def test_plan_rows_states_and_file(chain: World, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = dw(chain, "cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "6 to register, 1 already set, 1 conflict, 3 done, 1 archived_mismatch; 6 transactions to send" in r.output
    plan = Plan.load(out)
    states = {row.lottery_id: (row.state.value, row.action) for row in plan.rows}
    assert states == {1: ("done", "none"), 2: ("done", "none"), 3: ("done", "none"),
                      4: ("archived_mismatch", "none"), 5: ("already_set", "none"), 6: ("conflict", "none"),
                      **{i: ("register", "set") for i in range(7, 13)}}
    assert [row.lottery_id for row in plan.rows] == sorted(states)
    six = next(r for r in plan.rows if r.lottery_id == 6)
    assert six.chain_expected_hash == "0x" + "ab" * 32 and "--replace" in six.note
    four = next(r for r in plan.rows if r.lottery_id == 4)
    assert four.chain_state == "field_drift" and "heal" in four.note
    # the file: readable (one row per line), its own digest and each input's
    text = out.read_text()
    row_lines = [ln for ln in text.splitlines() if ln.strip().startswith('{"lottery_id"')]
    assert len(row_lines) == 12
    doc = json.loads(text)
    assert check_evidence(out).ok and doc["blake3"] == plan.digest
    import blake3

    assert doc["data"]["inputs"] == [{"path": str(tmp_path / "l.jsonl"), "summaries": 12,
                                      "blake3": blake3.blake3((tmp_path / "l.jsonl").read_bytes()).hexdigest()}]
    assert doc["data"]["target"]["backend"] == "sim" and doc["data"]["target"]["state"] == str(chain.path.resolve())
    # --json prints the same document (apply-able)
    r = dw(chain, "cutover", "plan", str(tmp_path / "l.jsonl"), "--json")
    assert r.exit_code == 0
    again = json.loads(r.stdout)
    assert again["data"] == doc["data"]


def test_plan_every_input_form_and_refusals(world: World, tmp_path: Path) -> None:
    world.init()
    forms = [str(FIXTURES / n) for n in ("lottery-1.json", "lotteries-2-3.json", "lottery-4.jsonl",
                                         "view-lottery-5.json")]
    r = dw(world, "cutover", "plan", *forms, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [row["lottery_id"] for row in doc["data"]["rows"]] == [1, 2, 3, 4, 5]
    assert [i["summaries"] for i in doc["data"]["inputs"]] == [1, 2, 1, 1]
    # .bcs and hex forms of lottery 1 and 2 (duplicates of the JSON ones when given together)
    r = dw(world, "cutover", "plan", str(FIXTURES / "lottery-1.bcs"), str(FIXTURES / "lottery-2.hex"), "--json")
    assert r.exit_code == 0, r.output
    # a duplicate id is refused, naming both places
    r = dw(world, "cutover", "plan", str(FIXTURES / "lottery-1.json"), str(FIXTURES / "lottery-1.bcs"))
    assert r.exit_code == 2
    assert "lottery 1 in" in r.stderr and "lottery-1.json" in r.stderr and "lottery-1.bcs" in r.stderr
    assert "(the same summary)" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    different = write_jsonl(tmp_path / "other.jsonl", [1], tickets_sold=7)
    r = dw(world, "cutover", "plan", str(FIXTURES / "lottery-1.json"), str(different), "--out", str(tmp_path / "p.json"))
    assert r.exit_code == 2 and "(different summaries)" in r.stderr
    assert not (tmp_path / "p.json").exists()
    # unreadable inputs: every one named
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": 1')
    r = dw(world, "cutover", "plan", str(bad), str(tmp_path / "missing.json"), str(FIXTURES / "lottery-1.json"))
    assert r.exit_code == 2
    assert "bad.json" in r.stderr and "missing.json: no such file" in r.stderr and "Traceback" not in r.stderr


def test_plan_warns_about_dangerous_flags(world: World, tmp_path: Path) -> None:
    world.init(abort_on_missing=True, mirror=False)
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 4))
    r = dw(world, "cutover", "plan", str(src))
    assert r.exit_code == 0
    assert "WARNING: the legacy mirror is OFF" in r.output
    assert "WARNING: abort_on_missing is ON while 3 planned lotteries are not registered yet" in r.output
    world.call("legacy_bridge::update_flags", "bool:false", "bool:true", "bool:false")
    r = dw(world, "cutover", "plan", str(src), "--json")
    warnings = json.loads(r.stdout)["data"]["warnings"]
    assert any(w.startswith("dual-write is OFF") for w in warnings)
    assert not any("abort_on_missing" in w for w in warnings)


def test_tampered_plan_and_other_state_refused(chain: World, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert dw(chain, "cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(out)).exit_code == 0
    good = out.read_text()
    # one hash changed by hand: refused, nothing sent
    row7 = h(7)
    out.write_text(good.replace(row7, h(8), 1))
    r = dw(chain, "cutover", "apply", str(out))
    assert r.exit_code == 2 and "digest mismatch" in r.stderr
    assert started_events(chain, 7) == 0
    assert not Path(str(out) + ".journal.jsonl").exists()
    # the digest "fixed" too, but the file no longer parses as a plan: also refused
    doc = json.loads(good)
    doc["data"]["rows"][0]["state"] = "bogus"
    from dualwrite.evidence import blake3_hex, canonical_json

    body = {k: v for k, v in doc.items() if k != "blake3"}
    doc["blake3"] = blake3_hex(canonical_json(body))
    out.write_text(json.dumps(doc))
    r = dw(chain, "cutover", "apply", str(out))
    assert r.exit_code == 2 and "data.rows.0.state" in r.stderr
    # the good plan on another state file: refused (and on the same one it applies)
    out.write_text(good)
    other = World(tmp_path / "other.sqlite").init()
    try:
        r = CliRunner().invoke(cli, ["cutover", "apply", str(out), "--state", str(other.path)])
        assert r.exit_code == 2 and "made for another target" in r.stderr and "state" in r.stderr
        assert started_events(other, 7) == 0
        r = CliRunner().invoke(cli, ["cutover", "status", str(out), "--state", str(other.path)])
        assert r.exit_code == 2 and "made for another target" in r.stderr
    finally:
        other.close()
    r = dw(chain, "cutover", "apply", str(out))
    assert r.exit_code == 0, r.output


def test_apply_sends_once_keeps_conflict_and_resumes(chain: World, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert dw(chain, "cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(out)).exit_code == 0
    r = dw(chain, "cutover", "apply", str(out), "--dry-run", "--json")
    assert r.exit_code == 0 and nonzero(json.loads(r.stdout)["counts"]) == {"would_send": 6, "no_action": 6}
    assert not Path(str(out) + ".journal.jsonl").exists() and started_events(chain, 7) == 0
    r = dw(chain, "cutover", "apply", str(out), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert nonzero(res["counts"]) == {"sent": 6, "no_action": 6} and not res["resumed"]
    for i in range(7, 13):
        assert chain.backend and started_events(chain, i) == 1
    assert chain.diff(6).expected_hash == "0x" + "ab" * 32  # the conflict was not overwritten
    # again: nothing is sent twice (settled by the journal, without a read)
    r = dw(chain, "cutover", "apply", str(out), "--json")
    res = json.loads(r.stdout)
    assert r.exit_code == 0 and res["resumed"] and nonzero(res["counts"]) == {"settled_earlier": 6, "no_action": 6}
    assert all(started_events(chain, i) == 1 for i in range(7, 13))
    # a separate journal, same plan: the chain says what landed
    r = dw(chain, "cutover", "apply", str(out), "--journal", str(tmp_path / "j2.jsonl"), "--json")
    assert nonzero(json.loads(r.stdout)["counts"]) == {"already_set": 6, "no_action": 6}
    # status: 3 ok, 1 mismatch (4), 1 conflict (6), 7 pending (5, 7-12)
    r = dw(chain, "cutover", "status", str(out), "--json")
    st = json.loads(r.stdout)
    assert r.exit_code == 1
    assert st["counts"] == {"pending": 7, "consumed_ok": 3, "consumed_mismatch": 1, "conflict": 1, "unregistered": 0}
    assert st["ids"]["consumed_mismatch"] == [4] and st["ids"]["conflict"] == [6]


def test_replace_is_planned_and_applied(chain: World, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    r = dw(chain, "cutover", "plan", str(tmp_path / "l.jsonl"), "--replace", "--out", str(out))
    assert "1 conflict (REPLACED)" in r.output and "REPLACES the pending hash" in r.output
    six = next(r for r in Plan.load(out).rows if r.lottery_id == 6)
    assert six.action == "replace"
    r = dw(chain, "cutover", "apply", str(out), "--json")
    assert nonzero(json.loads(r.stdout)["counts"]) == {"sent": 6, "replaced": 1, "no_action": 5}
    assert chain.diff(6).expected_hash == h(6)


def test_new_conflict_stops_the_run(chain: World, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    dw(chain, "cutover", "plan", str(tmp_path / "l.jsonl"), "--out", str(out))
    chain.expect(9, b"\x01" * 32)  # someone registers another hash after the plan was reviewed
    r = dw(chain, "cutover", "apply", str(out), "--json")
    assert r.exit_code == 1
    res = json.loads(r.stdout)
    assert nonzero(res["counts"]) == {"sent": 2, "conflict": 1, "not_reached": 3, "no_action": 6}
    assert "new conflict" in res["stopped"] and chain.diff(9).expected_hash == "0x" + "01" * 32
    assert started_events(chain, 10) == 0


def test_abort_stops_unless_keep_going(world: World, tmp_path: Path) -> None:
    world.init()
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 5))
    out = tmp_path / "plan.json"
    assert dw(world, "cutover", "plan", str(src), "--out", str(out)).exit_code == 0
    # signed by an account that is not @lottery_multi: every set aborts E_HISTORY_NOT_AUTHORIZED
    r = dw(world, "cutover", "apply", str(out), "--profile", "mallory", "--json")
    assert r.exit_code == 4
    res = json.loads(r.stdout)
    assert nonzero(res["counts"]) == {"aborted": 1, "not_reached": 3} and "E_HISTORY_NOT_AUTHORIZED" in res["stopped"]
    r = dw(world, "cutover", "apply", str(out), "--profile", "mallory", "--keep-going")
    assert r.exit_code == 4 and "aborted 4" in r.output
    # the aborts left nothing pending: the admin's apply sends all four
    r = dw(world, "cutover", "apply", str(out), "--json")
    assert r.exit_code == 0 and nonzero(json.loads(r.stdout)["counts"]) == {"sent": 4}


def test_journal_is_locked_and_torn_lines_skipped(world: World, tmp_path: Path) -> None:
    world.init()
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 4))
    out = tmp_path / "plan.json"
    dw(world, "cutover", "plan", str(src), "--out", str(out))
    journal = Path(str(out) + ".journal.jsonl")
    fd = os.open(journal, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = dw(world, "cutover", "apply", str(out))
        assert r.exit_code == 2 and "another apply of this plan is running" in r.stderr
    finally:
        os.close(fd)
    journal.write_text('{"event": "step", "plan": "x", "lottery_id": 1, "sta')  # a torn record from a crash
    r = dw(world, "cutover", "apply", str(out))
    assert r.exit_code == 0, r.output
    lines = journal.read_text().splitlines()
    assert lines[0].startswith('{"event": "step"') and all(json.loads(ln) for ln in lines[1:])
    assert sum(1 for rec in CutoverJournal(journal).records() if rec.get("status") == "done") == 3


def test_max_tps_paces_the_sends(world: World, tmp_path: Path) -> None:
    world.init()
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 6))
    out = tmp_path / "plan.json"
    dw(world, "cutover", "plan", str(src), "--out", str(out))
    r = dw(world, "cutover", "apply", str(out), "--max-tps", "20", "--json")
    res = json.loads(r.stdout)
    assert nonzero(res["counts"]) == {"sent": 5}
    assert res["duration_s"] >= 4 / 20 * 0.95  # five sends at 20/s span at least four intervals


def test_status_pending_unregistered_empty_and_watch(world: World, tmp_path: Path) -> None:
    world.init()
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 5))
    out = tmp_path / "plan.json"
    dw(world, "cutover", "plan", str(src), "--out", str(out))
    r = dw(world, "cutover", "status", str(out))
    assert r.exit_code == 6 and "4 unregistered" in r.output and "unregistered: 1-4" in r.output
    assert dw(world, "cutover", "apply", str(out)).exit_code == 0
    world.finalize(1, 2)
    r = dw(world, "cutover", "status", str(out), "--json")
    st = json.loads(r.stdout)
    assert r.exit_code == 6 and st["counts"]["consumed_ok"] == 2 and st["ids"] == {"pending": [3, 4]}
    r = dw(world, "cutover", "status", str(out), "--watch", "--timeout", "1s", "--interval", "0.2")
    assert r.exit_code == 6 and "NOT DONE YET (watch timed out)" in r.output
    world.finalize(3, 4)
    r = dw(world, "cutover", "status", str(out), "--watch", "--timeout", "30s")
    assert r.exit_code == 0 and "DONE: every planned lottery is archived" in r.output
    # a copy drifting afterwards is caught
    world.tamper(2, "--set", "status=7", "--fix-hash")
    r = dw(world, "cutover", "status", str(out), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["ids"]["consumed_mismatch"] == [2]
    # a plan that checks nothing: exit 5
    plan = Plan.load(out)
    empty = plan.model_copy(update={"rows": [], "counts": {}, "digest": "", "created_at": ""}).write(tmp_path / "empty.json")
    r = dw(world, "cutover", "status", str(tmp_path / "empty.json"))
    assert r.exit_code == 5 and empty.digest and "EMPTY" in r.output
    assert dw(world, "cutover", "status", str(tmp_path / "empty.json"), "--allow-empty").exit_code == 0
    r = dw(world, "cutover", "status", str(out), "--timeout", "1s")
    assert r.exit_code == 2 and "--timeout needs --watch" in r.stderr


def test_library_api(world: World, tmp_path: Path) -> None:
    world.init()
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 4))
    b = world.backend
    plan = make_plan(b, [str(src)]).write(tmp_path / "plan.json")
    assert Plan.load(tmp_path / "plan.json") == plan
    res = apply(b, plan, journal=tmp_path / "j.jsonl")
    assert res.exit_code == 0 and res.count()["sent"] == 3
    st = status(b, plan)
    assert st.counts()["pending"] == 3 and int(st.exit_code) == 6
    assert target_of(b).state == str(world.path.resolve())


def test_a_damaged_journal_line_is_bad_input_not_a_crash(world: World, tmp_path: Path) -> None:
    """Garbage that is not a torn record — not JSON, nested too deep, a 5000-digit integer — is exit 2 naming the line."""
    world.init()
    src = write_jsonl(tmp_path / "l.jsonl", range(1, 3))
    out = tmp_path / "plan.json"
    dw(world, "cutover", "plan", str(src), "--out", str(out))
    journal = Path(str(out) + ".journal.jsonl")
    for bad in ("not json at all", "[" * 100_000 + "]" * 100_000, "1" * 5000):
        journal.write_text('{"event": "note"}\n' + bad + "\n")
        r = dw(world, "cutover", "apply", str(out))
        assert r.exit_code == 2, (bad[:20], r.exit_code, r.output)
        assert f"cutover journal {journal}: line 2 is not" in r.stderr
        assert "Traceback" not in r.output
