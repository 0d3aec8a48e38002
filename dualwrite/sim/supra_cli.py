"""``dualwrite-supra``: the Supra CLI's ``move tool run|view`` grammar and output, over the simulator.

Installed as ``supra`` (a symlink or copy) it stands in for the real v9 CLI: views print
``{"result": [...]}`` (a node-side failure prints ``{"message": ...}`` and exits 0, as
the node's body does); runs print the transaction JSON (``account: ...`` on stderr);
failures print ``Error: ...`` on stderr and exit 1; grammar errors exit 2, as clap does.

The state file: ``$DUALWRITE_STATE``, else ``$SUPRA_HOME/dualwrite-sim.sqlite``, else the
per-user default. ``DUALWRITE_SUPRA_ABORT_STYLE`` picks the abort shape (``dualwrite.sim.abort_styles``):
``node`` (default: a view abort as nodes v11.7+ say it, ``Failed to execute view function: ABORTED
with sub status <decimal> at location Module 0x…::<module>``), ``node-v11.3``, ``named``, ``code``,
``abort-code``, ``vmerror``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn

from dualwrite import __version__
from dualwrite.errors import DualwriteError, InputError, MoveAbort, TransactionFailed
from dualwrite.sim.abort_styles import run_abort_message, style_from_env, view_abort_message

SUPRA_VERSION = f"supra 9.0.0 (dualwrite-supra {__version__}, embedded simulator)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message}\n\nFor more information, try '--help'.\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    root = _Parser(prog="supra", description="Supra CLI (dualwrite embedded simulator)")
    root.add_argument("--version", "-V", action="version", version=SUPRA_VERSION)
    top = root.add_subparsers(dest="group", required=True, parser_class=_Parser)
    move = top.add_parser("move", help="Move tool")
    move_sub = move.add_subparsers(dest="move_cmd", required=True, parser_class=_Parser)
    tool = move_sub.add_parser("tool", help="Move tool commands")
    tool_sub = tool.add_subparsers(dest="tool_cmd", required=True, parser_class=_Parser)
    for name in ("run", "view"):
        p = tool_sub.add_parser(name)
        p.add_argument("--function-id", required=True)
        p.add_argument("--args", nargs="*", action="extend", default=[])
        p.add_argument("--type-args", nargs="*", action="extend", default=[])
        p.add_argument("--profile", default="default")
        p.add_argument("--rpc-url", "--url", dest="rpc_url")
        p.add_argument("--config")
        if name == "run":
            p.add_argument("--gas-unit-price", type=int)
            p.add_argument("--max-gas", type=int)
            p.add_argument("--expiration-secs", type=int)
            p.add_argument("--assume-yes", "--accept-defaults", dest="assume_yes", action="store_true")
    profile = top.add_parser("profile", help="Profiles (accounts) of the simulator")
    prof_sub = profile.add_subparsers(dest="profile_cmd", required=True, parser_class=_Parser)
    prof_sub.add_parser("list")
    return root


def _fail(text: str) -> int:
    sys.stderr.write(f"Error: {text}\n")
    return 1


def _confirm_gas() -> bool:
    """What v9 does without both gas flags: simulate, then ask on the terminal."""
    sys.stderr.write("Do you want to submit a transaction for a range of [500 - 750] Octas "
                     "at a gas unit price of 100 Octas? [yes/no] >\n")
    sys.stderr.flush()
    if sys.stdin is None:  # descriptor 0 closed: nobody can answer, so nothing is submitted
        return False
    try:
        answer = sys.stdin.readline().strip().lower()
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return answer in ("yes", "y")


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    code = run(sys.argv[1:] if argv is None else argv)
    sys.exit(code)


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from dualwrite.sim.chain import Chain, OutOfGas

    try:
        style = style_from_env()
        chain = Chain(lottery_multi=os.environ.get("DUALWRITE_SIM_LOTTERY_MULTI_ADDRESS") or None,
                      lottery=os.environ.get("DUALWRITE_SIM_LOTTERY_ADDRESS") or None, create=False)
    except DualwriteError as e:
        return _fail(str(e))
    try:
        if args.group == "profile":
            _print_json({"Result": chain.addresses.profiles()})
            return 0
        if args.config and not os.path.exists(args.config):
            return _fail(f"Unable to read config file {args.config}: No such file or directory")
        if args.tool_cmd == "view":
            try:
                result = chain.view(args.function_id, args.args, type_args=args.type_args)
            except MoveAbort as e:
                _print_json({"message": view_abort_message(e, style)})
                return 0
            _print_json({"result": result})
            return 0
        sys.stderr.write(f"account: {chain.addresses.account(args.profile)}\n")
        try:
            if (args.gas_unit_price is None or args.max_gas is None) and not args.assume_yes:
                # v9 simulates first (an abort is reported as such), then asks on the terminal
                chain.simulate(args.function_id, args.args, profile=args.profile, type_args=args.type_args)
                if not _confirm_gas():
                    return _fail("Aborted command")
            txn = chain.run(args.function_id, args.args, profile=args.profile, type_args=args.type_args,
                            max_gas=args.max_gas, gas_unit_price=args.gas_unit_price)
        except MoveAbort as e:
            return _fail(run_abort_message(e, style))
        except OutOfGas as e:
            _print_json(e.txn)
            return 0
        _print_json(txn)
        return 0
    except (InputError, TransactionFailed) as e:
        return _fail(str(e))
    except DualwriteError as e:
        return _fail(str(e))
    finally:
        chain.close()


if __name__ == "__main__":  # pragma: no cover
    main()
