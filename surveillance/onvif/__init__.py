"""ONVIF: finding devices (WS-Discovery, multicast and unicast), reading what they are,
and speaking to their device, media, PTZ and event services through onvif-zeep-async.

Nothing here knows of services, HTTP routes or the database: callers above hand in
addresses and credentials and get records and errors back.
"""
