"""Reading what the Supra CLI and the RPC node print, in every form supra-cli.md lists, into results or typed errors.

Forms: ``{"result": ...}`` / ``{"Result": ...}``; ``{"message": ...}`` (a node error, even
with exit 0); ``{"Error": ...}`` and the ``General: {...}`` wrapper; ``Error: ...`` on stderr
(a whole block, possibly several lines); transaction JSON whose ``status`` is not
``Success``; JSON after other text (gas prompt, ``[debug]`` lines, v6 ``account:``/``URL:``
lines); and the abort shapes ``find_abort`` knows. ``find_abort`` is the one reader of abort
text: the CLI path and the RPC path (HTTP error bodies) both call it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dualwrite.backends.base import TxnResult
from dualwrite.errors import (
    BackendError,
    InputError,
    MoveAbort,
    SubmissionUnknown,
    TransactionFailed,
    TransientBackendError,
)

_CODE = r"0x[0-9a-fA-F]+|\d+"
# "Move abort in 0x…::legacy_bridge: E_HISTORY_MISMATCH(0x1b02): text" (the text may hold parentheses)
ABORT_NAMED = re.compile(
    rf"Move abort in (?P<module>\S+?): (?P<name>[A-Za-z_][A-Za-z0-9_]*)\((?P<code>{_CODE})\)(?P<sep>:[ \t]*)?")
# "Move abort in 0x…::legacy_bridge: 0x1b02", "… : 257", newer Aptos "… : abort code 117"
ABORT_CODE = re.compile(rf"Move abort in (?P<module>\S+?): (?:abort code:? )?(?P<code>{_CODE})\b")
# the Debug form; the fields after sub_status vary, so location/message are read by a scanner
ABORT_VMERROR = re.compile(rf"major_status:\s*ABORTED,\s*sub_status:\s*Some\((?P<code>{_CODE})\)")
# a failing view on nodes v11.3.6+: "… ABORTED with sub status 6914 at location Module 0x…::legacy_bridge …"
ABORT_SUB_STATUS = re.compile(rf"\bABORTED with sub status:? (?P<code>{_CODE})\b")
_LOC_MODULE_ID = re.compile(
    r"\s*(?:Module\s*)?\(?\s*ModuleId\s*\{\s*address:\s*(?P<addr>[^,\s]+),\s*name:\s*Identifier\(\"(?P<mod>\w+)\"\)")
_LOC_PLAIN = re.compile(r"\s*(?:Module\s+)?(?P<addr>[^\s:()]+)::(?P<mod>[A-Za-z_]\w*)")

TRANSIENT = re.compile(
    r"(is not running|container .* not running|connection refused|timed? ?out|temporarily unavailable|"
    r"service unavailable|try again|too many requests|database is locked|no such container.*restarting)",
    re.IGNORECASE,
)
# a run that reached the node may still commit: never a plain retry
MAYBE_SUBMITTED = re.compile(r"might still succeed|wait_for_transaction|transaction (?:was |has been )?submitted|"
                             r"waiting for (?:the )?transaction", re.IGNORECASE)
INVALID_ARGS = re.compile(r"Invalid arguments|Unable to parse|invalid value", re.IGNORECASE)
TXN_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_WS_TAIL = re.compile(r"\s*\Z")


def _int_code(code: str) -> int:
    return int(code, 16) if code.lower().startswith("0x") else int(code)


def _address(addr: str) -> str:
    """``0x`` in front, as the other forms print it (the Debug form prints bare hex)."""
    return addr if addr.startswith("0x") or not re.fullmatch(r"[0-9a-fA-F]+", addr) else "0x" + addr


def _detail(text: str, start: int) -> str:
    """The abort's text from *start*: to the end of the line, or to a ``)`` or ``"`` it did not open itself."""
    depth = 0
    quotes = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in "\r\n":
            break
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                break
            depth -= 1
        elif ch == '"':
            closes_outer = quotes % 2 == 0 and (i + 1 == len(text) or text[i + 1] in ",}])\r\n")
            if closes_outer:  # the end of the string this abort was printed in, not a quote of its own
                break
            quotes += 1
        i += 1
    return text[start:i].strip().rstrip("\\").strip()


def _vmerror_fields(text: str, start: int) -> tuple[str, str]:
    """Module and message of a ``VMError { … }`` whose ``sub_status`` ends at *start*.

    Walks the rest of the struct at its own nesting level (strings skipped), so whatever
    fields stand between ``sub_status`` and ``location`` the module is still found."""
    depth = 0
    i = start
    module = message = ""
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < len(text) and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if ch in "{([":
            depth += 1
        elif ch in "})]":
            if depth == 0:
                break  # the end of the VMError
            depth -= 1
        elif depth == 0 and text.startswith("location:", i):
            m = _LOC_MODULE_ID.match(text, i + len("location:"))
            if m:
                module = f"{_address(m['addr'])}::{m['mod']}"
        elif depth == 0 and text.startswith("message:", i):
            m = re.compile(r'\s*Some\("((?:[^"\\]|\\.)*)"\)').match(text, i + len("message:"))
            if m:
                message = re.sub(r"\\(.)", r"\1", m.group(1))
        i += 1
    return module, message


