"""Opening TLS contexts and turning socket, DNS and TLS failures into plain words."""

from __future__ import annotations

import socket
import ssl

from webapp.adapters.errors import AdapterError, PermanentError, TransientError
from webapp.adapters.mail.endpoint import Endpoint, TlsPolicy


def tls_context(policy: TlsPolicy) -> ssl.SSLContext:
    """Build the client TLS context for an account's verification policy."""
    if not policy.verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if policy.ca_pem:
        try:
            return ssl.create_default_context(cadata=policy.ca_pem)
        except (ssl.SSLError, ValueError, TypeError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise PermanentError(f"the custom CA certificate cannot be used: {reason}", kind="tls") from exc
    return ssl.create_default_context()


def ca_problem(pem: str) -> str | None:
    """Why ``pem`` cannot be trusted as a CA certificate (None: it can): checked when it is saved, not at
    the first connection."""
    if not pem.isascii() or "\x00" in pem:
        return "a PEM certificate is plain ASCII text"
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError, TypeError) as exc:
        return f"not a certificate that can be used ({getattr(exc, 'reason', None) or exc})"
    return None


def translate(exc: BaseException, endpoint: Endpoint) -> AdapterError:
    """Explain a low-level failure to reach ``endpoint`` in plain words."""
    where = endpoint.describe()
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, socket.gaierror):
        return TransientError(f"DNS: the name {endpoint.host!r} could not be resolved ({exc.strerror})", kind="dns")
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(f"{where} refused the connection (nothing listens there)", kind="refused")
    if isinstance(exc, TimeoutError | socket.timeout):
        hint = security_hint(endpoint)
        message = f"{where} did not answer within {endpoint.timeout:g} seconds (timeout)"
        return TransientError(f"{message}{hint}", kind="timeout", detail=str(exc))
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"TLS: the certificate of {where} is not trusted: {exc.verify_message}", kind="tls")
    if isinstance(exc, ssl.SSLError):
        if exc.reason in _NOT_TLS:
            return PermanentError(
                f"TLS: {where} does not speak TLS directly on port {endpoint.port} — try STARTTLS "
                f"(or port {_TLS_PORTS[endpoint.protocol]} for TLS)",
                kind="tls",
                detail=str(exc),
            )
        return PermanentError(
            f"TLS: the secure connection to {where} failed: {exc.reason or exc}", kind="tls", detail=str(exc)
        )
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError | ConnectionAbortedError):
        return TransientError(f"{where} closed the connection unexpectedly", kind="reset")
    if isinstance(exc, OSError):
        return TransientError(f"{where} could not be reached: {exc.strerror or exc}", kind="network")
    return PermanentError(f"{where} answered unexpectedly: {exc}", kind="protocol")


# What OpenSSL says when the other side answered in plain text (a greeting) instead of TLS.
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "HTTP_REQUEST", "RECORD_LAYER_FAILURE"})
_TLS_PORTS = {"imap": 993, "pop3": 995, "smtp": 465}
_PLAIN_PORTS = {"imap": (143,), "pop3": (110,), "smtp": (25, 587, 2525)}


def security_hint(endpoint: Endpoint) -> str:
    """Why a server that took the connection may stay silent (the two sides disagree about TLS), as a
    clause to add to a timeout message; empty when nothing suggests it."""
    if endpoint.security != "tls" and endpoint.port == _TLS_PORTS.get(endpoint.protocol):
        return f"; port {endpoint.port} usually expects TLS right away — choose TLS instead of {endpoint.security}"
    if endpoint.security == "tls" and endpoint.port in _PLAIN_PORTS.get(endpoint.protocol, ()):
        tls_port = _TLS_PORTS[endpoint.protocol]
        return f"; port {endpoint.port} usually speaks plain text first — try STARTTLS (or port {tls_port} for TLS)"
    if endpoint.security != "tls":
        return "; if this port expects TLS right away, choose TLS"
    return ""
