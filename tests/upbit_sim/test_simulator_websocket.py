"""The simulator's /websocket/v1 speaks Upbit's protocol; checked with a bare websocket-client."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import requests
import websocket

from upbit_sim import Simulator
from upbit_sim.ws.hub import parse_recording

pytestmark = pytest.mark.timeout(20)

MARKET = "KRW-BTC"


@pytest.fixture
def quiet_sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    return sim_factory(seed=7, auto_trade=False)


@pytest.fixture
def connect(quiet_sim: Simulator) -> Iterator[Callable[[], websocket.WebSocket]]:
    opened: list[websocket.WebSocket] = []

    def open_one() -> websocket.WebSocket:
        conn = websocket.create_connection(quiet_sim.ws_url, timeout=5, suppress_origin=True)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        conn.close(timeout=0)


def recv_json(conn: websocket.WebSocket) -> Any:
    opcode, data = conn.recv_data()
    assert opcode == websocket.ABNF.OPCODE_BINARY  # Upbit sends binary UTF-8 JSON
    return orjson.loads(data)


def send(conn: websocket.WebSocket, request: object) -> None:
    conn.send(orjson.dumps(request).decode())


@pytest.mark.parametrize(
    ("request_frame", "code"),
    [
        ("not json", "WRONG_FORMAT"),
        ({"ticket": "t"}, "WRONG_FORMAT"),
        ([{"type": "ticker", "codes": [MARKET]}], "NO_TICKET"),
        ([{"ticket": "t"}, {"format": "SIMPLE"}], "NO_TYPE"),
        ([{"ticket": "t"}, {"type": "ticker"}], "NO_CODES"),
        ([{"ticket": "t"}, {"type": "ticker", "codes": []}], "NO_CODES"),
        ([{"ticket": "t"}, {"type": "candle.2m", "codes": [MARKET]}], "INVALID_PARAM"),
        (
            [{"ticket": "t"}, {"type": "ticker", "codes": [MARKET]}, {"format": "XML"}],
            "INVALID_PARAM",
        ),
        (
            [{"ticket": "t"}, {"type": "ticker", "codes": [MARKET], "is_only_realtime": "y"}],
            "INVALID_PARAM",
        ),
    ],
)
def test_bad_requests_get_upbit_error_frames(
    connect: Callable[[], websocket.WebSocket], request_frame: object, code: str
) -> None:
    conn = connect()
    conn.send(request_frame if isinstance(request_frame, str) else orjson.dumps(request_frame))
    answer = recv_json(conn)
    assert answer["error"]["name"] == code
    assert isinstance(answer["error"]["message"], str)


def test_text_ping_is_answered_with_status_up(
    connect: Callable[[], websocket.WebSocket],
) -> None:
    conn = connect()
    conn.send("PING")
    assert recv_json(conn) == {"status": "UP"}


def test_snapshot_then_realtime_and_the_trade_is_also_in_rest(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket]
) -> None:
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "trade", "codes": [MARKET]}])
    snapshot = recv_json(conn)
    assert snapshot["type"] == "trade" and snapshot["stream_type"] == "SNAPSHOT"
    trade = quiet_sim.engine.step_market(MARKET, 1)[0]
    realtime = recv_json(conn)
    assert realtime["stream_type"] == "REALTIME"
    assert realtime["sequential_id"] == trade.sequential_id
    rest = requests.get(
        f"{quiet_sim.base_url}/trades/ticks", params={"market": MARKET, "count": "5"}, timeout=5
    ).json()
    assert rest[0]["sequential_id"] == realtime["sequential_id"]
    assert rest[0]["trade_price"] == realtime["trade_price"]
    assert rest[0]["timestamp"] == realtime["trade_timestamp"]


def test_simple_and_list_formats_change_keys_and_framing(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket]
) -> None:
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "ticker", "codes": [MARKET]}, {"format": "SIMPLE"}])
    simple = recv_json(conn)
    assert simple["ty"] == "ticker" and simple["cd"] == MARKET and simple["st"] == "SNAPSHOT"
    send(conn, [{"ticket": "u"}, {"type": "ticker", "codes": [MARKET]}, {"format": "SIMPLE_LIST"}])
    listed = recv_json(conn)
    assert isinstance(listed, list) and listed[0]["ty"] == "ticker"
    send(conn, [{"ticket": "v"}, {"type": "ticker", "codes": [MARKET]}, {"format": "JSON_LIST"}])
    listed = recv_json(conn)
    assert isinstance(listed, list) and listed[0]["type"] == "ticker"


def test_orderbook_depth_suffix_limits_the_rows(
    connect: Callable[[], websocket.WebSocket],
) -> None:
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "orderbook", "codes": [f"{MARKET}.5"]}])
    book = recv_json(conn)
    assert book["code"] == MARKET
    assert len(book["orderbook_units"]) == 5


def test_only_snapshot_sends_no_realtime_and_only_realtime_no_snapshot(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket]
) -> None:
    conn = connect()
    send(
        conn,
        [
            {"ticket": "t"},
            {"type": "ticker", "codes": [MARKET], "is_only_snapshot": True},
            {"type": "trade", "codes": [MARKET], "isOnlyRealtime": True},
        ],
    )
    first = recv_json(conn)
    assert (first["type"], first["stream_type"]) == ("ticker", "SNAPSHOT")
    quiet_sim.engine.step_market(MARKET, 1)
    second = recv_json(conn)
    assert (second["type"], second["stream_type"]) == ("trade", "REALTIME")


def test_list_subscriptions_reports_the_current_set(
    connect: Callable[[], websocket.WebSocket],
) -> None:
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "trade", "codes": [MARKET], "is_only_realtime": True}])
    send(conn, [{"ticket": "list-1"}, {"method": "LIST_SUBSCRIPTIONS"}])
    answer = recv_json(conn)
    assert answer == {
        "method": "LIST_SUBSCRIPTIONS",
        "result": [{"type": "trade", "codes": [MARKET]}],
        "ticket": "list-1",
    }
    send(conn, [{"ticket": "list-2"}, {"method": "LIST_SUBSCRIPTIONS"}, {"format": "SIMPLE"}])
    answer = recv_json(conn)
    assert answer == {
        "mthd": "LIST_SUBSCRIPTIONS",
        "rslt": [{"ty": "trade", "cds": [MARKET]}],
        "tckt": "list-2",
    }


def test_describe_sessions_names_each_open_connection_until_it_closes(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket],
) -> None:
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "trade", "codes": [MARKET], "is_only_realtime": True}])
    send(conn, [{"ticket": "list"}, {"method": "LIST_SUBSCRIPTIONS"}])
    recv_json(conn)  # the subscription was taken
    (line,) = quiet_sim.ws.describe_sessions()
    assert conn.sock is not None
    port = conn.sock.getsockname()[1]
    assert f"'127.0.0.1', {port})" in line
    assert f"types trade markets {MARKET} closing False" in line
    conn.close()
    assert quiet_sim.ws.wait_for(lambda stats: stats.connections == 0, 5.0)
    assert quiet_sim.ws.describe_sessions() == []


def test_an_idle_connection_is_closed_after_the_configured_timeout(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket]
) -> None:
    quiet_sim.ws.idle_timeout = 0.3
    conn = connect()
    opcode, _ = conn.recv_data(control_frame=True)  # nothing is sent until the close
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert quiet_sim.ws.stats().idle_closes == 1


def test_refused_handshakes_while_not_accepting(quiet_sim: Simulator) -> None:
    quiet_sim.ws.set_accepting(False)
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(quiet_sim.ws_url, timeout=5, suppress_origin=True)
    quiet_sim.ws.set_accepting(True)
    websocket.create_connection(quiet_sim.ws_url, timeout=5, suppress_origin=True).close()


def test_http_controls_switch_faults_while_running(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket]
) -> None:
    base = f"http://127.0.0.1:{quiet_sim.port}/_sim/ws"
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "trade", "codes": [MARKET], "is_only_realtime": True}])
    assert quiet_sim.ws.wait_for(lambda st: st.subscribed == 1, 5)
    assert requests.post(f"{base}/pings", params={"answer": "0"}, timeout=5).json()["ok"]
    assert requests.get(f"{base}/status", timeout=5).json()["answer_pings"] is False
    requests.post(f"{base}/malformed", params={"count": "1", "kind": "truncated"}, timeout=5)
    _, data = conn.recv_data()
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data)
    assert requests.post(f"{base}/reset", timeout=5).json()["ok"]
    assert requests.get(f"{base}/status", timeout=5).json()["answer_pings"] is True
    assert requests.post(f"{base}/close", timeout=5).json()["closed"] == 1
    opcode, _ = conn.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    bad = requests.post(f"{base}/malformed", params={"kind": "nonsense"}, timeout=5)
    assert bad.status_code == 400


def test_silence_suppresses_data_pongs_and_up(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket]
) -> None:
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "trade", "codes": [MARKET], "is_only_realtime": True}])
    assert quiet_sim.ws.wait_for(lambda st: st.subscribed == 1, 5)
    quiet_sim.ws.set_silent(True)
    quiet_sim.engine.step_market(MARKET, 3)
    conn.send("PING")
    conn.ping()
    conn.settimeout(0.3)
    with pytest.raises(websocket.WebSocketTimeoutException):
        conn.recv_data(control_frame=True)
    quiet_sim.ws.set_silent(False)
    conn.settimeout(5)
    conn.send("PING")
    assert recv_json(conn) == {"status": "UP"}


def test_a_consumer_that_does_not_read_is_disconnected_not_buffered_forever(
    quiet_sim: Simulator,
) -> None:
    quiet_sim.ws.set_queue_limit(20)
    raw = websocket.create_connection(quiet_sim.ws_url, timeout=5, suppress_origin=True)
    assert raw.sock is not None
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        send(raw, [{"ticket": "t"}, {"type": "orderbook", "codes": [MARKET]}])
        assert quiet_sim.ws.wait_for(lambda st: st.subscribed == 1, 5)
        for _ in range(40):  # bounded: stop as soon as the server gives up on us
            quiet_sim.engine.step_market(MARKET, 100)
            if quiet_sim.ws.wait_for(lambda st: st.slow_consumer_closes >= 1, 0.05):
                break
        # The server may notice only after the last step on a loaded machine: wait for it.
        assert quiet_sim.ws.wait_for(lambda st: st.slow_consumer_closes >= 1, 10)
        assert quiet_sim.ws.stats().slow_consumer_closes == 1
    finally:
        raw.close(timeout=0)


def test_burst_sends_the_requested_count_with_unique_trade_ids(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket]
) -> None:
    conn = connect()
    send(conn, [{"ticket": "t"}, {"type": "trade", "codes": [MARKET], "is_only_realtime": True}])
    assert quiet_sim.ws.wait_for(lambda st: st.subscribed == 1, 5)
    sent = quiet_sim.ws.burst(500)
    ids = {recv_json(conn)["sequential_id"] for _ in range(500)}
    assert sent.result(5) == 500
    assert len(ids) == 500


def test_recordings_are_read_frame_by_frame(recordings_dir: Any) -> None:
    frames = parse_recording(recordings_dir / "websocket" / "simple-trade-orderbook-2021-04-17.log")
    assert len(frames) == 449
    assert all(orjson.loads(frame)["ty"] in ("trade", "orderbook") for _, frame in frames)
    times = [t for t, _ in frames]
    assert times == sorted(times)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return type(value).__name__


def test_frames_have_the_recorded_keys_and_json_types(
    quiet_sim: Simulator, connect: Callable[[], websocket.WebSocket], recordings_dir: Any
) -> None:
    recorded: dict[str, dict[str, Any]] = {}
    path = recordings_dir / "websocket" / "simple-trade-orderbook-2021-04-17.log"
    for _, frame in parse_recording(path):
        message = orjson.loads(frame)
        recorded.setdefault(message["ty"], message)
    conn = connect()
    send(
        conn,
        [
            {"ticket": "t"},
            {"type": "trade", "codes": [MARKET]},
            {"type": "orderbook", "codes": [f"{MARKET}.15"]},
            {"format": "SIMPLE"},
        ],
    )
    ours = {}
    for _ in range(2):
        message = recv_json(conn)
        ours[message["ty"]] = message
    for kind, theirs in recorded.items():
        mine = ours[kind]
        for key, value in theirs.items():
            assert key in mine, f"{kind}.{key} missing"
            assert _json_type(mine[key]) == _json_type(value), f"{kind}.{key}"
    their_unit = recorded["orderbook"]["obu"][0]
    my_unit = ours["orderbook"]["obu"][0]
    assert {k: _json_type(v) for k, v in my_unit.items()} == {
        k: _json_type(v) for k, v in their_unit.items()
    }
