"""``dualwrite sim ...``: drive what the embedded chain does on its own, and inspect it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from dualwrite.cli.render import emit_json, shorten_hex, table
from dualwrite.errors import InputError, MoveAbort, TransactionFailed
from dualwrite.inputs import load_summaries

STATE_HELP = "Simulator state file (default: $DUALWRITE_STATE, else $SUPRA_HOME/dualwrite-sim.sqlite, else ~/.local/share/dualwrite/sim.sqlite)."


def state_option(f):
    return click.option("--state", type=click.Path(dir_okay=False, path_type=Path), help=STATE_HELP)(f)


def open_chain(state: Path | None, *, create: bool = False):
    """The chain for this command; closed when the command's context closes. Only ``sim init`` creates one."""
    from dualwrite.cli.options import sim_state
    from dualwrite.sim.chain import Chain

    chain = Chain(sim_state(state), lottery_multi=os.environ.get("DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS") or None,
                  lottery=os.environ.get("DUALWRITE_SIM_LOTTERY_ADDRESS") or None, create=create)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(chain.close)
    return chain


@click.group("sim")
def sim_group() -> None:
    """The embedded simulator of legacy_bridge, history and history_bridge."""


@sim_group.command("info")
@state_option
@click.option("--json", "as_json", is_flag=True)
def sim_info(state: Path | None, as_json: bool) -> None:
    """State path, module addresses and the profiles' accounts."""
    chain = open_chain(state)
    info = chain.info()
    if as_json:
        emit_json(info)
        return
    click.echo(f"state    {info['state']} (version {info['version']})")
    for k, v in info["modules"].items():
        click.echo(f"{k:<15}{v}")
    click.echo(table(["profile", "account"], info["profiles"].items()))


@sim_group.command("init")
@state_option
@click.option("--genesis", is_flag=True,
              help="A chain at genesis: the modules published, nothing initialised (to drill init_history and "
                   "init_bridge, their signer checks and aborts).")
@click.option("--dual-write/--no-dual-write", default=False, help="Also legacy_bridge::init_dual_write.")
@click.option("--abort-on-mismatch/--no-abort-on-mismatch", default=True, show_default=True)
@click.option("--abort-on-missing/--no-abort-on-missing", default=False, show_default=True)
@click.option("--mirror/--no-mirror", default=False, help="Also enable_legacy_mirror.")
@click.option("--json", "as_json", is_flag=True)
def sim_init(state, genesis, dual_write, abort_on_mismatch, abort_on_missing, mirror, as_json) -> None:
    """history::init_history and history_bridge::init_bridge (skipping what already exists); with
    --genesis, only the state with the modules published."""
    from dualwrite.sim.chain import Chain
    from dualwrite.sim.genesis import DEPLOY_STEPS, initialised, run_steps

    if genesis and (dual_write or mirror):
        raise click.UsageError("--genesis initialises nothing: it cannot be given with --dual-write or --mirror")
    chain: Chain = open_chain(state, create=True)
    if genesis:
        done = initialised(chain)
        if done:
            raise InputError(f"simulator state {chain.path} is past genesis ({', '.join(done)} exist); "
                             "remove it or choose another --state for a chain at genesis")
        if as_json:
            emit_json({"state": str(chain.path), "genesis": True, "steps": []})
            return
        click.echo(f"backend sim, state {chain.path}: genesis (modules published, nothing initialised)")
        click.echo(f"  history         {chain.addresses.lottery_multi}  (history::init_history not run)")
        click.echo(f"  history_bridge  {chain.addresses.lottery}  (history_bridge::init_bridge not run)")
        return
    steps = list(DEPLOY_STEPS)
    if dual_write:
        steps.append(("lottery_multi", "legacy_bridge::init_dual_write",
                      [f"bool:{str(abort_on_mismatch).lower()}", f"bool:{str(abort_on_missing).lower()}"]))
    if mirror:
        steps.append(("lottery_multi", "legacy_bridge::enable_legacy_mirror", []))
    done = run_steps(chain, steps)
    if as_json:
        emit_json({"state": str(chain.path), "steps": done})
        return
    click.echo(f"backend sim, state {chain.path}")
    for d in done:
        click.echo(f"  {d['function']:<36} {d['result']}")


