"""Every state ``dualwrite diff`` can report, each built by real actions on the embedded chain.

Setup goes through the chain's entry functions (``Chain.run`` with the admin profiles,
``Chain.finalize`` for ``history::record_summary``), drift through ``dualwrite sim tamper``
(the CLI, in-process); the state is then read back through the ``sim`` backend by
``audit.diff`` — nothing here constructs a ``LotteryDiff`` or a chain object by hand,
except the ``classify`` unit tests at the end (precedence, and ``hash_mismatch``).

``hash_mismatch`` is unreachable, not only through the chain but through ``classify``
itself: once the legacy bytes decode, carry their own hash as ``archive_hash``, have
no field drift and are byte-identical to the canonical encoding of the archived
summary, all three hashes are the same hash. The property test below proves that
over arbitrary inputs, and that every hash disagreement lands in a more precise state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dualwrite import bridge
from dualwrite.audit.diff import REPAIRABLE, State, classify
from dualwrite.cli.main import cli
from dualwrite.demo import make_summary
from dualwrite.errors import MoveAbort
from dualwrite.sim.tamper import non_canonical_bytes
from dualwrite.structs import LegacySummary, LotterySummary

from tests.audit_world import Out, World, sha3, world  # noqa: F401


def hx(b: bytes) -> str:
    return "0x" + b.hex()


def canonical_hash(s: LotterySummary) -> str:
    return hx(sha3(s.to_bcs()))


# -- ok ---------------------------------------------------------------------------------------------------


def test_ok_after_finalise_with_mirror_on_and_expectation_set(world: World) -> None:
    world.init(abort_on_missing=True)
    (s,) = [make_summary(3)]
    world.expect(3, sha3(s.to_bcs()))
    world.finalize(3)
    assert "ArchiveDualWriteCompletedEvent" in world.event_names(3)
    d = world.diff(3)
    assert d.state is State.OK and d.ok
    assert d.history_hash == d.legacy_bytes_hash == d.legacy_archive_hash == canonical_hash(s)
    assert d.expected_hash is None and d.pending_will_match is None and not d.fields
    assert d.reason == "legacy copy is exactly the archived summary"
    assert d.to_json()["state"] == "ok"


# -- missing_legacy ---------------------------------------------------------------------------------------


def test_missing_legacy_when_finalised_with_the_mirror_disabled(world: World) -> None:
    world.init(mirror=False)
    (s,) = world.finalize(4)
    assert "LegacySummaryEvent" not in world.event_names(4)
    d = world.diff(4)
    assert d.state is State.MISSING_LEGACY
    assert d.history_hash == canonical_hash(s)
    assert d.legacy_bytes_hash is None and d.legacy_archive_hash is None
    assert d.reason == "archived summary has no legacy copy"


def test_missing_legacy_when_the_bridge_is_not_initialised(world: World) -> None:
    world.init(bridge_on=False)
    world.finalize(5)
    assert world.diff(5).state is State.MISSING_LEGACY


def test_missing_legacy_after_a_deleted_copy(world: World) -> None:
    world.init()
    world.finalize(6)
    assert world.diff(6).state is State.OK
    world.tamper(6, "--delete")
    assert world.diff(6).state is State.MISSING_LEGACY


# -- missing_history --------------------------------------------------------------------------------------


def test_missing_history_after_an_import_rolled_back(world: World) -> None:
    """rollback_legacy_summary_admin removes the history entry, not the legacy copy the import mirrored."""
    world.init()
    s = make_summary(7)
    world.import_legacy(7, s.to_bcs())
    assert world.diff(7).state is State.OK
    world.call("history::rollback_legacy_summary_admin", "u64:7")
    assert "LegacySummaryRolledBackEvent" in world.event_names(7)
    assert bridge.get_summary(world.backend, 7) is None
    d = world.diff(7)
    assert d.state is State.MISSING_HISTORY
    assert d.history_hash is None
    assert d.legacy_bytes_hash == d.legacy_archive_hash == canonical_hash(s)
    assert "cannot be healed from the archive" in d.reason
    assert d.state not in REPAIRABLE


# -- corrupt_legacy ---------------------------------------------------------------------------------------


def test_corrupt_legacy_bytes_that_do_not_decode(world: World) -> None:
    world.init()
    world.finalize(8, 9)
    world.tamper(8, "--bytes", "0102", "--fix-hash")
    d = world.diff(8)
    assert d.state is State.CORRUPT_LEGACY
    assert d.reason.startswith("legacy bytes do not decode:")
    assert d.evidence["offset"] == 0 and d.evidence["path"] == "LotterySummary.id"
    assert "truncated" in d.evidence["decode_error"]
    assert d.legacy_bytes_hash == hx(sha3(bytes([1, 2])))

    # a whole summary with one byte too many: the strict decoder (and the chain's) refuses trailing bytes
    good = world.legacy(9).summary_bcs
    world.tamper(9, "--bytes", (good + b"\x00").hex(), "--fix-hash")
    d9 = world.diff(9)
    assert d9.state is State.CORRUPT_LEGACY
    assert "trailing" in d9.evidence["decode_error"] and d9.evidence["offset"] == len(good)


def test_corrupt_legacy_archive_hash_not_the_hash_of_its_own_bytes(world: World) -> None:
    world.init()
    world.finalize(10, 11)
    world.tamper(10, "--set", "proceeds_accum=1")  # --keep-hash is the default
    d = world.diff(10)
    assert d.state is State.CORRUPT_LEGACY
    assert d.legacy_archive_hash == d.history_hash != d.legacy_bytes_hash
    assert f"legacy archive_hash {d.legacy_archive_hash} is not the hash of its own bytes {d.legacy_bytes_hash}" \
        == d.reason
    # the same for a non-canonical re-encoding whose hash was not recomputed
    world.tamper(11, "--non-canonical")
    assert world.diff(11).state is State.CORRUPT_LEGACY


# -- non_canonical ----------------------------------------------------------------------------------------


def test_non_canonical_from_an_import_of_non_minimal_uleb128(world: World) -> None:
    """The chain's import decoder accepts non-minimal lengths and mirrors the bytes as given."""
    world.init()
    s = make_summary(12)
    odd = non_canonical_bytes(s)
    assert odd != s.to_bcs() and len(odd) == len(s.to_bcs()) + 1
    world.import_legacy(12, odd)
    assert "LegacySummaryImportedEvent" in world.event_names(12)
    # history keeps the value: its view re-encodes canonically; the legacy copy keeps the bytes
    assert bridge.get_summary(world.backend, 12) == s
    assert world.legacy(12).summary_bcs == odd
    d = world.diff(12)
    assert d.state is State.NON_CANONICAL
    assert d.history_hash == canonical_hash(s)
    assert d.legacy_bytes_hash == d.legacy_archive_hash == hx(sha3(odd)) != d.history_hash
    assert f"({len(odd)} vs {len(s.to_bcs())} bytes" in d.reason
    assert not d.fields


