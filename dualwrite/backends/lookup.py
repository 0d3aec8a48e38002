"""Looking a transaction up on the RPC node by hash, for a run whose outcome the CLI lost.

``GET rpc/v3/transactions/{hash}`` (supra-cli.md, "RPC node") through the RPC path's own
client (its headers, its URL redaction), polled until the node reports a final status or the
window closes. Read-only; never submits anything.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dualwrite.errors import BackendError, BackendUnavailable

FINAL = ("Success", "Fail", "Invalid")
_pause = threading.Event()  # never set: wait(t) is an interruptible pause between polls


def transaction_by_hash(rpc_url: str, headers: tuple[str, ...], txn_hash: str,
                        window: float) -> tuple[dict[str, Any] | None, str]:
    """The node's transaction JSON once its status is final, else ``(None, why not)`` after *window* seconds."""
    from dualwrite.backends.rpc import MAX_BYTES, RpcClient, parse_headers

    per_request = max(1.0, min(window, 10.0))
    client = RpcClient(rpc_url, headers=parse_headers(headers), timeout=per_request, retries=0,
                       call_timeout=per_request)
    deadline = time.monotonic() + window
    pause = 0.2
    try:
        while True:
            try:
                r = client.request("GET", f"rpc/v3/transactions/{txn_hash}", what=f"transaction {txn_hash}",
                                   limit=MAX_BYTES["transaction"])
            except BackendUnavailable as e:
                return None, str(e)  # nobody answers: no point polling
            except BackendError as e:
                why = str(e)
            else:
                body: Any = None
                if r.status_code == 200:
                    try:
                        body = r.json()
                    except ValueError:
                        body = None
                if isinstance(body, dict) and body.get("status") in FINAL:
                    return body, ""
                status = body.get("status") if isinstance(body, dict) else None
                why = f"status {status} (not final)" if status else f"HTTP {r.status_code}"
            left = deadline - time.monotonic()
            if left <= 0:
                return None, f"{why} after {window:g}s"
            _pause.wait(min(pause, left))
            pause = min(pause * 2, 2.0)
    finally:
        client.close()
