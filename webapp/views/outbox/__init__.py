"""The outbox pages: Drafts, Queued, Sent and Failed; Reply, Reply all and Forward."""
