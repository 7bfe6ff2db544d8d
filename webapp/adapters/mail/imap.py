"""IMAP over imapclient: an ``ImapSession`` offers exactly what the services do with a mailbox.

Reading never changes the server (EXAMINE, BODY.PEEK); the changes an account may opt in to (mark seen,
move, delete after fetching) are methods of their own. Whole messages are fetched by our own FETCH reader
(imapfetch), which reaches into imapclient and imaplib internals: it is used only with the versions it
was written and tested for, and imapclient's own FETCH otherwise.
"""

from __future__ import annotations

import imaplib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from webapp.adapters.errors import AdapterError, AuthError, PermanentError, TransientError
from webapp.adapters.mail import imapfetch
from webapp.adapters.mail.auth import Auth, XOAuth2Auth
from webapp.adapters.mail.endpoint import Endpoint
from webapp.adapters.mail.network import tls_context, translate
from webapp.adapters.mime.linebreaks import has_line_break


def check_arg(value: str) -> str:
    """Refuse NUL, CR and LF in anything sent inside an IMAP command (imapclient does not escape them)."""
    if has_line_break(value):
        raise PermanentError("refused to send a value with a line break or NUL to the IMAP server")
    return value


class ImapSession:
    """A logged-in IMAP connection. Failures come out as adapter errors (see :func:`session`)."""

    def __init__(self, client: IMAPClient, endpoint: Endpoint) -> None:
        self._client = client
        self.endpoint = endpoint

    def examine(self, folder: str) -> FolderInfo:
        """Open ``folder`` read-only (EXAMINE): nothing on the server changes."""
        return self.open_folder(folder, writable=False)

    def open_folder(self, folder: str, *, writable: bool) -> FolderInfo:
        """EXAMINE ``folder``, or SELECT it when the account asked for changes on the server after fetching."""
        try:
            info = self._client.select_folder(check_arg(folder), readonly=not writable)
        except IMAPClientError as exc:
            raise PermanentError(
                f"the folder {folder!r} cannot be opened: {_server_text(exc)}", kind="folder"
            ) from None
        _take_pending_news(self._client)  # the counts just read are no news to idle()
        return FolderInfo(folder, int(info.get(b"UIDVALIDITY", 0)), int(info.get(b"EXISTS", 0)))

    def noop(self) -> None:
        """NOOP: proves the connection alive (and resets the server's auto-logout timer)."""
        self._client.noop()

    @property
    def can_idle(self) -> bool:
        """Does the server offer IDLE (RFC 2177)?"""
        return bool(self._client.has_capability("IDLE"))

    def idle(self, seconds: float, stop: Callable[[], bool] = lambda: False) -> bool:
        """IDLE in the open folder for at most ``seconds`` (less once the server announces new mail, or
        ``stop()`` says so), then DONE; True when the server announced new mail (EXISTS or RECENT).

        DONE's answer is the watchdog: a connection that went silent (no RST, a dead NAT entry) gives no
        answer within the endpoint's timeout and comes out as a timeout error; a closed one as a reset.
        Call it again at once to go on idling (RFC 2177 asks for a new IDLE at least every 29 minutes).
        """
        client = self._client
        _start_idle(client, self.endpoint)
        deadline = time.monotonic() + max(0.0, seconds)
        # An EXISTS the server sent before its "+ idling" (mail that came between two IDLEs) is kept by
        # imaplib, not returned by imapclient: taken here, or that mail would wait for the next one.
        news = _take_pending_news(client)
        while not news and not stop():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            wait, started = min(left, IDLE_SLICE_SECONDS), time.monotonic()
            responses = client.idle_check(timeout=wait)
            if any(_says_bye(r) for r in responses):
                raise TransientError(f"{self.endpoint.describe()} closed the connection (BYE)", kind="reset")
            news = any(_announces_mail(r) for r in responses)
            if not responses and time.monotonic() - started < wait / 2:
                break  # readable, yet no line: the connection ended (imapclient returns nothing then); DONE tells
        _done, responses = client.idle_done()
        news = news or any(_announces_mail(r) for r in responses)
        if not news:
            # What the server may hold back until a command outside IDLE (RFC 2177 allows it): NOOP.
            _text, responses = client.noop()
            news = any(_announces_mail(r) for r in responses)
        return news

    def list_folders(self) -> list[ServerFolder]:
        """The server's folders with their message counts (LIST, then STATUS for each selectable one)."""
        result = []
        for flags, delimiter, name in self._client.list_folders():
            flag_names = tuple(f.decode("ascii", "replace") if isinstance(f, bytes) else str(f) for f in flags)
            sep = delimiter.decode("ascii", "replace") if isinstance(delimiter, bytes) else str(delimiter or "")
            folder = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            count = None
            if "\\Noselect" not in flag_names and "\\NonExistent" not in flag_names and not has_line_break(folder):
                status = self._client.folder_status(folder, [b"MESSAGES"])
                count = int(status.get(b"MESSAGES", 0))
            result.append(ServerFolder(folder, sep, flag_names, count))
        return result

    def sent_folder(self) -> str:
        """The folder the server uses for sent mail: the one flagged \\Sent (RFC 6154), else ``Sent``."""
        for flags, _delimiter, name in self._client.list_folders():
            names = {f.decode("ascii", "replace") if isinstance(f, bytes) else str(f) for f in flags}
            if "\\Sent" in names:
                return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        return "Sent"

    def append(self, folder: str, raw: bytes) -> None:
        """APPEND ``raw`` to ``folder`` flagged \\Seen, creating the folder if the server asks for it (TRYCREATE)."""
        target = check_arg(folder)
        try:
            self._client.append(target, raw, flags=[b"\\Seen"])
        except IMAPClientError as exc:
            if "TRYCREATE" not in str(exc):
                raise
            self._client.create_folder(target)
            self._client.append(target, raw, flags=[b"\\Seen"])

    def all_uids(self) -> list[int]:
        """Every UID in the open folder, ascending."""
        return sorted(int(uid) for uid in self._client.search(["ALL"]))

    def sizes(self, uids: Sequence[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID (to keep oversized messages to their headers)."""
        if not uids:
            return {}
        response = self._client.fetch(list(uids), [b"RFC822.SIZE"])
        return {int(uid): int(data.get(b"RFC822.SIZE", 0)) for uid, data in response.items()}

    def fetch_messages(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """The exact bytes (``BODY.PEEK[]``: no \\Seen is set), flags and arrival time of ``uids``.

        A UID that is gone from the server (expunged meanwhile) is simply missing from the result.
        """
        return self._fetch(uids, b"BODY.PEEK[]", b"BODY[]")

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedMessage]:
        """Only the header block of ``uids`` (``BODY.PEEK[HEADER]``), for messages over the size limit."""
        return self._fetch(uids, b"BODY.PEEK[HEADER]", b"BODY[HEADER]")

    def mark_seen(self, uids: Sequence[int]) -> None:
        """Flag ``uids`` of the open folder \\Seen on the server (nothing is sent for none)."""
        if uids:
            self._client.add_flags(list(uids), [b"\\Seen"], silent=True)

    def move(self, uids: Sequence[int], folder: str) -> None:
        """MOVE (RFC 6851) when offered, else COPY, flag \\Deleted and expunge exactly those UIDs; a target
        that does not exist yet (TRYCREATE) is created once."""
        if not uids:
            return
        target = check_arg(folder)
        try:
            self._move_or_copy(uids, target)
        except IMAPClientError as exc:
            if "TRYCREATE" not in str(exc):
                raise
            self._client.create_folder(target)
            self._move_or_copy(uids, target)

    def delete(self, uids: Sequence[int]) -> None:
        """Flag ``uids`` \\Deleted and expunge only them (UIDPLUS), never other deleted messages."""
        if not uids:
            return
        self._client.add_flags(list(uids), [b"\\Deleted"], silent=True)
        if self._client.has_capability("UIDPLUS"):
            self._client.uid_expunge(list(uids))
        else:
            self._client.expunge()

    def _move_or_copy(self, uids: Sequence[int], target: str) -> None:
        if self._client.has_capability("MOVE"):
            self._client.move(list(uids), target)
            return
        self._client.copy(list(uids), target)
        self.delete(uids)

    def _fetch(self, uids: Sequence[int], item: bytes, answer: bytes) -> list[FetchedMessage]:
        if imapfetch.USABLE:
            response = imapfetch.uid_fetch(self._client, uids, f"FLAGS INTERNALDATE {item.decode('ascii')}")
        else:  # an imapclient or Python our reader was not written for: imapclient's own, slower FETCH
            response = self._client.fetch(list(uids), [b"FLAGS", b"INTERNALDATE", item]) if uids else {}
        result = []
        for uid in uids:
            data = response.get(uid)
            if not data or not isinstance(data.get(answer), bytes):
                continue  # gone from the server meanwhile (or answered NIL)
            flags = tuple(
                f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f) for f in data.get(b"FLAGS", ())
            )
            internal = data.get(b"INTERNALDATE")
            arrived = internal if isinstance(internal, datetime) else None
            result.append(FetchedMessage(uid, data[answer], flags, arrived))
        return result


def _xoauth2(client: IMAPClient, auth: XOAuth2Auth) -> None:
    """AUTHENTICATE XOAUTH2. A refused token gets a challenge carrying the reason, answered with an empty
    line (imapclient's ``oauth2_login`` sends the token again there, and the server waits)."""
    try:
        initial = auth.sasl().encode()
    except ValueError as exc:
        raise PermanentError(f"refused to send it to the IMAP server: {exc}") from None
    answered: list[bytes] = []

    def respond(challenge: bytes) -> bytes:
        answered.append(challenge)
        return initial if len(answered) == 1 else b""

    try:
        client._imap.authenticate("XOAUTH2", respond)
    except imaplib.IMAP4.error as exc:
        raise LoginError(str(exc)) from None


@contextmanager
def session(endpoint: Endpoint, auth: Auth) -> Iterator[ImapSession]:
    """Yield a logged-in :class:`ImapSession`; failures are raised as adapter errors."""
    client: IMAPClient | None = None
    try:
        context = tls_context(endpoint.tls) if endpoint.security != "none" else None
        client = IMAPClient(
            endpoint.host,
            port=endpoint.port,
            ssl=endpoint.security == "tls",
            ssl_context=context,
            timeout=endpoint.timeout,
        )
        if endpoint.security == "starttls":
            client.starttls(context)
        try:
            if isinstance(auth, XOAuth2Auth):
                _xoauth2(client, auth)
            else:
                client.login(check_arg(auth.username), check_arg(auth.password))
        except LoginError as exc:
            raise AuthError(f"authentication failed at {endpoint.describe()}: {_server_text(exc)}") from None
    except AdapterError:
        _close(client)
        raise
    except (IMAPClientError, imaplib.IMAP4.error) as exc:
        _close(client)
        raise PermanentError(f"{endpoint.describe()} refused: {_server_text(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - any other failure is explained by translate()
        _close(client)
        raise translate(exc, endpoint) from None
    try:
        yield ImapSession(client, endpoint)
    except imaplib.IMAP4.abort as exc:  # the connection ended under a command (EOF, a broken socket, a BYE)
        raise TransientError(
            f"{endpoint.describe()} closed the connection: {_server_text(exc)}", kind="reset", detail=_server_text(exc)
        ) from None
    except (IMAPClientError, imaplib.IMAP4.error) as exc:
        raise PermanentError(f"{endpoint.describe()} refused: {_server_text(exc)}") from None
    except AdapterError:
        raise
    except OSError as exc:
        raise translate(exc, endpoint) from None
    finally:
        _logout(client)


def check_login(endpoint: Endpoint, auth: Auth) -> str:
    """Log in and open the folder read-only (EXAMINE); return a one-line description."""
    folder = check_arg(endpoint.folder or "INBOX")
    with session(endpoint, auth) as imap:
        info = imap.examine(folder)
        return f"IMAP login OK; folder {folder!r} has {_counted(info.exists, 'message')}"


@dataclass(frozen=True)
class FolderInfo:
    name: str
    uidvalidity: int
    exists: int


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    raw: bytes = field(repr=False)
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None

    @property
    def seen(self) -> bool:
        """Was the message flagged \\Seen on the server when it was fetched?"""
        return "\\Seen" in self.flags


@dataclass(frozen=True)
class ServerFolder:
    name: str
    delimiter: str
    flags: tuple[str, ...]
    messages: int | None  # None for a folder that cannot be selected


def _counted(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _server_text(exc: Exception) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text.strip() or exc.__class__.__name__


# idle() looks at its stop() this often: how long stopping a subscription may take.
IDLE_SLICE_SECONDS = 0.5
MAX_LINES_BEFORE_IDLING = 10_000  # untagged lines a server may send between IDLE and its "+ idling"


def _announces_mail(response: object) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")


def _start_idle(client: IMAPClient, endpoint: Endpoint) -> None:
    """Send IDLE and read up to the server's "+ idling". imapclient's own ``idle()`` raises when an untagged
    response (a new message's EXISTS) comes first, which servers may send; here imaplib keeps those for
    :func:`_take_pending_news`. (imapclient and imaplib internals: its ``idle_check``/``idle_done`` go on
    from the tag set here.)"""
    # Asked first (as imapclient's idle() does): asked later, inside IDLE, it would send CAPABILITY there.
    if not client.has_capability("IDLE"):
        raise IMAPClientError("the server does not offer IDLE")
    imap = client._imap
    tag = imap._command("IDLE")
    for _ in range(MAX_LINES_BEFORE_IDLING):
        if imap._get_response() is None:  # the continuation: idling
            client._idle_tag = tag
            return
        if "BYE" in imap.untagged_responses:  # the server is leaving (a restart, a kick): reconnect
            raise TransientError(f"{endpoint.describe()} closed the connection (BYE)", kind="reset")
        answered = imap.tagged_commands.get(tag)
        if answered is not None:  # IDLE refused (NO/BAD)
            imap.tagged_commands.pop(tag, None)
            kind, data = answered
            said = data[0].decode("utf-8", "replace") if data and isinstance(data[0], bytes) else ""
            raise IMAPClientError(f"IDLE refused: {kind} {said}".strip())
    raise IMAPClientError(f"no answer to IDLE after {MAX_LINES_BEFORE_IDLING} lines")


def _take_pending_news(client: IMAPClient) -> bool:
    """Take EXISTS/RECENT responses imaplib kept aside (imaplib internals, as imapfetch uses them)."""
    untagged = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(untagged, dict):
        return False
    found = [untagged.pop(key, None) for key in ("EXISTS", "RECENT")]
    return any(found)


def _says_bye(response: object) -> bool:
    return isinstance(response, tuple) and len(response) >= 1 and response[0] == b"BYE"


def _close(client: IMAPClient | None) -> None:
    if client is not None:
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail in any way
            pass


def _logout(client: IMAPClient | None) -> None:
    if client is None:
        return
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the server may already be gone; nothing to report
        _close(client)
