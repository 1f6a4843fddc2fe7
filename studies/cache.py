"""Django's Redis cache with one client per connection pool.

Django's ``RedisCache`` builds a new ``redis.Redis`` for every operation; the
constructor costs more Python than the round trip it wraps (under load it was
3 % of the web processes' CPU, all of it for the one rate-limit count of a
request). redis-py's clients are safe to share between threads, so each
connection pool keeps one.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ClientPerPool(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(pool)
        if client is None:
            client = self._clients[pool] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    """``django.core.cache.backends.redis.RedisCache``, its client made once per connection pool."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = _ClientPerPool
