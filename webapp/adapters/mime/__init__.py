"""MIME: building outgoing messages safely (this package's own API, from ``building``), reading received
ones (``parser``, ``mimetree``), addresses, filenames, text from HTML, and sanitizing HTML for display."""

from webapp.adapters.mime.building import (
    HeaderError,
    OutgoingAttachment,
    OutgoingMessage,
    VerificationError,
    build,
    check_header_value,
    parse_addresses,
    python_refolds_encoded_line_breaks,
    verify,
)

__all__ = [
    "HeaderError",
    "OutgoingAttachment",
    "OutgoingMessage",
    "VerificationError",
    "build",
    "check_header_value",
    "parse_addresses",
    "python_refolds_encoded_line_breaks",
    "verify",
]
