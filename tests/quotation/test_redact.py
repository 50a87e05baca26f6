"""URL credentials are never shown: not in a log record, a config's repr, a status or an error."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator

import pytest

from quotation.backoff import Backoff, Jitter
from quotation.errors import InvalidValue
from quotation.redact import redact_url
from quotation.rest.client import RestConfig
from quotation.websocket.client import WebSocketClient
from quotation.websocket.config import WebSocketConfig
from quotation.websocket.subscription import DataType, Subscription

pytestmark = pytest.mark.timeout(15)

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"wss://alice:{SECRET}@api.example.com/websocket/v1",
         "wss://***@api.example.com/websocket/v1"),
        (f"https://alice:{SECRET}@api.example.com:8443/v1?x=1",
         "https://***@api.example.com:8443/v1?x=1"),
        (f"http://{SECRET}@127.0.0.1", "http://***@127.0.0.1"),
        (f"ws://alice:p@ss:{SECRET}@host#frag", "ws://***@host#frag"),
        ("https://api.upbit.com/v1", "https://api.upbit.com/v1"),
        ("https://api.upbit.com/v1?email=a@b", "https://api.upbit.com/v1?email=a@b"),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_hides_the_userinfo_and_nothing_else(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_rest_config_repr_and_str_hide_the_password_but_show_the_host() -> None:
    config = RestConfig(base_url=f"https://alice:{SECRET}@api.example.com/v1", pool_size=3)
    for text in (repr(config), str(config)):
        assert SECRET not in text
        assert "alice" not in text
        assert "base_url='https://***@api.example.com/v1'" in text
        assert text.startswith("RestConfig(") and "pool_size=3" in text
    assert config.base_url == f"https://alice:{SECRET}@api.example.com/v1"  # still connects


def test_the_websocket_config_repr_and_str_hide_the_password_but_show_the_host() -> None:
    config = WebSocketConfig(url=f"wss://alice:{SECRET}@api.example.com/websocket/v1")
    for text in (repr(config), str(config)):
        assert SECRET not in text
        assert "url='wss://***@api.example.com/websocket/v1'" in text
        assert "liveness=LivenessConfig(" in text


@pytest.mark.parametrize(
    ("build", "url"),
    [
        (lambda url: RestConfig(base_url=url), f"ftp://alice:{SECRET}@api.example.com/v1"),
        (lambda url: WebSocketConfig(url=url), f"https://alice:{SECRET}@api.example.com/ws"),
    ],
)
def test_a_url_refused_for_its_scheme_is_named_without_its_password(
    build: Callable[[str], object], url: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        build(url)
    assert SECRET not in str(caught.value)
    assert "***@api.example.com" in str(caught.value)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A 127.0.0.1 port bound but not listening: every connect to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_failing_websocket_connect_logs_and_reports_the_url_without_its_password(
    refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    config = WebSocketConfig(
        url=f"ws://alice:{SECRET}@127.0.0.1:{refused_port}/websocket/v1",
        subscriptions=(Subscription(DataType.TRADE, ("KRW-BTC",)),),
        connect_timeout=0.5,
        backoff=Backoff(initial=0.05, multiplier=2.0, cap=0.1, jitter=Jitter.NONE),
    )
    client = WebSocketClient(config)
    with caplog.at_level(logging.WARNING, logger="quotation"):
        client.start()
        try:
            assert client.wait_until(lambda s: s.connect_failures >= 2, 10.0)
            status = client.status()
        finally:
            assert client.stop()
    failures = [r for r in caplog.records if "connect to" in r.getMessage()]
    assert failures, caplog.text
    assert f"ws://***@127.0.0.1:{refused_port}/websocket/v1" in failures[0].getMessage()
    assert SECRET not in caplog.text
    assert status.last_error is not None and SECRET not in status.last_error
    assert SECRET not in repr(status)
