"""What a container of the simulator image runs (see ``Containerfile``).

``/supra/supra``
    ``dualwrite-supra`` (the Supra CLI's grammar over the simulator), after making sure the chain
    exists: a container stands for a node, so with an empty configs volume its first call creates
    the state in ``$SUPRA_HOME`` (deployed: ``history::init_history`` and
    ``history_bridge::init_bridge`` run; ``DUALWRITE_SIM_START=genesis`` for nothing initialised).
``/supra/idle``
    the long-running container's command: creates the chain the same way at start, then waits for
    SIGTERM/SIGINT (it runs as PID 1), so ``exec`` has a container to enter.
``/supra/python``
    the image's interpreter, at one path whatever the base image.

Only these entry points, inside the image, create a state on their own; on the host a read never
does (``dualwrite-supra`` and every ``dualwrite`` command but ``sim init`` refuse a missing state).

``python3 -m dualwrite.sim.container layout /supra`` writes them (the Containerfile's last step).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_SCRIPT = """#!{python}
# dualwrite simulator image: {what}
import sys
from dualwrite.sim.container import {func}
sys.exit({func}())
"""
# PID 1 ignores a signal it has no handler for: the handlers come first, before any import
_IDLE_SCRIPT = """#!{python}
# dualwrite simulator image: the long-running command (PID 1): exits on SIGTERM or SIGINT
import signal
import sys


def _stop(signum, frame):
    sys.exit(0)


signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)
from dualwrite.sim.container import idle
sys.exit(idle())
"""


def ensure_chain() -> int:
    """Create the state file when it is missing; 0, or 1 after one ``Error:`` line."""
    from dualwrite.errors import DualwriteError
    from dualwrite.sim.genesis import create_state, start_from_env
    from dualwrite.sim.store import default_state_path

    try:
        create_state(default_state_path(), start_from_env(),
                     lottery_multi=os.environ.get("DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS") or None,
                     lottery=os.environ.get("DUALWRITE_SIM_LOTTERY_ADDRESS") or None)
    except DualwriteError as e:
        sys.stderr.write(f"Error: {e}\n")
        return 1
    return 0


def supra() -> int:
    if ensure_chain():
        return 1
    from dualwrite.sim.supra_cli import run

    sys.argv[0] = "supra"
    return run(sys.argv[1:])


def idle() -> int:
    """(The script installs the SIGTERM/SIGINT handlers before it imports this.)"""
    import signal

    ensure_chain()  # a failure is said on stderr (the container's log); exec calls say it again
    while True:
        signal.pause()


def layout(root: Path) -> None:
    """Write ``ROOT/supra``, ``ROOT/idle``, ``ROOT/python`` and the configs and workspace folders."""
    root.mkdir(parents=True, exist_ok=True)
    for d in ("configs", "move_workspace"):
        (root / d).mkdir(exist_ok=True)
    python = sys.executable  # not its real path: a venv's python is a link that activates the venv
    for name, text in (("supra", _SCRIPT.format(python=python, what="the Supra CLI stand-in (dualwrite-supra)",
                                                func="supra")),
                       ("idle", _IDLE_SCRIPT.format(python=python))):
        path = root / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    link = root / "python"
    link.unlink(missing_ok=True)
    link.symlink_to(python)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "layout":
        sys.stderr.write("usage: python3 -m dualwrite.sim.container layout ROOT\n")
        return 2
    layout(Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
