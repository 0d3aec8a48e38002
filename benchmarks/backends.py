"""Per-call latency of every backend, side by side, in one run.

Run: ``python benchmarks/backends.py [--n 20] [--runs 5] [--image TAG] [--json]``.

It builds and starts what it needs itself and removes it afterwards:

- ``sim``                in-process simulator (no subprocess),
- ``local``              dualwrite-supra installed as ``supra`` in a temporary dir (a subprocess per call),
- ``podman exec``        ``podman exec`` into a warm container (``/supra/idle``),
- ``podman one-shot``    ``podman run --rm`` per call (what the operators' old script did),
- ``docker exec``        docker SDK exec into the same warm container, through the Docker API that
                         ``podman system service`` serves on a private socket,
- ``docker one-shot``    docker SDK create/start/wait/logs/remove per call, same API.

Every backend works on the same chain (one SQLite file, bind-mounted at /supra/configs), so
they do the same work. Per backend: N ``status`` views (``legacy_bridge::dual_write_status``)
and R ``set`` runs (``legacy_bridge::set_expected_hash``) through ``Backend.view/run``, after
two untimed warm-up calls; median and p90 in ms; the ``open`` column is the median cost of
``open_backend`` + ``close`` (paid once per ``dualwrite`` command). Then the ratios
one-shot/exec per engine. An engine that is not there is reported as such and skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dualwrite import bridge
from dualwrite.backends import BackendConfig, open_backend
from dualwrite.errors import DualwriteError

REPO = Path(__file__).resolve().parent.parent
CONTAINERS_CONF = REPO / ".ci" / "containers.conf"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def ms(v: float) -> str:
    return f"{v:.3f}" if v < 1 else f"{v:.1f}"


def timed(fn: Callable[[], Any], n: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class Engines:
    """Podman (image, warm container) and the Docker API served by podman; all removed on exit."""

    def __init__(self, configs: Path, workspace: Path, image: str, build: bool) -> None:
        self.configs, self.workspace, self.image, self.build = configs, workspace, image, build
        self.container: str | None = None
        self.podman_reason: str | None = None
        self.docker_reason: str | None = None
        self.docker_host: str | None = None
        self._service: subprocess.Popen | None = None
        self._sockdir: Path | None = None

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args[:2])}: {p.stderr.strip().splitlines()[-1:]}")
        return p

    def start(self) -> None:
        if shutil.which("podman") is None:
            self.podman_reason = "podman is not on PATH (bash .ci/setup-podman.sh)"
            self.docker_reason = "no Docker API: here it is served by `podman system service`, and podman is not on PATH"
            return
        if "CONTAINERS_CONF" not in os.environ and CONTAINERS_CONF.is_file():
            os.environ["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
        try:
            if self.podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60).returncode:
                raise RuntimeError("`podman info` failed")
            if self.build:
                from dualwrite.sim.image import build_image

                say(f"building {self.image} with podman ...")
                build_image("podman", self.image)
            elif self.podman("image", "exists", self.image, check=False).returncode:
                raise RuntimeError(f"image {self.image} not found (drop --no-build)")
            self.container = f"dw-bench-{uuid.uuid4().hex[:8]}"
            self.podman("run", "-d", "--name", self.container, "-e", "SUPRA_HOME=/supra/configs",
                        "-v", f"{self.configs}:/supra/configs", "-v", f"{self.workspace}:/supra/move_workspace",
                        self.image, "/supra/idle")
        except Exception as e:  # noqa: BLE001 - reported, then the engine rows are skipped
            self.podman_reason = f"podman unusable: {e}"
            self.docker_reason = f"no Docker API: here it is served by `podman system service` ({self.podman_reason})"
            return
        self._start_docker_api()

    def _start_docker_api(self) -> None:
        try:
            import docker
        except ImportError:
            self.docker_reason = "the docker SDK is not installed"
            return
        self._sockdir = Path(tempfile.mkdtemp(prefix="dw-bench-api-"))
        sock = self._sockdir / "podman.sock"
        self._service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)

        def up() -> bool:
            if self._service.poll() is not None:
                raise RuntimeError(f"podman system service exited {self._service.returncode}")
            if not sock.exists():
                return False
            try:
                c = docker.DockerClient(base_url=f"unix://{sock}", version="1.41")
                c.ping()
                c.close()
                return True
            except Exception:  # noqa: BLE001 - not up yet
                return False

        try:
            wait_until(up, 30, "podman system service")
            self.docker_host = f"unix://{sock}"
        except (TimeoutError, RuntimeError) as e:
            self.docker_reason = f"Docker API not available: {e}"

    def stop(self) -> None:
        if self.container:
            self.podman("rm", "-f", "-t", "0", self.container, check=False)
        if self._service is not None and self._service.poll() is None:
            self._service.terminate()
            try:
                self._service.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._service.kill()
                self._service.wait(timeout=15)
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="dw-bench-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def bench_backend(cfg: BackendConfig, n: int, runs: int, first_id: int) -> dict[str, Any]:
    opens = timed(lambda: open_backend(cfg).close(), 5, warmup=1)
    b = open_backend(cfg)
    try:
        views = timed(lambda: bridge.status(b, 1), n)
        ids = iter(range(first_id, first_id + runs + 2))
        sets = timed(lambda: bridge.set_expected(b, next(ids), bytes([first_id % 256]) * 32), runs)
        return {"describe": b.describe(), "open": opens, "view": views, "run": sets}
    finally:
        b.close()


def main() -> int:
    from dualwrite.sim.image import DEFAULT_TAG

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20, help="timed status views per backend [20]")
    ap.add_argument("--runs", type=int, default=5, help="timed set transactions per backend [5]")
    ap.add_argument("--image", default=DEFAULT_TAG, help=f"simulator image tag [{DEFAULT_TAG}]")
    ap.add_argument("--no-build", action="store_true", help="use the image as it is (default: build it first)")
    ap.add_argument("--json", action="store_true", help="also print the raw figures as JSON")
    a = ap.parse_args()

    with scratch() as tmp:
        configs, ws, bindir = tmp / "configs", tmp / "move_workspace", tmp / "bin"
        configs.mkdir()
        ws.mkdir()
        state = configs / "dualwrite-sim.sqlite"
        subprocess.run([sys.executable, "-m", "dualwrite", "sim", "install-supra", str(bindir)], check=True,
                       capture_output=True)
        subprocess.run([sys.executable, "-m", "dualwrite", "sim", "init", "--dual-write", "--state", str(state)],
                       check=True, capture_output=True)
        os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ['PATH']}"
        os.environ["DUALWRITE_STATE"] = str(state)  # the local supra's chain: the same file
        first = BackendConfig(backend="sim", state=state)
        with contextlib.closing(open_backend(first)) as b:
            bridge.set_expected(b, 1, b"\x11" * 32)

        engines = Engines(configs, ws, a.image, build=not a.no_build)
        rows: list[tuple[str, BackendConfig | None, str | None]] = []
        try:
            engines.start()
            rows = [
                ("sim", BackendConfig(backend="sim", state=state), None),
                ("local", BackendConfig(backend="local"), None),
                ("podman exec", BackendConfig(backend="podman", container=engines.container), engines.podman_reason),
                ("podman one-shot", BackendConfig(backend="podman", image=a.image, configs_dir=configs,
                                                  workspace_dir=ws), engines.podman_reason),
                ("docker exec", BackendConfig(backend="docker", container=engines.container,
                                              docker_host=engines.docker_host), engines.docker_reason),
                ("docker one-shot", BackendConfig(backend="docker", image=a.image, configs_dir=configs,
                                                  workspace_dir=ws, docker_host=engines.docker_host),
                 engines.docker_reason),
            ]
            results: dict[str, dict[str, Any]] = {}
            for i, (label, cfg, reason) in enumerate(rows):
                if reason:
                    say(f"{label}: skipped — {reason}")
                    results[label] = {"skipped": reason}
                    continue
                say(f"{label}: {a.n} views, {a.runs} runs ...")
                try:
                    results[label] = bench_backend(cfg, a.n, a.runs, 1000 * (i + 1))
                except DualwriteError as e:
                    say(f"{label}: failed — {e}")
                    results[label] = {"skipped": f"failed: {e}"}
        finally:
            engines.stop()

    print(f"dualwrite backends, per call (ms) — {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; N={a.n} views, {a.runs} runs each")
    print(f"{'backend':<17}{'view p50':>9}{'view p90':>9}{'run p50':>9}{'run p90':>9}{'open p50':>10}")
    for label, r in results.items():
        if "skipped" in r:
            print(f"{label:<17}  not available: {r['skipped']}")
            continue
        print(f"{label:<17}{ms(statistics.median(r['view'])):>9}{ms(pct(r['view'], 90)):>9}"
              f"{ms(statistics.median(r['run'])):>9}{ms(pct(r['run'], 90)):>9}{ms(statistics.median(r['open'])):>10}")
    for engine in ("podman", "docker"):
        one, ex = results.get(f"{engine} one-shot", {}), results.get(f"{engine} exec", {})
        if "view" in one and "view" in ex:
            rv = statistics.median(one["view"]) / statistics.median(ex["view"])
            rr = statistics.median(one["run"]) / statistics.median(ex["run"])
            print(f"{engine}: one-shot / exec = {rv:.1f}x (view), {rr:.1f}x (run)")
    if "view" in results.get("local", {}) and "view" in results.get("sim", {}):
        print(f"local / sim = {statistics.median(results['local']['view']) / statistics.median(results['sim']['view']):.0f}x (view)")
    if a.json:
        print(json.dumps({k: v for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
