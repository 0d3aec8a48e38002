"""diff, verify (the CI gate) and heal."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import click

from dualwrite.audit import junit
from dualwrite.audit.diff import diff as diff_one
from dualwrite.audit.heal import DEFAULT_RESUME_WITHIN, repair_journal
from dualwrite.audit.heal import heal as run_heal
from dualwrite.audit.verify import Checked, IdSet, Policy, all_ids, empty_message, ids_from_file, parse_ids, verify
from dualwrite.cli.options import backend_options, opened, say_backend, say_signer
from dualwrite.cli.progress import progress
from dualwrite.cli.render import emit_json, table
from dualwrite.errors import InputError
from dualwrite.evidence import write_evidence_with_sidecar, write_json_evidence
from dualwrite.words import count

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


#: the longest duration accepted (a grace or resume window past 100 years is a typo)
MAX_DURATION = timedelta(days=36500)


def parse_duration(text: str, what: str = "--pending-grace") -> timedelta:
    """``2h``, ``30m``, ``90s``, ``1h30m``, ``2d`` or plain seconds (ASCII digits), at most 100 years."""
    t = text.strip().lower()
    parts = re.fullmatch(r"([0-9]{1,12})|(?:([0-9]{1,12})d)?(?:([0-9]{1,12})h)?(?:([0-9]{1,12})m)?(?:([0-9]{1,12})s)?", t)
    if not t or not parts or not any(parts.groups()):
        raise InputError(f"{what} {text[:40]!r}: expected a duration like 2h, 30m, 1h30m, 2d or seconds")
    secs, d, h, m, s = (int(x or 0) for x in parts.groups())
    total = secs + s + 60 * m + 3600 * h + 86400 * d
    if total > MAX_DURATION.total_seconds():
        raise InputError(f"{what} {text[:40]!r}: over the longest accepted duration (100 years)")
    return timedelta(seconds=total)


def _verify_bad(r) -> str | None:
    """What went wrong with one verify result, for the progress line."""
    if isinstance(r, Checked):
        return None if r.passed else "failed"
    return "unchecked"


def _heal_bad(o) -> str | None:
    """What went wrong with one heal outcome, for the progress line."""
    if o.error_kind:
        return "errors"
    return None if o.healed or o.verdict in ("nothing", "waiting") else "not healed"


def _print_diff(d) -> None:
    click.echo(f"lottery {d.lottery_id}: {d.state.value} — {d.reason}")
    if d.fields:
        click.echo("\n".join("    " + ln for ln in table(["field", "history", "legacy"],
                                                            [(f.field, f.history, f.legacy) for f in d.fields]).splitlines()))
    hashes = [("history hash", d.history_hash), ("legacy bytes hash", d.legacy_bytes_hash),
              ("legacy archive_hash", d.legacy_archive_hash), ("pending expectation", d.expected_hash)]
    for label, value in hashes:
        if value:
            click.echo(f"    {label:<20} {value}")


@click.command("diff")
@click.argument("ids", nargs=-1, required=True)
@backend_options
@json_option
def diff_cmd(ids, cfg, as_json):
    """Compare history and history_bridge for each lottery (ids or ranges like 10-20), field by field.

    Exit 0 when every one is ok, 1 otherwise.
    """
    lottery_ids = parse_ids(ids, "LOTTERY_ID")
    with opened(cfg) as b:
        diffs = [diff_one(b, i) for i in lottery_ids]
        if as_json:
            emit_json({"backend": b.describe(), "lotteries": [d.to_json() for d in diffs]})
        else:
            say_backend(b, as_json)
            for d in diffs:
                _print_diff(d)
    if any(not d.ok for d in diffs):
        raise click.exceptions.Exit(1)


@click.command("verify")
@click.argument("ids", nargs=-1)
@click.option("--ids-file", type=click.Path(dir_okay=False, path_type=Path), help="Ids or ranges, one per line.")
@click.option("--all", "all_", is_flag=True, help="Every id of history::list_finalized, plus every pending id.")
@click.option("--allow-pending", is_flag=True, help="Pending expectations pass (normal during a cutover).")
@click.option("--pending-grace", metavar="DURATION", help="With --allow-pending: pending longer than this fails (e.g. 2h).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True, help="Concurrent checks.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report (blake3-digested).")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path), help="Write JUnit XML (+ FILE.b3).")
@click.option("--show", type=click.Choice(["failing", "all"]), default="failing", show_default=True,
              help="Which lotteries the table lists.")
@click.option("--allow-empty", is_flag=True,
              help="Checking zero lotteries passes (exit 0) instead of exit 5 (e.g. a fresh, empty archive).")
@backend_options
@json_option
def verify_cmd(ids, ids_file, all_, allow_pending, pending_grace, jobs, report, junit_file, show, allow_empty, cfg,
               as_json):
    """The CI gate: exit 0 only when every lottery's legacy copy is exactly its archived summary.

    Exit 1 when any lottery is in a failing state; 3 when none failed but some could not be checked;
    5 when it checked no lottery at all (unless --allow-empty).
    """
    if pending_grace and not allow_pending:
        raise InputError("--pending-grace needs --allow-pending")
    policy = Policy(allow_pending, parse_duration(pending_grace) if pending_grace else None)
    wanted = IdSet()  # one bound for the whole run: arguments, --ids-file and --all together
    parse_ids(ids, "LOTTERY_ID", into=wanted)
    if ids_file:
        ids_from_file(ids_file, into=wanted)
    with opened(cfg) as b:
        if all_:
            wanted.add(all_ids(b), "--all")
        lottery_ids = wanted.to_list()
        if not ids and not ids_file and not all_:
            raise InputError("verify: give lottery ids, ranges, --ids-file or --all")
        with progress("verify", len(lottery_ids), _verify_bad) as tick:
            rep = verify(b, lottery_ids, policy=policy, jobs=jobs, progress=tick, allow_empty=allow_empty)
    doc = rep.to_json()
    written = []
    if report:
        written.append(f"{report} (blake3 {write_json_evidence(report, 'verify-report', doc)})")
    if junit_file:
        written.append(f"{junit_file} (blake3 {write_evidence_with_sidecar(junit_file, junit.render(rep))})")
    if as_json:
        emit_json(doc)
        if rep.empty and not allow_empty:
            click.echo(f"dualwrite verify: {empty_message()}", err=True)
    elif rep.empty:
        click.echo(f"backend: {rep.backend}")
        click.echo(empty_message() if not allow_empty else "CLEAN (empty, allowed by --allow-empty): 0 lotteries checked")
        for w in written:
            click.echo(f"wrote {w}")
    else:
        click.echo(f"backend: {rep.backend}")
        rows = [(c.diff.lottery_id, c.diff.state.value + ("" if c.passed else " FAIL"),
                 c.diff.reason + (f" ({c.note})" if c.note else "")) for c in rep.checked if show == "all" or not c.passed]
        rows += [(u.lottery_id, "unchecked", u.error) for u in rep.unchecked]
        if rows:  # in ascending id order, as the JSON report and the JUnit XML list them
            click.echo(table(["lottery", "state", "detail"], sorted(rows, key=lambda r: r[0])))
        counts = ", ".join(f"{k} {v}" for k, v in doc["counts"].items() if v)
        verdict = {0: "CLEAN", 1: "FAILED", 3: "INCOMPLETE (some lotteries could not be checked)"}[int(rep.exit_code)]
        click.echo(f"{verdict}: {count(doc['total'], 'lottery')}, {doc['passed']} passed, {doc['failed']} failed"
                   f"{', ' + str(len(rep.unchecked)) + ' unchecked' if rep.unchecked else ''} ({counts}) "
                   f"in {rep.duration_s:.2f}s")
        for w in written:
            click.echo(f"wrote {w}")
    raise click.exceptions.Exit(int(rep.exit_code))


@click.command("heal")
@click.argument("ids", nargs=-1)
@click.option("--apply", is_flag=True, help="Execute the plan (the default is a dry run that prints it).")
@click.option("--enable-mirror", is_flag=True, help="Turn a disabled mirror on for the repair, and off again after.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="Append-only JSON Lines journal [default: ~/.local/state/dualwrite/heal-journal.jsonl].")
@click.option("--journal-repair", is_flag=True,
              help="First set the journal's damaged lines aside in JOURNAL.rejected, then go on.")
@click.option("--resume-within", metavar="DURATION", default="12h", show_default=True,
              help="An interrupted run on this chain is continued only if its last record is this recent.")
@click.option("--in-flight", type=click.IntRange(1, 256), metavar="N",
              help="Over RPC: up to N transactions in flight, numbered consecutively, in order [default: 32]; "
                   "the CLI path sends one at a time.")
@backend_options
@json_option
def heal_cmd(ids, apply, enable_mirror, journal, journal_repair, resume_within, in_flight, cfg, as_json):
    """Repair the given lotteries (ids or ranges), or every failing one, and prove each repair.

    Order on chain: set_expected_hash(archived hash), then mirror_summary_admin, then re-read
    and diff. A lottery is reported healed only when that diff says ok. Exit 0 when all are
    healed (or, dry run, all can be); 1 when some are not; 4 on a chain abort; 3 backend failure.
    """
    lottery_ids = parse_ids(ids, "LOTTERY_ID") if ids else None
    within = parse_duration(resume_within, "--resume-within") if resume_within != "12h" else DEFAULT_RESUME_WITHIN
    repaired = None
    if journal_repair:
        rejected, n = repair_journal(journal)
        repaired = f"journal repair: {count(n, 'damaged line')} set aside in {rejected}" if n else "journal repair: nothing to repair"
        if not as_json:
            click.echo(repaired)
    with opened(cfg) as b:
        if apply and getattr(b, "read_only", False):
            raise InputError(b.refusal("heal --apply writes"))
        if apply:
            say_signer(b)
            with progress("heal", None, _heal_bad) as tick:
                rep = run_heal(b, lottery_ids, apply=True, enable_mirror=enable_mirror, journal=journal,
                               resume_within=within, progress=tick, in_flight=in_flight,
                               on_plan=lambda hp: setattr(tick, "total", len(hp.lotteries)))
        else:
            rep = run_heal(b, lottery_ids, apply=False, enable_mirror=enable_mirror, journal=journal,
                           resume_within=within)
    if as_json:
        doc = rep.to_json()
        if repaired:
            doc["journal_repair"] = repaired
        emit_json(doc)
        raise click.exceptions.Exit(int(rep.exit_code))
    p = rep.plan
    click.echo(f"backend: {p.backend}")
    click.echo(f"chain: dual-write {'on' if p.control_enabled else 'off'}, abort_on_missing "
               f"{'on' if p.abort_on_missing else 'off'}, mirror {'on' if p.mirror_enabled else 'OFF'}, "
               f"history_bridge {'initialised' if p.bridge_initialized else 'NOT initialised'}")
    if not p.lotteries:
        click.echo("nothing to heal: no failing lottery")
    if not apply:
        click.echo("plan (dry run; --apply executes it):")
        for s in p.pre:
            click.echo(f"  first: {s.describe()}")
        for lp in p.lotteries:
            click.echo(f"  lottery {lp.lottery_id}: {lp.diff.state.value} -> {lp.verdict}: {lp.why}")
            for i, s in enumerate(lp.steps, 1):
                click.echo(f"      {i}. {s.describe()}")
            if lp.verdict == "repair":
                click.echo(f"      {len(lp.steps) + 1}. re-read both archives and diff: healed only if ok")
        for s in p.post:
            click.echo(f"  last: {s.describe()}")
    else:
        click.echo(f"journal: {rep.journal} (run {rep.run_id}{', resumed' if rep.resumed else ''})")
        for n in rep.notes:
            click.echo(f"  note: {n}")
        for m in rep.mirror_steps[:1] if rep.mirror_steps and rep.mirror_steps[0].action == "enable" else []:
            click.echo(f"  mirror: {m.human()}")
        for o in rep.outcomes:
            steps = ", ".join(o.done) + (f" (skipped, done before: {', '.join(o.skipped)})" if o.skipped else "")
            if o.healed and o.before == "ok":
                line = "ok, nothing to do"
            elif o.healed:
                line = f"HEALED ({steps}); re-read diff: ok"
            elif o.verdict in ("unhealable", "blocked", "nothing", "waiting"):
                line = f"NOT healed: {o.verdict}: " + next(lp.why for lp in p.lotteries if lp.lottery_id == o.lottery_id)
            else:
                line = f"NOT healed: after {steps or 'no step'}: {o.after}" + (f" — {o.error}" if o.error else "")
            click.echo(f"  lottery {o.lottery_id}: {o.before} -> {line}")
        for m in rep.mirror_steps:
            if not (m is rep.mirror_steps[0] and m.action == "enable"):
                click.echo(f"  mirror: {m.human()}")
        for e in rep.global_errors:
            click.echo(f"  error: {e}")
        healed = rep.to_json()
        click.echo(f"{len(healed['healed'])} healed, {len(healed['not_healed'])} not healed")
    raise click.exceptions.Exit(int(rep.exit_code))


def register(cli: click.Group) -> None:
    for c in (diff_cmd, verify_cmd, heal_cmd):
        cli.add_command(c)
