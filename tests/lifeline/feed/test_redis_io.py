"""``lifeline.feed.redis_io.connect``: a bad ``redis_url`` is a typed error that never shows
the URL's password (no Redis needed: the URL is refused before any connection)."""

from __future__ import annotations

import pytest

from lifeline.feed.errors import FeedError
from lifeline.feed.redis_io import connect

pytestmark = pytest.mark.timeout(10)

SECRET = "s3cret-Rd"


@pytest.mark.parametrize("url", [
    f"redis://lifeline:{SECRET}@127.0.0.1:abc/0",     # a port that is not a number
    f"http://lifeline:{SECRET}@127.0.0.1:6379/0",      # not a Redis scheme
])
def test_a_bad_redis_url_is_a_feed_error_without_its_password(url: str) -> None:
    with pytest.raises(FeedError) as caught:
        connect(url)
    message = str(caught.value)
    assert message.startswith("bad redis_url 'redis://***@") or message.startswith(
        "bad redis_url 'http://***@"), message
    assert SECRET not in message and SECRET not in repr(caught.value)