@sim_group.command("finalize")
@state_option
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
def sim_finalize(state, files, as_json) -> None:
    """history::record_summary for each summary, each its own transaction (as finalisation does)."""
    items = load_summaries(list(files))  # bad input is found before the chain is opened
    chain = open_chain(state)
    results = []
    for item in items:
        try:
            txn = chain.finalize(item.summary)
            results.append({"lottery_id": item.summary.id, "source": item.source, "status": "finalized",
                            "version": txn["block_height"], "transaction_hash": txn["hash"],
                            "events": [e["type"].rsplit("::", 2)[-1] for e in txn["output"]["Move"]["events"]]})
        except MoveAbort as e:
            results.append({"lottery_id": item.summary.id, "source": item.source, "status": "aborted",
                            "abort_code": e.code, "abort_name": e.name, "module": e.module, "message": str(e)})
    if as_json:
        emit_json(results)
    else:
        click.echo(f"backend sim, state {chain.path}")
        for r in results:
            if r["status"] == "finalized":
                click.echo(f"  lottery {r['lottery_id']}: finalized at version {r['version']} ({', '.join(r['events'])})")
            else:
                click.echo(f"  lottery {r['lottery_id']}: ABORTED {r['abort_name']} ({r['abort_code']:#x}) in {r['module']}")
    aborted = [r for r in results if r["status"] == "aborted"]
    if aborted:
        raise click.exceptions.Exit(4)


@sim_group.command("tamper")
@state_option
@click.argument("lottery_id", type=click.IntRange(0, 2**64 - 1))
@click.option("--bytes", "new_bytes", metavar="HEX", help="Replace summary_bcs with these bytes.")
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
              help="Change a summary field (decode, change, re-encode). Repeatable.")
@click.option("--non-canonical", is_flag=True, help="Re-encode the same fields with a non-minimal ULEB128 length.")
@click.option("--finalized-at", type=click.IntRange(0, 2**64 - 1), help="Change LegacySummary.finalized_at.")
@click.option("--fix-hash/--keep-hash", default=False, show_default=True,
              help="Recompute archive_hash over the new bytes, or keep the old one.")
@click.option("--delete", is_flag=True, help="Delete the legacy copy.")
@click.option("--json", "as_json", is_flag=True)
def sim_tamper(state, lottery_id, new_bytes, assignments, non_canonical, finalized_at, fix_hash, delete, as_json) -> None:
    """Corrupt the legacy copy of LOTTERY_ID behind the chain's back, for drills."""
    from dualwrite.sim.tamper import tamper

    chain = open_chain(state)
    result = tamper(chain, lottery_id, new_bytes=new_bytes, assignments=list(assignments), non_canonical=non_canonical,
                    finalized_at=finalized_at, fix_hash=fix_hash, delete=delete)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"backend sim, state {chain.path}: lottery {lottery_id} legacy copy {result['action']}")
        if result.get("archive_hash"):
            click.echo(f"  archive_hash {result['archive_hash']}  summary_bcs {shorten_hex(result['summary_bcs'])}")


@sim_group.command("events")
@state_option
@click.option("--type", "type_name", help="Event struct name, e.g. ArchiveDualWriteCompletedEvent.")
@click.option("--lottery", "lottery_id", type=click.IntRange(0, 2**64 - 1))
@click.option("--limit", type=click.IntRange(1), help="Only the last N.")
@click.option("--json", "as_json", is_flag=True)
def sim_events(state, type_name, lottery_id, limit, as_json) -> None:
    """The event log, oldest first."""
    chain = open_chain(state)
    events = chain.events(type_name, lottery_id, limit)
    if as_json:
        emit_json(events)
        return
    click.echo(table(
        ["version", "seq", "event", "lottery", "data"],
        [(e["version"], e["sequence_number"], e["type"].rsplit("::", 1)[-1],
          e["data"].get("lottery_id", e["data"].get("id", "")),
          " ".join(f"{k}={shorten_hex(v, 6) if isinstance(v, str) and v.startswith('0x') else v}"
                   for k, v in e["data"].items() if k not in ("lottery_id", "id", "event_version")))
         for e in events]))


@sim_group.command("clock")
@state_option
@click.option("--advance", metavar="DURATION", help="Move the clock forward (3h, 90m, 1h30m, seconds); the chain "
                                                    "produces an empty block at the new time.")
