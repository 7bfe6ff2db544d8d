"""``email-connector run``, ``worker`` and ``up`` (everything on the embedded defaults, for ``make run``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import click
from flask import Flask
from flask.cli import ScriptInfo, pass_script_info

from webapp.adapters import redisserver
from webapp.adapters.process import die_with_parent
from webapp.cli.common import fail
from webapp.cli.instance import TERMINATING, embedded_redis, note
from webapp.services import schedule
from webapp.services.identity import setup
from webapp.services.platform import queues
from webapp.services.platform.redisconn import coordination


@click.command("run")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000 or $PORT")
@click.option("--threads", type=int, default=8, show_default=True)
@pass_script_info
def run(info: ScriptInfo, host: str, port: int, threads: int) -> None:
    """Serve the web app with waitress."""
    import waitress

    app = info.load_app()
    _warn_about_python()
    click.echo(f"Serving on http://{host}:{port}/", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="email-connector")


@click.command("worker")
@click.option(
    "--queue",
    "queue_names",
    multiple=True,
    type=click.Choice(queues.ALL),
    help="Listen only here (repeatable).",
)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@pass_script_info
def worker(info: ScriptInfo, queue_names: tuple[str, ...], burst: bool) -> None:
    """Run an RQ worker (all queues unless told otherwise)."""
    app = info.load_app()
    with app.app_context():
        worker = coordination()
    # The work itself runs outside this app context: each job opens its own (jobs/ does that).
    worker.work(list(queue_names or queues.ALL), burst=burst)


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000 or $PORT")
@pass_script_info
def up(info: ScriptInfo, host: str, port: int) -> None:
    """Start the embedded Redis (unless REDIS_URL is set), a worker, the scheduler, the subscriber and the
    web server."""
    app = info.load_app()
    _warn_about_python()
    exe = [sys.executable, "-m", "webapp.cli"]
    children: dict[str, list[str]] = {
        "worker": [*exe, "worker"],
        "scheduler": [*exe, "scheduler"],
        "subscriber": [*exe, "subscriber"],
        "web": [*exe, "run", "--host", host, "--port", str(port)],
    }
    with contextlib.ExitStack() as stack:
        redis = _own_embedded_redis(app, stack)
        _supervise(app, children, redis, host, port)
    click.echo("stopped", err=True)


def _own_embedded_redis(app: Flask, stack: contextlib.ExitStack) -> redisserver.Lease | None:
    """Start the embedded Redis, owned by ``up`` until it ends (None when REDIS_URL names a Redis)."""
    embedded = embedded_redis(app)
    if embedded is None:
        return None
    try:
        return stack.enter_context(redisserver.own(*embedded, "email-connector up", note))
    except RuntimeError as exc:
        fail(str(exc))


def _supervise(
    app: Flask, children: dict[str, list[str]], redis: redisserver.Lease | None, host: str, port: int
) -> None:
    with app.app_context():
        token = setup.issue_token()
    running = {name: _spawn(cmd) for name, cmd in children.items()}
    click.echo(f"\nEmail Connector: http://{host}:{port}/", err=True)
    if token:
        click.echo(f"First run: open the URL and enter this one-time setup token: {token}\n", err=True)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts: dict[str, list[float]] = {name: [] for name in children}
    try:
        while not stopping:
            time.sleep(0.5)
            if stopping:
                break  # Ctrl-C reaches the children too: they are ending, not crashing
            if redis is not None and redis.process is not None and redis.process.poll() is not None:
                click.echo("embedded Redis stopped; restarting it", err=True)
                try:
                    redis.restart()
                except RuntimeError as exc:
                    click.echo(f"error: {exc}", err=True)
                    break
            for name, process in list(running.items()):
                if process.poll() is None:
                    continue
                recent = [t for t in restarts[name] if time.monotonic() - t < 60]
                if len(recent) >= 5:
                    click.echo(f"{name} keeps exiting ({process.returncode}); giving up", err=True)
                    stopping = True
                    break
                click.echo(f"{name} exited with {process.returncode}; restarting it", err=True)
                restarts[name] = [*recent, time.monotonic()]
                running[name] = _spawn(children[name])
    finally:
        for process in running.values():
            if process.poll() is None:
                process.terminate()
        for process in running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        # The embedded Redis stops when the ExitStack closes, once no other command uses it; a second
        # Ctrl-C while up waits for those stops it at once.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@click.command("scheduler")
@click.option("--interval", type=click.IntRange(5, 3600), default=60, show_default=True, help="Seconds.")
@pass_script_info
def scheduler(info: ScriptInfo, interval: int) -> None:
    """Every INTERVAL seconds: queue the fetches that are due and retry due webhook deliveries."""
    app = info.load_app()
    click.echo(f"scheduler: every {interval} s", err=True)
    while not TERMINATING.is_set():
        with app.app_context():
            _report(schedule.run_due())
        TERMINATING.wait(interval)  # the schedule's own period; SIGTERM ends it at once
    raise SystemExit(128 + signal.SIGTERM)  # (the handler's own SystemExit was lost in a finalizer)


@click.command("fetch-due")
@pass_script_info
def fetch_due(info: ScriptInfo) -> None:
    """One pass of the schedule (for a system cron running it every minute)."""
    with info.load_app().app_context():
        _report(schedule.run_due())


def _report(tick: schedule.Tick) -> None:
    for name in tick.queued:
        click.echo(f"queued a fetch of {name}", err=True)
    for name in tick.sending:
        click.echo(f"queued mail of {name} handed to a worker", err=True)
    if tick.possibly_sent:
        click.echo(f"warning: {tick.possibly_sent} message(s) possibly sent by a worker that stopped", err=True)
    for error in tick.errors:
        click.echo(f"error: {error}", err=True)
    if tick.delivered:
        click.echo(f"delivered {tick.delivered} callback(s)", err=True)


def _spawn(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, preexec_fn=die_with_parent)


def register(cli: click.Group) -> None:
    """Add ``run``, ``worker``, ``up``, ``scheduler`` and ``fetch-due`` to ``cli``."""
    for command in (run, worker, up, scheduler, fetch_due):
        cli.add_command(command)


def _warn_about_python() -> None:
    """Say once, when the servers start, that this Python has CVE-2024-6923 (sending does not rely on it)."""
    from webapp.adapters import mime

    if mime.python_refolds_encoded_line_breaks():
        click.echo(
            "warning: this Python's email package has CVE-2024-6923 (encoded line breaks become header lines). "
            "Email Connector refuses such headers itself, but use Python 3.11.10+ or 3.12.5+.",
            err=True,
        )
