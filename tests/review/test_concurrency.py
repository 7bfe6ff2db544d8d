"""Races: the last admin, accounts, fetch jobs."""

from __future__ import annotations

import threading

from flask import Flask
from sqlalchemy import func, select

from tests.webclient import WebClient
from webapp.extensions import db
from webapp.models import User


def _together(calls) -> list:
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls), timeout=60)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _admins() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(User.id)).where(User.role == "admin"))


def test_two_admins_demoting_each_other_at_once_leave_an_admin(app: Flask, make_user, web_server: str) -> None:
    ann, ben = make_user("ann", role="admin"), make_user("ben", role="admin")
    a, b = WebClient(web_server), WebClient(web_server)
    a.login("ann")
    b.login("ben")
    for _round in range(5):
        # b demotes ann, a demotes ben, at the same moment
        page_a = a.get(f"/admin/users/{ben.id}")[1]
        page_b = b.get(f"/admin/users/{ann.id}")[1]
        results = _together(
            [
                lambda: a.post(f"/admin/users/{ben.id}/role", {"role-role": "user"}, page=page_a),
                lambda: b.post(f"/admin/users/{ann.id}/role", {"role-role": "user"}, page=page_b),
            ]
        )
        assert _admins() >= 1, f"no admin left: {[(r[0] if isinstance(r, tuple) else r) for r in results]}"
        # put them back for another round (a fresh login each, their sessions ended)
        from webapp.database import write_transaction

        db.session.rollback()
        with write_transaction():
            db.session.execute(User.__table__.update().values(role="admin"))
            db.session.commit()
        a, b = WebClient(web_server), WebClient(web_server)
        a.login("ann")
        b.login("ben")


def test_two_admins_removing_each_other_at_once_leave_an_admin(app: Flask, make_user, web_server: str) -> None:
    ann, ben = make_user("ann", role="admin"), make_user("ben", role="admin")
    a, b = WebClient(web_server), WebClient(web_server)
    a.login("ann")
    b.login("ben")
    page_a = a.get(f"/admin/users/{ben.id}")[1]
    page_b = b.get(f"/admin/users/{ann.id}")[1]
    results = _together(
        [
            lambda: a.post(f"/admin/users/{ben.id}/delete", {}, page=page_a),
            lambda: b.post(f"/admin/users/{ann.id}/delete", {}, page=page_b),
        ]
    )
    assert _admins() >= 1, f"no admin left: {[(r[0] if isinstance(r, tuple) else r) for r in results]}"


def test_connector_callbacks_are_not_dropped_when_a_fetch_is_already_queued(app: Flask, make_account, dovecot) -> None:
    """retrieve_email_messages(on_complete=...) while the page's fetch waits in the queue: its callbacks
    cannot ride on that job, so the caller is told (a Conflict naming the job) instead of losing them."""
    import pytest

    from webapp import connector
    from webapp.services.receiving import fetchjobs

    account = make_account()
    page_job = fetchjobs.enqueue(account)  # someone clicked Fetch Emails; no worker has taken it yet
    with pytest.raises(fetchjobs.AlreadyQueued, match="already queued or running") as refused:
        connector.retrieve_email_messages(account, on_complete="tests.review.callbacks.record_complete")
    assert refused.value.job_id == page_job
    assert connector.retrieve_email_messages(account) == page_job  # without callbacks: the same job


def test_two_admins_granting_the_same_account_at_once(app: Flask, make_user, make_account, web_server: str) -> None:
    account = make_account()
    make_user("ann", role="admin")
    make_user("ben", role="admin")
    target = make_user("carl")
    failures = []
    for _round in range(8):
        from webapp.database import write_transaction
        from webapp.models import AccountGrant

        db.session.rollback()
        with write_transaction():
            db.session.query(AccountGrant).delete()
            db.session.commit()
        a, b = WebClient(web_server), WebClient(web_server)
        a.login("ann")
        b.login("ben")
        url = f"/admin/users/{target.id}"
        pa, pb = a.get(url)[1], b.get(url)[1]
        fields = {"grant-account_id": str(account.id), "grant-can_read": "y"}
        results = _together(
            [lambda: a.post(f"{url}/grant", fields, page=pa), lambda: b.post(f"{url}/grant", fields, page=pb)]
        )
        failures += [r[0] for r in results if isinstance(r, tuple) and r[0] >= 500]
    assert not failures, failures


def test_two_admins_creating_the_same_user_at_once(app: Flask, make_user, web_server: str) -> None:
    make_user("ann", role="admin")
    make_user("ben", role="admin")
    failures = []
    for n in range(8):
        a, b = WebClient(web_server), WebClient(web_server)
        a.login("ann")
        b.login("ben")
        pa, pb = a.get("/admin/users")[1], b.get("/admin/users")[1]
        fields = {"username": f"dup{n}", "password": "long enough pw", "confirm": "long enough pw"}
        results = _together(
            [lambda: a.post("/admin/users", fields, page=pa), lambda: b.post("/admin/users", fields, page=pb)]
        )
        failures += [r[0] for r in results if isinstance(r, tuple) and r[0] >= 500]
    assert not failures, failures
