"""The cutover plan: what each lottery's expected hash is, what the chain holds for it now, what to send.

A plan is reviewed by a person and applied by a program, so it is a file: a blake3-digested
evidence envelope (``dualwrite evidence check plan.json`` verifies it too) whose rows are
sorted by lottery id and written one per line, so ``diff`` of two plans reads like a review.
It also pins the target it was read from: applying it anywhere else is refused.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from dualwrite import bridge
from dualwrite.audit.diff import State, diff
from dualwrite.backends.base import Backend
from dualwrite.errors import BackendError, InputError
from dualwrite.evidence import EVIDENCE_VERSION, atomic_write, blake3_hex, canonical_json
from dualwrite.hashing import expected_hash
from dualwrite.inputs import parse_struct_inputs, read_source
from dualwrite.structs import LotterySummary
from dualwrite.words import count, plural

PLAN_KIND = "cutover-plan"
PLAN_VERSION = 1


class RowState(str, Enum):
    REGISTER = "register"  # nothing expected, not archived: set it
    ALREADY_SET = "already_set"  # the same hash is pending: nothing to send
    CONFLICT = "conflict"  # a different hash is pending: kept, unless the plan was made with --replace
    DONE = "done"  # archived with this summary and its legacy copy is ok
    ARCHIVED_MISMATCH = "archived_mismatch"  # archived, but not this summary or not an exact legacy copy: heal's job

    def __str__(self) -> str:
        return self.value


#: what apply does with a row
SEND_ACTIONS = ("set", "replace")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanRow(_Strict):
    lottery_id: int
    state: RowState
    action: Literal["set", "replace", "none"]
    expected_hash: str
    chain_expected_hash: str | None = None  # what was pending when planned
    archived_hash: str | None = None
    chain_state: str | None = None  # diff's state, for archived lotteries
    source: str
    note: str = ""


class InputDigest(_Strict):
    path: str
    blake3: str
    summaries: int


class Target(_Strict):
    """Which chain a plan was read from: the chain, not the way to it.

    The chain is named by the state file (``sim``), the chain id (known over RPC, and on ``sim``), and
    the module addresses. How it is reached — CLI or RPC reads, which URL, profile or container — is
    recorded for people and compared only where nothing names the chain itself (a CLI backend without
    reads over RPC on one side: where that CLI sends is then all there is to go on).
    """

    backend: str
    describe: str
    addresses: dict[str, str | None]
    chain_id: int | None = None
    state: str | None = None  # sim: the state file
    rpc_url: str | None = None
    profile: str | None = None
    container: str | None = None
    image: str | None = None

    #: how the chain is reached: compared only when neither the state file nor the chain id is known on both sides
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("backend", "profile", "container", "image")

    def differences(self, other: "Target") -> list[str]:
        out: list[str] = []
        both_state = self.state is not None and other.state is not None
        both_chain = self.chain_id is not None and other.chain_id is not None
        if both_state and self.state != other.state:
            out.append(f"state {self.state!r} vs {other.state!r}")
        if both_chain and self.chain_id != other.chain_id:
            out.append(f"chain_id {self.chain_id} vs {other.chain_id}")
        same_state = both_state and self.state == other.state
        for k in ("lottery_multi", "lottery"):
            a, b = self.addresses.get(k), other.addresses.get(k)
            # on one state file the addresses are the state's (fixed when it was made): the named form is them
            if a != b and not (same_state and None in (a, b)):
                out.append(f"{k} address {a or '(named)'} vs {b or '(named)'}")
        if not (both_state or both_chain):
            out += [f"{k} {getattr(self, k)!r} vs {getattr(other, k)!r}" for k in self.PATH_FIELDS
                    if getattr(self, k) != getattr(other, k)]
            if self.rpc_url and other.rpc_url and self.rpc_url != other.rpc_url:
                out.append(f"rpc_url {self.rpc_url!r} vs {other.rpc_url!r}")
            if (self.state is None) != (other.state is None):
                out.append(f"state {self.state!r} vs {other.state!r}")
        return out


class ChainFlags(_Strict):
    dual_write_enabled: bool
    abort_on_mismatch: bool
    abort_on_missing: bool
    mirror_enabled: bool
    bridge_initialized: bool


class Plan(_Strict):
    version: int = PLAN_VERSION
    target: Target
    flags: ChainFlags
    warnings: list[str]
    replace: bool
    inputs: list[InputDigest]
    counts: dict[str, int]
    rows: list[PlanRow]
    created_at: str = ""
    digest: str = ""  # blake3 of the file's canonical JSON (set when written or loaded)

    @property
    def to_send(self) -> list[PlanRow]:
        return [r for r in self.rows if r.action in SEND_ACTIONS]

    def data_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"created_at", "digest"})

    # -- the file ----------------------------------------------------------------------------------

    def document(self) -> tuple[dict[str, Any], str]:
        """The evidence envelope and its digest (blake3 of its canonical JSON without the digest)."""
        created = self.created_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        doc = {"dualwrite_evidence": EVIDENCE_VERSION, "kind": PLAN_KIND, "created_at": created,
               "data": self.data_json()}
        digest = blake3_hex(canonical_json(doc))
        return {**doc, "blake3": digest}, digest

    def render(self) -> tuple[bytes, "Plan"]:
        """The file's bytes (one line per header field, one line per row and input) and the plan with its digest."""
        doc, digest = self.document()

        def one(v: Any) -> str:
            return json.dumps(v, ensure_ascii=False)

        def listed(items: list, indent: str) -> str:
            if not items:
                return "[]"
            return "[\n" + ",\n".join(indent + "  " + one(x) for x in items) + "\n" + indent + "]"

        data_lines = []
        for k, v in doc["data"].items():
            value = listed(v, "    ") if k in ("rows", "inputs", "warnings") else one(v)
            data_lines.append(f"    {one(k)}: {value}")
        head = [f"  {one(k)}: {one(v)}" for k, v in doc.items() if k not in ("data", "blake3")]
        text = ("{\n" + ",\n".join(head) + ',\n  "data": {\n' + ",\n".join(data_lines) + "\n  },\n"
                + f'  "blake3": {one(digest)}\n}}\n')
        raw = text.encode("utf-8")
        # the layout is for people; the content must be exactly the document
        if json.loads(raw) != doc:  # pragma: no cover - a bug in the layout above
            raise AssertionError("plan rendering lost content")
        return raw, self.model_copy(update={"digest": digest, "created_at": doc["created_at"]})

    def write(self, path: Path) -> "Plan":
        raw, written = self.render()
        atomic_write(Path(path), raw)
        return written

    @classmethod
    def load(cls, path: Path | str) -> "Plan":
        """Read a plan file; refuses one whose digest does not match its content (edited or damaged)."""
        name = str(path)
        raw = read_source(name)
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{name}: not a cutover plan (not JSON: {e})") from None
        if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND or "blake3" not in doc or "data" not in doc:
            raise InputError(f"{name}: not a cutover plan (no {PLAN_KIND!r} evidence envelope)")
        recorded = str(doc.pop("blake3")).lower()
        actual = blake3_hex(canonical_json(doc))
        if recorded != actual:
            raise InputError(f"{name}: digest mismatch: the plan records blake3 {recorded} but its content hashes to "
                             f"{actual}: it was edited or damaged after it was written; refusing it (make a new plan)")
        try:
            plan = cls.model_validate({**doc["data"], "created_at": str(doc.get("created_at", "")), "digest": actual})
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InputError(f"{name}: data.{where}: {err['msg']}") from None
        if plan.version != PLAN_VERSION:
            raise InputError(f"{name}: plan version {plan.version}, this dualwrite reads version {PLAN_VERSION}")
        return plan


