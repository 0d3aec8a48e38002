"""Put ``dualwrite-supra`` on PATH under the name ``supra``, for the local backend."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dualwrite.errors import InputError

LAUNCHER = """#!{python}
# dualwrite-supra installed as a Supra CLI stand-in (embedded simulator)
import sys
from dualwrite.sim.supra_cli import main
sys.argv[0] = {name!r}
main()
"""


def install_supra_script(directory: Path, name: str = "supra") -> Path:
    """A launcher bound to this interpreter (a symlink to a pyenv shim would not work)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        tmp = directory / f".{name}.tmp"
        tmp.write_text(LAUNCHER.format(python=sys.executable, name=name), encoding="utf-8")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"cannot install {name} into {directory}: {e.strerror or e}") from None
    return path
