"""Uploaded and generated images, served only to researchers who may see their study.

Participants never use these URLs: their pages serve stimuli through the
participant session's own token-checked image view.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .delivery import deliver
from .permissions import access_media_for_user

MEDIA_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


@require_GET
def serve_media(request: HttpRequest, name: str) -> HttpResponse:
    """A stored file under ``studies/<id>/`` for an owner of that study (or a superuser).

    Raises:
        Http404: no such file, or the user may not see it (not told apart).
    """
    access_media_for_user(request.user, name)
    if not default_storage.exists(name):
        raise Http404("No such file.")
    response = deliver(request, name, cache_control="private, max-age=3600")
    # A stored report page carries its own stylesheet and data: images; it may run no script,
    # load nothing from elsewhere and is sandboxed (no forms, no same-origin access).
    response["Content-Security-Policy"] = MEDIA_CSP
    return response
