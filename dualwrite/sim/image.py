"""Build the simulator's container image without any registry.

The image is made from *this* machine's running Python: its interpreter and
a trimmed standard library, the few distributions the simulator needs, every
shared library those ELF files load (found with ``ldd``) and the dynamic
loader, all kept at their host paths.  On top of that come:

``/supra/supra``
    a Supra-CLI-compatible entry point running ``dualwrite.sim.supra_cli:main``
``/supra/idle``
    the long-running container's command: waits for SIGTERM/SIGINT, so that
    ``podman exec supra_cli /supra/supra ...`` has a container to enter
``/usr/local/bin/{dualwrite,dualwrite-supra,python3,python}``

The image needs no shell: every script has an absolute shebang to the copied
interpreter (:data:`IMAGE_PYTHON`).

:func:`build_rootfs` writes the root filesystem as a tarball; :func:`build_image`
imports it with ``podman import`` or through the Docker Engine API (docker SDK,
imported lazily, so this module imports with neither engine present).
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import io
import json
import logging
import os
import posixpath
import py_compile
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_TAG",
    "IMAGE_DISTRIBUTIONS",
    "IMAGE_PYTHON",
    "IMAGE_SITE_PACKAGES",
    "IMAGE_CHANGES",
    "ImageBuildError",
    "build_image",
    "build_rootfs",
]

log = logging.getLogger(__name__)


class ImageBuildError(Exception):
    """The simulator image could not be built or imported."""


# --------------------------------------------------------------------------
# Layout of the image

_PYVER = f"{sys.version_info.major}.{sys.version_info.minor}"
_BASE = Path(sys.base_prefix)

#: Interpreter path inside the image (the same path as on the host).
IMAGE_PYTHON: str = str(_BASE / "bin" / f"python{_PYVER}")
#: The image's stdlib directory and its (fresh, trimmed) site-packages.
IMAGE_STDLIB: str = str(_BASE / "lib" / f"python{_PYVER}")
#: Where the base interpreter looks for installed packages (pyenv/python.org
#: builds: <stdlib>/site-packages; Debian's python: /usr/local/lib/.../dist-packages).
IMAGE_SITE_PACKAGES: str = sysconfig.get_path(
    "purelib", vars={"base": sys.base_prefix, "platbase": sys.base_prefix}
)

DEFAULT_TAG = "localhost/dualwrite-supra:latest"
SUPRA_HOME = "/supra/configs"

#: Distributions copied into the image, with everything they require.
#: (``dualwrite`` itself is copied from its package directory, see below;
#: the docker SDK is a host-side dependency only and stays out.)
IMAGE_DISTRIBUTIONS: tuple[str, ...] = ("click", "pydantic", "blake3")

#: Image configuration, as Dockerfile-style instructions.
IMAGE_CHANGES: tuple[str, ...] = (
    f"ENV SUPRA_HOME={SUPRA_HOME}",
    "ENV PATH=/usr/local/bin:/usr/bin:/bin",
    "ENV LANG=C.UTF-8",
    "WORKDIR /supra",
    'CMD ["/supra/idle"]',
    "STOPSIGNAL SIGTERM",
    "LABEL org.opencontainers.image.title=dualwrite-supra",
)

# Parts of the standard library the simulator never uses.
_STDLIB_SKIP_TOP = {
    "site-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "turtle.py",
    "ensurepip",
    "lib2to3",
    "distutils",
    "pydoc_data",
    "__phello__",
}
_STDLIB_SKIP_DIRS_ANYWHERE = {"test", "tests", "idle_test"}
_DYNLOAD_SKIP = re.compile(
    r"^(_test\w*|_tkinter|_ctypes_test|xxlimited\w*|_xxtestfuzz|nis|ossaudiodev)\."
)
_SKIP_FILE = re.compile(r"\.opt-[12]\.pyc$")

_ELF_MAGIC = b"\x7fELF"

# Fixed timestamp for entries this module makes up (scripts, directories).
_EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))

_SUPRA_SCRIPT = """\
#!{python}
# dualwrite simulator: Supra-CLI-compatible entry point
import sys

from {module} import {func}

if __name__ == "__main__":
    sys.exit({func}())
"""

_IDLE_SCRIPT = """\
#!{python} -IS
# Keeps the container alive until SIGTERM or SIGINT (it runs as PID 1).
import signal
import sys


