"""The error codes and messages a GraphQL error and an HTTP answer share, so a client reads the
same `extensions.code` whichever of the two refused it (`server.http_errors` shapes the HTTP
answers; the schema's extensions the GraphQL errors)."""

SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
RATE_LIMITED = "RATE_LIMITED"  # over a budget (the contract's code)
DATABASE_UNAVAILABLE = "The database is unavailable; try again shortly."
