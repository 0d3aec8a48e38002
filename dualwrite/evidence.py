"""Evidence files: written whole or not at all, each carrying the blake3 digest of its content.

JSON evidence is an envelope ``{"dualwrite_evidence": 1, "kind", "created_at", "data",
"blake3"}`` whose ``blake3`` is the digest of the canonical JSON (sorted keys, compact,
UTF-8) of the envelope without that key. Other formats (JUnit XML) get a sidecar
``FILE.b3`` in ``b3sum`` format, so ``b3sum --check FILE.b3`` verifies them too.

A plain blake3 digest shows accidents (a truncated copy, an edited byte), not tampering: anyone
who changes the file can recompute it. With ``DUALWRITE_EVIDENCE_KEY`` (64 hex digits: a
32-byte key) set, digests are blake3 *keyed* hashes instead — the envelope says
``"digest": "blake3-keyed"``, the sidecar line starts ``blake3-keyed:`` — and ``check``
then accepts only keyed digests. The key is never printed or written.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import blake3

from dualwrite.errors import InputError

EVIDENCE_VERSION = 1
SIDECAR_SUFFIX = ".b3"
KEY_ENV = "DUALWRITE_EVIDENCE_KEY"
KEYED = "blake3-keyed"
#: the largest JSON evidence file checked (a verify report of 200,000 lotteries is ~150 MB)
MAX_JSON_EVIDENCE_BYTES = 256 * 1024 * 1024
#: a sidecar holds one line: digest, two spaces, a file name
MAX_SIDECAR_BYTES = 64 * 1024


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def evidence_key() -> bytes | None:
    """The key of keyed mode, from the environment; errors name the variable, never its value."""
    text = os.environ.get(KEY_ENV)
    if not text:
        return None
    t = text.strip()
    if t.lower().startswith("0x"):
        t = t[2:]
    if len(t) != 64 or any(c not in "0123456789abcdefABCDEF" for c in t):
        raise InputError(f"{KEY_ENV}: expected 64 hex digits (a 32-byte key); the value is not shown")
    return bytes.fromhex(t)


def _hasher(key: bytes | None):
    return blake3.blake3(key=key) if key is not None else blake3.blake3()


def blake3_hex(data: bytes, key: bytes | None = None) -> str:
    h = _hasher(key)
    h.update(data)
    return h.hexdigest()


def current_umask() -> int:
    """The process's umask, read without changing it where the kernel says it (Linux ≥ 4.7)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # elsewhere: set and restore; for that instant a stricter mask, never a looser one
    os.umask(mask)
    return mask


def _temp_beside(path: Path, private: bool) -> tuple[int, str]:
    """A temporary file in ``path``'s folder (so the rename is atomic), with the mode the final file should
    have: what the umask gives a new file (0666 & ~umask), as ``open`` would, or 0600 when it holds a secret."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)  # created 0600
    if not private:
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
        except OSError:
            os.close(fd)
            Path(tmp).unlink(missing_ok=True)
            raise
    return fd, tmp


def atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write via a temporary file in the same folder and rename: never half a file.

    The file gets the mode the umask gives a new file (a report, a plan: others may read them as they
    may read anything else this user writes); ``private`` makes it 0600, for a file holding a secret.
    """
    path = Path(path)
    try:
        fd, tmp = _temp_beside(path, private)
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
    key = evidence_key()
    doc = {
        "dualwrite_evidence": EVIDENCE_VERSION,
        "kind": kind,
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "data": data,
    }
    if key is not None:
        doc["digest"] = KEYED  # covered by the digest: stripping it breaks the check
    doc["blake3"] = blake3_hex(canonical_json(doc), key)
    return doc