def test_non_canonical_from_tamper_with_fixed_hash(world: World) -> None:
    world.init()
    (s,) = world.finalize(13)
    world.tamper(13, "--non-canonical", "--fix-hash")
    d = world.diff(13)
    assert d.state is State.NON_CANONICAL
    assert d.legacy_bytes_hash == d.legacy_archive_hash != d.history_hash == canonical_hash(s)


# -- field_drift ------------------------------------------------------------------------------------------


def test_field_drift_names_every_field_with_both_values_readably(world: World) -> None:
    world.init()
    (s,) = world.finalize(14)
    snap = "ab" * 32
    world.tamper(14, "--set", "status=7", "--set", "proceeds_accum=1234567", "--set", f"snapshot_hash=0x{snap}",
                 "--set", "vrf_status=3", "--set", "tags_mask=17", "--fix-hash")
    d = world.diff(14)
    assert d.state is State.FIELD_DRIFT
    by = {f.field: f for f in d.fields}
    assert list(by) == ["status", "proceeds_accum", "vrf_status", "tags_mask", "snapshot_hash"]  # declaration order
    assert (by["status"].history, by["status"].legacy) == ("Finalized (6)", "Canceled (7)")
    assert (by["proceeds_accum"].history, by["proceeds_accum"].legacy) == (f"{s.proceeds_accum:,}", "1,234,567")
    assert "," in by["proceeds_accum"].history
    assert (by["vrf_status"].history, by["vrf_status"].legacy) == ("Fulfilled (2)", "Failed (3)")
    assert by["tags_mask"].legacy == "0x11 [NFT|PROMO]"
    assert (by["snapshot_hash"].history, by["snapshot_hash"].legacy) == (hx(s.snapshot_hash), "0x" + snap)
    # machine values beside the readable ones (u64 as decimal strings, as Move JSON has them)
    assert (by["proceeds_accum"].history_json, by["proceeds_accum"].legacy_json) == (str(s.proceeds_accum), "1234567")
    assert (by["status"].history_json, by["status"].legacy_json) == (6, 7)
    assert d.reason == "5 fields differ: status, proceeds_accum, vrf_status, tags_mask, snapshot_hash"
    js = d.to_json()
    assert [f["field"] for f in js["fields"]] == list(by)
    assert js["fields"][0] == {"field": "status", "history": "Finalized (6)", "legacy": "Canceled (7)",
                               "history_value": 6, "legacy_value": 7}

    # and what `dualwrite diff` prints for a person
    r = CliRunner().invoke(cli, ["diff", "14", "--state", str(world.path)], catch_exceptions=False)
    assert r.exit_code == 1
    for text in ("field_drift", "Canceled (7)", "Finalized (6)", "1,234,567", f"{s.proceeds_accum:,}", "0x" + snap,
                 "Failed (3)", "history hash", "legacy bytes hash"):
        assert text in r.output, text


