"""Send-only, receive-only and shared accounts on the command line: added, listed, tested, used, refused."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import Result

from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.services.account import accounts


def _add(run: Callable[..., Result], name: str, *options: str, stdin: str | None = None) -> Result:
    return run("accounts", "add", name, *options, stdin=stdin)


def test_send_only_and_receive_only_accounts(
    run: Callable[..., Result], dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user, tmp_path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(pki.ca_pem.read_text())
    # A relay without login needs no password at all.
    relay = _add(
        run, "Relay", "--address", "dev@localhost", "--outgoing", f"smtp+starttls://127.0.0.1:{smtp.port}",
        "--smtp-auth", "none", "--ca-file", str(ca),
    )  # fmt: skip
    assert relay.exit_code == 0, relay.output
    archive = _add(
        run, "Archive", "--address", "alice@example.test", "--username", "alice", "--password-stdin",
        "--incoming", f"imaps://127.0.0.1:{dovecot.imaps_port}/INBOX", "--ca-file", str(ca),
        stdin="alice-mail-pw\n",
    )  # fmt: skip
    assert archive.exit_code == 0, archive.output
    rows = {row["name"]: row for row in json.loads(run("accounts", "list", "--json").stdout)}
    assert rows["Relay"]["incoming"] is None and rows["Relay"]["outgoing"].startswith("smtp+starttls://")
    assert rows["Archive"]["outgoing"] is None
    assert "Relay\tdev@localhost\t-\tsmtp+starttls://" in run("accounts", "list").stdout

    tested = run("accounts", "test", "Relay")
    assert tested.exit_code == 0, tested.output
    assert "skipped\tincoming\tIncoming server: not used (the account is send-only)" in tested.output
    assert "ok\toutgoing" in tested.output
    tested = run("accounts", "test", "Archive")
    assert tested.exit_code == 0 and "skipped\toutgoing" in tested.output and "ok\tincoming" in tested.output

    sent = run("send", "--account", "Relay", "--to", "bob@example.test", "--subject", "s", "--body", "t")
    assert sent.exit_code == 0, sent.output
    assert smtp.received[-1].authenticated_as is None  # no login on the relay

    for args, expected in (
        (("fetch", "Relay", "--inline"), "Relay is send-only: it has no incoming server to fetch from"),
        (("fetch", "Relay"), "Relay is send-only"),
        (("folders", "Relay"), "Relay is send-only"),
        (("subscriptions", "start", "Relay"), "Relay is send-only"),
        (("send", "--account", "Archive", "--to", "b@x.test", "--subject", "s", "--body", "t"), "receive-only"),
        (
            ("send", "--account", "Archive", "--to", "b@x.test", "--subject", "s", "--body", "t", "--queue"),
            "receive-only",
        ),
        (("accounts", "update", "Relay", "--every", "5"), "a send-only account has nothing to fetch"),
    ):
        refused = run(*args)
        assert refused.exit_code == 1, (args, refused.output)
        assert expected in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, (args, refused.stderr)
    assert run("fetch", "runs", "Relay", "--json").stdout.strip() in ("[]", "")

    for args, expected in (
        (("--address", "x@y.test"), "give --incoming, --outgoing or both"),
        (("--address", "x@y.test", "--outgoing", "smtp://h.test"), "--password-stdin is required"),
        (("--address", "x@y.test", "--primary", "Relay"), "are for a --shared mailbox"),
        (("--address", "x@y.test", "--shared"), "needs --primary ACCOUNT"),
    ):
        refused = _add(run, "Other", *args)
        assert refused.exit_code == 1 and expected in refused.stderr, (args, refused.output)
    assert accounts.find("Other") is None


def test_a_shared_mailbox_on_the_command_line(run: Callable[..., Result], dovecot: Dovecot, make_account) -> None:
    make_account(name="Alice")
    dovecot.add_master("alice", "alice-mail-pw")
    dovecot.add_user("sales", "sales-own-password")
    added = _add(
        run, "Sales", "--shared", "--primary", "Alice", "--address", "sales@example.test", "--username", "sales",
        "--login-format", "dovecot",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    row = next(r for r in json.loads(run("accounts", "list", "--json").stdout) if r["name"] == "Sales")
    assert (row["shared"], row["primary"], row["login_format"]) == (True, "Alice", "dovecot")
    assert row["incoming"] == f"imaps://127.0.0.1:{dovecot.imaps_port}/INBOX"  # the primary's servers
    tested = run("accounts", "test", "Sales")
    assert tested.exit_code == 0, tested.output
    deeper = run(
        "accounts",
        "add",
        "Deeper",
        "--shared",
        "--primary",
        "Sales",
        "--address",
        "d@x.test",
        "--login-format",
        "plain",
    )
    assert deeper.exit_code == 1 and "Sales is itself a shared mailbox" in deeper.stderr
    unsaid = run("accounts", "add", "Other", "--shared", "--primary", "Alice", "--address", "o@x.test")
    assert unsaid.exit_code == 1 and "needs --login-format exchange|dovecot|plain" in unsaid.stderr
    refused = run("accounts", "remove", "Alice", "--yes")
    assert refused.exit_code == 1 and "Alice is the primary account of Sales" in refused.stderr
    assert run("accounts", "remove", "Sales", "--yes").exit_code == 0
    assert run("accounts", "remove", "Alice", "--yes").exit_code == 0
