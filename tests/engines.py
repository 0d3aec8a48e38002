"""Pytest fixtures for tests that need a real container engine.

Podman is driven with the project's own ``.ci/containers.conf`` (runc, no
default ulimits, cgroupfs, file events logger), and the Docker Engine API is
served by ``podman system service`` on a private unix socket, so the docker
SDK talks to a real engine that shares podman's image storage.

Fixtures skip when podman is missing, unless ``DUALWRITE_REQUIRE_ENGINES=1``
(set by CI), where a missing engine fails the test instead.

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
    "REPO_ROOT",
    "SupraContainer",
    "docker_api",
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


@pytest.fixture(scope="session")
def podman_image(podman_env: dict[str, str]) -> str:
    """Build the simulator image once per session; returns its tag."""
    from dualwrite.sim.image import DEFAULT_TAG, ImageBuildError, build_image

    try:
        build_image("podman", DEFAULT_TAG)
    except ImageBuildError as exc:
        pytest.fail(f"building the simulator image failed: {exc}", pytrace=False)
    return DEFAULT_TAG


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
        return SupraContainer(
            name=name,
            image=image,
            configs=Path(configs),
            move_workspace=Path(move_workspace),
            env=podman_env,
            id=proc.stdout.strip(),
        )

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

    def ready() -> Any:
        if proc.poll() is not None:
            raise RuntimeError(
                f"podman system service exited {proc.returncode}: {log_path.read_text(errors='replace')}"
            )
        if not sock.exists():
            return None
        c = docker.DockerClient(base_url=base_url, timeout=120)
        try:
            c.ping()
        except Exception:
            c.close()
            return None
        return c

    try:
        try:
            client = wait_for(ready, 30, what=f"the Docker API on {sock}")
        except (TimeoutError, RuntimeError) as exc:
            engine_unavailable(f"podman system service did not come up: {exc}")
        env = dict(podman_env, DOCKER_HOST=base_url)
        yield {"DOCKER_HOST": base_url, "base_url": base_url, "client": client, "env": env}
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        log.close()
        shutil.rmtree(sockdir, ignore_errors=True)


def unique_name(prefix: str = "dw-test") -> str:
    """A container name no other test run uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
