"""The message page: headers, sanitized HTML in a sandboxed frame, text, attachments and the raw .eml."""
