"""Repair drifted legacy copies in the order that works on chain, and prove each repair.

The order (onchain.md, "Consequences"): register the archived summary's hash, then
mirror — this works with ``abort_on_missing`` on and leaves nothing pending; then
re-read and diff. A lottery counts as healed only when that diff says ``ok``.
A transaction's success proves nothing (a disabled mirror "succeeds" and writes nothing).

Every action goes to an append-only JSON Lines journal. A run is tied to the chain it acts on
(``Backend.chain_identity()``: backend, target, profile, config, RPC URL, module addresses,
state file), and only a heal on that chain continues it, and only while its last record is
recent (``DEFAULT_RESUME_WITHIN``); an older one is set aside and said so. A continued run
does not repeat steps the journal records as done while the chain still shows their effect
(an expectation registered by a done ``set_expected_hash`` that is still pending; a step whose
effect is gone is sent again), leaves a lottery already ``ok`` alone, and at the end re-reads
the mirror and turns off only a mirror this run turned on (confirmed) that is still on.
Applying holds the journal's lock and the chain's lock (``locks.py``).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from dualwrite import bridge
from dualwrite.audit.diff import REPAIRABLE, LotteryDiff, State, diff
from dualwrite.audit.verify import all_ids
from dualwrite.audit.locks import Lock, lock_dir
from dualwrite.backends.base import Backend, identity_key, identity_of
from dualwrite.jsonl import is_torn
from dualwrite.errors import BackendError, DualwriteError, ExitCode, InputError, MoveAbort, TransactionFailed

ENABLE_MIRROR = "enable_mirror"
RESTORE_MIRROR = "restore_mirror"
SET = "set_expected_hash"
MIRROR = "mirror"
CLEAR = "clear_expected_hash"


def default_journal() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "dualwrite" / "heal-journal.jsonl"


@dataclass(frozen=True)
class Step:
    action: str
    lottery_id: int | None = None
    expected_hash: str | None = None

    @property
    def key(self) -> str:
        return f"{self.lottery_id}:{self.action}" if self.lottery_id is not None else self.action

    def describe(self) -> str:
        return {
            ENABLE_MIRROR: "legacy_bridge::enable_legacy_mirror()  (for the repair; restored after)",
            RESTORE_MIRROR: "legacy_bridge::disable_legacy_mirror()  (restore: the mirror was off; only if this run "
                            "turned it on and it is still on)",
            SET: f"legacy_bridge::set_expected_hash({self.lottery_id}, {self.expected_hash})",
            MIRROR: f"history::mirror_summary_admin({self.lottery_id})",
            CLEAR: f"legacy_bridge::clear_expected_hash({self.lottery_id})",
        }[self.action]

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "lottery_id": self.lottery_id, "expected_hash": self.expected_hash,
                "call": self.describe()}


@dataclass
class LotteryPlan:
    diff: LotteryDiff
    steps: list[Step]
    verdict: str  # repair | ok | waiting | nothing | unhealable | blocked
    why: str = ""

    @property
    def lottery_id(self) -> int:
        return self.diff.lottery_id

    def to_json(self) -> dict[str, Any]:
        return {"lottery_id": self.lottery_id, "state": self.diff.state.value, "reason": self.diff.reason,
                "verdict": self.verdict, "why": self.why, "steps": [s.to_json() for s in self.steps]}


@dataclass
class HealPlan:
    backend: str
    control_enabled: bool
    abort_on_missing: bool
    mirror_enabled: bool
    bridge_initialized: bool
    lotteries: list[LotteryPlan]
    pre: list[Step] = field(default_factory=list)
    post: list[Step] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend,
                "chain": {"dual_write_enabled": self.control_enabled, "abort_on_missing": self.abort_on_missing,
                          "mirror_enabled": self.mirror_enabled, "bridge_initialized": self.bridge_initialized},
                "pre": [s.to_json() for s in self.pre], "lotteries": [p.to_json() for p in self.lotteries],
                "post": [s.to_json() for s in self.post]}


def plan(backend: Backend, ids: Iterable[int] | None = None, *, enable_mirror: bool = False) -> HealPlan:
    """The exact repair plan: what each lottery needs, in chain order, or why it cannot be healed."""
    # one pending_expected_hashes call saves a status view for every lottery with nothing pending
    pending_ids = set(bridge.pending(backend))
    if ids is None:
        candidates = all_ids(backend)
        diffs = [d for d in (diff(backend, i, pending_ids=pending_ids) for i in candidates)
                 if d.state not in (State.OK, State.ABSENT)]
        diffs = [d for d in diffs if not (d.state is State.PENDING and d.history_hash is None)]
    else:
        diffs = [diff(backend, i, pending_ids=pending_ids) for i in ids]
    flags = bridge.flags(backend)
    mirror_on = bridge.is_mirror_enabled(backend)
    bridge_on = bridge.bridge_initialized(backend)
    hp = HealPlan(backend.describe(), flags.enabled, flags.abort_on_missing, mirror_on, bridge_on, [])
    needs_mirror = False
    for d in diffs:
        lp = _plan_one(d, flags.enabled, mirror_on or enable_mirror, bridge_on, mirror_on)
        needs_mirror |= any(s.action == MIRROR for s in lp.steps)
        hp.lotteries.append(lp)
    if needs_mirror and not mirror_on and enable_mirror:
        hp.pre.append(Step(ENABLE_MIRROR))
        hp.post.append(Step(RESTORE_MIRROR))
    return hp


def _plan_one(d: LotteryDiff, control_enabled: bool, mirror_usable: bool, bridge_on: bool, mirror_on: bool) -> LotteryPlan:
    lid = d.lottery_id
    if d.state is State.OK:
        return LotteryPlan(d, [], "ok", "nothing to do")
    if d.state is State.ABSENT:
        return LotteryPlan(d, [], "nothing", "no archived summary and no legacy copy: nothing to heal from")
    if d.state is State.MISSING_HISTORY:
        return LotteryPlan(d, [], "unhealable",
                           "history has no summary for it: the archive is the source of truth, so it cannot be healed "
                           "from it (investigate the legacy copy; import it with import_legacy_summary_admin if it is right)")
    if d.state is State.PENDING and d.history_hash is None:
        return LotteryPlan(d, [], "waiting", "not finalised yet: the expectation is consumed when it is")
    if d.state is State.PENDING and not control_enabled:
        return LotteryPlan(d, [Step(CLEAR, lid)], "repair",
                           "dual-write is disabled, so a mirror would not consume it: clear the stale expectation")
    # a repair through the mirror: register the archived hash (when dual-write is on), then mirror
    steps = []
    if control_enabled:
        steps.append(Step(SET, lid, d.history_hash))
    steps.append(Step(MIRROR, lid))
    if not control_enabled and d.expected_hash is not None:
        # dual-write is disabled: the mirror's notify returns at once and leaves the expectation pending
        steps.append(Step(CLEAR, lid))
    if not bridge_on:
        return LotteryPlan(d, steps, "blocked",
                           "history_bridge is not initialised: a mirror writes nothing (init_bridge must be signed by @lottery)")
    if not mirror_usable:
        return LotteryPlan(d, steps, "blocked",
                           "the legacy mirror is disabled: a mirror would write nothing; pass --enable-mirror to turn it "
                           "on for the repair (it is turned off again after)")
    why = {State.PENDING: "re-register the archived hash and mirror: consumes the stale expectation",
           }.get(d.state, "register the archived hash, then re-mirror from the archive")
    return LotteryPlan(d, steps, "repair", why)


# -- the journal ------------------------------------------------------------------------------------------

#: how old (since its last record) an unfinished run may be and still be continued: an interrupted heal is
#: normally re-run within the same shift; past this, the chain has likely been worked on by hand since
DEFAULT_RESUME_WITHIN = timedelta(hours=12)
#: a journal line longer than this is not a record dualwrite wrote (its largest is a plan: ~1 KiB a lottery)
MAX_RECORD_BYTES = 16 * 1024 * 1024
_ACTIONS = (ENABLE_MIRROR, RESTORE_MIRROR, SET, MIRROR, CLEAR)
_STATUSES = ("started", "done", "failed", "skipped")


def _record_problem(rec: Any) -> str | None:
    """Why a parsed JSON line is not a journal record, or None."""
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not a record object"
    for k in ("run", "event", "ts"):
        if k in rec and not isinstance(rec[k], str):
            return f"its {k!r} is not a string"
    if rec.get("event") == "step":
        if not isinstance(rec.get("key"), str):
            return "a step without a 'key'"
        if rec.get("action") not in _ACTIONS:
            return f"a step with an unknown action {str(rec.get('action'))[:40]!r}"
        if rec.get("status") not in _STATUSES:
            return f"a step with an unknown status {str(rec.get('status'))[:40]!r}"
        lid = rec.get("lottery_id")
        if lid is not None and (isinstance(lid, bool) or not isinstance(lid, int)):
            return "a step whose lottery_id is not an integer"
    return None


@dataclass
class RunInfo:
    """What the journal says about one run."""

    run: str
    backend: str = "?"
    chain_key: str | None = None
    chain: dict[str, str] | None = None
    last_ts: datetime | None = None
    ended: bool = False
    set_aside: bool = False
    done: set[str] = field(default_factory=set)
    #: the mirror as this run left it: "on" (it turned it on, confirmed), "uncertain" (its enable was cut
    #: short before it was confirmed), None (it did not turn it on, or turned it off again)
    mirror: str | None = None


class Journal:
    """Append-only JSON Lines; each record written whole and synced before the next action."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def rejected_path(self) -> Path:
        return self.path.with_name(self.path.name + ".rejected")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def _scan(self) -> Iterator[tuple[int, int, int, Any, str | None]]:
        """(line number, start offset, end offset, record, problem) per non-blank line; streamed."""
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return
        except IsADirectoryError:
            raise InputError(f"heal journal {self.path}: is a directory") from None
        except OSError as e:
            raise InputError(f"heal journal {self.path}: cannot read ({e.strerror})") from None
        with f:
            n, pos = 0, 0
            while True:
                line = f.readline(MAX_RECORD_BYTES + 1)
                if not line:
                    return
                start = pos
                overlong = len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n")
                while overlong:  # skip to the end of this line without holding it
                    more = f.readline(1 << 20)
                    pos += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                pos += len(line)
                n += 1
                if not line.strip():
                    continue
                if overlong:
                    yield n, start, pos, None, f"longer than {MAX_RECORD_BYTES} bytes"
                    continue
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError as e:
                    yield n, start, pos, None, f"not UTF-8 (byte offset {e.start} in the line)"
                    continue
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError as e:
                    # a torn record from a crash mid-write (the action after it never ran; a later run closed
                    # the line and appended after it): the start of a record, cut short — not something else
                    if is_torn(text, e):
                        yield n, start, pos, None, "torn"
                        continue
                    yield n, start, pos, None, f"not JSON ({e.msg} at column {e.colno})"
                    continue
                except (RecursionError, ValueError) as e:  # nesting too deep; an integer of 5000 digits
                    yield n, start, pos, None, f"not a record ({type(e).__name__})"
                    continue
                yield n, start, pos, rec, _record_problem(rec)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for n, _, _, rec, problem in self._scan():
            if problem == "torn":
                continue
            if problem:
                raise InputError(
                    f"heal journal {self.path}: record {n} is {problem}"
                    f"{'' if problem.startswith('not') else ' (not a record dualwrite writes)'}; "
                    f"`dualwrite heal --journal-repair` sets such lines aside in {self.rejected_path.name}, "
                    "or pass --journal NEW to start a new journal")
            out.append(rec)
        return out

    def repair(self) -> int:
        """Move every line that is not a record (torn ones included) to ``FILE.rejected``; returns how many.
        The caller holds the journal lock. The journal is rewritten whole (temporary file + rename)."""
        bad = [(n, a, b, problem) for n, a, b, _, problem in self._scan() if problem]
        if not bad:
            return 0
        bad_ranges = {(a, b) for _, a, b, _ in bad}
        tmp = self.path.with_name(f".{self.path.name}.repair.tmp")
        try:
            with open(self.path, "rb") as src, open(tmp, "wb") as good, open(self.rejected_path, "ab") as rej:
                for n, a, b, _, problem in self._scan():
                    out = rej if (a, b) in bad_ranges else good
                    src.seek(a)
                    left = b - a
                    while left:
                        chunk = src.read(min(left, 1 << 20))
                        if not chunk:
                            break
                        out.write(chunk)
                        left -= len(chunk)
                    if not chunk.endswith(b"\n"):
                        out.write(b"\n")
                good.flush()
                os.fsync(good.fileno())
                rej.flush()
                os.fsync(rej.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise InputError(f"heal journal {self.path}: cannot repair it ({e.strerror})") from None
        return len(bad)

    def append(self, record: dict[str, Any]) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(), **record}
        data = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise InputError(f"heal journal {self.path}: cannot write it ({e.strerror})") from None
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if end and os.pread(fd, 1, end - 1) != b"\n":
                data = b"\n" + data  # close a torn last line, so this record is a line of its own
            os.write(fd, data)
            os.fsync(fd)
        except OSError as e:
            raise InputError(f"heal journal {self.path}: cannot write it ({e.strerror})") from None
        finally:
            os.close(fd)

    def runs(self) -> dict[str, RunInfo]:
        """Every run the journal knows, in the order they started."""
        runs: dict[str, RunInfo] = {}
        for r in self.records():
            rid = r.get("run")
            if not rid:
                continue
            ev = r.get("event")
            if ev == "run_set_aside":
                if rid in runs:
                    runs[rid].set_aside = True
                continue
            if ev == "run_start":
                chain = r.get("chain") if isinstance(r.get("chain"), dict) else None
                runs[rid] = RunInfo(rid, str(r.get("backend", "?")), r.get("chain_key") if isinstance(
                    r.get("chain_key"), str) else None, chain)
            run = runs.get(rid)
            if run is None:
                continue
            try:
                run.last_ts = datetime.fromisoformat(r["ts"]) if "ts" in r else run.last_ts
                if run.last_ts is not None and run.last_ts.tzinfo is None:
                    run.last_ts = run.last_ts.replace(tzinfo=timezone.utc)
            except ValueError:
                run.last_ts = None  # an unreadable time: treated as too old to continue
            if ev == "run_end":
                run.ended = True
            elif ev == "step":
                status, action = r["status"], r["action"]
                if status == "done":
                    run.done.add(r["key"])
                if action == ENABLE_MIRROR:
                    if status == "done":
                        run.mirror = "on"
                    elif status == "started":
                        run.mirror = "uncertain"
                    elif status == "failed" and run.mirror == "uncertain":
                        run.mirror = None
                if action == RESTORE_MIRROR and status in ("done", "skipped"):
                    run.mirror = None
        return runs

    def unfinished_run(self, backend: Backend | str) -> tuple[str, set[str], bool] | None:
        """(run id, step keys done, mirror left on by it) of the latest unfinished run on this chain."""
        key = identity_key(identity_of(backend)) if not isinstance(backend, str) else None
        for run in reversed(list(self.runs().values())):
            if not run.ended and not run.set_aside and (run.chain_key == key if key else run.backend == backend):
                return run.run, run.done, run.mirror is not None
        return None


