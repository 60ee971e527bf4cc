"""GB/T 28181: the signalling of the town's video platforms that connect upward to this
service (SIP with MANSCDP XML bodies), and what it records of them.

Protocol only: messages, digest authentication, transports, SDP, XML bodies, ids and
coordinates, and the tables of platforms and channels. The video itself (MPEG-PS over RTP)
is media's (``media/rtp.py``, ``media/ps.py``); the services tie the two together
(``services/gb_*.py``).
"""
