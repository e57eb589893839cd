"""Tables, the database engine and sessions, and the Alembic migrations that create them."""