def repair_journal(path: Path | None = None) -> tuple[Path, int]:
    """``heal --journal-repair``: set the lines that are not records aside, under the journal lock."""
    j = Journal(path or default_journal())
    with Lock(j.lock_path, f"heal journal {j.path}"):
        return j.rejected_path, j.repair()


# -- applying ---------------------------------------------------------------------------------------------


@dataclass
class LotteryOutcome:
    lottery_id: int
    before: str
    verdict: str
    after: str | None = None
    healed: bool = False
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    after_diff: LotteryDiff | None = None

    def to_json(self) -> dict[str, Any]:
        return {"lottery_id": self.lottery_id, "before": self.before, "verdict": self.verdict, "after": self.after,
                "healed": self.healed, "done": self.done, "skipped": self.skipped, "error": self.error,
                **({"after_reason": self.after_diff.reason} if self.after_diff else {})}


@dataclass(frozen=True)
class MirrorStep:
    """One thing heal did, or chose not to do, to the global mirror switch, and why."""

    action: str  # enable | disable | leave_on | leave_off
    status: str  # done | failed | skipped
    why: str
    mirror_after: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "status": self.status, "why": self.why, "mirror_after": self.mirror_after}

    def human(self) -> str:
        state = "" if self.mirror_after is None else f" (mirror now {'ON' if self.mirror_after else 'off'})"
        verb = {"enable": "turn ON", "disable": "turn OFF", "leave_on": "left ON", "leave_off": "left off"}[self.action]
        return f"{verb}: {self.status}{state} — {self.why}"


