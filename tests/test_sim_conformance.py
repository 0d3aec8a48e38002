"""The embedded chain against onchain.md, through both drivers (in-process and ``dualwrite-supra``).

Every entry, internal and read function of the three modules, every abort code, the
events, the no-op cases, the swap-remove order, the lenient import decoder and the
atomicity of a transaction. Preconditions that are not themselves under test are set
up in-process on the same state file (fast); the calls under test go through the driver.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dualwrite.errors import MoveAbort
from dualwrite.sim.chain import Chain
from dualwrite.sim.tamper import non_canonical_bytes
from dualwrite.structs import LegacySummary, LotterySummary
from tests.chain_driver import Completed, Driver, Subprocess, make_driver, parse_abort

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "summaries"
BASE = LotterySummary.from_move_json(json.loads((FIXTURES / "lottery-1.json").read_text()))

LB = "lottery_multi::legacy_bridge::"
H = "lottery_multi::history::"
HB = "lottery::history_bridge::"

E_ALREADY_INITIALIZED = (0x1201, "E_ALREADY_INITIALIZED")
E_PAGINATION_LIMIT = (0x1501, "E_PAGINATION_LIMIT")
E_HISTORY_MISSING = (0x1B01, "E_HISTORY_MISSING")
E_HISTORY_MISMATCH = (0x1B02, "E_HISTORY_MISMATCH")
E_HISTORY_NOT_AUTHORIZED = (0x1B04, "E_HISTORY_NOT_AUTHORIZED")
E_HISTORY_EXPECTED_MISSING = (0x1B05, "E_HISTORY_EXPECTED_MISSING")
E_HISTORY_CONTROL_MISSING = (0x1B06, "E_HISTORY_CONTROL_MISSING")
E_HISTORY_IMPORT_HASH = (0x1B07, "E_HISTORY_IMPORT_HASH")
E_HISTORY_ID_MISMATCH = (0x1B08, "E_HISTORY_ID_MISMATCH")
E_HISTORY_NOT_LEGACY = (0x1B09, "E_HISTORY_NOT_LEGACY")
E_HISTORY_SUMMARY_MISSING = (0x1B0A, "E_HISTORY_SUMMARY_MISSING")
E_HISTORY_DECODE = (0x1B0B, "E_HISTORY_DECODE")
E_NOT_AUTHORIZED = (0x101, "E_NOT_AUTHORIZED")
E_KEY_NOT_FOUND = (2, "E_KEY_NOT_FOUND")


# -- helpers ---------------------------------------------------------------------------------


def summary(lottery_id: int, **changes: Any) -> LotterySummary:
    return BASE.model_copy(update={"id": lottery_id, **changes})


def sha3(data: bytes) -> bytes:
    return hashlib.sha3_256(data).digest()


def shash(s: LotterySummary) -> bytes:
    return sha3(s.to_bcs())


def hx(data: bytes) -> str:
    return "hex:" + data.hex()


def ox(data: bytes) -> str:
    return "0x" + data.hex()


def u64(n: int) -> str:
    return f"u64:{n}"


def b(v: bool) -> str:
    return f"bool:{str(v).lower()}"


def snapshot(chain: Chain) -> dict[str, list]:
    """Everything the chain stores, for 'an aborted call leaves nothing behind'."""
    conn = chain.store.conn
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("meta", "resources", "expected", "history", "legacy", "events", "transactions")}


def aborts(d: Driver, expected: tuple[int, str], module: str, call: Callable[[], Any]) -> MoveAbort:
    """``call`` aborts with ``expected`` in ``module`` (a short name) and changes nothing at all."""
    before = snapshot(d.chain)
    with pytest.raises(MoveAbort) as info:
        call()
    e = info.value
    assert (e.code, e.name) == expected, str(e)
    if module == "table":
        assert e.module == "vrf_hub::table"
    else:
        home = d.chain.addresses.lottery if module == "history_bridge" else d.chain.addresses.lottery_multi
        assert e.module == f"{home}::{module}", e.module
    assert snapshot(d.chain) == before
    return e


def setup(d: Driver, *, history: bool = True, bridge: bool = True, dual_write: tuple[bool, bool] | None = None,
          mirror: bool = False) -> None:
    """Preconditions, in-process (fast), on the driver's state file."""
    c = d.chain
    if history:
        c.run(H + "init_history")
    if bridge:
        c.run(HB + "init_bridge", profile="lottery")
    if dual_write is not None:
        c.run(LB + "init_dual_write", [b(dual_write[0]), b(dual_write[1])])
    if mirror:
        c.run(LB + "enable_legacy_mirror")


def pending(d: Driver) -> list[int]:
    return [int(x) for x in d.view1(LB + "pending_expected_hashes")]


def status(d: Driver, lottery_id: int) -> dict[str, Any]:
    return d.view1(LB + "dual_write_status", [u64(lottery_id)])


def legacy(d: Driver, lottery_id: int) -> LegacySummary | None:
    return d.chain.legacy_raw(lottery_id)


def events(d: Driver, name: str, lottery_id: int | None = None) -> list[dict[str, Any]]:
    return d.chain.events(name, lottery_id)


def event_names(txn: dict[str, Any]) -> list[str]:
    return [e["type"].rsplit("::", 1)[-1] for e in txn["output"]["Move"]["events"]]


def version(d: Driver) -> int:
    return d.chain.version()


@pytest.fixture(params=["inprocess", "subprocess", "rpc"])
def driver(request, tmp_path) -> Driver:
    d = make_driver(request.param, tmp_path / "state.sqlite")
    yield d
    d.close()


@pytest.fixture
def sub(tmp_path) -> Subprocess:
    d = Subprocess(tmp_path / "state.sqlite")
    yield d
    d.close()


# -- reads before anything exists -----------------------------------------------------------------


def test_reads_on_an_empty_chain(driver):
    off = {"enabled": False, "abort_on_mismatch": False, "abort_on_missing": False, "expected_hash": {"vec": []}}
    assert driver.view(LB + "dual_write_status", [u64(7)]) == [off]
    assert driver.view(LB + "dual_write_flags") == [off]
    assert driver.view(LB + "pending_expected_hashes") == [[]]
    assert driver.view(LB + "has_expected_hash", [u64(7)]) == [False]
    assert driver.view(LB + "is_enabled") == [False]
    assert driver.view(LB + "is_mirror_enabled") == [False]
    assert driver.view(HB + "is_initialized") == [False]
    assert driver.view(HB + "get_summary", [u64(7)]) == [{"vec": []}]
    # the ledger does not exist: its reads abort E_HISTORY_MISSING
    aborts(driver, E_HISTORY_MISSING, "history", lambda: driver.view(H + "get_summary", [u64(7)]))
    aborts(driver, E_HISTORY_MISSING, "history", lambda: driver.view(H + "list_finalized", [u64(0), u64(10)]))
    aborts(driver, E_HISTORY_MISSING, "history", lambda: driver.view(H + "is_legacy_summary", [u64(7)]))
    assert version(driver) == 0


