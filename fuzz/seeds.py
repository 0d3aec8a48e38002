"""The seed corpus: the repository's fixtures, and what the real components write, in the targets' framing.

- ``bcs``: the canonical bytes of every fixture summary, its legacy copy, status values, an
  event, and a non-canonical copy (as ``sim tamper --non-canonical`` writes it) for the lenient reader;
- ``inputs``: every file of ``fixtures/summaries/`` as it is, under the name it has;
- ``cli_output``: the corpus of real CLI/node outputs in ``tests/cli_outputs/`` (one case per
  form), and what ``dualwrite-supra`` (the simulator's Supra CLI) prints for views, runs,
  aborts in its styles, and bad arguments, captured from real runs on a fresh state;
- ``journal``: the journal of a real ``heal --apply`` of a drifted simulator, whole and torn;
- ``evidence``: evidence files as ``write_json_evidence`` writes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures" / "summaries"


def _write(dest: Path, items: list[bytes]) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    for data in items:
        (dest / hashlib.sha1(data).hexdigest()).write_bytes(data)
    return len(items)


def bcs_seeds() -> list[bytes]:
    from dualwrite.inputs import load_summaries
    from dualwrite.sim.tamper import non_canonical_bytes
    from dualwrite.structs import DualWriteStatus, LegacySummary, LotteryFinalizedEvent

    from targets import MODELS

    def framed(model, body: bytes, lenient: bool = False) -> bytes:
        return bytes([MODELS.index(model) | (0x80 if lenient else 0)]) + body

    out = []
    for item in load_summaries(sorted(str(p) for p in FIXTURES.iterdir())):
        s = item.summary
        raw = s.to_bcs()
        out.append(framed(type(s), raw))
        out.append(framed(type(s), non_canonical_bytes(s), lenient=True))
        legacy = LegacySummary(summary_bcs=raw, archive_hash=hashlib.sha3_256(raw).digest(), finalized_at=s.finalized_at)
        out.append(framed(LegacySummary, legacy.to_bcs()))
        ev = LotteryFinalizedEvent(event_version=1, event_category=3, id=s.id,
                                   archive_slot_hash=hashlib.sha3_256(raw).digest(), primary_type=s.primary_type,
                                   tags_mask=s.tags_mask)
        out.append(framed(LotteryFinalizedEvent, ev.to_bcs()))
    for h in (None, b"", b"\x01" * 32):
        st = DualWriteStatus(enabled=True, abort_on_mismatch=True, abort_on_missing=False, expected_hash=h)
        out.append(framed(DualWriteStatus, st.to_bcs()))
    return out


def input_seeds() -> list[bytes]:
    from targets import INPUT_NAMES, MODELS
    from dualwrite.structs import LotterySummary

    by_suffix = {Path(n).suffix: i for i, n in enumerate(INPUT_NAMES)}
    out = []
    for p in sorted(FIXTURES.iterdir()):
        name_idx = by_suffix.get(p.suffix, 0)
        out.append(bytes([(MODELS.index(LotterySummary) << 2) | name_idx]) + p.read_bytes())
    return out


def cli_output_seeds() -> list[bytes]:
    """Real ``dualwrite-supra`` runs, in-process, on a fresh state in a temporary folder."""
    from dualwrite.sim import supra_cli
    from targets import SEP

    calls = [
        ("named", ["move", "tool", "view", "--function-id", "lottery_multi::legacy_bridge::dual_write_status",
                   "--args", "u64:1"]),
        ("named", ["move", "tool", "run", "--function-id", "lottery_multi::history::init_history", "--assume-yes"]),
        ("named", ["move", "tool", "run", "--function-id", "lottery_multi::legacy_bridge::init_dual_write",
                   "--args", "bool:true", "bool:false", "--assume-yes"]),
        ("named", ["move", "tool", "view", "--function-id", "lottery_multi::legacy_bridge::dual_write_status",
                   "--args", "u64:1"]),
        ("named", ["move", "tool", "view", "--function-id", "lottery_multi::history::get_summary", "--args", "u64:9"]),
        ("named", ["move", "tool", "view", "--function-id", "lottery_multi::legacy_bridge::pending_expected_hashes"]),
        ("named", ["move", "tool", "run", "--function-id", "lottery_multi::legacy_bridge::set_expected_hash",
                   "--args", "u64:x", "--assume-yes"]),
        ("named", ["move", "tool", "run", "--function-id", "lottery_multi::legacy_bridge::set_expected_hash",
                   "--args", "u64:5", "hex:" + "ab" * 32, "--assume-yes"]),
    ] + [(style, ["move", "tool", "run", "--function-id", "lottery_multi::legacy_bridge::init_dual_write",
                  "--args", "bool:true", "bool:false", "--assume-yes"]) for style in ("named", "code", "vmerror")]
    out = []
    for case in sorted((REPO / "tests" / "cli_outputs").glob("*/")):
        code = int((case / "exit").read_text().strip() or 0) if (case / "exit").exists() else 0
        stdout = (case / "stdout").read_bytes() if (case / "stdout").exists() else b""
        stderr = (case / "stderr").read_bytes() if (case / "stderr").exists() else b""
        out.append(bytes([code % 128]) + stdout + SEP + stderr)
    with tempfile.TemporaryDirectory(prefix="dw-fuzz-seeds-") as tmp:
        saved = {k: os.environ.get(k) for k in ("DUALWRITE_STATE", "DUALWRITE_SUPRA_ABORT_STYLE")}
        os.environ["DUALWRITE_STATE"] = str(Path(tmp) / "s.sqlite")
        try:
            for style, argv in calls:
                os.environ["DUALWRITE_SUPRA_ABORT_STYLE"] = style
                so, se = io.StringIO(), io.StringIO()
                with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
                    try:
                        code = supra_cli.run(argv)
                    except SystemExit as e:  # argparse's own exit
                        code = e.code if isinstance(e.code, int) else 2
                out.append(bytes([code % 128]) + so.getvalue().encode() + SEP + se.getvalue().encode())
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return out


def journal_seeds() -> list[bytes]:
    """The journal of a real heal of five drifted lotteries."""
    from dualwrite.audit.heal import heal
    from dualwrite.backends import BackendConfig, open_backend
    from dualwrite.demo import make_summary
    from dualwrite.sim.chain import Chain
    from dualwrite.sim.tamper import tamper

    with tempfile.TemporaryDirectory(prefix="dw-fuzz-seeds-") as tmp:
        state, journal = Path(tmp) / "s.sqlite", Path(tmp) / "j.jsonl"
        chain = Chain(state)
        chain.run("lottery_multi::history::init_history", [])
        chain.run("lottery::history_bridge::init_bridge", [], profile="lottery")
        chain.run("lottery_multi::legacy_bridge::enable_legacy_mirror", [])
        for i in range(1, 7):
            chain.finalize(make_summary(i))
        tamper(chain, 2, assignments=["tickets_sold=5"], fix_hash=True)
        tamper(chain, 3, delete=True)
        tamper(chain, 4, non_canonical=True, fix_hash=True)
        backend = open_backend(BackendConfig(backend="sim", state=state))
        try:
            heal(backend, None, apply=True, journal=journal)
        finally:
            backend.close()
            chain.close()
        whole = journal.read_bytes()
    lines = whole.splitlines(keepends=True)
    torn = b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2]
    return [whole, torn, b"".join(lines[:3])]


def evidence_seeds() -> list[bytes]:
    """Evidence files as ``hash --out`` and ``verify --report`` write them."""
    from dualwrite.evidence import write_json_evidence

    with tempfile.TemporaryDirectory(prefix="dw-fuzz-seeds-") as tmp:
        out = []
        for kind, data in (("hash-records", [{"lottery_id": 1, "expected_hash": "0x" + "ab" * 32}]),
                           ("verify-report", {"total": 2, "checked": 2, "counts": {"ok": 2}, "lotteries": []})):
            p = Path(tmp) / f"{kind}.json"
            write_json_evidence(p, kind, data)
            out.append(p.read_bytes())
        return out


SEEDS = {"bcs": bcs_seeds, "inputs": input_seeds, "cli_output": cli_output_seeds, "journal": journal_seeds,
         "evidence": evidence_seeds}


SEEDS["canary"] = lambda: [b"dwfa"]  # one mutation from the planted crash


def write_seeds(dest: Path, names: list[str] | None = None) -> dict[str, int]:
    """``dest/<target>/`` for each target; returns how many seeds each got."""
    return {name: _write(dest / name, SEEDS[name]()) for name in (names or [n for n in SEEDS if n != "canary"])}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print(write_seeds(Path(sys.argv[1])))
