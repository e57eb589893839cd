"""The GraphQL schema: Strawberry types, inputs, the Schema and the ASGI app."""
