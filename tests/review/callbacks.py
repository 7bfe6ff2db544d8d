"""Callbacks for the probes (run in the worker)."""

from __future__ import annotations


def record_complete(summary: dict) -> None:
    from webapp.extensions import db
    from webapp.models import AppSetting

    db.session.merge(AppSetting(key="attack:complete", value=str(summary)))
    db.session.commit()
