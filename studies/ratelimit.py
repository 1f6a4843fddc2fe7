"""A fixed-window rate limit on the cache, per participant session or per client.

Counters live in Django's default cache: with ``CACHE_URL`` (Redis) every web
process counts in one place; with the per-process default each process has
its own counters, so the limit multiplies by the number of processes
(gunicorn logs a warning at start in that case: ``config/gunicorn.conf.py``).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache

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


def _cache():
    """The cache the counters live in (Django's default)."""
    return caches[DEFAULT_CACHE_ALIAS]


def _count(cache_key: str, window_s: int) -> int:
    backend = _cache()
    if isinstance(backend, RedisCache):
        return _count_in_redis(backend, cache_key, window_s)
    # Other caches: incr() first (the counter usually exists: a participant's requests come
    # within the minute), then add() (atomic) for the first request of a window.
    try:
        return backend.incr(cache_key)
    except ValueError:
        pass
    if backend.add(cache_key, 1, timeout=window_s + 5):
        return 1
    try:
        return backend.incr(cache_key)  # created meanwhile by a concurrent request
    except ValueError:  # and expired already
        backend.set(cache_key, 1, timeout=window_s + 5)
        return 1


def _count_in_redis(backend: RedisCache, cache_key: str, window_s: int) -> int:
    """One round trip per request: Redis' INCR creates the counter at 1 when it is missing.

    Django's ``RedisCache.incr`` asks ``EXISTS`` first (two round trips). The
    key and the stored integer are the cache's own, so ``cache.get`` reads
    the count. The first request of a window also sets the expiry; were that
    call lost, the counter would only outlive its window (the bucket is in
    the key), never count against the next one.
    """
    key = backend.make_and_validate_key(cache_key)
    client = backend._cache.get_client(key, write=True)
    count = client.incr(key)
    if count == 1:
        client.expire(key, window_s + 5)
    return count


def participant_limit() -> int:
    """Answers (and other POSTs) allowed per participant session per minute."""
    return int(getattr(settings, "STYLESTUDY_RATE_LIMIT_PER_MINUTE", 60))


def entry_limit() -> int:
    """New sessions allowed per client address per minute."""
    return int(getattr(settings, "STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE", 30))


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _is_trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request) -> str:
    """The participant's own address, also behind reverse proxies.

    ``X-Forwarded-For`` is believed only from the proxies listed in
    ``STYLESTUDY_TRUSTED_PROXIES`` (addresses or networks): walking it from
    the right, the first address that is not such a proxy is the client. A
    client cannot forge its way past this: whatever it puts in the header
    stands left of what the trusted proxy appended.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    networks = _networks(tuple(getattr(settings, "STYLESTUDY_TRUSTED_PROXIES", ()) or ()))
    if not networks or not _is_trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
    return hops[0] if hops else remote


def client_key(request) -> str:
    """The key of the per-address entry limit: :func:`client_address`."""
    return client_address(request)
