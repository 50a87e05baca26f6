"""Each REST fault of the simulator, switched on and off from Python and over HTTP under /_sim/."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.fakes import ManualClock
from upbit_sim import DRIFT_ADDED, DRIFT_REMOVED, FaultController, Simulator

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator], clock: ManualClock) -> Simulator:
    """A still simulator (manual clock, no trading, no rate limit): answers repeat exactly."""
    return sim_factory(seed=1, clock=clock, auto_trade=False, rate_limit=None)


def ticker(sim: Simulator, timeout: float = 10.0) -> requests.Response:
    return requests.get(f"{sim.base_url}/ticker", params={"markets": "KRW-BTC"}, timeout=timeout)


def orderbook(sim: Simulator) -> requests.Response:
    return requests.get(f"{sim.base_url}/orderbook", params={"markets": "KRW-BTC"}, timeout=10)


def control(sim: Simulator, path: str, spec: Any = None) -> requests.Response:
    return requests.post(f"{sim.control_url}{path}", json=spec, timeout=10)


def active(sim: Simulator) -> dict[str, Any]:
    state: dict[str, Any] = requests.get(f"{sim.control_url}/faults", timeout=10).json()["active"]
    return state


class Background:
    """A request run on its own thread, so the test can act while the server holds it."""

    def __init__(self, call: Callable[[], requests.Response]) -> None:
        self.outcome: requests.Response | Exception | None = None
        self._call = call
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.outcome = self._call()
        except Exception as exc:
            self.outcome = exc

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


@pytest.fixture
def background() -> Iterator[list[Background]]:
    started: list[Background] = []
    yield started
    for job in started:
        job.join(10)


# -- off by default -------------------------------------------------------------------------


def test_every_fault_is_off_by_default(sim: Simulator) -> None:
    assert active(sim) == {}
    assert all(ticker(sim).status_code == 200 for _ in range(5))


# -- latency --------------------------------------------------------------------------------


def test_latency_delays_answers_until_switched_off(sim: Simulator) -> None:
    sim.faults.set_latency(1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        ticker(sim, timeout=0.1)
    sim.faults.set_latency(0)
    assert ticker(sim).status_code == 200
    assert sim.faults.snapshot()["applied"]["latency"] == 1


def test_latency_scoped_to_a_path_prefix_spares_other_paths(sim: Simulator) -> None:
    sim.faults.set_latency(0.05, path_prefix="/v1/ticker")
    assert orderbook(sim).status_code == 200
    assert sim.faults.snapshot()["applied"]["latency"] == 0
    assert ticker(sim).status_code == 200
    assert sim.faults.snapshot()["applied"]["latency"] == 1


# -- error status ---------------------------------------------------------------------------


def test_error_for_the_next_n_requests_then_normal(sim: Simulator) -> None:
    sim.faults.fail_next(2, status=503)
    first, second, third = ticker(sim), ticker(sim), ticker(sim)
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.json() == {"error": {"name": 503, "message": "Service Unavailable"}}
    assert first.headers["Content-Type"] == "application/json;charset=UTF-8"


def test_error_for_a_seeded_fraction_of_requests(sim_factory: Callable[..., Simulator]) -> None:
    patterns = []
    for _ in range(2):
        one = sim_factory(seed=5, clock=ManualClock(), auto_trade=False, rate_limit=None)
        one.faults.fail_fraction(0.5, status=500)
        patterns.append([ticker(one).status_code for _ in range(40)])
    assert set(patterns[0]) == {200, 500}
    assert 8 <= patterns[0].count(500) <= 32
    assert patterns[0] == patterns[1]


def test_error_fault_scoped_to_a_prefix(sim: Simulator) -> None:
    sim.faults.fail_next(5, status=500, path_prefix="/v1/orderbook")
    assert ticker(sim).status_code == 200
    assert orderbook(sim).status_code == 500


# -- 429 storm and 418 ban ------------------------------------------------------------------


def test_429_storm_for_a_count_then_normal(sim: Simulator) -> None:
    sim.faults.storm_429(3)
    answers = [ticker(sim) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [429, 429, 429, 200]
    assert answers[0].text == "Too many API requests."
    assert answers[0].headers["Remaining-Req"] == "group=ticker; min=600; sec=0"


def test_429_storm_without_count_lasts_until_reset(sim: Simulator) -> None:
    sim.faults.storm_429()
    assert {ticker(sim).status_code for _ in range(10)} == {429}
    sim.faults.reset()
    assert ticker(sim).status_code == 200


def test_418_ban_lasts_its_duration(sim: Simulator, clock: ManualClock) -> None:
    sim.faults.ban_418(30)
    banned = ticker(sim)
    assert banned.status_code == 418
    assert banned.json() == {
        "error": {"name": 418, "message": "Too many requests. Blocked for 30 seconds."}
    }
    clock.advance(20)
    assert "Blocked for 10 seconds" in ticker(sim).json()["error"]["message"]
    clock.advance(10)
    assert ticker(sim).status_code == 200
    assert "ban_418" not in sim.faults.snapshot()["active"]


# -- black hole -----------------------------------------------------------------------------


def test_black_hole_never_answers_while_on(sim: Simulator) -> None:
    sim.faults.black_hole()
    with pytest.raises(requests.exceptions.ReadTimeout):
        ticker(sim, timeout=0.3)


def test_black_holed_request_is_answered_once_the_hole_is_lifted(
    sim: Simulator, background: list[Background]
) -> None:
    sim.faults.black_hole()
    job = Background(lambda: ticker(sim, timeout=20))
    background.append(job)
    assert sim.faults.wait_for_held(1, timeout=10)
    sim.faults.black_hole(False)
    assert job.join(10)
    assert isinstance(job.outcome, requests.Response) and job.outcome.status_code == 200
    assert sim.faults.held == 0


def test_black_hole_scoped_to_a_prefix_lets_other_paths_through(sim: Simulator) -> None:
    sim.faults.black_hole(path_prefix="/v1/ticker")
    assert orderbook(sim).status_code == 200
    with pytest.raises(requests.exceptions.ReadTimeout):
        ticker(sim, timeout=0.3)


@pytest.mark.timeout(20)
def test_stop_does_not_hang_on_a_black_holed_request_in_flight(
    sim_factory: Callable[..., Simulator], background: list[Background]
) -> None:
    sim = sim_factory(seed=1, auto_trade=True)
    sim.faults.black_hole()
    jobs = [Background(lambda: ticker(sim, timeout=30)) for _ in range(3)]
    background.extend(jobs)
    assert sim.faults.wait_for_held(3, timeout=10)
    sim.stop()
    for job in jobs:
        assert job.join(10)
        assert isinstance(job.outcome, requests.exceptions.ConnectionError)


# -- body faults ----------------------------------------------------------------------------


def test_malformed_json_spoils_the_next_bodies_only(sim: Simulator) -> None:
    sim.faults.malformed_json(1)
    spoiled = ticker(sim)
    assert spoiled.status_code == 200
    assert spoiled.headers["Content-Type"] == "application/json;charset=UTF-8"
    with pytest.raises(json.JSONDecodeError):
        json.loads(spoiled.content)
    assert ticker(sim).json()[0]["market"] == "KRW-BTC"


def test_truncated_json_is_the_first_half_of_the_real_body(sim: Simulator) -> None:
    sim.faults.malformed_json(1, truncated=True)
    cut = ticker(sim).content
    whole = ticker(sim).content
    assert whole.startswith(cut)
    assert 0 < len(cut) < len(whole)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut)


def test_field_drift_adds_unknown_and_drops_optional_fields(sim: Simulator) -> None:
    normal = ticker(sim).json()[0]
    sim.faults.field_drift()
    drifted = ticker(sim).json()[0]
    assert set(DRIFT_ADDED) <= set(drifted)
    assert not set(DRIFT_REMOVED) & set(drifted)
    assert {key for key in normal if key not in DRIFT_REMOVED} <= set(drifted)
    assert drifted["trade_price"] == normal["trade_price"]
    sim.faults.field_drift(False)
    assert ticker(sim).json()[0] == normal


# -- over HTTP ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected_status"),
    [
        ({"error": {"status": 502, "count": 1}}, 502),
        ({"storm_429": {"count": 1}}, 429),
        ({"ban_418": {"seconds": 5}}, 418),
        ({"ban_418": 5}, 418),
        ({"storm_429": True}, 429),
        ({"error": {"status": 500, "fraction": 1.0}}, 500),
    ],
)
def test_status_faults_switched_over_http(
    sim: Simulator, spec: dict[str, Any], expected_status: int
) -> None:
    response = control(sim, "/faults", spec)
    assert response.status_code == 200
    assert set(response.json()["active"]) == set(spec)
    assert ticker(sim).status_code == expected_status
    assert control(sim, "/faults/reset").json()["active"] == {}
    assert ticker(sim).status_code == 200


def test_body_faults_switched_over_http(sim: Simulator) -> None:
    control(sim, "/faults", {"malformed": {"count": 1}, "drift": True})
    with pytest.raises(json.JSONDecodeError):
        json.loads(ticker(sim).content)
    assert "sim_drift_note" in ticker(sim).json()[0]
    control(sim, "/faults", {"drift": False})
    assert "sim_drift_note" not in ticker(sim).json()[0]


def test_latency_and_black_hole_switched_over_http(sim: Simulator) -> None:
    control(sim, "/faults", {"latency": {"seconds": 1.0, "path_prefix": "/v1/ticker"}})
    assert active(sim)["latency"] == {"path_prefix": "/v1/ticker", "seconds": 1.0}
    with pytest.raises(requests.exceptions.ReadTimeout):
        ticker(sim, timeout=0.1)
    control(sim, "/faults", {"latency": 0, "black_hole": True})
    assert set(active(sim)) == {"black_hole"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        ticker(sim, timeout=0.3)
    control(sim, "/faults", {"black_hole": False})
    assert ticker(sim).status_code == 200


def test_control_routes_are_never_faulted(sim: Simulator) -> None:
    control(sim, "/faults", {"black_hole": True, "error": {"status": 500, "fraction": 1.0}})
    assert requests.get(f"{sim.control_url}/faults", timeout=5).status_code == 200
    assert requests.get(f"{sim.control_url}/health", timeout=5).json()["status"] == "UP"


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"earthquake": True}, "earthquake"),
        ({"latency": "slow"}, "latency"),
        ({"error": {"status": 200}}, "status"),
        ({"error": {"status": 500, "count": 0}}, "count"),
        ({"malformed": {"fraction": 2}}, "fraction"),
        ({"drift": {"on": True, "colour": "red"}}, "colour"),
        ({"trickle": {"chunk_bytes": 0}}, "chunk_bytes"),
        ({"trickle": {"interval": -1}}, "interval"),
        ({"trickle": {"interval": "slow"}}, "interval"),
        ({"trickle": {"interval": 0.1, "count": 0}}, "count"),
        ({"trickle": {"speed": 1}}, "speed"),
        ([1, 2], "object"),
    ],
)
def test_bad_fault_specs_are_refused_naming_the_bad_key(
    sim: Simulator, spec: Any, named: str
) -> None:
    response = control(sim, "/faults", spec)
    assert response.status_code == 400
    assert named in response.json()["error"]["message"]
    assert active(sim) == {}


def test_sim_step_over_http_makes_new_trades(sim: Simulator) -> None:
    before = sim.engine.latest_trade("KRW-BTC")
    response = control(sim, "/step", {"n": 3, "market": "KRW-BTC"})
    assert response.json()["trades"] == 3
    after = sim.engine.latest_trade("KRW-BTC")
    assert before is not None and after is not None
    assert after.sequential_id != before.sequential_id
    assert control(sim, "/step", {"n": 0}).status_code == 400


def test_fault_controller_is_safe_to_switch_from_many_threads() -> None:
    faults = FaultController(seed=1)
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            for _ in range(200):
                faults.fail_next(1, 500)
                faults.plan("/v1/ticker")
                faults.storm_429(2)
                faults.plan("/v1/ticker")
                faults.reset()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == []
    assert faults.snapshot()["active"] == {}


# -- trickle --------------------------------------------------------------------------------


def test_a_trickled_answer_is_the_exact_body_with_its_length_announced(sim: Simulator) -> None:
    whole = ticker(sim)
    sim.faults.trickle(chunk_bytes=100, interval=0.01)
    trickled = ticker(sim)
    assert trickled.status_code == 200
    assert trickled.content == whole.content
    assert trickled.headers["Content-Length"] == str(len(whole.content))
    assert trickled.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert trickled.headers["Remaining-Req"] == whole.headers["Remaining-Req"]
    assert sim.faults.snapshot()["applied"]["trickle"] == 1
    # The client may have the last byte before the server's handler has returned.
    assert sim.faults.wait_for_trickling(0, timeout=10)


def test_a_trickled_answer_sends_status_and_headers_before_its_body(sim: Simulator) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=30.0)
    # The first body byte is 30 s away; the status and headers are not.
    with requests.get(
        f"{sim.base_url}/ticker", params={"markets": "KRW-BTC"}, timeout=10, stream=True
    ) as response:
        assert response.status_code == 200
        assert int(response.headers["Content-Length"]) > 0
        assert sim.faults.wait_for_trickling(1, timeout=10)
    # The client hung up: the server stops trickling without waiting out the interval.
    assert sim.faults.wait_for_trickling(0, timeout=10)


def test_a_trickle_for_a_count_then_whole_answers(sim: Simulator) -> None:
    sim.faults.trickle(chunk_bytes=200, interval=0.01, count=1)
    assert sim.faults.snapshot()["active"]["trickle"] == {
        "path_prefix": None,
        "remaining": 1,
        "chunk_bytes": 200,
        "interval": 0.01,
    }
    assert ticker(sim).status_code == 200
    assert "trickle" not in sim.faults.snapshot()["active"]
    assert ticker(sim).status_code == 200
    assert sim.faults.snapshot()["applied"]["trickle"] == 1


def test_a_trickle_scoped_to_a_prefix_spares_other_paths(sim: Simulator) -> None:
    sim.faults.trickle(chunk_bytes=200, interval=0.01, path_prefix="/v1/ticker")
    assert orderbook(sim).status_code == 200
    assert sim.faults.snapshot()["applied"]["trickle"] == 0
    assert ticker(sim).status_code == 200
    assert sim.faults.snapshot()["applied"]["trickle"] == 1


def test_a_trickle_also_slows_a_fault_answer(sim: Simulator) -> None:
    sim.faults.fail_next(1, status=503)
    sim.faults.trickle(chunk_bytes=5, interval=0.01)
    answer = ticker(sim)
    assert answer.status_code == 503
    assert answer.json() == {"error": {"name": 503, "message": "Service Unavailable"}}
    assert sim.faults.snapshot()["applied"]["trickle"] == 1


def test_a_trickle_is_switched_off_by_interval_zero_or_clear(sim: Simulator) -> None:
    sim.faults.trickle(chunk_bytes=1, interval=0.5)
    sim.faults.trickle(chunk_bytes=1, interval=0)
    assert "trickle" not in sim.faults.snapshot()["active"]
    sim.faults.trickle(chunk_bytes=1, interval=0.5)
    sim.faults.clear("trickle")
    assert sim.faults.snapshot()["active"] == {}
    assert ticker(sim).status_code == 200
    assert sim.faults.snapshot()["applied"]["trickle"] == 0


def test_a_trickle_switched_over_http_shows_in_the_snapshot(sim: Simulator) -> None:
    whole = ticker(sim).content
    response = control(sim, "/faults", {"trickle": {"chunk_bytes": 64, "interval": 0.01}})
    assert response.status_code == 200
    assert response.json()["active"]["trickle"] == {
        "path_prefix": None,
        "chunk_bytes": 64,
        "interval": 0.01,
    }
    assert ticker(sim).content == whole
    assert requests.get(f"{sim.control_url}/faults", timeout=10).json()["applied"]["trickle"] == 1
    control(sim, "/faults", {"trickle": 0})
    assert active(sim) == {}


def test_a_trickle_given_as_a_number_is_its_interval(sim: Simulator) -> None:
    sim.faults.configure({"trickle": 0.25})
    assert sim.faults.snapshot()["active"]["trickle"]["interval"] == 0.25
    assert sim.faults.snapshot()["active"]["trickle"]["chunk_bytes"] == 1
    sim.faults.configure({"trickle": True})
    assert sim.faults.snapshot()["active"]["trickle"]["interval"] == 0.5


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"chunk_bytes": 0}, "chunk_bytes"),
        ({"chunk_bytes": 1.5}, "chunk_bytes"),
        ({"chunk_bytes": True}, "chunk_bytes"),
        ({"interval": -0.1}, "interval"),
        ({"interval": float("inf")}, "interval"),
        ({"count": 0}, "count"),
    ],
)
def test_bad_trickle_options_are_refused_naming_the_option(
    options: dict[str, Any], named: str
) -> None:
    faults = FaultController(seed=1)
    with pytest.raises(ValueError, match=named):
        faults.trickle(**options)
    with pytest.raises(ValueError, match=named):
        faults.configure({"trickle": options})
    assert faults.snapshot()["active"] == {}


@pytest.mark.parametrize(
    ("switch", "named"),
    [
        (lambda f: f.set_latency(float("inf")), "latency.seconds"),
        (lambda f: f.ban_418(float("nan")), "ban_418.seconds"),
        (lambda f: f.fail_fraction(float("nan")), "error.fraction"),
        (lambda f: f.malformed_json(fraction=float("nan")), "malformed.fraction"),
    ],
)
def test_non_finite_fault_numbers_are_refused_naming_the_option(
    switch: Callable[[FaultController], None], named: str
) -> None:
    faults = FaultController(seed=1)
    with pytest.raises(ValueError, match=named):
        switch(faults)
    assert faults.snapshot()["active"] == {}


@pytest.mark.timeout(20)
def test_stop_does_not_hang_on_a_trickling_answer(
    sim_factory: Callable[..., Simulator], background: list[Background]
) -> None:
    sim = sim_factory(seed=1, auto_trade=True)
    sim.faults.trickle(chunk_bytes=1, interval=30.0)
    jobs = [Background(lambda: ticker(sim, timeout=60)) for _ in range(2)]
    background.extend(jobs)
    assert sim.faults.wait_for_trickling(2, timeout=10)
    sim.stop()
    assert sim.faults.trickling == 0
    for job in jobs:
        assert job.join(10)
        assert isinstance(job.outcome, requests.RequestException)
