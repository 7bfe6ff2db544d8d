"""POP3 over poplib: a ``Pop3Session`` offers exactly what the services do with a maildrop.

It never sends DELE unless asked (``delete``), and it reads lines as long as real mail has (poplib's
2,048-byte limit is raised for our connections only, not for the whole process).
"""

from __future__ import annotations

import base64
import poplib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from webapp.adapters.errors import AdapterError, AuthError, PermanentError
from webapp.adapters.mail.auth import Auth, PasswordAuth, XOAuth2Auth
from webapp.adapters.mail.endpoint import Endpoint
from webapp.adapters.mail.network import tls_context, translate
from webapp.adapters.mime.linebreaks import has_line_break

# Real mail has lines longer than poplib's 2048-byte default.
MAX_LINE = 1024 * 1024


class _LongLines:
    """poplib's line reader with our limit (its own reads the module-wide ``_MAXLINE``)."""

    file: Any
    _debugging: int

    def _getline(self) -> tuple[bytes, int]:
        line: bytes = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        octets = len(line)
        # The server may end lines in CRLF, LF, or start them with a stray CR (as poplib allows).
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets


class _ClosedOnFailedGreeting:
    """poplib connects in its constructor and leaves the socket open when the greeting fails (EOF, a
    timeout, a reset after the TLS handshake): close it there, not whenever the garbage collector runs."""

    sock: Any
    file: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            for stream in (getattr(self, "file", None), getattr(self, "sock", None)):
                if stream is not None:
                    stream.close()
            raise


class _POP3(_ClosedOnFailedGreeting, _LongLines, poplib.POP3):
    pass


class _POP3_SSL(_ClosedOnFailedGreeting, _LongLines, poplib.POP3_SSL):
    pass


@dataclass(frozen=True)
class MaildropStat:
    messages: int
    octets: int


class Pop3Session:
    """A logged-in POP3 connection. Failures come out as adapter errors (see :func:`session`)."""

    def __init__(self, client: poplib.POP3, endpoint: Endpoint) -> None:
        self._client = client
        self.endpoint = endpoint

    def stat(self) -> MaildropStat:
        """STAT: how many messages the maildrop holds, and their size in octets."""
        count, octets = self._client.stat()
        return MaildropStat(int(count), int(octets))

    def uidls(self) -> list[tuple[int, str]]:
        """(message number, UIDL) of every message, oldest first. A server without UIDL cannot be used."""
        try:
            _response, lines, _octets = self._client.uidl()
        except poplib.error_proto as exc:
            raise PermanentError(f"the POP3 server does not support UIDL: {_server_text(exc)}") from None
        result = []
        for line in lines:
            number, _, uidl = line.decode("utf-8", "replace").strip().partition(" ")
            uidl = uidl.strip()
            if number.isdigit() and uidl and not has_line_break(uidl):
                result.append((int(number), uidl[:255]))
        return sorted(result)

    def size(self, number: int) -> int:
        """The message's size in octets (LIST n)."""
        response = self._client.list(number)
        text = response.decode("ascii", "replace") if isinstance(response, bytes) else str(response)
        parts = text.split()
        return int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else 0

    def headers(self, number: int) -> bytes:
        """Only the header block (TOP n 0), for messages over the size limit."""
        _response, lines, _octets = self._client.top(number, 0)
        return b"".join(line + b"\r\n" for line in lines)

    def retrieve(self, number: int) -> bytes:
        """RETR one message: its lines (already dot-unstuffed by poplib) rejoined with CRLF. Never DELE."""
        _response, lines, _octets = self._client.retr(number)
        return b"".join(line + b"\r\n" for line in lines)

    def delete(self, number: int) -> None:
        """DELE: only when the account asked for it; the server applies it at QUIT (end of the session)."""
        self._client.dele(number)


@contextmanager
def session(endpoint: Endpoint, auth: Auth) -> Iterator[Pop3Session]:
    """Yield a logged-in :class:`Pop3Session`; failures are raised as adapter errors."""
    client: poplib.POP3 | None = None
    try:
        if isinstance(auth, PasswordAuth) and has_line_break(auth.username, auth.password):
            raise PermanentError("refused to send a value with a line break or NUL to the POP3 server")
        if endpoint.security == "tls":
            client = _POP3_SSL(
                endpoint.host, endpoint.port, timeout=endpoint.timeout, context=tls_context(endpoint.tls)
            )
        else:
            client = _POP3(endpoint.host, endpoint.port, timeout=endpoint.timeout)
            if endpoint.security == "starttls":
                client.stls(tls_context(endpoint.tls))
        try:
            if isinstance(auth, XOAuth2Auth):
                _xoauth2(client, auth)
            else:
                client.user(auth.username)
                client.pass_(auth.password)
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
        yield Pop3Session(client, endpoint)
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


def _xoauth2(client: poplib.POP3, auth: XOAuth2Auth) -> None:
    """AUTH XOAUTH2 with its initial response (RFC 5034). A refused token gets a "+ " challenge carrying the
    reason; the client answers it with an empty line and the server then says -ERR."""
    try:
        initial = base64.b64encode(auth.sasl().encode()).decode("ascii")
    except ValueError as exc:
        raise PermanentError(f"refused to send it to the POP3 server: {exc}") from None
    # poplib has no AUTH of its own: its line primitives (private, stable since Python 2) carry it.
    wire: Any = client
    reply = wire._shortcmd(f"AUTH XOAUTH2 {initial}")
    if not reply.startswith(b"+OK"):
        wire._putcmd("")
        wire._getresp()  # raises error_proto with the server's -ERR


def check_login(endpoint: Endpoint, auth: Auth) -> str:
    """Log in and read the maildrop's size; return a one-line description."""
    with session(endpoint, auth) as pop3:
        count = pop3.stat().messages
        return f"POP3 login OK; {count:,} message{'' if count == 1 else 's'} on the server"


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