def test_field_drift_of_legacy_finalized_at(world: World) -> None:
    world.init()
    (s,) = world.finalize(15)
    world.tamper(15, "--finalized-at", "5")
    d = world.diff(15)
    assert d.state is State.FIELD_DRIFT
    (f,) = d.fields
    assert f.field == "LegacySummary.finalized_at"
    assert f.history == f"{s.finalized_at} ({datetime.fromtimestamp(s.finalized_at, UTC):%Y-%m-%dT%H:%M:%SZ})"
    assert f.legacy == "5 (1970-01-01T00:00:05Z)"
    # the bytes are still exact: only the LegacySummary's own field drifted
    assert d.legacy_bytes_hash == d.history_hash


def test_field_drift_from_a_classification_update_while_the_mirror_is_off(world: World) -> None:
    """update_legacy_classification_admin mirrors the new fields; with the mirror off the legacy copy is stale."""
    world.init()
    s = make_summary(16)  # primary_type 0 (basic), tags_mask 0x2 (DAILY)
    world.import_legacy(16, s.to_bcs())
    world.call("legacy_bridge::disable_legacy_mirror")
    world.call("history::update_legacy_classification_admin", "u64:16", "u8:3", "u64:9")
    d = world.diff(16)
    assert d.state is State.FIELD_DRIFT
    by = {f.field: (f.history, f.legacy) for f in d.fields}
    assert by == {"primary_type": ("vip (3)", f"basic ({s.primary_type})"),
                  "tags_mask": ("0x9 [NFT|SPLIT_PRIZE]", "0x2 [DAILY]")}


# -- pending ----------------------------------------------------------------------------------------------


def test_pending_expectation_set_before_finalisation(world: World) -> None:
    world.init()
    s = make_summary(17)
    before = datetime.now(UTC)
    world.expect(17, sha3(s.to_bcs()))
    d = world.diff(17)
    assert d.state is State.PENDING
    assert d.history_hash is None and d.pending_will_match is None
    assert d.expected_hash == canonical_hash(s)
    assert d.reason == "expectation registered, lottery not finalised yet"
    # pending_since is the commit time of the Started event, from the simulator's event log
    (ev,) = world.chain.events("ArchiveDualWriteStartedEvent", 17)
    (us,) = world.chain.store.conn.execute("SELECT timestamp_us FROM transactions WHERE version = ?",
                                           (ev["version"],)).fetchone()
    assert d.pending_since == datetime.fromtimestamp(us / 1e6, UTC)
    assert before - timedelta(seconds=1) <= d.pending_since <= datetime.now(UTC)
    # finalisation consumes it
    world.finalize(17)
    assert world.diff(17).state is State.OK


