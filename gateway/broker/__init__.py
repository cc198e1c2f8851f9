"""The broker: verify, decide, audit, route, and keep undelivered messages in the outbox."""