# -- signer checks ----------------------------------------------------------------------------------

ADMIN_ENTRIES = [
    (LB + "init_dual_write", [b(True), b(False)], E_HISTORY_NOT_AUTHORIZED, "legacy_bridge"),
    (LB + "update_flags", [b(True), b(True), b(True)], E_HISTORY_NOT_AUTHORIZED, "legacy_bridge"),
    (LB + "set_expected_hash", [u64(1), "hex:ab"], E_HISTORY_NOT_AUTHORIZED, "legacy_bridge"),
    (LB + "clear_expected_hash", [u64(1)], E_HISTORY_NOT_AUTHORIZED, "legacy_bridge"),
    (LB + "enable_legacy_mirror", [], E_HISTORY_NOT_AUTHORIZED, "legacy_bridge"),
    (LB + "disable_legacy_mirror", [], E_HISTORY_NOT_AUTHORIZED, "legacy_bridge"),
    (H + "init_history", [], E_HISTORY_MISSING, "history"),  # (sic): the wrong signer gets 0x1B01
    (H + "import_legacy_summary_admin", [u64(1), "hex:00", "hex:00"], E_HISTORY_NOT_AUTHORIZED, "history"),
    (H + "mirror_summary_admin", [u64(1)], E_HISTORY_NOT_AUTHORIZED, "history"),
    (H + "rollback_legacy_summary_admin", [u64(1)], E_HISTORY_NOT_AUTHORIZED, "history"),
    (H + "update_legacy_classification_admin", [u64(1), "u8:1", u64(2)], E_HISTORY_NOT_AUTHORIZED, "history"),
]


@pytest.mark.parametrize("fid,args,expected,module", ADMIN_ENTRIES, ids=[e[0].rsplit("::", 1)[-1] for e in ADMIN_ENTRIES])
def test_admin_entries_check_the_signer_first(driver, fid, args, expected, module):
    # on an empty chain: the signer check comes before any missing-resource check
    aborts(driver, expected, module, lambda: driver.run(fid, args, profile="operator"))
    # on a fully set-up chain, where the call as the admin would succeed
    setup(driver, dual_write=(False, False), mirror=True)
    s = summary(1)
    driver.chain.run(H + "import_legacy_summary_admin", [u64(1), hx(s.to_bcs()), hx(shash(s))])
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(shash(s))])
    aborts(driver, expected, module, lambda: driver.run(fid, args, profile="lottery"))


def test_init_bridge_is_signed_by_lottery_only(driver):
    aborts(driver, E_NOT_AUTHORIZED, "history_bridge", lambda: driver.run(HB + "init_bridge", profile="default"))
    aborts(driver, E_NOT_AUTHORIZED, "history_bridge", lambda: driver.run(HB + "init_bridge", profile="operator"))
    txn = driver.run(HB + "init_bridge", profile="lottery")
    assert txn["status"] == "Success" and event_names(txn) == []
    assert driver.view(HB + "is_initialized") == [True]
    # still the signer check first once it exists
    aborts(driver, E_NOT_AUTHORIZED, "history_bridge", lambda: driver.run(HB + "init_bridge", profile="lottery_multi"))


# -- initialisation ---------------------------------------------------------------------------------


def test_init_dual_write_once(driver):
    txn = driver.run(LB + "init_dual_write", [b(True), b(False)])
    assert txn["status"] == "Success" and event_names(txn) == []
    assert txn["header"]["sender"] == driver.chain.addresses.lottery_multi
    flags = {"enabled": True, "abort_on_mismatch": True, "abort_on_missing": False, "expected_hash": {"vec": []}}
    assert driver.view(LB + "dual_write_flags") == [flags]
    assert driver.view(LB + "is_enabled") == [True]
    assert pending(driver) == []
    e = aborts(driver, E_ALREADY_INITIALIZED, "legacy_bridge",
               lambda: driver.run(LB + "init_dual_write", [b(False), b(True)]))
    assert e.code == 0x1201
    assert driver.view(LB + "dual_write_flags") == [flags]  # unchanged


def test_init_history_once(driver):
    txn = driver.run(H + "init_history", profile="lottery_multi")
    assert txn["status"] == "Success" and event_names(txn) == []
    assert driver.view(H + "list_finalized", [u64(0), u64(10)]) == [[]]
    aborts(driver, E_ALREADY_INITIALIZED, "history", lambda: driver.run(H + "init_history"))


def test_init_bridge_twice_is_a_no_op(driver):
    driver.run(HB + "init_bridge", profile="lottery")
    v = version(driver)
    before = snapshot(driver.chain)
    txn = driver.run(HB + "init_bridge", profile="lottery")
    assert txn["status"] == "Success" and event_names(txn) == []
    assert version(driver) == v + 1
    after = snapshot(driver.chain)
    assert after["resources"] == before["resources"] and after["events"] == before["events"]
    assert driver.view(HB + "is_initialized") == [True]


@pytest.mark.parametrize("fid,args", [
    (LB + "update_flags", [b(True), b(False), b(False)]),
    (LB + "set_expected_hash", [u64(1), "hex:ab"]),
    (LB + "clear_expected_hash", [u64(1)]),
], ids=["update_flags", "set_expected_hash", "clear_expected_hash"])
def test_control_missing_before_init_dual_write(driver, fid, args):
    setup(driver, mirror=True)  # history, bridge and mirror do not make a control
    aborts(driver, E_HISTORY_CONTROL_MISSING, "legacy_bridge", lambda: driver.run(fid, args))


def test_update_flags(driver):
    setup(driver, history=False, bridge=False, dual_write=(True, True))
    driver.chain.run(LB + "set_expected_hash", [u64(5), "hex:0102"])
    txn = driver.run(LB + "update_flags", [b(False), b(False), b(True)])
    assert event_names(txn) == []
    assert driver.view(LB + "dual_write_flags") == [
        {"enabled": False, "abort_on_mismatch": False, "abort_on_missing": True, "expected_hash": {"vec": []}}]
    assert driver.view(LB + "is_enabled") == [False]
    # status reports the flags and the pending expectation (kept across update_flags)
    assert status(driver, 5) == {"enabled": False, "abort_on_mismatch": False, "abort_on_missing": True,
                                 "expected_hash": {"vec": ["0x0102"]}}
    assert status(driver, 6)["expected_hash"] == {"vec": []}


# -- expected hashes --------------------------------------------------------------------------------


