"""Cases and evidence: the grid-management workflow and the footage attached to it.

A case moves through ``reported -> dispatched -> in_progress -> feedback -> closed ->
archived`` (:mod:`.states`), with a timeline of comments and state changes, stored with
SQLAlchemy in SQLite or PostgreSQL (:mod:`.store`: cases, evidence items and the custody
log in :mod:`.case_store`, :mod:`.item_store`, :mod:`.custody_log`; schema by the Alembic
migrations in ``surveillance/db/migrations/``). Footage attached to a case is evidence:
its bytes go to a content-addressed store named by SHA-256 and written atomically
(:mod:`.storage`); every attach, view, download, export and state change is appended to
the case's custody log, a hash chain (:mod:`.custody`). A case exports as a zip whose
manifest is signed with the node's Ed25519 key (:mod:`.bundle`, :mod:`.signing`), checkable offline.

This package knows nothing of cameras or video: footage comes through the small
:class:`~surveillance.cases.footage.FootageSource` interface, which the services layer
implements with the packet ring and the snapshot decoder. It never imports PyAV.
"""
