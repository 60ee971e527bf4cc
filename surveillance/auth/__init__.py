"""Who may do what: users, sessions, API tokens, roles, camera scopes and the audit log.

Nothing here knows about HTTP; ``surveillance.api.guards`` turns requests into principals
and checks them against these rules.
"""
