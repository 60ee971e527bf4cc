"""``python -m surveillance.simulator.gb_cli``: one simulated GB/T 28181 platform until Ctrl-C.

For demos and trying a node by hand: it registers with the node's SIP port and serves
``--channels`` channels (alternately H.264 and H.265 with ``--h265-every``). The password
comes from the environment (GB_SIM_PASSWORD), never the command line, which others can read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from surveillance.simulator.gb_platform import GbChannelSpec, GbPlatformSimulator

DIGEST_KEY_ENV = "GB_SIM_PASSWORD"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server-host", default="127.0.0.1")
    parser.add_argument("--server-port", type=int, default=5060)
    parser.add_argument("--server-id", default="34020000002000000001")
    parser.add_argument("--domain", default="3402000000")
    parser.add_argument("--device-id", default="34020000001110000001")
    parser.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    parser.add_argument("--local-host", default="127.0.0.1")
    parser.add_argument("--local-port", type=int, default=0)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--h265-every", type=int, default=0, help="every Nth channel H.265")
    parser.add_argument("--page-size", type=int, default=20)
    parser.add_argument("--keepalive-s", type=float, default=5.0)
    parser.add_argument("--encoding", choices=["GB2312", "UTF-8"], default="GB2312")
    parser.add_argument("--clip-dir", type=Path, default=None)
    return parser.parse_args(argv)


def channels(args: argparse.Namespace) -> list[GbChannelSpec]:
    prefix = args.device_id[:10]  # the platform's centre and industry digits
    return [
        GbChannelSpec(
            channel_id=f"{prefix}132{n:07d}",
            name=f"通道 {n}",
            clip="h265" if args.h265_every and n % args.h265_every == 0 else "h264",
            civil_code=args.device_id[:6],
        )
        for n in range(1, args.channels + 1)
    ]


async def run(args: argparse.Namespace) -> None:
    simulator = GbPlatformSimulator(
        device_id=args.device_id,
        password=os.environ.get(DIGEST_KEY_ENV, ""),
        server_host=args.server_host,
        server_port=args.server_port,
        server_id=args.server_id,
        domain=args.domain,
        transport=args.transport,
        local_host=args.local_host,
        channels=channels(args),
        keepalive_s=args.keepalive_s,
        page_size=args.page_size,
        encoding=args.encoding,
        clip_dir=args.clip_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await simulator.start(args.local_port)
    print(f"GB platform {args.device_id} on {args.local_host}:{simulator.local_port}", flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
