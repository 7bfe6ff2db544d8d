"""Replicating a folder over IMAPS: our fetch against raw imapclient, in one run on the same Dovecot.

    .venv/bin/python -m bench.fetch [--messages 10000]          # SQLite and the embedded Redis
    DATABASE_URL=postgresql://… REDIS_URL=redis://… .venv/bin/python -m bench.fetch

Prints the raw rate, our two rates (until stored and listed; until bodies, attachments and the search
index are complete) as ratios of the raw one, and the peak memory of the fetching process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from tests.servers import database as test_database
from tests.servers import messages as generated
from tests.servers import pki as test_pki
from tests.servers import redis as test_redis
from tests.servers.dovecot import Dovecot


def corpus(count: int, seed: int = 42) -> list[bytes]:
    """The test kit's mix (text, HTML, alternative, attachments, non-ASCII, malformed), with attachment
    sizes drawn from 60 KB to 3 MB and longer HTML, so the average message is a few tens of KB."""
    import random
    from email.message import EmailMessage
    from email.policy import SMTP

    rng = random.Random(seed)
    result = generated.mix(count, seed=seed)
    for index in range(count):
        kind = generated.KINDS[index % len(generated.KINDS)]
        if kind == "attachment":
            msg = EmailMessage(policy=SMTP)
            msg["From"] = f"Sender {index} <sender{index}@example.test>"
            msg["To"] = "alice@example.test"
            msg["Subject"] = f"Report {index} with attachment"
            msg["Message-ID"] = f"<bench{index}@example.test>"
            msg["Date"] = "Tue, 24 Nov 2026 10:00:00 +0000"
            msg.set_content(f"See the attached report {index}.")
            size = int(rng.paretovariate(1.1) * 60_000)
            msg.add_attachment(rng.randbytes(min(size, 3_000_000)), maintype="application", subtype="pdf",
                               filename=f"report-{index}.pdf")  # fmt: skip
            result[index] = msg.as_bytes()
        elif kind == "html":
            padding = "<p>" + " ".join(f"word{rng.randint(0, 9999)}" for _ in range(rng.randint(200, 3000))) + "</p>"
            result[index] = result[index].replace(b"</body>", padding.encode() + b"</body>")
    return result


def seed(dovecot: Dovecot, count: int) -> int:
    corpus_ = corpus(count)
    total = sum(len(raw) for raw in corpus_)
    dovecot.add_user("alice", "alice-mail-pw")
    dovecot.deliver_many("alice", corpus_)
    dovecot.doveadm("index", "-u", "alice", "INBOX")
    return total


def raw_rate(dovecot: Dovecot, pki: test_pki.Pki, batch: int = 500) -> tuple[float, int]:
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    started = time.perf_counter()
    with IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=context) as client:
        client.login("alice", "alice-mail-pw")
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        size = 0
        for start in range(0, len(uids), batch):
            for data in client.fetch(uids[start : start + batch], [b"BODY.PEEK[]"]).values():
                size += len(data[b"BODY[]"])
    return len(uids) / (time.perf_counter() - started), size


def close_app(app: object) -> None:
    from webapp.extensions import db

    with app.app_context():  # type: ignore[attr-defined]
        db.session.remove()
        db.engine.dispose()


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _rss_mb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1_000_000


def ours(imaps_port: int, ca_pem: str, config: dict[str, object], count: int) -> dict[str, Any]:
    from webapp import create_app
    from webapp.services.account import accounts
    from webapp.services.account.accounts import AccountSettings
    from webapp.services.receiving import fetching

    app = create_app(config)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        account = accounts.create(
            AccountSettings(
                name="Bench", address="alice@example.test", username="alice", password="alice-mail-pw",
                incoming_protocol="imap", incoming_security="tls", incoming_host="127.0.0.1",
                incoming_port=imaps_port, outgoing_host="127.0.0.1", outgoing_port=25,
                outgoing_security="none", tls_verify="custom", ca_cert_pem=ca_pem,
                fetch_strategy="replicate", batch_size=500, timeout=60,
            )
        )  # fmt: skip
        stored_at: list[float] = []
        rss_by_batch: list[int] = []

        def progress(state: fetching.FetchProgress) -> None:
            rss_by_batch.append(_rss_mb())
            if state.done == state.total and state.total and not stored_at:
                stored_at.append(time.perf_counter())

        started = time.perf_counter()
        summary = fetching.fetch(account, progress)
        finished = time.perf_counter()
        assert summary.stored == count, summary
    # ru_maxrss keeps the high-water mark of the process this one was forked from (Linux folds it in at
    # exec), so it would report the benchmark's own 600 MB corpus: VmHWM is this process's own peak.
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak = _vm_hwm_mb()
    close_app(app)
    return {
        "stored_rate": count / (stored_at[0] - started),
        "complete_rate": count / (finished - started),
        "peak_rss_mb": peak,
        "parser_peak_rss_mb": children,
        "rss_mb_every_5_batches": rss_by_batch[::5],
        "rss_mb_at_end": _rss_mb(),
    }


def _run_ours(results: object, *args: object) -> None:
    try:
        results.put(ours(*args))  # type: ignore[attr-defined, arg-type]
    except BaseException as exc:
        results.put({"error": repr(exc)})  # type: ignore[attr-defined]
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ecb-"))
    os.environ["EMAILCONNECTOR_INSTANCE_PATH"] = str(folder / "instance")
    pki = test_pki.make(folder / "pki")
    dovecot = Dovecot(folder / "dovecot", pki)
    dovecot.start()
    database = test_database.create(folder)
    redis = test_redis.start(folder)
    try:
        size = seed(dovecot, args.messages)
        # Raw runs before and after ours and the faster one counts: the first reader of a freshly seeded
        # folder pays for Dovecot's cold caches, which would flatter whoever goes second.
        raw_before, _ = raw_rate(dovecot, pki)
        from webapp.adapters.storage.secretbox import generate_key

        config = {"DATABASE_URL": database.url, "REDIS_URL": redis.url, "SECRET_KEY": "bench" * 8,
                  "ENCRYPTION_KEYS": generate_key()}  # fmt: skip
        # Our fetch runs in a process of its own, as in a worker, so its memory is its own.
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        worker = context.Process(
            target=_run_ours, args=(results, dovecot.imaps_port, pki.ca_pem.read_text(), config, args.messages)
        )
        worker.start()
        result = results.get(timeout=3600)
        worker.join()
        if "error" in result:
            raise SystemExit(f"our fetch failed: {result['error']}")
        raw_after, _ = raw_rate(dovecot, pki)
        raw = max(raw_before, raw_after)
    finally:
        redis.stop()
        database.drop()
        dovecot.stop()
        shutil.rmtree(folder, ignore_errors=True)
    report = {
        "messages": args.messages,
        "megabytes": round(size / 1e6, 1),
        "database": "postgresql" if database.is_postgres else "sqlite",
        "raw_imapclient_msg_s": round(raw),
        "raw_imapclient_before_after_msg_s": [round(raw_before), round(raw_after)],
        "stored_and_listed_msg_s": round(result["stored_rate"]),
        "stored_ratio": round(result["stored_rate"] / raw, 2),
        "complete_msg_s": round(result["complete_rate"]),
        "complete_ratio": round(result["complete_rate"] / raw, 2),
        "worker_peak_rss_mb": round(result["peak_rss_mb"]),
        "parser_processes_peak_rss_mb": round(result["parser_peak_rss_mb"]),
        "worker_rss_mb_every_5_batches": result["rss_mb_every_5_batches"],
        "worker_rss_mb_at_end": result["rss_mb_at_end"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
