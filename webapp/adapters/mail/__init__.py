"""Mail protocols: IMAP, POP3 and SMTP sessions, where servers are (endpoints) and how to log in (auth)."""
