"""surveillance: a command-room video integration service.

The package is layered so that imports flow one way (docs/architecture.md, "Packages and
the import rule"; tests/test_import_rule.py checks it):

    cli -> api -> services -> {media, cases, wall, auth} -> {catalog, db} -> config -> errors

``media`` does the video work (RTSP demux, the compressed packet ring, fan-out, decoding
on demand) and imports nothing above ``errors``; ``cases``, ``wall`` and ``auth`` know
nothing of video or HTTP; ``api`` wires the services to HTTP; ``web`` holds only the pages'
static files. Nothing runs at import: the service is built by
:func:`surveillance.api.app.create_app` and its lifespan.
"""

__version__ = "0.1.0"
