"""``scripts/dual_write_control.sh``, the drop-in for the operators' old script, run as a new
user would: ``bash scripts/dual_write_control.sh ...`` in a real subprocess, with the
runbook's command lines, on ``sim`` (DUALWRITE_BACKEND=sim), ``local`` (dualwrite-supra
installed as ``supra`` on PATH, found by the old auto-detection), ``podman`` and ``docker`` (a real
Docker Engine and Podman's Docker API), each in exec mode and in one-shot mode
(``--podman-image IMAGE``: ./configs and ./move_workspace of the working directory mounted, as the
old script ran them), the container runs starting from an empty configs volume.

The old script failed all of these ("local: can only be used in a function"; arguments
lost): each command here is checked by its effect on the chain, not only its exit code.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dualwrite.hashing import expected_hash
from dualwrite.structs import LotterySummary
from tests.engines import REPO_ROOT, podman, unique_name
from tests.envs import base_env as clean_env

SCRIPT = REPO_ROOT / "scripts" / "dual_write_control.sh"
FIXTURE = REPO_ROOT / "fixtures" / "summaries" / "lottery-1.json"
H1 = expected_hash(LotterySummary.from_move_json(json.loads(FIXTURE.read_text())))
H2 = "0x" + "cd" * 32

class Script:
    """``bash scripts/dual_write_control.sh ARGS`` in *cwd* with *env*."""

    def __init__(self, cwd: Path, env: dict[str, str], pre: list[str] | None = None) -> None:
        self.cwd = cwd
        self.env = env
        self.pre = list(pre or [])  # global options the operator types before the command

    def __call__(self, *args: str, env: dict[str, str] | None = None, bash: str = "bash",
                 pre: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        argv = [bash, str(SCRIPT), *(self.pre if pre is None else pre), *map(str, args)]
        return subprocess.run(argv, cwd=self.cwd, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=180, stdin=subprocess.DEVNULL)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        p = self(*args, **kw)
        assert p.returncode == 0, f"{args} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def js(self, *args: str, **kw):
        return json.loads(self.ok(*args, "--json", **kw).stdout)


def dualwrite(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "dualwrite", *map(str, args)], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def all_ten_commands(sh: Script, state: Path, env: dict[str, str], describe: str, *, host_init: bool = True) -> None:
    """The runbook's commands, each checked by its effect; *state* is the chain's file on this host.
    With ``host_init=False`` the chain is the container's own (an empty configs volume: the image makes
    it, deployed, on its first call), and step 1 is the first thing that touches it."""
    if host_init:
        dualwrite(env, "sim", "init", "--state", state)  # the chain exists: history, history_bridge

    p = sh.ok("init", "true", "false")
    assert f"backend: {describe}" in p.stdout and "init_dual_write" in p.stdout and "Success" in p.stdout
    sh.ok("update-flags", "1", "TRUE", "0")
    f = sh.js("flags")
    assert (f["enabled"], f["abort_on_mismatch"], f["abort_on_missing"], f["mirror_enabled"]) == (True, True, False, False)

    sh.ok("set", "1", H1[2:].upper())  # no 0x, capitals
    sh.ok("set", "2", H2)  # with 0x
    assert sh.js("status", "1")["expected_hash"] == H1
    assert "2 pending: 1 2" in sh.ok("pending").stdout

    sh.ok("enable-mirror")
    fin = json.loads(dualwrite(env, "sim", "finalize", "--state", state, FIXTURE, "--json").stdout)
    assert "ArchiveDualWriteCompletedEvent" in fin[0]["events"]
    human = sh.ok("status", "1").stdout  # the expectation was consumed by the finalisation
    assert "expected_hash      none" in human and "abort_on_mismatch  True" in human

    txn = sh.js("mirror", "1")
    assert txn["legacy_written"] is True and txn["status"] == "Success"
    sh.ok("disable-mirror")
    sh.ok("clear", "2")
    assert sh.js("pending") == []
    human = sh.ok("flags").stdout
    assert "mirror_enabled     False" in human and "enabled            True" in human

    # what the commands did is in the chain's file on this host
    host = json.loads(dualwrite(env, "status", "2", "--backend", "sim", "--state", state, "--json").stdout)
    assert (host["expected_hash"], host["abort_on_mismatch"]) == (None, True)
    started = json.loads(dualwrite(env, "sim", "events", "--state", state, "--type", "ArchiveDualWriteStartedEvent",
                                   "--json").stdout)
    assert [(int(e["data"]["lottery_id"]), e["data"]["expected_hash"]) for e in started] == [(1, H1), (2, H2)]

    # an abort through the drop-in: exit 4, named
    p = sh("init", "true", "false")
    assert p.returncode == 4 and "E_ALREADY_INITIALIZED (0x1201)" in p.stderr, p.stderr


# --------------------------------------------------------------------------


def test_syntax_and_shellcheck() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert "eval" not in text.split("set -euo pipefail", 1)[1]
    assert os.access(SCRIPT, os.X_OK)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    p = subprocess.run(["shellcheck", "--severity=style", str(SCRIPT)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def test_help_and_usage_errors(tmp_path: Path) -> None:
    sh = Script(tmp_path, clean_env())
    for flag in ("--help", "-h"):
        p = sh.ok(flag)
        assert p.stdout.startswith("Usage: dual_write_control.sh [--profile NAME] [--config PATH]")
        for cmd in ("init <abort_on_mismatch> <abort_on_missing>",
                    "update-flags <enabled> <abort_on_mismatch> <abort_on_missing>",
                    "set <lottery_id> <expected_hash_hex>", "clear <lottery_id>", "enable-mirror | disable-mirror",
                    "mirror <lottery_id>", "status <lottery_id>", "flags", "pending"):
            assert cmd in p.stdout
    p = sh()
    assert p.returncode == 2 and "Usage:" in p.stderr
    p = sh("frobnicate")
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr
    p = sh("--backend", "kubernetes", "flags")
    assert p.returncode == 2 and "--backend 'kubernetes'" in p.stderr
    p = sh("--profile")
    assert p.returncode == 2 and "--profile needs a value" in p.stderr
    p = sh("--verbose", "flags")
    assert p.returncode == 2 and "unknown option '--verbose'" in p.stderr


def test_sim(tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    env = clean_env(DUALWRITE_BACKEND="sim", DUALWRITE_STATE=str(state))
    sh = Script(tmp_path, env)
    all_ten_commands(sh, state, env, f"sim (state {state})")
    # bad input is refused before any backend is touched: exit 2 on every backend alike
    p = sh("init", "yes", "false")
    assert p.returncode == 2 and "'yes': expected one of: true, false, 1, 0" in p.stderr, p.stderr
    p = sh("set", "3", "0xabc")
    assert p.returncode == 2, p.stderr
    p = sh("set", "3", "ab" * 31)
    assert p.returncode == 2 and "31 bytes" in p.stderr, p.stderr
    p = sh("status")
    assert p.returncode == 2 and "Missing argument" in p.stderr, p.stderr
    p = sh("clear", "-1")
    assert p.returncode == 2, p.stderr


@pytest.fixture
def supra_path(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bindir = tmp_path / "bin"
    dualwrite(clean_env(), "sim", "install-supra", bindir)
    state = tmp_path / "chain.sqlite"
    return clean_env(PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", DUALWRITE_STATE=str(state)), bindir / "supra"


def test_local_auto_detected(tmp_path: Path, supra_path) -> None:
    """No --backend: the old script's auto-detection finds the supra on PATH (and says so)."""
    env, supra = supra_path
    all_ten_commands(Script(tmp_path, env), Path(env["DUALWRITE_STATE"]), env,
                     f"local (local {supra}) — auto: found supra on PATH")