# -- the target ---------------------------------------------------------------------------------------


def target_of(backend: Backend, cfg: Any = None) -> Target:
    """The identity of the chain behind ``backend`` (and the ``BackendConfig`` it was opened with).

    On ``sim``: the state file, its module addresses and the simulator's chain id. Reads over RPC (a
    ``SplitBackend``, or the ``rpc`` backend) give the chain id the node's answers carry (``x-supra-chain-id``),
    so the plan names the network, not only the CLI; the node's URL is recorded for people (``Target``).
    """
    writer = getattr(backend, "writer", backend)
    reader = getattr(backend, "reader", None) or (backend if backend.name == "rpc" else None)
    client = getattr(reader, "client", None)
    cfg = cfg if cfg is not None else (getattr(writer, "cfg", None) or getattr(writer, "_cfg", None))
    addresses = getattr(cfg, "addresses", None) or getattr(backend, "addresses", None)
    chain = getattr(writer, "chain", None)
    state = str(Path(chain.path).resolve()) if chain is not None and getattr(chain, "path", None) else None
    chain_id: Any = None
    if chain is not None:
        from dualwrite.sim.chain import CHAIN_ID

        chain_id = CHAIN_ID  # the simulator's, as its node reports it
        addresses = getattr(chain, "addresses", None) or addresses  # the state's own: the named form resolved
    if client is not None and chain_id is None:
        if getattr(client, "chain_id", None) is None:
            client.block()  # any answer of the node carries its chain id; the latest block needs no address
        chain_id = getattr(client, "chain_id", None)
    chain_id_fn = getattr(backend, "chain_id", None)
    if chain_id is None and callable(chain_id_fn):
        try:
            chain_id = chain_id_fn()
        except BackendError:
            chain_id = None  # the identity is then what the other fields say
    try:
        chain_id = int(chain_id) if chain_id is not None else None
    except (TypeError, ValueError):
        chain_id = None
    remote = writer.name != "sim"
    from dualwrite.backends.rpc import redact_url  # httpx only where a target is built

    node_url = getattr(cfg, "node_url", None) if remote else None  # --rpc-url, or --url of v6 images
    rpc_url = getattr(client, "url", None) or (redact_url(node_url) if node_url else None)  # keys never in a plan
    return Target(
        backend=backend.name,
        describe=backend.describe(),
        addresses={"lottery_multi": getattr(addresses, "lottery_multi", None), "lottery": getattr(addresses, "lottery", None)},
        chain_id=chain_id,
        state=state,
        rpc_url=rpc_url,
        profile=getattr(cfg, "profile", None) if remote else None,
        container=getattr(cfg, "container", None) if remote else None,
        image=getattr(cfg, "image", None) if remote else None,
    )


