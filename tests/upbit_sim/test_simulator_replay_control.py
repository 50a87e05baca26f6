"""Who may reach the simulator's controls: replay only from its recordings folder, and a
non-loopback address only when asked for."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from quotation.errors import InvalidValue
from upbit_sim import Simulator
from upbit_sim.cli import serve
from upbit_sim.settings import SimulatorSettings, is_loopback

pytestmark = pytest.mark.timeout(20)

FRAME = b'{"ty":"trade","cd":"KRW-BTC","tp":1.0,"tv":1.0}'


def write_recording(path: Path) -> Path:
    path.write_text("".join(f"{1618650000.0 + i}: {FRAME!r}\n" for i in range(3)), encoding="utf-8")
    return path


def replay(sim: Simulator, name: str) -> tuple[int, object]:
    response = requests.post(
        f"{sim.control_url}/ws/replay", params={"path": name, "speed": "0"}, timeout=10
    )
    return response.status_code, response.json()


@pytest.fixture
def folder_sim(sim_factory: Callable[..., Simulator], tmp_path: Path) -> Simulator:
    folder = tmp_path / "recordings"
    folder.mkdir()
    write_recording(folder / "good.log")
    return sim_factory(seed=1, auto_trade=False, replay_dir=folder)


def test_replay_over_http_is_refused_without_a_recordings_folder(
    sim_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = sim_factory(seed=1, auto_trade=False)
    status, body = replay(sim, str(write_recording(tmp_path / "x.log")))
    assert status == 403
    assert "replay_dir" in str(body)


def test_a_recording_named_inside_the_folder_replays(folder_sim: Simulator) -> None:
    assert replay(folder_sim, "good.log") == (200, {"ok": True, "frames": 3})


def test_a_file_outside_the_folder_and_a_missing_file_get_the_same_answer(
    folder_sim: Simulator, tmp_path: Path
) -> None:
    outside = write_recording(tmp_path / "outside.log")
    missing = replay(folder_sim, "no-such.log")
    assert missing[0] == 403
    assert replay(folder_sim, str(outside)) == missing
    assert replay(folder_sim, "../outside.log") == missing
    assert replay(folder_sim, "../no-such.log") == missing
    assert replay(folder_sim, ".") == missing


def test_a_symlink_leading_out_of_the_folder_is_refused_like_a_missing_file(
    folder_sim: Simulator, tmp_path: Path
) -> None:
    outside = write_recording(tmp_path / "outside.log")
    (tmp_path / "recordings" / "link.log").symlink_to(outside)
    assert replay(folder_sim, "link.log") == replay(folder_sim, "no-such.log")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_loopback_hosts_need_no_opt_in(host: str) -> None:
    assert is_loopback(host)
    assert SimulatorSettings(host=host).host == host


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_a_non_loopback_host_is_refused_naming_host_unless_remote_is_allowed(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(InvalidValue) as settings_error:
        SimulatorSettings(host=host)
    assert settings_error.value.field == "host"
    with pytest.raises(InvalidValue) as simulator_error:
        Simulator(host=host)  # refused before anything binds
    assert simulator_error.value.field == "host"
    assert SimulatorSettings(host=host, allow_remote=True).allow_remote


def test_serving_a_non_loopback_host_allowed_prints_the_warning_before_it_binds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 192.0.2.1 (TEST-NET-1, RFC 5737) is no address of this host: the bind fails, so the
    # warning is seen without anything listening beyond loopback.
    settings = SimulatorSettings(host="192.0.2.1", port=0, allow_remote=True)
    with pytest.raises(RuntimeError, match="cannot assign requested address"):
        serve(settings, out=io.StringIO())
    err = capsys.readouterr().err
    assert "warning: listening on 192.0.2.1 (allow_remote)" in err
    assert "unauthenticated /_sim/ controls" in err
