"""``dualwrite sim init|finalize|tamper|events|info|reset`` through click's CliRunner: output and exit codes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dualwrite.cli.main import cli
from dualwrite.errors import DecodeError
from dualwrite.inputs import load_summaries
from dualwrite.sim.chain import Chain
from dualwrite.sim.tamper import non_canonical_bytes
from dualwrite.structs import LegacySummary, LotterySummary

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "summaries"
F1 = str(FIXTURES / "lottery-1.json")
ALL_FIXTURES = [str(FIXTURES / n) for n in ("lottery-1.bcs", "lotteries-2-3.json", "lottery-4.jsonl",
                                            "view-lottery-5.json")]
LB = "lottery_multi::legacy_bridge::"


def sha3(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def summary_of(path: str) -> LotterySummary:
    (item,) = load_summaries([path])
    return item.summary


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
def runner(monkeypatch) -> CliRunner:
    for var in ("DUALWRITE_STATE", "DUALWRITE_DEBUG", "DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS",
                "DUALWRITE_SIM_LOTTERY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


def sim(runner: CliRunner, state: Path, *args: str, input: str | None = None):
    return runner.invoke(cli, ["sim", *args, "--state", str(state)], input=input)


def sim_json(runner: CliRunner, state: Path, *args: str, code: int = 0):
    res = sim(runner, state, *args, "--json")
    assert res.exit_code == code, (res.exit_code, res.output)
    return json.loads(res.stdout)


def chain(state: Path) -> Chain:
    return Chain(state)


# -- init --------------------------------------------------------------------------------------------


def test_init_steps_and_rerun(runner, state):
    out = sim_json(runner, state, "init", "--dual-write", "--no-abort-on-mismatch", "--abort-on-missing", "--mirror")
    assert out["state"] == str(state)
    assert [(s["function"], s["result"], s["version"]) for s in out["steps"]] == [
        ("history::init_history", "ok", 1), ("history_bridge::init_bridge", "ok", 2),
        ("legacy_bridge::init_dual_write", "ok", 3), ("legacy_bridge::enable_legacy_mirror", "ok", 4)]
    c = chain(state)
    assert c.view(LB + "dual_write_flags") == [
        {"enabled": True, "abort_on_mismatch": False, "abort_on_missing": True, "expected_hash": {"vec": []}}]
    assert c.view(LB + "is_mirror_enabled") == [True] and c.view("lottery::history_bridge::is_initialized") == [True]
    # again: what exists is skipped (and the existing flags are kept)
    res = sim(runner, state, "init", "--dual-write", "--mirror")
    assert res.exit_code == 0, res.output
    assert "history::init_history" in res.stdout and "already initialised" in res.stdout
    steps = sim_json(runner, state, "init", "--dual-write")["steps"]
    assert [s["result"] for s in steps] == ["already initialised", "ok", "already initialised"]
    assert c.view(LB + "dual_write_flags")[0]["abort_on_missing"] is True
    c.close()


def test_init_defaults_only_history_and_bridge(runner, state):
    steps = sim_json(runner, state, "init")["steps"]
    assert [s["function"] for s in steps] == ["history::init_history", "history_bridge::init_bridge"]
    c = chain(state)
    assert c.view(LB + "is_enabled") == [False] and c.view(LB + "is_mirror_enabled") == [False]
    c.close()


def test_state_from_the_environment(runner, state, monkeypatch):
    monkeypatch.setenv("DUALWRITE_STATE", str(state))
    res = runner.invoke(cli, ["sim", "init", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["state"] == str(state)
    assert state.exists()


# -- finalize -----------------------------------------------------------------------------------------


def test_finalize_every_input_form(runner, state):
    sim_json(runner, state, "init", "--dual-write", "--no-abort-on-mismatch", "--mirror")
    results = sim_json(runner, state, "finalize", *ALL_FIXTURES)
    assert [r["lottery_id"] for r in results] == [1, 2, 3, 4, 5]
    assert all(r["status"] == "finalized" for r in results)
    assert [r["version"] for r in results] == [5, 6, 7, 8, 9]
    assert results[0]["events"] == ["LegacySummaryEvent", "LotteryFinalizedEvent"]
    assert results[0]["source"].endswith("lottery-1.bcs")
    c = chain(state)
    assert c.view("lottery_multi::history::list_finalized", ["u64:0", "u64:10"]) == [["5", "4", "3", "2", "1"]]
    s1 = summary_of(F1)
    assert c.legacy_raw(1) == LegacySummary(summary_bcs=s1.to_bcs(), archive_hash=sha3(s1.to_bcs()),
                                            finalized_at=s1.finalized_at)
    c.close()
    # the human form
    res = sim(runner, state, "finalize", str(FIXTURES / "lottery-2.hex"))
    assert res.exit_code == 0, res.output
    assert "lottery 2: finalized at version 10 (LegacySummaryEvent, LotteryFinalizedEvent)" in res.stdout


def test_finalize_abort_exits_4_with_code_and_name(runner, state):
    sim_json(runner, state, "init", "--dual-write", "--abort-on-missing", "--mirror")
    s1 = summary_of(F1)
    c = chain(state)
    c.run(LB + "set_expected_hash", ["u64:2", "hex:" + "00" * 32])  # 2 mismatches, 1 is missing
    results = sim_json(runner, state, "finalize", F1, str(FIXTURES / "lotteries-2-3.json"), code=4)
    by_id = {r["lottery_id"]: r for r in results}
    assert by_id[1]["status"] == "aborted" and by_id[1]["abort_code"] == 0x1B05
    assert by_id[1]["abort_name"] == "E_HISTORY_EXPECTED_MISSING"
    assert by_id[1]["module"] == f"{c.addresses.lottery_multi}::legacy_bridge"
    assert by_id[2]["abort_code"] == 0x1B02 and by_id[2]["abort_name"] == "E_HISTORY_MISMATCH"
    assert by_id[3]["abort_code"] == 0x1B05
    assert c.legacy_raw(1) is None and c.events("LotteryFinalizedEvent") == []
    # one good, one aborted: the good one stays, the exit is still 4
    c.run(LB + "set_expected_hash", ["u64:1", "hex:" + sha3(s1.to_bcs()).hex()])
    res = sim(runner, state, "finalize", F1, str(FIXTURES / "lottery-4.jsonl"))
    assert res.exit_code == 4
    assert "lottery 1: finalized at version" in res.stdout
    assert "lottery 4: ABORTED E_HISTORY_EXPECTED_MISSING (0x1b05)" in res.stdout
    assert c.view(LB + "pending_expected_hashes") == [["2"]]
    # re-recording a different summary under a finalised id: 0x1B02 from history
    other = s1.model_copy(update={"tickets_sold": 1})
    p = state.parent / "other.json"
    p.write_text(json.dumps(other.to_move_json()))
    c.run(LB + "update_flags", ["bool:false", "bool:false", "bool:false"])
    (r,) = sim_json(runner, state, "finalize", str(p), code=4)
    assert (r["abort_code"], r["abort_name"]) == (0x1B02, "E_HISTORY_MISMATCH") and r["module"].endswith("::history")
    c.close()


def test_finalize_before_init_aborts_history_missing(runner, state):
    chain(state).close()  # a state file whose chain has no module initialised
    (r,) = sim_json(runner, state, "finalize", F1, code=4)
    assert (r["abort_code"], r["abort_name"]) == (0x1B01, "E_HISTORY_MISSING")


def test_finalize_without_a_state_file_creates_none(runner, state):
    """Only `sim init` creates a state file: a write at a mistyped path says so and leaves nothing."""
    res = sim(runner, state, "finalize", F1)
    assert res.exit_code == 3 and f"simulator state {state} does not exist" in res.stderr, res.output
    assert not state.exists() and list(state.parent.iterdir()) == []


@pytest.mark.parametrize("content,needle", [(None, "no such file"), ("{not json", "invalid JSON"),
                                            ('{"id": "1"}', "")])
def test_finalize_bad_input_exits_2(runner, state, tmp_path, content, needle):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    res = sim(runner, state, "finalize", str(path))
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("dualwrite: error:") and needle in res.stderr
    assert "Traceback" not in res.output


# -- tamper ---------------------------------------------------------------------------------------------


@pytest.fixture
def finalized(runner, state) -> LotterySummary:
    sim_json(runner, state, "init", "--dual-write", "--no-abort-on-mismatch", "--mirror")
    sim_json(runner, state, "finalize", F1)
    return summary_of(F1)


def _unchanged_chain(state: Path, version: int, n_events: int) -> None:
    c = chain(state)
    assert c.version() == version and len(c.events()) == n_events
    c.close()


def test_tamper_bytes_keep_and_fix_hash(runner, state, finalized):
    h = sha3(finalized.to_bcs())
    out = sim_json(runner, state, "tamper", "1", "--bytes", "0xdeadbeef")
    assert out == {"lottery_id": 1, "action": "bytes replaced", "archive_hash": "0x" + h.hex(),
                   "summary_bcs": "0xdeadbeef", "finalized_at": str(finalized.finalized_at)}
    c = chain(state)
    assert c.legacy_raw(1) == LegacySummary(summary_bcs=bytes.fromhex("deadbeef"), archive_hash=h,
                                            finalized_at=finalized.finalized_at)
    out = sim_json(runner, state, "tamper", "1", "--bytes", "cafe", "--fix-hash")
    assert out["action"] == "bytes replaced; archive_hash recomputed"
    assert c.legacy_raw(1).archive_hash == sha3(b"\xca\xfe")
    # the chain's own state did not move: no event, no version
    assert c.version() == 5 and len(c.events()) == 2
    # the history summary is untouched
    assert c.view("lottery_multi::history::get_summary", ["u64:1"]) == [finalized.to_move_json()]
    c.close()


def test_tamper_set_field(runner, state, finalized):
    h = sha3(finalized.to_bcs())
    out = sim_json(runner, state, "tamper", "1", "--set", "status=7", "--set", "event_slug=0xabcd")
    assert out["action"] == "fields changed: status, event_slug"
    changed = finalized.model_copy(update={"status": 7, "event_slug": b"\xab\xcd"})
    c = chain(state)
    copy = c.legacy_raw(1)
    assert copy.summary_bcs == changed.to_bcs() and copy.archive_hash == h  # the stale hash kept
    out = sim_json(runner, state, "tamper", "1", "--set", "tickets_sold=1", "--fix-hash")
    changed = changed.model_copy(update={"tickets_sold": 1})
    assert c.legacy_raw(1) == LegacySummary(summary_bcs=changed.to_bcs(), archive_hash=sha3(changed.to_bcs()),
                                            finalized_at=finalized.finalized_at)
    assert out["archive_hash"] == "0x" + sha3(changed.to_bcs()).hex()
    c.close()


def test_tamper_non_canonical_and_finalized_at(runner, state, finalized):
    out = sim_json(runner, state, "tamper", "1", "--non-canonical", "--fix-hash")
    assert "re-encoded non-canonically" in out["action"]
    c = chain(state)
    copy = c.legacy_raw(1)
    assert copy.summary_bcs == non_canonical_bytes(finalized) != finalized.to_bcs()
    assert LotterySummary.from_bcs(copy.summary_bcs, lenient_uleb=True) == finalized
    assert copy.archive_hash == sha3(copy.summary_bcs)
    with pytest.raises(DecodeError):
        LotterySummary.from_bcs(copy.summary_bcs)  # the strict decoder refuses it
    out = sim_json(runner, state, "tamper", "1", "--finalized-at", "42")
    assert out["action"] == "finalized_at changed" and out["finalized_at"] == "42"
    after = c.legacy_raw(1)
    assert after.finalized_at == 42 and after.summary_bcs == copy.summary_bcs and after.archive_hash == copy.archive_hash
    # human output
    res = sim(runner, state, "tamper", "1", "--finalized-at", "43")
    assert res.exit_code == 0 and "lottery 1 legacy copy finalized_at changed" in res.stdout
    c.close()


def test_tamper_delete(runner, state, finalized):
    out = sim_json(runner, state, "tamper", "1", "--delete")
    assert out == {"lottery_id": 1, "action": "deleted"}
    c = chain(state)
    assert c.legacy_raw(1) is None
    assert c.view("lottery::history_bridge::get_summary", ["u64:1"]) == [{"vec": []}]
    c.close()
    res = sim(runner, state, "tamper", "1", "--delete")
    assert res.exit_code == 2 and "no legacy copy" in res.stderr


@pytest.mark.parametrize("args,needle", [
    ([], "nothing to tamper"),
    (["--set", "nope=1"], "FIELD=VALUE"),
    (["--set", "status"], "FIELD=VALUE"),
    (["--set", "status=300"], "out of range"),
    (["--bytes", "xyz"], "--bytes"),
    (["--bytes", "00", "--set", "status=1"], "do not decode"),
])
def test_tamper_bad_input_exits_2(runner, state, finalized, args, needle):
    c = chain(state)
    before = c.legacy_raw(1)
    res = sim(runner, state, "tamper", "1", *args)
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and "Traceback" not in res.output
    assert c.legacy_raw(1) == before
    c.close()


def test_tamper_unknown_lottery_exits_2(runner, state, finalized):
    res = sim(runner, state, "tamper", "9", "--bytes", "00")
    assert res.exit_code == 2 and "lottery 9: no legacy copy" in res.stderr


# -- events, info, reset --------------------------------------------------------------------------------


def test_events_filters(runner, state):
    sim_json(runner, state, "init", "--dual-write", "--mirror")
    s1 = summary_of(F1)
    c = chain(state)
    c.run(LB + "set_expected_hash", ["u64:1", "hex:" + sha3(s1.to_bcs()).hex()])
    c.run(LB + "set_expected_hash", ["u64:2", "hex:00"])
    c.close()
    sim_json(runner, state, "finalize", F1)
    evs = sim_json(runner, state, "events")
    assert [e["type"].rsplit("::", 1)[-1] for e in evs] == [
        "ArchiveDualWriteStartedEvent", "ArchiveDualWriteStartedEvent", "LegacySummaryEvent",
        "ArchiveDualWriteCompletedEvent", "LotteryFinalizedEvent"]
    assert [e["version"] for e in evs] == [5, 6, 7, 7, 7]
    started = sim_json(runner, state, "events", "--type", "ArchiveDualWriteStartedEvent")
    assert [(e["sequence_number"], e["data"]["lottery_id"]) for e in started] == [("0", "1"), ("1", "2")]
    full = sim_json(runner, state, "events", "--type", started[0]["type"])
    assert full == started
    only1 = sim_json(runner, state, "events", "--lottery", "1")
    assert len(only1) == 4 and all(e["data"].get("lottery_id", e["data"].get("id")) == "1" for e in only1)
    last2 = sim_json(runner, state, "events", "--limit", "2")
    assert last2 == evs[-2:]
    assert sim_json(runner, state, "events", "--type", "LegacySummaryRolledBackEvent") == []
    # exact type names: no case folding, no LIKE wildcards, no partial tails
    assert sim_json(runner, state, "events", "--type", "archivedualwritestartedevent") == []
    assert sim_json(runner, state, "events", "--type", "DualWriteStartedEvent") == []
    assert sim_json(runner, state, "events", "--type", "legacy_bridge::ArchiveDualWriteStartedEvent") == started
    assert sim_json(runner, state, "events", "--type", "legacy_bridge::ArchiveDualWriteStartedEven_") == []
    res = sim(runner, state, "events", "--type", "ArchiveDualWriteCompletedEvent")
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["version", "seq", "event", "lottery", "data"]
    assert "ArchiveDualWriteCompletedEvent" in lines[1] and "event_category=8" in lines[1]
    res = sim(runner, state, "events", "--limit", "0")
    assert res.exit_code == 2


def test_info(runner, state):
    c = chain(state)  # a chain with nothing initialised (sim info never creates one)
    info = sim_json(runner, state, "info")
    assert info["state"] == str(state) and info["version"] == 0
    assert info["modules"]["legacy_bridge"] == f"{c.addresses.lottery_multi}::legacy_bridge"
    assert info["modules"]["history_bridge"] == f"{c.addresses.lottery}::history_bridge"
    assert info["profiles"]["default"] == info["profiles"]["lottery_multi"] == c.addresses.lottery_multi
    assert info["profiles"]["operator"] not in (c.addresses.lottery_multi, c.addresses.lottery)
    c.close()
    sim_json(runner, state, "init")
    res = sim(runner, state, "info")
    assert res.exit_code == 0 and "(version 2)" in res.stdout and "operator" in res.stdout


def test_reset(runner, state):
    sim_json(runner, state, "init")
    assert state.exists()
    # not confirmed: a usage error, the file stays
    res = sim(runner, state, "reset", input="n\n")
    assert res.exit_code == 2 and "not confirmed" in res.stderr and state.exists()
    res = sim(runner, state, "reset")  # no answer at all (EOF)
    assert res.exit_code == 2 and "not confirmed" in res.stderr and state.exists()
    res = sim(runner, state, "reset", input="y\n")
    assert res.exit_code == 0 and not state.exists()
    assert not Path(str(state) + "-wal").exists() and not Path(str(state) + "-shm").exists()
    sim_json(runner, state, "init")
    res = sim(runner, state, "reset", "--yes")
    assert res.exit_code == 0 and f"removed {state}" in res.stdout and not state.exists()
    # nothing left: a read says so (and creates nothing); sim init makes a fresh chain
    assert sim(runner, state, "info").exit_code == 3 and not state.exists()
    assert sim_json(runner, state, "init")["steps"][0]["version"] == 1
    # reset of a state that does not exist is fine
    res = sim(runner, state.parent / "never.sqlite", "reset", "--yes")
    assert res.exit_code == 0


def test_module_addresses_are_fixed_when_the_state_is_created(runner, state):
    chain(state).close()
    res = runner.invoke(cli, ["sim", "init", "--state", str(state)],
                        env={"DUALWRITE_SIM_LOTTERY_ADDRESS": "0x" + "ab" * 32})
    assert res.exit_code == 2 and "reset it" in res.stderr  # addresses are fixed at creation