def _stop(signum, frame):
    sys.exit(0)


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)
while True:
    signal.pause()
"""

_PASSWD = "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


# --------------------------------------------------------------------------
# Tarball writer keeping host paths, following symlinked path components


class _RootFS:
    """Collects entries of the image, then writes them in sorted order."""

    def __init__(self) -> None:
        # image path (absolute, normalised) -> entry
        self.entries: dict[str, dict[str, Any]] = {}

    # -- primitive entries -------------------------------------------------
    def dir(self, path: str, mode: int = 0o755, mtime: int = _EPOCH) -> None:
        """Add directory *path* (and its parents); an explicit call sets its mode."""
        path = posixpath.normpath(path)
        if path == "/":
            return
        self._parent(path)
        cur = self.entries.get(path)
        if cur is not None and cur["type"] != "dir":
            raise ImageBuildError(f"{path} is both a directory and a {cur['type']} in the image")
        self.entries[path] = {"type": "dir", "mode": mode, "mtime": mtime}

    def _parent(self, path: str) -> None:
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in self.entries:
            self.entries[parent] = {"type": "dir", "mode": 0o755, "mtime": _EPOCH}
            parent = posixpath.dirname(parent)

    def file(self, path: str, src: str | os.PathLike[str], mode: int | None = None) -> None:
        path = posixpath.normpath(path)
        if path in self.entries:
            return
        st = os.stat(src)
        self._parent(path)
        self.entries[path] = {
            "type": "file",
            "src": os.fspath(src),
            "size": st.st_size,
            "mode": stat.S_IMODE(st.st_mode) if mode is None else mode,
            "mtime": int(st.st_mtime),
        }

    def data(self, path: str, data: bytes, mode: int = 0o644, mtime: int = _EPOCH) -> None:
        path = posixpath.normpath(path)
        self._parent(path)
        self.entries[path] = {"type": "data", "data": data, "mode": mode, "mtime": mtime}

    def symlink(self, path: str, target: str, mtime: int = _EPOCH) -> None:
        path = posixpath.normpath(path)
        if path in self.entries:
            return
        self._parent(path)
        self.entries[path] = {"type": "symlink", "target": target, "mtime": mtime}

    # -- host paths, with their symlinks ------------------------------------
    def host_path(self, path: str | os.PathLike[str]) -> str:
        """Add host file *path* at the same path, reproducing every symlink
        met on the way (``/lib -> usr/lib``, ``ld-linux -> ...``), so that the
        path resolves inside the image as it does on the host.  Returns the
        resolved real path."""
        path = os.path.abspath(os.fspath(path))
        hops = 0
        resolved = "/"
        parts = [p for p in path.split("/") if p]
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                # everything in `resolved` is a real directory by now
                resolved = posixpath.dirname(resolved)
                continue
            candidate = posixpath.join(resolved, part)
            if os.path.islink(candidate):
                hops += 1
                if hops > 40:
                    raise ImageBuildError(f"too many symlinks resolving {path}")
                target = os.readlink(candidate)
                self.symlink(candidate, target, mtime=int(os.lstat(candidate).st_mtime))
                base = "/" if target.startswith("/") else resolved
                parts = [p for p in target.split("/") if p] + parts
                resolved = posixpath.normpath(base)
                continue
            resolved = candidate
        if os.path.isdir(resolved):
            self.dir(resolved)
        else:
            self.file(resolved, resolved)
        return resolved

    # -- output -------------------------------------------------------------
    def write(self, tar_path: Path) -> None:
        compress = tar_path.name.endswith((".gz", ".tgz"))
        tmp = tar_path.with_name(tar_path.name + ".part")
        raw = open(tmp, "wb")
        ok = False
        try:
            if compress:
                import gzip

                fileobj: Any = gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
                )
            else:
                fileobj = raw
            with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for path in sorted(self.entries):
                    e = self.entries[path]
                    ti = tarfile.TarInfo(path.lstrip("/"))
                    ti.uid = ti.gid = 0
                    ti.uname = ti.gname = "root"
                    ti.mtime = e["mtime"]
                    if e["type"] == "dir":
                        ti.type = tarfile.DIRTYPE
                        ti.mode = e["mode"]
                        tar.addfile(ti)
                    elif e["type"] == "symlink":
                        ti.type = tarfile.SYMTYPE
                        ti.linkname = e["target"]
                        ti.mode = 0o777
                        tar.addfile(ti)
                    elif e["type"] == "data":
                        ti.mode = e["mode"]
                        ti.size = len(e["data"])
                        tar.addfile(ti, io.BytesIO(e["data"]))
                    else:
                        ti.mode = e["mode"]
                        with open(e["src"], "rb") as fh:
                            ti.size = os.fstat(fh.fileno()).st_size
                            tar.addfile(ti, fh)
            if compress:
                fileobj.close()
            ok = True
        finally:
            raw.close()
            if not ok:
                tmp.unlink(missing_ok=True)
        os.replace(tmp, tar_path)


# --------------------------------------------------------------------------
# What goes in


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == _ELF_MAGIC
    except OSError:
        return False


def _ldd(path: str, ldd: str) -> list[str]:
    """Absolute paths of the shared libraries *path* needs (and the loader)."""
    proc = subprocess.run(
        [ldd, path], capture_output=True, text=True, check=False, env={"LC_ALL": "C", "PATH": os.defpath}
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if "not a dynamic executable" in out or "statically linked" in out:
            return []
        raise ImageBuildError(f"ldd {path} failed (exit {proc.returncode}): {out.strip()}")
    libs: list[str] = []
    missing: list[str] = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            name, _, rest = line.partition("=>")
            rest = rest.strip()
            if rest.startswith("not found"):
                missing.append(name.strip())
                continue
            target = rest.split(" (", 1)[0].strip()
            if target.startswith("/"):
                libs.append(target)
        elif line.startswith("/"):
            libs.append(line.split(" (", 1)[0].strip())
    if missing:
        raise ImageBuildError(f"{path} needs shared libraries that are not installed: {', '.join(missing)}")
    return libs


def _marker_ok(marker: str) -> bool:
    marker = marker.strip()
    if not marker:
        return True
    for module in ("packaging.markers", "pip._vendor.packaging.markers"):
        try:
            Marker = importlib.import_module(module).Marker
            break
        except ImportError:
            continue
    else:  # pragma: no cover - packaging (or pip's copy) is nearly always there
        return "extra" not in marker
    return bool(Marker(marker).evaluate({"extra": ""}))


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _dist_closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """The distributions *roots* name plus all they require (no extras)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ImageBuildError(
                f"distribution {name!r} is needed in the simulator image but is not installed "
                f"in this Python ({sys.executable}); run `pip install -e .`"
            ) from None
        seen[key] = dist
        for req in dist.requires or []:
            spec, _, marker = req.partition(";")
            if not _marker_ok(marker):
                continue
            m = _REQ_NAME.match(spec)
            if m:
                todo.append(m.group(1))
    return [seen[k] for k in sorted(seen)]


