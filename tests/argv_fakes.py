"""Stand-ins that record the argv they are started with, then do the real work.

``recording_supra`` writes a ``supra`` that appends its argv (one JSON line) to a log and then
execs the real ``dualwrite-supra``, so a command's whole flow runs and every word dualwrite put
on the Supra CLI's command line can be checked. ``recording_podman`` does the same for
``podman``: it logs its argv, then runs the words after the image (``/supra/supra ...``) with
the host's ``dualwrite-supra``, so the podman one-shot argv can be checked without an engine.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

_SCRIPT = """\
#!{python}
import json, os, sys
with open({log!r}, "a", encoding="utf-8") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if {podman!r}:
    if "/supra/supra" not in args:
        sys.exit(0)
    args = args[args.index("/supra/supra") + 1:]
os.execv({target!r}, [{target!r}, *args])
"""


def _host_supra() -> str:
    found = shutil.which("dualwrite-supra", path=str(Path(sys.executable).parent))
    assert found, "dualwrite-supra is not installed next to this interpreter"
    return found


def _write(path: Path, log: Path, target: str, python: str, podman: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_SCRIPT.format(python=python, log=str(log), target=target, podman=podman), encoding="utf-8")
    path.chmod(0o755)
    return path


def recording_supra(path: Path, log: Path) -> Path:
    """A host ``supra`` at *path* logging to *log*."""
    return _write(path, log, _host_supra(), sys.executable, False)


def recording_supra_in_image(path: Path, log_in_container: str) -> Path:
    """A ``supra`` for the simulator image (bind-mount it over /supra/supra); logs inside the container."""
    from dualwrite.sim.image import IMAGE_PYTHON

    return _write(path, Path(log_in_container), "/usr/local/bin/dualwrite-supra", IMAGE_PYTHON, False)


def recording_podman(path: Path, log: Path) -> Path:
    """A host ``podman`` at *path* logging to *log*; runs the Supra CLI part with dualwrite-supra."""
    return _write(path, log, _host_supra(), sys.executable, True)


def calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(ln) for ln in log.read_text(encoding="utf-8").splitlines() if ln.strip()]


def after(argv: list[str], flag: str) -> str:
    """The word after *flag* in *argv* (the flag must be there exactly once)."""
    assert argv.count(flag) == 1, (flag, argv)
    return argv[argv.index(flag) + 1]
