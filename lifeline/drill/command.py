"""``lifeline drill SCENARIO --config FILE [--json OUT] [--plot OUT.png] [--compare OTHER]``.

Runs the scenario under the config (live progress on stderr), prints the phase table
(:func:`~lifeline.drill.report.phase_table`) on stdout, or with ``--compare`` runs it under
both configs and prints :func:`~lifeline.drill.report.compare_table`. ``--json`` writes the
result (:meth:`DrillResult.to_dict`; with ``--compare`` ``{"a": ..., "b": ...}``), ``--plot``
draws it (with ``--compare`` the second run goes to ``OUT-b.png``).

Exit status: 0 every check held (with ``--compare``: in both runs); 1 a check failed, or the
scenario or a config is wrong (the message names the key), or the drill could not run; 2 the
picture cannot be drawn (matplotlib missing: the ``plot`` extra); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

from lifeline.config import LifelineConfig, load_config
from lifeline.config_schema import ConfigError
from lifeline.drill.progress import Progress
from lifeline.drill.report import compare_table, phase_table
from lifeline.drill.result import DrillResult
from lifeline.drill.runner import DrillError, run_drill
from lifeline.drill.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["BUILT_IN", "drill_command"]

BUILT_IN = "built-in"
"""What a result names as its config when no file was read."""
_DEFAULT_CONFIG = Path("config.yaml")


def drill_command(scenario_path: Path, config_path: Path | None, *, json_out: Path | None = None,
                  plot_out: Path | None = None, compare: Path | None = None,
                  out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``lifeline drill`` (module docstring); returns the exit status."""
    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    try:
        scenario = load_scenario(scenario_path)
        configs = [_config(config_path)]
        if compare is not None:
            configs.append(_config(compare))
        results = [_run(scenario, config, name, stderr) for config, name in configs]
    except (ScenarioError, ConfigError, DrillError, OSError) as exc:
        print(f"lifeline drill: {exc}", file=stderr)
        return 1
    except KeyboardInterrupt:
        print("lifeline drill: interrupted (everything torn down)", file=stderr)
        return 130
    table = compare_table(*results) if len(results) == 2 else phase_table(results[0])
    print(table, file=stdout)
    status = 0 if all(result.ok for result in results) else 1
    if json_out is not None:
        data = (results[0].to_dict() if len(results) == 1
                else {"a": results[0].to_dict(), "b": results[1].to_dict()})
        json_out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    if plot_out is not None:
        from lifeline.drill.plot import PlotUnavailable, plot  # noqa: PLC0415 (optional extra)

        targets = [plot_out, plot_out.with_name(f"{plot_out.stem}-b{plot_out.suffix}")]
        try:
            for result, target in zip(results, targets, strict=False):
                plot(result, target)
        except PlotUnavailable as exc:
            print(f"lifeline drill: {exc}", file=stderr)
            return 2
    return status


def _config(path: Path | None) -> tuple[LifelineConfig, str]:
    """The config ``path`` names (else ``config.yaml`` if present, else the built-in
    defaults) and the name a result gives it."""
    if path is None:
        if not _DEFAULT_CONFIG.is_file():
            return LifelineConfig(), BUILT_IN
        path = _DEFAULT_CONFIG
    return load_config(path), os.fspath(path)


def _run(scenario: Scenario, config: LifelineConfig, name: str, stderr: TextIO) -> DrillResult:
    progress = Progress(stderr)
    try:
        return run_drill(scenario, config, on_sample=progress.update, config_name=name)
    finally:
        progress.close()
