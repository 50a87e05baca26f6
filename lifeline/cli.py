"""The ``lifeline`` command line: the only place that configures logging.

Commands::

    lifeline demo [--seed S] [--config FILE]   the main job: embedded simulator + clients
    lifeline sim [--port N] [--seed S]         a local Upbit-compatible simulator
    lifeline check-config [FILE]               parse config.yaml strictly and print it
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lifeline`` command; returns the process exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), format=_LOG_FORMAT)
    command: str = args.command
    if command == "sim":
        from upbit_sim.cli import serve

        serve(port=args.port, seed=args.seed, host=args.host)
        return 0
    if command == "check-config":
        return _check_config(args.file)
    if command == "demo":
        from lifeline.demo import run_demo

        return run_demo(seed=args.seed, config_path=args.config)
    parser.error(f"unknown command {command!r}")  # exits with status 2
    raise AssertionError("unreachable")


def _check_config(path: Path) -> int:
    from lifeline.config import load_config
    from lifeline.config_schema import ConfigError

    try:
        config = load_config(path)
    except (ConfigError, OSError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: ok")
    print(config)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lifeline", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    sim = commands.add_parser("sim", help="run a local Upbit-compatible simulator")
    sim.add_argument("--port", type=int, default=0, help="TCP port (0 = a free one)")
    sim.add_argument("--seed", type=int, default=1, help="seed of the simulated markets")
    sim.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1)")

    demo = commands.add_parser("demo", help="the main job: simulator + clients + a fault")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--config", type=Path, default=None,
                      help="config file (default: the packaged defaults)")

    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("file", type=Path, nargs="?", default=Path("config.yaml"))
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
