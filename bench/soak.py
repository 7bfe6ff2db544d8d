"""Soak: subscriptions to incoming mail over a long run with faults (issue 17).

    .venv/bin/python -m bench.soak [--minutes 30] [--accounts 20]     # make soak

The test kit's Dovecot and SMTP server run in this process, with a fault proxy in front of Dovecot's
IMAPS; a real ``email-connector subscriber`` runs as a process of its own. Mail goes in through SMTP
(two messages a second, to random accounts); every few minutes a fault hits every connection in turn:
a reset, a black hole (no RST), a server BYE (doveadm kick), a Dovecot restart. The subscriber's
``on_new_email`` callback (``on_new_email`` below) writes each message's latency from SMTP accept to
the callback into a file. Printed at the end: messages sent, handed over, lost and doubled; latency
p50/p99; the subscriber's memory (RSS) and open file descriptors at the start and at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage as MimeMessage
from pathlib import Path
from typing import Any

from tests.servers import database as test_database
from tests.servers import pki as test_pki
from tests.servers import redis as test_redis
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.smtp import SmtpServer

PASSWORD = "soak-mail-pw"
FAULT_EVERY_SECONDS = 120


def on_new_email(messages: list[Any]) -> None:
    """The subscriber's callback: one line per message, "token latency-seconds", into SOAK_LOG."""
    now = time.time()
    lines = []
    for message in messages:
        _, token, sent_at = (message.subject or "x x 0").split()[:3]
        lines.append(f"{token} {now - float(sent_at):.4f}\n")
    with open(os.environ["SOAK_LOG"], "a", encoding="ascii") as log:
        log.write("".join(lines))


def _sample(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--accounts", type=int, default=20)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ecsoak-"))
    os.environ["EMAILCONNECTOR_INSTANCE_PATH"] = str(folder / "instance")
    pki = test_pki.make(folder / "pki")
    dovecot = Dovecot(folder / "dovecot", pki)
    dovecot.start()
    smtp = SmtpServer(dovecot, pki)
    smtp.start()
    proxy = FaultProxy(dovecot.imaps_port).start()
    database = test_database.create(folder)
    redis = test_redis.start(folder)
    log_path = folder / "latency.log"
    log_path.touch()
    subscriber: subprocess.Popen[bytes] | None = None
    try:
        from webapp.adapters.storage.secretbox import generate_key

        config = {"DATABASE_URL": database.url, "REDIS_URL": redis.url, "SECRET_KEY": "soak" * 10,
                  "ENCRYPTION_KEYS": generate_key()}  # fmt: skip
        users = [f"u{n}" for n in range(args.accounts)]
        for user in users:
            dovecot.add_user(user, PASSWORD)
        _setup(config, users, proxy.port, pki.ca_pem.read_text())
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EMAILCONNECTOR_")},
            "DATABASE_URL": database.url,
            "REDIS_URL": redis.url,
            "EMAILCONNECTOR_SECRET_KEY": str(config["SECRET_KEY"]),
            "EMAILCONNECTOR_ENCRYPTION_KEYS": str(config["ENCRYPTION_KEYS"]),
            "EMAILCONNECTOR_INSTANCE_PATH": str(folder / "instance"),
            "EMAILCONNECTOR_SUBSCRIPTION_BACKOFF_MAX_SECONDS": "10",
            "SOAK_LOG": str(log_path),
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        }
        exe = Path(sys.executable).with_name("email-connector")
        with (folder / "subscriber.log").open("wb") as out:
            subscriber = subprocess.Popen([str(exe), "subscriber"], env=env, stdout=out, stderr=out)
        report = _run(args.minutes, users, smtp, proxy, dovecot, subscriber.pid, log_path)
        report["accounts"] = args.accounts
        print(json.dumps(report, indent=2))
        if report["lost"]:
            print((folder / "subscriber.log").read_text()[-3000:], file=sys.stderr)
    finally:
        if subscriber is not None:
            subscriber.send_signal(signal.SIGTERM)
            subscriber.wait(timeout=60)
        proxy.stop()
        smtp.stop()
        dovecot.stop()
        redis.stop()
        database.drop()
        shutil.rmtree(folder, ignore_errors=True)


