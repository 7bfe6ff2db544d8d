"""SMTP: connecting (plain, STARTTLS, implicit TLS) and AUTH, over smtplib.

Envelope addresses go out with their domain as IDNA A-labels; a non-ASCII local part (or UTF-8 in the
headers) is sent with SMTPUTF8 when the server offers it, and refused with the address named when not.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager

from webapp.adapters import addresses
from webapp.adapters.credentials import Credentials
from webapp.adapters.endpoint import Endpoint
from webapp.adapters.errors import AdapterError, AuthError, PermanentError, TransientError
from webapp.adapters.linebreaks import has_line_break
from webapp.adapters.network import tls_context, translate


@contextmanager
def session(endpoint: Endpoint, credentials: Credentials | None) -> Iterator[smtplib.SMTP]:
    """Yield a connected (and, given credentials, authenticated) SMTP session."""
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
        if credentials is not None:
            if has_line_break(credentials.username, credentials.password):
                raise PermanentError("refused to send a value with a line break or NUL to the SMTP server")
            try:
                client.login(credentials.username, credentials.password)
            except smtplib.SMTPAuthenticationError as exc:
                raise AuthError(f"authentication failed at {endpoint.describe()}: {_reply(exc)}") from None
            except smtplib.SMTPNotSupportedError:
                raise PermanentError(
                    f"{endpoint.describe()} does not offer AUTH on this connection "
                    "(try STARTTLS, or authentication 'none' for a relay)",
                    kind="auth",
                ) from None
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
        yield client
    finally:
        try:
            client.quit()
        except Exception:  # noqa: BLE001 - the server may already be gone
            _close(client)


def check_login(endpoint: Endpoint, credentials: Credentials | None) -> str:
    """Connect, log in if asked, and say NOOP; return a one-line description."""
    with session(endpoint, credentials) as client:
        client.noop()
    return "SMTP login OK" if credentials else "SMTP connection OK (no authentication)"


def send(endpoint: Endpoint, credentials: Credentials | None, sender: str, recipients: list[str], raw: bytes) -> None:
    """Send ``raw`` to exactly ``recipients`` (never read back from headers); 4xx is transient, 5xx permanent."""
    if has_line_break(sender, *recipients):
        raise PermanentError("refused to send an address with a line break or NUL to the SMTP server")
    try:
        envelope_sender = addresses.envelope(sender)
        envelope_recipients = [addresses.envelope(r) for r in recipients]
    except addresses.AddressError as exc:
        raise PermanentError(f"refused to send to an unusable address: {exc}", kind="recipients") from None
    non_ascii = [a for a in (sender, *recipients) if addresses.needs_smtputf8(a)]
    utf8 = bool(non_ascii) or not raw.partition(b"\r\n\r\n")[0].isascii()
    with session(endpoint, credentials) as client:
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
            refused = client.sendmail(envelope_sender, envelope_recipients, raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            reasons = _refusals(exc.recipients)
            error_class = TransientError if all(400 <= c < 500 for c in codes) else PermanentError
            raise error_class(f"{endpoint.describe()} refused every recipient: {reasons}", kind="recipients") from None
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
    if refused:
        raise PermanentError(f"{endpoint.describe()} refused some recipients: {_refusals(refused)}", kind="recipients")


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(msg)}" for rcpt, (code, msg) in refused.items())


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
            f"{endpoint.describe()} did not answer within {endpoint.timeout:g} seconds (timeout)", kind="timeout"
        )
    return TransientError(f"{endpoint.describe()} closed the connection unexpectedly", kind="reset")


def _close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001
            pass
