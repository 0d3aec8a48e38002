"""Root of the ``dualwrite`` command: loads subcommands lazily, maps typed errors to one line and an exit code.

Start-up is paid on every call (``dual_write_control.sh``, shell loops, CI steps), so this module
imports click and ``dualwrite.errors`` only: each command's module is imported when that command
runs, and ``--help`` lists every command from ``COMMANDS`` without importing any of them.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from dualwrite.cli.options import group_options, remember_group_options
from dualwrite.errors import DualwriteError

INTERNAL_ERROR = 70

#: Every top-level command: name -> ("module:attribute" of its click command, its short help).
#: Adding a command is one line here; tests/test_startup.py checks each entry loads, that the
#: short help is the command's own, and that ``--help`` lists them all.
COMMANDS: dict[str, tuple[str, str]] = {
    "hash": ("dualwrite.cli.codec_cmds:hash_cmd", "Expected hash (SHA3-256 of canonical BCS) of every summary in FILES."),
    "encode": ("dualwrite.cli.codec_cmds:encode_cmd", "Canonical BCS hex of each JSON value in FILE ('-' for stdin)."),
    "decode": ("dualwrite.cli.codec_cmds:decode_cmd",
               "Strictly decode BCS (hex text, a hex/.bcs FILE, or '-') into Move JSON."),
    "evidence": ("dualwrite.cli.codec_cmds:evidence_group", "Check the blake3 digests that dualwrite's evidence files carry."),
    "sim": ("dualwrite.cli.sim_cmds:sim_group", "The embedded simulator of legacy_bridge, history and history_bridge."),
    "init": ("dualwrite.cli.bridge_cmds:init_cmd", "legacy_bridge::init_dual_write (enabled, with the two abort flags)."),
    "update-flags": ("dualwrite.cli.bridge_cmds:update_flags_cmd", "legacy_bridge::update_flags."),
    "set": ("dualwrite.cli.bridge_cmds:set_cmd",
            "legacy_bridge::set_expected_hash for LOTTERY_ID: HASH, or the hash of --summary."),
    "clear": ("dualwrite.cli.bridge_cmds:clear_cmd",
              "legacy_bridge::clear_expected_hash (no event; a no-op when nothing is pending)."),
    "enable-mirror": ("dualwrite.cli.bridge_cmds:enable_mirror_cmd",
                      "legacy_bridge::enable_legacy_mirror (a no-op when already on)."),
    "disable-mirror": ("dualwrite.cli.bridge_cmds:disable_mirror_cmd",
                       "legacy_bridge::disable_legacy_mirror (before maintenance)."),
    "mirror": ("dualwrite.cli.bridge_cmds:mirror_cmd",
               "history::mirror_summary_admin: re-write the legacy copy from the archive."),
    "status": ("dualwrite.cli.bridge_cmds:status_cmd", "legacy_bridge::dual_write_status for LOTTERY_ID."),
    "flags": ("dualwrite.cli.bridge_cmds:flags_cmd", "legacy_bridge::dual_write_flags (plus whether the mirror is on)."),
    "pending": ("dualwrite.cli.bridge_cmds:pending_cmd", "legacy_bridge::pending_expected_hashes, in chain order."),
    "diff": ("dualwrite.cli.audit_cmds:diff_cmd",
             "Compare history and history_bridge for each lottery (ids or ranges like 10-20), field by field."),
    "verify": ("dualwrite.cli.audit_cmds:verify_cmd",
               "The CI gate: exit 0 only when every lottery's legacy copy is exactly its archived summary."),
    "heal": ("dualwrite.cli.audit_cmds:heal_cmd",
             "Repair the given lotteries (ids or ranges), or every failing one, and prove each repair."),
    "metrics": ("dualwrite.cli.monitor_cmds:metrics_cmd",
                "One check of every lottery, in the Prometheus text exposition format."),
    "monitor": ("dualwrite.cli.monitor_cmds:monitor_cmd",
                "The exporter: check every lottery every --interval, serve the last result to Prometheus."),
    "events": ("dualwrite.cli.events_cmds:events_cmd", "The dual-write and legacy events, oldest first (a table, or --json lines)."),
    "demo": ("dualwrite.cli.demo_cmds:demo_cmd",
             "Initialise, register expected hashes, finalise, watch them consumed; then the drift drill: finalise N "
             "lotteries, tamper five, verify fails naming them, heal, verify passes."),
    "cutover": ("dualwrite.cli.cutover_cmds:cutover_group",
                "Plan the expected hashes of many lotteries, register them resumably, watch them consumed."),
}


def load_command(name: str) -> click.Command:
    """Import the module of one ``COMMANDS`` entry and return its click command."""
    target, _ = COMMANDS[name]
    module_name, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module_name), attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"COMMANDS[{name!r}] = {target!r} is not a click command")
    return command


class DualwriteGroup(click.Group):
    """A group whose invocation turns library errors into the documented exit codes.

    Subcommands are loaded on first use, as click's documentation describes for a lazy group:
    ``list_commands`` and ``--help`` read ``COMMANDS``; ``get_command`` imports one module.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Every command with its short help, from the table: listing them imports none."""
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                cmd = self.commands[name]
                if cmd.hidden:
                    continue
                rows.append((name, cmd.get_short_help_str(formatter.width)))
            else:
                rows.append((name, COMMANDS[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Usage errors too get one line on stderr (click's own take three) and exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else (prog_name or "dualwrite")
            click.echo(f"{where}: usage error: {e.format_message()} (see --help)", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(f"dualwrite: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("dualwrite: aborted", err=True)
            sys.exit(1)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DualwriteError as e:
            click.echo(f"dualwrite: error: {e}", err=True)
            raise click.exceptions.Exit(int(e.exit_code)) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("dualwrite: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as e:  # a bug: say so in one line; the traceback only on request
            if os.environ.get("DUALWRITE_DEBUG"):
                raise
            click.echo(
                f"dualwrite: internal error: {type(e).__name__}: {e} (set DUALWRITE_DEBUG=1 for the traceback)",
                err=True,
            )
            raise click.exceptions.Exit(INTERNAL_ERROR) from None


@click.group(cls=DualwriteGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dualwrite")
@group_options
@click.pass_context
def cli(ctx: click.Context, **given) -> None:
    """Verify, gate and heal the dual-write migration of the Supra lottery archive.

    The backend options may come before the subcommand or after it (the command's own value wins).

    Exit codes: 0 success; 1 a check found a mismatch or drift; 2 bad input or usage;
    3 a backend failed or could not be reached; 4 the chain aborted the transaction;
    5 a gate checked nothing (no lottery verified; --allow-empty accepts it);
    6 cutover status: not finished yet.
    """
    remember_group_options(ctx, given)


def main() -> None:
    sys.exit(cli.main(prog_name="dualwrite"))


if __name__ == "__main__":  # pragma: no cover
    main()