def test_set_expected_hash_any_bytes_and_started_event(driver):
    setup(driver, history=False, bridge=False, dual_write=(True, False))
    lm = driver.chain.addresses.lottery_multi
    for i, value in enumerate([b"", b"\x01", bytes(range(33)), sha3(b"x")]):
        txn = driver.run(LB + "set_expected_hash", [u64(100 + i), hx(value)])
        (ev,) = txn["output"]["Move"]["events"]
        assert ev["type"] == f"{lm}::legacy_bridge::ArchiveDualWriteStartedEvent"
        assert ev["sequence_number"] == str(i)
        assert ev["data"] == {"event_version": 1, "event_category": 8, "lottery_id": str(100 + i),
                              "expected_hash": ox(value)}
    for i, value in ((0, b""), (2, bytes(range(33)))):
        assert driver.view(LB + "has_expected_hash", [u64(100 + i)]) == [True]
        assert status(driver, 100 + i)["expected_hash"] == {"vec": [ox(value)]}
    assert [e["sequence_number"] for e in events(driver, "ArchiveDualWriteStartedEvent")] == ["0", "1", "2", "3"]
    # replace: the value changes, one more Started event
    driver.run(LB + "set_expected_hash", [u64(101), "hex:ff"])
    assert status(driver, 101)["expected_hash"] == {"vec": ["0xff"]}
    assert events(driver, "ArchiveDualWriteStartedEvent", 101)[-1]["sequence_number"] == "4"
    # u64 extremes as keys
    driver.run(LB + "set_expected_hash", [u64(2**64 - 1), "hex:aa"])
    assert pending(driver)[-1] == 2**64 - 1
    assert driver.view(LB + "has_expected_hash", [u64(2**64 - 1)]) == [True]


def test_clear_expected_hash(driver):
    setup(driver, history=False, bridge=False, dual_write=(True, False))
    driver.chain.run(LB + "set_expected_hash", [u64(1), "hex:aa"])
    n_events = len(driver.chain.events())
    v = version(driver)
    txn = driver.run(LB + "clear_expected_hash", [u64(1)])
    assert event_names(txn) == []
    assert driver.view(LB + "has_expected_hash", [u64(1)]) == [False]
    assert pending(driver) == []
    # clearing what is not there succeeds and changes nothing but the version
    txn = driver.run(LB + "clear_expected_hash", [u64(1)])
    assert txn["status"] == "Success" and event_names(txn) == []
    assert len(driver.chain.events()) == n_events and version(driver) == v + 2


def test_pending_order_is_swap_remove(driver):
    setup(driver, history=False, bridge=False, dual_write=(True, False))
    for i in (11, 12, 13):
        driver.chain.run(LB + "set_expected_hash", [u64(i), "hex:aa"])
    assert pending(driver) == [11, 12, 13]
    driver.run(LB + "clear_expected_hash", [u64(11)])
    assert pending(driver) == [13, 12]
    driver.chain.run(LB + "set_expected_hash", [u64(14), "hex:aa"])
    driver.chain.run(LB + "set_expected_hash", [u64(15), "hex:aa"])
    assert pending(driver) == [13, 12, 14, 15]
    # re-set of an existing key: swap-removed (15 takes its slot), then appended
    driver.run(LB + "set_expected_hash", [u64(12), "hex:bb"])
    assert pending(driver) == [13, 15, 14, 12]
    # removing the last key moves nothing
    driver.run(LB + "clear_expected_hash", [u64(12)])
    assert pending(driver) == [13, 15, 14]
    # re-set of the last key keeps it last
    driver.run(LB + "set_expected_hash", [u64(14), "hex:cc"])
    assert pending(driver) == [13, 15, 14]
    # update_flags without control-removal keeps the list
    driver.chain.run(LB + "update_flags", [b(False), b(False), b(False)])
    assert pending(driver) == [13, 15, 14]


def test_mirror_config_toggles_and_no_ops(driver):
    txn = driver.run(LB + "enable_legacy_mirror")
    assert event_names(txn) == [] and driver.view(LB + "is_mirror_enabled") == [True]
    res = snapshot(driver.chain)["resources"]
    driver.run(LB + "enable_legacy_mirror")  # already enabled: no-op
    assert snapshot(driver.chain)["resources"] == res
    driver.run(LB + "disable_legacy_mirror")
    assert driver.view(LB + "is_mirror_enabled") == [False]
    res = snapshot(driver.chain)["resources"]
    driver.run(LB + "disable_legacy_mirror")  # already disabled: no-op
    assert snapshot(driver.chain)["resources"] == res
    assert driver.chain.events() == []


# -- history: record_summary (finalisation) --------------------------------------------------------


def test_finalize_without_ledger_aborts_and_rolls_back_the_mirror_write(driver):
    setup(driver, history=False, dual_write=(True, False), mirror=True)
    aborts(driver, E_HISTORY_MISSING, "history", lambda: driver.finalize(summary(1)))
    assert legacy(driver, 1) is None and driver.chain.events("LegacySummaryEvent") == []
    # mirror_summary_admin with the mirror enabled reads the ledger: missing
    aborts(driver, E_HISTORY_MISSING, "history", lambda: driver.run(H + "mirror_summary_admin", [u64(1)]))
    aborts(driver, E_HISTORY_MISSING, "history", lambda: driver.run(H + "rollback_legacy_summary_admin", [u64(1)]))


def test_finalize_events_in_order_and_fields(driver):
    setup(driver, dual_write=(True, True), mirror=True)
    s = summary(3, primary_type=2, tags_mask=(1 << 63) | 5, finalized_at=1767391299)
    h = shash(s)
    driver.chain.run(LB + "set_expected_hash", [u64(3), hx(h)])
    v = version(driver)
    out = driver.finalize(s)
    assert out["version"] == v + 1
    # mirror, then notify, then store
    assert out["events"] == ["LegacySummaryEvent", "ArchiveDualWriteCompletedEvent", "LotteryFinalizedEvent"]
    lm, lo = driver.chain.addresses.lottery_multi, driver.chain.addresses.lottery
    evs = driver.chain.events(lottery_id=3)
    evs = [e for e in evs if e["version"] == out["version"]]
    assert [(e["type"], e["data"], e["sequence_number"]) for e in evs] == [
        (f"{lo}::history_bridge::LegacySummaryEvent",
         {"lottery_id": "3", "archive_hash": ox(h), "finalized_at": "1767391299"}, "0"),
        (f"{lm}::legacy_bridge::ArchiveDualWriteCompletedEvent",
         {"event_version": 1, "event_category": 8, "lottery_id": "3", "archive_hash": ox(h),
          "finalized_at": "1767391299"}, "0"),
        (f"{lm}::history::LotteryFinalizedEvent",
         {"event_version": 1, "event_category": 2, "id": "3", "archive_slot_hash": ox(h), "primary_type": 2,
          "tags_mask": str((1 << 63) | 5)}, "0"),
    ]
    assert all(e["transaction_hash"] == out["transaction_hash"] for e in evs)
    assert driver.view(H + "get_summary", [u64(3)]) == [s.to_move_json()]
    assert driver.view(H + "is_legacy_summary", [u64(3)]) == [False]