def test_pending_will_mismatch_after_a_mismatch_with_abort_on_mismatch_off(world: World) -> None:
    world.init(abort_on_mismatch=False)
    wrong = bytes(32)
    world.expect(18, wrong)
    (s,) = world.finalize(18)  # notify sees the mismatch, returns, keeps the entry
    assert "ArchiveDualWriteCompletedEvent" not in world.event_names(18)
    assert bridge.pending(world.backend) == [18]
    d = world.diff(18)
    assert d.state is State.PENDING
    assert d.pending_will_match is False
    assert d.expected_hash == hx(wrong) and d.history_hash == canonical_hash(s)
    assert "will mismatch" in d.reason
    assert d.legacy_bytes_hash == d.history_hash  # the legacy copy itself is exact


def test_pending_will_match_when_dual_write_was_disabled_at_finalisation(world: World) -> None:
    world.init()
    world.call("legacy_bridge::update_flags", "bool:false", "bool:true", "bool:false")
    s = make_summary(19)
    world.expect(19, sha3(s.to_bcs()))
    world.finalize(19)  # notify returns at once: dual-write disabled
    d = world.diff(19)
    assert d.state is State.PENDING and d.pending_will_match is True
    assert "will match" in d.reason


def test_a_mismatch_with_abort_on_mismatch_on_leaves_nothing_behind(world: World) -> None:
    world.init(abort_on_mismatch=True)
    world.expect(20, bytes(32))
    with pytest.raises(MoveAbort) as e:
        world.finalize(20)
    assert e.value.code == 0x1B02
    d = world.diff(20)  # no summary, no legacy copy (the mirror write rolled back): still only expected
    assert d.state is State.PENDING and d.history_hash is None and d.legacy_bytes_hash is None


# -- absent -----------------------------------------------------------------------------------------------


def test_absent(world: World) -> None:
    world.init()
    world.finalize(21)
    d = world.diff(22)
    assert d.state is State.ABSENT
    assert (d.history_hash, d.legacy_bytes_hash, d.expected_hash) == (None, None, None)


# -- a failure outranks pending, on the chain ------------------------------------------------------------


def test_failures_outrank_a_pending_expectation(world: World) -> None:
    world.init(abort_on_mismatch=False)
    world.finalize(30, 31, 32, 33)
    world.tamper(30, "--set", "status=7", "--fix-hash")
    world.tamper(31, "--bytes", "00")
    world.tamper(32, "--non-canonical", "--fix-hash")
    world.tamper(33, "--delete")
    s34 = make_summary(34)
    world.import_legacy(34, s34.to_bcs())
    world.call("history::rollback_legacy_summary_admin", "u64:34")
    for i in (30, 31, 32, 33, 34):
        world.expect(i, bytes([i]) * 32)
    want = {30: State.FIELD_DRIFT, 31: State.CORRUPT_LEGACY, 32: State.NON_CANONICAL, 33: State.MISSING_LEGACY,
            34: State.MISSING_HISTORY}
    for i, state in want.items():
        d = world.diff(i)
        assert d.state is state, (i, d.reason)
        assert d.expected_hash == hx(bytes([i]) * 32)  # the evidence still names the expectation
        if state is not State.MISSING_HISTORY:
            assert d.pending_will_match is False
    for i in (30, 32, 33):
        assert "is also pending" in world.diff(i).reason


# -- classify, pure -------------------------------------------------------------------------------------


BASE = make_summary(40)


def legacy_of(s: LotterySummary | bytes, *, archive_hash: bytes | None = None, finalized_at: int | None = None):
    data = s if isinstance(s, bytes) else s.to_bcs()
    return LegacySummary(summary_bcs=data, archive_hash=sha3(data) if archive_hash is None else archive_hash,
                         finalized_at=BASE.finalized_at if finalized_at is None else finalized_at)


FAILING_CASES = {
    State.MISSING_LEGACY: (BASE, None),
    State.MISSING_HISTORY: (None, legacy_of(BASE)),
    State.CORRUPT_LEGACY: (BASE, legacy_of(b"\x01\x02")),
    State.NON_CANONICAL: (BASE, legacy_of(non_canonical_bytes(BASE))),
    State.FIELD_DRIFT: (BASE, legacy_of(BASE.model_copy(update={"status": 7}))),
}