@dataclass
class HealReport:
    plan: HealPlan
    applied: bool
    outcomes: list[LotteryOutcome] = field(default_factory=list)
    journal: str | None = None
    run_id: str | None = None
    resumed: bool = False
    global_errors: list[str] = field(default_factory=list)
    chain: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    mirror_steps: list[MirrorStep] = field(default_factory=list)
    resume_within_s: float | None = None

    @property
    def exit_code(self) -> ExitCode:
        kinds = {o.error_kind for o in self.outcomes if o.error_kind}
        if "abort" in kinds:
            return ExitCode.ABORTED
        if "backend" in kinds or self.global_errors:
            return ExitCode.BACKEND
        if not self.applied:
            return ExitCode.MISMATCH if any(p.verdict in ("blocked", "unhealable") for p in self.plan.lotteries) else ExitCode.OK
        if any(not o.healed and o.verdict not in ("nothing", "waiting") for o in self.outcomes):
            return ExitCode.MISMATCH
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "plan": self.plan.to_json(), "journal": self.journal, "run": self.run_id,
                "resumed": self.resumed, "chain": self.chain, "resume_within_s": self.resume_within_s,
                "notes": self.notes, "mirror_steps": [m.to_json() for m in self.mirror_steps],
                "outcomes": [o.to_json() for o in self.outcomes],
                "healed": [o.lottery_id for o in self.outcomes if o.healed and o.before != "ok"],
                "not_healed": [o.lottery_id for o in self.outcomes if not o.healed and o.verdict not in ("nothing", "waiting")],
                "errors": self.global_errors, "exit_code": int(self.exit_code)}


