"""The runbook's legacy_bridge commands: init, update-flags, set, clear, enable/disable-mirror, mirror,
status, flags, pending."""

from __future__ import annotations

import click

from dualwrite import bridge
from dualwrite.backends.base import TxnResult
from dualwrite.cli.options import backend_options, opened, say_backend, signer_of
from dualwrite.cli.render import emit_json, table
from dualwrite.errors import InputError

LOTTERY_ID = click.IntRange(0, 2**64 - 1)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


class BoolArg(click.ParamType):
    name = "true|false|1|0"

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        try:
            return bridge.parse_bool(value, param.human_readable_name if param else "value")
        except InputError as e:
            self.fail(str(e), param, ctx)


BOOL = BoolArg()


def _txn_out(backend, action: str, txn: TxnResult, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        writer = signer_of(backend)
        signer = {"signed_by": writer.sender} if writer is not None else {}
        emit_json({"backend": backend.describe(), **signer, "action": action, "transaction_hash": txn.hash,
                   "status": txn.status,
                   "vm_status": txn.vm_status, "gas_used": txn.gas_used, "version": txn.version,
                   "block_height": txn.block_height, "confirmed_by": txn.confirmed_by,
                   "events": txn.events, **(extra or {})})
        return
    events = ", ".join(txn.event_names()) or "no events"
    click.echo(f"{action}: {txn.status} (txn {txn.hash}; {events})")
    if txn.confirmed_by:
        click.echo(f"note: the CLI did not report the outcome; it was NOT re-sent — {txn.vm_status}", err=True)


def _transact(cfg, as_json: bool, label: str, call, extra: dict | None = None) -> TxnResult:
    """Open the backend, name it, run one entry function, report it."""
    with opened(cfg) as b:
        say_backend(b, as_json)
        txn = call(b)
        _txn_out(b, label, txn, as_json, extra)
        return txn


@click.command("init")
@click.argument("abort_on_mismatch", type=BOOL)
@click.argument("abort_on_missing", type=BOOL)
@backend_options
@json_option
def init_cmd(abort_on_mismatch, abort_on_missing, cfg, as_json):
    """legacy_bridge::init_dual_write (enabled, with the two abort flags)."""
    _transact(cfg, as_json, f"init_dual_write(abort_on_mismatch={abort_on_mismatch}, abort_on_missing={abort_on_missing})",
              lambda b: bridge.init(b, abort_on_mismatch, abort_on_missing))


@click.command("update-flags")
@click.argument("enabled", type=BOOL)
@click.argument("abort_on_mismatch", type=BOOL)
@click.argument("abort_on_missing", type=BOOL)
@backend_options
@json_option
def update_flags_cmd(enabled, abort_on_mismatch, abort_on_missing, cfg, as_json):
    """legacy_bridge::update_flags."""
    _transact(cfg, as_json, f"update_flags(enabled={enabled}, abort_on_mismatch={abort_on_mismatch}, "
                            f"abort_on_missing={abort_on_missing})",
              lambda b: bridge.update_flags(b, enabled, abort_on_mismatch, abort_on_missing))


def expected_from_summary(files: tuple[str, ...], lottery_id: int) -> bytes:
    from dualwrite.hashing import expected_hash  # only `set --summary` reads summary files
    from dualwrite.inputs import load_summaries

    items = load_summaries(list(files))
    matches = [i for i in items if i.summary.id == lottery_id]
    if not matches:
        ids = ", ".join(str(i.summary.id) for i in items[:10])
        raise InputError(f"--summary: no summary with id {lottery_id} (found {ids or 'none'})")
    return bytes.fromhex(expected_hash(matches[0].summary)[2:])


@click.command("set")
@click.argument("lottery_id", type=LOTTERY_ID)
@click.argument("hash_hex", metavar="HASH", required=False)
@click.option("--summary", "summary_files", multiple=True, metavar="FILE",
              help="Compute the hash from this summary file (any form `dualwrite hash` reads).")
@click.option("--any-length", is_flag=True, help="Send a hash that is not 32 bytes (the chain accepts any bytes).")
@backend_options
@json_option
def set_cmd(lottery_id, hash_hex, summary_files, any_length, cfg, as_json):
    """legacy_bridge::set_expected_hash for LOTTERY_ID: HASH, or the hash of --summary."""
    if bool(hash_hex) == bool(summary_files):
        raise InputError("set: give exactly one of HASH or --summary FILE")
    h = expected_from_summary(summary_files, lottery_id) if summary_files else bridge.parse_hash(hash_hex, "HASH", any_length=any_length)
    _transact(cfg, as_json, f"set_expected_hash({lottery_id}, 0x{h.hex()})",
              lambda b: bridge.set_expected(b, lottery_id, h), {"lottery_id": lottery_id, "expected_hash": "0x" + h.hex()})


@click.command("clear")
@click.argument("lottery_id", type=LOTTERY_ID)
@backend_options
@json_option
def clear_cmd(lottery_id, cfg, as_json):
    """legacy_bridge::clear_expected_hash (no event; a no-op when nothing is pending)."""
    _transact(cfg, as_json, f"clear_expected_hash({lottery_id})", lambda b: bridge.clear(b, lottery_id),
              {"lottery_id": lottery_id})


@click.command("enable-mirror")
@backend_options
@json_option
def enable_mirror_cmd(cfg, as_json):
    """legacy_bridge::enable_legacy_mirror (a no-op when already on)."""
    _transact(cfg, as_json, "enable_legacy_mirror", bridge.enable_mirror)


@click.command("disable-mirror")
@backend_options
@json_option
def disable_mirror_cmd(cfg, as_json):
    """legacy_bridge::disable_legacy_mirror (before maintenance)."""
    _transact(cfg, as_json, "disable_legacy_mirror", bridge.disable_mirror)


@click.command("mirror")
@click.argument("lottery_id", type=LOTTERY_ID)
@backend_options
@json_option
def mirror_cmd(lottery_id, cfg, as_json):
    """history::mirror_summary_admin: re-write the legacy copy from the archive.

    A successful transaction is not proof: with the mirror disabled or the bridge not
    initialised it changes nothing. This command says so; `dualwrite heal` proves it.
    """
    with opened(cfg) as b:
        say_backend(b, as_json)
        txn = bridge.mirror(b, lottery_id)
        wrote = "LegacySummaryEvent" in txn.event_names() or txn.confirmed_by is not None
        _txn_out(b, f"mirror_summary_admin({lottery_id})", txn, as_json,
                 {"lottery_id": lottery_id, "legacy_written": wrote})
        if not wrote and not as_json:
            click.echo("note: no LegacySummaryEvent — the legacy copy was NOT written (mirror disabled or bridge "
                       "not initialised); use `dualwrite heal` to repair and prove it", err=True)


def _status_json(lottery_id: int | None, s: dict, backend) -> dict:
    """A ``DualWriteStatus``'s fields in layout order, bytes as 0x hex (``bridge.status_fields``: no model,
    so no pydantic at start-up)."""
    out = {"lottery_id": lottery_id} if lottery_id is not None else {}
    out.update({k: "0x" + v.hex() if isinstance(v, bytes) else v for k, v in s.items()})
    out["backend"] = backend.describe()
    return out


def _show_fields(b, d: dict, as_json: bool, header: str) -> None:
    """A status-like dict: as JSON, or the backend line and a table of the rest."""
    if as_json:
        emit_json(d)
        return
    say_backend(b, as_json)
    click.echo(table([header, "value"], [(k, "none" if v is None else v) for k, v in d.items() if k != "backend"]))


@click.command("status")
@click.argument("lottery_id", type=LOTTERY_ID)
@backend_options
@json_option
def status_cmd(lottery_id, cfg, as_json):
    """legacy_bridge::dual_write_status for LOTTERY_ID."""
    with opened(cfg) as b:
        _show_fields(b, _status_json(lottery_id, bridge.status_fields(b, lottery_id), b), as_json, "field")


@click.command("flags")
@backend_options
@json_option
def flags_cmd(cfg, as_json):
    """legacy_bridge::dual_write_flags (plus whether the mirror is on)."""
    with opened(cfg) as b:
        d = _status_json(None, bridge.flags_fields(b), b)
        d.pop("expected_hash")
        d["mirror_enabled"] = bridge.is_mirror_enabled(b)
        _show_fields(b, d, as_json, "flag")


@click.command("pending")
@backend_options
@json_option
def pending_cmd(cfg, as_json):
    """legacy_bridge::pending_expected_hashes, in chain order."""
    with opened(cfg) as b:
        ids = bridge.pending(b)
        if as_json:
            emit_json(ids)
            return
        say_backend(b, as_json)
        click.echo(f"{len(ids)} pending: " + (" ".join(map(str, ids)) if ids else "none"))


def register(cli: click.Group) -> None:
    for c in (init_cmd, update_flags_cmd, set_cmd, clear_cmd, enable_mirror_cmd, disable_mirror_cmd, mirror_cmd,
              status_cmd, flags_cmd, pending_cmd):
        cli.add_command(c)