def _add_stdlib(fs: _RootFS) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    if str(stdlib) != IMAGE_STDLIB:
        # A venv's stdlib is its base's; anything else is unusual.
        stdlib = Path(IMAGE_STDLIB)
    if not stdlib.is_dir():
        raise ImageBuildError(f"standard library not found at {stdlib}")
    for root, dirs, files in os.walk(stdlib):
        rel = os.path.relpath(root, stdlib)
        top = rel == "."
        dirs[:] = sorted(
            d
            for d in dirs
            if not (top and (d in _STDLIB_SKIP_TOP or d.startswith("config-")))
            and d not in _STDLIB_SKIP_DIRS_ANYWHERE
        )
        in_dynload = rel == "lib-dynload"
        fs.dir(root)
        for f in files:
            if top and f in _STDLIB_SKIP_TOP:
                continue
            if _SKIP_FILE.search(f):
                continue
            if in_dynload and _DYNLOAD_SKIP.match(f):
                continue
            p = os.path.join(root, f)
            if os.path.islink(p):
                fs.symlink(p, os.readlink(p))
            else:
                fs.file(p, p)
    fs.dir(IMAGE_SITE_PACKAGES)


def _add_interpreter(fs: _RootFS) -> None:
    if not os.path.isfile(IMAGE_PYTHON):
        raise ImageBuildError(f"interpreter not found at {IMAGE_PYTHON}")
    fs.host_path(IMAGE_PYTHON)
    bindir = str(_BASE / "bin")
    for alias in ("python3", "python"):
        fs.symlink(f"{bindir}/{alias}", f"python{_PYVER}")
    libdir = _BASE / "lib"
    for p in sorted(libdir.glob(f"libpython{_PYVER}*.so*")) + sorted(libdir.glob("libpython3.so")):
        if p.is_symlink():
            fs.symlink(str(p), os.readlink(p))
        else:
            fs.file(str(p), p)


