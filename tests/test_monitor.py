"""dualwrite metrics / monitor on the simulator: what each metric counts, the textfile, the exporter's
HTTP endpoints, a check that fails, a scrape during a stuck check, the shipped rules under promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from dualwrite.audit.diff import State
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.demo import make_summary
from dualwrite.monitor import Monitor, run_check
from dualwrite.monitor.metrics import HELP
from tests.audit_world import World, sha3, world  # noqa: F401  (fixture)
from tests.engines import engine_unavailable, wait_for
from tests.monitor_helpers import samples, state_file_gone, value

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "prometheus" / "dualwrite.rules.yml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "dualwrite.rules.test.yml"


def drifted_world(world: World) -> World:
    """10 finalised lotteries, one in each failing way the monitor must count, plus pending ones."""
    world.init(abort_on_mismatch=False)
    world.finalize(*range(1, 11))
    world.tamper(2, "--set", "tickets_sold=5", "--fix-hash")  # field_drift
    world.tamper(3, "--delete")  # missing_legacy
    world.tamper(4, "--non-canonical", "--fix-hash")  # non_canonical
    world.tamper(5, "--bytes", "00")  # corrupt_legacy
    world.expect(20, bytes(32))
    world.finalize(20)  # pending, will mismatch (abort_on_mismatch off): a mismatch
    world.expect(21, sha3(make_summary(21).to_bcs()))  # pending, not finalised yet: waiting, no mismatch
    return world


def test_check_counts_mismatch_as_the_verify_states_define_it(world: World) -> None:
    snap = run_check(drifted_world(world).backend)
    assert snap.mismatch_ids == (2, 3, 4, 5, 20)
    assert snap.failing_states == {2: "field_drift", 3: "missing_legacy", 4: "non_canonical", 5: "corrupt_legacy",
                                   20: "pending", 21: "pending"}
    assert snap.pending_ids == (20, 21)
    assert snap.pending_over_grace_ids == ()  # both just registered
    assert snap.checked == 12
    assert snap.counts["ok"] == 6 and snap.counts["pending"] == 2 and snap.counts["field_drift"] == 1
    assert sum(snap.counts.values()) == snap.checked
    assert (snap.enabled, snap.abort_on_mismatch, snap.abort_on_missing, snap.mirror_enabled,
            snap.bridge_initialized) == (True, False, False, True, True)


def test_pending_counts_only_past_the_grace(world: World) -> None:
    world.init()
    world.finalize(1)
    world.expect(7, sha3(make_summary(7).to_bcs()))
    world.sim("clock", "--advance", "3h")
    world.expect(8, sha3(make_summary(8).to_bcs()))
    snap = run_check(world.backend)
    assert snap.pending_ids == (7, 8) and snap.pending_over_grace_ids == (7,)
    assert snap.mismatch == 0
    assert 3 * 3600 <= snap.pending_oldest_age_s < 3 * 3600 + 60
    assert run_check(world.backend, pending_grace=timedelta(hours=4)).pending_over_grace_ids == ()
    assert run_check(world.backend, pending_grace=timedelta(seconds=0)).pending_over_grace_ids == (7, 8)


def test_metrics_prints_the_exposition_format_without_per_lottery_labels(world: World) -> None:
    drifted_world(world)
    r = world.dw("metrics")
    assert r.code == 0, r.err
    got = samples(r.out)
    assert value(r.out, "dual_write_mismatch") == 5
    assert value(r.out, "dual_write_pending") == 0
    assert value(r.out, "dual_write_pending_expectations") == 2
    assert value(r.out, "dual_write_lotteries", state="field_drift") == 1
    assert value(r.out, "dual_write_lotteries", state="ok") == 6
    assert value(r.out, "dual_write_lotteries_checked") == 12
    assert value(r.out, "dual_write_abort_on_mismatch") == 0 and value(r.out, "dual_write_mirror_enabled") == 1
    assert value(r.out, "dual_write_check_errors_total") == 0 and value(r.out, "dual_write_last_check_success") == 1
    assert value(r.out, "dual_write_pending_grace_seconds") == 7200
    assert value(r.out, "dual_write_monitor_info", backend="sim") == 1
    # bounded labels only: every state once, and the backend name; never a lottery id
    assert {k for (_, labels) in got for k, _ in labels} == {"state", "backend"}
    assert {dict(lb)["state"] for (n, lb) in got if n == "dual_write_lotteries"} == {s.value for s in State}
    # the ids go to the log (stderr)
    assert "dual_write_mismatch=5: lotteries 2 (field_drift), 3 (missing_legacy), 4 (non_canonical), " \
           "5 (corrupt_legacy), 20 (pending)" in r.err


def test_metrics_pending_grace_option(world: World) -> None:
    world.init()
    world.expect(7, sha3(make_summary(7).to_bcs()))
    world.sim("clock", "--advance", "10m")
    assert value(world.dw("metrics").out, "dual_write_pending") == 0
    r = world.dw("metrics", "--pending-grace", "5m")
    assert value(r.out, "dual_write_pending") == 1 and value(r.out, "dual_write_pending_grace_seconds") == 300
    assert "dual_write_pending=1" in r.err and "lottery 7 (pending)" in r.err
    bad = world.dw("metrics", "--pending-grace", "soon")
    assert bad.code == 2 and bad.err.count("\n") == 1 and "--pending-grace 'soon'" in bad.err


def test_textfile_written_atomically_and_kept_when_a_check_fails(world: World, tmp_path: Path) -> None:
    drifted_world(world)
    out = tmp_path / "prom" / "dualwrite.prom"
    out.parent.mkdir()
    r = world.dw("metrics", "--textfile", str(out))
    assert r.code == 0 and r.out == ""
    first = out.read_text()
    assert value(first, "dual_write_mismatch") == 5
    assert sorted(p.name for p in out.parent.iterdir()) == ["dualwrite.prom"]  # no temp file left
    world.close()
    with state_file_gone(world.path, "garbage"):
        failed = world.dw("metrics", "--textfile", str(out))
    assert failed.code == 2, failed.err
    assert failed.err.startswith("dualwrite: error: simulator state") and "not a usable SQLite file" in failed.err
    assert failed.err.count("\n") == 1
    assert out.read_text() == first  # the last good values stay for node_exporter
    assert sorted(p.name for p in out.parent.iterdir()) == ["dualwrite.prom"]
    missing_dir = world.dw("metrics", "--textfile", str(tmp_path / "nope" / "x.prom"))
    assert missing_dir.code == 2 and "does not exist" in missing_dir.err


def test_an_incomplete_check_is_not_published(world: World, tmp_path: Path) -> None:
    """A lottery that cannot be read would make dual_write_mismatch undercount: the check fails instead."""
    world.init()
    world.finalize(1, 2)
    world.tamper(2, "--bytes", "00")
    # a history summary the codec rejects: diff raises for that lottery, so verify marks it unchecked
    world.chain.store.conn.execute("UPDATE history SET bcs = x'00' WHERE lottery_id = 1")
    r = world.dw("metrics")
    assert r.code == 3, r.out + r.err
    assert "1 of 2 lotteries could not be checked (first: lottery 1:" in r.err
    assert r.out == ""


def test_zero_lotteries_is_a_number_not_an_error(world: World) -> None:
    world.init()
    r = world.dw("metrics")
    assert r.code == 0
    assert value(r.out, "dual_write_lotteries_checked") == 0 and value(r.out, "dual_write_mismatch") == 0


# -- the exporter -------------------------------------------------------------------------------------


@pytest.fixture
def exporter(world: World):
    cfg = BackendConfig(backend="sim", state=world.path)
    mon = Monitor(lambda: open_backend(cfg), interval=0.05)
    mon.start("127.0.0.1", 0)
    host, port = mon.address
    client = httpx.Client(base_url=f"http://{host}:{port}", timeout=5)
    yield mon, client
    client.close()
    mon.stop()


def test_exporter_serves_metrics_and_healthz(world: World, exporter) -> None:
    drifted_world(world)
    mon, client = exporter
    n = mon.status.checks
    assert mon.wait_checks(n + 2, 20)  # a check that started after the drift
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert value(r.text, "dual_write_mismatch") == 5
    assert value(r.text, "dual_write_checks_total") >= 2
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["checker_alive"] is True and h.json()["last_check_success"] is True
    assert client.get("/nothing").status_code == 404


def test_exporter_keeps_the_last_good_values_while_checks_fail(world: World, exporter) -> None:
    drifted_world(world)
    mon, client = exporter
    assert mon.wait_checks(mon.status.checks + 2, 20)
    world.close()
    with state_file_gone(world.path):
        errors0 = value(client.get("/metrics").text, "dual_write_check_errors_total")
        wait_for(lambda: value(client.get("/metrics").text, "dual_write_check_errors_total") >= errors0 + 3, 20,
                 what="three failed checks")
        during = client.get("/metrics").text
        assert value(during, "dual_write_last_check_success") == 0
        assert value(during, "dual_write_mismatch") == 5  # the last good value
        assert client.get("/healthz").status_code == 200  # the node failing is a metric, not a dead exporter
    wait_for(lambda: value(client.get("/metrics").text, "dual_write_last_check_success") == 1, 20,
             what="a good check after the state came back")
    after = client.get("/metrics").text
    assert value(after, "dual_write_mismatch") == 5 and value(after, "dual_write_check_errors_total") >= errors0 + 3


def test_a_scrape_never_waits_for_a_check(world: World) -> None:
    """The second check hangs inside the backend; scrapes keep answering with the first one's values."""
    world.init()
    world.finalize(1)
    cfg = BackendConfig(backend="sim", state=world.path)
    release = threading.Event()
    opened = []

    def slow_backend():
        opened.append(1)
        if len(opened) == 2:
            release.wait(30)  # a node that does not answer
        return open_backend(cfg)

    mon = Monitor(slow_backend, interval=0.01)
    mon.start("127.0.0.1", 0)
    try:
        assert mon.wait_checks(1, 20)
        wait_for(lambda: len(opened) == 2, 10, what="the second check to start")
        host, port = mon.address
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=2) as client:
            for _ in range(5):
                r = client.get("/metrics")
                assert r.status_code == 200 and value(r.text, "dual_write_lotteries_checked") == 1
                assert value(r.text, "dual_write_checks_total") == 1
    finally:
        release.set()
        assert mon.stop(10)


