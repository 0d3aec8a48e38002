"""On-call monitoring: the runbook's metrics from one library check, as a textfile or a live exporter."""

from dualwrite.monitor.check import CheckIncomplete, Snapshot, mismatching, run_check
from dualwrite.monitor.exporter import Monitor, parse_listen
from dualwrite.monitor.metrics import MetricsCollector, one_shot_registry

__all__ = ["CheckIncomplete", "MetricsCollector", "Monitor", "Snapshot", "mismatching", "one_shot_registry",
           "parse_listen", "run_check"]
