"""Two ways to drive the embedded chain behind one interface, for the conformance suite.

``InProcess(state)`` calls ``dualwrite.sim.chain.Chain`` directly. ``Subprocess(state)``
runs the real ``dualwrite-supra`` console script (and ``dualwrite sim finalize`` for
``history::record_summary``, which is internal and not callable through the CLI) and
parses what it prints back into the same results and the same exceptions:

- ``run(function_id, args, profile=...)`` -> the transaction JSON (``status`` ``Success``),
  or ``MoveAbort`` (``.code``, ``.name``, ``.module``), or ``CliError`` (``Error: ...``);
- ``view(function_id, args)`` -> the ``result`` list in Move JSON, or ``MoveAbort``;
- ``finalize(summary)`` -> ``{"version", "transaction_hash", "events": [short names]}``,
  or ``MoveAbort``.

Inspection of the state (events, the legacy copy, the version counter) goes through
``driver.chain`` — a direct ``Chain`` on the same file — whichever driver wrote it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dualwrite.errors import InputError, MoveAbort, TransactionFailed
from dualwrite.sim.chain import Chain, CliError
from dualwrite.structs import LotterySummary

GAS_FLAGS = ["--gas-unit-price", "100", "--max-gas", "100000"]
TIMEOUT_S = 120


def console_script(name: str) -> str:
    """The installed console script, preferring the one beside this interpreter (no pyenv shim)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        raise RuntimeError(f"console script {name!r} is not installed (pip install -e '.[test]')")
    return found


# -- parsing what the CLI prints ---------------------------------------------------------------

_NAMED = re.compile(
    r"Move abort in (?P<module>\S+?): (?P<name>[A-Za-z_][A-Za-z0-9_]*)\((?P<code>0x[0-9a-fA-F]+|\d+)\)"
    r"(?:: (?P<detail>.*))?", re.DOTALL)
_CODE = re.compile(r"Move abort in (?P<module>\S+?): (?:abort code )?(?P<code>0x[0-9a-fA-F]+|\d+)\b")
_VMERROR = re.compile(
    r"VMError \{ major_status: ABORTED, sub_status: Some\((?P<code>\d+)\)"
    r"(?:, message: Some\(\"(?:[^\"\\]|\\.)*\"\))?(?:, exec_state: (?:None|Some\(ExecutionState \{ stack_trace: \[\] \}\)))?"
    r"(?:, location: Module\(ModuleId \{ address: (?P<addr>[^,\s]+), name: Identifier\(\"(?P<mod>\w+)\"\) \}\))?")
# a view abort as nodes v11.3.6+ report it (decimal code; the module since v11.7)
_NODE_VIEW = re.compile(r"Failed to execute view function: ABORTED with sub status (?P<code>\d+)"
                        r"(?: at location Module (?P<module>\S+::\w+))?")
_WRAPPER = "Command Aborted Reason("


def parse_abort(text: str) -> MoveAbort | None:
    """A ``MoveAbort`` out of any of the abort shapes the simulator prints, or None."""
    if text.startswith(_WRAPPER) and text.endswith(")"):
        text = text[len(_WRAPPER):-1]
    m = _NAMED.search(text)
    if m:
        return MoveAbort(int(m.group("code"), 0), module=m.group("module"), name=m.group("name"),
                         detail=(m.group("detail") or "").strip())
    m = _CODE.search(text)
    if m:
        return MoveAbort(int(m.group("code"), 0), module=m.group("module"))
    m = _NODE_VIEW.search(text)
    if m:
        return MoveAbort(int(m.group("code")), module=m.group("module") or "")
    m = _VMERROR.search(text)
    if m:
        module = f"{m.group('addr')}::{m.group('mod')}" if m.group("addr") else ""
        return MoveAbort(int(m.group("code")), module=module)
    return None


class CliCrashed(AssertionError):
    """The CLI printed a traceback or something it should never print."""


class Completed:
    """One finished subprocess, kept for assertions on the raw streams."""

    def __init__(self, argv: list[str], proc: subprocess.CompletedProcess) -> None:
        self.argv = argv
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def check_sane(self) -> None:
        if "Traceback (most recent call last)" in self.stderr or "Traceback" in self.stdout:
            raise CliCrashed(f"{self.argv}: traceback\n{self.stderr}")