def _error_kind(e: DualwriteError) -> str:
    if isinstance(e, (MoveAbort, TransactionFailed)):
        return "abort"
    if isinstance(e, BackendError):
        return "backend"
    return "input"


def _do(backend: Backend, step: Step):
    if step.action == ENABLE_MIRROR:
        return bridge.enable_mirror(backend)
    if step.action == RESTORE_MIRROR:
        return bridge.disable_mirror(backend)
    if step.action == SET:
        return bridge.set_expected(backend, step.lottery_id, bytes.fromhex(step.expected_hash[2:]))  # type: ignore[index]
    if step.action == MIRROR:
        return bridge.mirror(backend, step.lottery_id)  # type: ignore[arg-type]
    if step.action == CLEAR:
        return bridge.clear(backend, step.lottery_id)  # type: ignore[arg-type]
    raise ValueError(step.action)  # pragma: no cover


def _age(t: timedelta) -> str:
    s = int(t.total_seconds())
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def heal(backend: Backend, ids: Iterable[int] | None = None, *, apply: bool = False, enable_mirror: bool = False,
         journal: Path | None = None, resume_within: timedelta = DEFAULT_RESUME_WITHIN,
         progress: Callable[[LotteryOutcome], None] | None = None,
         on_plan: Callable[[HealPlan], None] | None = None) -> HealReport:
    """Plan (dry run, the default) or apply-and-prove the repair of the given ids, or of every failing one.

    Applying holds the journal's lock (exclusive) and the chain's lock (exclusive when the run may
    switch the mirror, shared otherwise) for the whole run; ``HealBusy`` when another heal has either.
    When applying, ``on_plan`` is called once with the plan read under the locks (its lotteries are
    the work to do), then ``progress`` once with each lottery's outcome, as it is known.
    """
    ident = identity_of(backend)
    key = identity_key(ident)
    id_list = None if ids is None else list(ids)
    if not apply:
        report = HealReport(plan(backend, id_list, enable_mirror=enable_mirror), False, chain=ident)
        return report
    j = Journal(journal or default_journal())
    with Lock(j.lock_path, f"heal journal {j.path}"):
        runs = j.runs()
        now = datetime.now(timezone.utc)
        notes: list[str] = []
        fresh: list[RunInfo] = []
        stale: list[tuple[RunInfo, str]] = []
        for r in runs.values():
            if r.ended or r.set_aside:
                continue
            if r.chain_key is None:
                stale.append((r, "it was recorded without the chain's identity (an older dualwrite)"))
            elif r.chain_key != key:
                notes.append(f"not resumed: unfinished run {r.run} is on another chain ({r.backend}); "
                             "only a heal on that chain continues it")
            elif r.last_ts is None or now - r.last_ts > resume_within:
                age = "of unknown age" if r.last_ts is None else f"last active {_age(now - r.last_ts)} ago"
                stale.append((r, f"it is {age}, over the {_age(resume_within)} a run may be continued within"))
            else:
                fresh.append(r)
        previous = fresh[-1] if fresh else None
        stale += [(r, f"a later unfinished run ({previous.run}) on this chain is continued instead")
                  for r in fresh[:-1]]  # type: ignore[union-attr]
        flips = enable_mirror or (previous is not None and previous.mirror is not None)
        with Lock(lock_dir() / f"chain-{key}.lock", f"the chain ({backend.describe()})", exclusive=flips):
            return _apply(backend, id_list, enable_mirror, j, ident, key, previous, stale, notes, resume_within,
                          progress, on_plan)


