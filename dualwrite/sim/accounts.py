"""Accounts of the embedded chain: module addresses, profiles, function ids.

As in the Supra (Aptos) CLI, a profile name may stand where an address goes in a
function id (``lottery_multi::legacy_bridge::set_expected_hash``): the name resolves
to that profile's account. ``default`` and ``lottery_multi`` are the lottery_multi
admin, ``lottery`` the lottery admin; any other name is a distinct non-admin account
derived from the name, so authorisation failures can be exercised.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dualwrite.errors import InputError

DEFAULT_LOTTERY_MULTI = "0x" + hashlib.sha3_256(b"dualwrite-sim:lottery_multi").hexdigest()
DEFAULT_LOTTERY = "0x" + hashlib.sha3_256(b"dualwrite-sim:lottery").hexdigest()

#: which named address holds each module (onchain.md): the one table the chain and the backends share
MODULE_HOME = {"legacy_bridge": "lottery_multi", "history": "lottery_multi", "history_bridge": "lottery"}

ADMIN_PROFILES = {"default": "lottery_multi", "lottery_multi": "lottery_multi", "lottery": "lottery"}
HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{1,64}$")
PROFILE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def normalize_address(text: str, where: str = "address") -> str:
    """``0x`` + 64 lowercase hex digits (short forms are left-padded, as Move does)."""
    if not HEX_ADDRESS.match(text):
        raise InputError(f"{where}: {text!r} is not a hex account address")
    return "0x" + text[2:].lower().rjust(64, "0")


def short_address(addr: str) -> str:
    """The Aptos display form: leading zeros stripped."""
    return "0x" + (addr[2:].lstrip("0") or "0")


def derived_account(profile: str) -> str:
    return "0x" + hashlib.sha3_256(b"dualwrite-sim:profile:" + profile.encode()).hexdigest()


@dataclass(frozen=True)
class Addresses:
    lottery_multi: str = DEFAULT_LOTTERY_MULTI
    lottery: str = DEFAULT_LOTTERY

    def account(self, profile: str) -> str:
        role = ADMIN_PROFILES.get(profile)
        if role == "lottery_multi":
            return self.lottery_multi
        if role == "lottery":
            return self.lottery
        return derived_account(profile)

    def resolve(self, addr_or_profile: str, where: str = "address") -> str:
        if addr_or_profile.startswith("0x"):
            return normalize_address(addr_or_profile, where)
        if PROFILE_NAME.match(addr_or_profile):
            return self.account(addr_or_profile)
        raise InputError(f"{where}: {addr_or_profile!r} is neither an address nor a profile name")

    def profiles(self, extra: tuple[str, ...] = ("operator",)) -> dict[str, str]:
        names = ["default", "lottery_multi", "lottery", *extra]
        return {n: self.account(n) for n in names}
