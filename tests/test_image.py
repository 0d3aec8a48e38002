"""The simulator image: built from this machine's Python with no registry,
run for real on Podman and through the Docker Engine API that
``podman system service`` serves (no mocks)."""

from __future__ import annotations

import importlib.util
import sqlite3
import stat
import tarfile
import time
from pathlib import Path

import pytest

from dualwrite.sim import image
from dualwrite.sim.image import IMAGE_PYTHON, ImageBuildError, build_image, build_rootfs
from tests.engines import podman, unique_name

IMPORT_CHECK = (
    "import dualwrite, pydantic, click, blake3, sqlite3, hashlib, importlib.metadata as m; "
    "assert blake3.blake3(b'').hexdigest().startswith('af1349b9'); "
    "assert hashlib.sha3_256(b'').hexdigest().startswith('a7ffc6f8'); "
    "sqlite3.connect(':memory:').execute('select 1'); "
    "print('ok', m.version('dualwrite'))"
)


def have_supra_cli() -> bool:
    try:
        return importlib.util.find_spec("dualwrite.sim.supra_cli") is not None
    except ModuleNotFoundError:
        return False


# --------------------------------------------------------------------------
# The root filesystem (no engine needed)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> tarfile.TarFile:
    tar = build_rootfs(tmp_path_factory.mktemp("rootfs") / "rootfs.tar")
    with tarfile.open(tar) as tf:
        yield tf


def test_rootfs_layout(rootfs: tarfile.TarFile) -> None:
    members = {m.name: m for m in rootfs.getmembers()}
    py = IMAGE_PYTHON.lstrip("/")
    assert members[py].isfile() and members[py].mode & stat.S_IXUSR
    for script in ("supra/supra", "supra/idle", "usr/local/bin/dualwrite-supra", "usr/local/bin/dualwrite"):
        m = members[script]
        assert m.isfile() and m.mode & 0o111 == 0o111, script
        first = rootfs.extractfile(m).readline().decode()
        assert first.startswith(f"#!{IMAGE_PYTHON}"), (script, first)
    assert b"dualwrite.sim.supra_cli" in rootfs.extractfile(members["supra/supra"]).read()
    assert members["tmp"].isdir() and members["tmp"].mode == 0o1777
    for d in ("supra/configs", "supra/move_workspace"):
        assert members[d].isdir()
    # the dynamic loader, reachable at the path ELF files name
    assert members["lib64"].issym() or members["lib64"].isdir()
    assert any(n.endswith("/ld-linux-x86-64.so.2") for n in members)
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert "bin/sh" not in members and "usr/bin/sh" not in members


def test_rootfs_only_needed_python(rootfs: tarfile.TarFile) -> None:
    names = rootfs.getnames()
    sp = image.IMAGE_SITE_PACKAGES.lstrip("/") + "/"
    top = {n[len(sp) :].split("/")[0] for n in names if n.startswith(sp) and n != sp.rstrip("/")}
    packages = {t for t in top if not t.endswith(".dist-info") and not t.endswith(".py")}
    needed = {"dualwrite", "pydantic", "pydantic_core", "click", "blake3", "annotated_types", "typing_inspection"}
    assert needed <= packages
    assert not packages & {"docker", "requests", "pytest", "hypothesis", "pip", "setuptools", "urllib3"}
    stdlib = image.IMAGE_STDLIB.lstrip("/") + "/"
    for unneeded in ("test/", "idlelib/", "tkinter/", "ensurepip/", "lib2to3/", "turtledemo/"):
        assert not any(n.startswith(stdlib + unneeded) for n in names), unneeded
    assert not any("config-3" in n for n in names)
    assert not any(n.endswith(".opt-1.pyc") for n in names)
    # dualwrite ships precompiled (hash-checked) bytecode
    assert any(n.startswith(sp + "dualwrite/__pycache__/") for n in names)


def test_rootfs_size(tmp_path: Path) -> None:
    t0 = time.monotonic()
    tar = build_rootfs(tmp_path / "r.tar")
    elapsed = time.monotonic() - t0
    size = tar.stat().st_size
    print(f"rootfs {size / 2**20:.1f} MiB in {elapsed:.2f}s")
    assert size < 120 * 2**20
    assert elapsed < 60


def test_build_image_engine_missing() -> None:
    with pytest.raises(ImageBuildError, match="not found on PATH"):
        build_image("podman", podman_bin="dualwrite-no-such-podman")
    with pytest.raises(ImageBuildError, match="unknown container engine"):
        build_image("containerd")


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
def test_podman_run_supra_entry_point(podman_env: dict[str, str], podman_image: str) -> None:
    if have_supra_cli():
        proc = podman(podman_env, "run", "--rm", podman_image, "/supra/supra", "--help")
        assert proc.stdout.strip()
    else:
        # dualwrite.sim.supra_cli not written yet: the entry point's interpreter
        # and the image's Python must still work.
        proc = podman(podman_env, "run", "--rm", podman_image, IMAGE_PYTHON, "-c", IMPORT_CHECK)
        assert proc.stdout.startswith("ok ")


@pytest.mark.engine
def test_podman_image_has_no_shell(podman_env: dict[str, str], podman_image: str) -> None:
    proc = podman(podman_env, "run", "--rm", podman_image, "/bin/sh", "-c", "true", check=False)
    assert proc.returncode != 0


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

    if have_supra_cli():
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
# Docker Engine API (podman system service)


@pytest.mark.engine
def test_docker_api_sees_podman_image(docker_api, podman_image: str) -> None:
    client = docker_api["client"]
    tags = {t for img in client.images.list() for t in img.tags}
    assert podman_image in tags


@pytest.mark.engine
def test_docker_api_run_and_exec(docker_api, podman_image: str, tmp_path: Path) -> None:
    client = docker_api["client"]
    out = client.containers.run(podman_image, [IMAGE_PYTHON, "-c", "print(1)"], remove=True)
    assert out == b"1\n"

    name = unique_name("dw-api")
    container = client.containers.run(
        podman_image,
        ["/supra/idle"],
        name=name,
        detach=True,
        environment={"SUPRA_HOME": "/supra/configs"},
        volumes={str(tmp_path): {"bind": "/supra/configs", "mode": "rw"}},
    )
    try:
        code, output = container.exec_run(
            [IMAGE_PYTHON, "-c", "import os; open('/supra/configs/api.txt','w').write(os.environ['SUPRA_HOME'])"]
        )
        assert code == 0, output
        assert (tmp_path / "api.txt").read_text() == "/supra/configs"
        code, output = container.exec_run([IMAGE_PYTHON, "-c", IMPORT_CHECK])
        assert code == 0 and output.startswith(b"ok "), output
    finally:
        container.remove(force=True)


@pytest.mark.engine
def test_build_image_through_docker_api(docker_api) -> None:
    client = docker_api["client"]
    tag = f"localhost/dualwrite-supra:api-{unique_name('t')}"
    image_id = build_image("docker", tag, docker_client=client)
    try:
        img = client.images.get(tag)
        assert img.id == image_id
        assert img.attrs["Config"]["Cmd"] == ["/supra/idle"]
        assert "SUPRA_HOME=/supra/configs" in img.attrs["Config"]["Env"]
        out = client.containers.run(tag, [IMAGE_PYTHON, "-c", "print('api')"], remove=True)
        assert out == b"api\n"
    finally:
        client.images.remove(tag, force=True)
