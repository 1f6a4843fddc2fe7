"""Uploaded and generated images, served only to researchers who may see their study.

Participants never use these URLs: their pages serve stimuli through the
participant session's own token-checked image view.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .delivery import content_type_of, deliver
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
    response = deliver(request, name, cache_control="private, max-age=3600")
    if content_type_of(name) == "text/html":
        # A study report: one self-contained page whose styles (and its SVG figures'
        # style attributes) are inline. It may style itself and show its embedded
        # images, and nothing else: no script, no request anywhere, sandboxed.
        response["Content-Security-Policy"] = REPORT_CSP
    return response


#: Content-Security-Policy of a served report page.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
