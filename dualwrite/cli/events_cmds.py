"""``dualwrite events``: the dual-write and legacy events (runbook step 3), from the node or the simulator."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click

from dualwrite.backends.events import INDEX_KINDS, KINDS, EventIndex, event_type, lottery_of, page_through
from dualwrite.cli.options import backend_options, opened
from dualwrite.cli.render import shorten_hex, table
from dualwrite.errors import InputError
from dualwrite.words import count

_stop = threading.Event()  # set by nothing but Ctrl-C's KeyboardInterrupt path: wait(t) is an interruptible poll


def _rows(source, addresses, kinds, start, end, lotteries, cursor, limit):
    """Events of ``kinds`` with start <= height < end, oldest first; (rows, resume cursor or None)."""
    rows, resume = [], None
    for kind in kinds:
        got = 0
        for data, cur in page_through(source, event_type(addresses, kind), start, end, cursor, want=limit):
            got += len(data)
            for item in data:
                lid = lottery_of(item.get("event") or {})
                if lotteries and lid not in lotteries:
                    continue
                rows.append((int(item.get("block_height", 0)), list(KINDS).index(kind), kind, lid, item))
            if limit is not None and got >= limit:
                resume = cur
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows, resume


def _emit(rows, as_json: bool, header: bool) -> None:
    if as_json:
        for height, _, kind, lid, item in rows:
            ev = item.get("event") or {}
            click.echo(json.dumps({"kind": kind, "lottery_id": lid, "block_height": height,
                                   "transaction_hash": item.get("transaction_hash"),
                                   "type": ev.get("type"), "sequence_number": ev.get("sequence_number"),
                                   "data": ev.get("data")}, separators=(",", ":")))
        return
    if not rows and not header:
        return
    lines = table(["height", "kind", "lottery", "seq", "data"],
                  [(h, kind, "" if lid is None else lid, (item.get("event") or {}).get("sequence_number", ""),
                    " ".join(f"{k}={shorten_hex(v, 6) if isinstance(v, str) and v.startswith('0x') else v}"
                             for k, v in ((item.get("event") or {}).get("data") or {}).items()
                             if k not in ("lottery_id", "id", "event_version", "event_category")))
                   for h, _, kind, lid, item in rows]).splitlines()
    for ln in (lines if header else lines[1:]):
        click.echo(ln)


@click.command("events")
@click.option("--lottery", "lotteries", multiple=True, type=click.IntRange(0, 2**64 - 1), help="Only these ids (repeatable).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(list(KINDS)),
              help="Only these kinds (repeatable) [default: all].")
@click.option("--from-height", type=click.IntRange(0), help="First block height (inclusive) [default: 0, or the checkpoint's].")
@click.option("--to-height", type=click.IntRange(0), help="Last block height (exclusive) [default: the latest block + 1].")
@click.option("--cursor", help="Resume one --kind from the node's cursor a previous run printed.")
@click.option("--limit", type=click.IntRange(1), help="At most N events per kind; prints the cursor to resume from.")
@click.option("--follow", is_flag=True, help="Keep printing new events until interrupted (Ctrl-C).")
@click.option("--poll", type=click.FloatRange(0.05), default=2.0, show_default=True, help="--follow: seconds between polls.")
@click.option("--init-checkpoint", type=click.Path(dir_okay=False, path_type=Path),
              help="Create (or reset) an events checkpoint at FILE, scanned to the latest block, and exit.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one event per line.")
@backend_options
def events_cmd(lotteries, kinds, from_height, to_height, cursor, limit, follow, poll, init_checkpoint, as_json, cfg):
    """The dual-write and legacy events, oldest first (a table, or --json lines).

    Reads GET /rpc/v3/events/{type} from the node (--rpc-url) page by page, or the simulator's log.
    With --events-checkpoint FILE the scan starts where the last one ended and moves the checkpoint on.
    """
    kinds = list(kinds) or list(KINDS)
    if cursor and len(kinds) != 1:
        raise InputError("--cursor belongs to one event type: give exactly one --kind with it")
    if follow and (limit or to_height is not None):
        raise InputError("--follow reads to the newest block: it takes neither --limit nor --to-height")
    with opened(cfg) as b:
        source_fn = getattr(b, "event_source", None)
        if source_fn is None:
            raise InputError(f"events: the {b.name} backend cannot read events (the Supra CLI has no event view); "
                             f"give --rpc-url URL, or use --backend rpc or sim")
        source = source_fn()
        addresses = getattr(b, "addresses", None)
        if addresses is None or not addresses.lottery_multi:
            from dualwrite.backends.base import ModuleAddresses

            addresses = ModuleAddresses(b.chain.addresses.lottery_multi, b.chain.addresses.lottery)  # sim
        if init_checkpoint is not None:
            idx = EventIndex.init_checkpoint(source, addresses, init_checkpoint)
            click.echo(f"checkpoint {init_checkpoint}: scanned to height {idx.cp.next_height - 1} from {source.url} "
                       f"({count(len(idx.cp.started), 'registration')}, {count(len(idx.cp.legacy), 'legacy id')})")
            return
        index = getattr(b, "index", None)
        checkpointed = index is not None and index.path is not None
        start = from_height if from_height is not None else (index.cp.next_height if checkpointed else 0)
        if not as_json:
            click.echo(f"backend: {b.describe()}")
        header = True
        while True:
            latest = int(source.block()["header"]["height"])
            end = to_height if to_height is not None else latest + 1
            want = kinds if not checkpointed else list(dict.fromkeys([*kinds, *INDEX_KINDS]))
            # with a checkpoint, learn from the whole window and print only what was asked
            rows, resume = _rows(source, addresses, want, start, end, set() if checkpointed else set(lotteries),
                                 cursor, limit)
            if checkpointed:
                for _, _, kind, _, item in rows:
                    if kind in INDEX_KINDS:
                        index.learn(kind, item)
                if resume is None and from_height is None and cursor is None:
                    index.advance_to(end)  # the whole window was read: the next run starts after it
                rows = [r for r in rows if r[2] in kinds and (not lotteries or r[3] in lotteries)]
            _emit(rows, as_json, header)
            header = False
            sys.stdout.flush()
            if not follow:
                break
            start, cursor = end, None
            try:
                _stop.wait(poll)
            except KeyboardInterrupt:
                break
        where = f"next: --from-height {end}" + (f" (or --kind {kinds[0]} --cursor {resume})" if resume else "")
        click.echo(where, err=True)


def register(cli: click.Group) -> None:
    cli.add_command(events_cmd)
