"""A real ``supra`` (dualwrite-supra) that can be held inside one call: for kill points and concurrent heals.

``install_gated_supra(DIR)`` puts ``DIR/supra`` on disk. With ``DW_TEST_GATE_FUNCTION`` (a substring of
the function id) and ``DW_TEST_GATE_FIFO`` (a named pipe) in its environment, the first call to that
function blocks opening the pipe until the test opens it for writing — a condition, not a sleep —
and then runs normally; ``FIFO.passed`` marks the gate as passed, so later calls go straight through.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LAUNCHER = """#!{python}
import os, sys
fn, fifo = os.environ.get("DW_TEST_GATE_FUNCTION"), os.environ.get("DW_TEST_GATE_FIFO")
if fn and fifo and any(fn in a for a in sys.argv[1:]) and not os.path.exists(fifo + ".passed"):
    with open(fifo + ".waiting", "w") as f:
        f.write(str(os.getpid()))
    with open(fifo, "rb") as f:  # blocks until the test opens the pipe for writing
        f.read()
    open(fifo + ".passed", "w").close()
from dualwrite.sim.supra_cli import main
sys.argv[0] = "supra"
main()
"""


def install_gated_supra(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "supra"
    path.write_text(LAUNCHER.format(python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path


def make_gate(path: Path) -> Path:
    os.mkfifo(path)
    return path


def release(gate: Path) -> None:
    """Let the held call go on (opening a pipe for writing waits for its reader, which is already there)."""
    with open(gate, "wb"):
        pass
