"""How a permitted stored file reaches the browser: the one place that decides.

Callers check permission first (the participant's own trial, the researcher's
own study); :func:`deliver` then sends the bytes. On object storage the
browser is redirected to a short-lived presigned URL, so image bytes never
pass through the web process; on local disk the file is streamed.
"""

from __future__ import annotations

import mimetypes
from typing import NamedTuple

from django.core.files.storage import Storage
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect

# How long a browser may reuse a response (the image, or the redirect to it).
MAX_AGE_SECONDS = 3600


class StoredFile(NamedTuple):
    """A stored name and its storage (what a ``FieldFile`` offers), for names outside a model."""

    storage: Storage
    name: str


def presigns(storage: Storage) -> bool:
    """Whether ``storage`` hands out signed, expiring URLs (S3-compatible object storage)."""
    return callable(getattr(storage, "presigned_url", None))


def content_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def deliver(request: HttpRequest, field_file, *, content_type: str | None = None) -> HttpResponse:
    """The response that sends an already permitted ``field_file`` to the browser.

    Args:
        field_file: a ``FieldFile`` or :class:`StoredFile` (``storage`` and ``name``).
        content_type: defaults to the type guessed from the name.

    Returns:
        A ``302`` to a presigned URL on object storage: the redirect may be
        reused for half the signature's lifetime, so a browser fetches an
        image it has once and its cache keeps working. Otherwise a streamed
        ``FileResponse``. Both are ``private``: never kept by shared caches.
    """
    storage, name = field_file.storage, field_file.name
    content_type = content_type or content_type_of(name)
    if presigns(storage):
        expire = int(storage.querystring_expire)
        url = storage.presigned_url(
            name,
            parameters={"ResponseContentType": content_type,
                        "ResponseCacheControl": f"private, max-age={min(MAX_AGE_SECONDS, expire)}"},
            expire=expire,
        )
        response: HttpResponse = HttpResponseRedirect(url)
        response["Cache-Control"] = f"private, max-age={max(expire // 2, 0)}"
        return response
    response = FileResponse(storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = f"private, max-age={MAX_AGE_SECONDS}"
    return response