def test_listen_errors_are_usage_errors(world: World) -> None:
    world.init()
    r = world.dw("monitor", "--listen", "localhost")
    assert r.code == 2 and "--listen 'localhost': expected HOST:PORT" in r.err
    with httpx_port_taken() as port:
        r = world.dw("monitor", "--listen", f"127.0.0.1:{port}", "--interval", "1s")
    assert r.code == 2 and f"--listen 127.0.0.1:{port}:" in r.err and r.err.count("\n") == 1
    r = world.dw("monitor", "--interval", "0s")
    assert r.code == 2 and "--interval" in r.err


class httpx_port_taken:
    """A port some other socket already listens on."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


# -- the README and the shipped rules -------------------------------------------------------------------


def test_readme_metrics_table_names_every_metric() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Metrics", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(dual_write_[a-z_]+)", section, re.M))
    served = {n + ("_total" if n in ("dual_write_checks", "dual_write_check_errors") else "")
              + ("_info" if n == "dual_write_monitor" else "") for n in HELP}
    assert documented == served


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        engine_unavailable("promtool is not installed (apt-get install -y prometheus; scripts/test.sh does it)")
    return path


def test_promtool_check_rules() -> None:
    p = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS: 7 rules found" in p.stdout


def test_promtool_unit_tests_of_the_shipped_rules() -> None:
    p = subprocess.run([_promtool(), "test", "rules", str(RULES_TEST)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


@pytest.mark.parametrize("old, new, alert", [
    ("expr: dual_write_mismatch > 0\n        for: 10m", "expr: dual_write_mismatch > 0\n        for: 1m",
     "DualWriteMismatch"),
    ("expr: dual_write_pending > 0\n        for: 10m", "expr: dual_write_pending > 0\n        for: 0m",
     "DualWritePending"),
    ("expr: dual_write_enabled == 0", "expr: dual_write_enabled == 2", "DualWriteDisabled"),
    ("expr: dual_write_mirror_enabled == 0\n        for: 30m", "expr: dual_write_mirror_enabled == 0\n        for: 5m",
     "DualWriteMirrorDisabled"),
    ('runbook_url: "README.md#dualwritedisabled"', 'runbook_url: "README.md"', "DualWriteDisabled"),
])
def test_promtool_unit_tests_can_fail(tmp_path: Path, old: str, new: str, alert: str) -> None:
    """The unit tests pin each hold, expression and runbook: a rules file that changes one fails them."""
    for f in (RULES, RULES_TEST):
        shutil.copy(f, tmp_path / f.name)
    rules = tmp_path / RULES.name
    assert old in rules.read_text()
    rules.write_text(rules.read_text().replace(old, new))
    p = subprocess.run([_promtool(), "test", "rules", str(tmp_path / RULES_TEST.name)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and alert in p.stdout + p.stderr


def github_slug(heading: str) -> str:
    """The anchor GitHub and GitLab give a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_rule_has_a_hold_and_a_runbook_url_to_its_readme_section() -> None:
    blocks = re.split(r"^      - alert: ", RULES.read_text(), flags=re.M)[1:]
    alerts = {b.split("\n", 1)[0].strip(): b for b in blocks}
    assert {"DualWriteMismatch", "DualWritePending", "DualWriteDisabled", "DualWriteMirrorDisabled",
            "DualWriteMonitorStale", "DualWriteMonitorAbsent", "DualWriteNothingChecked"} == set(alerts)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Alerts", 1)[1].split("\n## ", 1)[0]
    headings = {github_slug(h): h for h in re.findall(r"^#### (.+)$", section, re.M)}
    urls = {}
    for name, block in alerts.items():
        assert re.search(r"^        for: \d+m$", block, re.M), f"{name} has no for:"
        (url,) = re.findall(r'^          runbook_url: "([^"]+)"$', block, re.M)
        urls[name] = url
        page, _, anchor = url.partition("#")
        assert page == "README.md" and anchor == name.lower()
        assert headings.get(anchor) == name, f"README has no '#### {name}' section under Alerts"
        assert f"[`{name}`](#{anchor})" in section  # the table links it too
    assert len(set(urls.values())) == len(urls)


