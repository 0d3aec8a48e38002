"""The CI gate: diff many lotteries, concurrently, and decide pass / fail / could-not-check.

Exit policy: 0 only when every lottery passes; 1 when any is in a failing state;
3 when none failed but some could not be checked (never reported as clean); 5 when it
checked nothing at all, unless the caller allows an empty gate (see ``gate_exit_code``).
``pending`` passes only with ``allow_pending``, only while it will match (or the
lottery is not finalised yet), and only within ``pending_grace`` when its age is known.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from dualwrite import bridge
from dualwrite.audit.diff import LotteryDiff, State, diff
from dualwrite.backends.base import Backend
from dualwrite.errors import ChainChanged, DualwriteError, ExitCode, InputError
from dualwrite.bad_values import excerpt

U64_MAX = 2**64 - 1
#: the most lotteries one run checks (ids, ranges, --ids-file and --all together): each costs ~1.4 KiB
#: while the run lasts, so this bounds a run to ~300 MB; split larger audits into ranges
MAX_IDS_PER_RUN = 200_000
#: the largest --ids-file read (~200,000 ids one per line, with room for comments)
MAX_IDS_FILE_BYTES = 8 * 1024 * 1024
#: a line of an ids file longer than this is not an id or a range (u64 range: 41 characters)
MAX_IDS_LINE = 4096
_ID = re.compile(r"[0-9]{1,20}")


class IdSet:
    """Ids in the order given, each once, at most ``limit`` in all: ranges are counted before they are
    expanded, so ``1-18446744073709551615`` costs nothing but its error."""

    def __init__(self, limit: int = MAX_IDS_PER_RUN) -> None:
        self.limit = limit
        self.ids: dict[int, None] = {}

    def add_range(self, a: int, b: int, where: str) -> None:
        too_many = InputError(f"{where}: more than {self.limit} lotteries in one run (the documented limit); "
                              "split the audit into ranges")
        if b - a + 1 > self.limit:
            raise too_many
        for i in range(a, b + 1):
            self.ids[i] = None
            if len(self.ids) > self.limit:
                raise too_many

    def add(self, ids: Iterable[int], where: str) -> None:
        for i in ids:
            self.add_range(i, i, where)

    def __len__(self) -> int:
        return len(self.ids)

    def to_list(self) -> list[int]:
        return list(self.ids)


def parse_id_token(part: str, where: str) -> tuple[int, int]:
    """``12`` or ``10-250``: ASCII decimal digits only (no sign, ``_``, spaces or other scripts' digits)."""
    lo, sep, hi = part.partition("-")
    if not _ID.fullmatch(lo) or (sep and not _ID.fullmatch(hi)):
        raise InputError(f"{where} {excerpt(part)}: expected a lottery id or a range like 10-250 "
                         "(ASCII digits 0-9 only)")
    a = int(lo)
    b = int(hi) if sep else a
    if not (a <= U64_MAX and b <= U64_MAX) or b < a:
        raise InputError(f"{where} {excerpt(part)}: not a valid u64 id or ascending range")
    return a, b


def _tokens(spec: str, where: str) -> list[str]:
    """Items of one argument: separated by a comma, a single space, or a comma and a space (``3-7, 12``, as
    the tool prints id ranges), nothing around them."""
    if spec != spec.strip(" ") or any(c.isspace() and c != " " for c in spec):
        raise InputError(f"{where} {excerpt(spec)}: leading, trailing or non-space whitespace in an id")
    parts = [p for p in spec.replace(", ", ",").replace(",", " ").split(" ")]
    if any(p == "" for p in parts):
        raise InputError(f"{where} {excerpt(spec)}: an empty item (two separators in a row)")
    return parts


def parse_ids(specs: Iterable[str], where: str = "argument", into: IdSet | None = None) -> list[int]:
    """``12``, ``10-250`` (inclusive), comma lists; order kept, duplicates dropped; bounded per run."""
    out = into if into is not None else IdSet()
    for spec in specs:
        for part in _tokens(str(spec), where):
            a, b = parse_id_token(part, where)
            out.add_range(a, b, f"{where} {excerpt(part)}")
    return out.to_list()


def ids_from_file(path: Path, into: IdSet | None = None) -> list[int]:
    """One id or range per line; ``#`` comments and blank lines ignored; order kept, duplicates dropped.

    Streamed line by line, at most ``MAX_IDS_FILE_BYTES``; a bad line is named by number and byte
    offset, and shown only as a short excerpt (never a whole line: it may be a key file).
    """
    out = into if into is not None else IdSet()
    try:
        f = open(path, "rb")
    except IsADirectoryError:
        raise InputError(f"--ids-file {path}: is a directory") from None
    except OSError as e:
        raise InputError(f"--ids-file {path}: {e.strerror}") from None
    with f:
        offset, n = 0, 0
        while True:
            try:
                raw = f.readline(MAX_IDS_LINE + 1)
            except OSError as e:
                raise InputError(f"--ids-file {path}: cannot read ({e.strerror})") from None
            if not raw:
                break
            n += 1
            where = f"--ids-file {path}:{n}: (byte offset {offset})"
            offset += len(raw)
            if offset > MAX_IDS_FILE_BYTES:
                raise InputError(f"--ids-file {path}: over the {MAX_IDS_FILE_BYTES // (1024 * 1024)} MiB limit "
                                 "for an ids file (stopped reading there)")
            if len(raw) > MAX_IDS_LINE:
                raise InputError(f"{where}: a line over {MAX_IDS_LINE} bytes: not an id or a range (not shown)")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(f"{where}: not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); "
                                 "is this the right file?") from None
            if "\x00" in line:
                raise InputError(f"{where}: a NUL byte: a binary file, not a list of ids")
            text = line.split("#", 1)[0].strip(" \t\r\n")
            if text:
                parse_ids([text], where, into=out)
    return out.to_list()


def gate_exit_code(*, checked: int, failed: int = 0, unchecked: int = 0, allow_empty: bool = False) -> ExitCode:
    """The verdict every gate shares (``verify``, ``cutover status``, the metrics exporter).

    A gate that looked at zero lotteries — wrong addresses, wrong network, an empty archive,
    an empty ids file — has proven nothing, so it is not green: ``ExitCode.EMPTY`` (5, as
    pytest's "no tests collected"), unless the caller said an empty run is expected.
    """
    if failed:
        return ExitCode.MISMATCH
    if unchecked:
        return ExitCode.BACKEND
    if checked == 0 and not allow_empty:
        return ExitCode.EMPTY
    return ExitCode.OK


EMPTY_HINT = ("the gate verified nothing: check the backend, network and module addresses "
              "(pass --allow-empty if an empty archive is expected)")


def empty_message(what: str = "lotteries") -> str:
    """The one line a gate prints when it checked nothing."""
    return f"EMPTY: 0 {what} checked — {EMPTY_HINT}"


def all_ids(backend: Backend) -> list[int]:
    """Every id of ``history::list_finalized`` (paged), then every pending id not among them, then (where the
    backend can list the legacy archive, from its LegacySummaryEvents) every id only history_bridge holds."""
    finalized = bridge.all_finalized(backend)
    seen = set(finalized)
    out = finalized + [i for i in bridge.pending(backend) if i not in seen]
    legacy_ids = getattr(backend, "legacy_ids", None)
    if legacy_ids is not None:
        seen = set(out)
        out += [i for i in legacy_ids() if i not in seen]
    return out


@dataclass(frozen=True)
class Policy:
    allow_pending: bool = False
    pending_grace: timedelta | None = None

    def passes(self, d: LotteryDiff, now: datetime) -> tuple[bool, str]:
        if d.state is State.OK:
            return True, ""
        if d.state is not State.PENDING or not self.allow_pending:
            return False, ""
        if d.pending_will_match is False:
            return False, "a finalised lottery's expectation will mismatch (the dual_write_mismatch case)"
        if self.pending_grace is not None and d.pending_since is not None:
            age = now - d.pending_since
            if age > self.pending_grace:
                return False, f"pending for {_age(age)}, over the {_age(self.pending_grace)} grace"
            return True, f"pending for {_age(age)}, within the grace"
        if self.pending_grace is not None:
            return True, "pending (its age is not known on this backend: grace not applied)"
        return True, "pending (allowed)"


def _age(t: timedelta) -> str:
    s = int(t.total_seconds())
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"


@dataclass(frozen=True)
class Checked:
    diff: LotteryDiff
    passed: bool
    note: str = ""
    #: wall time of this lottery's own reads and diff (in its worker thread with --jobs > 1)
    duration_s: float = 0.0

    def to_json(self) -> dict:
        return {**self.diff.to_json(), "passed": self.passed, **({"note": self.note} if self.note else {})}


@dataclass(frozen=True)
class Unchecked:
    lottery_id: int
    error: str
    error_type: str
    duration_s: float = 0.0

    def to_json(self) -> dict:
        return {"lottery_id": self.lottery_id, "state": "unchecked", "error": self.error, "error_type": self.error_type}


@dataclass
class VerifyReport:
    backend: str
    started_at: datetime
    duration_s: float
    checked: list[Checked] = field(default_factory=list)
    unchecked: list[Unchecked] = field(default_factory=list)
    policy: Policy = field(default_factory=Policy)
    allow_empty: bool = False  # zero lotteries checked is a pass only when the caller says so

    @property
    def failing(self) -> list[Checked]:
        return [c for c in self.checked if not c.passed]

    @property
    def empty(self) -> bool:
        """Nothing was checked (unchecked lotteries are not "nothing": they exit 3)."""
        return not self.checked and not self.unchecked

    @property
    def exit_code(self) -> ExitCode:
        return gate_exit_code(checked=len(self.checked), failed=len(self.failing), unchecked=len(self.unchecked),
                              allow_empty=self.allow_empty)

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in State}
        for c in self.checked:
            counts[c.diff.state.value] += 1
        counts["unchecked"] = len(self.unchecked)
        return counts

    def to_json(self) -> dict:
        return {
            "backend": self.backend,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 3),
            "total": len(self.checked) + len(self.unchecked),
            "checked": len(self.checked),
            "empty": self.empty,
            "allow_empty": self.allow_empty,
            "passed": sum(c.passed for c in self.checked),
            "failed": len(self.failing),
            "counts": self.counts(),
            "exit_code": int(self.exit_code),
            "clean": self.exit_code == ExitCode.OK,
            "policy": {"allow_pending": self.policy.allow_pending,
                       "pending_grace_s": (self.policy.pending_grace.total_seconds()
                                           if self.policy.pending_grace is not None else None)},
            "lotteries": sorted([c.to_json() for c in self.checked] + [u.to_json() for u in self.unchecked],
                                key=lambda r: r["lottery_id"]),
        }


