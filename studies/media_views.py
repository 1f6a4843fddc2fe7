"""Uploaded and generated images, served only to researchers who may see their study.

Participants never use these URLs: their pages serve stimuli through the
participant session's own token-checked image view.
"""

from __future__ import annotations

import mimetypes

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from .permissions import access_media_for_user


@require_GET
def serve_media(request: HttpRequest, name: str) -> FileResponse:
    """A stored file under ``studies/<id>/`` for an owner of that study (or a superuser).

    Raises:
        Http404: no such file, or the user may not see it (not told apart).
    """
    access_media_for_user(request.user, name)
    if not default_storage.exists(name):
        raise Http404("No such file.")
    content_type = mimetypes.guess_type(name)[0]
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    if content_type == "text/html":
        # A study report: one self-contained page whose styles (and its SVG figures'
        # style attributes) are inline. It may style itself and show its embedded
        # images, and nothing else: no script, no request anywhere, sandboxed.
        response["Content-Security-Policy"] = REPORT_CSP
    return response


#: Content-Security-Policy of a served report page.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