def test_local_explicit_profile_and_config(tmp_path: Path, supra_path) -> None:
    env, supra = supra_path
    state = Path(env["DUALWRITE_STATE"])
    dualwrite(env, "sim", "init", "--state", state)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("profiles: {}\n")
    sh = Script(tmp_path, env, pre=["--backend", "local", "--profile", "lottery_multi", "--config", str(cfg)])
    assert f"backend: local (local {supra})\n" in sh.ok("init", "0", "1").stdout
    assert sh.js("flags")["abort_on_missing"] is True
    # --profile reaches the CLI: another account is refused by the module
    p = sh("set", "5", H2, pre=["--backend", "local", "--profile", "operator"])
    assert p.returncode == 4 and "E_HISTORY_NOT_AUTHORIZED" in p.stderr, p.stderr
    # --config reaches the CLI: a missing file is a backend failure (exit 3), in one line
    p = sh("clear", "5", pre=["--backend", "local", "--config", str(tmp_path / "missing.yaml")])
    assert p.returncode == 3 and "Unable to read config file" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    # DUALWRITE_BACKEND overrides the auto default; --backend overrides both
    assert sh.js("flags", pre=[], env={"DUALWRITE_BACKEND": "local"})["backend"] == f"local (local {supra})"
    p = sh("flags", pre=["--backend", "local", "--backend=podman", "--podman-image=x"],
           env={"DUALWRITE_PODMAN_BIN": str(tmp_path / "no-podman")})
    assert p.returncode == 3 and "podman backend" in p.stderr