def verify(backend: Backend, ids: Iterable[int], *, policy: Policy = Policy(), jobs: int = 1,
           progress: Callable[[Checked | Unchecked], None] | None = None, allow_empty: bool = False) -> VerifyReport:
    """Diff every id; a backend failure on one id makes it 'unchecked', never 'ok'; no id at all is EMPTY.

    ``progress`` is called with each result as it is known (from the worker threads with ``jobs`` > 1).
    """
    ids = list(ids)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    report = VerifyReport(backend.describe(), started, 0.0, policy=policy, allow_empty=allow_empty)
    # a node that starts answering for another chain stops the run (ChainChanged): never a report of two chains
    try:
        pending_ids: set[int] | None = set(bridge.pending(backend))
    except ChainChanged:
        raise
    except DualwriteError:
        pending_ids = None  # fall back to one status view per lottery
    now = datetime.now(timezone.utc)
    chain_now = getattr(backend, "chain_now", None)
    if chain_now is not None:  # a simulator whose clock was moved forward, a node's latest block
        try:
            now = max(now, chain_now())
        except ChainChanged:
            raise
        except DualwriteError:
            pass  # ages then count from this machine's clock

    def check(b: Backend, lottery_id: int) -> Checked | Unchecked:
        t = time.perf_counter()
        try:
            d = diff(b, lottery_id, pending_ids=pending_ids)
        except ChainChanged:
            raise
        except DualwriteError as e:
            return Unchecked(lottery_id, str(e), type(e).__name__, time.perf_counter() - t)
        ok, note = policy.passes(d, now)
        return Checked(d, ok, note, time.perf_counter() - t)

    results: list[Checked | Unchecked] = []
    # in-process backends are CPU-bound under the GIL: threads only add contention (measured 12k/s
    # serial vs 4k/s with 8 threads on sim), so they run serially whatever --jobs says
    if jobs <= 1 or len(ids) <= 1 or getattr(backend, "in_process", False):
        for i in ids:
            results.append(check(backend, i))
            if progress:
                progress(results[-1])
    else:
        forks: dict[int, Backend] = {}
        fork = getattr(backend, "fork", None)

        import threading

        def worker(lottery_id: int):
            tid = threading.get_ident()
            if tid not in forks:
                forks[tid] = fork() if fork else backend
            r = check(forks[tid], lottery_id)
            if progress:
                progress(r)
            return r

        try:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(worker, ids))
        finally:
            for b in forks.values():
                if b is not backend:
                    b.close()
    for r in results:
        (report.checked if isinstance(r, Checked) else report.unchecked).append(r)
    report.duration_s = time.perf_counter() - t0
    return report