def test_re_record_same_and_different_summary(driver):
    setup(driver)  # no control: notify returns at once
    s = summary(1)
    driver.finalize(s)
    driver.finalize(summary(2))
    out = driver.finalize(s)  # same bytes: replaced, one more event, order kept
    assert out["events"] == ["LotteryFinalizedEvent"]
    assert driver.view(H + "list_finalized", [u64(0), u64(10)]) == [["2", "1"]]
    assert [e["sequence_number"] for e in events(driver, "LotteryFinalizedEvent")] == ["0", "1", "2"]
    e = aborts(driver, E_HISTORY_MISMATCH, "history", lambda: driver.finalize(summary(1, tickets_sold=1)))
    assert e.module.endswith("::history")
    assert driver.view(H + "get_summary", [u64(1)]) == [s.to_move_json()]


def test_finalize_over_an_imported_summary_is_not_legacy(driver):
    setup(driver)
    s = summary(4)
    driver.chain.run(H + "import_legacy_summary_admin", [u64(4), hx(s.to_bcs()), hx(shash(s))])
    aborts(driver, E_HISTORY_NOT_LEGACY, "history", lambda: driver.finalize(s))


def test_list_finalized_newest_first_with_offset_and_limit(driver):
    setup(driver)
    for i in (5, 3, 9, 1):
        driver.chain.finalize(summary(i))
    lf = lambda start, limit: driver.view1(H + "list_finalized", [u64(start), u64(limit)])
    assert lf(0, 10) == ["1", "9", "3", "5"]
    assert lf(1, 2) == ["9", "3"]
    assert lf(3, 1000) == ["5"]
    assert lf(4, 10) == [] and lf(2**64 - 1, 10) == [] and lf(0, 0) == []
    aborts(driver, E_PAGINATION_LIMIT, "history", lambda: lf(0, 1001))
    aborts(driver, E_PAGINATION_LIMIT, "history", lambda: lf(0, 2**64 - 1))


def test_get_summary_of_an_unknown_id_is_table_key_not_found(driver):
    setup(driver)
    driver.chain.finalize(summary(1))
    e = aborts(driver, E_KEY_NOT_FOUND, "table", lambda: driver.view(H + "get_summary", [u64(2)]))
    assert e.code == 2
    assert driver.view(H + "is_legacy_summary", [u64(2)]) == [False]


# -- the seven dual-write scenarios of the packages' own tests ----------------------------------------


def test_scenario_1_expected_hash_consumed_on_finalize(driver):
    setup(driver, dual_write=(True, True), mirror=True)
    s = summary(1)
    driver.run(LB + "set_expected_hash", [u64(1), hx(shash(s))])
    assert status(driver, 1)["expected_hash"] == {"vec": [ox(shash(s))]}
    out = driver.finalize(s)
    assert "ArchiveDualWriteCompletedEvent" in out["events"]
    (done,) = events(driver, "ArchiveDualWriteCompletedEvent", 1)
    assert done["data"]["archive_hash"] == ox(shash(s))
    assert status(driver, 1) == {"enabled": True, "abort_on_mismatch": True, "abort_on_missing": True,
                                 "expected_hash": {"vec": []}}
    assert pending(driver) == []


def test_scenario_2_missing_expectation_aborts(driver):
    setup(driver, dual_write=(True, True), mirror=True)
    e = aborts(driver, E_HISTORY_EXPECTED_MISSING, "legacy_bridge", lambda: driver.finalize(summary(1)))
    assert e.code == 0x1B05
    # the mirror write made before notify is gone, and nothing was stored
    assert legacy(driver, 1) is None
    assert driver.chain.events() == []
    aborts(driver, E_KEY_NOT_FOUND, "table", lambda: driver.view(H + "get_summary", [u64(1)]))


def test_scenario_3_mismatch_aborts(driver):
    setup(driver, dual_write=(True, False), mirror=True)
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(sha3(b"something else"))])
    before_events = driver.chain.events()
    aborts(driver, E_HISTORY_MISMATCH, "legacy_bridge", lambda: driver.finalize(summary(1)))
    assert legacy(driver, 1) is None and driver.chain.events() == before_events
    assert status(driver, 1)["expected_hash"] == {"vec": [ox(sha3(b"something else"))]}


def test_scenario_4_missing_allowed(driver):
    setup(driver, dual_write=(True, False), mirror=True)
    s = summary(1)
    out = driver.finalize(s)
    assert out["events"] == ["LegacySummaryEvent", "LotteryFinalizedEvent"]
    assert driver.view(H + "get_summary", [u64(1)]) == [s.to_move_json()]
    assert legacy(driver, 1) is not None and pending(driver) == []


def test_scenario_5_mirror_writes_the_legacy_copy(driver):
    setup(driver, dual_write=(True, False), mirror=True)
    s = summary(2, finalized_at=1767400000)
    driver.finalize(s)
    copy = legacy(driver, 2)
    assert LotterySummary.from_bcs(copy.summary_bcs) == s
    assert copy.summary_bcs == s.to_bcs()
    assert copy.archive_hash == sha3(copy.summary_bcs) == shash(s)
    assert copy.finalized_at == 1767400000
    assert driver.view(HB + "get_summary", [u64(2)]) == [{"vec": [
        {"summary_bcs": ox(s.to_bcs()), "archive_hash": ox(shash(s)), "finalized_at": "1767400000"}]}]
    assert driver.view(HB + "get_summary", [u64(3)]) == [{"vec": []}]
    (ev,) = events(driver, "LegacySummaryEvent", 2)
    assert ev["data"] == {"lottery_id": "2", "archive_hash": ox(shash(s)), "finalized_at": "1767400000"}


def test_scenario_6_mismatch_with_abort_off_stays_pending_until_cleared(driver):
    setup(driver, dual_write=(False, False), mirror=True)
    wrong = sha3(b"wrong")
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(wrong)])
    out = driver.finalize(summary(1))
    assert "ArchiveDualWriteCompletedEvent" not in out["events"]
    assert status(driver, 1)["expected_hash"] == {"vec": [ox(wrong)]}
    assert pending(driver) == [1]
    assert legacy(driver, 1).archive_hash == shash(summary(1))
    driver.run(LB + "clear_expected_hash", [u64(1)])
    assert pending(driver) == [] and status(driver, 1)["expected_hash"] == {"vec": []}
    assert events(driver, "ArchiveDualWriteCompletedEvent") == []


