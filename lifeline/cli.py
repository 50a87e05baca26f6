"""The ``lifeline`` command line: the only place that configures logging.

Commands::

    lifeline demo [--config FILE] [--seed S] [--time-scale X] [--clients]
                                                 the main job: the exit strategy, Level 0 to 3
                                                 and back, against an embedded simulator
    lifeline sim [--config FILE] [--host H] [--port N] [--seed S] [--allow-remote]
                 [--replay-dir DIR]              a local Upbit-compatible simulator
    lifeline check-config [FILE]                 parse config.yaml strictly and print it, or
                                                 every error with its key path
    lifeline run [--config FILE]                 the host process: /metrics and /status
    lifeline status [--url URL]                  read a running one's /status, for a person
    lifeline drill SCENARIO [--config FILE] [--json OUT] [--plot OUT.png]
                   [--compare OTHER_CONFIG]      run a fault scenario, measure it per phase
                                                 (lifeline.drill.command: its exit statuses)

``sim`` and ``demo`` read the config file's ``simulator:`` section (host, port,
seed) and its ``upbit:`` section (the demo's clients); a flag overrides the
file. Without ``--config`` they read ``config.yaml`` in the current directory if
there is one, else they use the built-in defaults (those of
:class:`~upbit_sim.settings.SimulatorSettings` and the other settings classes:
each default is stated there, once). ``check-config`` also reads ``config.yaml``
by default.

``run`` (``lifeline.operator``) reads the whole file (``operator:``: ``listen``,
``shutdown_timeout``) and logs at INFO unless ``--log-level`` says otherwise; ``status``
exits 1 with one line when ``/status`` does not answer.

Exit status: 0 done; 1 the config file is missing or wrong (the message names the
key); 2 a bad flag, or ``sim``/``demo`` without the simulator's HTTP server
(aiohttp: ``pip install 'lifeline[sim]'``).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from lifeline.config import LifelineConfig, load_config
from lifeline.config_schema import ConfigError, count_line
from quotation.errors import InvalidValue

__all__ = ["main"]

_LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_CONFIG_FILE = Path("config.yaml")
"""The config file read when none is named (relative to the current directory)."""
_DEFAULT_LOG_LEVEL = {"run": "INFO"}
"""Per command when ``--log-level`` is not given (else WARNING)."""
_DEMO_STDERR_LEVEL = logging.CRITICAL
"""Without ``--log-level`` the demo's stderr shows only this: its faults would fill a terminal
with the system's warnings and tracebacks. Only the handler is raised: the loggers stay at
WARNING, so the alerts (``lifeline.alerts``, WARNING) still reach the drill's recorder and
the demo's summary."""
_NEEDS_SIM = "lifeline {command}: the simulator needs aiohttp: pip install 'lifeline[sim]'"


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 (one return per command)
    """Run the ``lifeline`` command; returns the process exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    command: str = args.command
    level = args.log_level or _DEFAULT_LOG_LEVEL.get(command, "WARNING")
    logging.basicConfig(level=getattr(logging, level), format=_LOG_FORMAT)
    if command == "check-config":
        return _check_config(args.file)
    if command == "status":
        from lifeline.operator import status

        return status(args.url)
    if command == "run":
        from lifeline.operator import run

        config = _config(args.config)
        return 1 if config is None else run(config)
    if command == "drill":
        from lifeline.drill.command import drill_command

        shown = _DEMO_STDERR_LEVEL if args.log_level is None else getattr(logging, level)
        for handler in logging.getLogger().handlers:  # as the demo's; and Level 2/3 raise our
            handler.setLevel(shown)  # loggers to DEBUG (escalation): the handler keeps them out

        return drill_command(args.scenario, args.config, json_out=args.json,
                             plot_out=args.plot, compare=args.compare)
    if command not in ("sim", "demo"):
        parser.error(f"unknown command {command!r}")  # exits with status 2
    if not _simulator_installed():
        print(_NEEDS_SIM.format(command=command), file=sys.stderr)
        return 2
    config = _config(args.config)
    if config is None:
        return 1
    flags = {
        name: getattr(args, name, None)
        for name in ("host", "port", "seed", "allow_remote", "replay_dir")
    }
    try:
        settings = dataclasses.replace(
            config.simulator, **{name: value for name, value in flags.items() if value is not None}
        )
    except InvalidValue as exc:
        parser.error(f"--{exc.field.replace('_', '-')}: {exc}")  # exits with status 2
    config = dataclasses.replace(config, simulator=settings)
    if command == "sim":
        from upbit_sim.cli import serve

        serve(settings)
        return 0
    return _demo(args, config)


def _demo(args: argparse.Namespace, config: LifelineConfig) -> int:
    """``lifeline demo`` (``--clients``: the clients-only rehearsal)."""
    if args.clients:
        from lifeline.demo_clients import run_clients_demo

        return run_clients_demo(config)
    from lifeline.demo import run_demo

    if args.log_level is None:
        for handler in logging.getLogger().handlers:
            handler.setLevel(_DEMO_STDERR_LEVEL)
    return run_demo(config, time_scale=args.time_scale)


def _simulator_installed() -> bool:
    """Whether the simulator's HTTP server (aiohttp, the ``sim`` extra) can be imported."""
    return importlib.util.find_spec("aiohttp") is not None


