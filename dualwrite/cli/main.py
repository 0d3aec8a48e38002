"""Root of the ``dualwrite`` command: maps typed errors to one stderr line and an exit code."""

from __future__ import annotations

import os
import sys

import click

from dualwrite.cli.options import group_options, remember_group_options
from dualwrite.errors import DualwriteError

INTERNAL_ERROR = 70


class DualwriteGroup(click.Group):
    """A group whose invocation turns library errors into the documented exit codes."""

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
    3 a backend failed or could not be reached; 4 the chain aborted the transaction.
    """
    remember_group_options(ctx, given)


def _register() -> None:
    from dualwrite.cli import codec_cmds

    codec_cmds.register(cli)
    for name in ("sim_cmds", "bridge_cmds", "audit_cmds", "demo_cmds"):
        try:
            module = __import__(f"dualwrite.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name != f"dualwrite.cli.{name}":
                raise
            continue
        module.register(cli)


_register()


def main() -> None:
    sys.exit(cli.main(prog_name="dualwrite"))


if __name__ == "__main__":  # pragma: no cover
    main()