@click.option("--json", "as_json", is_flag=True)
def sim_clock(state, advance, as_json) -> None:
    """The simulator's clock (block timestamps come from it) and its latest block."""
    from dualwrite.cli.audit_cmds import parse_duration
    from dualwrite.sim.chain import block_header

    chain = open_chain(state)
    if advance is not None:
        seconds = parse_duration(advance, "--advance").total_seconds()
        chain.advance_clock(seconds)
    now = chain.clock_us()
    latest = chain.block()
    doc = {"state": str(chain.path), "now_us": now, "now": _iso(now),
           "offset_s": int(chain.store.meta_get("clock_offset_us") or 0) / 1e6,
           "latest_block": block_header(latest) if latest else None}
    if as_json:
        emit_json(doc)
        return
    click.echo(f"backend sim, state {chain.path}")
    click.echo(f"  clock   {doc['now']} (wall clock {'+' if doc['offset_s'] >= 0 else ''}{doc['offset_s']:g}s)")
    if latest:
        click.echo(f"  latest block {latest['height']} at {_iso(latest['timestamp_us'])}")
    else:
        click.echo("  no block yet")


def _iso(us: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(us / 1e6, timezone.utc).isoformat(timespec="seconds")


@sim_group.command("serve")
@state_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless you say so).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 picks a free port.")
@click.option("--fault", "faults", multiple=True, metavar="KIND=VALUE",
              help="Drills: 503=20%, 429=10% (with retry-after=SECONDS), latency=50ms, drop=5% (requests); "
                   "txn-drop=10% (accepted, never executed), mempool-full=20% (503 on submit), mempool-size=N, "
                   "commit-delay=200ms, node-hash=smr (transactions). Repeatable.")
@click.option("--fault-seed", type=int, help="Seed of the fault draws (reproducible drills).")
@click.option("--log", is_flag=True, help="Log each request on stderr.")
@click.option("--require-header", metavar="'NAME: VALUE'",
              help="Answer 401 to requests without this header (a provider's key, for --rpc-header drills).")
@click.option("--env", "as_env", is_flag=True,
              help="Once listening, print NAME=value lines (DUALWRITE_RPC_URL, the module addresses, DUALWRITE_STATE, "
                   "DUALWRITE_SIM_SERVE_PID) instead of the URL, then close stdout and keep serving: "
                   "set -a; eval \"$(dualwrite sim serve --env &)\"; set +a.")
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Once listening, write those lines to FILE (atomically; removed again when it stops).")
def sim_serve(state, host, port, faults, fault_seed, log, require_header, as_env, env_file) -> None:
    """Serve the simulator's state as a Supra RPC node does (views, events, blocks, transactions, accounts, and
    signed transactions submitted to it: `dualwrite sim key` writes a profile's key).

    The first line on stdout is the base URL (http://127.0.0.1:PORT); with --env, the NAME=value lines a
    client needs. Stops on SIGINT or SIGTERM.
    """
    from dualwrite.sim.server import Faults, parse_fault, serve
    from dualwrite.sim.store import default_state_path

    path = Path(state) if state else default_state_path()
    if not path.exists():  # a node serves a chain that exists; a mistyped path must not create one
        raise InputError(f"--state {path}: no such simulator state (create it with dualwrite sim init)")
    f = Faults(seed=fault_seed)
    for text in faults:
        parse_fault(text, f)

    if env_file is not None and not env_file.parent.is_dir():
        raise InputError(f"--env-file {env_file}: folder {env_file.parent} does not exist")
    written: list[Path] = []

    def announce(server) -> None:
        import shlex

        lines = [f"{k}={shlex.quote(v)}" for k, v in server.env().items()]
        if env_file is not None:
            _write_atomically(env_file, "".join(ln + "\n" for ln in lines))
            written.append(env_file)
        if as_env:
            click.echo("\n".join(lines))
            sys.stdout.flush()
            # nothing more goes to stdout: a reader of it ($(...)) sees its end now, the server keeps serving
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        else:
            click.echo(server.base_url)
            sys.stdout.flush()
        click.echo(f"serving simulator state {path} at {server.base_url} (pid {os.getpid()}; Ctrl-C or SIGTERM "
                   f"stops)" + (f"; faults: {', '.join(faults)}" if faults else "")
                   + (f"; wrote {env_file}" if env_file is not None else ""), err=True)

    need = None
    if require_header:
        from dualwrite.backends.rpc import parse_headers

        ((name, value),) = parse_headers([require_header]).items()
        need = (name, value)
    try:
        serve(path, host, port, f, log=log, announce=announce, require_header=need)
    finally:
        for w in written:
            w.unlink(missing_ok=True)  # a stale file would name a node that is gone


