"""Build the simulator's container image from the top-level ``Containerfile``, with or without a registry.

With a registry, ``podman build .`` (or ``docker build -f Containerfile .``) builds it on a Python
base image, pip installing dualwrite from its source. Without one (this project's machines),
:func:`build_image` builds the *same* Containerfile:

1. the base: a Debian root file system with ``python3`` made by ``mmdebstrap`` (from Debian's
   packages, cached as a tarball), imported into the engine as ``localhost/dualwrite-base:…``;
2. a wheelhouse: dualwrite's dependencies at the versions installed here, plus pip, setuptools and
   wheel (``pip download``, offline from the cache once it has them);
3. the build context: the package's source, the Containerfile and the wheelhouse, built with
   ``BASE=<that base>`` and ``WHEELHOUSE=wheelhouse``: pip installs with ``--no-index``, so the
   build needs no network (it runs with ``--network none``).

``engine="podman"`` runs ``podman build``/``podman import`` (argv lists, honouring
``CONTAINERS_CONF``); ``engine="docker"`` goes through the Docker Engine API (docker SDK, imported
lazily), which a Docker Engine and ``podman system service`` both serve. A refusal by the engine is
an :class:`ImageBuildError` (a backend error: exit 3) naming the engine, the step and its message.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dualwrite.errors import BackendError

__all__ = [
    "BASE_PACKAGES",
    "DEFAULT_TAG",
    "IMAGE_PYTHON",
    "ImageBuildError",
    "build_image",
    "containerfile",
    "debian_base_tar",
    "prepare_context",
    "wheelhouse",
]


class ImageBuildError(BackendError):
    """The simulator image could not be built: an engine refused a step, a tool is missing (exit 3)."""


DEFAULT_TAG = "localhost/dualwrite-supra:latest"
#: The image's interpreter, whatever the base (``/supra/python`` links to it).
IMAGE_PYTHON = "/supra/python"
#: The base made from Debian's packages: its suite, packages, and the Python version wheels are for.
DEBIAN_SUITE = "bookworm"
DEBIAN_PYTHON = "3.11"
BASE_PACKAGES: tuple[str, ...] = ("python3",)
#: Debian's essential set plus python3, without recommends, docs, man pages, translations or glibc's
#: iconv modules; perl (pulled in only by usrmerge, which the merged-/usr base does not need) is purged.
_PURGE = ("usrmerge", "libfile-find-rule-perl", "libnumber-compare-perl", "libtext-glob-perl", "perl",
          "perl-modules-5.36", "libperl5.36")
_MMDEBSTRAP_OPTS = ("--variant=essential", "--aptopt=APT::Install-Recommends \"false\"",
                    *(f"--dpkgopt=path-exclude={p}/*" for p in ("/usr/share/doc", "/usr/share/man", "/usr/share/info",
                                                                "/usr/share/locale", "/usr/lib/x86_64-linux-gnu/gconv")),
                    # a fixed hook (mmdebstrap runs it with sh; nothing in it comes from outside)
                    "--customize-hook=chroot \"$1\" dpkg --purge --force-depends --force-remove-essential "
                    + " ".join(_PURGE))
#: What pip needs in the wheelhouse besides dualwrite's dependencies (it builds dualwrite from source).
_BUILD_TOOLS = ("pip", "setuptools>=68", "wheel")


def _cache_dir() -> Path:
    base = os.environ.get("DUALWRITE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "dualwrite")
    return Path(base)


def containerfile() -> Path:
    """The Containerfile (the repository's top-level one; ``dualwrite/sim/Containerfile`` links to it)."""
    path = Path(__file__).resolve().with_name("Containerfile")
    if not path.is_file():
        raise ImageBuildError(f"the Containerfile is missing ({path})")
    return path


def _source_root() -> Path:
    import dualwrite

    root = Path(dualwrite.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise ImageBuildError(
            f"dualwrite's source tree is not here ({root} has no pyproject.toml): the image installs "
            "dualwrite from its source; run this from a checkout (`pip install -e .`)")
    return root


def _run(argv: list[str], what: str, timeout: float = 900, **kw: Any) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"{what}: no answer within {timeout:.0f}s") from None
    except OSError as exc:
        raise ImageBuildError(f"{what}: cannot run {argv[0]} ({exc.strerror or exc})") from None


_ERROR_LINE = re.compile(r"(?i)^(error|e:|fatal)")


def _last_line(text: str, fallback: str) -> str:
    """The line that says what went wrong: the last error line, preferring the failing command's own
    (pip's ``ERROR: No matching distribution …``) to the engine's ``Error: building at STEP …``."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if _ERROR_LINE.match(ln)]
    causes = [ln for ln in errors if "building at STEP" not in ln]
    return (causes or errors or lines or [fallback])[-1][:400]


# --------------------------------------------------------------------------
# The inputs: base tarball, wheelhouse, build context


def _closure(roots: Iterable[str]) -> dict[str, str]:
    """name -> installed version for *roots* and everything they require (no extras)."""
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - pip's own copy
        from pip._vendor.packaging.markers import Marker

    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ImageBuildError(f"{name} is needed in the image but not installed in this Python "
                                  f"({sys.executable}); run `pip install -e .`") from None
        seen[key] = dist.version
        for req in dist.requires or []:
            spec, _, marker = req.partition(";")
            if marker.strip() and not Marker(marker).evaluate({"extra": "", "python_version": DEBIAN_PYTHON}):
                continue
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if m:
                todo.append(m.group(1))
    seen.pop("dualwrite", None)
    return seen


def wheelhouse(dest: Path) -> list[Path]:
    """Wheels of dualwrite's dependencies (the versions installed here) and of pip, setuptools and wheel,
    for CPython ``DEBIAN_PYTHON``, copied into *dest*. Cached: once the cache holds them no index is asked."""
    reqs = [f"{name}=={version}" for name, version in sorted(_closure(["dualwrite"]).items())]
    reqs += [f"pip=={metadata.version('pip')}" if _installed("pip") else "pip", *_BUILD_TOOLS[1:]]
    cache = _cache_dir() / f"wheels-cp{DEBIAN_PYTHON.replace('.', '')}"
    cache.mkdir(parents=True, exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
            "--only-binary=:all:", "--python-version", DEBIAN_PYTHON]
    offline = [*base, "--no-index", "--find-links", str(cache), "--dest", str(dest), *reqs]
    if _run(offline, "pip download (from the cache)").returncode != 0:
        online = _run([*base, "--dest", str(cache), *reqs], "pip download")
        if online.returncode != 0:
            raise ImageBuildError(f"pip download of the image's wheels failed (exit {online.returncode}): "
                                  f"{_last_line(online.stderr or online.stdout, 'no output')}")
        again = _run(offline, "pip download (from the cache)")
        if again.returncode != 0:
            raise ImageBuildError(f"pip download from {cache} failed (exit {again.returncode}): "
                                  f"{_last_line(again.stderr or again.stdout, 'no output')}")
    wheels = sorted(dest.glob("*.whl"))
    if not any(p.name.startswith("pip-") for p in wheels):
        raise ImageBuildError(f"no pip wheel in {dest} after pip download")
    return wheels


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def prepare_context(ctx: Path) -> Path:
    """The build context for :func:`build_image`: the source, the Containerfile, the wheelhouse."""
    root = _source_root()
    ctx.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        if (root / name).is_file():
            shutil.copy2(root / name, ctx / name)
    shutil.copy2(containerfile(), ctx / "Containerfile")
    shutil.copytree(root / "dualwrite", ctx / "dualwrite", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "Containerfile"))
    wheelhouse(ctx / "wheelhouse")
    return ctx


def _base_key() -> str:
    recipe = json.dumps([DEBIAN_SUITE, BASE_PACKAGES, _MMDEBSTRAP_OPTS])
    return f"{DEBIAN_SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def base_tag() -> str:
    return f"localhost/dualwrite-base:{_base_key()}"


def debian_base_tar() -> Path:
    """The Debian root file system (``mmdebstrap``), cached as a tarball between builds and engines."""
    tar = _cache_dir() / f"base-{_base_key()}.tar"
    if tar.is_file():
        return tar
    exe = shutil.which("mmdebstrap")
    if exe is None:
        raise ImageBuildError("mmdebstrap is not installed (apt-get install mmdebstrap): it makes the image's "
                              "base from Debian's packages where no registry is reachable")
    tar.parent.mkdir(parents=True, exist_ok=True)
    part = tar.with_name(f".{os.getpid()}.part.{tar.name}")
    mirror = os.environ.get("DUALWRITE_DEBIAN_MIRROR") or "http://deb.debian.org/debian"
    argv = [exe, "--quiet", "--format=tar", *_MMDEBSTRAP_OPTS, f"--include={','.join(BASE_PACKAGES)}", DEBIAN_SUITE, str(part), mirror]
    try:
        proc = _run(argv, "mmdebstrap")
        if proc.returncode != 0:
            raise ImageBuildError(f"mmdebstrap (the image's Debian base) failed (exit {proc.returncode}): "
                                  f"{_last_line(proc.stderr or proc.stdout, 'no output')}")
        os.replace(part, tar)
    finally:
        part.unlink(missing_ok=True)
    return tar


# --------------------------------------------------------------------------
# Podman (the podman command)


def _podman_exe(podman_bin: str) -> str:
    exe = shutil.which(podman_bin)
    if exe is None:
        raise ImageBuildError(f"container engine {podman_bin!r} not found on PATH "
                              "(install it with .ci/setup-podman.sh and export CONTAINERS_CONF)")
    return exe


def _podman_has(exe: str, ref: str) -> bool:
    return _run([exe, "image", "exists", ref], "podman image exists", 120).returncode == 0


def _build_podman(exe: str, tag: str, base: str | None) -> str:
    if base is None:
        base = base_tag()
        if not _podman_has(exe, base):
            tar = debian_base_tar()
            proc = _run([exe, "import", "--quiet", str(tar), base], "podman import")
            if proc.returncode != 0:
                raise ImageBuildError(f"podman: importing the base {base} failed (exit {proc.returncode}): "
                                      f"{_last_line(proc.stderr or proc.stdout, 'no output')}")
        wheels = True
    else:
        wheels = False
    with tempfile.TemporaryDirectory(prefix="dualwrite-image-") as tmp:
        ctx = prepare_context(Path(tmp) / "context") if wheels else _source_root()
        argv = [exe, "build", "--network", "none", "--layers", "-f", str(ctx / "Containerfile"),
                "--build-arg", f"BASE={base}", "-t", tag]
        if wheels:
            argv += ["--build-arg", "WHEELHOUSE=wheelhouse"]
        proc = _run([*argv, str(ctx)], "podman build")
    if proc.returncode != 0:
        raise ImageBuildError(f"podman: image build failed (exit {proc.returncode}): "
                              f"{_last_line(proc.stderr or proc.stdout, 'no output')}")
    after = _run([exe, "image", "inspect", "--format", "{{.Id}}", tag], "podman image inspect", 120)
    image_id = after.stdout.strip()
    if after.returncode != 0 or not image_id:
        raise ImageBuildError(f"podman: image {tag} not found after the build: {after.stderr.strip()}")
    return image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"


# --------------------------------------------------------------------------
# Docker Engine API (docker SDK)


def _docker_client(client: Any) -> Any:
    if client is not None:
        return client
    from dualwrite.backends.runners import docker_client

    try:
        return docker_client(os.environ.get("DOCKER_HOST") or None, timeout=600)
    except BackendError as exc:
        raise ImageBuildError(str(exc)) from None


def _engine_name(client: Any) -> str:
    return f"Docker engine at {getattr(client, 'dualwrite_host', None) or client.api.base_url}"


def _api_message(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = str(explanation or exc).strip().splitlines()
    msg = text[0][:400] if text else type(exc).__name__
    return f"{status} {msg}" if status else msg


def _docker_has(client: Any, ref: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(ref)
        return True
    except ImageNotFound:
        return False


def _stream_error(chunks: Iterable[Any]) -> str | None:
    """The first error in a JSON message stream (import, build), else None; for a failed build step, with
    the step's own last error line (pip's) before the engine's ``returned a non-zero code``."""
    cause = None
    for msg in chunks:
        if isinstance(msg, dict) and isinstance(msg.get("stream"), str):
            for ln in msg["stream"].splitlines():
                if _ERROR_LINE.match(ln.strip()):
                    cause = ln.strip()[:300]
        if isinstance(msg, (bytes, str)):
            for line in (msg.decode() if isinstance(msg, bytes) else msg).splitlines():
                try:
                    err = _stream_error([json.loads(line)])
                except ValueError:
                    continue
                if err:
                    return err
            continue
        if isinstance(msg, dict) and (msg.get("error") or msg.get("errorDetail")):
            detail = msg.get("errorDetail")
            err = str(msg.get("error") or (detail.get("message") if isinstance(detail, dict) else detail)).strip()
            return f"{cause} ({err[:200]})" if cause else err
    return None


