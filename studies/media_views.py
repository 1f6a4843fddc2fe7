"""Uploaded and generated images, served only to whoever may see their study."""

from __future__ import annotations

import mimetypes
import re

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from .models import Study
from .permissions import access_media_for_user

# Stimuli of a live study are shown to anonymous participants, so anyone may fetch them.
_STIMULUS = re.compile(r"^studies/(?P<study_id>\d+)/(content|style|candidates)/[^/]+$")


@require_GET
def serve_media(request: HttpRequest, name: str) -> FileResponse:
    """A stored file under ``studies/<id>/``: researchers of that study, or a live study's stimuli.

    Raises:
        Http404: no such file, or the user may not see it (not told apart).
    """
    stimulus = _STIMULUS.match(name)
    public = stimulus is not None and Study.objects.filter(
        pk=int(stimulus["study_id"]), status=Study.Status.LIVE
    ).exists()
    if not public:
        access_media_for_user(request.user, name)
    if not default_storage.exists(name):
        raise Http404("No such file.")
    response = FileResponse(default_storage.open(name, "rb"), content_type=mimetypes.guess_type(name)[0])
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
