"""Looking a transaction up on the RPC node by hash, for a run whose outcome the CLI lost.

``GET {rpc_url}/rpc/v3/transactions/{hash}`` (supra-cli.md, "RPC node"), polled until the node
reports a final status or the window closes. Read-only; never submits anything.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

FINAL = ("Success", "Fail", "Invalid")
_pause = threading.Event()  # never set: wait(t) is an interruptible pause between polls


def transaction_by_hash(rpc_url: str, txn_hash: str, window: float) -> tuple[dict[str, Any] | None, str]:
    """The node's transaction JSON once its status is final, else ``(None, why not)`` after *window* seconds."""
    url = f"{rpc_url.rstrip('/')}/rpc/v3/transactions/{txn_hash}"
    deadline = time.monotonic() + window
    pause = 0.2
    why = "no answer"
    with httpx.Client(timeout=max(1.0, min(window, 10.0)), follow_redirects=False) as client:
        while True:
            try:
                r = client.get(url)
            except httpx.HTTPError as e:
                why = f"{type(e).__name__}: {e}"
            else:
                body: Any = None
                if r.status_code == 200:
                    try:
                        body = r.json()
                    except ValueError:
                        why = "HTTP 200 with a body that is not JSON"
                if isinstance(body, dict) and body.get("status") in FINAL:
                    return body, ""
                if r.status_code == 200:
                    why = f"status {body.get('status') if isinstance(body, dict) else '?'!s} (not final)"
                else:
                    why = f"HTTP {r.status_code}"
            left = deadline - time.monotonic()
            if left <= 0:
                return None, f"{why} after {window:g}s"
            _pause.wait(min(pause, left))
            pause = min(pause * 2, 2.0)
