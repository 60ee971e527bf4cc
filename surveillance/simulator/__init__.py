"""Camera simulator: generated or recorded clips served as RTSP cameras by a real server.

Tests and demos need cameras that behave like real ones: continuous RTP timestamps,
keyframes on a fixed GOP, parameter sets in the stream (or, for some models, only in the
SDP), Basic auth, and failures (refused, dropped, stalled, rebooted). Three pieces:

- :mod:`.clips` encodes small test clips with PyAV (H.264 Baseline/Main/High, H.265,
  with or without B-frames) and draws the frame number into each picture so a client can
  read it back after decoding.
- :mod:`.gst_server` is a standalone script run by Debian's system Python, which has
  GStreamer's RTSP server bindings. It demuxes each clip once into memory and feeds it
  through an ``appsrc`` in a loop with monotonic timestamps; one pipeline per client, or
  for shared mounts (``MountSpec.shared``, what the benchmarks use) one pipeline per clip
  and start offset whose packets go to every client of every such mount, each client
  starting at a keyframe.
- :mod:`.server` (:class:`Simulator`) runs that script from the venv and steers it over a
  JSON-lines control channel on its stdin and stdout; :class:`SimulatorFleet` splits
  large sets over several such processes.
- A PTZ camera's mount (``MountSpec.ptz_scene``) is live instead: :mod:`.gst_ptz_mount`
  crops a view out of a still scene (:mod:`.ptz_scene`) and encodes it as it plays;
  :meth:`Simulator.view` moves it, and :mod:`.picture_change` tells a client it moved.

A GB/T 28181 lower platform (:mod:`.gb_platform`, :class:`GbPlatformSimulator`) plays the
same clips as MPEG-PS over RTP (:mod:`.ps_mux` makes the PS files) and speaks SIP with its
own small implementation (:mod:`.gb_sip`), apart from ``surveillance.gb28181`` on purpose;
:class:`GbPlatformThread` runs one on an event loop of its own.

ONVIF cameras (:mod:`.onvif_fleet`, :class:`OnvifFleet` of :class:`SimulatedDevice`): each on
its own loopback address, an aiohttp server answering the device, media, PTZ and events
services in SOAP built by hand (:mod:`.onvif_answers`, :mod:`.onvif_events`) with
WS-Security digests checked on the device's clock (:mod:`.onvif_soap`), a PTZ model
(:mod:`.onvif_ptz`) that steers the RTSP picture of its mounts, a WS-Discovery responder
(:mod:`.onvif_wsd`) and the fault modes broken or hostile devices have (:mod:`.onvif_faults`);
``surveillance-sim onvif`` (:mod:`.onvif_cli`) serves some by hand. They are not exported
here: importing the package should not load aiohttp, lxml and WSDiscovery.
"""

from surveillance.simulator.clips import ClipSpec, ensure_clip, read_frame_number
from surveillance.simulator.demo import demo_mounts
from surveillance.simulator.fleet import SimulatorFleet
from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator
from surveillance.simulator.gb_runner import GbPlatformThread
from surveillance.simulator.ps_mux import ps_file
from surveillance.simulator.server import (
    MountSpec,
    Simulator,
    SimulatorError,
    SimulatorUnavailable,
    find_gst_python,
)

__all__ = [
    "ClipSpec",
    "GbChannelSpec",
    "GbPlatformSimulator",
    "GbPlatformThread",
    "MountSpec",
    "Simulator",
    "SimulatorError",
    "SimulatorFleet",
    "SimulatorUnavailable",
    "demo_mounts",
    "ensure_clip",
    "find_gst_python",
    "ps_file",
    "read_frame_number",
]
