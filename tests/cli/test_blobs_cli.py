"""`email-connector blobs gc`: what no message names any more leaves the blob store."""

from __future__ import annotations

import json

from flask import Flask

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.services.test_blob_gc import _digests, _stored, age_blobs
from webapp.extensions import db
from webapp.services.receiving import fetching


def test_blobs_gc_on_the_command_line(app: Flask, make_account, dovecot: Dovecot, run) -> None:
    dovecot.deliver("alice", generated.make(1, "attachment"))
    account = make_account()
    fetching.fetch(account)
    digests = _digests(account)
    from webapp.services.account.accounts import _delete

    _delete(account)  # rows gone, bytes left (as before this version)
    db.session.rollback()
    age_blobs(app)
    result = run("blobs", "gc", "--grace", "0", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)  # the test kit's blob folder is shared: earlier tests left some too
    assert found["blobs"] >= len(digests) and found["dry_run"] is True
    assert all(_stored(app, d) for d in digests)
    result = run("blobs", "gc", "--grace", "0")
    assert result.exit_code == 0 and result.output.startswith("removed ")
    assert not any(_stored(app, d) for d in digests)
