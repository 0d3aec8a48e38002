"""The emulated RPC node the benchmarks read from: ``dualwrite sim serve`` in its own process."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple

from dualwrite.backends import ModuleAddresses
from dualwrite.sim.chain import Chain


class Node(NamedTuple):
    url: str
    addresses: ModuleAddresses
    pid: int


@contextmanager
def serve(state: Path) -> Iterator[Node]:
    """Start ``sim serve`` on ``state``, yield its URL and module addresses, stop it on the way out."""
    with Chain(state) as c:
        addrs = ModuleAddresses(c.addresses.lottery_multi, c.addresses.lottery)
    p = subprocess.Popen([sys.executable, "-m", "dualwrite", "sim", "serve", "--state", str(state)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = p.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise SystemExit(f"sim serve did not start (exit {p.poll()})")
        yield Node(url, addrs, p.pid)
    finally:
        p.terminate()
        p.wait(timeout=30)
