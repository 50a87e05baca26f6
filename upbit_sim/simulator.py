"""The local Upbit: engine, REST API and WebSocket hub served by aiohttp on their own thread.

``Simulator.start()`` runs an event loop on a daemon thread, binds
``host:port`` (a free port by default) and returns once the server listens;
``stop()`` (idempotent) releases black-holed requests, closes WebSockets and
keep-alive connections, stops the loop and joins the thread. Tests, the CLI
(``lifeline sim``) and benchmarks all use this one class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from types import TracebackType

from aiohttp import web

from quotation.clock import Clock, SystemClock
from upbit_sim.engine import DEFAULT_HISTORY_SECONDS, MarketEngine
from upbit_sim.faults import FaultController
from upbit_sim.limits import RateLimitPolicy, ServerRateLimiter
from upbit_sim.rest_api import RestApi
from upbit_sim.settings import SimulatorSettings, check_host, is_loopback
from upbit_sim.ws.hub import WebSocketHub

__all__ = ["Simulator"]

logger = logging.getLogger(__name__)

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_DEFAULT_POLICY = RateLimitPolicy()
_DEFAULTS = SimulatorSettings()


class Simulator:
    """An Upbit-compatible exchange on ``127.0.0.1``; see the module docstring.

    ``seed``, ``host``, ``port`` and ``allow_remote`` default to those of
    :class:`~upbit_sim.settings.SimulatorSettings` (stated there once); a ``host`` that is not
    loopback raises ``InvalidValue`` naming ``host`` unless ``allow_remote=True`` (the
    ``/_sim/`` controls have no authentication), and is then logged as a warning.
    ``replay_dir`` is the only folder ``POST /_sim/ws/replay`` reads (``None``: refused).
    ``rate_limit=None`` switches the server-side limit off; ``auto_trade=False``
    keeps the markets still unless ``engine.step()`` is called; ``preload=True``
    generates every market's history in ``start()`` (about a second) so that no
    request or trade later pays for it (use it for benchmarks and long runs).
    """

    def __init__(
        self,
        seed: int = _DEFAULTS.seed,
        host: str = _DEFAULTS.host,
        port: int = _DEFAULTS.port,
        *,
        auto_trade: bool = True,
        trades_per_second: float = 10.0,
        history_seconds: float = DEFAULT_HISTORY_SECONDS,
        rate_limit: RateLimitPolicy | None = _DEFAULT_POLICY,
        clock: Clock | None = None,
        preload: bool = False,
        allow_remote: bool = _DEFAULTS.allow_remote,
        replay_dir: Path | None = None,
    ) -> None:
        check_host(host, allow_remote=allow_remote)
        self.seed = seed
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.auto_trade = auto_trade
        self.preload = preload
        self._clock: Clock = clock or SystemClock()
        self.engine = MarketEngine(
            seed,
            clock=self._clock,
            history_seconds=history_seconds,
            trades_per_second=trades_per_second,
        )
        self.faults = FaultController(seed=seed, clock=self._clock)
        self.limiter = ServerRateLimiter(rate_limit) if rate_limit is not None else None
        self._api = RestApi(self.engine, self.faults, self.limiter, self._clock)
        self.ws = WebSocketHub(self.engine, clock=self._clock, seed=seed, replay_dir=replay_dir)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._stop_trading: asyncio.Event | None = None
        self._trader: asyncio.Task[None] | None = None
        self._shutdown: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._stopped = False

    # -- addresses --------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (``RuntimeError`` before :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` — what the REST client's ``base_url`` should be."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}/websocket/v1"

    @property
    def control_url(self) -> str:
        """``http://127.0.0.1:<port>/_sim`` — the fault and engine controls over HTTP."""
        return f"http://{self.host}:{self.port}/_sim"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Serve on a new thread; returns once listening (``RuntimeError`` if already used)."""
        if self.preload:
            self.engine.preload()
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("simulator already started")
            self._thread = threading.Thread(
                target=self._run, name=f"simulator:{self.seed}", daemon=True
            )
            self._thread.start()
        if not self._started.wait(_START_TIMEOUT):
            raise RuntimeError("simulator did not start in time")
        if self._start_error is not None:
            self._thread.join(_STOP_TIMEOUT)
            raise RuntimeError(
                f"simulator failed to start: {self._start_error}"
            ) from self._start_error

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread; safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._request_shutdown)
        thread.join(_STOP_TIMEOUT)
        if thread.is_alive():
            logger.warning("simulator thread did not end within %.0f s", _STOP_TIMEOUT)

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- loop thread ------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:
            logger.exception("simulator on %s:%s failed", self.host, self._requested_port)
            self._start_error = exc  # start() raises it if it happened while starting
            self._started.set()
        finally:
            self.engine.bind_loop(None)
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.engine.bind_loop(loop)
        app = self._api.application()
        self.ws.install(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self._requested_port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = _bound_port(runner)
        stop_trading = asyncio.Event()
        self._stop_trading = stop_trading
        if self.auto_trade:
            self._trader = loop.create_task(self.engine.run_auto_trade(stop_trading))
        shutdown = self._shutdown = asyncio.Event()
        self._started.set()
        logger.info("simulator listening on %s", self.base_url)
        if not is_loopback(self.host):
            logger.warning(
                "simulator listening on non-loopback %s: its /_sim/ controls have no "
                "authentication (allow_remote)", self.host
            )
        await shutdown.wait()
        await self._close(runner)

    def _request_shutdown(self) -> None:
        if self._shutdown is not None:
            self._shutdown.set()

    async def _close(self, runner: web.AppRunner) -> None:
        if self._stop_trading is not None:
            self._stop_trading.set()
        if self._trader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._trader
        self._api.begin_stop()
        try:
            await self.ws.close()
        except Exception:
            logger.exception("closing the WebSocket hub failed")
        await asyncio.sleep(0)
        await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("simulator socket has no port")
