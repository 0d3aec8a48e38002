"""The simulator image: built from the top-level Containerfile on a Debian base made with mmdebstrap and a
wheelhouse (no registry, no network in the build), run for real on Podman, on a real Docker Engine and on
the Docker API that ``podman system service`` serves (no mocks)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dualwrite.sim import image
from dualwrite.sim.container import layout
from dualwrite.sim.image import IMAGE_PYTHON, ImageBuildError, build_image, prepare_context
from tests.engines import REPO_ROOT, podman, unique_name

IMPORT_CHECK = (
    "import dualwrite, pydantic, click, blake3, sqlite3, hashlib, importlib.metadata as m; "
    "assert blake3.blake3(b'').hexdigest().startswith('af1349b9'); "
    "assert hashlib.sha3_256(b'').hexdigest().startswith('a7ffc6f8'); "
    "sqlite3.connect(':memory:').execute('select 1'); "
    "print('ok', m.version('dualwrite'))"
)


# --------------------------------------------------------------------------
# The recipe and its build context (no engine needed)


def test_one_containerfile_at_the_top_level() -> None:
    top = REPO_ROOT / "Containerfile"
    assert top.is_file() and not top.is_symlink()
    assert image.containerfile().resolve() == top.resolve()  # the package's copy is a link to it
    text = top.read_text()
    assert "ARG BASE=docker.io/library/python:3.11-slim\nFROM ${BASE}\n" in text
    assert 'CMD ["/supra/idle"]' in text and "WORKDIR /supra" in text and "SUPRA_HOME=/supra/configs" in text
    assert "--no-index" in text and "dualwrite.sim.container layout /supra" in text
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:1] == ["*"] and "!dualwrite" in ignore and "!wheelhouse" in ignore


def test_build_context_is_source_and_wheelhouse(tmp_path: Path) -> None:
    ctx = prepare_context(tmp_path / "ctx")
    names = sorted(p.name for p in ctx.iterdir())
    assert names == [".dockerignore", "Containerfile", "README.md", "dualwrite", "pyproject.toml", "wheelhouse"]
    assert (ctx / "Containerfile").read_text() == (REPO_ROOT / "Containerfile").read_text()
    assert not list(ctx.rglob("__pycache__"))
    wheels = {w.name.split("-")[0].lower() for w in (ctx / "wheelhouse").glob("*.whl")}
    # dualwrite's runtime dependencies, and what pip needs to build dualwrite from its source, offline
    assert {"click", "pydantic", "pydantic_core", "blake3", "docker", "httpx", "prometheus_client",
            "pip", "setuptools", "wheel"} <= wheels
    assert not wheels & {"pytest", "hypothesis", "atheris", "dualwrite"}
    assert all(w.name.endswith(("-none-any.whl", "x86_64.whl")) for w in (ctx / "wheelhouse").glob("*.whl"))
    # CPython wheels for the base's Python (3.11), or for the stable ABI (abi3)
    assert not [w for w in (ctx / "wheelhouse").glob("*.whl")
                if "-cp3" in w.name and "-cp311-" not in w.name and "-abi3-" not in w.name]


def test_layout_writes_the_entry_points(tmp_path: Path) -> None:
    layout(tmp_path / "supra")
    root = tmp_path / "supra"
    assert sorted(p.name for p in root.iterdir()) == ["configs", "idle", "move_workspace", "python", "supra"]
    for script in ("supra", "idle"):
        text = (root / script).read_text()
        assert text.startswith(f"#!{sys.executable}\n") and "dualwrite.sim.container" in text
        assert (root / script).stat().st_mode & 0o111 == 0o111
    assert (root / "python").readlink() == Path(sys.executable)


def test_entry_point_creates_the_chain_once_and_only_in_the_image(tmp_path: Path) -> None:
    """/supra/supra (written by layout) makes the deployed chain in $SUPRA_HOME when it is missing;
    dualwrite-supra on the host does not."""
    layout(tmp_path / "supra")
    configs = tmp_path / "supra" / "configs"
    env = {"PATH": "/usr/bin:/bin", "SUPRA_HOME": str(configs)}
    view = ["move", "tool", "view", "--function-id", "lottery::history_bridge::is_initialized"]
    host = subprocess.run([str(Path(sys.executable).with_name("dualwrite-supra")), *view], env=env,
                          capture_output=True, text=True, timeout=60)
    assert host.returncode == 1 and "does not exist" in host.stderr and not list(configs.iterdir())
    p = subprocess.run([str(tmp_path / "supra" / "supra"), *view], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout) == {"result": [True]}, p.stderr
    assert sorted(x.name for x in configs.iterdir()) == ["dualwrite-sim.sqlite"]  # no temporary left behind
    genesis = subprocess.run([str(tmp_path / "supra" / "supra"), *view],
                             env={**env, "SUPRA_HOME": str(tmp_path / "g"), "DUALWRITE_SIM_START": "genesis"},
                             capture_output=True, text=True, timeout=60)
    assert json.loads(genesis.stdout) == {"result": [False]}, genesis.stderr
    bad = subprocess.run([str(tmp_path / "supra" / "supra"), *view],
                         env={**env, "SUPRA_HOME": str(tmp_path / "b"), "DUALWRITE_SIM_START": "later"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "DUALWRITE_SIM_START='later'" in bad.stderr and not (tmp_path / "b").exists()


def test_build_image_engine_missing() -> None:
    with pytest.raises(ImageBuildError, match="not found on PATH"):
        build_image("podman", podman_bin="dualwrite-no-such-podman")
    with pytest.raises(ImageBuildError, match="unknown container engine"):
        build_image("containerd")
    assert ImageBuildError("x").exit_code == 3


def test_image_build_without_an_engine_is_exit_3(tmp_path: Path) -> None:
    from tests.envs import base_env

    p = subprocess.run([sys.executable, "-m", "dualwrite", "sim", "image", "build", "--engine", "docker"],
                       env=base_env(DOCKER_HOST=f"unix://{tmp_path}/no.sock"), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 3 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "no Docker engine at unix://" in p.stderr


# --------------------------------------------------------------------------
# Podman


@pytest.mark.engine
def test_podman_image_config(podman_env: dict[str, str], podman_image: str) -> None:
    cfg = podman(podman_env, "image", "inspect", "--format", "{{json .Config}}", podman_image).stdout
    import json

    config = json.loads(cfg)
    assert "SUPRA_HOME=/supra/configs" in config["Env"]
    assert config["WorkingDir"] == "/supra"
    assert config["Cmd"] == ["/supra/idle"]


@pytest.mark.engine
def test_podman_run_python_imports(podman_env: dict[str, str], podman_image: str) -> None:
    out = podman(podman_env, "run", "--rm", podman_image, IMAGE_PYTHON, "-c", IMPORT_CHECK).stdout
    assert out.startswith("ok ")


@pytest.mark.engine
def test_podman_run_supra_entry_point(podman_env: dict[str, str], podman_image: str, tmp_path: Path) -> None:
    """An empty configs volume: the first /supra/supra call makes the deployed chain there."""
    proc = podman(podman_env, "run", "--rm", "-v", f"{tmp_path}:/supra/configs", podman_image, "/supra/supra",
                  "move", "tool", "view", "--function-id", "lottery::history_bridge::is_initialized")
    assert json.loads(proc.stdout) == {"result": [True]}
    assert [p.name for p in tmp_path.iterdir()] == ["dualwrite-sim.sqlite"]
    assert podman(podman_env, "run", "--rm", podman_image, "/supra/supra", "--version").stdout.startswith("supra 9")


@pytest.mark.engine
def test_one_shot_run_writes_through_configs_mount(
    podman_env: dict[str, str], podman_image: str, tmp_path: Path
) -> None:
    code = (
        "import os, pathlib; "
        "p = pathlib.Path(os.environ['SUPRA_HOME'], 'one-shot.txt'); "
        "p.write_text('from the container'); print(p)"
    )
    proc = podman(
        podman_env, "run", "--rm", "-v", f"{tmp_path}:/supra/configs", podman_image, IMAGE_PYTHON, "-c", code
    )
    assert proc.stdout.strip() == "/supra/configs/one-shot.txt"
    assert (tmp_path / "one-shot.txt").read_text() == "from the container"


@pytest.mark.engine
def test_long_running_container_exec_and_shared_state(supra_container) -> None:
    c = supra_container()  # named supra_cli, as the tool expects
    assert c.name == "supra_cli"
    out = c.exec(IMAGE_PYTHON, "-c", "import os; print(os.environ['SUPRA_HOME'], os.getcwd())").stdout
    assert out.split() == ["/supra/configs", "/supra"]

    # SQLite state written inside, at $SUPRA_HOME/dualwrite-sim.sqlite, is
    # readable on the host through the bind mount (and back).
    code = (
        "import os, sqlite3; "
        "db = sqlite3.connect(os.path.join(os.environ['SUPRA_HOME'], 'dualwrite-sim.sqlite')); "
        "db.execute('create table t (k text primary key, v text)'); "
        "db.execute(\"insert into t values ('round', '7')\"); db.commit(); db.close()"
    )
    c.exec(IMAGE_PYTHON, "-c", code)
    with sqlite3.connect(c.state_db) as db:
        assert db.execute("select v from t where k = 'round'").fetchone() == ("7",)
        db.execute("insert into t values ('host', 'yes')")
    out = c.exec(
        IMAGE_PYTHON,
        "-c",
        "import sqlite3; print(sqlite3.connect('/supra/configs/dualwrite-sim.sqlite')"
        ".execute(\"select v from t where k = 'host'\").fetchone()[0])",
    ).stdout
    assert out.strip() == "yes"

    # the move workspace mount too
    c.exec(IMAGE_PYTHON, "-c", "open('/supra/move_workspace/Move.toml', 'w').write('[package]\\n')")
    assert (c.move_workspace / "Move.toml").read_text() == "[package]\n"

    assert c.supra("--help").stdout.strip()


@pytest.mark.engine
def test_container_stops_promptly(supra_container, podman_env: dict[str, str]) -> None:
    c = supra_container(unique_name())
    t0 = time.monotonic()
    podman(podman_env, "stop", "-t", "10", c.name)
    assert time.monotonic() - t0 < 5, "/supra/idle should exit on SIGTERM, not wait for SIGKILL"
    state = podman(podman_env, "inspect", "--format", "{{.State.ExitCode}}", c.name).stdout.strip()
    assert state == "0"


# --------------------------------------------------------------------------
# The Docker API: a real Docker Engine and podman system service


@pytest.mark.engine
def test_docker_engine_image_config_and_run(docker_engine, tmp_path: Path) -> None:
    client = docker_engine.client
    img = client.images.get(docker_engine.image)
    assert img.attrs["Config"]["Cmd"] == ["/supra/idle"] and img.attrs["Config"]["WorkingDir"] == "/supra"
    assert "SUPRA_HOME=/supra/configs" in img.attrs["Config"]["Env"]
    out = client.containers.run(docker_engine.image, [IMAGE_PYTHON, "-c", IMPORT_CHECK], remove=True,
                                network_mode="none")
    assert out.startswith(b"ok ")
    out = client.containers.run(docker_engine.image, ["/supra/supra", "move", "tool", "view", "--function-id",
                                                      "lottery_multi::legacy_bridge::is_enabled"], remove=True,
                                volumes={str(tmp_path): {"bind": "/supra/configs", "mode": "rw"}},
                                network_mode="none")
    assert json.loads(out) == {"result": [False]}  # deployed: history and the bridge, no dual-write yet
    assert (tmp_path / "dualwrite-sim.sqlite").is_file()


@pytest.mark.engine
def test_docker_engine_exec_and_shared_state(docker_container) -> None:
    c = docker_container()
    # /supra/idle made the chain at start: a container is a node, its chain exists from the start
    code, out = c.supra("move", "tool", "view", "--function-id", "lottery::history_bridge::is_initialized")
    assert code == 0 and json.loads(out) == {"result": [True]}
    with sqlite3.connect(c.state_db) as db:
        assert db.execute("select count(*) from meta").fetchone()[0] > 0


@pytest.mark.engine
def test_build_image_through_docker_api(docker_engine) -> None:
    """``dualwrite sim image build --engine docker`` on this engine: the Containerfile, built by the engine's
    build API (cached layers: the session built it once already)."""
    client = docker_engine.client
    tag = f"localhost/dualwrite-supra:api-{unique_name('t')}"
    p = subprocess.run([sys.executable, "-m", "dualwrite", "sim", "image", "build", "--engine", "docker", "--tag", tag],
                       env={**docker_engine.env}, capture_output=True, text=True, timeout=900)
    try:
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"built {tag} (sha256:") and " with docker in " in p.stdout
        img = client.images.get(tag)
        assert img.attrs["Config"]["Cmd"] == ["/supra/idle"]
        out = client.containers.run(tag, [IMAGE_PYTHON, "-c", "print('api')"], remove=True, network_mode="none")
        assert out == b"api\n"
    finally:
        client.images.remove(tag, force=True)


@pytest.mark.engine
def test_an_image_build_the_engine_refuses_is_one_line_exit_3(docker_engine, podman_env) -> None:
    """A base the engine cannot find or pull (no registry here): the build step's refusal, naming the engine."""
    base = "localhost/dualwrite-no-such-base:0"
    argv = [sys.executable, "-m", "dualwrite", "sim", "image", "build", "--base", base, "--tag",
            f"localhost/dualwrite-supra:refused-{unique_name('t')}"]
    p = subprocess.run([*argv, "--engine", "docker"], env=docker_engine.env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 3 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert f"Docker engine at {docker_engine.DOCKER_HOST}: image build refused: " in p.stderr, p.stderr
    assert "internal error" not in p.stderr
    if docker_engine.name == "podman-api":  # the podman command too, once
        p = subprocess.run([*argv, "--engine", "podman"], env=podman_env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 3 and len(p.stderr.strip().splitlines()) == 1, p.stderr
        assert "podman: image build failed (exit" in p.stderr and base in p.stderr, p.stderr