# -- /status ------------------------------------------------------------------------------------------


def test_exporter_serves_the_last_check_as_json_at_status(world: World, exporter) -> None:
    drifted_world(world)
    world.tamper(6, "--set", "tickets_sold=5", "--fix-hash")
    world.tamper(7, "--set", "tickets_sold=5", "--fix-hash")
    mon, client = exporter
    assert mon.wait_checks(mon.status.checks + 2, 20)
    before = datetime.now(UTC)
    r = client.get("/status")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["checks"] >= 2 and doc["check_errors"] < doc["checks"] and doc["backend_name"] == "sim"
    last = doc["last_check"]
    assert last["success"] is True and last["error"] is None and last["duration_s"] >= 0
    res = doc["result"]
    assert res["backend"].startswith("sim (state ") and res["checked"] == 12 and res["full"] is True
    assert res["counts"] == {"ok": 4, "missing_legacy": 1, "missing_history": 0, "corrupt_legacy": 1,
                             "non_canonical": 1, "field_drift": 3, "hash_mismatch": 0, "pending": 2, "absent": 0}
    assert res["ids"] == {"missing_legacy": "3", "corrupt_legacy": "5", "non_canonical": "4",
                          "field_drift": "2, 6-7", "pending": "20-21"}
    assert res["dual_write_mismatch"] == {"count": 7, "ids": "2-7, 20"}
    assert res["dual_write_pending"] == {"count": 0, "ids": "", "grace_s": 7200.0}
    assert res["pending_expectations"]["count"] == 2 and res["pending_expectations"]["ids"] == "20-21"
    assert res["flags"] == {"dual_write_enabled": True, "abort_on_mismatch": False, "abort_on_missing": False,
                            "mirror_enabled": True, "bridge_initialized": True}
    checked_at = datetime.fromisoformat(res["checked_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=30) < checked_at <= datetime.now(UTC)
    # the ids are the ones verify takes back
    assert world.verify(res["dual_write_mismatch"]["ids"], "--json").json()["failed"] == 7

    # checks failing: the last good result stays, last_check says why
    errors0 = doc["check_errors"]
    world.close()
    with state_file_gone(world.path):
        wait_for(lambda: client.get("/status").json()["last_check"]["success"] is False, 20, what="a failed check")
        doc = client.get("/status").json()
        assert doc["check_errors"] >= errors0 + 1 and "is not a file" in doc["last_check"]["error"]
        assert doc["result"]["dual_write_mismatch"] == {"count": 7, "ids": "2-7, 20"}
    wait_for(lambda: client.get("/status").json()["last_check"]["success"] is True, 20, what="a good check again")
    assert client.get("/status").json()["last_check"]["error"] is None


def test_status_before_any_good_check_says_why(tmp_path: Path) -> None:
    cfg = BackendConfig(backend="sim", state=tmp_path / "no-such-state.sqlite")
    mon = Monitor(lambda: open_backend(cfg), interval=0.05)
    mon.start("127.0.0.1", 0)
    try:
        assert mon.wait_checks(1, 20)
        host, port = mon.address
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as client:
            doc = client.get("/status").json()
    finally:
        assert mon.stop(10)
    assert doc["result"] is None and doc["check_errors"] >= 1
    assert doc["last_check"]["success"] is False and "no-such-state.sqlite" in doc["last_check"]["error"]


def test_an_incremental_check_reads_only_what_changed(world: World) -> None:
    """Given the previous snapshot and the changed lotteries, the others keep their diffs (also on sim)."""
    world.init()
    world.finalize(*range(1, 6))
    full = run_check(world.backend)
    assert full.full and full.rechecked == 5
    world.tamper(2, "--set", "tickets_sold=5", "--fix-hash")
    world.finalize(6)
    quiet = run_check(world.backend, previous=full, changed=set())
    assert not quiet.full and quiet.rechecked == 1  # only the new id 6
    assert quiet.mismatch == 0 and quiet.checked == 6  # 2 was not said to change
    told = run_check(world.backend, previous=quiet, changed={2})
    assert told.rechecked == 1 and told.mismatch_ids == (2,)
    again = run_check(world.backend, previous=told, changed=set())
    assert again.rechecked == 1 and again.mismatch_ids == (2,)  # a failing lottery is always read again
