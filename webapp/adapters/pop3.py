"""POP3: connecting, STLS and login, over poplib."""

from __future__ import annotations

import poplib
from collections.abc import Iterator
from contextlib import contextmanager

from webapp.adapters.auth import PasswordAuth
from webapp.adapters.endpoint import Endpoint
from webapp.adapters.errors import AdapterError, AuthError, PermanentError
from webapp.adapters.linebreaks import has_line_break
from webapp.adapters.network import tls_context, translate

# Real mail has lines longer than poplib's 2048-byte default.
poplib._MAXLINE = 1024 * 1024  # type: ignore[attr-defined]


@contextmanager
def session(endpoint: Endpoint, credentials: PasswordAuth) -> Iterator[poplib.POP3]:
    """Yield a logged-in POP3 connection; failures are raised as adapter errors."""
    client: poplib.POP3 | None = None
    try:
        if has_line_break(credentials.username, credentials.password):
            raise PermanentError("refused to send a value with a line break or NUL to the POP3 server")
        if endpoint.security == "tls":
            client = poplib.POP3_SSL(
                endpoint.host, endpoint.port, timeout=endpoint.timeout, context=tls_context(endpoint.tls)
            )
        else:
            client = poplib.POP3(endpoint.host, endpoint.port, timeout=endpoint.timeout)
            if endpoint.security == "starttls":
                client.stls(tls_context(endpoint.tls))
        try:
            client.user(credentials.username)
            client.pass_(credentials.password)
        except poplib.error_proto as exc:
            raise AuthError(f"authentication failed at {endpoint.describe()}: {_server_text(exc)}") from None
    except AdapterError:
        _close(client)
        raise
    except poplib.error_proto as exc:
        _close(client)
        raise PermanentError(f"{endpoint.describe()} refused: {_server_text(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - any other failure is explained by translate()
        _close(client)
        raise translate(exc, endpoint) from None
    try:
        yield client
    except poplib.error_proto as exc:
        raise PermanentError(f"{endpoint.describe()} refused: {_server_text(exc)}") from None
    except OSError as exc:
        raise translate(exc, endpoint) from None
    finally:
        # QUIT only: it commits nothing because this adapter never sends DELE unless asked.
        try:
            if client is not None:
                client.quit()
        except Exception:  # noqa: BLE001 - the server may already be gone
            _close(client)


def check_login(endpoint: Endpoint, credentials: PasswordAuth) -> str:
    """Log in and read the mailbox size; return a one-line description."""
    with session(endpoint, credentials) as client:
        count, _size = client.stat()
        return f"POP3 login OK; {count} message(s) on the server"


def uidls(client: poplib.POP3) -> list[tuple[int, str]]:
    """(message number, UIDL) of every message, oldest first. A server without UIDL cannot be used."""
    try:
        _response, lines, _octets = client.uidl()
    except poplib.error_proto as exc:
        raise PermanentError(f"the POP3 server does not support UIDL: {_server_text(exc)}") from None
    result = []
    for line in lines:
        number, _, uidl = line.decode("utf-8", "replace").strip().partition(" ")
        uidl = uidl.strip()
        if number.isdigit() and uidl and not has_line_break(uidl):
            result.append((int(number), uidl[:255]))
    return sorted(result)


def size(client: poplib.POP3, number: int) -> int:
    """The message's size in octets (LIST n)."""
    response = client.list(number)
    text = response.decode("ascii", "replace") if isinstance(response, bytes) else str(response)
    parts = text.split()
    return int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else 0


def headers(client: poplib.POP3, number: int) -> bytes:
    """Only the header block (TOP n 0), for messages over the size limit."""
    _response, lines, _octets = client.top(number, 0)
    return b"".join(line + b"\r\n" for line in lines)


def retrieve(client: poplib.POP3, number: int) -> bytes:
    """RETR one message: its lines (already dot-unstuffed by poplib) rejoined with CRLF. Never DELE."""
    _response, lines, _octets = client.retr(number)
    return b"".join(line + b"\r\n" for line in lines)


def _server_text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text.strip() or exc.__class__.__name__


def _close(client: poplib.POP3 | None) -> None:
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass
