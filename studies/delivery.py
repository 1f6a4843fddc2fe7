"""How a stored file that a request may see is delivered: the one place that decides.

Views check permissions, then call :func:`deliver`. The bytes never pass
through Python when the deployment allows it:

* local disk behind nginx (``STYLESTUDY_ACCEL_REDIRECT_PREFIX`` set): an empty
  response with ``X-Accel-Redirect``; nginx sends the file from an
  ``internal`` location (README, *Production*, shows the snippet);
* otherwise: Django streams the file (:class:`~django.http.FileResponse`).

Both carry ``Cache-Control`` and an ``ETag`` (file names are content-addressed
or unique per generated image, so a name never changes its bytes), and a
matching ``If-None-Match`` is answered 304 without opening the file.
"""

from __future__ import annotations

import hashlib
import mimetypes
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotModified


def file_etag(name: str) -> str:
    """A strong ETag for the stored file ``name`` (its bytes never change under one name)."""
    return '"' + hashlib.sha256(name.encode()).hexdigest()[:24] + '"'


def content_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def accel_redirect_prefix() -> str:
    """The nginx ``internal`` location that maps to ``MEDIA_ROOT`` ('' when Django serves files itself)."""
    return getattr(settings, "STYLESTUDY_ACCEL_REDIRECT_PREFIX", "") or ""


def _not_modified(request: HttpRequest, etag: str) -> bool:
    asked = request.headers.get("If-None-Match", "")
    return bool(asked) and (asked.strip() == "*" or etag in [t.strip() for t in asked.split(",")])


def deliver(request: HttpRequest, name: str, *, cache_control: str, storage=None) -> HttpResponse:
    """The response that sends the stored file ``name``; call only after the permission check.

    Args:
        request: the request (for ``If-None-Match``).
        name: the file's name in ``storage``.
        cache_control: the ``Cache-Control`` value (e.g. ``private, max-age=3600``).
        storage: the storage holding the file (default storage if None).
    """
    storage = storage or default_storage
    etag = file_etag(name)
    if _not_modified(request, etag):
        response: HttpResponse = HttpResponseNotModified()
    else:
        prefix = accel_redirect_prefix()
        if prefix and isinstance(storage, FileSystemStorage):
            response = HttpResponse(content_type=content_type_of(name))
            response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(name)
        else:
            response = FileResponse(storage.open(name, "rb"), content_type=content_type_of(name))
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


__all__ = ["accel_redirect_prefix", "content_type_of", "deliver", "file_etag"]
