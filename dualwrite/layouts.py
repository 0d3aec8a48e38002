"""The Move structs of onchain.md, each declared once: field order is BCS order.

Everything else (codec, validation, Move JSON, diffs, human rendering) derives from
these declarations; to change a layout, change it here and nowhere else. They are plain
classes, so reading a layout costs no pydantic import (``dualwrite.bcs.layout``);
``dualwrite.structs`` makes the pydantic models of these same classes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Optional

from dualwrite.bcs.layout import Move
from dualwrite.bcs.types import BOOL, BYTES, U8, U16, U64, OptionType

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

