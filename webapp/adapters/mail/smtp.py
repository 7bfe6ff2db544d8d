"""SMTP: connecting (plain, STARTTLS, implicit TLS) and AUTH, over smtplib.

Envelope addresses go out with their domain as IDNA A-labels; a non-ASCII local part (or UTF-8 in the
headers) is sent with SMTPUTF8 when the server offers it, and refused with the address named when not.
Where the server offers PIPELINING (RFC 2920: Postfix, Exchange, Gmail and most others do), MAIL, every
RCPT and DATA go out in one write and the content after their replies: two round trips a message
instead of three plus one per recipient.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from webapp.adapters.errors import AdapterError, AuthError, ErrorKind, PermanentError, TransientError
from webapp.adapters.mail.auth import Auth, PasswordAuth, XOAuth2Auth
from webapp.adapters.mail.endpoint import Endpoint
from webapp.adapters.mail.network import security_hint, tls_context, translate
from webapp.adapters.mime import addresses
from webapp.adapters.mime.linebreaks import has_line_break


@dataclass(frozen=True)
class Refusal:
    """A recipient the server refused, with its reply."""

    address: str
    code: int
    text: str

    @property
    def transient(self) -> bool:
        """A 4xx reply: the server may accept this recipient on a later try."""
        return 400 <= self.code < 500


@dataclass(frozen=True)
class SendReport:
    """What the server did with a message it took (after DATA): who will get it and who was refused."""

    accepted: tuple[str, ...]
    refused: tuple[Refusal, ...] = ()

    def describe_refusals(self) -> str:
        """The refused recipients with their replies, on one line (``address: code text; …``)."""
        return "; ".join(f"{r.address}: {r.code} {r.text}" for r in self.refused)


class RecipientsRefused(AdapterError):
    """The server refused every recipient: nothing was sent. ``report`` has each reply; the class says
    whether all were temporary refusals (4xx: retry) or not."""

    kind = ErrorKind.RECIPIENTS

    def __init__(self, message: str, report: SendReport) -> None:
        super().__init__(message)
        self.report = report


class RecipientsRefusedForNow(RecipientsRefused, TransientError):
    pass


class RecipientsRefusedForGood(RecipientsRefused, PermanentError):
    pass


class SmtpSession:
    """A connected (and, given an auth, logged-in) SMTP session: what the services need of it."""

    def __init__(self, client: smtplib.SMTP, endpoint: Endpoint) -> None:
        self._client = client
        self.endpoint = endpoint

    @property
    def open(self) -> bool:
        """False once the connection was closed (after a 421, or a DATA that had to be abandoned)."""
        return self._client.sock is not None

    def noop(self) -> None:
        """Send NOOP: proves the connection (and the login) works, changes nothing."""
        self._client.noop()

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        before_data: Callable[[], None] | None = None,
    ) -> SendReport:
        """Send ``raw`` to exactly ``recipients`` (never read back from headers); report each recipient.

        Every recipient refused raises RecipientsRefused; other failures: 4xx transient, 5xx permanent.
        ``before_data`` runs once the recipients are accepted, just before DATA: from then on the server
        may have the message whatever happens to us (the outbox records that first). The session stays
        usable for the next message after a refusal.
        """
        endpoint, client = self.endpoint, self._client
        if has_line_break(sender, *recipients):
            raise PermanentError("refused to send an address with a line break or NUL to the SMTP server")
        try:
            envelope_sender = addresses.envelope(sender)
            envelope = {addresses.envelope(r): r for r in recipients}
        except addresses.AddressError as exc:
            raise PermanentError(f"refused to send to an unusable address: {exc}", kind="recipients") from None
        non_ascii = [a for a in (sender, *recipients) if addresses.needs_smtputf8(a)]
        utf8 = bool(non_ascii) or not raw.partition(b"\r\n\r\n")[0].isascii()
        options: list[str] = []
        if utf8:
            if not client.has_extn("smtputf8"):
                named = ", ".join(dict.fromkeys(non_ascii)) or "UTF-8 in the headers"
                raise PermanentError(
                    f"{endpoint.describe()} does not accept non-ASCII addresses (no SMTPUTF8): {named}",
                    kind="smtputf8",
                )
            options.append("SMTPUTF8")
            if client.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")
        try:
            refused = _sendmail(client, envelope_sender, list(envelope), raw, options, before_data)
        except smtplib.SMTPRecipientsRefused as exc:
            report = SendReport((), _refusals(exc.recipients, envelope))
            refusal = RecipientsRefusedForNow if all(r.transient for r in report.refused) else RecipientsRefusedForGood
            message = f"{endpoint.describe()} refused every recipient: {report.describe_refusals()}"
            raise refusal(message, report) from None
        except smtplib.SMTPResponseException as exc:
            raise _response_error(exc, endpoint) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise _disconnected(exc, endpoint) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{endpoint.describe()}: {exc}", kind="protocol") from None
        except (UnicodeError, ValueError) as exc:
            raise PermanentError(f"refused to send: {type(exc).__name__} in the envelope", kind="recipients") from None
        except OSError as exc:
            raise translate(exc, endpoint) from None
        refusals = _refusals(refused, envelope)
        refused_addresses = {r.address for r in refusals}
        return SendReport(tuple(r for r in recipients if r not in refused_addresses), refusals)


def _sendmail(
    client: smtplib.SMTP,
    sender: str,
    recipients: list[str],
    raw: bytes,
    options: list[str],
    before_data: Callable[[], None] | None,
) -> dict[str, tuple[int, bytes]]:
    """smtplib's ``sendmail``, with ``before_data`` called between the last RCPT and DATA (pipelined
    where the server offers it)."""
    client.ehlo_or_helo_if_needed()
    esmtp = [f"size={len(raw)}", *options] if client.has_extn("size") else list(options)
    if client.has_extn("pipelining") and client.does_esmtp:
        return _sendmail_pipelined(client, sender, recipients, raw, esmtp, before_data)
    if before_data is None:
        return client.sendmail(sender, recipients, raw, mail_options=options)
    code, reply = client.mail(sender, esmtp if client.does_esmtp else [])
    if code != 250:
        _abandon(client, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = client.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
        if code == 421:
            client.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        client.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    try:
        before_data()
    except BaseException:
        _abandon(client, 0)  # RSET: the next message starts a transaction of its own
        raise
    code, reply = client.data(raw)
    if code != 250:
        _abandon(client, code)
        raise smtplib.SMTPDataError(code, reply)
    return refused


def _sendmail_pipelined(
    client: smtplib.SMTP,
    sender: str,
    recipients: list[str],
    raw: bytes,
    esmtp: list[str],
    before_data: Callable[[], None] | None,
) -> dict[str, tuple[int, bytes]]:
    """RFC 2920: MAIL, every RCPT and DATA in one write, then their replies in order; the content goes
    only after DATA was answered 354 and ``before_data`` has run. Nothing can be delivered before the
    content's final dot, so sending DATA early changes nothing about when the server may have the mail;
    a DATA answered 354 that must not be followed by content (``before_data`` failed, or nobody to send
    to) is abandoned by closing the connection, the only way out of DATA that delivers nothing."""
    if any(option.lower() == "smtputf8" for option in esmtp):
        client.command_encoding = "utf-8"
    options = "".join(f" {option}" for option in esmtp)
    commands = [f"MAIL FROM:{smtplib.quoteaddr(sender)}{options}"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(recipient)}" for recipient in recipients]
    commands.append("DATA")
    if any("\r" in command or "\n" in command for command in commands):
        raise ValueError("command and arguments contain prohibited newline characters")
    client.send("".join(f"{command}\r\n" for command in commands).encode(client.command_encoding))
    mail_code, mail_reply = client.getreply()
    rcpt_replies = [client.getreply() for _ in recipients]
    data_code, data_reply = client.getreply()
    refused = {r: reply for r, reply in zip(recipients, rcpt_replies, strict=True) if reply[0] not in (250, 251)}
    if 421 in (mail_code, data_code, *(code for code, _ in rcpt_replies)):
        client.close()
    if mail_code != 250:
        _leave_data(client, data_code)
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    if len(refused) == len(recipients) or not client.sock:
        _leave_data(client, data_code)
        raise smtplib.SMTPRecipientsRefused(refused)
    if data_code != 354:
        _abandon(client, data_code)
        raise smtplib.SMTPDataError(data_code, data_reply)
    try:
        if before_data is not None:
            before_data()
    except BaseException:
        client.close()  # in DATA: closing is the only way out that delivers nothing
        raise
    content = re.sub(rb"(?m)^\.", b"..", raw)
    if not content.endswith(b"\r\n"):
        content += b"\r\n"
    client.send(content + b".\r\n")
    code, reply = client.getreply()
    if code != 250:
        _abandon(client, code)
        raise smtplib.SMTPDataError(code, reply)
    client.command_encoding = "ascii"
    return refused


def _leave_data(client: smtplib.SMTP, data_code: int) -> None:
    """After a pipelined transaction failed before its content: RSET, or close if DATA was answered 354
    anyway (content must not follow, and only closing ends DATA without delivering)."""
    if not client.sock:
        return
    if data_code == 354:
        client.close()
    else:
        _abandon(client, 0)


def _abandon(client: smtplib.SMTP, code: int) -> None:
    """After a refused MAIL or DATA: reset the transaction, or close on 421 (the server is leaving)."""
    if code == 421:
        client.close()
    else:
        try:
            client.rset()
        except smtplib.SMTPException:
            client.close()


@contextmanager
def session(endpoint: Endpoint, auth: Auth | None) -> Iterator[SmtpSession]:
    """Yield a connected (and, given ``auth``, logged-in) SMTP session; failures are adapter errors."""
    client: smtplib.SMTP | None = None
    try:
        if endpoint.security == "tls":
            client = smtplib.SMTP_SSL(
                endpoint.host, endpoint.port, timeout=endpoint.timeout, context=tls_context(endpoint.tls)
            )
        else:
            client = smtplib.SMTP(endpoint.host, endpoint.port, timeout=endpoint.timeout)
        client.ehlo()
        if endpoint.security == "starttls":
            if not client.has_extn("starttls"):
                raise PermanentError(f"{endpoint.describe()} does not offer STARTTLS", kind="tls")
            client.starttls(context=tls_context(endpoint.tls))
            client.ehlo()
        if auth is not None:
            _login(client, endpoint, auth)
    except AdapterError:
        _close(client)
        raise
    except smtplib.SMTPResponseException as exc:
        _close(client)
        raise _response_error(exc, endpoint) from None
    except smtplib.SMTPServerDisconnected as exc:
        _close(client)
        raise _disconnected(exc, endpoint) from None
    except Exception as exc:  # noqa: BLE001 - any other failure is explained by translate()
        _close(client)
        raise translate(exc, endpoint) from None
    try:
        yield SmtpSession(client, endpoint)
    finally:
        try:
            client.quit()
        except Exception:  # noqa: BLE001 - the server may already be gone
            _close(client)


def _login(client: smtplib.SMTP, endpoint: Endpoint, auth: Auth) -> None:
    if isinstance(auth, PasswordAuth) and has_line_break(auth.username, auth.password):
        raise PermanentError("refused to send a value with a line break or NUL to the SMTP server")
    try:
        if isinstance(auth, XOAuth2Auth):
            try:
                initial = auth.sasl()
            except ValueError as exc:
                raise PermanentError(f"refused to send it to the SMTP server: {exc}") from None
            client.ehlo_or_helo_if_needed()
            # A refused token gets a 334 challenge with the reason: the answer is an empty line, then 535.
            client.auth(
                "XOAUTH2", lambda challenge=None: initial if challenge is None else "", initial_response_ok=True
            )
        else:
            client.login(auth.username, auth.password)
    except smtplib.SMTPAuthenticationError as exc:
        raise AuthError(f"authentication failed at {endpoint.describe()}: {_reply(exc)}") from None
    except smtplib.SMTPNotSupportedError:
        raise PermanentError(
            f"{endpoint.describe()} does not offer AUTH on this connection "
            "(try STARTTLS, or authentication 'none' for a relay)",
            kind="auth",
        ) from None


def check_login(endpoint: Endpoint, auth: Auth | None) -> str:
    """Connect, log in if asked, and say NOOP; return a one-line description."""
    with session(endpoint, auth) as smtp:
        smtp.noop()
    return "SMTP login OK" if auth else "SMTP connection OK (no authentication)"


def send(endpoint: Endpoint, auth: Auth | None, sender: str, recipients: Sequence[str], raw: bytes) -> SendReport:
    """Connect, send one message (:meth:`SmtpSession.send`) and quit."""
    with session(endpoint, auth) as smtp:
        return smtp.send(sender, recipients, raw)


def _refusals(refused: dict[str, tuple[int, bytes]], envelope: dict[str, str]) -> tuple[Refusal, ...]:
    """smtplib's refusals by envelope address, as Refusals of the recipients given (before IDNA)."""
    return tuple(Refusal(envelope.get(rcpt, rcpt), int(code), _text(msg)) for rcpt, (code, msg) in refused.items())


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def _response_error(exc: smtplib.SMTPResponseException, endpoint: Endpoint) -> AdapterError:
    message = f"{endpoint.describe()} answered {_reply(exc)}"
    if 400 <= exc.smtp_code < 500:
        return TransientError(message, kind="protocol")
    return PermanentError(message, kind="protocol")


def _disconnected(exc: smtplib.SMTPServerDisconnected, endpoint: Endpoint) -> TransientError:
    # smtplib turns a read timeout into SMTPServerDisconnected("… timed out"): say it was a timeout.
    if "timed out" in str(exc):
        return TransientError(
            f"{endpoint.describe()} did not answer within {endpoint.timeout:g} seconds (timeout)"
            + security_hint(endpoint),
            kind="timeout",
            detail=str(exc),
        )
    return TransientError(f"{endpoint.describe()} closed the connection unexpectedly", kind="reset")


def _close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass
