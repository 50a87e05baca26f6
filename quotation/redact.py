"""URL credentials are never shown: ``wss://user:secret@host/path`` reads ``wss://***@host/path``.

A URL may carry credentials in its userinfo (the part before ``@`` in the authority). They
reach the connection, never a log record, a ``repr``, a status or an error message: every
place that shows a configured URL shows :func:`redact_url` of it. Only the userinfo is
hidden; a query value (``?token=…``) is shown as given.

The authority is read as URLs are parsed (``urllib.parse.urlsplit``): it ends at the first
``/``, ``?`` or ``#``, and its userinfo ends at its last ``@``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["REDACTED", "redact_url", "redacted_repr"]

REDACTED = "***"
"""What stands in for a URL's userinfo."""


def redact_url(url: str) -> str:
    """``url`` with its userinfo (``user:password@``) replaced by ``***@``; else unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    ends = [i for i in (rest.find(c) for c in "/?#") if i >= 0]
    end = min(ends, default=len(rest))
    _userinfo, at, host = rest[:end].rpartition("@")
    if not at:
        return url
    return f"{scheme}://{REDACTED}@{host}{rest[end:]}"


def redacted_repr(instance: Any, *url_fields: str) -> str:
    """The dataclass ``instance``'s usual ``repr``, its ``url_fields`` passed through
    :func:`redact_url` (for a ``__repr__`` of a config that holds URLs)."""
    parts = []
    for field in dataclasses.fields(instance):
        if not field.repr:
            continue
        value = getattr(instance, field.name)
        if field.name in url_fields and isinstance(value, str):
            value = redact_url(value)
        parts.append(f"{field.name}={value!r}")
    return f"{type(instance).__qualname__}({', '.join(parts)})"
