"""The metrics, rendered by prometheus_client from a ``Snapshot`` and the monitor's own counters.

A custom collector over a registry of our own: every scrape yields the last snapshot as
it is (no check runs inside a scrape), and the default process/GC collectors stay out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from dualwrite.audit.diff import State
from dualwrite.monitor.check import Snapshot

#: name -> help; the README's metrics table is checked against this (tests/test_monitor.py)
HELP = {
    "dual_write_mismatch": "Lotteries whose legacy copy's hash differs from the archived summary's "
                           "(states missing_legacy, missing_history, corrupt_legacy, non_canonical, field_drift, "
                           "hash_mismatch) or whose registered expectation will mismatch the archived hash.",
    "dual_write_pending": "Lotteries with an expectation pending for longer than the pending grace.",
    "dual_write_pending_expectations": "Lotteries with an expectation pending, whatever its age.",
    "dual_write_pending_age_unknown": "Pending expectations whose age this backend cannot read (never in dual_write_pending).",
    "dual_write_pending_oldest_age_seconds": "Age of the oldest pending expectation whose age is known (0 if none).",
    "dual_write_pending_grace_seconds": "The --pending-grace this monitor applies.",
    "dual_write_lotteries": "Lotteries per verify state at the last successful check.",
    "dual_write_lotteries_checked": "Lotteries the last successful check classified (0: it checked nothing).",
    "dual_write_enabled": "legacy_bridge dual-write enabled (1) or not (0).",
    "dual_write_abort_on_mismatch": "legacy_bridge abort_on_mismatch flag.",
    "dual_write_abort_on_missing": "legacy_bridge abort_on_missing flag.",
    "dual_write_mirror_enabled": "legacy_bridge mirror switch (is_mirror_enabled).",
    "dual_write_bridge_initialized": "history_bridge initialised.",
    "dual_write_checks": "Checks attempted.",
    "dual_write_check_errors": "Checks that failed (backend error, or some lotteries could not be read).",
    "dual_write_last_check_success": "1 if the latest check succeeded, 0 if it failed (the values shown are the last good ones).",
    "dual_write_check_duration_seconds": "Duration of the latest check, successful or not.",
    "dual_write_last_success_timestamp_seconds": "Unix time the last successful check finished.",
    "dual_write_monitor": "The backend this monitor checks.",
}


@dataclass
class Status:
    """The monitor's own record across checks (the snapshot only holds the last good result)."""

    checks: int = 0
    errors: int = 0
    last_success: bool = False
    last_duration_s: float | None = None


def _g(name: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    if labels:
        m = GaugeMetricFamily(name, HELP[name], labels=list(labels))
        m.add_metric(list(labels.values()), value)
        return m
    return GaugeMetricFamily(name, HELP[name], value=value)


def snapshot_metrics(s: Snapshot) -> Iterator[Metric]:
    yield _g("dual_write_mismatch", s.mismatch)
    yield _g("dual_write_pending", s.pending_over_grace)
    yield _g("dual_write_pending_expectations", len(s.pending_ids))
    yield _g("dual_write_pending_age_unknown", s.pending_age_unknown)
    yield _g("dual_write_pending_oldest_age_seconds", s.pending_oldest_age_s)
    yield _g("dual_write_pending_grace_seconds", s.pending_grace_s)
    per_state = GaugeMetricFamily("dual_write_lotteries", HELP["dual_write_lotteries"], labels=["state"])
    for st in State:  # every state, always: the label set is bounded and zeros are visible
        per_state.add_metric([st.value], s.counts.get(st.value, 0))
    yield per_state
    yield _g("dual_write_lotteries_checked", s.checked)
    yield _g("dual_write_enabled", int(s.enabled))
    yield _g("dual_write_abort_on_mismatch", int(s.abort_on_mismatch))
    yield _g("dual_write_abort_on_missing", int(s.abort_on_missing))
    yield _g("dual_write_mirror_enabled", int(s.mirror_enabled))
    yield _g("dual_write_bridge_initialized", int(s.bridge_initialized))
    yield _g("dual_write_last_success_timestamp_seconds", s.finished_at)


def status_metrics(st: Status, backend_name: str) -> Iterator[Metric]:
    yield CounterMetricFamily("dual_write_checks", HELP["dual_write_checks"], value=st.checks)
    yield CounterMetricFamily("dual_write_check_errors", HELP["dual_write_check_errors"], value=st.errors)
    yield _g("dual_write_last_check_success", int(st.last_success))
    if st.last_duration_s is not None:
        yield _g("dual_write_check_duration_seconds", st.last_duration_s)
    info = InfoMetricFamily("dual_write_monitor", HELP["dual_write_monitor"], labels=["backend"])
    info.add_metric([backend_name], {})
    yield info


class MetricsCollector(Collector):
    """Yields whatever ``source()`` returns now: (last good snapshot or None, status, backend name)."""

    def __init__(self, source: Callable[[], tuple[Snapshot | None, Status, str]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        snap, st, name = self.source()
        if snap is not None:  # before the first good check there is nothing to claim (the absent alert)
            yield from snapshot_metrics(snap)
        yield from status_metrics(st, name)


def one_shot_registry(snap: Snapshot) -> CollectorRegistry:
    """The registry ``dualwrite metrics`` renders: one successful check."""
    status = Status(checks=1, errors=0, last_success=True, last_duration_s=snap.duration_s)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(MetricsCollector(lambda: (snap, status, snap.backend_name)))
    return reg
