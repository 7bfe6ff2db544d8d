"""The user's own settings page."""
