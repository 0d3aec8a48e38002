"""Evidence files: written whole or not at all, each carrying the blake3 digest of its content.

JSON evidence is an envelope ``{"dualwrite_evidence": 1, "kind", "created_at", "data",
"blake3"}`` whose ``blake3`` is the digest of the canonical JSON (sorted keys, compact,
UTF-8) of the envelope without that key. Other formats (JUnit XML) get a sidecar
``FILE.b3`` in ``b3sum`` format, so ``b3sum --check FILE.b3`` verifies them too.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import blake3

from dualwrite.errors import InputError

EVIDENCE_VERSION = 1
SIDECAR_SUFFIX = ".b3"


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def blake3_hex(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder and rename: never half a file."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def envelope(kind: str, data: Any) -> dict[str, Any]:
    doc = {
        "dualwrite_evidence": EVIDENCE_VERSION,
        "kind": kind,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": data,
    }
    doc["blake3"] = blake3_hex(canonical_json(doc))
    return doc


def write_json_evidence(path: Path, kind: str, data: Any) -> str:
    """Write a JSON evidence file; returns its blake3 digest."""
    doc = envelope(kind, data)
    atomic_write(Path(path), json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
    return doc["blake3"]


def write_evidence_with_sidecar(path: Path, content: bytes) -> str:
    """Write a non-JSON evidence file and its ``.b3`` sidecar; returns the digest."""
    path = Path(path)
    digest = blake3_hex(content)
    atomic_write(path, content)
    atomic_write(path.with_name(path.name + SIDECAR_SUFFIX), f"{digest}  {path.name}\n".encode())
    return digest


@dataclass(frozen=True)
class EvidenceCheck:
    path: str
    kind: str
    recorded: str
    actual: str

    @property
    def ok(self) -> bool:
        return self.recorded == self.actual


def check_evidence(path: Path) -> EvidenceCheck:
    """Recompute a file's digest and compare it with the one it (or its sidecar) records."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if sidecar.exists():
        text = sidecar.read_text(encoding="utf-8", errors="replace").split()
        if not text:
            raise InputError(f"{sidecar}: empty digest file")
        return EvidenceCheck(str(path), "sidecar", text[0].lower(), blake3_hex(raw))
    try:
        doc = json.loads(raw)
    except RecursionError:  # found by fuzz/
        raise InputError(f"{path}: not a JSON evidence file (nested too deep) and no {sidecar.name} beside it") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a JSON evidence file and no {sidecar.name} beside it ({e})") from None
    if not isinstance(doc, dict) or "blake3" not in doc or "dualwrite_evidence" not in doc:
        raise InputError(f"{path}: no dualwrite evidence envelope (keys dualwrite_evidence, blake3)")
    recorded = str(doc.pop("blake3")).lower()
    return EvidenceCheck(str(path), str(doc.get("kind", "?")), recorded, blake3_hex(canonical_json(doc)))
