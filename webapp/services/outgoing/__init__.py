"""Outgoing mail: composing and sending (the outbox, templates and S/MIME join here)."""
