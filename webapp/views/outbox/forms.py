from __future__ import annotations

from flask_wtf import FlaskForm


class OutboxActionForm(FlaskForm):
    """Only the CSRF token: retry, cancel, delete and send-now are POSTs."""
