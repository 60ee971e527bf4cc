"""Many nodes over one PostgreSQL: who the nodes are and which node holds which camera.

Records and tables only (membership rows, camera leases, the status a camera's owner
publishes), the SQL that claims, renews and releases leases with the database's clock, and
the weighted rendezvous hash that says which node should hold a camera. The running parts
(heartbeats, the lease loop, forwarding, notifications) are in ``services``.
"""
