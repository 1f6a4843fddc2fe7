"""Uploaded and generated images, served only to researchers who may see their study.

Participants never use these URLs: their pages serve stimuli through the
participant session's own token-checked image view.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .delivery import StoredFile, deliver
from .permissions import access_media_for_user


@require_GET
def serve_media(request: HttpRequest, name: str) -> HttpResponse:
    """A stored file under ``studies/<id>/`` for an owner of that study (or a superuser).

    Raises:
        Http404: no such file, or the user may not see it (not told apart).
    """
    access_media_for_user(request.user, name)
    if not default_storage.exists(name):
        raise Http404("No such file.")
    return deliver(request, StoredFile(default_storage, name))
