"""Probes of an independent attack review (issue 9/10 follow-up), kept as regression tests: each one failed
against the code it was written for and passes since the fix named in its test."""
