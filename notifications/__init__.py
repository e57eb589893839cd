"""Telling the world about committed changes: the buses that feed subscriptions, and webhooks
(their outbox, bodies, signatures, address checks and the dispatcher that sends them)."""
