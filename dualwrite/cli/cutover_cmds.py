"""``dualwrite cutover plan|apply|status``: the cutover as a reviewed plan, a resumable apply, a dashboard."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dualwrite.cli.options import backend_options, opened, say_signer
from dualwrite.cli.progress import progress
from dualwrite.cli.render import emit_json, emit_json_text
from dualwrite.errors import ExitCode, InputError
from dualwrite.words import count, id_ranges

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")


def _duration(text: str, option: str) -> float:
    from dualwrite.cli.audit_cmds import parse_duration

    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not 0 < seconds < float("inf"):
            raise InputError(f"{option} {text!r}: expected a positive duration")
        return seconds
    try:
        return parse_duration(text).total_seconds()
    except InputError:
        raise InputError(f"{option} {text!r}: expected a duration like 90s, 30m, 1h30m or seconds") from None


#: the row outcomes the progress line counts (the ones that went wrong)
_BAD_OUTCOMES = ("conflict", "aborted", "failed")


def _apply_bad(rr) -> str | None:
    outcome = str(rr.outcome)
    return outcome if outcome in _BAD_OUTCOMES else None


def _load(plan_file: Path):
    from dualwrite.cutover.plan import Plan

    return Plan.load(plan_file)


@click.group("cutover")
def cutover_group() -> None:
    """Plan the expected hashes of many lotteries, register them resumably, watch them consumed.

    \b
    dualwrite cutover plan lotteries.jsonl --out plan.json   # review it: one row per lottery
    dualwrite cutover apply plan.json                         # resumable; journal beside the plan
    dualwrite cutover status plan.json --watch --timeout 2h   # until every one is archived and ok
    """


@cutover_group.command("plan")
@click.argument("summaries", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan file (blake3-digested).")
@click.option("--replace", is_flag=True, help="Overwrite conflicting pending hashes (the plan marks each one).")
@backend_options
@json_option
def plan_cmd(summaries, out, replace, cfg, as_json):
    """Plan the cutover of every summary in SUMMARIES (every form `hash` reads; `-` is stdin).

    Each lottery gets a row: register, already_set, conflict, done or archived_mismatch, from the
    chain's state now. --json prints the plan document itself (redirect it to a file to apply it).
    """
    from dualwrite.cutover.plan import make_plan

    with opened(cfg) as b:
        p = make_plan(b, summaries, replace=replace, cfg=cfg)
    raw, p = p.render()
    if out:
        p = p.write(out)
    if as_json:
        emit_json_text(raw.decode("utf-8"))
        return
    click.echo(f"backend: {p.target.describe}")
    f = p.flags
    click.echo(f"chain: dual-write {'on' if f.dual_write_enabled else 'OFF'}, abort_on_mismatch "
               f"{'on' if f.abort_on_mismatch else 'off'}, abort_on_missing {'on' if f.abort_on_missing else 'off'}, "
               f"mirror {'on' if f.mirror_enabled else 'OFF'}, history_bridge "
               f"{'initialised' if f.bridge_initialized else 'NOT initialised'}")
    for w in p.warnings:
        click.echo(f"WARNING: {w}")
    click.echo("inputs: " + ", ".join(f"{i.path} ({count(i.summaries, 'summary')}, blake3 {i.blake3[:16]}…)" for i in p.inputs))
    c = p.counts
    click.echo(f"plan: {count(len(p.rows), 'lottery')}: {c['register']} to register, {c['already_set']} already set, "
               f"{c['conflict']} conflict{' (REPLACED)' if replace and c['conflict'] else ''}, {c['done']} done, "
               f"{c['archived_mismatch']} archived_mismatch; {count(c['to_send'], 'transaction')} to send")
    for r in p.rows:
        if r.state.value in ("conflict", "archived_mismatch"):
            facts = [f"{k} {v}" for k, v in (("pending", r.chain_expected_hash), ("archived", r.archived_hash),
                                               ("planned", r.expected_hash)) if v]
            click.echo(f"  lottery {r.lottery_id}: {r.state.value}: {r.note} ({', '.join(facts)}; {r.source})")
    if out:
        click.echo(f"wrote {out} (blake3 {p.digest})")
    else:
        click.echo("(no --out: nothing written)")


@cutover_group.command("apply")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="Append-only JSON Lines journal [default: PLAN.journal.jsonl beside the plan].")
@click.option("--max-tps", type=click.FloatRange(min=0.01), help="At most this many transactions per second.")
@click.option("--dry-run", is_flag=True, help="Read and re-check everything, send nothing, write nothing.")
@click.option("--keep-going", is_flag=True, help="On a chain abort, go on with the next lottery (exit 4 at the end).")
@click.option("--in-flight", type=click.IntRange(1, 256), metavar="N",
              help="Over RPC: up to N transactions in flight, numbered consecutively, in order [default: 32]; "
                   "the CLI path sends one at a time.")
@backend_options
@json_option
def apply_cmd(plan_file, journal, max_tps, dry_run, keep_going, in_flight, cfg, as_json):
    """Send the plan's set_expected_hash calls, once each, in plan order; resumable after any crash.

    Exit 0 when everything planned is registered (or was already); 1 on a new conflict (stops);
    2 a plan whose digest or target does not match; 3 the backend failed; 4 a chain abort.
    """
    from dualwrite.cutover.apply import Outcome, apply
    from dualwrite.cutover.plan import target_of

    plan = _load(plan_file)
    total = len(plan.to_send)
    with opened(cfg) as b:
        here = target_of(b, cfg)
        if not dry_run:
            say_signer(b)
        with progress("cutover apply", total, _apply_bad) as tick:
            res = apply(b, plan, journal=journal, plan_path=plan_file, target=here, max_tps=max_tps,
                        dry_run=dry_run, keep_going=keep_going, progress=tick, in_flight=in_flight)
    if as_json:
        emit_json(res.to_json())
        raise click.exceptions.Exit(int(res.exit_code))
    click.echo(f"backend: {res.target}")
    if res.journal:
        click.echo(f"journal: {res.journal} (run {res.run_id}{', resumed' if res.resumed else ''})")
    for r in res.rows:
        if r.outcome in (Outcome.CONFLICT, Outcome.ABORTED, Outcome.FAILED):
            click.echo(f"  lottery {r.lottery_id}: {r.outcome.value.upper()}: {r.detail}")
    counts = res.count()
    click.echo(("dry run: " if dry_run else "") + ", ".join(f"{k} {v}" for k, v in counts.items() if v)
               + f" ({len(plan.rows)} planned, {total} to send) in {res.duration_s:.2f}s")
    if res.stopped:
        click.echo(f"STOPPED: {res.stopped}")
    raise click.exceptions.Exit(int(res.exit_code))


@cutover_group.command("status")
@click.argument("plan_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--watch", is_flag=True, help="Refresh until every planned lottery is archived and ok (or a mismatch).")
@click.option("--interval", metavar="DURATION", default="2s", show_default=True, help="With --watch: between refreshes.")
@click.option("--allow-empty", is_flag=True, help="A plan with no lottery exits 0 instead of 5.")
@backend_options
@json_option
def status_cmd(plan_file, watch, watch_timeout, interval, allow_empty, cfg, as_json):
    """How far the cutover of PLAN is: pending, consumed and ok, consumed with a mismatch, unregistered.

    Exit 0 all archived and ok; 1 any mismatch or conflict; 3 the chain could not be read;
    5 the plan checks nothing (0 with --allow-empty); 6 not finished yet (some pending or unregistered;
    also --watch timing out).
    """
    from dualwrite.cutover.plan import check_target, target_of
    from dualwrite.cutover.status import Progress, status, watch as watch_fn

    if watch_timeout and not watch:
        raise InputError("--timeout needs --watch")
    plan = _load(plan_file)
    limit = _duration(watch_timeout, "--timeout") if watch_timeout else None
    every = _duration(interval, "--interval")

    def show(st) -> None:
        c = st.counts()
        line = (f"{len(st.lotteries)} planned: {c['consumed_ok']} consumed and ok, {c['pending']} registered and pending, "
                f"{c['unregistered']} unregistered, {c['consumed_mismatch']} consumed with a mismatch, "
                f"{c['conflict']} conflict")
        if as_json:
            return
        if watch:
            click.echo(f"[{st.watched_s or 0:7.1f}s] {line}")
        else:
            click.echo(line)

    with opened(cfg) as b:
        check_target(plan, target_of(b, cfg), f"plan {plan_file}")
        if not as_json:
            click.echo(f"backend: {b.describe()}")
        st = watch_fn(b, plan, timeout=limit, interval=every, on_refresh=show) if watch else status(b, plan)
    code = ExitCode.OK if allow_empty and st.exit_code is ExitCode.EMPTY else st.exit_code
    if as_json:
        emit_json(st.to_json())
        raise click.exceptions.Exit(int(code))
    if not watch:
        show(st)
    for p in (Progress.CONSUMED_MISMATCH, Progress.CONFLICT, Progress.UNREGISTERED, Progress.PENDING):
        ids = st.ids(p)
        if ids:
            click.echo(f"  {p.value}: {id_ranges(ids)}")
    for x in st.lotteries:
        if x.progress in (Progress.CONSUMED_MISMATCH, Progress.CONFLICT):
            click.echo(f"  lottery {x.lottery_id}: {x.progress.value}: {x.detail}")
    verdict = {ExitCode.OK: "DONE: every planned lottery is archived and its legacy copy is exact",
               ExitCode.MISMATCH: "MISMATCH",
               ExitCode.EMPTY: "EMPTY: the plan has no lottery (nothing was checked)",
               ExitCode.INCOMPLETE: "NOT DONE YET" + (" (watch timed out)" if st.timed_out else "")}[st.exit_code]
    click.echo(verdict)
    raise click.exceptions.Exit(int(code))


def _watch_timeout_option(cmd: click.Command) -> click.Command:
    """``status --timeout D`` is the watch's deadline (as the runbook says it); the backends' seconds per
    Supra CLI call, ``--timeout`` elsewhere, is ``--cli-timeout`` here (its other name everywhere).
    ``--call-timeout`` is what it is on every command: the whole-answer deadline of one RPC request."""
    for p in cmd.params:
        if p.name == "timeout" and isinstance(p, click.Option):
            p.opts = ["--cli-timeout"]
    cmd.params.append(click.Option(["--timeout", "watch_timeout"], metavar="DURATION",
                                   help="With --watch: give up after this long (e.g. 30m, 1h30m); exit 6 then."))
    return cmd


_watch_timeout_option(status_cmd)


def register(cli: click.Group) -> None:
    cli.add_command(cutover_group)
