"""``python -m devservices.simulator``: serve the simulated statistics API until SIGTERM or Ctrl-C.

Every option has an environment variable as its default (``LEARNING_PLATFORM_SIMULATOR_*``),
so a container or a ``.env`` file can configure it too. The runtime settings can still be
changed afterwards through ``PUT /_simulator/config``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from collections.abc import Sequence

from devservices.simulator.config import (
    DEFAULT_CLIENT,
    DEFAULT_CLIENT_KEY,
    DEFAULT_RECORDS_PER_DAY,
    DEFAULT_SEED,
    ConfigError,
    SimulatorConfig,
)
from devservices.simulator.data import DEFAULT_DEFECTS, DEFECT_KINDS
from devservices.simulator.faults import FAULT_KINDS
from devservices.simulator.server import SimulatorServer

log = logging.getLogger("devservices.simulator")

ENV_PREFIX = "LEARNING_PLATFORM_SIMULATOR_"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = _config(args)
    except ConfigError as error:
        parser.error(str(error))

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        server = SimulatorServer(config, host=args.host, port=args.port)
    except OSError as error:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, error)
        return 1
    with server:
        log.info(
            "serving the statistics API on %s (%d records/day, seed %d, %d fault rules)",
            server.base_url,
            config.records_per_day,
            config.seed,
            len(config.faults),
        )
        stopping.wait()
        log.info("stopping")
    return 0


def _config(args: argparse.Namespace) -> SimulatorConfig:
    defects = {} if args.no_defects else dict(DEFAULT_DEFECTS)
    defects.update(args.defect)
    faults = [rule for value in args.fault for rule in (value if isinstance(value, list) else [value])]
    startup = SimulatorConfig(client=args.client, client_key=args.client_key)
    return startup.updated(
        {
            "records_per_day": args.records_per_day,
            "seed": args.seed,
            "defects": defects,
            "faults": faults,
            "latency_ms": args.latency_ms,
            "empty_dates": args.empty_date,
        }
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devservices.simulator",
        description="A local simulator of the learning platform's statistics API.",
        epilog=(
            f"Defect kinds: {', '.join(DEFECT_KINDS)}. Fault kinds: {', '.join(FAULT_KINDS)}. "
            "Control endpoints: GET /_simulator/health, GET|PUT /_simulator/config, "
            "POST /_simulator/reset, GET /_simulator/stats. Defaults come from "
            f"{ENV_PREFIX}{{HOST,PORT,CLIENT,CLIENT_KEY,RECORDS_PER_DAY,SEED,LATENCY_MS,LOG_LEVEL}}."
        ),
    )
    add = parser.add_argument
    add("--host", default=_env("HOST", "127.0.0.1"), help="address to listen on (%(default)s)")
    add("--port", type=int, default=_env("PORT", "8765"), help="port, 0 for any free one (%(default)s)")
    add("--client", default=_env("CLIENT", DEFAULT_CLIENT), help="accepted client (%(default)s)")
    add(
        "--client-key",
        default=_env("CLIENT_KEY", DEFAULT_CLIENT_KEY),
        help=f"accepted client_key (default {DEFAULT_CLIENT_KEY}; prefer the environment variable)",
    )
    add(
        "--records-per-day",
        type=int,
        default=_env("RECORDS_PER_DAY", str(DEFAULT_RECORDS_PER_DAY)),
        help="records generated per UTC day (%(default)s)",
    )
    add("--seed", type=int, default=_env("SEED", str(DEFAULT_SEED)), help="data seed (%(default)s)")
    add(
        "--defect",
        type=_defect,
        action="append",
        default=[],
        metavar="KIND=SHARE",
        help="share of records with a defect, over the default mix (repeatable)",
    )
    add("--no-defects", action="store_true", help="start from no defects instead of the default mix")
    add(
        "--fault",
        type=_json,
        action="append",
        default=[],
        metavar="JSON",
        help='a fault rule or a list of them, e.g. \'{"kind": "error", "times": 2}\' (repeatable)',
    )
    add(
        "--latency-ms",
        type=float,
        default=_env("LATENCY_MS", "0"),
        help="added to every API answer (%(default)s)",
    )
    add(
        "--empty-date",
        action="append",
        default=[],
        metavar="YYYY-MM-DD",
        help="a day for which the API has no records (repeatable)",
    )
    add("--log-level", default=_env("LOG_LEVEL", "INFO"), choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


def _defect(text: str) -> tuple[str, float]:
    kind, _, share = text.partition("=")
    try:
        return kind.strip(), float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KIND=SHARE, got {text!r}") from None


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error})") from None


if __name__ == "__main__":
    raise SystemExit(main())