def _setup(config: dict[str, object], users: list[str], port: int, ca: str) -> None:
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.services.account import accounts
    from webapp.services.account.accounts import AccountSettings
    from webapp.services.receiving import subscriptions

    with create_app(config).app_context():
        upgrade()
        for user in users:
            account = accounts.create(
                AccountSettings(
                    name=user, address=f"{user}@example.test", username=user, password=PASSWORD,
                    incoming_protocol="imap", incoming_security="tls", incoming_host="127.0.0.1",
                    incoming_port=port, outgoing_host="127.0.0.1", outgoing_port=1, outgoing_security="none",
                    tls_verify="custom", ca_cert_pem=ca, timeout=10,
                )
            )  # fmt: skip
            subscriptions.subscribe(account, "bench.soak.on_new_email")  # not __name__: that is __main__ here


def _fault(number: int, proxy: FaultProxy, dovecot: Dovecot) -> str:
    kind = ("reset", "blackhole", "kick", "restart")[number % 4]
    if kind in ("reset", "blackhole"):
        proxy.set(kind)
        time.sleep(2 if kind == "reset" else 10)  # the fault lasts this long (a soak, not a test)
        proxy.set("pass")
    elif kind == "kick":
        for user in dovecot.users:
            dovecot.doveadm("kick", user)
    else:
        dovecot.restart()
    return kind


def _run(
    minutes: float,
    users: list[str],
    smtp: SmtpServer,
    proxy: FaultProxy,
    dovecot: Dovecot,
    pid: int,
    log_path: Path,
) -> dict[str, Any]:
    rng = random.Random(17)
    sent: set[str] = set()
    samples: list[tuple[int, int]] = []  # from the first 10 s on: the subscriber has started by then
    faults: list[str] = []
    started = time.monotonic()
    next_fault = started + FAULT_EVERY_SECONDS
    next_sample = started + 10
    end = started + minutes * 60
    with smtplib.SMTP("127.0.0.1", smtp.port) as client:
        while time.monotonic() < end:
            user = rng.choice(users)
            token = f"{len(sent):07d}"
            message = MimeMessage()
            message["From"] = "soak@example.test"
            message["To"] = f"{user}@example.test"
            message["Subject"] = f"soak {token} {time.time():.4f}"
            message.set_content("Soak.\n")
            client.sendmail("soak@example.test", [f"{user}@example.test"], message.as_bytes())
            sent.add(token)
            now = time.monotonic()
            if now >= next_fault:
                faults.append(_fault(len(faults), proxy, dovecot))
                next_fault = time.monotonic() + FAULT_EVERY_SECONDS
            if now >= next_sample:
                samples.append(_sample(pid))
                next_sample = now + 10
            time.sleep(0.5)  # the offered load: two messages a second
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_handed(log_path)) < len(sent):
        time.sleep(0.5)
    handed = _handed(log_path)
    tokens = [token for token, _ in handed]
    latencies = sorted(latency for _, latency in handed)
    return {
        "minutes": minutes,
        "faults": faults,
        "sent": len(sent),
        "handed_over": len(set(tokens)),
        "lost": len(sent - set(tokens)),
        "doubled": len(tokens) - len(set(tokens)),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p99_s": round(latencies[int(len(latencies) * 0.99) - 1], 3) if latencies else None,
        "rss_kib_first_last": [samples[0][0], samples[-1][0]] if samples else None,
        "rss_kib_max": max((s[0] for s in samples), default=None),
        "fds_first_last": [samples[0][1], samples[-1][1]] if samples else None,
        "fds_max": max((s[1] for s in samples), default=None),
    }


def _handed(log_path: Path) -> list[tuple[str, float]]:
    rows = [line.split() for line in log_path.read_text().splitlines() if line.strip()]
    return [(token, float(latency)) for token, latency in rows]


if __name__ == "__main__":
    main()
