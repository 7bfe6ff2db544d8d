"""Thin RQ entry points: each opens an app context, calls one service and returns."""