def test_local_supra_missing_and_dualwrite_fallback(tmp_path: Path, supra_path) -> None:
    env, _ = supra_path
    state = Path(env["DUALWRITE_STATE"])
    dualwrite(env, "sim", "init", "--state", state)
    # no dualwrite on PATH: python3 -m dualwrite. The python3 here is a wrapper that execs this
    # interpreter by its own path (a symlink to a venv's python outside the venv does not see the
    # venv's packages), so it can import dualwrite only as the installed package.
    pybin = tmp_path / "pybin"
    pybin.mkdir()
    wrapper = pybin / "python3"
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} \"$@\"\n")
    wrapper.chmod(0o755)
    supra_dir = str(Path(env["PATH"].split(os.pathsep)[0]))
    path = os.pathsep.join([pybin.as_posix(), supra_dir, "/usr/bin", "/bin"])
    sh = Script(tmp_path, {**env, "PATH": path})
    assert shutil.which("dualwrite", path=path) is None
    sh.ok("init", "true", "true")
    assert sh.js("flags", pre=["--backend", "local"])["abort_on_missing"] is True
    # neither dualwrite nor python3: a clear message, exit 3
    empty = tmp_path / "empty"
    empty.mkdir()
    p = sh("flags", env={"PATH": str(empty)}, bash=shutil.which("bash"))
    assert p.returncode == 3 and "dualwrite is not installed" in p.stderr
    # --backend local with no supra: exit 3, one line
    p = sh("flags", pre=["--backend", "local"], env={"PATH": os.pathsep.join([pybin.as_posix(), "/usr/bin", "/bin"])})
    assert p.returncode == 3 and "'supra' not found on PATH" in p.stderr


