"""metrics (one check, Prometheus text) and monitor (the long-running exporter)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path

import click

from dualwrite.cli.audit_cmds import parse_duration
from dualwrite.backends import open_backend
from dualwrite.cli.options import backend_options, opened
from dualwrite.errors import BackendError, InputError

grace_option = click.option("--pending-grace", default="2h", show_default=True, metavar="DURATION",
                            help="dual_write_pending counts expectations pending longer than this (runbook: 2h).")
jobs_option = click.option("--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True,
                           help="Concurrent reads on subprocess backends (sim runs serially).")


def _duration(text: str, option: str) -> timedelta:
    """verify's duration grammar (2h, 30m, 1h30m, seconds), with the error naming ``option``."""
    try:
        return parse_duration(text)
    except InputError as e:
        raise InputError(str(e).replace("--pending-grace", option, 1)) from None


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s dualwrite monitor %(levelname)s %(message)s"))
    lg = logging.getLogger("dualwrite.monitor")
    lg.handlers[:] = [handler]
    lg.setLevel(logging.INFO)
    lg.propagate = False


@click.command("metrics")
@click.option("--textfile", type=click.Path(dir_okay=False, path_type=Path),
              help="Write atomically to FILE (node_exporter textfile collector: name it *.prom) instead of stdout.")
@grace_option
@jobs_option
@backend_options
@click.option("--json", "as_json", is_flag=True,
              help="The samples as JSON on stdout (name, labels, value), instead of the text format.")
def metrics_cmd(textfile, pending_grace, jobs, cfg, as_json):
    """One check of every lottery, in the Prometheus text exposition format.

    --json prints the samples as JSON instead ({"backend", "samples": [{"name", "labels", "value"}]}).

    Exit 0 when the metrics were produced (whatever they say: alerts judge them); 3 when the
    backend failed or some lotteries could not be read — then nothing is written, so the
    file keeps its last good values and its old dual_write_last_success_timestamp_seconds.
    """
    from prometheus_client import generate_latest, write_to_textfile

    from dualwrite.monitor.check import run_check
    from dualwrite.monitor.metrics import one_shot_registry

    grace = _duration(pending_grace, "--pending-grace")
    with opened(cfg) as b:
        snap = run_check(b, pending_grace=grace, jobs=jobs)
    for line in snap.log_lines():
        click.echo(f"dualwrite metrics: {line}", err=True)
    reg = one_shot_registry(snap)
    if textfile is not None:
        if not textfile.parent.is_dir():
            raise InputError(f"--textfile {textfile}: directory {textfile.parent} does not exist")
        try:
            write_to_textfile(str(textfile), reg)  # temp file in the same directory, then rename
        except OSError as e:
            raise BackendError(f"--textfile {textfile}: {e.strerror or e}") from None
    if as_json:
        from dualwrite.cli.render import emit_json

        emit_json({"backend": snap.backend, "samples": [
            {"name": x.name, "labels": x.labels, "value": x.value} for m in reg.collect() for x in m.samples]})
    elif textfile is None:
        click.echo(generate_latest(reg).decode(), nl=False)


@click.command("monitor")
@click.option("--listen", default="127.0.0.1:9464", show_default=True, metavar="HOST:PORT",
              help="Where to serve /metrics, /status and /healthz (port 0: any free port, logged).")
@click.option("--interval", default="60s", show_default=True, metavar="DURATION", help="Time between checks.")
@click.option("--full-every", type=click.IntRange(1), default=60, show_default=True, metavar="N",
              help="Over RPC, every Nth cycle reads every lottery; the others read only those the new blocks' "
                   "events touched (and pending or failing ones). 1: always full.")
@grace_option
@jobs_option
@backend_options
def monitor_cmd(listen, interval, full_every, pending_grace, jobs, cfg):
    """The exporter: check every lottery every --interval, serve the last result to Prometheus.

    A scrape never waits for a check; a failed check keeps the last good values
    (dual_write_last_check_success 0, dual_write_check_errors_total +1). SIGTERM or
    SIGINT stops it cleanly (exit 0).
    """
    from dualwrite.monitor.exporter import Monitor, parse_listen

    host, port = parse_listen(listen)
    every = _duration(interval, "--interval")
    if every.total_seconds() <= 0:
        raise InputError(f"--interval {interval!r}: must be more than 0s")
    grace = _duration(pending_grace, "--pending-grace")
    _logging()
    mon = Monitor(lambda: open_backend(cfg), interval=every.total_seconds(), pending_grace=grace, jobs=jobs,
                  backend_name=cfg.backend, full_every=full_every)
    stop = threading.Event()

    def on_signal(signum, _frame):
        logging.getLogger("dualwrite.monitor").info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        mon.start(host, port)
        h, p = mon.address
        shown = f"[{h}]" if ":" in h else h
        logging.getLogger("dualwrite.monitor").info(
            "serving http://%s:%d/metrics, /status and /healthz; checking %s every %gs, pending grace %gs",
            shown, p, cfg.backend, every.total_seconds(), grace.total_seconds())
        while not stop.wait(3600):
            pass
    finally:
        finished = mon.stop()
        for s, h in previous.items():
            signal.signal(s, h)
    logging.getLogger("dualwrite.monitor").info(
        "stopped" if finished else "stopped (a check was still running; it is abandoned)")


def register(cli: click.Group) -> None:
    for c in (metrics_cmd, monitor_cmd):
        cli.add_command(c)
