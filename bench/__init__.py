"""Benchmarks against raw protocol clients, run in the same process on the same servers (design §11)."""