def check_target(plan: Plan, here: Target, where: str = "plan") -> None:
    diffs = plan.target.differences(here)
    if diffs:
        raise InputError(f"{where}: made for another target ({'; '.join(diffs)}): planned on {plan.target.describe}, "
                         f"this run is on {here.describe}; refusing it (make a plan against this target)")


# -- reading the inputs -------------------------------------------------------------------------------


def read_inputs(names: Iterable[str]) -> tuple[list[tuple[str, LotterySummary]], list[InputDigest]]:
    """Every summary of every input (each form ``hash`` reads) and each input's blake3 digest.

    Every unreadable input is named (not only the first), and a lottery id given twice is refused
    with both sources: which of the two to register is the operator's decision, not ours.
    """
    summaries: list[tuple[str, LotterySummary]] = []
    digests: list[InputDigest] = []
    bad: list[str] = []
    for name in names:
        try:
            raw = read_source(name)
            items = parse_struct_inputs(raw, name, LotterySummary)
            if not items:
                raise InputError(f"{name}: no summary in it (an empty array or result)")
        except InputError as e:
            bad.append(str(e))
            continue
        digests.append(InputDigest(path=name, blake3=blake3_hex(raw), summaries=len(items)))
        summaries.extend((src, s) for src, s, _form in items)  # type: ignore[misc]
    if bad:
        more = f" (and {count(len(bad) - 1, 'more unreadable input')}: {'; '.join(bad[1:4])})" if len(bad) > 1 else ""
        raise InputError(bad[0] + more)
    seen: dict[int, tuple[str, LotterySummary]] = {}
    dups: list[str] = []
    for src, s in summaries:
        if s.id in seen:
            first_src, first = seen[s.id]
            same = "the same summary" if first.to_bcs() == s.to_bcs() else "different summaries"
            dups.append(f"lottery {s.id} in {first_src} and {src} ({same})")
        else:
            seen[s.id] = (src, s)
    if dups:
        more = f" and {len(dups) - 3} more" if len(dups) > 3 else ""
        raise InputError(f"duplicate lottery ids, refusing to plan: {'; '.join(dups[:3])}{more}")
    if not summaries:
        raise InputError("no summaries given")
    return summaries, digests


# -- planning -----------------------------------------------------------------------------------------


def read_flags(backend: Backend) -> ChainFlags:
    f = bridge.flags(backend)
    return ChainFlags(dual_write_enabled=f.enabled, abort_on_mismatch=f.abort_on_mismatch,
                      abort_on_missing=f.abort_on_missing, mirror_enabled=bridge.is_mirror_enabled(backend),
                      bridge_initialized=bridge.bridge_initialized(backend))