def _build_docker(client: Any, tag: str, base: str | None) -> str:
    from docker.errors import APIError, DockerException

    engine = _engine_name(client)
    step = "image import"
    try:
        if base is None:
            base = base_tag()
            if not _docker_has(client, base):
                tar = debian_base_tar()
                repository, version = base.rsplit(":", 1)
                # the whole reference in `repository`: podman's compat endpoint (4.3) ignores `tag`
                out = client.api.import_image(src=str(tar), repository=f"{repository}:{version}")
                err = _stream_error([out])
                if err:
                    raise ImageBuildError(f"{engine}: {step} of the base {base} refused: {err}")
                if not _docker_has(client, base):
                    raise ImageBuildError(f"{engine}: {step}: the base {base} is not there after the import")
            wheels = True
        else:
            wheels = False
        step = "image build"
        with tempfile.TemporaryDirectory(prefix="dualwrite-image-") as tmp:
            ctx = prepare_context(Path(tmp) / "context") if wheels else _source_root()
            args = {"BASE": base, **({"WHEELHOUSE": "wheelhouse"} if wheels else {})}
            stream = client.api.build(path=str(ctx), dockerfile="Containerfile", tag=tag, buildargs=args,
                                      network_mode="none", rm=True, forcerm=True, decode=True,
                                      pull=not wheels)
            err = _stream_error(stream)
        if err:
            raise ImageBuildError(f"{engine}: {step} refused: {err}")
        step = "image inspect"
        return str(client.images.get(tag).id)
    except APIError as exc:
        raise ImageBuildError(f"{engine}: {step} refused: {_api_message(exc)}") from None
    except DockerException as exc:
        raise ImageBuildError(f"{engine}: {step} failed: {_api_message(exc)}") from None
    except OSError as exc:  # the engine went away mid-stream (requests wraps most of these)
        raise ImageBuildError(f"{engine}: {step} failed: {exc}") from None


def build_image(engine: str = "podman", tag: str = DEFAULT_TAG, *, podman_bin: str = "podman",
                docker_client: Any = None, base: str | None = None) -> str:
    """Build the simulator image from the Containerfile as *tag*; return its id.

    *base* names a Python base image the engine has or can pull (``docker.io/library/python:3.11-slim``):
    then the build is the registry one (pip from its index). Without it the base is made from Debian's
    packages and pip installs from a wheelhouse (no network in the build).
    """
    if engine not in ("podman", "docker"):
        raise ImageBuildError(f"unknown container engine {engine!r} (use 'podman' or 'docker')")
    if engine == "podman":
        return _build_podman(_podman_exe(podman_bin), tag, base)
    return _build_docker(_docker_client(docker_client), tag, base)