def _config(path: Path | None) -> LifelineConfig | None:
    """The config ``path`` names, else ``config.yaml`` if present, else the defaults;
    ``None`` (after printing why) when the file cannot be read or is wrong."""
    if path is None:
        if not _CONFIG_FILE.is_file():
            return LifelineConfig()
        path = _CONFIG_FILE
    try:
        return load_config(path)
    except (ConfigError, OSError) as exc:
        print(exc, file=sys.stderr)  # a ConfigError from load_config names the file
        return None


def _check_config(path: Path) -> int:
    """``FILE: ok`` and the parsed config (URL credentials shown as ``***``: the configs'
    ``repr``), else every problem on its own line (``FILE: key.path: ...``), then the count
    (``FILE: N errors``), on stderr, and status 1."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.line(exc.file or str(path)), file=sys.stderr)
        print(count_line(len(exc.problems), exc.file or str(path)), file=sys.stderr)
        return 1
    print(f"{path}: ok")
    print(config)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lifeline", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default=None,
                        help="default WARNING (run: INFO; demo and drill: WARNING, "
                             "stderr showing only CRITICAL)",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)
    config_help = f"config file (default: {_CONFIG_FILE} if present, else the built-in defaults)"

    sim = commands.add_parser("sim", help="run a local Upbit-compatible simulator")
    sim.add_argument("--config", type=Path, default=None, help=config_help)
    sim.add_argument("--host", default=None, help="address to listen on (simulator.host)")
    sim.add_argument("--port", type=int, default=None,
                     help="TCP port, 0 = a free one (simulator.port)")
    sim.add_argument("--seed", type=int, default=None,
                     help="seed of the simulated markets (simulator.seed)")
    sim.add_argument("--allow-remote", action="store_true", default=None,
                     help="allow a non-loopback --host: exposes the unauthenticated /_sim/ "
                          "controls (simulator.allow_remote)")
    sim.add_argument("--replay-dir", default=None,
                     help="folder POST /_sim/ws/replay may read recordings from; "
                          "default: none, replay over HTTP refused (simulator.replay_dir)")

    demo = commands.add_parser("demo", help="the main job: the exit strategy, Level 0 to 3 "
                                            "and back, against an embedded simulator")
    demo.add_argument("--config", type=Path, default=None, help=config_help)
    demo.add_argument("--seed", type=int, default=None,
                      help="seed of the simulated markets (simulator.seed)")
    demo.add_argument("--time-scale", type=float, default=1.0,
                      help="each phase of the timeline this many times as long; the limits "
                           "stay (default 1; the tests use 0.5)")
    demo.add_argument("--clients", action="store_true",
                      help="the clients-only rehearsal instead: REST, WebSocket and their "
                           "faults, without the supervised system")

    run = commands.add_parser("run", help="the host process: the system, /metrics, /status")
    run.add_argument("--config", type=Path, default=None, help=config_help)

    status = commands.add_parser("status", help="print a running lifeline's /status")
    status.add_argument("--url", default=None,
                        help="its /status URL or host:port (default: "
                             "http://127.0.0.1:9464/status)")

    drill = commands.add_parser("drill", help="run a fault scenario against an embedded "
                                              "simulator and measure each phase")
    drill.add_argument("scenario", type=Path, help="scenario file (scenarios/*.yaml)")
    drill.add_argument("--config", type=Path, default=None, help=config_help)
    drill.add_argument("--json", type=Path, default=None, metavar="OUT",
                       help="write the result as JSON")
    drill.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                       help="draw the run as a PNG timeline (the plot extra)")
    drill.add_argument("--compare", type=Path, default=None, metavar="OTHER_CONFIG",
                       help="run it under this config too and print both side by side")

    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("file", type=Path, nargs="?", default=_CONFIG_FILE)
    return parser


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
