"""hash, encode, decode, evidence: the off-chain side (no backend involved)."""

from __future__ import annotations

from pathlib import Path

import click

from dualwrite.bcs import parse_hex
from dualwrite.errors import FieldError, InputError, MismatchFound
from dualwrite.evidence import check_evidence, write_json_evidence
from dualwrite.hashing import expected_hash
from dualwrite.inputs import load_summaries, parse_struct_inputs, read_source
from dualwrite.cli.render import emit_json, shorten_hex, table
from dualwrite.structs import STRUCT_TYPES
from dualwrite.words import count, plural

TYPE_CHOICE = click.Choice(sorted(STRUCT_TYPES), case_sensitive=True)


def hash_records(files: list[str]) -> list[dict]:
    """The records of ``dualwrite hash``: the old ``history_backfill.sh dry-run`` artifact fields."""
    records = []
    for item in load_summaries(files):
        data = item.summary.to_bcs()
        records.append(
            {
                "lottery_id": item.summary.id,
                "size_bytes": len(data),
                "summary_hex": "0x" + data.hex(),
                "expected_hash": expected_hash(data),
                "source": item.source,
                "form": item.form,
            }
        )
    return records


@click.command("hash")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON array of records on stdout.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the records as a blake3-digested evidence file.")
def hash_cmd(files: tuple[str, ...], as_json: bool, out: Path | None) -> None:
    """Expected hash (SHA3-256 of canonical BCS) of every summary in FILES.

    FILES may be JSON summaries, JSON arrays, JSON Lines, view envelopes
    ({"result": [...]}), binary .bcs, or hex text; '-' reads standard input.
    """
    records = hash_records(list(files))
    digest = write_json_evidence(out, "hash-report", records) if out else None
    if as_json:
        emit_json(records)
        return
    click.echo(table(
        ["lottery_id", "bytes", "expected_hash", "summary", "source"],
        [(r["lottery_id"], r["size_bytes"], r["expected_hash"], shorten_hex(r["summary_hex"], 8), r["source"]) for r in records],
    ))
    if digest:
        click.echo(f"wrote {out} (blake3 {digest})")


@click.command("encode")
@click.argument("file")
@click.option("--type", "type_name", type=TYPE_CHOICE, default="LotterySummary", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON records with source and hex.")
def encode_cmd(file: str, type_name: str, as_json: bool) -> None:
    """Canonical BCS hex of each JSON value in FILE ('-' for stdin)."""
    model = STRUCT_TYPES[type_name]
    items = parse_struct_inputs(read_source(file), file, model)
    if not items:
        raise InputError(f"{file}: no {type_name} in it (an empty array, result or Option)")
    if as_json:
        emit_json([{"source": src, "type": type_name, "bcs_hex": "0x" + v.to_bcs().hex()} for src, v, _ in items])
        return
    for _, value, _ in items:
        click.echo("0x" + value.to_bcs().hex())


@click.command("decode")
@click.argument("source")
@click.option("--type", "type_name", type=TYPE_CHOICE, default="LotterySummary", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The Move JSON value only.")
def decode_cmd(source: str, type_name: str, as_json: bool) -> None:
    """Strictly decode BCS (hex text, a hex/.bcs FILE, or '-') into Move JSON."""
    model = STRUCT_TYPES[type_name]
    if source != "-" and _is_file(source):
        label = source
        raw = read_source(source)
        data = raw if source.endswith(".bcs") else _hex_or_binary(raw, source)
    elif source == "-":
        label = "<stdin>"
        data = _hex_or_binary(read_source("-"), label)
    else:
        label = "argument SOURCE"
        try:
            data = parse_hex(source, label)
        except FieldError as e:
            raise InputError(f"argument SOURCE is neither a file nor hex: {e.reason}") from None
    try:
        value = model.from_bcs(data)
    except InputError as e:
        raise e.with_source(label) from None
    if as_json:
        emit_json(value.to_move_json())
        return
    click.echo(f"{model.__move_name__} ({count(len(data), 'byte')})")
    click.echo(table(["field", "value"], [(n, model.human_value(n, getattr(value, n))) for n in model.field_names()]))
    if type_name == "LotterySummary":
        click.echo(f"expected_hash  {expected_hash(data)}")


def _is_file(source: str) -> bool:
    """Whether SOURCE names a file; a long hex argument is too long a name, not an error."""
    try:
        return Path(source).exists()  # a device or pipe too (read bounded); a folder is refused when read
    except (OSError, ValueError):  # ENAMETOOLONG; a NUL character
        return False


#: bytes that never occur in hex text but are everywhere in BCS (small integers, bools)
_BINARY_ONLY = frozenset(range(0x00, 0x09)) | frozenset(range(0x0E, 0x20)) | {0x7F}


def _hex_or_binary(raw: bytes, name: str) -> bytes:
    """Hex text, or else the BCS bytes themselves. BCS is often all ASCII (``01 00 01 00``
    is a DualWriteStatus), so a control byte, not a failed ASCII decoding, marks it binary."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return raw
    if not raw or not _BINARY_ONLY.isdisjoint(raw):
        return raw
    try:
        return parse_hex(text, name)
    except FieldError as e:
        reason = e.reason if e.reason.startswith("not hex") else f"not hex: {e.reason}"
        raise InputError(f"{name}: {reason}") from None


@click.group("evidence")
def evidence_group() -> None:
    """Check the blake3 digests that dualwrite's evidence files carry."""


@evidence_group.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def evidence_check(files: tuple[Path, ...], as_json: bool) -> None:
    """Exit 0 when every FILE still matches its recorded digest, 1 otherwise."""
    results = [check_evidence(f) for f in files]
    if as_json:
        emit_json([{"path": r.path, "kind": r.kind, "recorded": r.recorded, "actual": r.actual, "ok": r.ok} for r in results])
    else:
        for r in results:
            click.echo(f"{'ok' if r.ok else 'MODIFIED'}  {r.path}  blake3 {r.actual}" + ("" if r.ok else f" (recorded {r.recorded})"))
    bad = [r.path for r in results if not r.ok]
    if bad:
        raise MismatchFound(f"{count(len(bad), 'evidence file')} {plural(len(bad), 'does')} not match "
                            f"{plural(len(bad), 'its')} digest: {', '.join(bad)}")


def register(cli: click.Group) -> None:
    for cmd in (hash_cmd, encode_cmd, decode_cmd, evidence_group):
        cli.add_command(cmd)
