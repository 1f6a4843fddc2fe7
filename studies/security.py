"""Response headers and sign-in limits that hold for every page: the Content-Security-Policy, admin login throttling."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from .ratelimit import client_key


def content_security_policy() -> str:
    """The header value built from ``settings.STYLESTUDY_CSP`` (directive -> sources)."""
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in settings.STYLESTUDY_CSP.items())


class ContentSecurityPolicyMiddleware:
    """Send the Content-Security-Policy on every response (participant pages, admin, media).

    No page may run inline script or use inline styles, so an injected
    ``<script>`` or ``onerror=`` attribute does nothing.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        return response


# --- admin sign-in ------------------------------------------------------------------

#: Failed attempts from one address may reach this multiple of the per-user allowance
#: (several researchers may share an office's address).
CLIENT_ALLOWANCE_FACTOR = 5


def _cache_key(kind: str, value: str) -> str:
    # Hashed: user names and addresses are not kept in the cache in clear.
    return f"login-failures:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def _buckets(request: HttpRequest, username: str) -> list[tuple[str, int]]:
    allowed = int(settings.STYLESTUDY_LOGIN_FAILURES_ALLOWED)
    return [
        (_cache_key("user", username.strip().lower()), allowed),
        (_cache_key("client", client_key(request)), allowed * CLIENT_ALLOWANCE_FACTOR),
    ]


def login_locked(request: HttpRequest, username: str) -> bool:
    """Whether sign-in for ``username`` from this client is refused for now."""
    if int(settings.STYLESTUDY_LOGIN_FAILURES_ALLOWED) <= 0:
        return False
    return any((cache.get(key) or 0) >= allowed for key, allowed in _buckets(request, username))


def record_login_failure(request: HttpRequest, username: str) -> None:
    timeout = int(settings.STYLESTUDY_LOGIN_LOCKOUT_SECONDS)
    for key, _allowed in _buckets(request, username):
        if not cache.add(key, 1, timeout=timeout):
            try:
                cache.incr(key)
            except ValueError:  # expired between add() and incr()
                cache.set(key, 1, timeout=timeout)


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin sign-in form, refusing further attempts after repeated failures.

    The refusal comes before the password is checked, so a locked-out guesser
    learns nothing about whether a guess was right.
    """

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": _("Too many failed sign-in attempts. Please try again in %(minutes)d minutes."),
    }

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        if login_locked(self.request, username):
            minutes = max(1, int(settings.STYLESTUDY_LOGIN_LOCKOUT_SECONDS) // 60)
            raise ValidationError(self.error_messages["locked"], code="locked", params={"minutes": minutes})
        try:
            return super().clean()
        except ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login":
                record_login_failure(self.request, username)
            raise


__all__ = [
    "ContentSecurityPolicyMiddleware",
    "ThrottledAdminAuthenticationForm",
    "content_security_policy",
    "login_locked",
    "record_login_failure",
]
