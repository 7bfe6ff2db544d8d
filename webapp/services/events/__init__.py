"""Events: callbacks and signed webhooks, recorded once and delivered at least once (fetch, complete, error)."""
