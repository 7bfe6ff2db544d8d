"""Reading: stored messages as the mailbox and the message page show them (listing, search, display, inline)."""
