"""Pytest fixtures for tests that need a real container engine.

Podman is driven with the project's own ``.ci/containers.conf`` (runc, no
default ulimits, cgroupfs, file events logger). The Docker Engine API comes
from two real engines, and every docker-backend test runs against both
(``docker_engine`` is parametrized):

- ``dockerd``: a real Docker Engine (Debian's docker.io), started for the
  session on a socket in a temporary folder (its own data and exec roots,
  its own managed containerd), stopped by its pid at the end, with what it
  leaves mounted unmounted;
- ``podman-api``: ``podman system service`` on a private unix socket, sharing
  podman's image storage.

The simulator image is built once per session per engine.

Fixtures skip when an engine is missing, unless ``DUALWRITE_REQUIRE_ENGINES=1``
(set by CI), where a missing or failing engine fails the test instead.

``tests/conftest.py`` star-imports this module, so the fixtures are available
to every test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = [
    "CONTAINERS_CONF",
    "DOCKER_ENGINES",
    "DockerEngine",
    "REPO_ROOT",
    "SupraContainer",
    "docker_api",
    "docker_container",
    "docker_engine",
    "dockerd",
    "dockerd_image",
    "engine_unavailable",
    "engines_required",
    "podman",
    "podman_env",
    "podman_image",
    "supra_container",
    "unique_name",
    "wait_for",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
CONTAINERS_CONF = REPO_ROOT / ".ci" / "containers.conf"
SUPRA_HOME = "/supra/configs"
MOVE_WORKSPACE = "/supra/move_workspace"


def engines_required() -> bool:
    """True when a missing engine must fail the run (CI) instead of skipping."""
    return os.environ.get("DUALWRITE_REQUIRE_ENGINES", "").strip() == "1"


def engine_unavailable(reason: str) -> NoReturn:
    """Skip, or fail under ``DUALWRITE_REQUIRE_ENGINES=1``."""
    if engines_required():
        raise pytest.fail.Exception(
            f"{reason} (DUALWRITE_REQUIRE_ENGINES=1: a missing engine is a failure)", pytrace=False
        )
    raise pytest.skip.Exception(reason)


def wait_for(
    condition: Callable[[], Any], timeout: float, *, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll *condition* until it returns a truthy value or *timeout* passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(min(interval, remaining))


def podman(
    env: dict[str, str],
    *args: str,
    check: bool = True,
    timeout: float = 120,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS...`` (argv list, never a shell) with *env*."""
    proc = subprocess.run(
        ["podman", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


# --------------------------------------------------------------------------
# Podman


@pytest.fixture(scope="session")
def podman_env() -> Iterator[dict[str, str]]:
    """Environment for podman subprocesses; also sets ``CONTAINERS_CONF``
    in ``os.environ`` for the session (restored afterwards)."""
    if shutil.which("podman") is None:
        engine_unavailable("podman is not on PATH (install it with `bash .ci/setup-podman.sh`)")
    if not CONTAINERS_CONF.is_file():
        pytest.fail(f"{CONTAINERS_CONF} is missing", pytrace=False)
    old = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    env = dict(os.environ)
    try:
        try:
            info = podman(env, "info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            engine_unavailable("`podman info` did not answer within 60s")
        if info.returncode != 0:
            engine_unavailable(f"`podman info` failed: {info.stderr.strip()}")
        yield env
    finally:
        if old is None:
            os.environ.pop("CONTAINERS_CONF", None)
        else:
            os.environ["CONTAINERS_CONF"] = old


def test_image_tag() -> str:
    """The tag the tests build the image as: named by the content of the recipe and the package, so runs
    of other trees on this machine (which share podman's storage) never swap the image under a test."""
    import hashlib

    h = hashlib.sha256()
    files = [REPO_ROOT / "Containerfile", REPO_ROOT / "pyproject.toml",
             *sorted((REPO_ROOT / "dualwrite").rglob("*.py"))]
    for f in files:
        h.update(str(f.relative_to(REPO_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return f"localhost/dualwrite-supra:test-{h.hexdigest()[:12]}"


test_image_tag.__test__ = False  # type: ignore[attr-defined]  (not a test, whatever its name)


@pytest.fixture(scope="session")
def podman_image(podman_env: dict[str, str]) -> str:
    """Build the simulator image once per session; returns its tag."""
    from dualwrite.sim.image import ImageBuildError, build_image

    tag = test_image_tag()
    try:
        build_image("podman", tag)
    except ImageBuildError as exc:
        pytest.fail(f"building the simulator image failed: {exc}", pytrace=False)
    return tag


@dataclass
class SupraContainer:
    """A long-running simulator container (``/supra/idle``)."""

    name: str
    image: str
    configs: Path
    move_workspace: Path
    env: dict[str, str] = field(repr=False)
    id: str = ""

    def exec(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``podman exec NAME ARGV...``"""
        return podman(self.env, "exec", self.name, *argv, check=check, timeout=timeout)

    def supra(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``podman exec NAME /supra/supra ARGS...``"""
        return self.exec("/supra/supra", *args, check=check, timeout=timeout)

    @property
    def state_db(self) -> Path:
        """Host path of the simulator's SQLite state (``$SUPRA_HOME/dualwrite-sim.sqlite``)."""
        return self.configs / "dualwrite-sim.sqlite"


@pytest.fixture
def supra_container(
    podman_env: dict[str, str], podman_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., SupraContainer]]:
    """Factory: ``supra_container(name="supra_cli", *, configs=None,
    move_workspace=None, image=None)`` starts a container running
    ``/supra/idle`` with host dirs bind-mounted at /supra/configs and
    /supra/move_workspace; every container started is removed afterwards.

    A container left over under the same name (from a crashed run) is
    removed first."""
    started: list[str] = []

    def start(
        name: str = "supra_cli",
        *,
        configs: Path | None = None,
        move_workspace: Path | None = None,
        image: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> SupraContainer:
        configs = configs or tmp_path_factory.mktemp("configs")
        move_workspace = move_workspace or tmp_path_factory.mktemp("move_workspace")
        image = image or podman_image
        podman(podman_env, "rm", "-f", "-t", "0", name, check=False)
        proc = podman(
            podman_env,
            "run",
            "-d",
            "--name",
            name,
            "-v",
            f"{configs}:{SUPRA_HOME}",
            "-v",
            f"{move_workspace}:{MOVE_WORKSPACE}",
            "-e",
            f"SUPRA_HOME={SUPRA_HOME}",
            *extra_args,
            image,
            "/supra/idle",
        )
        started.append(name)
        c = SupraContainer(
            name=name,
            image=image,
            configs=Path(configs),
            move_workspace=Path(move_workspace),
            env=podman_env,
            id=proc.stdout.strip(),
        )
        # a container is a node: /supra/idle makes its chain in the configs volume when it starts
        wait_for(c.state_db.exists, 30, what=f"{name} to create its chain in {configs}")
        return c

    yield start
    for name in reversed(started):
        podman(podman_env, "rm", "-f", "-t", "0", name, check=False)


# --------------------------------------------------------------------------
# Docker Engine API, served by podman


@pytest.fixture(scope="session")
def docker_api(podman_env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Run ``podman system service`` on a private socket; yields
    ``{"DOCKER_HOST": "unix://...", "base_url": ..., "client": DockerClient,
    "env": env-with-DOCKER_HOST}``."""
    try:
        import docker
    except ImportError:
        engine_unavailable("the docker SDK is not installed (`pip install docker`)")

    # A short directory of our own: unix socket paths are limited to 107 bytes.
    sockdir = Path(tempfile.mkdtemp(prefix="dw-podman-api-"))
    sock = sockdir / "podman.sock"
    base_url = f"unix://{sock}"
    log_path = sockdir / "service.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", base_url],
        env=podman_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = None
    try:
        client = _wait_for_docker_api(proc, sock, log_path, "podman system service", 30)
        env = dict(podman_env, DOCKER_HOST=base_url)
        yield {"DOCKER_HOST": base_url, "base_url": base_url, "client": client, "env": env}
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        _stop_process(proc, 15)
        log.close()
        shutil.rmtree(sockdir, ignore_errors=True)


def _wait_for_docker_api(proc: subprocess.Popen, sock: Path, log_path: Path, who: str, timeout: float) -> Any:
    """A DockerClient on *sock* once *proc* (an engine) answers a ping; skip/fail if it exits or times out."""
    import docker

    def ready() -> Any:
        if proc.poll() is not None:
            raise RuntimeError(f"{who} exited {proc.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
        if not sock.exists():
            return None
        c = docker.DockerClient(base_url=f"unix://{sock}", timeout=120)
        try:
            c.ping()
        except Exception:
            c.close()
            return None
        return c

    try:
        return wait_for(ready, timeout, what=f"the Docker API of {who} on {sock}")
    except (TimeoutError, RuntimeError) as exc:
        engine_unavailable(f"{who} did not come up: {exc}")


def unique_name(prefix: str = "dw-test") -> str:
    """A container name no other test run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------
# A real Docker Engine (dockerd), and the Docker API of both engines

DOCKERD_FLAGS = ("--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=overlay2",
                 "--exec-opt", "native.cgroupdriver=cgroupfs")


def _mounts_under(root: Path) -> list[str]:
    """Mount points below *root* (deepest first), from /proc/self/mounts."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for line in fh:
            mp = line.split()[1].replace("\\040", " ")
            if mp.startswith(prefix):
                points.append(mp)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def _stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


@pytest.fixture(scope="session")
def dockerd() -> Iterator[dict[str, Any]]:
    """A real Docker Engine for the session: ``dockerd`` on a socket in a temporary folder; yields
    ``{"DOCKER_HOST", "base_url", "client", "env", "pid", "version"}``. Stopped by its pid at the end."""
    try:
        import docker
    except ImportError:
        engine_unavailable("the docker SDK is not installed (`pip install docker`)")
    exe = shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.access("/usr/sbin/dockerd", os.X_OK) else None)
    if exe is None:
        engine_unavailable("dockerd is not installed (scripts/test.sh installs docker.io as root)")
    if os.geteuid() != 0:
        engine_unavailable("dockerd needs root here (no rootless Docker set up)")
    root = Path(tempfile.mkdtemp(prefix="dw-dockerd-"))  # short: unix socket paths are limited to 107 bytes
    sock = root / "docker.sock"
    base_url = f"unix://{sock}"
    log_path = root / "dockerd.log"
    log = open(log_path, "wb")
    # dockerd finds containerd, runc and docker-init on PATH (Debian puts them in /usr/bin and /usr/sbin)
    env = dict(os.environ, PATH=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"]))
    env.pop("DOCKER_HOST", None)
    proc = subprocess.Popen(
        [exe, *DOCKERD_FLAGS, "--host", base_url, "--data-root", str(root / "data"),
         "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid")],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = None
    try:
        client = _wait_for_docker_api(proc, sock, log_path, "dockerd", 60)
        version = client.version().get("Version", "?")
        yield {"DOCKER_HOST": base_url, "base_url": base_url, "client": client, "pid": proc.pid,
               "env": dict(os.environ, DOCKER_HOST=base_url), "version": version}
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                for c in client.containers.list(all=True):
                    c.remove(force=True)
            with contextlib.suppress(Exception):
                client.close()
        _stop_process(proc)
        log.close()
        for mp in _mounts_under(root):  # what dockerd and its containerd leave mounted
            subprocess.run(["umount", "-l", mp], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dockerd_image(dockerd: dict[str, Any]) -> str:
    """The simulator image, built in the real Docker Engine once per session (the Containerfile)."""
    from dualwrite.sim.image import ImageBuildError, build_image

    tag = test_image_tag()
    try:
        build_image("docker", tag, docker_client=dockerd["client"])
    except ImageBuildError as exc:
        pytest.fail(f"building the simulator image in dockerd failed: {exc}", pytrace=False)
    return tag


@dataclass
class DockerEngine:
    """One engine's Docker API: the real Docker Engine (``docker``) or Podman's (``podman-api``)."""

    name: str
    DOCKER_HOST: str
    client: Any
    image: str
    env: dict[str, str] = field(repr=False)

    def containers_mounting(self, path: Path) -> list[str]:
        """Names of the engine's containers (any state) that bind-mount *path*."""
        names = []
        for c in self.client.containers.list(all=True):
            if any(m.get("Source") == str(path) for m in c.attrs.get("Mounts", [])):
                names.append(c.name)
        return names


#: the engines every docker-backend test runs on
DOCKER_ENGINES = ("docker", "podman-api")


@pytest.fixture(params=DOCKER_ENGINES)
def docker_engine(request: pytest.FixtureRequest) -> DockerEngine:
    """The Docker API of a real Docker Engine, then of Podman (each test runs on both)."""
    if request.param == "docker":
        api = request.getfixturevalue("dockerd")
        image = request.getfixturevalue("dockerd_image")
    else:
        api = request.getfixturevalue("docker_api")
        image = request.getfixturevalue("podman_image")
    return DockerEngine(name=request.param, DOCKER_HOST=api["DOCKER_HOST"], client=api["client"], image=image,
                        env=api["env"])


@dataclass
class DockerContainer:
    """A long-running simulator container (``/supra/idle``) started through the Docker API."""

    name: str
    engine: DockerEngine
    configs: Path
    move_workspace: Path

    @property
    def state_db(self) -> Path:
        return self.configs / "dualwrite-sim.sqlite"

    def supra(self, *args: str) -> tuple[int, str]:
        code, out = self.engine.client.containers.get(self.name).exec_run(["/supra/supra", *args])
        return code, out.decode("utf-8", "replace")

    def stop(self) -> None:
        self.engine.client.containers.get(self.name).stop(timeout=0)


@pytest.fixture
def docker_container(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Callable[..., DockerContainer]]:
    """Factory: ``docker_container(name, *, configs=None, labels=None, binds=None, image=None, command=...,
    environment=None)`` starts a
    container of the engine's image running ``/supra/idle`` with /supra/configs and /supra/move_workspace
    bind-mounted; every container started is removed afterwards."""
    from docker.errors import NotFound

    client = docker_engine.client
    started: list[str] = []

    def start(name: str | None = None, *, configs: Path | None = None, labels: dict[str, str] | None = None,
              binds: dict[str, str] | None = None, image: str | None = None,
              command: Sequence[str] = ("/supra/idle",), environment: dict[str, str] | None = None
              ) -> DockerContainer:
        name = name or unique_name("dw-docker")
        configs = configs or tmp_path_factory.mktemp("configs")
        ws = tmp_path_factory.mktemp("move_workspace")
        with contextlib.suppress(NotFound):
            client.containers.get(name).remove(force=True)
        volumes = {str(configs): {"bind": SUPRA_HOME, "mode": "rw"}, str(ws): {"bind": MOVE_WORKSPACE, "mode": "rw"}}
        for host, inside in (binds or {}).items():
            volumes[host] = {"bind": inside, "mode": "ro"}
        client.containers.run(image or docker_engine.image, list(command), name=name, detach=True,
                              environment={"SUPRA_HOME": SUPRA_HOME, **(environment or {})}, volumes=volumes,
                              labels=labels or {}, network_mode="none")
        started.append(name)
        wait_for(lambda: client.containers.get(name).status == "running", 30, what=f"{name} to run")
        c = DockerContainer(name=name, engine=docker_engine, configs=Path(configs), move_workspace=ws)
        if tuple(command) == ("/supra/idle",):  # a node: its chain is made when it starts
            wait_for(c.state_db.exists, 30, what=f"{name} to create its chain in {configs}")
        return c

    yield start
    for name in reversed(started):
        with contextlib.suppress(Exception):
            client.containers.get(name).remove(force=True)