@pytest.mark.engine
def test_podman_one_shot_in_cwd(podman_env: dict[str, str], podman_image: str, tmp_path: Path) -> None:
    """``--backend podman --podman-image IMAGE``: ./configs and ./move_workspace of the cwd, as the old script;
    an empty ./configs: the runbook works from step 1 (the image makes the chain on its first call)."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "move_workspace").mkdir()
    env = clean_env(CONTAINERS_CONF=podman_env["CONTAINERS_CONF"], PODMAN_VOLUME_SUFFIX=":Z")
    sh = Script(tmp_path, env, pre=["--backend", "podman", "--podman-image", podman_image])
    state = tmp_path / "configs" / "dualwrite-sim.sqlite"
    all_ten_commands(sh, state, env, f"podman (podman run --rm {podman_image} (configs {tmp_path / 'configs'}))",
                     host_init=False)
    assert sorted(p.name for p in (tmp_path / "configs").iterdir() if p.suffix == ".sqlite") == ["dualwrite-sim.sqlite"]


@pytest.mark.engine
def test_podman_exec_from_an_empty_configs_volume(podman_env: dict[str, str], supra_container,
                                                  tmp_path: Path) -> None:
    """The container started on an empty configs folder is a node: the runbook works from step 1 by exec."""
    configs = tmp_path / "configs"
    configs.mkdir()
    c = supra_container(unique_name("dw-dropin-x"), configs=configs)
    env = clean_env(CONTAINERS_CONF=podman_env["CONTAINERS_CONF"], DUALWRITE_CONTAINER=c.name)
    all_ten_commands(Script(tmp_path, env, pre=["--backend", "podman"]), c.state_db, env,
                     f"podman (podman exec {c.name})", host_init=False)


@pytest.mark.engine
def test_docker_one_shot_in_cwd(docker_engine, tmp_path: Path) -> None:
    """``--backend docker --podman-image IMAGE`` on a real Docker Engine and on Podman's Docker API, from an
    empty ./configs."""
    (tmp_path / "configs").mkdir()
    env = clean_env(DOCKER_HOST=docker_engine.DOCKER_HOST)
    sh = Script(tmp_path, env, pre=["--backend", "docker", "--podman-image", docker_engine.image])
    all_ten_commands(sh, tmp_path / "configs" / "dualwrite-sim.sqlite", env,
                     f"docker (docker run --rm {docker_engine.image} (configs {tmp_path / 'configs'}))",
                     host_init=False)
    assert docker_engine.containers_mounting(tmp_path / "configs") == []


@pytest.mark.engine
def test_docker_exec_from_an_empty_configs_volume(docker_engine, docker_container, tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    c = docker_container(unique_name("dw-dropin-d"), configs=configs)
    env = clean_env(DOCKER_HOST=docker_engine.DOCKER_HOST, DUALWRITE_CONTAINER=c.name)
    all_ten_commands(Script(tmp_path, env, pre=["--backend", "docker"]), c.state_db, env,
                     f"docker (docker exec {c.name})", host_init=False)


@pytest.mark.engine
def test_podman_exec_and_extra_args(podman_env: dict[str, str], podman_image: str, supra_container,
                                    tmp_path: Path) -> None:
    """Without --podman-image: exec into the running container (named by DUALWRITE_CONTAINER here, as
    supra_cli may belong to someone else on this machine); PODMAN_EXTRA_ARGS reaches podman run."""
    c = supra_container(unique_name("dw-dropin"))
    env = clean_env(CONTAINERS_CONF=podman_env["CONTAINERS_CONF"], DUALWRITE_CONTAINER=c.name)
    sh = Script(tmp_path, env, pre=["--backend", "podman"])
    assert f"backend: podman (podman exec {c.name})" in sh.ok("init", "1", "0").stdout
    sh.ok("set", "4", "0x" + H2[2:].upper())
    assert sh.js("pending") == [4]
    # the same chain through one-shot containers: ./configs here is the exec container's configs dir;
    # PODMAN_EXTRA_ARGS reaches `podman run` (the abort shape it selects carries no detail text)
    (tmp_path / "configs").symlink_to(c.configs, target_is_directory=True)
    one = Script(tmp_path, {**env, "PODMAN_EXTRA_ARGS": f"--label {unique_name()}=1 -e DUALWRITE_SUPRA_ABORT_STYLE=code"},
                 pre=["--backend", "podman", "--podman-image", podman_image])
    assert one.js("status", "4")["expected_hash"] == H2
    p = one("init", "true", "true")
    assert p.returncode == 4 and "E_ALREADY_INITIALIZED (0x1201)" in p.stderr, p.stderr
    assert "already exists" not in p.stderr, "PODMAN_EXTRA_ARGS did not reach podman run"
    assert "already exists" in sh("init", "true", "true").stderr  # exec: the default, named shape
    # the container missing: exit 3, one line
    p = sh("flags", env={"DUALWRITE_CONTAINER": unique_name("dw-gone")})
    assert p.returncode == 3 and "no such container" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    podman(podman_env, "rm", "-f", "-t", "0", c.name)
