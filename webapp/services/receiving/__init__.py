"""Receiving: fetching mail into the store (runs, jobs, the per-account lock, parsing, the server's folders)."""