def _add_distribution(fs: _RootFS, dist: metadata.Distribution) -> None:
    base = Path(str(dist.locate_file(""))).resolve()
    files = dist.files
    if files is None:
        raise ImageBuildError(
            f"distribution {dist.metadata['Name']} has no RECORD/files list; cannot copy it"
        )
    for f in files:
        src = Path(str(dist.locate_file(f)))
        try:
            rel = src.resolve().relative_to(base)
        except ValueError:
            continue  # console scripts in ../../../bin and the like
        if rel.suffix == ".pth" or not src.is_file():
            continue
        if _SKIP_FILE.search(rel.name):
            continue
        fs.file(f"{IMAGE_SITE_PACKAGES}/{rel.as_posix()}", src)


def _add_dualwrite(fs: _RootFS, tmpdir: Path) -> None:
    """Copy the dualwrite package from its directory (works for editable
    installs too), with freshly compiled, hash-checked ``.pyc`` files."""
    import dualwrite

    pkg_dir = Path(dualwrite.__file__).resolve().parent
    dest_root = f"{IMAGE_SITE_PACKAGES}/dualwrite"
    n = 0
    for root, dirs, files in os.walk(pkg_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        rel = Path(root).relative_to(pkg_dir).as_posix()
        dest_dir = dest_root if rel == "." else f"{dest_root}/{rel}"
        fs.dir(dest_dir)
        for f in sorted(files):
            if f.endswith((".pyc", ".pyo")) or f.endswith("~"):
                continue
            src = Path(root) / f
            fs.file(f"{dest_dir}/{f}", src, mode=0o644)
            if f.endswith(".py"):
                n += 1
                cfile = tmpdir / f"pyc{n}.pyc"
                try:
                    py_compile.compile(
                        str(src),
                        cfile=str(cfile),
                        dfile=f"{dest_dir}/{f}",
                        doraise=True,
                        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                    )
                except py_compile.PyCompileError as exc:
                    log.warning("not precompiling %s: %s", src, exc.msg)
                    continue
                tag = sys.implementation.cache_tag
                fs.file(f"{dest_dir}/__pycache__/{f[:-3]}.{tag}.pyc", cfile, mode=0o644)
    # Metadata, so importlib.metadata.version("dualwrite") works in the image.
    try:
        dist = metadata.distribution("dualwrite")
    except metadata.PackageNotFoundError:
        return
    info = f"{IMAGE_SITE_PACKAGES}/dualwrite-{dist.version}.dist-info"
    for name in ("METADATA", "entry_points.txt", "top_level.txt", "WHEEL"):
        text = dist.read_text(name)
        if text is not None:
            fs.data(f"{info}/{name}", text.encode())


def _add_elf_dependencies(fs: _RootFS) -> int:
    ldd = shutil.which("ldd")
    if ldd is None:
        raise ImageBuildError("`ldd` is not on PATH; it is needed to find shared libraries")
    elves = sorted(
        p for p, e in fs.entries.items() if e["type"] == "file" and _is_elf(e["src"])
    )
    libs: set[str] = set()
    for elf in elves:
        libs.update(_ldd(fs.entries[elf]["src"], ldd))
    # ldd prints the whole closure, loader included; add each at its path.
    for lib in sorted(libs):
        fs.host_path(lib)
    # glibc dlopen()s libgcc_s for pthread_exit/cancel; ldd cannot see that.
    libc = next((lib for lib in sorted(libs) if posixpath.basename(lib) == "libc.so.6"), None)
    if libc is not None:
        gcc_s = posixpath.join(posixpath.dirname(os.path.realpath(libc)), "libgcc_s.so.1")
        if os.path.exists(gcc_s):
            fs.host_path(gcc_s)
    return len(libs)


def _strip_debug(fs: _RootFS, tmpdir: Path) -> int:
    """Replace the interpreter's own unstripped ELF files (pyenv builds keep
    debug info: libpython is 23 MB, 6 MB without) with ``strip --strip-debug``
    copies.  System libraries are already stripped.  Returns bytes saved."""
    strip = shutil.which("strip")
    if strip is None:
        log.info("`strip` not found (binutils); keeping debug info in the image")
        return 0
    saved = 0
    base = str(_BASE) + "/"
    for n, (path, e) in enumerate(sorted(fs.entries.items())):
        if e["type"] != "file" or not e["src"].startswith(base) or not _is_elf(e["src"]):
            continue
        out = tmpdir / f"strip{n}-{posixpath.basename(path)}"
        proc = subprocess.run(
            [strip, "--strip-debug", "-o", str(out), e["src"]],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            log.warning("strip %s failed: %s", e["src"], proc.stderr.strip())
            continue
        os.utime(out, (e["mtime"], e["mtime"]))
        new_size = out.stat().st_size
        saved += e["size"] - new_size
        e.update(src=str(out), size=new_size)
    return saved


def _add_supra_layout(fs: _RootFS) -> None:
    py = IMAGE_PYTHON
    supra = _SUPRA_SCRIPT.format(python=py, module="dualwrite.sim.supra_cli", func="main").encode()
    cli = _SUPRA_SCRIPT.format(python=py, module="dualwrite.cli.main", func="main").encode()
    fs.dir("/supra")
    fs.dir("/supra/configs")
    fs.dir("/supra/move_workspace")
    fs.data("/supra/supra", supra, mode=0o755)
    fs.data("/supra/idle", _IDLE_SCRIPT.format(python=py).encode(), mode=0o755)
    fs.data("/usr/local/bin/dualwrite-supra", supra, mode=0o755)
    fs.data("/usr/local/bin/dualwrite", cli, mode=0o755)
    fs.symlink("/usr/local/bin/python3", py)
    fs.symlink("/usr/local/bin/python", py)
    fs.dir("/tmp", mode=0o1777)
    fs.dir("/var/tmp", mode=0o1777)
    fs.dir("/root", mode=0o755)  # the interpreter lives under it (pyenv)
    fs.dir("/etc")
    fs.data("/etc/passwd", _PASSWD.encode())
    fs.data("/etc/group", _GROUP.encode())
    # Podman/Docker bind-mount these; having them avoids engine warnings.
    fs.data("/etc/hostname", b"")
    fs.data("/etc/hosts", b"127.0.0.1 localhost\n::1 localhost\n")
    fs.data("/etc/resolv.conf", b"")
    for d in ("/proc", "/sys", "/dev", "/run"):
        fs.dir(d)


def build_rootfs(tar_path: str | os.PathLike[str], *, strip: bool = True) -> Path:
    """Write the simulator's root filesystem to *tar_path* and return it.

    A name ending in ``.gz``/``.tgz`` gives a gzip-compressed tarball (slower
    to build and import, about a third of the size); otherwise plain tar.
    """
    tar_path = Path(tar_path)
    t0 = time.monotonic()
    fs = _RootFS()
    with tempfile.TemporaryDirectory(prefix="dualwrite-rootfs-") as tmp:
        _add_interpreter(fs)
        _add_stdlib(fs)
        for dist in _dist_closure(IMAGE_DISTRIBUTIONS):
            _add_distribution(fs, dist)
        _add_dualwrite(fs, Path(tmp))
        nlibs = _add_elf_dependencies(fs)
        saved = _strip_debug(fs, Path(tmp)) if strip else 0
        _add_supra_layout(fs)
        tar_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fs.write(tar_path)
        except OSError as exc:
            raise ImageBuildError(f"cannot write {tar_path}: {exc}") from exc
    log.info(
        "rootfs %s: %d entries, %d shared libraries, %.1f MiB stripped, %.1f MiB in %.1fs",
        tar_path,
        len(fs.entries),
        nlibs,
        saved / 2**20,
        tar_path.stat().st_size / 2**20,
        time.monotonic() - t0,
    )
    return tar_path


# --------------------------------------------------------------------------
# Import into an engine


def _run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"`{' '.join(argv[:3])} ...` did not finish within {timeout:.0f}s") from None
    except OSError as exc:
        raise ImageBuildError(f"cannot run {argv[0]}: {exc}") from exc


def _podman_exe(podman_bin: str) -> str:
    exe = shutil.which(podman_bin)
    if exe is None:
        raise ImageBuildError(
            f"container engine {podman_bin!r} not found on PATH "
            "(install it with .ci/setup-podman.sh and export CONTAINERS_CONF)"
        )
    return exe


def _build_podman(tar: Path, tag: str, exe: str) -> str:
    inspect = [exe, "image", "inspect", "--format", "{{.Id}}", tag]
    previous = _run(inspect, 120).stdout.strip()
    argv = [exe, "import", "--quiet"]
    for change in IMAGE_CHANGES:
        argv += ["--change", change]  # "INSTR VALUE", as Docker takes it
    argv += [str(tar), tag]
    proc = _run(argv)
    if proc.returncode != 0:
        raise ImageBuildError(
            f"`podman import` failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}"
        )
    after = _run(inspect, 120)
    image_id = after.stdout.strip()
    if after.returncode != 0 or not image_id:
        raise ImageBuildError(f"image {tag} not found after `podman import`: {after.stderr.strip()}")
    image_id = image_id if image_id.startswith("sha256:") else f"sha256:{image_id}"
    if previous and previous.removeprefix("sha256:") != image_id.removeprefix("sha256:"):
        # The old image lost its tag; drop it unless a container still uses it.
        _run([exe, "image", "rm", previous], 120)
    return image_id


def _docker_client(client: Any) -> Any:
    if client is not None:
        return client
    try:
        import docker  # lazily: the SDK is only needed for this engine
    except ImportError as exc:
        raise ImageBuildError("the docker SDK (`pip install docker`) is not installed") from exc
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise ImageBuildError(
            f"no Docker Engine API reachable (DOCKER_HOST={os.environ.get('DOCKER_HOST', '')!r}): {exc}"
        ) from exc
    return client


def _build_docker(tar: Path, tag: str, client: Any) -> str:
    repository, version = _split_tag(tag)
    try:
        # The whole reference goes in `repo` (Docker allows "name:tag" there);
        # podman's compat endpoint (4.3) ignores the separate `tag` parameter.
        out = client.api.import_image(
            src=str(tar), repository=f"{repository}:{version}", changes=list(IMAGE_CHANGES)
        )
    except Exception as exc:
        raise ImageBuildError(f"Docker API image import failed: {exc}") from exc
    # The answer is a stream of JSON messages: the new id, or an error.
    text = out.decode() if isinstance(out, bytes) else str(out)
    image_id = ""
    for line in text.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            raise ImageBuildError(f"Docker API image import failed: {msg.get('error') or msg.get('errorDetail')}")
        status = str(msg.get("status", ""))
        if status.startswith("sha256:"):
            image_id = status
    try:
        try:
            return str(client.images.get(tag).id)
        except Exception:
            if not image_id:
                raise
            client.api.tag(image_id, repository, version)
            return str(client.images.get(tag).id)
    except Exception as exc:
        raise ImageBuildError(f"image {tag} not found after Docker API import ({text.strip()[:200]}): {exc}") from exc


def _split_tag(tag: str) -> tuple[str, str]:
    name, sep, version = tag.rpartition(":")
    if not sep or "/" in version:
        return tag, "latest"
    return name, version


def build_image(
    engine: str = "podman",
    tag: str = DEFAULT_TAG,
    *,
    podman_bin: str = "podman",
    docker_client: Any = None,
) -> str:
    """Build the simulator image and import it as *tag*; return its id.

    ``engine="podman"`` runs ``podman import`` (honouring ``CONTAINERS_CONF``);
    ``engine="docker"`` goes through the Docker Engine API with the docker SDK
    (*docker_client*, or ``docker.from_env()``), which also works against
    ``podman system service``.
    """
    if engine not in ("podman", "docker"):
        raise ImageBuildError(f"unknown container engine {engine!r} (use 'podman' or 'docker')")
    # Check the engine first, so a missing one fails before any work.
    if engine == "podman":
        exe = _podman_exe(podman_bin)
    else:
        docker_client = _docker_client(docker_client)
    with tempfile.TemporaryDirectory(prefix="dualwrite-image-") as tmp:
        tar = build_rootfs(Path(tmp) / "rootfs.tar")
        if engine == "podman":
            return _build_podman(tar, tag, exe)
        return _build_docker(tar, tag, docker_client)