# -- the drivers -------------------------------------------------------------------------------


class Driver:
    name = "?"

    def __init__(self, state: Path | str) -> None:
        self.state = Path(state)
        self._chain: Chain | None = None

    @property
    def chain(self) -> Chain:
        """A direct Chain on the same state file, for inspection (and fast setup)."""
        if self._chain is None:
            self._chain = Chain(self.state)
        return self._chain

    def close(self) -> None:
        if self._chain is not None:
            self._chain.close()
            self._chain = None

    def run(self, function_id: str, args: Sequence[str] = (), profile: str = "default") -> dict[str, Any]:
        raise NotImplementedError

    def view(self, function_id: str, args: Sequence[str] = ()) -> list[Any]:
        raise NotImplementedError

    def finalize(self, summary: LotterySummary) -> dict[str, Any]:
        raise NotImplementedError

    def view1(self, function_id: str, args: Sequence[str] = ()) -> Any:
        """The single value a view returns."""
        result = self.view(function_id, args)
        assert isinstance(result, list) and len(result) == 1, result
        return result[0]


def _finalized(version: int, txn_hash: str, events: list[str]) -> dict[str, Any]:
    return {"version": version, "transaction_hash": txn_hash, "events": events}


class InProcess(Driver):
    name = "inprocess"

    def run(self, function_id: str, args: Sequence[str] = (), profile: str = "default") -> dict[str, Any]:
        return self.chain.run(function_id, list(args), profile=profile, gas_unit_price=100, max_gas=100000)

    def view(self, function_id: str, args: Sequence[str] = ()) -> list[Any]:
        return self.chain.view(function_id, list(args))

    def finalize(self, summary: LotterySummary) -> dict[str, Any]:
        txn = self.chain.finalize(summary)
        return _finalized(txn["block_height"], txn["hash"],
                          [e["type"].rsplit("::", 1)[-1] for e in txn["output"]["Move"]["events"]])


