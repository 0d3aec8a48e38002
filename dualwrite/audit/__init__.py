"""Prove and repair: diff history against history_bridge, gate CI, heal drift."""

from dualwrite.audit.diff import FieldDelta, LotteryDiff, State, classify, diff
from dualwrite.audit.heal import HealPlan, HealReport, heal, plan
from dualwrite.audit.verify import Policy, VerifyReport, all_ids, parse_ids, verify

__all__ = ["FieldDelta", "HealPlan", "HealReport", "LotteryDiff", "Policy", "State", "VerifyReport", "all_ids",
           "classify", "diff", "heal", "parse_ids", "plan", "verify"]
