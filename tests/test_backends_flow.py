"""The runbook's legacy_bridge flow through the ``dualwrite`` CLI on every backend, for real.

One flow (sim init; init; update-flags; set by hash and by --summary; status; pending;
enable-mirror; a finalisation through ``dualwrite sim finalize --state``; status showing the
expectation consumed; mirror; disable-mirror; clear; flags; init again -> abort) runs on:

- ``sim`` (in-process simulator),
- ``local`` (dualwrite-supra installed as ``supra`` on PATH, a real ``dualwrite`` subprocess),
- ``podman`` exec into a running container and one-shot ``podman run --rm``,
- ``docker`` through the docker SDK, exec and one-shot, plus the compose-service label lookup,
  each against a real Docker Engine (dockerd) and against the Docker API ``podman system service``
  serves (the ``docker_engine`` fixture).

The containers keep their state in a host directory bind-mounted at /supra/configs; the
host finalises lotteries and reads the same SQLite file, so every check is also a check
that what the container wrote is what the host sees.

Then the failure paths (engine, container, image or supra missing; a real slow supra for
timeouts; aborts), each one line on stderr and exit 3 or 4; and pure parsing tests of
``backends/cli_output.py`` on every output form of supra-cli.md. No mocks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dualwrite.backends.cli_output import find_abort, parse_run, parse_view
from dualwrite.cli.main import cli
from dualwrite.errors import (
    BackendError,
    BackendTimeout,
    ExitCode,
    InputError,
    MoveAbort,
    TransactionFailed,
    TransientBackendError,
)
from dualwrite.hashing import expected_hash
from dualwrite.sim.image import IMAGE_PYTHON
from dualwrite.structs import LotterySummary
from tests.engines import REPO_ROOT, podman, unique_name, wait_for
from tests.envs import base_env

FIXTURE = REPO_ROOT / "fixtures" / "summaries" / "lottery-1.json"
H1 = expected_hash(LotterySummary.from_move_json(json.loads(FIXTURE.read_text())))
H7 = "0x" + "ab" * 32
H8 = "0x" + "0123456789abcdef" * 4

@dataclass
class Out:
    code: int
    stdout: str
    stderr: str
    argv: list[str]

    def json(self) -> Any:
        return json.loads(self.stdout)

    def why(self) -> str:
        return f"dualwrite {' '.join(self.argv)} -> exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class Dw:
    """``dualwrite`` in-process (click's CliRunner) or as a real subprocess."""

    def __init__(self, mode: str = "inproc", env: dict[str, str] | None = None) -> None:
        assert mode in ("inproc", "proc")
        self.mode = mode
        self.env = dict(env or {})

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Out:
        argv = [str(a) for a in args]
        extra = {**self.env, **(env or {})}
        if self.mode == "proc":
            p = subprocess.run([sys.executable, "-m", "dualwrite", *argv], env=base_env(**extra),
                               capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            return Out(p.returncode, p.stdout, p.stderr, argv)
        r = CliRunner().invoke(cli, argv, env=extra, catch_exceptions=False)
        return Out(r.exit_code, r.stdout, r.stderr, argv)

    def ok(self, *args: str, **kw: Any) -> Out:
        out = self(*args, **kw)
        assert out.code == 0, out.why()
        return out

    def fails(self, code: int, *args: str, **kw: Any) -> Out:
        """Exit *code* with exactly one ``dualwrite: error: ...`` line on stderr."""
        out = self(*args, **kw)
        assert out.code == code, out.why()
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dualwrite: error: "), out.why()
        assert "Traceback" not in out.stderr
        return out


def event_names(txn_json: dict) -> list[str]:
    return [e["type"].rsplit("::", 1)[-1] for e in txn_json["events"]]


def status_fields(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "backend"}


# --------------------------------------------------------------------------
# The flow


def run_flow(dw: Dw, backend: list[str], state: Path, describe: str) -> None:
    """The runbook end to end on *backend*; *state* is the host path of the chain's SQLite file."""
    host = ["--backend", "sim", "--state", str(state)]

    def b(*args: str) -> Out:
        return dw.ok(*args, *backend)

    # the chain exists (history and history_bridge initialised), the bridge does not yet; a container
    # started on the configs folder made it already (a container is a node), else sim init makes it here
    made = state.exists()
    steps = dw.ok("sim", "init", "--state", state, "--json").json()["steps"]
    assert [s["result"] for s in steps] == (["already initialised", "ok"] if made else ["ok", "ok"])

    txn = b("init", "false", "false", "--json").json()
    assert txn["status"] == "Success" and txn["transaction_hash"].startswith("0x")
    assert describe in txn["backend"], txn["backend"]
    txn = b("update-flags", "1", "TRUE", "0", "--json").json()
    assert txn["status"] == "Success"
    flags = b("flags", "--json").json()
    assert status_fields(flags) == {"enabled": True, "abort_on_mismatch": True, "abort_on_missing": False,
                                    "mirror_enabled": False}

    # set: by --summary (hash computed here), by hash with 0x in capitals, by hash without 0x
    txn = b("set", "1", "--summary", FIXTURE, "--json").json()
    assert txn["expected_hash"] == H1 and event_names(txn) == ["ArchiveDualWriteStartedEvent"]
    assert txn["events"][0]["data"]["expected_hash"] == H1
    human = b("set", "7", "0x" + H7[2:].upper()).stdout
    assert f"backend: {describe}" in human and "Success" in human and "ArchiveDualWriteStartedEvent" in human
    b("set", "8", H8[2:])

    st = b("status", "1", "--json").json()
    assert status_fields(st) == {"lottery_id": 1, "enabled": True, "abort_on_mismatch": True,
                                 "abort_on_missing": False, "expected_hash": H1}
    assert b("status", "7", "--json").json()["expected_hash"] == H7
    assert "3 pending: 1 7 8" in b("pending").stdout

    b("enable-mirror", "--json")
    assert b("flags", "--json").json()["mirror_enabled"] is True

    # lottery 1 is finalised (on the host, in the state file the backend uses): the expectation is consumed
    fin = dw.ok("sim", "finalize", "--state", state, FIXTURE, "--json").json()
    assert fin[0]["status"] == "finalized"
    assert "ArchiveDualWriteCompletedEvent" in fin[0]["events"] and "LegacySummaryEvent" in fin[0]["events"]
    st = b("status", "1", "--json").json()
    assert st["expected_hash"] is None and st["enabled"] is True
    assert sorted(b("pending", "--json").json()) == [7, 8]

    # mirror re-writes the legacy copy while the mirror is on; with it off the txn "succeeds" and writes nothing
    txn = b("mirror", "1", "--json").json()
    assert txn["legacy_written"] is True and "LegacySummaryEvent" in event_names(txn)
    b("disable-mirror", "--json")
    off = b("mirror", "1")
    assert "mirror_summary_admin(1): Success" in off.stdout and "NOT written" in off.stderr, off.why()

    b("clear", "7")
    assert b("clear", "8", "--json").json()["status"] == "Success"
    assert "0 pending: none" in b("pending").stdout
    flags = b("flags", "--json").json()
    assert status_fields(flags) == {"enabled": True, "abort_on_mismatch": True, "abort_on_missing": False,
                                    "mirror_enabled": False}

    # an abort: init twice -> E_ALREADY_INITIALIZED (0x1201), exit 4, one line naming code and name
    err = dw.fails(4, "init", "true", "true", *backend).stderr
    assert "E_ALREADY_INITIALIZED" in err and "0x1201" in err and "legacy_bridge" in err

    # what the backend wrote is what the host reads from the same file (and the abort changed nothing)
    for lid in (1, 7):
        assert status_fields(b("status", str(lid), "--json").json()) == \
            status_fields(dw.ok("status", str(lid), *host, "--json").json())
    assert dw.ok("pending", *host, "--json").json() == []
    completed = dw.ok("sim", "events", "--state", state, "--type", "ArchiveDualWriteCompletedEvent",
                      "--lottery", "1", "--json").json()
    assert len(completed) == 1 and completed[0]["data"]["archive_hash"] == H1
    started = dw.ok("sim", "events", "--state", state, "--type", "ArchiveDualWriteStartedEvent", "--json").json()
    assert sorted(int(e["data"]["lottery_id"]) for e in started) == [1, 7, 8]
    legacy = dw.ok("sim", "events", "--state", state, "--type", "LegacySummaryEvent", "--lottery", "1",
                   "--json").json()
    assert len(legacy) == 2  # the finalisation and the one mirror while enabled


def sim_init_only(dw: Dw, state: Path) -> None:
    dw.ok("sim", "init", "--state", state)


def test_flow_sim(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    run_flow(Dw(), ["--backend", "sim", "--state", str(state)], state, f"sim (state {state})")


def test_flow_sim_from_env(tmp_path: Path) -> None:
    """DUALWRITE_BACKEND / DUALWRITE_STATE instead of options (what the drop-in relies on)."""
    state = tmp_path / "sim.sqlite"
    dw = Dw(env={"DUALWRITE_BACKEND": "sim", "DUALWRITE_STATE": str(state)})
    sim_init_only(dw, state)
    dw.ok("init", "true", "false")
    assert dw.ok("flags", "--json").json()["backend"] == f"sim (state {state})"
    human = dw.ok("flags").stdout.splitlines()
    assert human[0] == f"backend: sim (state {state})"
    assert [ln.split() for ln in human[1:]] == [["flag", "value"], ["enabled", "True"], ["abort_on_mismatch", "True"],
                                                ["abort_on_missing", "False"], ["mirror_enabled", "False"]]


@pytest.fixture
def supra_on_path(tmp_path: Path) -> dict[str, str]:
    """dualwrite-supra installed as ``supra`` (with ``dualwrite sim install-supra``) and put on PATH."""
    bindir = tmp_path / "bin"
    out = Dw("proc").ok("sim", "install-supra", bindir)
    assert f"installed {bindir / 'supra'}" in out.stdout
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "DUALWRITE_STATE": str(tmp_path / "chain.sqlite"),
            "bin": str(bindir / "supra")}


def test_flow_local(supra_on_path: dict[str, str], tmp_path: Path) -> None:
    env = {k: v for k, v in supra_on_path.items() if k != "bin"}
    dw = Dw(env=env)  # in-process dualwrite; each call runs the supra found on PATH as a real subprocess
    run_flow(dw, ["--backend", "local"], Path(env["DUALWRITE_STATE"]), f"local (local {supra_on_path['bin']})")


def test_auto_picks_local_and_says_why(supra_on_path: dict[str, str]) -> None:
    env = {k: v for k, v in supra_on_path.items() if k != "bin"}
    dw = Dw("proc", env=env)
    sim_init_only(dw, Path(env["DUALWRITE_STATE"]))
    human = dw.ok("init", "true", "false", "--backend", "auto").stdout
    assert human.splitlines()[0] == f"backend: local (local {supra_on_path['bin']}) — auto: found supra on PATH"
    d = dw.ok("flags", "--json", env={"DUALWRITE_BACKEND": "auto"}).json()
    assert d["backend"].startswith("local (") and "auto: found supra on PATH" in d["backend"]
    assert d["enabled"] is True


@pytest.mark.parametrize("style", ["node", "node-v11.3", "named", "code", "abort-code", "vmerror"])
def test_abort_shapes_through_local(supra_on_path: dict[str, str], style: str) -> None:
    """Whatever abort shape the CLI prints, dualwrite names the code and its name and exits 4."""
    env = {k: v for k, v in supra_on_path.items() if k != "bin"}
    dw = Dw("proc", env={**env, "DUALWRITE_SUPRA_ABORT_STYLE": style})
    sim_init_only(dw, Path(env["DUALWRITE_STATE"]))
    dw.ok("init", "true", "false", "--backend", "local")
    err = dw.fails(4, "init", "true", "false", "--backend", "local").stderr
    assert "E_ALREADY_INITIALIZED (0x1201)" in err and "legacy_bridge" in err
    # a view's abort arrives as {"message": ...} with exit 0 and is an abort too (history has no lottery 99)
    dw.ok("status", "99", "--backend", "local")


# --------------------------------------------------------------------------
# Podman


def containers_mounting(env: dict[str, str], path: Path) -> list[str]:
    """Names of containers (any state) with *path* bind-mounted."""
    ids = podman(env, "ps", "-aq", check=False).stdout.split()
    if not ids:
        return []
    out = podman(env, "inspect", "--format", "{{.Name}} {{range .Mounts}}{{.Source}} {{end}}", *ids,
                 check=False).stdout
    return [ln.split()[0] for ln in out.splitlines() if str(path) in ln.split()[1:]]


@pytest.mark.engine
def test_flow_podman_exec(supra_container) -> None:
    c = supra_container(unique_name("dw-flow-exec"))
    run_flow(Dw(), ["--backend", "podman", "--container", c.name], c.state_db, f"podman (podman exec {c.name})")
    # the container's own view of its file, read inside, agrees
    out = c.supra("move", "tool", "view", "--function-id", "lottery_multi::legacy_bridge::dual_write_flags").stdout
    assert json.loads(out)["result"][0]["enabled"] is True


@pytest.mark.engine
def test_flow_podman_one_shot(podman_env: dict[str, str], podman_image: str, tmp_path: Path) -> None:
    configs, ws = tmp_path / "configs", tmp_path / "move_workspace"
    backend = ["--backend", "podman", "--image", podman_image, "--configs-dir", str(configs),
               "--workspace-dir", str(ws)]
    run_flow(Dw(), backend, configs / "dualwrite-sim.sqlite", f"podman (podman run --rm {podman_image}")
    assert ws.is_dir()
    assert containers_mounting(podman_env, configs) == [], "one-shot containers must be removed"


@pytest.mark.engine
def test_podman_one_shot_env_knobs(podman_env: dict[str, str], podman_image: str, tmp_path: Path) -> None:
    """PODMAN_EXTRA_ARGS and PODMAN_VOLUME_SUFFIX reach ``podman run`` (the old script's knobs)."""
    configs = tmp_path / "configs"
    dw = Dw("proc", env={"PODMAN_EXTRA_ARGS": "-e DUALWRITE_STATE=/supra/configs/extra.sqlite --label dw-test=1",
                         "PODMAN_VOLUME_SUFFIX": ":rw"})
    dw.ok("sim", "init", "--state", configs / "extra.sqlite")
    backend = ["--backend", "podman", "--podman-image", podman_image, "--configs-dir", configs,
               "--workspace-dir", tmp_path / "ws"]
    dw.ok("init", "true", "false", *backend)
    assert dw.ok("flags", "--json", *backend).json()["enabled"] is True
    assert not (configs / "dualwrite-sim.sqlite").exists(), "the extra -e DUALWRITE_STATE was not applied"
    assert Dw().ok("flags", "--backend", "sim", "--state", configs / "extra.sqlite", "--json").json()["enabled"]


# --------------------------------------------------------------------------
# Docker SDK, against a real Docker Engine and against Podman's Docker API


@pytest.mark.engine
def test_flow_docker_exec(docker_engine, docker_container) -> None:
    c = docker_container(unique_name("dw-flow-dexec"))
    dw = Dw(env={"DOCKER_HOST": docker_engine.DOCKER_HOST})
    run_flow(dw, ["--backend", "docker", "--container", c.name], c.state_db, f"docker (docker exec {c.name})")
    code, out = c.supra("move", "tool", "view", "--function-id", "lottery_multi::legacy_bridge::dual_write_flags")
    assert code == 0 and json.loads(out)["result"][0]["enabled"] is True


@pytest.mark.engine
def test_flow_docker_one_shot(docker_engine, tmp_path: Path) -> None:
    configs, ws = tmp_path / "configs", tmp_path / "move_workspace"
    dw = Dw(env={"DOCKER_HOST": docker_engine.DOCKER_HOST})
    backend = ["--backend", "docker", "--image", docker_engine.image, "--configs-dir", str(configs),
               "--workspace-dir", str(ws)]
    run_flow(dw, backend, configs / "dualwrite-sim.sqlite", f"docker (docker run --rm {docker_engine.image}")
    assert docker_engine.containers_mounting(configs) == [], "one-shot containers must be removed"


@pytest.mark.engine
def test_docker_compose_service_label(docker_engine, docker_container) -> None:
    """``--backend docker-compose`` with no --container finds the compose service ``supra_cli`` by label."""
    from docker.errors import NotFound

    try:
        docker_engine.client.containers.get("supra_cli")
        pytest.skip("a container named supra_cli exists (another run's): the label lookup would not be reached")
    except NotFound:
        pass
    c = docker_container(unique_name("dw-compose"), labels={"com.docker.compose.service": "supra_cli"})
    dw = Dw(env={"DOCKER_HOST": docker_engine.DOCKER_HOST})
    sim_init_only(dw, c.state_db)
    dw.ok("init", "true", "false", "--backend", "docker-compose")
    d = dw.ok("flags", "--backend", "docker-compose", "--json").json()
    assert d["backend"] == f"docker (docker exec {c.name})" and d["enabled"] is True


@pytest.mark.engine
def test_docker_engine_refusals_are_one_line_exit_3(docker_engine, docker_container, tmp_path: Path) -> None:
    """An engine that refuses a step (start: the image has no /supra/supra; exec: the same in a running
    container) is one line naming the engine and the step, exit 3 -- never an internal error."""
    from dualwrite.sim.image import base_tag

    dw = Dw(env={"DOCKER_HOST": docker_engine.DOCKER_HOST})
    base = base_tag()  # the image's base: a Debian with python3, and no /supra/supra
    err = dw.fails(3, "flags", "--backend", "docker", "--image", base, "--configs-dir", tmp_path / "c",
                   "--workspace-dir", tmp_path / "w").stderr
    assert len(err.strip().splitlines()) == 1, err
    assert f"docker backend (run {base}): the Docker engine at {docker_engine.DOCKER_HOST}" in err
    assert "refused start:" in err and "/supra/supra" in err, err
    assert docker_engine.containers_mounting(tmp_path / "c") == []

    c = docker_container(unique_name("dw-noexec"), image=base, command=["sleep", "infinity"])
    err = dw.fails(3, "flags", "--backend", "docker", "--container", c.name, "--retries", "0").stderr
    assert len(err.strip().splitlines()) == 1, err
    assert f"docker backend (exec {c.name}): the Docker engine at {docker_engine.DOCKER_HOST} refused exec" in err


# --------------------------------------------------------------------------
# Failure paths: one line, exit 3 (backend) or 4 (abort)


def test_local_supra_missing(tmp_path: Path) -> None:
    dw = Dw("proc")
    err = dw.fails(3, "flags", "--backend", "local", "--supra-bin", tmp_path / "no-supra").stderr
    assert "not found" in err and "no-supra" in err
    # no supra on PATH at all (dualwrite itself runs as `python -m dualwrite`)
    err = dw.fails(3, "status", "1", "--backend", "local", env={"PATH": str(tmp_path)}).stderr
    assert "'supra' not found on PATH" in err


def test_podman_binary_missing(tmp_path: Path) -> None:
    dw = Dw()
    missing = str(tmp_path / "no-podman")
    err = dw.fails(3, "flags", "--backend", "podman", "--podman-bin", missing).stderr
    assert "podman backend" in err and "not found" in err
    err = dw.fails(3, "flags", "--backend", "podman", "--podman-bin", missing, "--image", "x:y").stderr
    assert "not found" in err


def test_docker_engine_absent(tmp_path: Path) -> None:
    sock = f"unix://{tmp_path}/nobody.sock"
    err = Dw(env={"DOCKER_HOST": sock}).fails(3, "flags", "--backend", "docker").stderr
    assert f"no Docker engine at {sock}" in err
    err = Dw().fails(3, "pending", "--backend", "docker-compose", env={"DOCKER_HOST": sock}).stderr
    assert "no Docker engine" in err


def test_auto_nothing_available(tmp_path: Path) -> None:
    sock = f"unix://{tmp_path}/nobody.sock"
    out = Dw("proc").fails(3, "flags", "--backend", "auto", "--podman-bin", tmp_path / "no-podman",
                           env={"PATH": str(tmp_path), "DOCKER_HOST": sock})
    err = out.stderr
    assert "auto backend: nothing to run the Supra CLI with" in err
    assert "no supra on PATH" in err and "no Docker engine" in err and "no podman on PATH" in err


SLOW_SUPRA = """#!{python}
# a Supra CLI that never answers (records each start in $SLOW_SUPRA_LOG first)
import os, sys, time
log = os.environ.get("SLOW_SUPRA_LOG")
if log:
    with open(log, "a") as f:
        f.write(" ".join(sys.argv[1:4]) + "\\n")
time.sleep(60)
"""


@pytest.fixture
def slow_supra(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "slowbin"
    bindir.mkdir()
    script = bindir / "supra"
    script.write_text(SLOW_SUPRA.format(python=sys.executable))
    script.chmod(0o755)
    log = tmp_path / "starts.log"
    return {"PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "SLOW_SUPRA_LOG": str(log)}


def starts(env: dict[str, str]) -> list[str]:
    p = Path(env["SLOW_SUPRA_LOG"])
    return p.read_text().splitlines() if p.exists() else []


def test_timeout_local_view(slow_supra: dict[str, str]) -> None:
    dw = Dw("proc", env=slow_supra)
    t0 = time.monotonic()
    err = dw.fails(3, "flags", "--backend", "local", "--timeout", "0.5", "--retries", "0").stderr
    assert time.monotonic() - t0 < 10
    assert "local backend: no answer within 0.5s" in err
    assert starts(slow_supra) == ["move tool view"]
    # a view that times out is retried (it changes nothing)
    dw.fails(3, "status", "1", "--backend", "local", "--timeout", "0.5", "--retries", "1")
    assert starts(slow_supra) == ["move tool view"] * 3


def test_timeout_local_run_not_resent(slow_supra: dict[str, str]) -> None:
    """A transaction that timed out may have been submitted: it is never sent a second time."""
    dw = Dw("proc", env=slow_supra)
    err = dw.fails(3, "set", "1", H7, "--backend", "local", "--timeout", "0.5", "--retries", "2").stderr
    assert "no answer within 0.5s" in err
    assert starts(slow_supra) == ["move tool run"]


@pytest.mark.engine
def test_podman_container_missing_stopped_and_image_missing(podman_env, podman_image, supra_container,
                                                            tmp_path: Path) -> None:
    dw = Dw()
    name = unique_name("dw-absent")
    err = dw.fails(3, "flags", "--backend", "podman", "--container", name).stderr
    assert f"exec {name}" in err and "no such container" in err

    err = dw.fails(3, "flags", "--backend", "podman", "--image", "localhost/dualwrite-no-such-image:0",
                   "--configs-dir", tmp_path / "c", "--workspace-dir", tmp_path / "w").stderr
    assert "'localhost/dualwrite-no-such-image:0' is not in local storage" in err

    c = supra_container(unique_name("dw-stopped"))
    podman(podman_env, "stop", "-t", "0", c.name)
    err = dw.fails(3, "pending", "--backend", "podman", "--container", c.name, "--retries", "0").stderr
    assert f"exec {c.name}" in err and "running" in err


def slow_supra_file(tmp_path: Path) -> Path:
    slow = tmp_path / "slow-supra"
    slow.write_text(SLOW_SUPRA.format(python=IMAGE_PYTHON).replace("time.sleep(60)", "time.sleep(30)"))
    slow.chmod(0o755)
    return slow


@pytest.mark.engine
def test_podman_exec_timeout(supra_container, tmp_path: Path) -> None:
    """A real slow supra inside the container (bind-mounted over /supra/supra)."""
    slow = slow_supra_file(tmp_path)
    c = supra_container(unique_name("dw-slow"), extra_args=["-v", f"{slow}:/supra/supra:ro"])
    t0 = time.monotonic()
    err = Dw().fails(3, "flags", "--backend", "podman", "--container", c.name, "--timeout", "1",
                     "--retries", "0").stderr
    assert "podman backend: no answer within 1s" in err and time.monotonic() - t0 < 15


@pytest.mark.engine
def test_docker_exec_timeout(docker_engine, docker_container, tmp_path: Path) -> None:
    slow = slow_supra_file(tmp_path)
    c = docker_container(unique_name("dw-dslow"), binds={str(slow): "/supra/supra"})
    t0 = time.monotonic()
    err = Dw(env={"DOCKER_HOST": docker_engine.DOCKER_HOST}).fails(
        3, "flags", "--backend", "docker", "--container", c.name, "--timeout", "0.5", "--retries", "0").stderr
    # (a sub-second --timeout once became an HTTP timeout of 0 and read "no Docker engine")
    assert f"docker backend (exec {c.name}): no answer within 0.5s" in err and time.monotonic() - t0 < 15


@pytest.mark.engine
def test_docker_container_missing_stopped_and_image_missing(docker_engine, docker_container,
                                                            tmp_path: Path) -> None:
    dw = Dw(env={"DOCKER_HOST": docker_engine.DOCKER_HOST})
    name = unique_name("dw-absent")
    err = dw.fails(3, "flags", "--backend", "docker", "--container", name).stderr
    assert f"no container {name!r}" in err
    err = dw.fails(3, "flags", "--backend", "docker", "--image", "localhost/dualwrite-no-such-image:0",
                   "--configs-dir", tmp_path / "c", "--workspace-dir", tmp_path / "w").stderr
    assert "image 'localhost/dualwrite-no-such-image:0' not found" in err

    c = docker_container(unique_name("dw-dstopped"))
    c.stop()
    wait_for(lambda: docker_engine.client.containers.get(c.name).status != "running", 30,
             what=f"{c.name} to stop")
    err = dw.fails(3, "pending", "--backend", "docker", "--container", c.name, "--retries", "0").stderr
    assert f"container {c.name} is exited" in err


# --------------------------------------------------------------------------
# backends/cli_output.py: every output form of supra-cli.md, as the CLI prints it

WHERE = "local backend, legacy_bridge::dual_write_status"
ADDR = "0x6ec620680a2c166a08145e07da190714a7cd06d7bafb6564b9ada8c65ee9ffd3"
TXN_HASH = "0x" + "5e" * 32


def txn_json(status: str, vm_status: str = "Executed successfully", events: list | None = None) -> str:
    return json.dumps({
        "hash": TXN_HASH,
        "header": {"sender": ADDR, "sequence_number": 6, "max_gas_amount": 500000, "gas_unit_price": 100,
                   "expiration_timestamp_secs": 1795515269, "chain_id": 6},
        "payload": {"Move": {"function": f"{ADDR}::legacy_bridge::set_expected_hash", "type_arguments": [],
                             "arguments": ["9", "0xabab"]}},
        "output": {"Move": {"gas_used": 8, "events": events or [], "vm_status": vm_status}},
        "status": status,
    }, indent=2) + "\n"


STARTED = {"guid": {"creation_number": "0", "account_address": ADDR}, "sequence_number": "1",
           "type": f"{ADDR}::legacy_bridge::ArchiveDualWriteStartedEvent",
           "data": {"event_version": 1, "event_category": 8, "lottery_id": "9", "expected_hash": "0xabab"}}

ABORT_NAMED = f"Move abort in {ADDR}::legacy_bridge: E_HISTORY_MISMATCH(0x1b02): archive hash differs from expected"
ABORT_CODE = f"Move abort in {ADDR}::legacy_bridge: 0x1b02"
ABORT_VMERROR = (f"VMError {{ major_status: ABORTED, sub_status: Some(6914), location: Module(ModuleId "
                 f"{{ address: {ADDR[2:]}, name: Identifier(\"legacy_bridge\") }}), indices: [], offsets: [] }}")


def test_parse_view_result() -> None:
    out = '{\n  "result": [\n    {\n      "enabled": true,\n      "expected_hash": {\n        "vec": []\n      }\n    }\n  ]\n}\n'
    assert parse_view(out, "", 0, where=WHERE) == [{"enabled": True, "expected_hash": {"vec": []}}]
    assert parse_view('{"result": []}', "", 0, where=WHERE) == []


def test_parse_view_aptos_result_envelope() -> None:
    assert parse_view('{\n  "Result": [\n    "7",\n    "9"\n  ]\n}', "", 0, where=WHERE) == ["7", "9"]
    assert parse_view('{"Result": true}', "", 0, where=WHERE) == [True]


def test_parse_view_message_with_exit_0_is_a_failure() -> None:
    with pytest.raises(BackendError) as e:
        parse_view('{\n  "message": "Function not found: 0x1::legacy_bridge::nope"\n}\n', "", 0, where=WHERE)
    assert e.value.exit_code == ExitCode.BACKEND and "Function not found" in str(e.value)
    assert WHERE in str(e.value)
    # a view that aborts: the node's message carries the abort
    with pytest.raises(MoveAbort) as a:
        parse_view(json.dumps({"message": f"Invalid view function call: {ABORT_NAMED}"}), "", 0, where=WHERE)
    assert (a.value.code, a.value.name, a.value.exit_code) == (0x1B02, "E_HISTORY_MISMATCH", ExitCode.ABORTED)


def test_parse_error_envelope() -> None:
    with pytest.raises(BackendError) as e:
        parse_run('{\n  "Error": "Unexpected error: Unable to find config .aptos/config.yaml"\n}\n', "", 1,
                  where=WHERE)
    assert "Unable to find config" in str(e.value) and e.value.exit_code == ExitCode.BACKEND
    with pytest.raises(MoveAbort) as a:
        parse_run(json.dumps({"Error": f"Simulation failed with status: {ABORT_CODE}"}), "", 1, where=WHERE)
    assert a.value.code == 0x1B02 and a.value.name == "E_HISTORY_MISMATCH"
    with pytest.raises(BackendError):
        parse_view('{"Error": "API error: connection reset"}', "", 1, where=WHERE)


def test_parse_error_line_on_stderr() -> None:
    stderr = f"account: {ADDR}\nError: Unable to read config file /supra/configs/x.yaml: No such file or directory\n"
    with pytest.raises(BackendError) as e:
        parse_run("", stderr, 1, where=WHERE)
    msg = str(e.value)
    assert "Unable to read config file" in msg and "account:" not in msg and "(exit 1)" in msg
    assert "\n" not in msg
    with pytest.raises(TransientBackendError) as t:
        parse_view("", "Error: error sending request for url (http://localhost:27001/rpc/v3/view): "
                   "connection refused\n", 1, where=WHERE)
    assert t.value.transient
    with pytest.raises(InputError) as i:
        parse_run("", "Error: Invalid arguments: Unable to parse 'u64:x'\n", 1, where=WHERE)
    assert i.value.exit_code == ExitCode.BAD_INPUT


@pytest.mark.parametrize("text", [ABORT_NAMED, ABORT_CODE, ABORT_VMERROR])
def test_three_abort_shapes(text: str) -> None:
    a = find_abort(text)
    assert a is not None and a.code == 0x1B02 and a.name == "E_HISTORY_MISMATCH"
    assert a.module.endswith("legacy_bridge")
    assert "E_HISTORY_MISMATCH (0x1b02)" in str(a)
    # as the CLI reports a simulation abort: stderr, exit 1
    stderr = f"account: {ADDR}\nError: Command Aborted Reason(Simulation failed with status: {text})\n"
    with pytest.raises(MoveAbort) as e:
        parse_run("", stderr, 1, where=WHERE)
    assert e.value.code == 0x1B02 and e.value.exit_code == ExitCode.ABORTED
    # after submission: the transaction JSON with status Fail and the abort in vm_status
    with pytest.raises(MoveAbort) as e:
        parse_run(txn_json("Fail", text), f"account: {ADDR}\n", 0, where=WHERE)
    assert e.value.code == 0x1B02


def test_named_abort_detail_and_small_codes() -> None:
    a = find_abort(ABORT_NAMED)
    assert a.detail == "archive hash differs from expected"
    t = find_abort("Move abort in 0x1::table: 0x2")
    assert t.code == 2 and t.name == "E_KEY_NOT_FOUND"
    assert find_abort(f"Move abort in {ADDR}::history_bridge: 257").code == 0x101
    assert find_abort("Executed successfully") is None


def test_parse_run_success() -> None:
    r = parse_run(txn_json("Success", events=[STARTED]), f"account: {ADDR}\n", 0, where=WHERE)
    assert (r.hash, r.status, r.gas_used, r.vm_status) == (TXN_HASH, "Success", 8, "Executed successfully")
    assert r.event_names() == ["ArchiveDualWriteStartedEvent"]


@pytest.mark.parametrize("status", ["Fail", "Invalid", "Pending", "PendingAfterExecution"])
def test_parse_run_status_not_success(status: str) -> None:
    with pytest.raises(TransactionFailed) as e:
        parse_run(txn_json(status, "OUT_OF_GAS" if status == "Fail" else ""), "", 0, where=WHERE)
    assert e.value.status == status and e.value.txn_hash == TXN_HASH
    assert e.value.exit_code == ExitCode.ABORTED
    assert TXN_HASH in str(e.value)


@pytest.mark.parametrize("line", [
    f"Error: Transaction failed with status: Fail, hash: {TXN_HASH}",
    f"Error: Transaction {TXN_HASH} was committed, but the status was Fail",
    f"Error: transaction status is PendingAfterExecution ({TXN_HASH})",
])
def test_failure_after_submission_on_stderr(line: str) -> None:
    with pytest.raises(TransactionFailed) as e:
        parse_run("", f"account: {ADDR}\n{line}\n", 1, where=WHERE)
    assert e.value.txn_hash == TXN_HASH and e.value.status in ("Fail", "PendingAfterExecution")


def test_text_before_the_json() -> None:
    out = "Transaction submitted: waiting for it to be executed\n" + txn_json("Success", events=[STARTED])
    assert parse_run(out, "", 0, where=WHERE).hash == TXN_HASH
    out = 'Warning: the RPC node is behind\n{\n  "result": [\n    "3"\n  ]\n}\n'
    assert parse_view(out, "", 0, where=WHERE) == ["3"]


def test_aptos_result_envelope_for_run() -> None:
    ok = {"Result": {"transaction_hash": TXN_HASH, "gas_used": 11, "gas_unit_price": 100, "sender": ADDR,
                     "sequence_number": 3, "success": True, "timestamp_us": 1, "version": 1234,
                     "vm_status": "Executed successfully"}}
    r = parse_run(json.dumps(ok, indent=2), "", 0, where=WHERE)
    assert (r.hash, r.status, r.gas_used, r.version) == (TXN_HASH, "Success", 11, 1234)
    bad = {"Result": {**ok["Result"], "success": False, "vm_status": ABORT_NAMED}}
    with pytest.raises(MoveAbort):
        parse_run(json.dumps(bad), "", 0, where=WHERE)
    gas = {"Result": {**ok["Result"], "success": False, "vm_status": "Out of gas"}}
    with pytest.raises(TransactionFailed) as e:
        parse_run(json.dumps(gas), "", 0, where=WHERE)
    assert e.value.txn_hash == TXN_HASH


def test_unreadable_output() -> None:
    with pytest.raises(BackendError) as e:
        parse_view("garbage without json\n", "", 0, where=WHERE)
    assert "unreadable view output" in str(e.value)
    with pytest.raises(BackendError) as e:
        parse_run("", "", 0, where=WHERE)
    assert "unreadable transaction output: nothing" in str(e.value)
    with pytest.raises(BackendError) as e:
        parse_run("", "", 139, where=WHERE)
    assert "(exit 139)" in str(e.value)


def test_timeout_is_transient() -> None:
    assert BackendTimeout("x").transient and BackendTimeout("x").exit_code == ExitCode.BACKEND