def test_scenario_7_pending_order_before_and_after_a_finalize(driver):
    setup(driver, dual_write=(True, True), mirror=True)
    for i in (11, 12, 13):
        driver.run(LB + "set_expected_hash", [u64(i), hx(shash(summary(i)))])
    assert pending(driver) == [11, 12, 13]
    driver.finalize(summary(11))
    assert pending(driver) == [13, 12]
    driver.finalize(summary(12))
    assert pending(driver) == [13]


def test_notify_is_a_no_op_when_disabled_or_without_control(driver):
    setup(driver, mirror=True)
    driver.finalize(summary(1))  # no control at all
    driver.chain.run(LB + "init_dual_write", [b(True), b(True)])
    driver.chain.run(LB + "set_expected_hash", [u64(2), hx(sha3(b"x"))])
    driver.run(LB + "update_flags", [b(False), b(True), b(True)])
    out = driver.finalize(summary(2))  # mismatch and missing would abort if enabled
    out3 = driver.finalize(summary(3))
    assert out["events"] == out3["events"] == ["LegacySummaryEvent", "LotteryFinalizedEvent"]
    assert pending(driver) == [2]  # not consumed while disabled


def test_mirror_is_a_no_op_without_the_bridge(driver):
    setup(driver, bridge=False, dual_write=(True, False), mirror=True)
    out = driver.finalize(summary(1))
    assert out["events"] == ["LotteryFinalizedEvent"]
    assert legacy(driver, 1) is None and driver.view(HB + "is_initialized") == [False]
    txn = driver.run(H + "mirror_summary_admin", [u64(1)])
    assert txn["status"] == "Success" and event_names(txn) == []
    assert legacy(driver, 1) is None


# -- history: admin functions -------------------------------------------------------------------------


def test_mirror_summary_admin_writes_canonical_copy_and_notifies(driver):
    setup(driver, dual_write=(True, False))
    s = summary(1)
    driver.chain.finalize(s)  # mirror disabled at finalisation: no legacy copy
    assert legacy(driver, 1) is None
    driver.chain.run(LB + "enable_legacy_mirror")
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(shash(s))])
    txn = driver.run(H + "mirror_summary_admin", [u64(1)])
    assert event_names(txn) == ["LegacySummaryEvent", "ArchiveDualWriteCompletedEvent"]
    assert legacy(driver, 1) == LegacySummary(summary_bcs=s.to_bcs(), archive_hash=shash(s),
                                              finalized_at=s.finalized_at)
    assert pending(driver) == []
    # an unknown id with the mirror enabled: the summaries table has no such key
    aborts(driver, E_KEY_NOT_FOUND, "table", lambda: driver.run(H + "mirror_summary_admin", [u64(99)]))


def test_mirror_summary_admin_with_mirror_disabled_is_a_successful_no_op(driver):
    setup(driver, dual_write=(True, True))
    s = summary(1)
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(shash(s))])
    driver.chain.finalize(s)
    driver.chain.write_legacy_raw(1, LegacySummary(summary_bcs=b"\x00", archive_hash=b"\x01", finalized_at=1))
    before = snapshot(driver.chain)
    txn = driver.run(H + "mirror_summary_admin", [u64(1)])
    assert txn["status"] == "Success" and event_names(txn) == []
    # even for an unknown id, and even with abort_on_missing on: nothing is read, nothing changes
    driver.run(H + "mirror_summary_admin", [u64(12345)])
    after = snapshot(driver.chain)
    assert after["legacy"] == before["legacy"] and after["events"] == before["events"]
    assert after["expected"] == before["expected"]
    assert legacy(driver, 1).summary_bcs == b"\x00"  # not healed


def test_heal_order_under_abort_on_missing(driver):
    setup(driver, dual_write=(True, True), mirror=True)
    s = summary(1)
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(shash(s))])
    driver.chain.finalize(s)
    drifted = LegacySummary(summary_bcs=non_canonical_bytes(s), archive_hash=shash(s), finalized_at=s.finalized_at)
    driver.chain.write_legacy_raw(1, drifted)
    # mirror alone: 0x1B05, the legacy write it made is rolled back
    aborts(driver, E_HISTORY_EXPECTED_MISSING, "legacy_bridge",
           lambda: driver.run(H + "mirror_summary_admin", [u64(1)]))
    assert legacy(driver, 1) == drifted
    # the working order: set the hash of the stored summary, then mirror
    stored = LotterySummary.from_move_json(driver.view1(H + "get_summary", [u64(1)]))
    driver.run(LB + "set_expected_hash", [u64(1), hx(shash(stored))])
    txn = driver.run(H + "mirror_summary_admin", [u64(1)])
    assert event_names(txn) == ["LegacySummaryEvent", "ArchiveDualWriteCompletedEvent"]
    assert legacy(driver, 1).summary_bcs == s.to_bcs()
    assert status(driver, 1)["expected_hash"] == {"vec": []}
    assert len(events(driver, "ArchiveDualWriteCompletedEvent", 1)) == 2


def test_runbook_order_only_works_with_abort_on_missing_off_and_leaves_pending(driver):
    setup(driver, dual_write=(True, False), mirror=True)
    s = summary(1)
    driver.chain.finalize(s)
    driver.run(H + "mirror_summary_admin", [u64(1)])
    driver.run(LB + "set_expected_hash", [u64(1), hx(shash(s))])
    assert pending(driver) == [1]


def test_import_legacy_summary(driver):
    setup(driver, dual_write=(True, True), mirror=True)
    s = summary(7, primary_type=3, tags_mask=17)
    data, h = s.to_bcs(), shash(s)
    driver.chain.run(LB + "set_expected_hash", [u64(7), hx(h)])
    txn = driver.run(H + "import_legacy_summary_admin", [u64(7), hx(data), hx(h)])
    assert event_names(txn) == ["LegacySummaryEvent", "ArchiveDualWriteCompletedEvent", "LotteryFinalizedEvent",
                                "LegacySummaryImportedEvent"]
    imported = txn["output"]["Move"]["events"][-1]
    assert imported["type"] == f"{driver.chain.addresses.lottery_multi}::history::LegacySummaryImportedEvent"
    assert imported["data"] == {"event_version": 1, "event_category": 2, "lottery_id": "7", "archive_hash": ox(h),
                                "finalized_at": str(s.finalized_at), "primary_type": 3, "tags_mask": "17"}
    assert driver.view(H + "is_legacy_summary", [u64(7)]) == [True]
    assert driver.view(H + "get_summary", [u64(7)]) == [s.to_move_json()]
    assert legacy(driver, 7).summary_bcs == data
    # a legacy write may replace a legacy summary
    s2 = summary(7, primary_type=0)
    driver.chain.run(LB + "set_expected_hash", [u64(7), hx(shash(s2))])
    txn = driver.run(H + "import_legacy_summary_admin", [u64(7), hx(s2.to_bcs()), hx(shash(s2))], profile="default")
    assert driver.view(H + "get_summary", [u64(7)]) == [s2.to_move_json()]
    assert driver.view(H + "list_finalized", [u64(0), u64(5)]) == [["7"]]


