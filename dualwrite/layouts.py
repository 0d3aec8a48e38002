"""The Move structs of onchain.md, each declared once: field order is BCS order.

Everything else (codec, validation, Move JSON, diffs, human rendering) derives from
these declarations; to change a layout, change it here and nowhere else. They are plain
classes, so reading a layout costs no pydantic import (``dualwrite.bcs.layout``);
``dualwrite.structs`` makes the pydantic models of these same classes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Optional

from dualwrite.bcs.layout import Move, RecordType
from dualwrite.bcs.types import ADDRESS, BOOL, BYTES, STRING, U8, U16, U64, EnumType, OptionType, Variant, VectorType

STATUS_NAMES = ["Draft", "Active", "Closing", "DrawRequested", "Drawn", "Payout", "Finalized", "Canceled"]
VRF_STATUS_NAMES = ["Idle", "Requested", "Fulfilled", "Failed"]
PRIMARY_TYPE_NAMES = ["basic", "partner", "jackpot", "vip"]
TAG_BITS = {0: "NFT", 1: "DAILY", 2: "WEEKLY", 3: "SPLIT_PRIZE", 4: "PROMO", 63: "EXPERIMENTAL"}


def _named(names: list[str]):
    def show(v: int) -> str:
        return f"{names[v]} ({v})" if 0 <= v < len(names) else f"unknown ({v})"

    return show


def _tags(mask: int) -> str:
    bits = [TAG_BITS.get(i, f"bit{i}") for i in range(64) if mask >> i & 1]
    return f"{mask:#x} [{'|'.join(bits) or 'none'}]"


def _amount(v: int) -> str:
    return f"{v:,}"


def _time(v: int) -> str:
    if 0 < v < 253402300800:  # seconds up to year 9999
        return f"{v} ({datetime.fromtimestamp(v, timezone.utc):%Y-%m-%dT%H:%M:%SZ})"
    return str(v)


U64F = Annotated[int, Move(U64)]
U8F = Annotated[int, Move(U8)]
U16F = Annotated[int, Move(U16)]
BytesF = Annotated[bytes, Move(BYTES)]
BoolF = Annotated[bool, Move(BOOL)]
Amount = Annotated[int, Move(U64, _amount)]
Time = Annotated[int, Move(U64, _time)]


class LotterySummary:
    """``lottery_multi::history::LotterySummary`` — the archived summary, 21 fields."""

    __move_name__ = "history::LotterySummary"

    id: U64F
    status: Annotated[int, Move(U8, _named(STATUS_NAMES))]
    event_slug: BytesF
    series_code: BytesF
    run_id: U64F
    tickets_sold: Amount
    proceeds_accum: Amount
    total_allocated: Amount
    total_prize_paid: Amount
    total_operations_paid: Amount
    vrf_status: Annotated[int, Move(U8, _named(VRF_STATUS_NAMES))]
    primary_type: Annotated[int, Move(U8, _named(PRIMARY_TYPE_NAMES))]
    tags_mask: Annotated[int, Move(U64, _tags)]
    snapshot_hash: BytesF
    slots_checksum: BytesF
    winners_batch_hash: BytesF
    checksum_after_batch: BytesF
    payout_round: U64F
    created_at: Time
    closed_at: Time
    finalized_at: Time


class LegacySummary:
    """``lottery_support::history_bridge::LegacySummary`` — the legacy archive's copy."""

    __move_name__ = "history_bridge::LegacySummary"

    summary_bcs: BytesF
    archive_hash: BytesF
    finalized_at: Time


class DualWriteStatus:
    """``lottery_multi::legacy_bridge::DualWriteStatus``."""

    __move_name__ = "legacy_bridge::DualWriteStatus"

    enabled: BoolF
    abort_on_mismatch: BoolF
    abort_on_missing: BoolF
    expected_hash: Annotated[Optional[bytes], Move(OptionType(BYTES))]


# -- events ---------------------------------------------------------------------------------


class ArchiveDualWriteStartedEvent:
    __move_name__ = "legacy_bridge::ArchiveDualWriteStartedEvent"

    event_version: U16F
    event_category: U8F
    lottery_id: U64F
    expected_hash: BytesF


class ArchiveDualWriteCompletedEvent:
    __move_name__ = "legacy_bridge::ArchiveDualWriteCompletedEvent"

    event_version: U16F
    event_category: U8F
    lottery_id: U64F
    archive_hash: BytesF
    finalized_at: Time


