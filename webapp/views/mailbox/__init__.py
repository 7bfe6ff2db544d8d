"""The mailbox of an account: its folders and messages, Fetch Emails with progress, and New Email."""
