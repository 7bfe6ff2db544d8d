"""Run one fetch in a process of its own (``python -m tests.fetchrun ACCOUNT_ID [ON_FETCH]``).

The crash-safety tests start it with ``TESTKIT_FAILPOINTS`` set (JSON: ``{"before_commit": [3, "kill"]}``),
so it SIGKILLs itself at a chosen point, exactly as a worker dying there would: the fail points are given
to the service by this test program, never read by the app itself.
"""

from __future__ import annotations

import json
import os
import sys

from webapp import create_app
from webapp.services.account import accounts
from webapp.services.platform.failpoints import FailPoints
from webapp.services.receiving import fetchruns

VARIABLE = "TESTKIT_FAILPOINTS"


def main() -> None:
    account_id = int(sys.argv[1])
    on_fetch = sys.argv[2] if len(sys.argv) > 2 else None
    given = json.loads(os.environ.get(VARIABLE, "{}"))
    points = {name: (int(when), str(action)) for name, (when, action) in given.items()}
    app = create_app()
    with app.app_context():
        summary = fetchruns.run(accounts.by_id(account_id), on_fetch=on_fetch, failpoints=FailPoints(points))
    print(summary.as_dict())


def record_batch(batch: list) -> None:
    """A transactional on_fetch callback: one row per message seen; a repeat would break the primary key."""
    from webapp.extensions import db
    from webapp.models import AppSetting

    for message in batch:
        db.session.add(AppSetting(key=f"seen:{message.id}", value=message.raw_sha256))


if __name__ == "__main__":
    main()
