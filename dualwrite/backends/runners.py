"""Where a ``supra ...`` argv runs: a local subprocess, a Docker container (SDK), a Podman container.

Each runner takes an argv list (never a shell string) and returns exit code, stdout,
stderr; it raises ``BackendUnavailable`` when the thing to run on is not there and
``BackendTimeout`` when it does not answer in time.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dualwrite.errors import BackendError, BackendTimeout, BackendUnavailable, TransientBackendError

CONTAINER_SUPRA = "/supra/supra"
CONTAINER_CONFIGS = "/supra/configs"
CONTAINER_WORKSPACE = "/supra/move_workspace"
COMPOSE_SERVICE = "supra_cli"


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def execute(self, argv: list[str], timeout: float) -> Completed: ...

    def describe(self) -> str: ...

    def close(self) -> None: ...


@contextmanager
def _mount_dirs(*dirs: Path):
    """The one-shot mounts must exist for the engine to bind them; those made here are removed again
    (when still empty) if the call fails, so a failed call leaves no ./configs or ./move_workspace."""
    made = []
    for d in dirs:
        missing = [p for p in (d, *d.parents) if not p.exists()]
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BackendError(f"one-shot mount {d}: cannot create it ({e.strerror})") from None
        made += missing
    try:
        yield
    except BaseException:
        for p in sorted(made, key=lambda p: len(p.parts), reverse=True):  # deepest first: each made by this call
            try:
                p.rmdir()
            except OSError:
                pass  # not empty any more: something wrote there, keep it
        raise


#: what a child process (the Supra CLI, podman) never inherits: where the RPC writes' key is, the provider keys
CHILD_ENV_WITHHELD = ("DUALWRITE_PRIVATE_KEY_FILE", "DUALWRITE_RPC_HEADERS")


def child_env() -> dict[str, str]:
    """This process's environment without ``CHILD_ENV_WITHHELD``."""
    return {k: v for k, v in os.environ.items() if k not in CHILD_ENV_WITHHELD}


def _subprocess(argv: list[str], timeout: float, what: str) -> Completed:
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, env=child_env())
    except FileNotFoundError:
        raise BackendUnavailable(f"{what}: {argv[0]} not found") from None
    except PermissionError:
        raise BackendUnavailable(f"{what}: {argv[0]} is not executable") from None
    except subprocess.TimeoutExpired:
        raise BackendTimeout(f"{what}: no answer within {timeout:g}s") from None
    try:
        out = p.stdout.decode("utf-8")
    except UnicodeDecodeError as e:
        # what the CLI printed cannot be trusted as its answer: this call failed, the run goes on
        raise BackendError(f"{what}: the CLI printed bytes that are not UTF-8 on stdout (byte {p.stdout[e.start]:#04x} "
                           f"at offset {e.start}); its answer cannot be read") from None
    return Completed(p.returncode, out, p.stderr.decode("utf-8", "replace"))


class LocalRunner:
    """A ``supra`` binary on this machine."""

    def __init__(self, supra_bin: str | None = None) -> None:
        name = supra_bin or "supra"
        found = shutil.which(name)
        if found is None:
            raise BackendUnavailable(
                f"local backend: {name!r} not found on PATH (install the Supra CLI, or pass --supra-bin)")
        self.supra = found

    def execute(self, argv: list[str], timeout: float) -> Completed:
        return _subprocess([self.supra, *argv], timeout, "local backend")

    def describe(self) -> str:
        return f"local {self.supra}"

    def identity(self) -> dict[str, str]:
        # the CLI finds its profiles (so its RPC URL and chain) under SUPRA_HOME; the dualwrite-supra
        # stand-in finds its chain through DUALWRITE_STATE: both are inherited by every call
        env = os.environ
        return {"supra": os.path.realpath(self.supra),
                "SUPRA_HOME": os.path.abspath(env["SUPRA_HOME"]) if env.get("SUPRA_HOME") else "",
                "DUALWRITE_STATE": os.path.abspath(env["DUALWRITE_STATE"]) if env.get("DUALWRITE_STATE") else ""}

    def close(self) -> None:
        pass


# -- Podman (the podman command) ---------------------------------------------------------------


