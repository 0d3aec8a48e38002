"""Generated summaries for drills, demos and benchmarks (deterministic from a seed)."""

from __future__ import annotations

import random

from dualwrite.structs import LotterySummary


def make_summary(lottery_id: int, seed: int = 20261124) -> LotterySummary:
    """A realistic finalised summary (249 bytes of BCS), the same for the same id and seed."""
    rnd = random.Random(seed * 1_000_003 + lottery_id)
    base = 1767225600 + lottery_id * 3600
    return LotterySummary(
        id=lottery_id, status=6, event_slug=f"draw-{lottery_id}".encode(), series_code=b"SPR",
        run_id=1000 + lottery_id, tickets_sold=rnd.randrange(10, 100_000),
        proceeds_accum=rnd.randrange(10**6, 10**12), total_allocated=rnd.randrange(10**6, 10**11),
        total_prize_paid=rnd.randrange(10**5, 10**10), total_operations_paid=rnd.randrange(10**4, 10**9),
        vrf_status=2, primary_type=lottery_id % 4, tags_mask=1 << (lottery_id % 5),
        snapshot_hash=rnd.randbytes(32), slots_checksum=rnd.randbytes(32), winners_batch_hash=rnd.randbytes(32),
        checksum_after_batch=rnd.randbytes(32), payout_round=lottery_id % 3 + 1,
        created_at=base, closed_at=base + 72_000, finalized_at=base + 79_200)