def flag_warnings(flags: ChainFlags, to_register: int) -> list[str]:
    """Where the chain's switches make this plan dangerous or useless."""
    out = []
    if not flags.dual_write_enabled:
        out.append("dual-write is OFF (or init_dual_write never ran): expectations are not compared when lotteries "
                   "are finalised, and set_expected_hash aborts E_HISTORY_CONTROL_MISSING without the control")
    if not flags.mirror_enabled:
        out.append("the legacy mirror is OFF: finalised lotteries get no legacy copy (enable-mirror)")
    if not flags.bridge_initialized:
        out.append("history_bridge is not initialised: the mirror writes nothing (init_bridge, signed by @lottery)")
    if flags.abort_on_missing and to_register:
        out.append(f"abort_on_missing is ON while {to_register} planned {plural(to_register, 'lottery')} "
                   f"{plural(to_register, 'is')} not registered yet: finalising "
                   "any of them before its expectation is set aborts (E_HISTORY_EXPECTED_MISSING)")
    return out


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def make_plan(backend: Backend, inputs: Iterable[str], *, replace: bool = False, cfg: Any = None) -> Plan:
    """Read the inputs, then the chain's state now for each lottery, and decide what to send.

    The chain is read in bulk where it can be (the pending list and the finalised ids, once each),
    so only the lotteries with something on chain cost a read of their own.
    """
    summaries, digests = read_inputs(inputs)
    flags = read_flags(backend)
    target = target_of(backend, cfg)
    pending_ids = set(bridge.pending(backend))
    finalized = set(bridge.all_finalized(backend))
    rows: list[PlanRow] = []
    for src, s in sorted(summaries, key=lambda x: x[1].id):
        h = expected_hash(s)
        lid = s.id
        if lid in finalized:
            d = diff(backend, lid, pending_ids=pending_ids)
            if d.history_hash != h:
                rows.append(PlanRow(lottery_id=lid, state=RowState.ARCHIVED_MISMATCH, action="none", expected_hash=h,
                                    chain_expected_hash=d.expected_hash, archived_hash=d.history_hash,
                                    chain_state=d.state.value, source=src,
                                    note="archived with another summary than this input's: for heal, not the cutover"))
            elif d.state is State.OK:
                rows.append(PlanRow(lottery_id=lid, state=RowState.DONE, action="none", expected_hash=h,
                                    archived_hash=d.history_hash, chain_state=d.state.value, source=src))
            else:
                rows.append(PlanRow(lottery_id=lid, state=RowState.ARCHIVED_MISMATCH, action="none", expected_hash=h,
                                    chain_expected_hash=d.expected_hash, archived_hash=d.history_hash,
                                    chain_state=d.state.value, source=src,
                                    note=f"archived with this summary, but {d.state.value}: {d.reason} (for heal)"))
            continue
        pending_hash = _hex(bridge.status(backend, lid).expected_hash) if lid in pending_ids else None
        if pending_hash is None:
            rows.append(PlanRow(lottery_id=lid, state=RowState.REGISTER, action="set", expected_hash=h, source=src))
        elif pending_hash == h:
            rows.append(PlanRow(lottery_id=lid, state=RowState.ALREADY_SET, action="none", expected_hash=h,
                                chain_expected_hash=pending_hash, source=src))
        else:
            rows.append(PlanRow(lottery_id=lid, state=RowState.CONFLICT, action="replace" if replace else "none",
                                expected_hash=h, chain_expected_hash=pending_hash, source=src,
                                note=("REPLACES the pending hash (--replace)" if replace
                                      else "a different hash is pending: kept (plan with --replace to overwrite it)")))
    counts = {s.value: 0 for s in RowState}
    for r in rows:
        counts[r.state.value] += 1
    counts["to_send"] = sum(1 for r in rows if r.action in SEND_ACTIONS)
    return Plan(target=target, flags=flags, warnings=flag_warnings(flags, counts["register"]), replace=replace,
                inputs=digests, counts=counts, rows=rows)


__all__ = ["ChainFlags", "InputDigest", "Plan", "PlanRow", "RowState", "SEND_ACTIONS", "Target", "check_target",
           "flag_warnings", "make_plan", "read_flags", "read_inputs", "target_of"]
