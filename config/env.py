"""Reading configuration from the environment, in one place.

Settings call these helpers; nothing else in the project reads ``os.environ``
for configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

# A value no production deployment may use: settings refuse it when DEBUG is off.
INSECURE_DEV_SECRET_KEY = "django-insecure-stylestudy-development-key-do-not-use"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no, got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default


def get_secret_key(debug: bool) -> str:
    """``DJANGO_SECRET_KEY``; outside DEBUG a missing or development key is refused."""
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if debug:
        return key or INSECURE_DEV_SECRET_KEY
    if not key or key == INSECURE_DEV_SECRET_KEY or key.startswith("django-insecure"):
        raise ImproperlyConfigured(
            "Production mode (DEBUG=0) needs DJANGO_SECRET_KEY set to a long random "
            "value; refusing to start with the default development key. Generate one "
            'with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    if len(key) < 32:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters in production")
    return key


def get_allowed_hosts(debug: bool) -> list[str]:
    hosts = env_list("ALLOWED_HOSTS")
    if debug:
        return hosts or ["localhost", "127.0.0.1", "[::1]"]
    if not hosts:
        raise ImproperlyConfigured(
            "Production mode (DEBUG=0) needs ALLOWED_HOSTS, a comma-separated list of "
            "the host names this site is served under (e.g. ALLOWED_HOSTS=study.example.org)"
        )
    return hosts
