"""The GraphQL types, inputs, enums and extensions; the assembled schema is ``api.schema``.

Nothing here imports a resolver: resolvers build these types, and ``api`` wires both.
"""
