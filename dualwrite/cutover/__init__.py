"""The cutover: plan the expected hashes of thousands of lotteries, register them resumably, watch them consumed.

``make_plan`` reads the inputs and the chain and returns a ``Plan`` (write it, review it);
``apply`` sends what the plan says, once, in order, journalled, resumable after any crash;
``status`` / ``watch`` say how far the cutover is and whether every archived copy is exact.
"""

from dualwrite.cutover.apply import ApplyResult, Outcome, apply
from dualwrite.cutover.plan import Plan, PlanRow, RowState, Target, check_target, make_plan, target_of
from dualwrite.cutover.status import CutoverStatus, LotteryProgress, Progress, status, watch

__all__ = ["ApplyResult", "CutoverStatus", "LotteryProgress", "Outcome", "Plan", "PlanRow", "Progress", "RowState",
           "Target", "apply", "check_target", "make_plan", "status", "target_of", "watch"]