def _podman_bin(podman_bin: str | None) -> str:
    found = shutil.which(podman_bin or "podman")
    if found is None:
        raise BackendUnavailable(f"podman backend: {podman_bin or 'podman'!r} not found on PATH")
    return found


_PULL_FAILED = ("initializing source", "pinging container registry", "manifest unknown", "name unknown",
                "requested access to the resource is denied", "repository not found", "error pulling image",
                "unable to pull", "short-name resolution")
_EXEC_STATE = ("can only create exec sessions on running containers", "container state improper",
               "is not running", "no container with name or id", "no such container")


def _podman_error(c: Completed, what: str, image: str | None = None) -> Exception:
    text = (c.stderr or c.stdout).strip().splitlines()
    line = text[-1] if text else f"exit {c.returncode}"
    low = line.lower()
    if "no such container" in low or "no container with name or id" in low:
        return BackendUnavailable(f"{what}: {line}")
    if "image not known" in low or "unable to find image" in low or "image not found" in low:
        return BackendUnavailable(f"{what}: {line}")
    if image and any(s in low for s in _PULL_FAILED):
        # not in local storage, and podman's attempt to pull it failed (no registry, no such repository)
        return BackendUnavailable(f"{what}: image {image!r} is not in local storage and could not be pulled ({line})")
    if "is not running" in low or "container state improper" in low:
        return TransientBackendError(f"{what}: {line}")
    return BackendError(f"{what}: {line}")


class PodmanExecRunner:
    """``podman exec`` into a running Supra CLI container: the fast path."""

    def __init__(self, container: str, podman_bin: str | None = None) -> None:
        self.podman = _podman_bin(podman_bin)
        self.container = container

    def execute(self, argv: list[str], timeout: float) -> Completed:
        c = _subprocess([self.podman, "exec", self.container, CONTAINER_SUPRA, *argv], timeout, "podman backend")
        # podman exec's own failures exit 125 (engine), 126/127 (command); exec into a stopped container
        # exits 255 (podman 4). The CLI's exit 1 passes through.
        if c.returncode in (125, 126, 127) or (
                c.returncode == 255 and any(s in c.stderr.lower() for s in _EXEC_STATE)):
            raise _podman_error(c, f"podman backend (exec {self.container})")
        return c

    def describe(self) -> str:
        return f"podman exec {self.container}"

    def identity(self) -> dict[str, str]:
        return {"engine": "podman", "container": self.container}

    def close(self) -> None:
        pass


class PodmanRunRunner:
    """A one-shot ``podman run --rm`` per call, with the operators' mounts (what the old script did)."""

    def __init__(self, image: str, *, configs: Path, workspace: Path, podman_bin: str | None = None,
                 extra_args: list[str] = (), volume_suffix: str = "", env: dict[str, str] | None = None) -> None:
        self.podman = _podman_bin(podman_bin)
        self.image = image
        self.configs = Path(configs).resolve()
        self.workspace = Path(workspace).resolve()
        self.extra_args = list(extra_args)
        self.volume_suffix = volume_suffix
        self.env = dict(env or {})

    def argv(self, argv: list[str]) -> list[str]:
        env_args = []
        for k, v in {"SUPRA_HOME": CONTAINER_CONFIGS, **self.env}.items():
            env_args += ["-e", f"{k}={v}"]
        return [
            self.podman, "run", "--rm", *env_args,
            "-v", f"{self.workspace}:{CONTAINER_WORKSPACE}{self.volume_suffix}",
            "-v", f"{self.configs}:{CONTAINER_CONFIGS}{self.volume_suffix}",
            *self.extra_args, self.image, CONTAINER_SUPRA, *argv,
        ]

    def execute(self, argv: list[str], timeout: float) -> Completed:
        with _mount_dirs(self.configs, self.workspace):
            c = _subprocess(self.argv(argv), timeout, "podman backend")
            if c.returncode in (125, 126, 127):
                raise _podman_error(c, f"podman backend (run {self.image})", self.image)
        return c

    def describe(self) -> str:
        return f"podman run --rm {self.image} (configs {self.configs})"

    def identity(self) -> dict[str, str]:
        return {"engine": "podman", "image": self.image, "configs": str(self.configs)}

    def close(self) -> None:
        pass


# -- Docker (the docker SDK) ---------------------------------------------------------------------


