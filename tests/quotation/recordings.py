"""Load the real Upbit recordings: VCR-style REST cassettes and WebSocket session logs.

The recordings live outside the repository (``../shared/upbit-recordings``, see the
``recordings_dir`` fixture in ``tests/conftest.py``); this module only reads them.

* ``load_cassettes(directory)`` → ``{name: Cassette}``, one per ``*.yaml`` file
  (``name`` is the file stem, e.g. ``get_tickers``), with the request URI, the
  response status, headers and body (text and decoded JSON).
* ``load_ws_log(path)`` → ``WsSession(subscription_request, frames)`` from a log in
  cryptofeed's format: a ``<url> <-> <time>`` line, a ``<url> <- <time>: <json>``
  line (the request sent), then one ``<time>: b'<frame>'`` line per frame received.
* ``ws_logs(directory)`` → the paths of every ``websocket/*.log``.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import yaml

__all__ = ["Cassette", "WsSession", "load_cassettes", "load_ws_log", "ws_logs"]


@dataclass(frozen=True)
class Cassette:
    """One recorded REST exchange: what was asked and what Upbit answered."""

    name: str
    method: str
    uri: str
    status: int
    headers: Mapping[str, str]
    """Response headers as recorded (multi-valued headers joined with ``", "``)."""
    body_text: str
    body_json: Any
    """The decoded body, or ``None`` if it is not JSON."""

    @property
    def path_and_query(self) -> str:
        """``/v1/ticker?markets=KRW-BTC`` for ``https://api.upbit.com/v1/ticker?markets=KRW-BTC``."""
        parts = urlsplit(self.uri)
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    def header(self, name: str) -> str | None:
        """A response header by case-insensitive name, or ``None``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


class WsSession(NamedTuple):
    """One recorded WebSocket session: the request frame sent and every frame received."""

    subscription_request: Any
    """The decoded JSON request frame (a list: ticket, types, format)."""
    frames: list[tuple[float, bytes]]
    """``(receive_time, raw frame bytes)`` in the order received."""


def load_cassettes(directory: Path) -> dict[str, Cassette]:
    """Every ``*.yaml`` cassette in ``directory``, keyed by file stem (``name#2`` for extras)."""
    cassettes: dict[str, Cassette] = {}
    for path in sorted(directory.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for number, interaction in enumerate(document["interactions"], start=1):
            name = path.stem if number == 1 else f"{path.stem}#{number}"
            cassettes[name] = _cassette(name, interaction)
    return cassettes


def _cassette(name: str, interaction: Mapping[str, Any]) -> Cassette:
    request, response = interaction["request"], interaction["response"]
    body = response["body"]["string"]
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    try:
        body_json = json.loads(body)
    except ValueError:
        body_json = None
    headers = {
        key: ", ".join(str(v) for v in values) if isinstance(values, list) else str(values)
        for key, values in response["headers"].items()
    }
    return Cassette(
        name=name,
        method=request["method"],
        uri=request["uri"],
        status=int(response["status"]["code"]),
        headers=headers,
        body_text=body,
        body_json=body_json,
    )


def load_ws_log(path: Path) -> WsSession:
    """Read a WebSocket session log (see the module docstring for its format)."""
    request: Any = None
    frames: list[tuple[float, bytes]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or " <-> " in line:
            continue
        if " <- " in line:
            _, _, sent = line.partition(": ")
            request = json.loads(sent)
            continue
        received_at, _, literal = line.partition(": ")
        frame = ast.literal_eval(literal)
        if not isinstance(frame, bytes):
            raise ValueError(f"{path}: expected a bytes literal, got {literal[:40]!r}")
        frames.append((float(received_at), frame))
    return WsSession(request, frames)


def ws_logs(directory: Path) -> list[Path]:
    """The WebSocket session logs under ``directory/websocket``."""
    return sorted((directory / "websocket").glob("*.log"))
