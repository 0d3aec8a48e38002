"""Repair drifted legacy copies in the order that works on chain, and prove each repair.

Split as ``dualwrite/cutover/`` is: ``plan.py`` (what each lottery needs, in chain order),
``journal.py`` (heal's journal records: runs, steps, the chain each run acts on), ``apply.py``
(apply, re-read, diff; continue an interrupted run). ``from dualwrite.audit.heal import ...`` gives
every public name, as before the split.
"""

from dualwrite.audit.diff import REPAIRABLE
from dualwrite.audit.heal.journal import DEFAULT_RESUME_WITHIN, Journal, RunInfo, repair_journal
from dualwrite.audit.heal.plan import HealPlan, LotteryPlan, Step, default_journal, plan
from dualwrite.audit.heal.apply import HealReport, LotteryOutcome, MirrorStep, heal

__all__ = ["DEFAULT_RESUME_WITHIN", "HealPlan", "HealReport", "Journal", "LotteryOutcome", "LotteryPlan",
           "MirrorStep", "RunInfo", "Step", "heal", "plan", "default_journal", "repair_journal", "REPAIRABLE"]
