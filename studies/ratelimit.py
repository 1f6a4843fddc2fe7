"""A fixed-window rate limit on the cache, per participant session or per client."""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


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
    try:
        count = _count(cache_key, window_s)
    except Exception as exc:  # noqa: BLE001 - any cache backend error
        # Fail open: an unreachable cache (Redis down) must not stop
        # participants; the limit returns when the cache does.
        logger.warning("rate limit skipped, cache unavailable: %s", type(exc).__name__)
        return
    if count > limit:
        raise RateLimited(scope)


def _count(cache_key: str, window_s: int) -> int:
    # add() is atomic: the first request of a window creates the counter.
    if cache.add(cache_key, 1, timeout=window_s + 5):
        return 1
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.set(cache_key, 1, timeout=window_s + 5)
        return 1


def participant_limit() -> int:
    """Answers (and other POSTs) allowed per participant session per minute."""
    return int(getattr(settings, "STYLESTUDY_RATE_LIMIT_PER_MINUTE", 60))


def entry_limit() -> int:
    """New sessions allowed per client address per minute."""
    return int(getattr(settings, "STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE", 30))


def client_key(request) -> str:
    """The client address (behind a trusted proxy only what Django reports as REMOTE_ADDR)."""
    return request.META.get("REMOTE_ADDR", "")
