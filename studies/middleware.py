"""Service outages become a "please retry" answer (503), never a server error.

When PostgreSQL restarts or is briefly unreachable, every query raises
:class:`django.db.OperationalError` (or :class:`~django.db.InterfaceError`
on a connection that died mid-request). Participants must then see a
message asking them to retry in a moment, and scripted clients must get a
``Retry-After`` header, rather than a 500 page that looks like a crash.

:class:`DatabaseUnavailableMiddleware` turns such exceptions from a view
into a 503. Exceptions raised outside views (e.g. while another middleware
saves the session) reach Django's error handler instead; :func:`server_error`
is installed as ``handler500`` so those get the same answer.

Nothing here touches the database: the reply is rendered without a request
context (whose context processors would read the session and the user).

:class:`ParticipantNotFoundMiddleware` gives participants the translated
not-found page even when ``DEBUG`` is on (the demo), where Django would show
its technical page: a withdrawn session's link must not answer with the URL
patterns of the site.
"""

from __future__ import annotations

import logging
import re
import sys

from django.db import InterfaceError, OperationalError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseServerError,
    JsonResponse,
)
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.defaults import server_error as django_server_error

from .privacy import TOKEN_PATTERN
from .views import page_not_found

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying.
RETRY_AFTER_SECONDS = 5

_SESSION_PATH = re.compile(f"^/p/{TOKEN_PATTERN}/")

#: Exceptions that mean "the database cannot be reached now" rather than a bug.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)


def is_service_outage(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a database outage."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, UNAVAILABLE_ERRORS):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    content_type = request.headers.get("Content-Type", "")
    return "application/json" in accept or content_type.startswith("application/json")


def _retry_url(request: HttpRequest) -> str:
    """Where "try again" leads: the page itself for a GET, the session page after a POST.

    Re-sending a POST is left to the participant's session page, which shows
    whatever is next (the same trial again if the answer was not stored).
    """
    if request.method == "GET":
        return request.get_full_path()
    match = _SESSION_PATH.match(request.path)
    return match.group(0) if match else request.path


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """A 503 "please retry" reply (HTML, or JSON for JSON clients) with ``Retry-After``."""
    # Dead connections need no handling here: Django closes unusable ones when
    # the request finishes, and health checks replace them on the next one.
    if _wants_json(request):
        response: HttpResponse = JsonResponse(
            {"error": "unavailable", "retry": True, "retry_after": RETRY_AFTER_SECONDS,
             "message": _("The study is briefly unavailable. Please try again in a few seconds.")},
            status=503,
        )
    else:
        language = getattr(request, "LANGUAGE_CODE", None) or translation.get_language() or "en"
        html = render_to_string("studies/unavailable.html", {
            "language": language, "retry_after": RETRY_AFTER_SECONDS, "retry_url": _retry_url(request)})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """Answer 503 with ``Retry-After`` when a view fails because the database is unreachable."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_service_outage(exception):
            return None
        logger.warning("database unavailable (%s): answered 503", type(exception).__name__)
        return service_unavailable(request)


def server_error(request: HttpRequest, template_name: str = "studies/500.html") -> HttpResponse:
    """``handler500``: a database outage outside a view still becomes a 503; other errors get the
    translated error page, which shows nothing of the error."""
    if is_service_outage(sys.exc_info()[1]):
        logger.warning("database unavailable outside a view: answered 503")
        return service_unavailable(request)
    try:
        return django_server_error(request, template_name=template_name)
    except Exception:  # noqa: BLE001 - the last resort must not fail
        return HttpResponseServerError("<h1>Server Error (500)</h1>", content_type="text/html")


class ParticipantNotFoundMiddleware:
    """A participant page's ``Http404`` answers with the translated not-found page, whatever ``DEBUG``.

    Only views of the ``studies`` app (participant pages and images); the admin keeps Django's pages.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        match = getattr(request, "resolver_match", None)
        if not isinstance(exception, Http404) or match is None or match.app_name != "studies":
            return None
        return page_not_found(request, exception)
