"""What every capability stands on: blob store, secrets at rest, Redis coordination and queues, health."""