@pytest.mark.parametrize("state", list(FAILING_CASES), ids=str)
@pytest.mark.parametrize("expected", [sha3(BASE.to_bcs()), bytes(32)], ids=["will-match", "will-mismatch"])
def test_classify_a_failure_outranks_pending(state: State, expected: bytes) -> None:
    history, legacy = FAILING_CASES[state]
    assert classify(40, history, legacy, None).state is state
    since = datetime(2026, 1, 1, tzinfo=UTC)
    d = classify(40, history, legacy, expected, since)
    assert d.state is state
    assert d.expected_hash == hx(expected) and d.pending_since == since
    if history is not None:
        assert d.pending_will_match is (expected == sha3(BASE.to_bcs()))


def test_classify_corrupt_outranks_drift_and_non_canonical() -> None:
    drifted = BASE.model_copy(update={"tickets_sold": 1})
    assert classify(40, BASE, legacy_of(drifted, archive_hash=bytes(32)), None).state is State.CORRUPT_LEGACY
    odd = non_canonical_bytes(BASE)
    assert classify(40, BASE, legacy_of(odd, archive_hash=sha3(BASE.to_bcs())), None).state is State.CORRUPT_LEGACY
    # drift and non-canonical together: the drift is what a person must see
    odd_drift = non_canonical_bytes(drifted)
    assert classify(40, BASE, legacy_of(odd_drift), None).state is State.FIELD_DRIFT


def test_classify_exact_and_pending_and_absent() -> None:
    exact = legacy_of(BASE)
    assert classify(40, BASE, exact, None).state is State.OK
    assert classify(40, BASE, exact, sha3(BASE.to_bcs())).state is State.PENDING
    assert classify(40, None, None, None).state is State.ABSENT
    assert classify(40, None, None, bytes(32)).state is State.PENDING


_byte_strings = st.binary(min_size=0, max_size=8)


@st.composite
def legacy_variants(draw):
    """Legacy copies near the archived one: drifted fields, other bytes, other hashes, other finalized_at."""
    s = BASE
    if draw(st.booleans()):
        s = s.model_copy(update={"tickets_sold": draw(st.integers(0, 2**64 - 1))})
    if draw(st.booleans()):
        s = s.model_copy(update={"series_code": draw(_byte_strings)})
    kind = draw(st.sampled_from(["canonical", "non_canonical", "truncated", "trailing", "random"]))
    data = {"canonical": s.to_bcs(), "non_canonical": non_canonical_bytes(s), "truncated": s.to_bcs()[:-1],
            "trailing": s.to_bcs() + b"\x00", "random": draw(st.binary(max_size=300))}[kind]
    ah = draw(st.sampled_from(["own", "history", "other"]))
    archive_hash = {"own": sha3(data), "history": sha3(BASE.to_bcs()), "other": draw(st.binary(max_size=40))}[ah]
    fin = draw(st.sampled_from([BASE.finalized_at, 0, BASE.finalized_at + 1]))
    return LegacySummary(summary_bcs=data, archive_hash=archive_hash, finalized_at=fin)


@settings(max_examples=300, deadline=None)
@given(legacy=st.one_of(st.none(), legacy_variants()), with_history=st.booleans(),
       expected=st.sampled_from([None, "history", "other"]))
def test_hash_mismatch_is_unreachable_and_every_disagreement_is_named(legacy, with_history, expected) -> None:
    history = BASE if with_history else None
    h = sha3(BASE.to_bcs())
    exp = {None: None, "history": h, "other": bytes(32)}[expected]
    d = classify(40, history, legacy, exp)
    assert d.state is not State.HASH_MISMATCH
    if history is not None and legacy is not None:
        exact = (legacy.summary_bcs == BASE.to_bcs() and legacy.archive_hash == h
                 and legacy.finalized_at == BASE.finalized_at)
        # OK (or PENDING over an exact copy) exactly when the copy is exact, byte for byte
        assert (d.state in (State.OK, State.PENDING)) == exact
        assert (d.state is State.OK) == (exact and exp is None)
        if not exact:
            assert d.state in (State.CORRUPT_LEGACY, State.NON_CANONICAL, State.FIELD_DRIFT)