def _non_minimal_everywhere(s: LotterySummary) -> bytes:
    """Every byte-vector length as ULEB128 with extra zero groups (2 and 3 bytes)."""
    from dualwrite.bcs import BYTES

    out = bytearray()
    for i, (name, mtype) in enumerate(LotterySummary.__layout__.fields):
        value = getattr(s, name)
        if mtype is BYTES:
            n = len(value)
            assert n < 0x80
            out += bytes([n | 0x80, 0x80, 0x00]) if i % 2 else bytes([n | 0x80, 0x00])
            out += value
        else:
            mtype.encode(value, out, name)
    return bytes(out)


@pytest.mark.parametrize("form", ["first-vector", "every-vector"])
def test_import_accepts_non_minimal_uleb128(driver, form):
    setup(driver, dual_write=(True, False), mirror=True)
    s = summary(8)
    data = non_canonical_bytes(s) if form == "first-vector" else _non_minimal_everywhere(s)
    assert data != s.to_bcs() and LotterySummary.from_bcs(data, lenient_uleb=True) == s
    h = sha3(data)
    assert h != shash(s)
    txn = driver.run(H + "import_legacy_summary_admin", [u64(8), hx(data), hx(h)])
    assert txn["status"] == "Success"
    copy = legacy(driver, 8)
    assert copy.summary_bcs == data and copy.archive_hash == h  # the bytes as given, their hash
    (fin,) = events(driver, "LotteryFinalizedEvent", 8)
    assert fin["data"]["archive_slot_hash"] == ox(h)
    assert driver.view(H + "get_summary", [u64(8)]) == [s.to_move_json()]  # equal fields
    # the canonical hash does not pass for these bytes
    aborts(driver, E_HISTORY_IMPORT_HASH, "history",
           lambda: driver.run(H + "import_legacy_summary_admin", [u64(8), hx(data), hx(shash(s))]))


def test_import_errors_in_order(driver):
    setup(driver, dual_write=(True, False), mirror=True)
    s = summary(9)
    data, h = s.to_bcs(), shash(s)
    imp = lambda lid, d, eh: (lambda: driver.run(H + "import_legacy_summary_admin", [u64(lid), hx(d), hx(eh)]))
    # decode: garbage, truncated, trailing bytes (even with their own hash), a bad bool-free byte count
    aborts(driver, E_HISTORY_DECODE, "history", imp(9, b"\x01\x02", sha3(b"\x01\x02")))
    aborts(driver, E_HISTORY_DECODE, "history", imp(9, data[:-1], sha3(data[:-1])))
    aborts(driver, E_HISTORY_DECODE, "history", imp(9, data + b"\x00", sha3(data + b"\x00")))
    aborts(driver, E_HISTORY_DECODE, "history", imp(9, b"", sha3(b"")))
    # decode comes before the id and the hash checks
    aborts(driver, E_HISTORY_DECODE, "history", imp(10, data + b"\x00", b"\x00"))
    # id, then hash
    aborts(driver, E_HISTORY_ID_MISMATCH, "history", imp(10, data, b"\x00"))
    aborts(driver, E_HISTORY_IMPORT_HASH, "history", imp(9, data, sha3(b"other")))
    aborts(driver, E_HISTORY_IMPORT_HASH, "history", imp(9, data, h[:31]))
    # notify runs on import too: a mismatching expectation aborts (abort_on_mismatch), all rolled back
    s11 = summary(11)
    driver.chain.run(LB + "set_expected_hash", [u64(11), hx(sha3(b"not it"))])
    aborts(driver, E_HISTORY_MISMATCH, "legacy_bridge", imp(11, s11.to_bcs(), shash(s11)))
    assert legacy(driver, 11) is None and pending(driver) == [11]
    # not legacy: the id was finalised the normal way
    driver.chain.finalize(s)
    aborts(driver, E_HISTORY_NOT_LEGACY, "history", imp(9, data, h))


def test_import_without_ledger_rolls_back_mirror_and_notify(driver):
    setup(driver, history=False, dual_write=(True, True), mirror=True)
    s = summary(9)
    driver.chain.run(LB + "set_expected_hash", [u64(9), hx(shash(s))])
    aborts(driver, E_HISTORY_MISSING, "history",
           lambda: driver.run(H + "import_legacy_summary_admin", [u64(9), hx(s.to_bcs()), hx(shash(s))]))
    assert pending(driver) == [9] and legacy(driver, 9) is None


def test_rollback_legacy_summary(driver):
    setup(driver, mirror=True)
    s1, s2, s3 = summary(1), summary(2, primary_type=2, tags_mask=8), summary(3)
    driver.chain.finalize(s1)
    driver.chain.run(H + "import_legacy_summary_admin", [u64(2), hx(s2.to_bcs()), hx(shash(s2))])
    driver.chain.finalize(s3)
    aborts(driver, E_HISTORY_SUMMARY_MISSING, "history",
           lambda: driver.run(H + "rollback_legacy_summary_admin", [u64(4)]))
    aborts(driver, E_HISTORY_NOT_LEGACY, "history", lambda: driver.run(H + "rollback_legacy_summary_admin", [u64(1)]))
    legacy_copy = legacy(driver, 2)
    txn = driver.run(H + "rollback_legacy_summary_admin", [u64(2)])
    (ev,) = txn["output"]["Move"]["events"]
    assert ev["type"].endswith("::history::LegacySummaryRolledBackEvent")
    assert ev["data"] == {"event_version": 1, "event_category": 2, "lottery_id": "2", "archive_hash": ox(shash(s2)),
                          "finalized_at": str(s2.finalized_at), "primary_type": 2, "tags_mask": "8"}
    assert driver.view(H + "list_finalized", [u64(0), u64(10)]) == [["3", "1"]]  # order kept
    assert driver.view(H + "is_legacy_summary", [u64(2)]) == [False]
    aborts(driver, E_KEY_NOT_FOUND, "table", lambda: driver.view(H + "get_summary", [u64(2)]))
    assert legacy(driver, 2) == legacy_copy  # the legacy archive is not touched
    aborts(driver, E_HISTORY_SUMMARY_MISSING, "history",
           lambda: driver.run(H + "rollback_legacy_summary_admin", [u64(2)]))
    # after a rollback the id can be finalised normally, and goes to the front
    driver.chain.finalize(s2)
    assert driver.view(H + "list_finalized", [u64(0), u64(10)]) == [["2", "3", "1"]]


