"""Real servers for the test suite, started once per session on free 127.0.0.1 ports (design §10)."""
