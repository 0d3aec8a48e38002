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

from dualwrite.cli.guard import check_values, worded
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
    """Import the module of one ``COMMANDS`` entry and return its click command (its values worded as
    every bad value is: ``guard.worded``)."""
    target, _ = COMMANDS[name]
    module_name, _, attr = target.partition(":")
    command = getattr(importlib.import_module(module_name), attr)
    if not isinstance(command, click.Command):
        raise TypeError(f"COMMANDS[{name!r}] = {target!r} is not a click command")
    return worded(command)


#: the exit status of a command whose reader closed the pipe: what a shell reports for a Unix tool
#: killed by SIGPIPE (128 + 13), so ``set -o pipefail`` sees that it did not finish
SIGPIPE_EXIT = 141


def _closed_by_reader() -> bool:
    """Whether standard output (or error) is a pipe whose reader has closed it; if so, point it at
    /dev/null, so that no later flush, ours or the interpreter's at exit, fails again (the Python
    documentation's note on SIGPIPE). A BrokenPipeError from elsewhere (a socket, a child's stdin) is a
    failure to report, not a reader that went away."""
    import select

    gone = False
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            if any(events & select.POLLERR for _, events in poller.poll(0)):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, fd)
                os.close(devnull)
                gone = True
        except (AttributeError, ValueError, OSError):  # not a real file (a test's buffer): cannot tell
            continue
    return gone


def _wants_json(args: list[str]) -> bool:
    """``--json`` among the options (before a ``--``): errors then also print a JSON object on stdout."""
    words = list(args)
    return "--json" in (words[:words.index("--")] if "--" in words else words)


def _kind(e: BaseException) -> str:
    """An error's ``kind`` in JSON: its class name in snake case (``InputError`` -> ``input_error``)."""
    name = type(e).__name__
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _did_you_mean(e: click.UsageError) -> str:
    """click's "No such command 'x'." with the nearest names of that group (top group and sub-groups alike)."""
    name = getattr(e, "command_name", None)
    if name is None:
        import re

        m = re.match(r"No such command '(.*)'\.", e.message)
        name = m.group(1) if m else None
    if name is None or e.ctx is None or not isinstance(e.ctx.command, click.Group):
        return e.format_message()
    import difflib

    near = difflib.get_close_matches(name, e.ctx.command.list_commands(e.ctx), n=3, cutoff=0.6)
    said = f"No such command {name!r}."
    if near:
        said += " Did you mean " + " or ".join(repr(n) for n in near) + "?"
    return said


class DualwriteGroup(click.Group):
    """A group whose invocation turns library errors into the documented exit codes.

    Subcommands are loaded on first use, as click's documentation describes for a lazy group:
    ``list_commands``, ``--help`` and shell completion of a command name read ``COMMANDS``;
    ``get_command`` imports one module. Before click parses, ``guard.check_values`` refuses an
    option value that is another option, for every command. Every failure is one line on stderr and
    its exit code; under ``--json`` also one object ``{"error": {"kind", "message", "exit_code"}}``
    on stdout (unless the command had already printed its JSON document). A reader that closes the
    pipe ends the command quietly with exit 141.
    """

    _json = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None and not ctx.resilient_parsing:
            check_values(self, ctx, args)
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str):
        """Command names (with their short help) from the table, importing none; then the group's options."""
        from click.shell_completion import CompletionItem

        items = [CompletionItem(name, help=COMMANDS[name][1]) for name in self.list_commands(ctx)
                 if name.startswith(incomplete) and name in COMMANDS]
        return items + click.Command.shell_complete(self, ctx, incomplete)

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

    def fail(self, kind: str, message: str, code: int, prefix: str = "dualwrite: error: ") -> None:
        """The one line on stderr; under --json the error object on stdout too."""
        from dualwrite.cli.render import emit_error_json

        click.echo(f"{prefix}{message}", err=True)
        if self._json:
            emit_error_json(kind, message, code)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Usage errors too get one line on stderr (click's own take three) and exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        self._json = _wants_json(sys.argv[1:] if args is None else args)
        render = sys.modules.get("dualwrite.cli.render")
        if render is not None:  # a new run (CliRunner runs many in one process) has printed nothing yet
            render._written[0] = False
        try:
            try:
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.UsageError as e:
                where = e.ctx.command_path if e.ctx else (prog_name or "dualwrite")
                self.fail("usage_error", f"{_did_you_mean(e)} (see --help)", e.exit_code, f"{where}: usage error: ")
                sys.exit(e.exit_code)
            except click.ClickException as e:
                self.fail(_kind(e), e.format_message(), e.exit_code)
                sys.exit(e.exit_code)
            except click.Abort:
                self.fail("aborted", "aborted", 1, "dualwrite: ")
                sys.exit(1)
            except click.exceptions.Exit as e:
                sys.exit(e.exit_code)
            finally:
                sys.stdout.flush()  # here, where a closed pipe can still be handled, not at interpreter exit
                if _closed_by_reader():  # gone before the end: a large write can be cut short without an error
                    sys.exit(SIGPIPE_EXIT)
        except BrokenPipeError:
            if not _closed_by_reader():
                raise
            sys.exit(SIGPIPE_EXIT)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DualwriteError as e:
            self.fail(_kind(e), str(e), int(e.exit_code))
            raise click.exceptions.Exit(int(e.exit_code)) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            self.fail("interrupted", "interrupted", 130, "dualwrite: ")
            raise click.exceptions.Exit(130) from None
        except RecursionError:  # input nested past what any parser here walks: bad input, not a bug
            self.fail("input_error", "input nested too deeply to read", 2)
            raise click.exceptions.Exit(2) from None
        except Exception as e:  # a bug: say so in one line; the traceback only on request
            if isinstance(e, BrokenPipeError) and _closed_by_reader():
                raise click.exceptions.Exit(SIGPIPE_EXIT) from None  # quietly, as a Unix tool killed by SIGPIPE
            sqlite3 = sys.modules.get("sqlite3")  # only the simulator's store uses it: never imported for nothing
            if sqlite3 is not None and isinstance(e, sqlite3.DatabaseError):  # a store error no layer typed
                self.fail("backend_error", f"simulator state: {e} (damaged, read-only or unreadable)", 3)
                raise click.exceptions.Exit(3) from None
            if os.environ.get("DUALWRITE_DEBUG"):
                raise
            self.fail("internal_error", f"{type(e).__name__}: {e} (set DUALWRITE_DEBUG=1 for the traceback)",
                      INTERNAL_ERROR, "dualwrite: internal error: ")
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
    6 cutover status: not finished yet;
    75 another heal holds the journal or chain (nothing done); 70 a bug;
    141 the reader of stdout went away (quietly, as SIGPIPE would).
    """
    remember_group_options(ctx, given)


def main() -> None:
    sys.exit(cli.main(prog_name="dualwrite"))


if __name__ == "__main__":  # pragma: no cover
    main()
