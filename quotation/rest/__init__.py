"""Upbit's Quotation REST API: the client, its error answers, the shared rate limiter.

Modules: ``client`` (:class:`RestClient`, :class:`RestConfig`), ``answers`` (reading
Upbit's error answers into typed errors), ``ratelimit`` (the process-wide
:class:`RateLimiter`, one budget per Upbit group), ``remaining_req`` (the
``Remaining-Req`` header), ``validation`` (request parameters, checked before any
network call).
"""

from quotation.rest.client import UPBIT_REST_URL, RestClient, RestConfig
from quotation.rest.ratelimit import LimiterStatus, RateLimiter, process_limiter

__all__ = [
    "UPBIT_REST_URL",
    "LimiterStatus",
    "RateLimiter",
    "RestClient",
    "RestConfig",
    "process_limiter",
]
