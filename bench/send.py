"""Draining the outbox against raw smtplib, in one run, on the same local SMTP server (STARTTLS and AUTH).

    .venv/bin/python -m bench.send [--messages 3000] [--connections 4]      # SQLite and the embedded Redis
    DATABASE_URL=postgresql://… REDIS_URL=redis://… .venv/bin/python -m bench.send

Raw: smtplib sends the messages over one connection (one sendmail per message). Ours: the messages are
queued from a JSONL file (timed), then one drain sends them over one connection (claim, send, record
each outcome), then again with several connections (one process each, as several workers). The SMTP
server (the test kit's aiosmtpd) runs in a process of its own, so the clients do not share its GIL.
With BENCH_PROFILE=FOLDER each drain process writes its cProfile statistics there (slower: not a figure).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import shutil
import smtplib
import ssl
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

from tests.servers import database as test_database
from tests.servers import pki as test_pki
from tests.servers import redis as test_redis

USER, PASSWORD = "alice", "alice-mail-pw"


def _serve(folder: str, ready: Any, stop: Any) -> None:
    """The SMTP server in a process of its own (AUTH checks the Dovecot user list; nothing is delivered)."""
    from tests.servers.dovecot import Dovecot
    from tests.servers.smtp import SmtpServer

    base = Path(folder) / "pki"
    pki = test_pki.Pki(base / "ca.pem", base / "server.pem", base / "server.key", base / "other-ca.pem")
    dovecot = Dovecot(Path(folder) / "dovecot", pki)
    dovecot.users[USER] = PASSWORD  # AUTH only: recipients are not Dovecot users, nothing is delivered
    server = SmtpServer(dovecot, pki)
    server.start()
    ready.put(server.port)
    stop.wait()
    server.stop()


def raw_rate(port: int, ca: str, count: int) -> float:
    context = ssl.create_default_context(cafile=ca)
    message = EmailMessage(policy=SMTP)
    message["From"] = "alice@example.test"
    message["To"] = "r@example.test"
    message["Subject"] = "Bench"
    message.set_content("Hello from the benchmark.\n")
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.starttls(context=context)
        client.login(USER, PASSWORD)
        for number in range(count):
            del message["Message-ID"]
            message["Message-ID"] = f"<raw{number}@example.test>"
            client.sendmail("alice@example.test", [f"r{number}@example.test"], message.as_bytes())
    return count / (time.perf_counter() - started)


def _app(config: dict[str, object]) -> Any:
    from webapp import create_app

    return create_app(config)


def setup(config: dict[str, object], port: int, ca: str, connections: int) -> None:
    from flask_migrate import upgrade

    from webapp.services.account import accounts
    from webapp.services.account.accounts import AccountSettings

    with _app(config).app_context():
        upgrade()
        accounts.create(
            AccountSettings(
                name="Bench", address="alice@example.test", username=USER, password=PASSWORD,
                incoming_protocol="imap", incoming_security="tls", incoming_host="127.0.0.1", incoming_port=993,
                outgoing_host="127.0.0.1", outgoing_port=port, outgoing_security="starttls",
                tls_verify="custom", ca_cert_pem=ca, timeout=60, send_connections=connections,
            )
        )  # fmt: skip


def queue(config: dict[str, object], jsonl: str, tag: str) -> float:
    """Queue every line of ``jsonl``; the seconds it took (reading, building, inserting)."""
    from webapp.services.account import accounts
    from webapp.services.outgoing import bulk, outbox

    with _app(config).app_context():
        started = time.perf_counter()
        items = bulk.read_jsonl(Path(jsonl))
        queued, _skipped = outbox.enqueue_many(accounts.get("Bench"), items)
        took = time.perf_counter() - started
        assert queued == len(items), (queued, tag)
    return took


def drain(config: dict[str, object], results: Any) -> None:
    from webapp.services.account import accounts
    from webapp.services.outgoing import delivery

    profile_to = os.environ.get("BENCH_PROFILE")  # a folder: each drain process writes its cProfile there
    with _app(config).app_context():
        account = accounts.get("Bench")
        profiler = cProfile.Profile() if profile_to else None
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        result = delivery.drain(account)
        seconds = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_to or ".") / f"drain-{os.getpid()}.prof"))
        results.put({"sent": result.sent, "seconds": seconds, "errors": result.errors[:3]})


def _jsonl(folder: Path, count: int, tag: str) -> str:
    path = folder / f"{tag}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for number in range(count):
            row = {
                "to": f"r{number}@example.test",
                "subject": f"Bench {tag} {number}",
                "body": "Hello from the benchmark.\n",
            }
            handle.write(json.dumps(row) + "\n")
    return str(path)


def ours(
    context: Any, config: dict[str, object], folder: Path, count: int, connections: int, tag: str
) -> dict[str, Any]:
    """Queue ``count`` messages, then drain them with ``connections`` processes at once."""
    queued_seconds = queue(config, _jsonl(folder, count, tag), tag)
    results = context.Queue()
    workers = [context.Process(target=drain, args=(config, results)) for _ in range(connections)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=3600) for _ in workers]
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    sent = sum(o["sent"] for o in outcomes)
    assert sent == count, outcomes
    # The drain's own time (from its first claim): process start-up is not sending.
    busiest = max(o["seconds"] for o in outcomes)
    return {"rate": count / busiest, "rate_with_startup": count / elapsed, "queue_seconds": queued_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ecs-"))
    os.environ["EMAILCONNECTOR_INSTANCE_PATH"] = str(folder / "instance")
    pki = test_pki.make(folder / "pki")
    database = test_database.create(folder)
    redis = test_redis.start(folder)
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(str(folder), ready, stop))
    server.start()
    try:
        port = ready.get(timeout=60)
        ca = pki.ca_pem.read_text()
        from webapp.adapters.storage.secretbox import generate_key

        config = {"DATABASE_URL": database.url, "REDIS_URL": redis.url, "SECRET_KEY": "bench" * 8,
                  "ENCRYPTION_KEYS": generate_key()}  # fmt: skip
        setup(config, port, ca, 1)
        raw_before = raw_rate(port, str(pki.ca_pem), args.messages)
        one = ours(context, config, folder, args.messages, 1, "one")
        raw_after = raw_rate(port, str(pki.ca_pem), args.messages)
        with _app(config).app_context():
            from webapp.database import write_transaction
            from webapp.extensions import db
            from webapp.models import EmailAccount

            with write_transaction():
                db.session.query(EmailAccount).update({"send_connections": args.connections})
        several = ours(context, config, folder, args.messages, args.connections, "several")
    finally:
        stop.set()
        server.join(timeout=30)
        redis.stop()
        database.drop()
        shutil.rmtree(folder, ignore_errors=True)
    raw = max(raw_before, raw_after)
    report = {
        "messages": args.messages,
        "database": "postgresql" if database.is_postgres else "sqlite",
        "raw_smtplib_msg_s": round(raw),
        "raw_smtplib_before_after_msg_s": [round(raw_before), round(raw_after)],
        "ours_one_connection_msg_s": round(one["rate"]),
        "ours_one_connection_ratio": round(one["rate"] / raw, 2),
        f"ours_{args.connections}_connections_msg_s": round(several["rate"]),
        f"ours_{args.connections}_connections_ratio": round(several["rate"] / raw, 2),
        "queue_from_jsonl_seconds": round(one["queue_seconds"], 2),
        "sending_seconds_one_connection": round(args.messages / one["rate"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