def _abort_at(m: re.Match, text: str) -> MoveAbort:
    pattern = m.re
    code = _int_code(m["code"])
    if pattern is ABORT_NAMED:
        detail = _detail(text, m.end()) if m["sep"] else ""
        return MoveAbort(code, module=m["module"], name=m["name"], detail=detail)
    if pattern is ABORT_CODE:
        return MoveAbort(code, module=m["module"])
    if pattern is ABORT_VMERROR:
        module, message = _vmerror_fields(text, m.end())
        return MoveAbort(code, module=module, detail=message)
    # ABORT_SUB_STATUS: "at location Module 0x…::m" (v11.7) or nothing (v11.3.6–v11.6)
    module = ""
    rest = text[m.end():]
    loc = re.match(r"\s*at location", rest)
    if loc:
        lm = _LOC_MODULE_ID.match(rest, loc.end()) or _LOC_PLAIN.match(rest, loc.end())
        if lm:
            module = f"{_address(lm['addr'])}::{lm['mod']}"
    return MoveAbort(code, module=module)


def find_abort(text: str) -> MoveAbort | None:
    """The Move abort a piece of CLI output or node error body reports, in any shape of supra-cli.md.

    Shapes: ``Move abort in M: NAME(0x..): text``, ``Move abort in M: 0x..`` / decimal /
    ``abort code N``, the ``VMError { major_status: ABORTED, sub_status: Some(N), … }`` Debug
    form, and the view form ``ABORTED with sub status N [at location Module A::m]``. The
    earliest in the text wins; None when there is no abort (``BAD_MAGIC`` and other VM errors
    are not aborts)."""
    if not text:
        return None
    if text.lstrip()[:1] in ("{", "["):  # a whole JSON body (an HTTP error body): read its strings unescaped
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            doc = None
        for s in _strings(doc):
            if (a := find_abort(s)) is not None:
                return a
    found = [m for p in (ABORT_NAMED, ABORT_CODE, ABORT_VMERROR, ABORT_SUB_STATUS) if (m := p.search(text))]
    if not found:
        return None
    # earliest first; at the same place the named form (it carries the most)
    m = min(found, key=lambda x: (x.start(), x.re is not ABORT_NAMED))
    return _abort_at(m, text)


def _strings(doc: Any):
    """Every string in a decoded JSON document, in document order (iterative: any depth json.loads accepted)."""
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))


MAX_JSON_FAILURES = 256
_JSON_START = re.compile(r'\{\s*["}]|\[\s*[-0-9"\[{\]tfn]')


def first_json(text: str) -> Any:
    """The JSON document in *text*: the first position that decodes to an object or a list.

    The CLI may print other text first (the Aptos gas prompt on stdout, ``[debug]`` lines,
    v6's ``account:``/``URL:``/``Chain_id = 6`` lines). A document that runs to the end of
    the text is preferred over a fragment (``[1]`` in a debug line) that does not."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: nesting deeper than json's stack
        pass
    decoder = json.JSONDecoder()
    first: Any = None
    i = 0
    # bounded work (found as a low exec/s in fuzz/: 60 KB of "[[[…x" or of "[debug]" lines took seconds, as
    # every failed decode also counts the lines before it): a candidate must look like the start of a
    # document (so "[debug]" is skipped for the price of a regex match), and after MAX_JSON_FAILURES
    # candidates that look like one and do not decode, the search stops.
    failures = 0
    brace, bracket = text.find("{"), text.find("[")  # the next of each at or after i, kept up to date
    while failures < MAX_JSON_FAILURES:
        if 0 <= brace < i:
            brace = text.find("{", i)
        if 0 <= bracket < i:
            bracket = text.find("[", i)
        starts = [p for p in (brace, bracket) if p >= 0]
        if not starts:
            return first
        pos = min(starts)
        if not _JSON_START.match(text, pos):
            i = pos + 1
            continue
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            failures += 1
            i = pos + 1
            continue
        except RecursionError:  # nested deeper than json can read: nothing after this point is readable either
            return first
        if isinstance(obj, (dict, list)):
            if _WS_TAIL.match(text, end):
                return obj
            if first is None:
                first = obj
            i = end  # what lies inside this document is not another one
        else:
            i = pos + 1
    return first


def error_text(stderr: str, stdout: str = "") -> str:
    """The CLI's error, whole and on one line: the ``Error:`` block to its end, a ``General: {…}`` read as JSON."""
    lines = stderr.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("Error:")), None)
    if start is None:
        lines = stdout.splitlines()
        start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("Error:")), None)
    if start is None:
        rest = [ln.strip() for ln in (stderr or stdout).splitlines()
                if ln.strip() and not ln.startswith("account:")]
        return rest[-1] if rest else "no output"
    block = "\n".join(lines[start:]).strip()[len("Error:"):].strip()
    wrapped = re.match(r"General:\s*(?=[\[{])", block)
    if wrapped:
        obj = first_json(block[wrapped.end():])
        if isinstance(obj, dict):
            for key in ("Error", "message", "error"):
                if isinstance(obj.get(key), str):
                    return " ".join(obj[key].split())
    return " ".join(block.split())




