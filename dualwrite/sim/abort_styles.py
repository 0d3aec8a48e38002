"""How the simulator prints a Move abort, in each shape real Supra CLIs and nodes use (supra-cli.md).

``DUALWRITE_SUPRA_ABORT_STYLE`` picks one; the default ``node`` is what operators meet today:
a view abort as the v11.7 node says it (``Failed to execute view function: ABORTED with sub
status <decimal> at location Module 0x…::<module>``), a run abort in the CLI's named form.
``dualwrite-supra`` and the RPC emulator both print through ``view_abort_message`` /
``run_abort_message``, so drills meet what operators meet.

Styles: ``node`` (default), ``node-v11.3`` (v11.3.6–v11.6: no location), ``named``,
``code`` (bare hex code), ``abort-code`` (newer Aptos: ``abort code <decimal>``),
``vmerror`` (the Debug form, with ``message``/``exec_state`` before ``location``).
"""

from __future__ import annotations

import os

from dualwrite.errors import InputError, MoveAbort

ABORT_STYLES = ("node", "node-v11.3", "named", "code", "abort-code", "vmerror")
DEFAULT_STYLE = "node"
ENV = "DUALWRITE_SUPRA_ABORT_STYLE"


def style_from_env() -> str:
    style = os.environ.get(ENV) or DEFAULT_STYLE
    if style not in ABORT_STYLES:
        raise InputError(f"{ENV}={style!r}: expected one of {', '.join(ABORT_STYLES)}")
    return style


def move_abort_text(e: MoveAbort, style: str) -> str:
    """The abort as a transaction's ``vm_status`` / the CLI's error says it."""
    if style == "code":
        return f"Move abort in {e.module}: {e.code:#x}"
    if style == "abort-code":
        return f"Move abort in {e.module}: abort code {e.code}"
    if style == "vmerror":
        addr, _, mod = e.module.rpartition("::")
        message = (e.detail or e.name or "").replace("\\", "\\\\").replace('"', '\\"')
        return (f"VMError {{ major_status: ABORTED, sub_status: Some({e.code}), message: Some(\"{message}\"), "
                f"exec_state: Some(ExecutionState {{ stack_trace: [] }}), location: Module(ModuleId "
                f"{{ address: {addr}, name: Identifier(\"{mod}\") }}), indices: [], "
                f"offsets: [(FunctionDefinitionIndex(0), 0)] }}")
    name = e.name or "ABORT"
    return f"Move abort in {e.module}: {name}({e.code:#x}): {e.detail}"


def view_abort_message(e: MoveAbort, style: str | None = None) -> str:
    """The node's ``message`` for a view that aborted."""
    style = style or style_from_env()
    if style == "node":
        return f"Failed to execute view function: ABORTED with sub status {e.code} at location Module {e.module}"
    if style == "node-v11.3":
        return f"Failed to execute view function: ABORTED with sub status {e.code}"
    return f"Invalid view function call: {move_abort_text(e, style)}"


def run_abort_message(e: MoveAbort, style: str | None = None) -> str:
    """The CLI's ``Error:`` text for a run whose simulation aborted."""
    style = style or style_from_env()
    text = move_abort_text(e, "named" if style.startswith("node") else style)
    return f"Command Aborted Reason(Simulation failed with status: {text})"
