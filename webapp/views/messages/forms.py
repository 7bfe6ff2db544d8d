from __future__ import annotations

from flask_wtf import FlaskForm


class MarkUnreadForm(FlaskForm):
    """Only the CSRF token: Mark unread is a POST."""