def _apply(backend: Backend, ids: list[int] | None, enable_mirror: bool, j: Journal, ident: dict[str, str], key: str,
           previous: RunInfo | None, stale: list[tuple[RunInfo, str]], notes: list[str],
           resume_within: timedelta, progress: Callable[[LotteryOutcome], None] | None = None,
           on_plan: Callable[[HealPlan], None] | None = None) -> HealReport:
    # the plan is read under the locks: no other heal changes the chain between it and the steps
    hp = plan(backend, ids, enable_mirror=enable_mirror)
    if on_plan:
        on_plan(hp)
    report = HealReport(hp, True, journal=str(j.path), chain=ident, notes=notes,
                        resume_within_s=resume_within.total_seconds())
    done: set[str] = set()
    mirror_state: str | None = None  # as the run_info of this run: "on", "uncertain", None
    if previous:
        report.run_id, done, mirror_state = previous.run, set(previous.done), previous.mirror
        report.resumed = True
        j.append({"run": report.run_id, "event": "run_resume", "backend": hp.backend, "chain_key": key,
                  "pid": os.getpid()})
    else:
        report.run_id = uuid.uuid4().hex[:12]
        j.append({"run": report.run_id, "event": "run_start", "backend": hp.backend, "chain": ident, "chain_key": key,
                  "pid": os.getpid(), "plan": hp.to_json()})
    for r, why in stale:
        j.append({"run": r.run, "event": "run_set_aside", "by": report.run_id, "reason": why})
        left = {"on": "it had turned the mirror ON and never off", "uncertain":
                "it was turning the mirror on when it stopped"}.get(r.mirror or "")
        report.notes.append(f"set aside unfinished run {r.run}, not continued: {why}"
                            + (f"; {left}: heal leaves the mirror as it is now "
                               f"({'ON' if hp.mirror_enabled else 'off'})" if left else ""))

    def still_done(s: Step, lp: LotteryPlan | None) -> bool:
        """A step the journal records as done is skipped only while the chain still shows its effect.

        Only a registered expectation can be both done and still needed: every other step is in
        the plan because its effect is not on chain now (mirror off, legacy copy not exact,
        expectation still pending), so the journal's "done" is stale and the step is sent again.
        """
        return s.key in done and s.action == SET and lp is not None and lp.diff.expected_hash == s.expected_hash

    def step(s: Step, lp: LotteryPlan | None = None, **extra: Any) -> Any:
        if still_done(s, lp):
            return "skipped"
        j.append({"run": report.run_id, "event": "step", "key": s.key, "action": s.action, "lottery_id": s.lottery_id,
                  "call": s.describe(), "status": "started", **extra})
        try:
            txn = _do(backend, s)
        except DualwriteError as e:
            j.append({"run": report.run_id, "event": "step", "key": s.key, "action": s.action,
                      "lottery_id": s.lottery_id, "status": "failed", "error": str(e)})
            raise
        j.append({"run": report.run_id, "event": "step", "key": s.key, "action": s.action, "lottery_id": s.lottery_id,
                  "status": "done", "transaction_hash": txn.hash, "events": txn.event_names()})
        done.add(s.key)
        return txn

    def mirror_now() -> bool | None:
        try:
            return bridge.is_mirror_enabled(backend)
        except DualwriteError:
            return None

    def restore(final: bool) -> None:
        """Turn off only a mirror this run turned on (confirmed) and that is still on; say what was done."""
        nonlocal mirror_state
        if mirror_state is None:
            return
        on = mirror_now()
        if on is None:
            report.global_errors.append("could not re-read the mirror switch: it may still be ON "
                                        "(check with `dualwrite flags`)")
            return
        if mirror_state == "uncertain":
            if on:
                why = (f"run {report.run_id} was turning the mirror on when it stopped, before the chain confirmed it, "
                       "so it may have been turned on by that run or by hand since: left as it is; "
                       "`dualwrite disable-mirror` if it should be off")
                report.mirror_steps.append(MirrorStep("leave_on", "skipped", why, True))
            else:
                report.mirror_steps.append(MirrorStep("leave_off", "skipped",
                                                      "the mirror is off: nothing of this run's to undo", False))
            j.append({"run": report.run_id, "event": "step", "key": RESTORE_MIRROR, "action": RESTORE_MIRROR,
                      "lottery_id": None, "status": "skipped", "mirror_enabled": on, "why": "enable not confirmed"})
            mirror_state = None
            return
        if not on:
            report.mirror_steps.append(MirrorStep("leave_off", "skipped", "this run turned the mirror on, and it is "
                                                  "already off again (turned off by hand): nothing to do", False))
            j.append({"run": report.run_id, "event": "step", "key": RESTORE_MIRROR, "action": RESTORE_MIRROR,
                      "lottery_id": None, "status": "skipped", "mirror_enabled": False, "why": "already off"})
            mirror_state = None
            return
        try:
            step(Step(RESTORE_MIRROR), mirror_before=True)
        except DualwriteError as e:
            report.mirror_steps.append(MirrorStep("disable", "failed", str(e), mirror_now()))
            report.global_errors.append(f"{Step(RESTORE_MIRROR).describe()}: {e} — the mirror may still be ON")
            return
        mirror_state = None
        report.mirror_steps.append(MirrorStep("disable", "done", "this run turned it on for the repair and it was "
                                              "still on: turned off again, as it was" + ("" if final else
                                                                                        " (interrupted)"), mirror_now()))

    try:
        for s in hp.pre:
            try:
                step(s, mirror_before=False)
            except KeyboardInterrupt:
                # cut short while the enable was in flight: this process holds the chain lock and reads the
                # switch at once, so a mirror that is on now is the one it just turned on
                if mirror_now():
                    mirror_state = "on"
                    restore(False)
                raise
            mirror_state = "on"
            report.mirror_steps.append(MirrorStep("enable", "done", "the mirror was off and a repair needs it "
                                                  "(--enable-mirror); turned off again at the end", mirror_now()))
    except DualwriteError as e:
        report.mirror_steps.append(MirrorStep("enable", "failed", str(e), mirror_now()))
        report.global_errors.append(f"{s.describe()}: {e}")
        j.append({"run": report.run_id, "event": "run_end", "result": "failed before repairs"})
        return report
    if not hp.pre and previous is None and not hp.mirror_enabled:
        pass  # nothing to say: heal never touched the switch
    elif not hp.pre and hp.mirror_enabled and mirror_state is None:
        report.mirror_steps.append(MirrorStep("leave_on", "skipped", "the mirror was on: heal leaves it on", True))

    try:
        _repair_all(hp, report, step, backend, j, progress)
    except KeyboardInterrupt:
        # Ctrl-C at 3 a.m.: do not leave a mirror we switched on running unattended. The run stays
        # unfinished in the journal, so the next heal continues it.
        try:
            if mirror_state == "on":
                restore(False)
        except (DualwriteError, KeyboardInterrupt):
            pass  # the journal shows it on: the next run turns it off
        raise

    for s in hp.post:
        if s.action != RESTORE_MIRROR:  # pragma: no cover - the plan's only post step
            step(s)
    restore(True)
    j.append({"run": report.run_id, "event": "run_end",
              "healed": [o.lottery_id for o in report.outcomes if o.healed and o.before != "ok"]})
    return report


