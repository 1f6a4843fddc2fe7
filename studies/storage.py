"""How workers and the web read and write stored files, whichever storage is configured.

* Local disk (the embedded default) is
  :class:`studies.local_storage.AtomicFileSystemStorage`: a file appears
  under its final name only once complete, as an object does on S3 (a single
  PUT, or a multipart upload, becomes visible only when finished). A worker
  killed mid-write leaves at most a hidden ``.partial-*`` file, never a
  truncated image under a name the database could point to.
* :class:`MediaS3Storage` is S3-compatible object storage for several hosts.
* :func:`read_stimulus` reads a content or style image through a per-process
  cache keyed by its content hash, so a style image used by hundreds of
  candidates is downloaded once by each worker process.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from urllib.parse import urljoin

from django.conf import settings
from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage

logger = logging.getLogger(__name__)


class MediaS3Storage(S3Storage):
    """S3-compatible object storage whose public URLs are the app's permission-checked media URLs.

    ``url()`` answers ``MEDIA_URL + name`` as on local disk, so pages never
    embed a bucket address; the checked view then redirects to
    :meth:`presigned_url` (see :func:`studies.delivery.deliver`).
    """

    def url(self, name, parameters=None, expire=None, http_method=None) -> str:
        return urljoin(settings.MEDIA_URL, filepath_to_uri(name))

    def presigned_url(self, name: str, *, expire: int | None = None, parameters: dict | None = None) -> str:
        """A GET URL for ``name`` signed for ``expire`` seconds (default ``MEDIA_URL_EXPIRE_SECONDS``)."""
        return super().url(name, parameters=parameters, expire=expire or self.querystring_expire)


class StimulusCache:
    """File bytes by content hash, least recently used dropped first beyond ``max_bytes``.

    Thread-safe; one per process (see :func:`stimulus_cache`). ``downloads``
    counts reads from storage, ``hits`` reads answered from memory.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.downloads = 0
        self.hits = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def read(self, field_file, digest: str) -> bytes:
        """The bytes of ``field_file`` (a stored file), cached under ``digest``."""
        if not digest:
            raise ValueError(f"no content hash for {field_file.name!r}: cannot cache it")
        with self._lock:
            data = self._items.get(digest)
            if data is not None:
                self._items.move_to_end(digest)
                self.hits += 1
                return data
        with field_file.storage.open(field_file.name, "rb") as fh:
            data = fh.read()
        logger.info("stimulus cache: read %s from storage (%d bytes)", field_file.name, len(data))
        with self._lock:
            self.downloads += 1
            if digest not in self._items and len(data) <= self.max_bytes:
                self._items[digest] = data
                self._size += len(data)
                while self._size > self.max_bytes:
                    _, dropped = self._items.popitem(last=False)
                    self._size -= len(dropped)
        return data

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0


_cache: StimulusCache | None = None
_cache_lock = threading.Lock()


def stimulus_cache() -> StimulusCache:
    """This process's stimulus cache (``STYLESTUDY_STIMULUS_CACHE_MB``)."""
    global _cache
    with _cache_lock:
        if _cache is None:
            _cache = StimulusCache(int(getattr(settings, "STYLESTUDY_STIMULUS_CACHE_MB", 256)) * 1024 * 1024)
        return _cache


def read_stimulus(image) -> bytes:
    """The stored file of a :class:`ContentImage` or :class:`StyleImage`, through the cache."""
    return stimulus_cache().read(image.image, image.sha256)