def write_json_evidence(path: Path, kind: str, data: Any) -> str:
    """Write a JSON evidence file; returns its blake3 digest."""
    doc = envelope(kind, data)
    atomic_write(Path(path), json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8") + b"\n")
    return doc["blake3"]


def write_evidence_with_sidecar(path: Path, content: bytes) -> str:
    """Write a non-JSON evidence file and its ``.b3`` sidecar, both or neither; returns the digest."""
    path = Path(path)
    key = evidence_key()
    digest = blake3_hex(content, key)
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    line = f"{KEYED + ':' if key is not None else ''}{digest}  {path.name}\n".encode()
    for p in (path, sidecar):
        if p.is_dir():
            raise InputError(f"cannot write {p}: is a directory (nothing written)")
    temps: list[str] = []
    try:
        for data in (content, line):
            try:
                fd, tmp = _temp_beside(path, private=False)
            except OSError as e:
                raise InputError(f"cannot write {path}: {e.strerror} (nothing written)") from None
            temps.append(tmp)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        try:
            os.replace(temps[1], sidecar)
        except OSError as e:
            raise InputError(f"cannot write {sidecar}: {e.strerror} (nothing written)") from None
        try:
            os.replace(temps[0], path)
        except OSError as e:
            sidecar.unlink(missing_ok=True)
            raise InputError(f"cannot write {path}: {e.strerror} (nothing written)") from None
    finally:
        for t in temps:
            Path(t).unlink(missing_ok=True)
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


def _open_regular(path: Path, what: str):
    try:
        f = open(path, "rb")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not {what}") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        f.close()
        raise InputError(f"{path}: not a regular file, so not {what}")
    return f, st.st_size


def check_evidence(path: Path) -> EvidenceCheck:
    """Recompute a file's digest and compare it with the one it (or its sidecar) records.

    A sidecar'd file is hashed as a stream (any size); a JSON envelope is read whole, so it is
    bounded by ``MAX_JSON_EVIDENCE_BYTES``.
    """
    path = Path(path)
    key = evidence_key()
    f, size = _open_regular(path, "an evidence file")
    with f:
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
        if sidecar.exists() or sidecar.is_symlink():
            sf, ssize = _open_regular(sidecar, "a digest file")
            with sf:
                text = sf.read(MAX_SIDECAR_BYTES + 1)
            if len(text) > MAX_SIDECAR_BYTES:
                raise InputError(f"{sidecar}: over {MAX_SIDECAR_BYTES} bytes, not a digest file")
            words = text.decode("utf-8", "replace").split()
            if not words:
                raise InputError(f"{sidecar}: empty digest file")
            recorded = words[0].lower()
            keyed = recorded.startswith(KEYED + ":")
            _keyed_mode_matches(keyed, key, sidecar)
            h = _hasher(key if keyed else None)
            while chunk := f.read(1 << 20):
                h.update(chunk)
            return EvidenceCheck(str(path), KEYED if keyed else "sidecar",
                                 recorded.split(":", 1)[1] if keyed else recorded, h.hexdigest())
        if size > MAX_JSON_EVIDENCE_BYTES:
            raise InputError(f"{path}: {size} bytes, over the {MAX_JSON_EVIDENCE_BYTES // (1024 * 1024)} MiB limit "
                             f"for a JSON evidence file, and no {sidecar.name} beside it")
        raw = f.read(MAX_JSON_EVIDENCE_BYTES + 1)
    from dualwrite.inputs import json_loads_strict

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not a JSON evidence file (not UTF-8 at byte offset {e.start}) and no "
                         f"{sidecar.name} beside it") from None
    try:
        doc = json_loads_strict(text, str(path))
    except InputError as e:
        raise InputError(f"{e.message} (not a JSON evidence file, and no {sidecar.name} beside it)") from None
    if not isinstance(doc, dict) or "blake3" not in doc or "dualwrite_evidence" not in doc:
        raise InputError(f"{path}: no dualwrite evidence envelope (keys dualwrite_evidence, blake3)")
    recorded = str(doc.pop("blake3")).lower()
    keyed = doc.get("digest") == KEYED
    _keyed_mode_matches(keyed, key, path)
    return EvidenceCheck(str(path), str(doc.get("kind", "?")) + (" (keyed)" if keyed else ""), recorded,
                         blake3_hex(canonical_json(doc), key if keyed else None))


def _keyed_mode_matches(keyed: bool, key: bytes | None, where: Path) -> None:
    if keyed and key is None:
        raise InputError(f"{where}: a keyed digest ({KEYED}): set {KEY_ENV} to the key it was made with to check it")
    if key is not None and not keyed:
        raise InputError(f"{where}: an unkeyed digest, but {KEY_ENV} is set: with a key, only keyed digests "
                         "count as evidence (an unkeyed one can be recomputed by whoever changed the file)")