class Subprocess(Driver):
    name = "subprocess"

    def __init__(self, state: Path | str, *, abort_style: str | None = None) -> None:
        super().__init__(state)
        Chain(self.state).close()  # the chain exists before a CLI talks to it (dualwrite-supra never creates one)
        self.supra = console_script("dualwrite-supra")
        self.dualwrite = console_script("dualwrite")
        self.abort_style = abort_style
        self.last: Completed | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DUALWRITE_STATE"] = str(self.state)
        env.pop("DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS", None)
        env.pop("DUALWRITE_SIM_LOTTERY_ADDRESS", None)
        env.pop("DUALWRITE_DEBUG", None)
        if self.abort_style:
            env["DUALWRITE_SUPRA_ABORT_STYLE"] = self.abort_style
        else:
            env.pop("DUALWRITE_SUPRA_ABORT_STYLE", None)
        return env

    def exec(self, argv: list[str], *, stdin: Any = subprocess.DEVNULL, input: str | None = None,
             env: dict[str, str] | None = None) -> Completed:
        kwargs: dict[str, Any] = {"input": input} if input is not None else {"stdin": stdin}
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=env or self.env(),
                              timeout=TIMEOUT_S, **kwargs)
        self.last = Completed(argv, proc)
        self.last.check_sane()
        return self.last

    def supra_argv(self, tool: str, function_id: str, args: Sequence[str], profile: str | None = None,
                   gas: bool = True) -> list[str]:
        argv = [self.supra, "move", "tool", tool, "--function-id", function_id]
        if args:
            argv += ["--args", *args]
        if profile is not None:
            argv += ["--profile", profile]
        if tool == "run" and gas:
            argv += GAS_FLAGS
        return argv

    @staticmethod
    def _error_text(c: Completed) -> str:
        lines = [ln for ln in c.stderr.splitlines() if ln.startswith("Error: ")]
        if not lines:
            raise CliCrashed(f"{c.argv}: exit {c.returncode} without an 'Error:' line\n{c.stderr}")
        return lines[-1][len("Error: "):]

    def run(self, function_id: str, args: Sequence[str] = (), profile: str = "default") -> dict[str, Any]:
        c = self.exec(self.supra_argv("run", function_id, args, profile))
        if c.returncode == 0:
            txn = json.loads(c.stdout)
            if txn.get("status") != "Success":
                raise TransactionFailed(txn.get("status", "?"), txn_hash=txn.get("hash"),
                                        detail=txn.get("output", {}).get("Move", {}).get("vm_status", ""))
            return txn
        if c.returncode != 1 or c.stdout.strip():
            raise CliCrashed(f"{c.argv}: exit {c.returncode}, stdout {c.stdout!r}, stderr {c.stderr!r}")
        text = self._error_text(c)
        abort = parse_abort(text)
        if abort is not None:
            raise abort
        raise CliError(text)

    def view(self, function_id: str, args: Sequence[str] = ()) -> list[Any]:
        c = self.exec(self.supra_argv("view", function_id, args))
        if c.returncode == 1:
            raise CliError(self._error_text(c))
        if c.returncode != 0:
            raise CliCrashed(f"{c.argv}: exit {c.returncode}, stderr {c.stderr!r}")
        body = json.loads(c.stdout)
        if "message" in body:
            abort = parse_abort(body["message"])
            if abort is not None:
                raise abort
            raise CliError(body["message"])
        assert set(body) == {"result"}, body
        return body["result"]

    def finalize(self, summary: LotterySummary) -> dict[str, Any]:
        fd, path = tempfile.mkstemp(suffix=".json", prefix=f"summary-{summary.id}-", dir=self.state.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(summary.to_move_json(), f)
        try:
            c = self.exec([self.dualwrite, "sim", "finalize", path, "--json", "--state", str(self.state)])
        finally:
            os.unlink(path)
        if c.returncode not in (0, 4):
            raise CliCrashed(f"{c.argv}: exit {c.returncode}, stderr {c.stderr!r}")
        (result,) = json.loads(c.stdout)
        if c.returncode == 4:
            assert result["status"] == "aborted", result
            raise MoveAbort(result["abort_code"], module=result["module"], name=result["abort_name"])
        assert result["status"] == "finalized", result
        return _finalized(result["version"], result["transaction_hash"], result["events"])


#: what each view returns, in the schema's names (tests/rpc_schema.json)
VIEW_SHAPES = {
    "dual_write_status": "DualWriteStatus", "dual_write_flags": "DualWriteStatus",
    "pending_expected_hashes": "VectorU64", "get_summary@history": "LotterySummary",
    "list_finalized": "VectorU64", "get_summary@history_bridge": "OptionLegacySummary",
}


class Rpc(Driver):
    """Views through the emulated RPC node (a real loopback server, real httpx); entry functions
    and finalisation in-process (the node serves reads; writes are signed by the CLI)."""

    name = "rpc"

    def __init__(self, state: Path | str) -> None:
        super().__init__(state)
        self._node = None
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from dualwrite.backends.rpc import RpcClient
            from tests.rpc_node import InThreadNode, schema_hook

            self.chain  # the state file exists before the node opens it
            self._node = InThreadNode(self.state)
            self._client = RpcClient(self._node.url, retries=0)
            schema_hook(self._client)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._node.stop()
            self._client = self._node = None
        super().close()

    def run(self, function_id: str, args: Sequence[str] = (), profile: str = "default") -> dict[str, Any]:
        return self.chain.run(function_id, list(args), profile=profile, gas_unit_price=100, max_gas=100000)

    def finalize(self, summary: LotterySummary) -> dict[str, Any]:
        return InProcess.finalize(self, summary)  # type: ignore[arg-type]

    def view(self, function_id: str, args: Sequence[str] = ()) -> list[Any]:
        from dualwrite.backends.rpc import _arg
        from tests.rpc_node import validate

        addr, module, fn = function_id.split("::")
        full = f"{self.chain.addresses.resolve(addr)}::{module}::{fn}"
        try:
            result = self.client.view(full, [_arg(a) for a in args])
        except MoveAbort:
            raise
        except InputError as e:  # the node's 400 for what the CLI calls invalid arguments
            raise CliError(str(e)) from None
        shape = VIEW_SHAPES.get(f"{fn}@{module}", VIEW_SHAPES.get(fn))
        if shape and len(result) == 1:
            validate(shape, result[0])
        return result


DRIVERS = {"inprocess": InProcess, "subprocess": Subprocess, "rpc": Rpc}


def make_driver(kind: str, state: Path | str, **kwargs: Any) -> Driver:
    return DRIVERS[kind](state, **kwargs)
