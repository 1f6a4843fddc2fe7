"""A fixed-window rate limit on the cache, per participant session or per client."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


class RateLimited(Exception):
    """Too many requests in the current window."""


def check_rate_limit(scope: str, key: str, *, limit: int, window_s: int = 60) -> None:
    """Count one request for ``key`` in ``scope``; raise when over ``limit`` per window.

    The key is hashed before it becomes a cache key, so tokens and addresses
    are not stored in the cache in clear.

    Raises:
        RateLimited: the request is one too many.
    """
    if limit <= 0:
        return
    digest = hashlib.sha256(f"{scope}:{key}".encode()).hexdigest()[:32]
    bucket = int(time.time() // window_s)
    cache_key = f"rl:{scope}:{digest}:{bucket}"
    # add() is atomic: the first request of a window creates the counter.
    if cache.add(cache_key, 1, timeout=window_s + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add() and incr()
            cache.set(cache_key, 1, timeout=window_s + 5)
            count = 1
    if count > limit:
        raise RateLimited(scope)


def participant_limit() -> int:
    """Answers (and other POSTs) allowed per participant session per minute."""
    return int(getattr(settings, "STYLESTUDY_RATE_LIMIT_PER_MINUTE", 60))


def entry_limit() -> int:
    """New sessions allowed per client address per minute."""
    return int(getattr(settings, "STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE", 30))


def client_key(request) -> str:
    """The client address (behind a trusted proxy only what Django reports as REMOTE_ADDR)."""
    return request.META.get("REMOTE_ADDR", "")