#: the API version the probe client is made with; it sends nothing versioned
_PROBE_API = "1.24"


def docker_client(docker_host: str | None = None, timeout: float = 60):
    """A docker SDK client for DOCKER_HOST (or the given host), checked with a ping.

    The API version comes from the ``Api-Version`` header of ``/_ping`` (as the docker CLI
    negotiates it), not from ``/version``, which podman's service takes 0.3-0.5 s to answer.
    The client's HTTP timeout is longer than the call deadline (whole seconds, at least 10):
    our own deadlines (exec thread, ``wait``) fire first, and a ``--timeout`` under one second
    does not become an HTTP timeout of 0.
    """
    try:
        import docker
        import requests
        from docker.errors import DockerException
    except ImportError:  # pragma: no cover - docker is a dependency
        raise BackendUnavailable("docker backend: the docker Python SDK is not installed") from None
    http_timeout = max(10, math.ceil(timeout) + 10)

    def make(version: str):
        if docker_host:
            return docker.DockerClient(base_url=docker_host, version=version, timeout=http_timeout)
        return docker.from_env(version=version, timeout=http_timeout)

    try:
        probe = make(_PROBE_API)
        try:
            r = probe.api.get(probe.api.base_url + "/_ping", timeout=http_timeout)
            r.raise_for_status()
            api = r.headers.get("Api-Version")
        finally:
            probe.close()
        client = make(api or "auto")
        if not api:
            client.ping()
        # the SDK's base_url of a unix socket is http+docker://localhost: keep the address for messages
        client.dualwrite_host = docker_host or os.environ.get("DOCKER_HOST") or "the default socket"
        return client
    except (DockerException, requests.RequestException) as e:
        host = docker_host or os.environ.get("DOCKER_HOST") or "the default socket"
        raise BackendUnavailable(f"docker backend: no Docker engine at {host} ({_short(e)})") from None


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else "no message"


def _engine_label(client) -> str:
    return f"Docker engine at {getattr(client, 'dualwrite_host', None) or client.api.base_url}"


