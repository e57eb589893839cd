"""The write side: mutations, the unit of work, the change log, idempotency and the write rules."""
