"""The shared feed: many trading hosts on one supervised feed over Redis (issue 11).

See ``docs/shared-feed.md``: ``lease`` (the publisher's lease and its fenced writes),
``codec`` (canonical models to bytes and back), ``streams`` (the key layout, the fenced
publish, the stream readers, the latest snapshots, the hosts' symbol registration, the
leader's heartbeat), ``leader`` (the publisher a host runs beside its system: lease,
subscriptions, fenced publishing, trade backfill at a takeover), ``follower`` (a host's
reads and subscriptions served from the feed), ``redis_io`` (bounded connections, Redis
errors into ours) and ``errors`` (the package's exception tree). ``redis`` is imported
lazily: ``lifeline`` imports without the ``shared`` extra. ``host`` (imported by
``MarketDataSystem`` in ``feed.mode: shared`` only) puts a leader, a follower and a watch
beside a host's tree.
"""

from lifeline.feed.codec import FeedModel, decode, encode
from lifeline.feed.errors import (
    CodecError,
    FeedCommandError,
    FeedError,
    FeedSettingsError,
    FeedUnavailable,
    LeaderSilent,
    LeaseLost,
)
from lifeline.feed.follower import (
    FeedFollower,
    FollowerStatus,
    Missing,
    NotInFeed,
    SharedSource,
)
from lifeline.feed.leader import FeedLeader, LeaderHost, LeaderRole, LeaderStatus
from lifeline.feed.lease import DEFAULT_LEADER_TTL, Lease, LeaseGrant, LeaseHolder
from lifeline.feed.redis_io import connect
from lifeline.feed.streams import (
    DEFAULT_STREAM_MAXLEN,
    DEFAULT_STREAM_PREFIX,
    FeedEntry,
    FeedKeys,
    FeedKind,
    FeedPublisher,
    FeedReader,
    Heartbeat,
    Heartbeats,
    LeaderState,
    Snapshots,
    StreamFollower,
    SymbolRegistry,
)

__all__ = [
    "DEFAULT_LEADER_TTL",
    "DEFAULT_STREAM_MAXLEN",
    "DEFAULT_STREAM_PREFIX",
    "CodecError",
    "FeedCommandError",
    "FeedEntry",
    "FeedError",
    "FeedFollower",
    "FeedKeys",
    "FeedKind",
    "FeedLeader",
    "FeedModel",
    "FeedPublisher",
    "FeedReader",
    "FeedSettingsError",
    "FeedUnavailable",
    "FollowerStatus",
    "Heartbeat",
    "Heartbeats",
    "LeaderHost",
    "LeaderRole",
    "LeaderSilent",
    "LeaderState",
    "LeaderStatus",
    "Lease",
    "LeaseGrant",
    "LeaseHolder",
    "LeaseLost",
    "Missing",
    "NotInFeed",
    "SharedSource",
    "Snapshots",
    "StreamFollower",
    "SymbolRegistry",
    "connect",
    "decode",
    "encode",
]
