"""Reading what the Supra CLI prints, in every form supra-cli.md lists, into results or typed errors.

Forms: ``{"result": ...}`` / ``{"Result": ...}``; ``{"message": ...}`` (a node error, even
with exit 0); ``{"Error": ...}``; ``Error: ...`` on stderr; transaction JSON whose
``status`` is not ``Success``; and the three abort shapes (named, bare code, VMError).
"""

from __future__ import annotations

import json
import re
from typing import Any

from dualwrite.backends.base import TxnResult
from dualwrite.errors import BackendError, InputError, MoveAbort, TransactionFailed, TransientBackendError

ABORT_NAMED = re.compile(r"Move abort in (?P<module>\S+?): (?P<name>[A-Za-z_][A-Za-z0-9_]*)\((?P<code>0x[0-9a-fA-F]+)\)(?::\s*(?P<detail>[^\n)]*))?")
ABORT_CODE = re.compile(r"Move abort in (?P<module>\S+?): (?P<code>0x[0-9a-fA-F]+|\d+)\b")
ABORT_VMERROR = re.compile(
    r"major_status:\s*ABORTED,\s*sub_status:\s*Some\((?P<code>\d+)\)"
    r"(?:,\s*location:\s*Module\(ModuleId\s*\{\s*address:\s*(?P<addr>\w+),\s*name:\s*Identifier\(\"(?P<mod>\w+)\"\))?"
)
TRANSIENT = re.compile(
    r"(is not running|container .* not running|connection refused|timed? ?out|temporarily unavailable|"
    r"service unavailable|try again|too many requests|database is locked|no such container.*restarting)",
    re.IGNORECASE,
)
INVALID_ARGS = re.compile(r"Invalid arguments|Unable to parse|invalid value", re.IGNORECASE)


def find_abort(text: str) -> MoveAbort | None:
    """The abort a piece of CLI output reports, whichever of the three shapes it uses."""
    m = ABORT_NAMED.search(text)
    if m:
        return MoveAbort(int(m["code"], 16), module=m["module"], name=m["name"], detail=(m["detail"] or "").strip())
    m = ABORT_CODE.search(text)
    if m:
        code = m["code"]
        return MoveAbort(int(code, 16) if code.startswith("0x") else int(code), module=m["module"])
    m = ABORT_VMERROR.search(text)
    if m:
        module = f"{m['addr']}::{m['mod']}" if m["mod"] else ""
        return MoveAbort(int(m["code"]), module=module)
    return None


def _first_json(text: str) -> Any:
    """The JSON document in stdout (the CLI may print text lines before it)."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except RecursionError:  # found by fuzz/: nesting no CLI prints; unreadable, not a crash
        return None
    except json.JSONDecodeError:
        pass
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
        return obj
    except (json.JSONDecodeError, RecursionError):
        return None


def _error_line(stderr: str, stdout: str) -> str:
    for line in (stderr + "\n" + stdout).splitlines():
        s = line.strip()
        if s.startswith("Error:"):
            return s[len("Error:"):].strip()
    lines = [ln.strip() for ln in (stderr or stdout).splitlines() if ln.strip() and not ln.startswith("account:")]
    return lines[-1] if lines else "no output"


def failure(text: str, *, where: str, returncode: int | None = None) -> Exception:
    """Classify a failure: abort (exit 4), bad arguments (2), transient or other backend failure (3)."""
    abort = find_abort(text)
    if abort is not None:
        return abort
    if INVALID_ARGS.search(text):
        return InputError(f"{where}: the CLI rejected the arguments: {text}")
    m = re.search(r"status(?::|\s+(?:was|is|of))?\s*[\"'`]?(Fail|Invalid|PendingAfterExecution|Pending)\b", text)
    if m:
        h = re.search(r"0x[0-9a-fA-F]{64}", text)
        return TransactionFailed(m[1], txn_hash=h[0] if h else None, detail=text)
    suffix = f" (exit {returncode})" if returncode not in (None, 0) else ""
    cls = TransientBackendError if TRANSIENT.search(text) else BackendError
    return cls(f"{where}: {text}{suffix}")


def parse_view(stdout: str, stderr: str, returncode: int, *, where: str) -> list[Any]:
    obj = _first_json(stdout)
    if isinstance(obj, dict):
        for key in ("result", "Result"):
            if key in obj:
                value = obj[key]
                return value if isinstance(value, list) else [value]
        for key in ("message", "Error", "error"):
            if key in obj:
                raise failure(str(obj[key]), where=where, returncode=returncode)
    if returncode != 0:
        raise failure(_error_line(stderr, stdout), where=where, returncode=returncode)
    raise BackendError(f"{where}: unreadable view output: {(stdout or stderr).strip()[:200] or 'nothing'}")


def parse_run(stdout: str, stderr: str, returncode: int, *, where: str) -> TxnResult:
    obj = _first_json(stdout)
    if isinstance(obj, dict):
        if "Error" in obj or "message" in obj:
            raise failure(str(obj.get("Error", obj.get("message"))), where=where, returncode=returncode)
        if "Result" in obj and isinstance(obj["Result"], dict):  # Aptos CLI envelope
            r = obj["Result"]
            vm = str(r.get("vm_status", ""))
            if r.get("success") is False or (vm and "Executed successfully" not in vm):
                raise failure(vm or json.dumps(r), where=where) if find_abort(vm) else TransactionFailed(
                    "Fail", txn_hash=r.get("transaction_hash"), detail=vm)
            return TxnResult(r.get("transaction_hash"), "Success", vm, _int(r.get("gas_used")), [], _int(r.get("version")))
        if "status" in obj or "output" in obj:
            output = obj.get("output")  # found by fuzz/: any of these may be another JSON type
            move = output.get("Move") if isinstance(output, dict) else None
            move = move if isinstance(move, dict) else {}
            vm = str(move.get("vm_status", ""))
            status = obj.get("status")
            status = status if isinstance(status, str) else json.dumps(status)
            if status != "Success":
                abort = find_abort(vm)
                if abort is not None:
                    raise abort
                raise TransactionFailed(status, txn_hash=obj.get("hash"), detail=vm)
            return TxnResult(obj.get("hash"), status, vm, _int(move.get("gas_used")), _events(move.get("events")),
                             _int(obj.get("block_height") or obj.get("version")))
    if returncode != 0:
        raise failure(_error_line(stderr, stdout), where=where, returncode=returncode)
    raise BackendError(f"{where}: unreadable transaction output: {(stdout or stderr).strip()[:200] or 'nothing'}")


def _events(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else []


def _int(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None