class LegacySummaryEvent:
    __move_name__ = "history_bridge::LegacySummaryEvent"

    lottery_id: U64F
    archive_hash: BytesF
    finalized_at: Time


class LotteryFinalizedEvent:
    __move_name__ = "history::LotteryFinalizedEvent"

    event_version: U16F
    event_category: U8F
    id: U64F
    archive_slot_hash: BytesF
    primary_type: U8F
    tags_mask: U64F


class LegacySummaryImportedEvent:
    __move_name__ = "history::LegacySummaryImportedEvent"

    event_version: U16F
    event_category: U8F
    lottery_id: U64F
    archive_hash: BytesF
    finalized_at: Time
    primary_type: U8F
    tags_mask: U64F


class LegacySummaryRolledBackEvent:
    __move_name__ = "history::LegacySummaryRolledBackEvent"

    event_version: U16F
    event_category: U8F
    lottery_id: U64F
    archive_hash: BytesF
    finalized_at: Time
    primary_type: U8F
    tags_mask: U64F


class LegacySummaryClassificationUpdatedEvent:
    __move_name__ = "history::LegacySummaryClassificationUpdatedEvent"

    event_version: U16F
    event_category: U8F
    lottery_id: U64F
    archive_hash: BytesF
    primary_type: U8F
    tags_mask: U64F



# -- transactions (supra-cli.md, "RPC node": how the SDKs sign and submit) ----------------------------
#
# Not Move structs on chain but the node's own BCS types, declared the same way: field order is BCS
# order, and the enums are ``EnumType``s (ULEB128 variant index). Values are plain dicts of their
# fields (``RecordType``), enums ``{"Variant": value}``: the form of the node's JSON bodies too.

AddressF = Annotated[bytes, Move(ADDRESS)]
StringF = Annotated[str, Move(STRING)]

#: only the primitive type tags: no entry function of the three modules takes a type argument
TYPE_TAG = EnumType("TypeTag", [
    Variant("bool"), Variant("u8"), Variant("u64"), Variant("u128"), Variant("address"), Variant("signer"),
    Variant("vector", supported=False), Variant("struct", supported=False),
    Variant("u16"), Variant("u32"), Variant("u256"),
])


class ModuleId:
    __move_name__ = "ModuleId"

    address: AddressF
    name: StringF


class EntryFunction:
    """An entry function call; each argument BCS-encoded on its own (``args: vector<vector<u8>>``)."""

    __move_name__ = "EntryFunction"

    module: Annotated[dict, Move(RecordType(ModuleId))]
    function: StringF
    ty_args: Annotated[list, Move(VectorType(TYPE_TAG))]
    args: Annotated[list, Move(VectorType(BYTES))]


#: 2 EntryFunction is the only payload dualwrite sends; the others are refused by name on decode
TRANSACTION_PAYLOAD = EnumType("TransactionPayload", [
    Variant("Script", supported=False), Variant("ModuleBundle", supported=False),
    Variant("EntryFunction", RecordType(EntryFunction)), Variant("Multisig", supported=False),
    Variant("AutomationRegistration", supported=False),
])


class RawTransaction:
    """What is signed. The SDK spells the expiry ``expiration_timestamps_secs``; the node's JSON
    ``expiration_timestamp_secs`` (this name; the node's JSON reader takes both)."""

    __move_name__ = "RawTransaction"

    sender: AddressF
    sequence_number: U64F
    payload: Annotated[dict, Move(TRANSACTION_PAYLOAD)]
    max_gas_amount: U64F
    gas_unit_price: U64F
    expiration_timestamp_secs: U64F
    chain_id: U8F


class Ed25519Authenticator:
    """``public_key`` (32 bytes) and ``signature`` (64 bytes), each a length-prefixed byte vector."""

    __move_name__ = "Ed25519Authenticator"

    public_key: BytesF
    signature: BytesF


AUTHENTICATOR = EnumType("TransactionAuthenticator", [
    Variant("Ed25519", RecordType(Ed25519Authenticator)), Variant("MultiEd25519", supported=False),
])


class SignedTransaction:
    __move_name__ = "SignedTransaction"

    raw_txn: Annotated[dict, Move(RecordType(RawTransaction))]
    authenticator: Annotated[dict, Move(AUTHENTICATOR)]


#: what is submitted: variant 1 (Move) || SignedTransaction; 0 (Smr) is the node's own kind
SUPRA_TRANSACTION = EnumType("SupraTransaction", [
    Variant("Smr", supported=False), Variant("Move", RecordType(SignedTransaction)),
])
RAW_TRANSACTION = RecordType(RawTransaction)
