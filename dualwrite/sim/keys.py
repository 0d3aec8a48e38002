"""The simulator's accounts' Ed25519 keys: deterministic per chain, persisted in the state.

A chain gets a random 32-byte key seed the first time a key is needed (``meta`` key ``keys.seed``), so a
restarted node keeps its keys and two chains never share them. Each account's private key is
``sha3_256(b"dualwrite-sim:key:" || seed || address)``. Every simulator account is "rotated": its address is
fixed (the module addresses, the profiles' derived accounts) and its authentication key is its key's
(``sha3_256(public_key || 0x00)``), not its address, so signing as it needs ``--sender ADDRESS``.
``dualwrite sim key PROFILE --out FILE`` writes a profile's key file; the node then knows that account.
"""

from __future__ import annotations

import hashlib
import os

SEED_KEY = "keys.seed"
ISSUED_PREFIX = "keys.issued:"


def chain_seed(store) -> bytes:
    """The chain's key seed, made (once, whoever comes first) if the state has none yet."""
    seed = store.meta_get(SEED_KEY)
    if seed is None:
        with store.write():
            store.conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (SEED_KEY, os.urandom(32).hex()))
        seed = store.meta_get(SEED_KEY)
    return bytes.fromhex(seed)


def account_seed(seed: bytes, address: str) -> bytes:
    return hashlib.sha3_256(b"dualwrite-sim:key:" + seed + bytes.fromhex(address[2:])).digest()


def authentication_key(seed: bytes, address: str) -> str:
    """The account's authentication key on this chain (its key's ``sha3_256(public_key || 0x00)``)."""
    from dualwrite.txn import Signer

    return "0x" + Signer(account_seed(seed, address), source="simulator").auth_key.hex()


def issue(store, profile: str, address: str) -> bytes:
    """A profile's private key (32 bytes), the account marked as known to the node."""
    seed = chain_seed(store)
    with store.write():
        store.meta_set(ISSUED_PREFIX + address, profile)
    return account_seed(seed, address)


def issued(store, address: str) -> bool:
    return store.meta_get(ISSUED_PREFIX + address) is not None


__all__ = ["account_seed", "authentication_key", "chain_seed", "issue", "issued"]
