"""The ``surveillance`` command: serve, demo, check-config, simulate, gb status, nodes,
discover."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from surveillance import __version__

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from surveillance.gb28181.commands import NodeSign

log = logging.getLogger("surveillance")

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "surveillance"
# uvicorn's ws_per_message_deflate for every server that runs the app (tests pass it too).
# Off: Chromium always offers permessage-deflate, and compressing the H.264 fragments of the
# MSE WebSocket gains nothing and cost 1.57% of a core per 1080p viewer instead of 0.18%.
WS_PER_MESSAGE_DEFLATE = False
# A heartbeat late by this much beyond two beats: the node is not running (a loaded
# machine's beat may slip a little; a killed node's never comes).
HEARTBEAT_MARGIN_S = 30.0


def _serve(config_path: Path, host: str | None, port: int | None) -> int:
    import uvicorn

    from surveillance.api.app import create_app
    from surveillance.cluster.errors import NodeIdTaken
    from surveillance.config import ConfigError, load_config
    from surveillance.logs import configure_logging
    from surveillance.redact import Redactor

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    redactor = Redactor()
    cluster = config.cluster
    configure_logging(
        redactor,
        node_id=cluster.node_id if cluster.enabled else None,
        # The node logs the one line that says why it did not start (api/node.py).
        told_already=[f"{NodeIdTaken.__module__}.{NodeIdTaken.__qualname__}"],
    )
    app = create_app(config, redactor=redactor)
    tls = config.server
    uvicorn.run(
        app,
        host=host or config.server.host,
        port=port or config.server.port,
        log_config=None,  # keep our redacting handler
        # With TLS the session cookie is marked Secure (the request scheme is https).
        ssl_certfile=str(tls.tls_certfile) if tls.tls_certfile else None,
        ssl_keyfile=str(tls.tls_keyfile) if tls.tls_keyfile else None,
        ws_per_message_deflate=WS_PER_MESSAGE_DEFLATE,
    )
    return 0


def _check_config(config_path: Path) -> int:
    from surveillance.config import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) in {config_path}", file=sys.stderr)
        return 2
    gb_platforms = len(config.gb28181.platforms)
    gb = f" ({gb_platforms} GB/T 28181)" if gb_platforms else ""
    print(
        f"{config_path}: OK: {len(config.platforms) + gb_platforms} platforms{gb}, "
        f"{len(config.cameras)} cameras, {len(config.tags)} extra tags"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.nodes is not None:
        return _demo_cluster(args)
    import uvicorn

    from surveillance.api.app import create_app
    from surveillance.demo import (
        DEMO_ADMIN,
        demo_admin,
        demo_config,
        demo_gb,
        demo_gb_platform,
        prepare_gb_clips,
        with_gb_platform,
    )
    from surveillance.demo_onvif import (
        demo_onvif,
        demo_onvif_cameras,
        demo_onvif_fleet,
        demo_onvif_line,
        onvif_ports_busy,
    )
    from surveillance.logs import configure_logging
    from surveillance.redact import Redactor
    from surveillance.simulator import Simulator, demo_mounts

    redactor = Redactor()
    configure_logging(redactor)
    # The GB/T 28181 platform's and the ONVIF cameras' passwords live in memory only.
    onvif = demo_onvif(args.onvif_subnet)
    if not _ports_free(args.host, range(args.port, args.port + 1)):
        return 2
    if busy := onvif_ports_busy(onvif):
        print(f"demo: {', '.join(busy)} (the ONVIF cameras') in use by another program",
              file=sys.stderr)  # fmt: skip
        return 2
    mounts = demo_mounts(args.cameras)
    log.info("demo: preparing %d simulated camera streams (clips are cached)", len(mounts))
    clip_dir = args.cache_dir / "clips"
    fleet = demo_onvif_fleet(onvif, args.cache_dir / "onvif")
    with Simulator(mounts, clip_dir=clip_dir) as simulator, fleet:
        prepare_gb_clips(clip_dir)
        data_dir = args.data_dir or args.cache_dir / "demo-data"
        gb = demo_gb()
        config = demo_config(simulator, mounts, data_dir, gb, demo_onvif_cameras(fleet, onvif))
        # No default account: the demo's admin gets a new password on every run, before
        # the service answers. Printed, not logged: the log's redactor would mask it.
        password = demo_admin(config)
        login = f"http://{args.host}:{args.port}/login"
        print(
            f"demo: sign in at {login} as {DEMO_ADMIN} with password {password} "
            "(made for this run)",
            flush=True,
        )
        print(demo_onvif_line(onvif), flush=True)
        redactor.add([password, gb.password, onvif.password])  # and no log line carries them
        app = create_app(config, redactor=redactor)
        with_gb_platform(app, demo_gb_platform(gb, clip_dir))
        log.info("demo: open %s", login)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_config=None,
            ws_per_message_deflate=WS_PER_MESSAGE_DEFLATE,
        )
    return 0


def _demo_cluster(args: argparse.Namespace) -> int:
    """``demo --nodes N`` (see surveillance/demo_cluster.py)."""
    from surveillance.config import load_config
    from surveillance.demo import DEMO_ADMIN, demo_admin, demo_config_data
    from surveillance.demo_cluster import (
        NodeProcesses,
        new_work_dir,
        remove_work_dir,
        sigterm_as_interrupt,
        write_node_configs,
    )
    from surveillance.local_postgres import LocalPostgres, PostgresMissing
    from surveillance.logs import configure_logging
    from surveillance.redact import Redactor
    from surveillance.simulator import Simulator, demo_mounts

    redactor = Redactor()
    configure_logging(redactor)
    # Before anything starts or is printed: the URLs printed must be this demo's.
    if not _ports_free("127.0.0.1", range(args.port, args.port + args.nodes)):
        return 2
    try:
        database = LocalPostgres()
    except PostgresMissing as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    work_dir = new_work_dir()
    with sigterm_as_interrupt():
        try:
            database.start()
            log.info("demo: PostgreSQL on 127.0.0.1:%d (thrown away at exit)", database.port)
            mounts = demo_mounts(args.cameras)
            with Simulator(mounts, clip_dir=args.cache_dir / "clips") as simulator:
                base = demo_config_data(simulator, mounts, work_dir / "data")
                url = database.new_database("surveillance")
                nodes = write_node_configs(base, work_dir, url, args.port, args.nodes)
                password = demo_admin(load_config(nodes[0].config))
                redactor.add([password])
                print(
                    f"demo: sign in at {nodes[0].url}/login as {DEMO_ADMIN} with password "
                    f"{password} (made for this run)",
                    flush=True,
                )
                for node in nodes:
                    print(f"demo: node {node.node_id} at {node.url}", flush=True)
                processes = NodeProcesses(nodes)
                try:
                    processes.start()
                    return processes.watch()
                finally:
                    processes.stop()
        except KeyboardInterrupt:
            return 0
        finally:
            database.stop()
            remove_work_dir(work_dir)


def _ports_free(host: str, ports: range) -> bool:
    """False, with one line saying so, when another process listens on one of ``ports``."""
    from surveillance.demo_cluster import busy_ports

    busy = busy_ports(host, ports)
    if busy:
        listed = ", ".join(map(str, busy))
        print(
            f"demo: port {listed} on {host} is in use by another program; "
            "choose free ones with --port",
            file=sys.stderr,
        )
    return not busy


def _verify(args: argparse.Namespace) -> int:
    from surveillance.cases.commands import verify_bundle_command, verify_command
    from surveillance.config import ConfigError, load_config
    from surveillance.services.custody_audit import custody_against_audit

    if args.command == "verify-bundle":
        return verify_bundle_command(args.bundle, args.expect_fingerprint)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.recordings:
        from surveillance.recordings.commands import verify_recordings_command

        return verify_recordings_command(config)
    return verify_command(config, [custody_against_audit])


def _auth(args: argparse.Namespace) -> int:
    from surveillance.auth.commands import run
    from surveillance.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return run(args, config)


def _gb(args: argparse.Namespace) -> int:
    from surveillance.config import ConfigError, load_config
    from surveillance.gb28181.commands import gb_status_command

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return gb_status_command(config, args.json, _node_sign)


def _nodes(args: argparse.Namespace) -> int:
    from surveillance.config import ConfigError, load_config
    from surveillance.services.cluster_nodes import nodes_command

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return nodes_command(config)


def _discover(args: argparse.Namespace) -> int:
    from surveillance.config import ConfigError, load_config
    from surveillance.config.models import AppConfig
    from surveillance.logs import configure_logging
    from surveillance.redact import Redactor
    from surveillance.services.onvif_discover_command import run

    try:
        config = load_config(args.config) if args.config else AppConfig()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(Redactor(), level=logging.WARNING)
    return run(args, config)


def _node_sign(engine: Engine) -> NodeSign:
    """The node's heartbeat (services/node_heartbeat.py): its newest node.running event,
    open and moved within two beats and a margin while the node runs."""
    from surveillance.events.records import EventFilter, EventType
    from surveillance.events.store import EventStore
    from surveillance.gb28181.commands import NodeSign
    from surveillance.services.node_heartbeat import HEARTBEAT_S

    page = EventStore(engine).search(EventFilter(types=[EventType.NODE_RUNNING], limit=1))
    if not page.events:
        return NodeSign(running=False, last_seen_at=None)
    latest = page.events[0]
    recent = time.time() - latest.last_seen_at < 2 * HEARTBEAT_S + HEARTBEAT_MARGIN_S
    return NodeSign(running=latest.active and recent, last_seen_at=latest.last_seen_at)


def build_parser() -> argparse.ArgumentParser:
    from surveillance.demo_cluster import MAX_NODES, node_count
    from surveillance.demo_onvif import DEMO_ONVIF_SUBNET, loopback_subnet

    parser = argparse.ArgumentParser(prog="surveillance", description=__doc__)
    parser.add_argument("--version", action="version", version=f"surveillance {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service with a configuration file")
    serve.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("config", type=Path)

    demo = commands.add_parser("demo", help="run the service on simulated cameras")
    demo.add_argument("--cameras", type=int, default=12, help="number of simulated cameras")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080, help="with --nodes: the first node's")
    demo.add_argument(
        "--nodes",
        type=node_count,
        help=f"run N (1 to {MAX_NODES}) nodes over a throwaway PostgreSQL "
        "(ports PORT, PORT+1, ...)",
    )
    demo.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    demo.add_argument(
        "--data-dir", type=Path, help="the demo node's data (default: CACHE_DIR/demo-data)"
    )
    demo.add_argument(
        "--onvif-subnet",
        type=loopback_subnet,
        default=DEMO_ONVIF_SUBNET,
        help="the ONVIF cameras' addresses are SUBNET.1 and .2 (default %(default)s)",
    )

    verify = commands.add_parser(
        "verify", help="check every evidence item against its hash and the custody logs"
    )
    verify.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    verify.add_argument(
        "--recordings",
        action="store_true",
        help="check the recorded segments instead: every file against its size and SHA-256, "
        "every camera stream's chain for missing or altered rows",
    )
    verify_bundle = commands.add_parser(
        "verify-bundle", help="check an exported case bundle offline (signature, hashes)"
    )
    verify_bundle.add_argument("bundle", type=Path, help="the case bundle (.zip)")
    verify_bundle.add_argument(
        "--expect-fingerprint", help="fail unless signed by this key (sha256:...)"
    )

    gb = commands.add_parser("gb", help="GB/T 28181 platforms")
    gb_commands = gb.add_subparsers(dest="gb_command", required=True)
    gb_status = gb_commands.add_parser(
        "status", help="registered platforms, addresses, last keepalive, channels, streams"
    )
    gb_status.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    gb_status.add_argument("--json", action="store_true", help="print JSON")

    nodes = commands.add_parser(
        "nodes", help="the nodes of a cluster: live or not, heartbeat, cameras held, load"
    )
    nodes.add_argument("--config", type=Path, required=True, help="YAML configuration file")

    from surveillance.services.onvif_discover_command import add_arguments as add_discover

    add_discover(commands)

    from surveillance.auth.commands import add_arguments as add_auth_arguments

    add_auth_arguments(commands)

    from surveillance.simulator.cli import add_arguments as add_simulator_arguments

    simulate = commands.add_parser("simulate", help="serve simulated RTSP cameras")
    add_simulator_arguments(simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args.config, args.host, args.port)
    if args.command == "check-config":
        return _check_config(args.config)
    if args.command == "demo":
        return _demo(args)
    if args.command in ("verify", "verify-bundle"):
        return _verify(args)
    if args.command in ("user", "token"):
        return _auth(args)
    if args.command == "gb":
        return _gb(args)
    if args.command == "nodes":
        return _nodes(args)
    if args.command == "discover":
        return _discover(args)
    if args.command == "simulate":
        from surveillance.simulator.cli import run as run_simulator

        return run_simulator(args)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