def _repair_all(hp: HealPlan, report: HealReport, step, backend: Backend, j: Journal,
                progress: Callable[[LotteryOutcome], None] | None = None) -> None:
    """Each lottery's steps in order, then the re-read that alone can call it healed."""
    for lp in hp.lotteries:
        out = LotteryOutcome(lp.lottery_id, lp.diff.state.value, lp.verdict)
        report.outcomes.append(out)
        if lp.verdict == "ok":
            out.after, out.healed = "ok", True
            if progress:
                progress(out)
            continue
        if lp.verdict != "repair":
            out.after = lp.diff.state.value
            if progress:
                progress(out)
            continue
        try:
            for s in lp.steps:
                r = step(s, lp)
                (out.skipped if r == "skipped" else out.done).append(s.action)
        except DualwriteError as e:
            out.error, out.error_kind = str(e), _error_kind(e)
        try:
            after = diff(backend, lp.lottery_id)
            out.after_diff, out.after, out.healed = after, after.state.value, after.state is State.OK
        except DualwriteError as e:
            out.error = out.error or f"re-read failed: {e}"
            out.error_kind = out.error_kind or _error_kind(e)
        j.append({"run": report.run_id, "event": "verify", "lottery_id": lp.lottery_id, "state": out.after,
                  "healed": out.healed})
        if progress:
            progress(out)


__all__ = ["DEFAULT_RESUME_WITHIN", "HealPlan", "HealReport", "Journal", "LotteryOutcome", "LotteryPlan",
           "MirrorStep", "RunInfo", "Step", "heal", "plan", "default_journal", "repair_journal", "REPAIRABLE"]
