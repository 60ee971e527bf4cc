"""surveillance: a command-room video integration service.

The package is layered so that imports flow one way (see README, "Architecture"):

    api  ->  services (ingest manager, snapshots)  ->  media  ->  config, errors

``media`` does the video work (RTSP demux, the compressed packet ring, fan-out,
decoding on demand) and never imports the web layer. ``config`` turns a YAML file
into validated, immutable models and knows nothing of video. Nothing runs at import:
the service is built by :func:`surveillance.api.app.create_app` and its lifespan.
"""

__version__ = "0.1.0"
