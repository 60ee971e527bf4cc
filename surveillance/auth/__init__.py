"""Who may do what: users, sessions, API tokens, roles, camera scopes and the audit log.

Users, sessions and tokens are stored by one part each (:mod:`.users`, :mod:`.sessions`,
:mod:`.tokens`, tables in :mod:`.tables`), composed as :class:`~.store.AuthStore`.
Nothing here knows about HTTP; ``surveillance.api.guards`` turns requests into principals
and checks them against these rules.
"""
