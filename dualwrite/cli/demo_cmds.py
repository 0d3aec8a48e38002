"""``dualwrite demo``: the whole job, end to end, on the embedded simulator (no chain, no network)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import click

from dualwrite import bridge
from dualwrite.audit.heal import heal
from dualwrite.audit.verify import all_ids, verify
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.cli.render import emit_json, table
from dualwrite.demo import make_summary
from dualwrite.errors import DualwriteError
from dualwrite.hashing import expected_hash
from dualwrite.inputs import load_summaries
from dualwrite.sim.chain import Chain
from dualwrite.sim.tamper import tamper
from dualwrite.words import plural

DRILL_TAMPERS = [
    ("field_drift", {"assignments": ["tickets_sold=1", "status=7"], "fix_hash": True}),
    ("missing_legacy", {"delete": True}),
    ("non_canonical", {"non_canonical": True, "fix_hash": True}),
    ("corrupt_legacy", {"new_bytes": "0x00"}),
    ("corrupt_legacy", {"assignments": ["total_prize_paid=0"]}),  # archive_hash left stale
]


def _step(n: int, text: str, err: bool) -> None:
    click.secho(f"\n[{n}] {text}", bold=True, err=err)


@click.command("demo")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Simulator state file to use (default: a new one in a temporary folder).")
@click.option("--fixtures", type=click.Path(file_okay=False, path_type=Path), default=Path("fixtures/summaries"),
              show_default=True, help="Summaries to register and finalise (generated when the folder is missing).")
@click.option("--drill-count", type=click.IntRange(10, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The story on stderr; a summary object on stdout.")
def demo_cmd(state: Path | None, fixtures: Path, drill_count: int, as_json: bool) -> None:
    """Initialise, register expected hashes, finalise, watch them consumed; then the drift drill:
    finalise N lotteries, tamper five, verify fails naming them, heal, verify passes.

    --json tells the story on stderr and prints a summary on stdout: the state, the fixtures, the
    lotteries tampered (with how), what each verify found, what heal healed, and "ok".
    """
    say = functools.partial(click.echo, err=as_json)
    from dualwrite.cli.options import group_value

    state = state or (Path(group_value("state")) if group_value("state") else None)  # `dualwrite --state F demo`
    if state is None:
        state = Path(tempfile.mkdtemp(prefix="dualwrite-demo-")) / "sim.sqlite"
    chain = Chain(state)
    backend = open_backend(BackendConfig(backend="sim", state=state))
    described = backend.describe()
    say(f"backend: {described}")

    _step(1, "initialise: history + history_bridge, dual-write (abort on mismatch and on missing), mirror on", as_json)
    chain.run("lottery_multi::history::init_history", [])
    chain.run("lottery::history_bridge::init_bridge", [], profile="lottery")
    bridge.init(backend, True, True)
    bridge.enable_mirror(backend)
    f = bridge.flags(backend)
    say(f"  flags: enabled={f.enabled} abort_on_mismatch={f.abort_on_mismatch} "
        f"abort_on_missing={f.abort_on_missing} mirror={bridge.is_mirror_enabled(backend)}")

    _step(2, f"expected hashes of the fixture summaries ({fixtures})", as_json)
    files = sorted(str(p) for p in fixtures.glob("*") if p.is_file()) if fixtures.is_dir() else []
    items = {i.summary.id: i.summary for i in load_summaries(files)} if files else {
        i: make_summary(i) for i in range(1, 6)}
    for lid, s in sorted(items.items()):
        h = expected_hash(s)
        bridge.set_expected(backend, lid, bytes.fromhex(h[2:]))
        say(f"  set_expected_hash({lid}, {h})")
    say(f"  pending: {bridge.pending(backend)}")

    _step(3, "finalise them (history::record_summary: mirror, notify, store)", as_json)
    for lid, s in sorted(items.items()):
        txn = chain.finalize(s)
        names = [e["type"].rsplit("::", 1)[-1] for e in txn["output"]["Move"]["events"]]
        say(f"  lottery {lid}: version {txn['block_height']}: {', '.join(names)}")

    _step(4, "the expectations were consumed", as_json)
    say(table(["lottery", "expected_hash", "history = legacy"],
                     [(lid, bridge.status(backend, lid).expected_hash or "none (consumed)",
                       "yes" if bridge.get_legacy(backend, lid).summary_bcs == items[lid].to_bcs() else "NO")
                      for lid in sorted(items)]))
    pending_after = bridge.pending(backend)
    say(f"  pending: {pending_after or 'none'}")
    events = chain.events("ArchiveDualWriteCompletedEvent")
    say(f"  ArchiveDualWriteCompletedEvent x{len(events)}: "
               + ", ".join(f"lottery {e['data']['lottery_id']} (seq {e['sequence_number']})" for e in events))

    first = 1001
    ids = list(range(first, first + drill_count))
    _step(5, f"drill: finalise {drill_count} more {plural(drill_count, 'lottery')} ({first}-{ids[-1]}), then tamper five "
             "legacy copies", as_json)
    for lid in ids:
        s = make_summary(lid)
        bridge.set_expected(backend, lid, bytes.fromhex(expected_hash(s)[2:]))
        chain.finalize(s)
    step = max(1, drill_count // 5)
    victims = [ids[(k * step + step // 2) % drill_count] for k in range(5)]
    for lid, (kind, how) in zip(victims, DRILL_TAMPERS):
        tamper(chain, lid, **how)
        say(f"  tampered lottery {lid} ({kind}: {', '.join(f'{k}={v}' for k, v in how.items())})")

    _step(6, "verify --all: must fail, naming the five", as_json)
    rep = verify(backend, all_ids(backend), jobs=1)
    bad = [c for c in rep.checked if not c.passed]
    say(table(["lottery", "state", "detail"], [(c.diff.lottery_id, c.diff.state.value, c.diff.reason[:90]) for c in bad]))
    say(f"  exit code {int(rep.exit_code)}: {len(rep.checked)} checked, {len(bad)} failing")

    _step(7, "heal --apply: set the archived hash, mirror, re-read and diff", as_json)
    journal = Path(state).with_suffix(".heal.jsonl")
    hr = heal(backend, None, apply=True, journal=journal)
    for o in hr.outcomes:
        say(f"  lottery {o.lottery_id}: {o.before} -> {'healed' if o.healed else 'NOT healed'} "
            f"({', '.join(o.done)}; after: {o.after})")
    say(f"  journal: {journal}")

    _step(8, "verify --all again: must pass", as_json)
    rep2 = verify(backend, all_ids(backend), jobs=1)
    say(f"  exit code {int(rep2.exit_code)}: {len(rep2.checked)} checked, "
        f"{sum(c.passed for c in rep2.checked)} ok, pending: {bridge.pending(backend) or 'none'}")
    backend.close()
    chain.close()
    story_ok = (int(rep.exit_code) == 1 and sorted(c.diff.lottery_id for c in bad) == sorted(victims)
                and int(rep2.exit_code) == 0 and all(o.healed for o in hr.outcomes))
    if as_json:
        emit_json({"backend": described, "state": str(state), "ok": story_ok,
                   "fixtures": sorted(items), "consumed": not pending_after,
                   "drill": {"lotteries": [ids[0], ids[-1]], "tampered": [
                       {"lottery_id": lid, "kind": kind} for lid, (kind, _) in zip(victims, DRILL_TAMPERS)]},
                   "verify_before": {"exit_code": int(rep.exit_code), "checked": len(rep.checked),
                                     "failing": sorted(c.diff.lottery_id for c in bad)},
                   "heal": {"healed": hr.healed, "not_healed": hr.not_healed, "journal": str(journal)},
                   "verify_after": {"exit_code": int(rep2.exit_code), "checked": len(rep2.checked),
                                    "passed": sum(c.passed for c in rep2.checked)}})
    if not story_ok:
        raise DualwriteError("the demo did not go as the chain should make it go: see above")
    click.secho(f"\ndemo complete: state kept in {state}", fg="green", err=as_json)


def register(cli: click.Group) -> None:
    cli.add_command(demo_cmd)
