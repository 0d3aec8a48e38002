"""The pydantic models of the Move structs declared in ``dualwrite.layouts``.

Each model takes its fields from its declaration class (a base: pydantic collects its
annotations), so a layout is still written once, there. A model adds validation, the codec
(``to_bcs``/``from_bcs``), Move JSON as its JSON form, field diffs and the human rendering
(``dualwrite.bcs.struct.MoveStruct``).
"""

from __future__ import annotations

from dualwrite import layouts as L
from dualwrite.bcs.struct import MoveStruct
from dualwrite.layouts import PRIMARY_TYPE_NAMES, STATUS_NAMES, TAG_BITS, VRF_STATUS_NAMES


class LotterySummary(L.LotterySummary, MoveStruct):
    """``lottery_multi::history::LotterySummary`` — the archived summary, 21 fields."""


class LegacySummary(L.LegacySummary, MoveStruct):
    """``lottery_support::history_bridge::LegacySummary`` — the legacy archive's copy."""


class DualWriteStatus(L.DualWriteStatus, MoveStruct):
    """``lottery_multi::legacy_bridge::DualWriteStatus``."""


# -- events ---------------------------------------------------------------------------------


class ArchiveDualWriteStartedEvent(L.ArchiveDualWriteStartedEvent, MoveStruct):
    pass


class ArchiveDualWriteCompletedEvent(L.ArchiveDualWriteCompletedEvent, MoveStruct):
    pass


class LegacySummaryEvent(L.LegacySummaryEvent, MoveStruct):
    pass


class LotteryFinalizedEvent(L.LotteryFinalizedEvent, MoveStruct):
    pass


class LegacySummaryImportedEvent(L.LegacySummaryImportedEvent, MoveStruct):
    pass


class LegacySummaryRolledBackEvent(L.LegacySummaryRolledBackEvent, MoveStruct):
    pass


class LegacySummaryClassificationUpdatedEvent(L.LegacySummaryClassificationUpdatedEvent, MoveStruct):
    pass


EVENT_TYPES: dict[str, type[MoveStruct]] = {
    cls.__name__: cls
    for cls in (
        ArchiveDualWriteStartedEvent,
        ArchiveDualWriteCompletedEvent,
        LegacySummaryEvent,
        LotteryFinalizedEvent,
        LegacySummaryImportedEvent,
        LegacySummaryRolledBackEvent,
        LegacySummaryClassificationUpdatedEvent,
    )
}

STRUCT_TYPES: dict[str, type[MoveStruct]] = {
    "LotterySummary": LotterySummary,
    "LegacySummary": LegacySummary,
    "DualWriteStatus": DualWriteStatus,
    **EVENT_TYPES,
}

__all__ = ["EVENT_TYPES", "PRIMARY_TYPE_NAMES", "STATUS_NAMES", "STRUCT_TYPES", "TAG_BITS", "VRF_STATUS_NAMES",
           *STRUCT_TYPES]