def test_update_legacy_classification(driver):
    setup(driver, dual_write=(True, True), mirror=True)
    s = summary(5, primary_type=0, tags_mask=0)
    driver.chain.run(LB + "set_expected_hash", [u64(5), hx(shash(s))])
    driver.chain.run(H + "import_legacy_summary_admin", [u64(5), hx(s.to_bcs()), hx(shash(s))])
    aborts(driver, E_HISTORY_SUMMARY_MISSING, "history",
           lambda: driver.run(H + "update_legacy_classification_admin", [u64(6), "u8:1", u64(1)]))
    driver.chain.run(LB + "set_expected_hash", [u64(6), hx(shash(summary(6)))])
    driver.chain.finalize(summary(6))
    aborts(driver, E_HISTORY_NOT_LEGACY, "history",
           lambda: driver.run(H + "update_legacy_classification_admin", [u64(6), "u8:1", u64(1)]))
    # success: fields updated, re-encoded, mirrored, no notify (abort_on_missing is on and nothing is expected)
    txn = driver.run(H + "update_legacy_classification_admin", [u64(5), "u8:3", u64(2**63 + 1)])
    new = s.model_copy(update={"primary_type": 3, "tags_mask": 2**63 + 1})
    assert event_names(txn) == ["LegacySummaryEvent", "LegacySummaryClassificationUpdatedEvent"]
    ev = txn["output"]["Move"]["events"][-1]
    assert ev["data"] == {"event_version": 1, "event_category": 2, "lottery_id": "5", "archive_hash": ox(shash(new)),
                          "primary_type": 3, "tags_mask": str(2**63 + 1)}
    assert driver.view(H + "get_summary", [u64(5)]) == [new.to_move_json()]
    assert legacy(driver, 5) == LegacySummary(summary_bcs=new.to_bcs(), archive_hash=shash(new),
                                              finalized_at=new.finalized_at)
    assert driver.view(H + "is_legacy_summary", [u64(5)]) == [True]
    # no Completed event for 5 beyond the import's own
    assert len(events(driver, "ArchiveDualWriteCompletedEvent", 5)) == 1


# -- events ----------------------------------------------------------------------------------------------


def test_sequence_numbers_are_per_handle(driver):
    setup(driver, dual_write=(True, False), mirror=True)
    for i in range(3):
        driver.run(LB + "set_expected_hash", [u64(i), hx(shash(summary(i)))])
    for i in range(3):
        driver.finalize(summary(i))
    for name in ("ArchiveDualWriteStartedEvent", "ArchiveDualWriteCompletedEvent", "LegacySummaryEvent",
                 "LotteryFinalizedEvent"):
        evs = events(driver, name)
        assert [e["sequence_number"] for e in evs] == ["0", "1", "2"], name
        assert [e["data"].get("lottery_id", e["data"].get("id")) for e in evs] == ["0", "1", "2"]
        assert len({e["type"] for e in evs}) == 1
    versions = [e["version"] for e in driver.chain.events()]
    assert versions == sorted(versions)


# -- atomicity ----------------------------------------------------------------------------------------


def test_multi_step_transaction_rolls_back_whole(driver):
    """Import: mirror writes, notify consumes the expectation and emits Completed, store aborts 0x1B09."""
    setup(driver, dual_write=(True, True), mirror=True)
    s = summary(1)
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(sha3(b"x"))])
    driver.chain.run(LB + "update_flags", [b(True), b(False), b(False)])
    driver.chain.finalize(s)  # 1 finalised normally (the mismatching expectation stays pending)
    old_copy = LegacySummary(summary_bcs=b"\xde\xad", archive_hash=b"\xbe\xef", finalized_at=5)
    driver.chain.write_legacy_raw(1, old_copy)
    for i in (2, 3):
        driver.chain.run(LB + "set_expected_hash", [u64(i), "hex:00"])
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(shash(s))])  # 1 moves to the end
    assert pending(driver) == [3, 2, 1]
    v = version(driver)
    aborts(driver, E_HISTORY_NOT_LEGACY, "history",
           lambda: driver.run(H + "import_legacy_summary_admin", [u64(1), hx(s.to_bcs()), hx(shash(s))]))
    assert pending(driver) == [3, 2, 1]  # the swap-remove by notify is undone too
    assert legacy(driver, 1) == old_copy
    assert version(driver) == v
    # record_summary: mirror + notify (consumes 1) + store aborts 0x1B02 (different hash): all undone
    other = summary(1, tickets_sold=2)
    driver.chain.run(LB + "set_expected_hash", [u64(1), hx(shash(other))])
    aborts(driver, E_HISTORY_MISMATCH, "history", lambda: driver.finalize(other))
    assert pending(driver) == [3, 2, 1] and legacy(driver, 1) == old_copy


# -- dualwrite-supra: the CLI's own behaviour ------------------------------------------------------------