def _write_atomically(path: Path, text: str) -> None:
    """Whole or not at all: a reader polling for the file never sees half of it."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@sim_group.command("key")
@state_option
@click.argument("profile")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Write the private key file here (mode 0600).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--json", "as_json", is_flag=True)
def sim_key(state, profile, out, force, as_json) -> None:
    """Write PROFILE's Ed25519 private key file (the key the emulated node knows for its account).

    Every simulator account is rotated (a fixed address, its key's authentication key), so sign as it with
    --sender ACCOUNT, e.g. `dualwrite set 5 HASH --rpc-url URL --private-key-file FILE --sender ACCOUNT`.
    """
    from dualwrite.sim.accounts import PROFILE_NAME
    from dualwrite.sim.keys import issue
    from dualwrite.txn import Signer, write_key_file

    if not PROFILE_NAME.match(profile):
        raise InputError(f"PROFILE {profile!r}: not a profile name (letters, digits, '_' and '-')")
    chain = open_chain(state)
    account = chain.addresses.account(profile)
    seed = issue(chain.store, profile, account)
    write_key_file(out, seed, force=force)
    auth = "0x" + Signer(seed, source="simulator").auth_key.hex()
    doc = {"state": str(chain.path), "profile": profile, "account": account, "authentication_key": auth,
           "key_file": str(out)}
    if as_json:
        emit_json(doc)
        return
    click.echo(f"wrote {out} (mode 0600): the key of profile {profile}, account {account}")
    click.echo(f"  sign as it: --private-key-file {out} --sender {account}")


@sim_group.command("reset")
@state_option
@click.option("--yes", is_flag=True, help="Do not ask.")
def sim_reset(state, yes) -> None:
    """Delete the simulator state (every summary, expectation and event)."""
    from dualwrite.sim.store import default_state_path

    from dualwrite.cli.options import sim_state

    state = sim_state(state)
    path = Path(state) if state else default_state_path()
    if not yes:
        try:
            confirmed = click.confirm(f"Delete simulator state {path}?", default=False, err=True)
        except click.Abort:  # no terminal answer (EOF): not confirmed, a usage error, not exit 1 ("drift")
            click.echo("", err=True)
            confirmed = False
        if not confirmed:
            raise InputError("reset not confirmed (pass --yes)")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    click.echo(f"removed {path}")


@sim_group.command("install-supra")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="supra", show_default=True)
def install_supra(directory: Path, name: str) -> None:
    """Install dualwrite-supra as DIRECTORY/NAME, so the local backend finds `supra` on PATH."""
    from dualwrite.sim.install import install_supra_script

    path = install_supra_script(directory, name)
    click.echo(f"installed {path} (dualwrite-supra, embedded simulator)")


@sim_group.group("image")
def image_group() -> None:
    """The container image of dualwrite-supra (for the docker and podman backends)."""


@image_group.command("build")
@click.option("--engine", type=click.Choice(["podman", "docker"]), default="podman", show_default=True)
@click.option("--tag", default="localhost/dualwrite-supra:latest", show_default=True)
@click.option("--base", default=None, metavar="IMAGE",
              help="A Python base image the engine has or can pull (docker.io/library/python:3.11-slim): pip then "
                   "installs from its index. Default: a base made from Debian's packages (mmdebstrap) and a "
                   "wheelhouse, so no registry and no network in the build.")
def image_build(engine, tag, base) -> None:
    """Build the image from the Containerfile (the package installed with pip; no registry needed)."""
    import time

    from dualwrite.sim import image

    t0 = time.monotonic()
    image_id = image.build_image(engine, tag, base=base)
    click.echo(f"built {tag} ({image_id}) with {engine} in {time.monotonic() - t0:.1f}s: "
               "/supra/supra is dualwrite-supra")


def register(cli: click.Group) -> None:
    cli.add_command(sim_group)


__all__ = ["register", "state_option", "open_chain", "TransactionFailed"]
