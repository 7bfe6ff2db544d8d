"""Opening TLS contexts and turning socket, DNS and TLS failures into plain words."""

from __future__ import annotations

import socket
import ssl

from webapp.adapters.endpoint import Endpoint, TlsPolicy
from webapp.adapters.errors import AdapterError, PermanentError, TransientError


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
        except ssl.SSLError as exc:
            raise PermanentError(f"the custom CA certificate cannot be used: {exc.reason or exc}", kind="tls") from exc
    return ssl.create_default_context()


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
        return TransientError(f"{where} did not answer within {endpoint.timeout:g} seconds (timeout)", kind="timeout")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"TLS: the certificate of {where} is not trusted: {exc.verify_message}", kind="tls")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(f"TLS: the secure connection to {where} failed: {exc.reason or exc}", kind="tls")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError | ConnectionAbortedError):
        return TransientError(f"{where} closed the connection unexpectedly", kind="reset")
    if isinstance(exc, OSError):
        return TransientError(f"{where} could not be reached: {exc.strerror or exc}", kind="network")
    return PermanentError(f"{where} answered unexpectedly: {exc}", kind="protocol")
