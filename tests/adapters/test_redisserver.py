"""The embedded Redis shared by several users: one server at a time, stopped by its owner when nobody uses it.

Threads stand in for processes here: ``flock`` locks belong to open files, so two threads that open the
lock files separately exclude each other exactly as two processes do.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from webapp.adapters import redisserver

TIMEOUT = 30


@pytest.fixture
def folder() -> Iterator[Path]:
    # Short: a Unix socket path has at most 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="ec-rs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _ignore(_message: str) -> None:
    pass


def test_concurrent_users_start_one_server_and_the_last_one_out_stops_it(folder: Path) -> None:
    sock, data = folder / "redis.sock", folder / "redis"
    count = 6
    inside = threading.Barrier(count, timeout=TIMEOUT)
    leases: list[redisserver.Lease] = []
    seen: list[bool] = []
    errors: list[BaseException] = []

    def user(index: int) -> None:
        try:
            with redisserver.use(sock, data, f"user {index}", _ignore) as lease:
                leases.append(lease)
                seen.append(redisserver.answers(sock))
                inside.wait()  # everybody is in at once: nobody may stop the server now
                seen.append(redisserver.answers(sock))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors
    assert len(seen) == 2 * count and all(seen)
    owners = [lease for lease in leases if lease.process is not None]
    assert len(owners) == 1  # only one started a server
    assert owners[0].process is not None and owners[0].process.returncode is not None  # and it stopped it
    assert not redisserver.answers(sock)


def test_the_owner_waits_for_the_other_users_before_it_stops_the_server(folder: Path) -> None:
    sock, data = folder / "redis.sock", folder / "redis"
    owner_in, owner_waits, user_in, user_may_leave = (threading.Event() for _ in range(4))
    lease_of_owner: list[redisserver.Lease] = []

    def owner() -> None:
        def waiting(message: str) -> None:
            assert "waiting for the other commands" in message
            owner_waits.set()

        with redisserver.use(sock, data, "email-connector fetch", waiting) as lease:
            lease_of_owner.append(lease)
            owner_in.set()
            assert user_in.wait(TIMEOUT)

    def user() -> None:
        assert owner_in.wait(TIMEOUT)
        with redisserver.use(sock, data, "email-connector accounts list", _ignore) as lease:
            assert lease.process is None  # reused the owner's server
            user_in.set()
            assert user_may_leave.wait(TIMEOUT)

    threads = [threading.Thread(target=owner), threading.Thread(target=user)]
    for thread in threads:
        thread.start()
    assert owner_waits.wait(TIMEOUT)  # the owner's command is done, but the user still works
    assert redisserver.answers(sock)
    assert redisserver.owner_of(sock) == (redisserver.os.getpid(), "email-connector fetch")
    user_may_leave.set()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not redisserver.answers(sock)
    process = lease_of_owner[0].process
    assert process is not None and process.returncode is not None


def test_up_waits_for_an_owner_then_keeps_its_own_server_while_commands_come_and_go(folder: Path) -> None:
    sock, data = folder / "redis.sock", folder / "redis"
    command_in, up_waits, up_in, up_may_leave = (threading.Event() for _ in range(4))
    messages: list[str] = []

    def command() -> None:
        with redisserver.use(sock, data, "email-connector worker", _ignore) as lease:
            assert lease.process is not None
            command_in.set()
            assert up_waits.wait(TIMEOUT)

    def up() -> None:
        assert command_in.wait(TIMEOUT)

        def waiting(message: str) -> None:
            messages.append(message)
            up_waits.set()

        with redisserver.own(sock, data, "email-connector up", waiting) as lease:
            assert lease.process is not None
            up_in.set()
            assert up_may_leave.wait(TIMEOUT)

    threads = [threading.Thread(target=command), threading.Thread(target=up)]
    for thread in threads:
        thread.start()
    assert up_in.wait(TIMEOUT)
    assert messages[0].startswith("waiting for email-connector worker (pid ")
    assert redisserver.owner_of(sock) == (redisserver.os.getpid(), "email-connector up")
    # A command while up runs: it reuses up's server and leaves it running.
    with redisserver.use(sock, data, "email-connector fetch-due", _ignore) as lease:
        assert lease.process is None and redisserver.answers(sock)
    assert redisserver.answers(sock)
    # A second up is refused at once.
    second = redisserver.own(sock, data, "email-connector up", _ignore)
    with pytest.raises(RuntimeError, match="email-connector up already runs for this instance"):
        second.__enter__()
    up_may_leave.set()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not redisserver.answers(sock)


def test_a_server_nobody_owns_is_used_and_left_alone(folder: Path) -> None:
    """One started some other way (the test kit, an older version) is never stopped by a command."""
    sock, data = folder / "redis.sock", folder / "redis"
    process = redisserver.start(sock, data, persist=False)
    try:
        with redisserver.use(sock, data, "email-connector fetch", _ignore) as lease:
            assert lease.process is None
        assert redisserver.answers(sock) and process.poll() is None
    finally:
        redisserver.stop(process)


def test_what_a_command_queued_outlives_the_server_it_started(folder: Path) -> None:
    """The server saves its data when stopped: a job queued by `fetch NAME` waits for the next worker."""
    from redis import Redis

    sock, data = folder / "redis.sock", folder / "redis"
    with redisserver.use(sock, data, "email-connector fetch", _ignore) as lease:
        assert lease.process is not None
        with Redis(unix_socket_path=str(sock)) as client:
            client.rpush("rq:queue:fetch", "job-1")
    assert not redisserver.answers(sock)
    with redisserver.use(sock, data, "email-connector worker", _ignore) as lease:
        assert lease.process is not None
        with Redis(unix_socket_path=str(sock)) as client:
            assert client.lrange("rq:queue:fetch", 0, -1) == [b"job-1"]
