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


def get_media_storage() -> dict:
    """``STORAGES["default"]``: S3-compatible object storage when ``MEDIA_S3_BUCKET`` is set.

    Otherwise local disk under ``MEDIA_ROOT`` (the embedded default). On
    object storage every file (uploads, candidates, thumbnails, checkpoints,
    reports) lives in the bucket under ``MEDIA_S3_PREFIX``, and browsers fetch
    images through presigned URLs valid for ``MEDIA_URL_EXPIRE_SECONDS``.
    Credentials not given here come from boto3's usual chain (``AWS_*``
    variables, instance roles).
    """
    bucket = env_str("MEDIA_S3_BUCKET").strip()
    if not bucket:
        return {"BACKEND": "studies.local_storage.AtomicFileSystemStorage"}
    endpoint = env_str("MEDIA_S3_ENDPOINT_URL").strip() or None
    prefix = env_str("MEDIA_S3_PREFIX").strip().strip("/")
    if ".." in prefix.split("/"):
        raise ImproperlyConfigured(f"MEDIA_S3_PREFIX must be a plain key prefix, got {prefix!r}")
    style = env_str("MEDIA_S3_ADDRESSING_STYLE", "path" if endpoint else "auto")
    if style not in ("path", "virtual", "auto"):
        raise ImproperlyConfigured(f"MEDIA_S3_ADDRESSING_STYLE must be path, virtual or auto, got {style!r}")
    expire = env_int("MEDIA_URL_EXPIRE_SECONDS", 300)
    if not 1 <= expire <= 7 * 24 * 3600:
        raise ImproperlyConfigured(f"MEDIA_URL_EXPIRE_SECONDS must be between 1 and 604800, got {expire}")
    options = {
        "bucket_name": bucket,
        "endpoint_url": endpoint,
        "region_name": env_str("MEDIA_S3_REGION").strip() or None,
        "location": prefix,
        "addressing_style": style,
        "signature_version": "s3v4",
        # Private objects, reached only through short-lived signatures.
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": expire,
        # A stored name is never replaced: two writers get two names.
        "file_overwrite": False,
    }
    access_key, secret_key = env_str("MEDIA_S3_ACCESS_KEY_ID"), env_str("MEDIA_S3_SECRET_ACCESS_KEY")
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured("set both MEDIA_S3_ACCESS_KEY_ID and MEDIA_S3_SECRET_ACCESS_KEY, or neither")
    if access_key:
        options.update(access_key=access_key, secret_key=secret_key)
    return {"BACKEND": "studies.storage.MediaS3Storage", "OPTIONS": options}


def get_media_origins() -> list[str]:
    """Origins browsers fetch presigned media from (for the ``img-src`` of a Content-Security-Policy).

    Empty on local disk, where images come from the site itself.
    """
    from urllib.parse import urlsplit

    storage = get_media_storage()
    if "OPTIONS" not in storage:
        return []
    options = storage["OPTIONS"]
    bucket, endpoint, style = options["bucket_name"], options["endpoint_url"], options["addressing_style"]
    if endpoint:
        parts = urlsplit(endpoint)
        host = f"{bucket}.{parts.netloc}" if style == "virtual" else parts.netloc
        return [f"{parts.scheme}://{host}"]
    region = options["region_name"]
    origins = [f"https://{bucket}.s3.amazonaws.com", "https://s3.amazonaws.com"]
    if region:
        origins += [f"https://{bucket}.s3.{region}.amazonaws.com", f"https://s3.{region}.amazonaws.com"]
    return origins
