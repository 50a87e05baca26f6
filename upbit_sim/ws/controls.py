"""The hub's fault controls over HTTP: ``GET /_sim/ws/status`` and ``POST /_sim/ws/<name>``.

Each POST route calls the hub's Python control of the same meaning, with its
arguments as query parameters, and answers ``{"ok": true, ...}`` or, for a bad
argument, ``400 {"error": {"name": 400, "message": ...}}``:

==============  ==================================  ===================================
route           query                               answer
==============  ==================================  ===================================
``close``       ``code`` (1001)                     ``closed``: sockets closed
``drop``                                            ``dropped``: connections aborted
``accepting``   ``on`` (1)                          (refuse handshakes when off)
``silent``      ``on`` (1)
``pings``       ``answer`` (1)
``malformed``   ``count`` (1), ``kind`` (garbage)   ``queued``: frames queued
``queue``       ``limit`` (required)
``burst``       ``count`` (1000), ``rate`` (none)   ``sessions``: sessions bursting
``replay``      ``path`` (required), ``speed`` (1)  ``frames``: frames in the recording
``reset``
==============  ==================================  ===================================

Burst and replay start in the background and answer at once. Boolean
parameters are true for ``1``, ``true``, ``yes``, ``on`` (any case).

Replay reads only from the hub's ``replay_dir``: ``path`` is a file name relative to
it, and a path that is absolute, leaves the folder (``..``, a symlink), is missing or
is not a file gets one and the same ``403`` answer, so the route cannot be used to
learn what exists on the server. Without a ``replay_dir`` every replay is refused with
a ``403`` that says so, and the file system is not touched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from aiohttp import web

from upbit_sim.ws.injection import MalformedKind, parse_recording
from upbit_sim.ws.state import HubState

if TYPE_CHECKING:
    from upbit_sim.ws.hub import WebSocketHub

__all__ = ["HubHttpControls"]

_Handler = Callable[[Any], Awaitable[dict[str, Any]]]

REPLAY_OFF = "replay over HTTP is off: the simulator has no replay_dir"
"""The 403 message when no recordings folder is set."""
REPLAY_REFUSED = "no such recording in the replay folder"
"""The 403 message for every path that is not a file inside the recordings folder."""


class ReplayRefused(Exception):
    """A replay path the HTTP control will not read; the message is all the client sees."""


def recording_in(folder: Path, name: str) -> Path:
    """The file ``name`` names inside ``folder``, resolved (symlinks followed);
    :class:`ReplayRefused` with the same message for anything else, existing or not."""
    relative = PurePath(name)
    if not name or relative.is_absolute() or ".." in relative.parts or "\\" in name:
        raise ReplayRefused(REPLAY_REFUSED)
    root = folder.resolve()
    try:
        target = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        raise ReplayRefused(REPLAY_REFUSED) from None
    if not target.is_relative_to(root) or not target.is_file():
        raise ReplayRefused(REPLAY_REFUSED)
    return target


class HubHttpControls:
    """The ``/_sim/ws/`` routes of one hub."""

    def __init__(
        self, hub: WebSocketHub, state: HubState, *, replay_dir: Path | None = None
    ) -> None:
        self._hub = hub
        self._state = state
        self._replay_dir = replay_dir
        self._handlers: dict[str, _Handler] = {
            "close": self._ctl_close,
            "drop": self._ctl_drop,
            "accepting": self._ctl_accepting,
            "silent": self._ctl_silent,
            "pings": self._ctl_pings,
            "malformed": self._ctl_malformed,
            "queue": self._ctl_queue,
            "burst": self._ctl_burst,
            "replay": self._ctl_replay,
            "reset": self._ctl_reset,
        }

    def install(self, app: web.Application) -> None:
        """Add ``/_sim/ws/status`` and the POST control routes to ``app``."""
        app.router.add_get("/_sim/ws/status", self._http_status)
        for name in self._handlers:
            app.router.add_post(f"/_sim/ws/{name}", self._http_control)

    async def _http_status(self, request: web.Request) -> web.Response:
        state = self._state
        stats = state.stats()
        return web.json_response(
            {
                "connections": stats.connections,
                "subscribed": stats.subscribed,
                "frames_sent": stats.frames_sent,
                "errors_sent": stats.errors_sent,
                "idle_closes": stats.idle_closes,
                "slow_consumer_closes": stats.slow_consumer_closes,
                "refused": stats.refused,
                "accepting": state.accepting,
                "silent": state.silent,
                "answer_pings": state.answer_pings,
                "idle_timeout": state.idle_timeout,
            }
        )

    async def _http_control(self, request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[-1]
        query = request.query
        try:
            result = await self._handlers[name](query)
        except ReplayRefused as exc:
            return web.json_response({"error": {"name": 403, "message": str(exc)}}, status=403)
        except (ValueError, KeyError, OSError) as exc:
            return web.json_response(
                {"error": {"name": 400, "message": f"{type(exc).__name__}: {exc}"}}, status=400
            )
        return web.json_response({"ok": True, **result})

    async def _ctl_close(self, query: Any) -> dict[str, Any]:
        return {"closed": await self._hub.close_all_async(int(query.get("code", 1001)))}

    async def _ctl_drop(self, query: Any) -> dict[str, Any]:
        return {"dropped": await self._hub.drop_all_async()}

    async def _ctl_accepting(self, query: Any) -> dict[str, Any]:
        self._hub.set_accepting(_truthy(query.get("on", "1")))
        return {}

    async def _ctl_silent(self, query: Any) -> dict[str, Any]:
        self._hub.set_silent(_truthy(query.get("on", "1")))
        return {}

    async def _ctl_pings(self, query: Any) -> dict[str, Any]:
        self._hub.set_answer_pings(_truthy(query.get("answer", "1")))
        return {}

    async def _ctl_malformed(self, query: Any) -> dict[str, Any]:
        kind = MalformedKind(query.get("kind", MalformedKind.GARBAGE.value))
        count = int(query.get("count", 1))
        return {"queued": await self._hub.inject_malformed_async(count, kind)}

    async def _ctl_queue(self, query: Any) -> dict[str, Any]:
        self._hub.set_queue_limit(int(query["limit"]))
        return {}

    async def _ctl_burst(self, query: Any) -> dict[str, Any]:
        rate = float(query["rate"]) if "rate" in query else None
        self._state.spawn(self._hub.burst_async(int(query.get("count", 1000)), rate=rate))
        return {"sessions": sum(1 for s in self._state.sessions if s.realtime)}

    async def _ctl_replay(self, query: Any) -> dict[str, Any]:
        if self._replay_dir is None:
            raise ReplayRefused(REPLAY_OFF)
        frames = parse_recording(recording_in(self._replay_dir, query["path"]))
        speed = float(query["speed"]) if "speed" in query else 1.0
        self._state.spawn(self._hub.replay_async(frames, speed=speed if speed > 0 else None))
        return {"frames": len(frames)}

    async def _ctl_reset(self, query: Any) -> dict[str, Any]:
        self._hub.reset()
        return {}


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes", "on")