def _engine_refused(client, step: str, what: str, e: Exception) -> BackendError:
    """An engine that refused a request (create, start, exec, ...): one line naming the engine, the step
    and the engine's own message (a backend failure, exit 3)."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    msg = _first_line(str(getattr(e, "explanation", None) or e))
    return BackendError(f"{what}: the {_engine_label(client)} refused {step}: {f'{status} ' if status else ''}{msg}")


def _in_thread(fn, timeout: float, what: str):
    """Run an SDK call with a deadline (the SDK's exec has none of its own)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller below
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise BackendTimeout(f"{what}: no answer within {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


#: what the engine (runc through Docker or Podman) prints when it cannot start the command at all
_EXEC_REFUSED = ("OCI runtime exec failed", "runc: exec failed", "executable file not found",
                 "unable to start container process")


class DockerExecRunner:
    """``exec`` into a running Supra CLI container through the docker SDK: the fast path."""

    def __init__(self, client, container: str | None = None) -> None:
        from docker.errors import NotFound

        self.client = client
        found = None
        try:
            found = client.containers.get(container or COMPOSE_SERVICE)
        except NotFound:
            found = None
        if found is None and container not in (None, COMPOSE_SERVICE):
            # a container named explicitly is that one or none: never another chain's CLI
            raise BackendUnavailable(
                f"docker backend: no container {container!r}; start it, or pass --image for one-shot containers")
        if found is None:  # the operators' compose file names the service supra_cli
            matches = client.containers.list(filters={"label": f"com.docker.compose.service={COMPOSE_SERVICE}"})
            found = matches[0] if matches else None
        if found is None:
            raise BackendUnavailable(
                f"docker backend: no container {COMPOSE_SERVICE!r} (nor one of compose service "
                f"{COMPOSE_SERVICE!r}); start it, or pass --image for one-shot containers")
        self.container = found

    def execute(self, argv: list[str], timeout: float) -> Completed:
        import requests
        from docker.errors import APIError, NotFound

        what = f"docker backend (exec {self.container.name})"
        try:
            self.container.reload()
        except NotFound:
            raise BackendUnavailable(f"{what}: no such container (it was removed)") from None
        except APIError as e:
            raise _engine_refused(self.client, "inspect", what, e) from None
        except requests.RequestException as e:  # the engine went away
            raise BackendError(f"{what}: {_short(e)}") from None
        if self.container.status != "running":
            raise TransientBackendError(f"{what}: container {self.container.name} is {self.container.status}")
        try:
            res = _in_thread(lambda: self.container.exec_run([CONTAINER_SUPRA, *argv], demux=True), timeout, what)
        except APIError as e:
            raise _engine_refused(self.client, "exec", what, e) from None
        except requests.Timeout:
            raise BackendTimeout(f"{what}: no answer within {timeout:g}s") from None
        except requests.RequestException as e:  # the engine went away mid-call
            raise BackendError(f"{what}: {_short(e)}") from None
        out, err = res.output if res.output else (None, None)
        out_s, err_s = (out or b"").decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace")
        if res.exit_code in (126, 127) and any(m in (out_s + err_s) for m in _EXEC_REFUSED):
            # the engine could not start /supra/supra in the container (not the image's CLI failing)
            raise BackendError(f"{what}: the {_engine_label(self.client)} refused exec: "
                               f"{_first_line(out_s + err_s)}")
        return Completed(res.exit_code if res.exit_code is not None else 0, out_s, err_s)

    def describe(self) -> str:
        return f"docker exec {self.container.name}"

    def identity(self) -> dict[str, str]:
        return {"engine": "docker", "host": str(self.client.api.base_url), "container": self.container.name}

    def close(self) -> None:
        self.client.close()


class DockerRunRunner:
    """A one-shot container per call from ``image``, with the operators' mounts, removed afterwards."""

    def __init__(self, client, image: str, *, configs: Path, workspace: Path, env: dict[str, str] | None = None) -> None:
        from docker.errors import ImageNotFound

        self.client = client
        self.image = image
        try:
            client.images.get(image)
        except ImageNotFound:
            raise BackendUnavailable(f"docker backend: image {image!r} not found (build it: dualwrite sim image build --engine docker)") from None
        self.configs = Path(configs).resolve()
        self.workspace = Path(workspace).resolve()
        self.env = {"SUPRA_HOME": CONTAINER_CONFIGS, **(env or {})}

    def execute(self, argv: list[str], timeout: float) -> Completed:
        with _mount_dirs(self.configs, self.workspace):
            return self._execute(argv, timeout)

    def _execute(self, argv: list[str], timeout: float) -> Completed:
        import requests
        from docker.errors import APIError

        what = f"docker backend (run {self.image})"
        step = "create"
        try:
            container = self.client.containers.create(
                self.image, [CONTAINER_SUPRA, *argv], environment=self.env,
                volumes={str(self.configs): {"bind": CONTAINER_CONFIGS, "mode": "rw"},
                         str(self.workspace): {"bind": CONTAINER_WORKSPACE, "mode": "rw"}},
                network_disabled=True)
        except APIError as e:
            raise _engine_refused(self.client, step, what, e) from None
        except requests.RequestException as e:
            raise BackendError(f"{what}: {_short(e)}") from None
        try:
            step = "start"
            container.start()
            step = "wait"
            try:
                status = container.wait(timeout=timeout)
            except requests.RequestException as e:  # requests' ReadTimeout and friends
                if "timed out" in str(e).lower() or "timeout" in type(e).__name__.lower():
                    raise BackendTimeout(f"{what}: no answer within {timeout:g}s") from None
                raise BackendError(f"{what}: {_short(e)}") from None
            step = "logs"
            out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
            err = container.logs(stdout=False, stderr=True).decode("utf-8", "replace")
            return Completed(int(status.get("StatusCode", 1)), out, err)
        except APIError as e:
            raise _engine_refused(self.client, step, what, e) from None
        except requests.RequestException as e:
            raise BackendError(f"{what}: {_short(e)}") from None
        finally:
            try:
                container.remove(force=True)
            except (APIError, requests.RequestException):
                pass  # already gone: nothing left to clean

    def describe(self) -> str:
        return f"docker run --rm {self.image} (configs {self.configs})"

    def identity(self) -> dict[str, str]:
        return {"engine": "docker", "host": str(self.client.api.base_url), "image": self.image,
                "configs": str(self.configs)}

    def close(self) -> None:
        self.client.close()