def _assert_cli_error(c: Completed, *needles: str) -> None:
    assert c.returncode == 1, (c.returncode, c.stdout, c.stderr)
    assert c.stdout == ""
    assert "Traceback" not in c.stderr
    err = [ln for ln in c.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(err) == 1, c.stderr
    for n in needles:
        assert n in err[0], err[0]


@pytest.mark.parametrize("tool,fid,args,needle", [
    ("run", LB + "no_such_function", [], "not found"),
    ("run", "lottery_multi::no_such_module::f", [], "not found"),
    ("run", "0x1::legacy_bridge::set_expected_hash", [u64(1), "hex:aa"], "not found"),
    ("run", "lottery_multi::legacy_bridge", [], "Invalid function id"),
    ("run", "0xZZ::legacy_bridge::is_enabled", [], "0xZZ"),
    ("run", H + "record_summary", [u64(1), "hex:00"], "not an entry"),
    ("run", LB + "is_enabled", [], "view function"),
    ("view", LB + "set_expected_hash", [u64(1), "hex:aa"], "not a view function"),
    ("run", LB + "set_expected_hash", ["bool:true", "hex:aa"], "argument 1"),
    ("run", LB + "set_expected_hash", ["u8:1", "hex:aa"], "argument 1"),
    ("run", LB + "set_expected_hash", [u64(1), "u64:5"], "argument 2"),
    ("run", LB + "set_expected_hash", ["x:1", "hex:aa"], "TYPE:VALUE"),
    ("run", LB + "set_expected_hash", ["1", "hex:aa"], "TYPE:VALUE"),
    ("run", LB + "set_expected_hash", ["u64:abc", "hex:aa"], "not a decimal"),
    ("run", LB + "set_expected_hash", ["u64:-1", "hex:aa"], "not a decimal"),
    ("run", LB + "set_expected_hash", [u64(2**64), "hex:aa"], "does not fit"),
    ("run", LB + "set_expected_hash", [u64(1), "hex:abc"], "odd number"),
    ("run", LB + "set_expected_hash", [u64(1), "hex:zz"], "not hex"),
    ("run", LB + "set_expected_hash", [u64(1), "u8:[1,2"], "argument 2"),
    ("run", LB + "set_expected_hash", [u64(1), "u8:[1,256]"], "argument 2"),
    ("run", LB + "init_dual_write", ["bool:yes", "bool:true"], "true or false"),
    ("run", LB + "set_expected_hash", [u64(1)], "NUMBER_OF_ARGUMENTS_MISMATCH"),
    ("run", LB + "set_expected_hash", [u64(1), "hex:aa", "hex:bb"], "NUMBER_OF_ARGUMENTS_MISMATCH"),
    ("view", LB + "dual_write_status", [], "NUMBER_OF_ARGUMENTS_MISMATCH"),
    ("view", H + "list_finalized", [u64(0), "u32:5"], "argument 2"),
])
def test_supra_cli_input_errors(sub, tool, fid, args, needle):
    setup(sub, dual_write=(True, False))
    before = snapshot(sub.chain)
    c = sub.exec(sub.supra_argv(tool, fid, args, "default" if tool == "run" else None))
    _assert_cli_error(c, needle)
    assert snapshot(sub.chain) == before


def test_supra_cli_accepts_vector_and_raw_forms(sub):
    setup(sub, history=False, bridge=False, dual_write=(True, False))
    sub.run(LB + "set_expected_hash", [u64(1), "u8:[1,2,255]"])
    sub.run(LB + "set_expected_hash", [u64(2), "string:ab"])
    sub.run(LB + "set_expected_hash", ["raw:0300000000000000", "raw:02cafe"])
    lm = sub.chain.addresses.lottery_multi
    sub.run(f"{lm}::legacy_bridge::set_expected_hash", [u64(4), "hex:0xAB"])
    assert [status(sub, i)["expected_hash"] for i in (1, 2, 3, 4)] == [
        {"vec": ["0x0102ff"]}, {"vec": ["0x6162"]}, {"vec": ["0xcafe"]}, {"vec": ["0xab"]}]


@pytest.mark.parametrize("stdin", ["devnull", "closed", "no"])
def test_supra_cli_without_gas_flags_does_not_submit_unattended(sub, stdin):
    setup(sub, history=False, bridge=False, dual_write=(True, False))
    before = snapshot(sub.chain)
    argv = sub.supra_argv("run", LB + "set_expected_hash", [u64(1), "hex:aa"], gas=False)
    if stdin == "closed":
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=sub.env(), timeout=60,
                              preexec_fn=lambda: os.close(0))
        c = Completed(argv, proc)
    elif stdin == "no":
        c = sub.exec(argv, input="no\n")
    else:
        c = sub.exec(argv)
    _assert_cli_error(c, "Aborted")
    assert snapshot(sub.chain) == before
    # one flag alone is not enough either
    c = sub.exec(argv + ["--max-gas", "100000"])
    _assert_cli_error(c, "Aborted")
    assert snapshot(sub.chain) == before


def test_supra_cli_without_gas_flags_submits_on_yes_or_assume_yes(sub):
    setup(sub, history=False, bridge=False, dual_write=(True, False))
    argv = sub.supra_argv("run", LB + "set_expected_hash", [u64(1), "hex:aa"], gas=False)
    c = sub.exec(argv, input="yes\n")
    assert c.returncode == 0 and json.loads(c.stdout)["status"] == "Success"
    c = sub.exec(sub.supra_argv("run", LB + "set_expected_hash", [u64(2), "hex:aa"], gas=False) + ["--assume-yes"])
    assert c.returncode == 0 and json.loads(c.stdout)["status"] == "Success"
    assert pending(sub) == [1, 2]
    # an abort found by the simulation is reported as such, before any question
    c = sub.exec(sub.supra_argv("run", LB + "init_dual_write", [b(True), b(True)], gas=False))
    _assert_cli_error(c, "E_ALREADY_INITIALIZED(0x1201)")
    assert "[yes/no]" not in c.stderr


def test_out_of_gas_is_a_failed_transaction_that_writes_nothing(sub):
    setup(sub, history=False, bridge=False, dual_write=(True, False))
    before = snapshot(sub.chain)
    argv = sub.supra_argv("run", LB + "set_expected_hash", [u64(1), "hex:aa"], gas=False)
    c = sub.exec(argv + ["--gas-unit-price", "100", "--max-gas", "5"])
    assert c.returncode == 0 and "Traceback" not in c.stderr
    txn = json.loads(c.stdout)
    assert txn["status"] == "Fail" and txn["output"]["Move"]["vm_status"] == "OUT_OF_GAS"
    assert txn["output"]["Move"]["events"] == []
    assert snapshot(sub.chain) == before


@pytest.mark.parametrize("style", ["node", "named", "code", "abort-code", "vmerror"])
def test_supra_cli_abort_styles_carry_the_code(tmp_path, style):
    d = Subprocess(tmp_path / "state.sqlite", abort_style=style)
    try:
        setup(d, dual_write=(True, True))
        lm = d.chain.addresses.lottery_multi
        # a run abort, on stderr
        e = aborts(d, E_ALREADY_INITIALIZED, "legacy_bridge", lambda: d.run(LB + "init_dual_write", [b(True), b(True)]))
        assert e.module == f"{lm}::legacy_bridge"
        text = d.last.stderr
        assert {"node": "E_ALREADY_INITIALIZED(0x1201)", "named": "E_ALREADY_INITIALIZED(0x1201)", "code": ": 0x1201",
                "abort-code": ": abort code 4609", "vmerror": "Some(4609)"}[style] in text
        # a view abort, in the {"message"} body, exit 0
        aborts(d, E_PAGINATION_LIMIT, "history", lambda: d.view(H + "list_finalized", [u64(0), u64(1001)]))
        assert d.last.returncode == 0 and "message" in json.loads(d.last.stdout)
        # the table abort
        e = aborts(d, E_KEY_NOT_FOUND, "table", lambda: d.view(H + "get_summary", [u64(1)]))
        assert e.code == 2
        # the raw text of each shape parses to the same code
        assert parse_abort(d.last.stdout).code == 2
        if style == "node":  # the default: what nodes v11.7+ answer
            assert json.loads(d.last.stdout)["message"] == \
                "Failed to execute view function: ABORTED with sub status 2 at location Module vrf_hub::table"
    finally:
        d.close()
