"""How a stored file that a request may see is delivered: the one place that decides.

Views check permissions, then call :func:`deliver`. The bytes never pass
through Python when the deployment allows it:

* local disk behind nginx (``STYLESTUDY_ACCEL_REDIRECT_PREFIX`` set): an empty
  response with ``X-Accel-Redirect``; nginx sends the file from an
  ``internal`` location (README, *Production*, shows the snippet);
* S3-compatible object storage (``MEDIA_S3_BUCKET``): a redirect to a
  presigned URL valid for ``MEDIA_URL_EXPIRE_SECONDS``, so the browser fetches
  the bytes from the bucket (README, *Several hosts*);
* otherwise: Django streams the file (:class:`~django.http.FileResponse`).

Participants' stimuli can skip Django altogether: with
``STYLESTUDY_IMAGE_LINK_SECRET`` set (local disk behind nginx), a trial page
links each image as ``/m/<expires>/<signature>/<alias>.png``, a URL nginx's
``secure_link`` module verifies by itself (README, *Production*). The
permission check is the page's: a URL is only issued for an image of the
participant's own trial. ``<alias>`` is a keyed hash of the file name, a
symbolic link under ``MEDIA_ROOT/_published/`` made the first time it is
linked, so no file or method name is in the URL.

Both carry ``Cache-Control`` and an ``ETag`` (file names are content-addressed
or unique per generated image, so a name never changes its bytes), and a
matching ``If-None-Match`` is answered 304 without opening the file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import mimetypes
import os
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
)
from django.utils.crypto import constant_time_compare, salted_hmac


def file_etag(name: str) -> str:
    """A strong ETag for the stored file ``name`` (its bytes never change under one name)."""
    return '"' + hashlib.sha256(name.encode()).hexdigest()[:24] + '"'


def content_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def accel_redirect_prefix() -> str:
    """The nginx ``internal`` location that maps to ``MEDIA_ROOT`` ('' when Django serves files itself)."""
    return getattr(settings, "STYLESTUDY_ACCEL_REDIRECT_PREFIX", "") or ""


def presigns(storage) -> bool:
    """Whether ``storage`` hands out signed, expiring URLs (S3-compatible object storage)."""
    return callable(getattr(storage, "presigned_url", None))


def _presigned_redirect(name: str, storage, cache_control: str) -> HttpResponse:
    """A redirect to the object, reusable for half the signature's lifetime.

    While the browser reuses the redirect it reuses the same signed URL, so its
    cached copy of the image keeps working.
    """
    expire = int(storage.querystring_expire)
    url = storage.presigned_url(
        name, expire=expire,
        parameters={"ResponseContentType": content_type_of(name), "ResponseCacheControl": cache_control},
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = f"private, max-age={max(expire // 2, 0)}"
    return response


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
    if presigns(storage):
        return _presigned_redirect(name, storage, cache_control)
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




# --- signed, expiring URLs ---------------------------------------------------------------
#
# A page that has checked a participant's right to see a file links to it with
# a reference signed by the server; the image request then needs no session
# lookup, only the signature. The expiry is rounded up to a window, so a page
# and the next page's preload produce the same URL and browsers reuse the copy.


def _url_max_age() -> int:
    return int(getattr(settings, "STYLESTUDY_IMAGE_URL_MAX_AGE", 2 * 3600))


def _signature(ref: str, expires: int) -> str:
    return salted_hmac("stylestudy.delivery.signed-url", f"{ref}:{expires}", algorithm="sha256").hexdigest()[:32]


def _expiry(now: float | None = None) -> int:
    window = max(_url_max_age() // 2, 1)
    now = time.time() if now is None else now
    return (int(now) // window + 2) * window


def sign_ref(ref: str, *, now: float | None = None) -> tuple[int, str]:
    """``(expires, signature)`` for the opaque file reference ``ref``.

    The URL stays valid for at least half of ``STYLESTUDY_IMAGE_URL_MAX_AGE``
    and at most all of it.
    """
    expires = _expiry(now)
    return expires, _signature(ref, expires)


def check_signed_ref(ref: str, expires: int, signature: str, *, now: float | None = None) -> int:
    """Seconds the signed reference stays valid; raises Http404 if forged or expired."""
    now = time.time() if now is None else now
    if not constant_time_compare(signature, _signature(ref, expires)) or expires <= now:
        raise Http404("no such image")
    return int(expires - now)


# --- links nginx verifies (secure_link) ----------------------------------------------------

#: Folder under MEDIA_ROOT holding the published aliases (symbolic links to stimuli).
PUBLISHED_DIR = "_published"
#: The aliases this process has made, by ``(media folder, secret, file name)``: a page then costs no hashing
#: of the name and no file-system call.
_published: dict[tuple[str, str, str], str] = {}


def image_link_secret() -> str:
    """The secret shared with nginx's ``secure_link_md5`` ('' when Django serves the images)."""
    return getattr(settings, "STYLESTUDY_IMAGE_LINK_SECRET", "") or ""


def serves_links(storage=None) -> bool:
    """Whether stimuli go out as nginx-verified links: a secret is set and files are on local disk."""
    return bool(image_link_secret()) and isinstance(storage or default_storage, FileSystemStorage)


def _alias(name: str) -> str:
    key = hashlib.sha256(("stylestudy.delivery.alias:" + image_link_secret()).encode()).digest()
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp") else ""
    return hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:32] + suffix


def publish(name: str, storage=None) -> str:
    """The alias of the stored file ``name`` under ``PUBLISHED_DIR``, made on first use."""
    storage = storage or default_storage
    key = (storage.location, image_link_secret(), name)
    alias = _published.get(key)
    if alias is None:
        alias = _alias(name)
        folder = Path(storage.location) / PUBLISHED_DIR
        link = folder / alias
        if not link.is_symlink():
            folder.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(os.path.relpath(Path(storage.path(name)), folder), link)
            except FileExistsError:
                pass  # made by another process meanwhile
        _published[key] = alias
    return alias


def link_signature(alias: str, expires: int) -> str:
    """What nginx computes with ``secure_link_md5 "$link_expires/$link_file <secret>"`` (README snippet).

    MD5 is what ``secure_link`` offers; the secret ends the hashed text, so the
    signature cannot be extended to another alias or expiry.
    """
    digest = hashlib.md5(f"{expires}/{alias} {image_link_secret()}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def image_link(name: str, *, now: float | None = None) -> str:
    """The nginx-verified, expiring URL of the stored stimulus ``name`` (call only for a permitted file).

    The expiry is rounded as in :func:`sign_ref`, so a page and the preload on
    the page before give the same URL, and the browser reuses its copy.
    """
    alias = publish(name)
    expires = _expiry(now)
    return f"/m/{expires}/{link_signature(alias, expires)}/{alias}"


__all__ = ["accel_redirect_prefix", "check_signed_ref", "content_type_of", "deliver", "file_etag", "image_link",
           "image_link_secret", "link_signature", "presigns", "publish", "serves_links", "sign_ref"]