def failure(text: str, *, where: str, returncode: int | None = None, run: bool = False) -> Exception:
    """Classify a failure: abort (exit 4), bad arguments (2), transient or other backend failure (3).

    For a ``run``, text saying the transaction went out and its outcome is not known
    (``Timeout … wait_for_transaction … might still succeed``) is ``SubmissionUnknown``: it
    may still commit, so it is looked up, never simply retried."""
    abort = find_abort(text)
    if abort is not None:
        return abort
    if INVALID_ARGS.search(text):
        return InputError(f"{where}: the CLI rejected the arguments: {text}")
    m = re.search(r"status(?::|\s+(?:was|is|of))?\s*[\"'`]?(Fail|Invalid|PendingAfterExecution|Pending)\b", text)
    if m:
        h = TXN_HASH.search(text)
        return TransactionFailed(m[1], txn_hash=h[0] if h else None, detail=text)
    suffix = f" (exit {returncode})" if returncode not in (None, 0) else ""
    if run and MAYBE_SUBMITTED.search(text):
        h = TXN_HASH.search(text)
        return SubmissionUnknown(f"{where}: {text}{suffix}", txn_hash=h[0] if h else None)
    cls = TransientBackendError if TRANSIENT.search(text) else BackendError
    return cls(f"{where}: {text}{suffix}")


def parse_view(stdout: str, stderr: str, returncode: int, *, where: str) -> list[Any]:
    obj = first_json(stdout)
    if isinstance(obj, dict):
        for key in ("result", "Result"):
            if key in obj:
                value = obj[key]
                return value if isinstance(value, list) else [value]
        for key in ("message", "Error", "error"):
            if key in obj:
                raise failure(_text(obj[key]), where=where, returncode=returncode)
    if returncode != 0:
        raise failure(error_text(stderr, stdout), where=where, returncode=returncode)
    raise BackendError(f"{where}: unreadable view output: {_excerpt(stdout or stderr)}")


def parse_run(stdout: str, stderr: str, returncode: int, *, where: str) -> TxnResult:
    obj = first_json(stdout)
    if isinstance(obj, dict):
        if "Error" in obj or "message" in obj:
            raise failure(_text(obj.get("Error", obj.get("message"))), where=where, returncode=returncode, run=True)
        if "Result" in obj and isinstance(obj["Result"], dict):  # Aptos CLI envelope
            r = obj["Result"]
            vm = str(r.get("vm_status", ""))
            if r.get("success") is False or (vm and "Executed successfully" not in vm):
                raise failure(vm or json.dumps(r), where=where) if find_abort(vm) else TransactionFailed(
                    "Fail", txn_hash=r.get("transaction_hash"), detail=vm)
            return TxnResult(r.get("transaction_hash"), "Success", vm, _int(r.get("gas_used")), [],
                             _int(r.get("version")), _block_height(r))
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
            version = obj.get("version") if obj.get("version") is not None else obj.get("block_height")
            return TxnResult(obj.get("hash"), status, vm, _int(move.get("gas_used")), _events(move.get("events")),
                             _int(version), _block_height(obj))
    if returncode != 0:
        raise failure(error_text(stderr, stdout), where=where, returncode=returncode, run=True)
    raise BackendError(f"{where}: unreadable transaction output: {_excerpt(stdout or stderr)}")


def _excerpt(text: str) -> str:
    """The start of what was printed, on one line."""
    flat = " ".join(text.split())
    return (flat[:200] + " …" if len(flat) > 200 else flat) or "nothing"


def _events(v: Any) -> list[Any]:
    return list(v) if isinstance(v, list) else []


def _block_height(obj: dict[str, Any]) -> int | None:
    """``block_header.height`` of the run JSON (the simulator's older ``block_height`` too)."""
    header = obj.get("block_header")
    if isinstance(header, dict) and header.get("height") is not None:
        return _int(header["height"])
    return _int(obj.get("block_height"))


def _text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _int(v: Any) -> int | None:
    try:
        return None if v is None else int(v)
    except (TypeError, ValueError):
        return None
