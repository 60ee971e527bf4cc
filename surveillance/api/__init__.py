"""The HTTP layer: app factory, dependencies, schemas and one router module per area."""
