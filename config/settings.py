"""Django settings for stylestudy, read from the environment.

Defaults suit one machine with no services (SQLite, an embedded file-system
Celery broker, media on local disk). Production sets ``DEBUG=0`` and at least
``DJANGO_SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and
``CELERY_BROKER_URL``; unsafe combinations refuse to start. README.md lists
every variable.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from .env import (
    env_bool,
    env_int,
    env_list,
    env_path,
    env_str,
    get_allowed_hosts,
    get_media_origins,
    get_media_storage,
    get_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("STYLESTUDY_DATA_DIR", BASE_DIR / "data")
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = get_secret_key(DEBUG)
ALLOWED_HOSTS = get_allowed_hosts(DEBUG)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "studies",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A database outage answers 503 "please retry" (with Retry-After), not 500.
    "studies.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "studies.security.ContentSecurityPolicyMiddleware",
    # Participants meet the translated not-found page, also with DEBUG on (the demo).
    "studies.middleware.ParticipantNotFoundMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------
# SQLite by default; any DATABASE_URL (postgres://…) otherwise.
# One persistent connection per thread (gunicorn's gthread threads live as long
# as the worker), checked with a SELECT 1 when a request first uses it, so one
# broken by a database restart is replaced instead of failing the request. On
# the load test this cost 11-22 % less CPU per answered trial than the pool and
# recovered faster from killed connections (bench/README.md, *Load test*).
_SQLITE_PATH = DATA_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{_SQLITE_PATH}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DATABASE_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", False):
    # psycopg 3's pool, one per web process and shared by its threads: a
    # request borrows a connection only while it runs, so a few connections
    # serve many threads (more threads than the database should have
    # connections) and no request pays for a connect.
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    # With a pool this makes psycopg check a connection before lending it: one
    # that died with a database restart is replaced, not handed to a request.
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN_SIZE", 2),
        "max_size": env_int("DATABASE_POOL_MAX_SIZE", 8),
        # A request waits this long for a connection; during a database outage
        # it then gets the 503 "please retry" page rather than hanging.
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 3),
        # Stop retrying a failed connect after this long: the next request that
        # needs a connection starts a fresh attempt at once, so a restarted
        # database is used as soon as it is back, not after a long backoff.
        "reconnect_timeout": env_int("DATABASE_POOL_RECONNECT_TIMEOUT", 2),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web server read while a worker writes; IMMEDIATE avoids
        # "database is locked" upgrades from read to write transactions.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so worker processes started by tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The statements of every participant request are prepared on PostgreSQL (planned once per
# connection; studies/participant_sql.py). Off behind a pooler that cannot keep prepared
# statements (PgBouncer before 1.21 in transaction mode). Django turns psycopg's preparing off;
# its own cursors bind on the client and never prepare, so the threshold (runs of a statement
# before psycopg prepares it) applies to those statements only.
STYLESTUDY_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5

# --- Cache ----------------------------------------------------------------
_CACHE_URL = env_str("CACHE_URL")
CACHES = {
    "default": (
        {
            # Django's, with one client per connection pool instead of one per operation.
            "BACKEND": "studies.cache.RedisCache",
            "LOCATION": _CACHE_URL,
            # Short timeouts: the cache only rate-limits, and an unreachable
            # Redis must not hold participant requests (callers fail open).
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
        if _CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Auth, i18n, time -------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "studies" / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Files ------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env_path("STATIC_ROOT", DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = env_path("MEDIA_ROOT", DATA_DIR / "media")
# Local disk unless MEDIA_S3_BUCKET names an S3-compatible bucket (config/env.py).
STORAGES = {
    # Local media is written all-or-nothing (no truncated file when the disk fills up).
    "default": get_media_storage(),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Where browsers are redirected for images when media is on object storage
# (a Content-Security-Policy's img-src must allow them).
MEDIA_ORIGINS = get_media_origins()
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("DATA_UPLOAD_MAX_NUMBER_FILES", 500)
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

_SHARED = BASE_DIR.parent / "shared"
STYLECORE_WEIGHTS_DIR = env_path("STYLECORE_WEIGHTS_DIR", _SHARED / "weights")
STYLESTUDY_SAMPLES_DIR = env_path("STYLESTUDY_SAMPLES_DIR", _SHARED / "samples")

# --- Celery -----------------------------------------------------------------
# Embedded default: kombu's file-system transport needs no server. Its
# unacknowledged messages live in worker memory, so crash recovery on it relies
# on the periodic sweep of stale candidates; Redis/RabbitMQ redeliver as well.
_BROKER_DIR = env_path("STYLESTUDY_BROKER_DIR", DATA_DIR / "broker")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "control"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "control_folder": str(_BROKER_DIR / "control"),
        "store_processed": False,
    }
    (DATA_DIR / "celery-results").mkdir(exist_ok=True)
    _DEFAULT_RESULT_BACKEND = f"file://{DATA_DIR / 'celery-results'}"
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Longer than the longest task, so Redis does not redeliver a running task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
    _DEFAULT_RESULT_BACKEND = CELERY_BROKER_URL
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
    _DEFAULT_RESULT_BACKEND = "rpc://"
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", _DEFAULT_RESULT_BACKEND)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# gpu: generation, scoring, GAN training; cpu (default): analysis, reports,
# housekeeping. Scaling out means starting more workers with -Q gpu or -Q cpu.
CELERY_TASK_ROUTES = {
    "studies.tasks.generate_*": {"queue": "gpu"},
    "studies.tasks.score_*": {"queue": "gpu"},
    "studies.tasks.train_*": {"queue": "gpu"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 30 * 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 35 * 60)
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Background jobs (candidates, training runs, reports): a worker refreshes the
# heartbeat of what it runs every STYLESTUDY_HEARTBEAT_SECONDS; the sweep
# re-queues a running job whose heartbeat is older than
# STYLESTUDY_STALE_AFTER_SECONDS (its worker died).
STYLESTUDY_HEARTBEAT_SECONDS = env_int("STYLESTUDY_HEARTBEAT_SECONDS", 10)
STYLESTUDY_STALE_AFTER_SECONDS = env_int("STYLESTUDY_STALE_AFTER_SECONDS", 120)
STYLESTUDY_SWEEP_SECONDS = env_int("STYLESTUDY_SWEEP_SECONDS", 60)
# Queued jobs older than this get their task sent again (its message may
# have died with a worker, or its retries ran out); duplicates are no-ops.
STYLESTUDY_REQUEUE_QUEUED_AFTER_SECONDS = env_int("STYLESTUDY_REQUEUE_QUEUED_AFTER_SECONDS", 6 * 3600)
STYLESTUDY_DEVICE = env_str("STYLESTUDY_DEVICE", "")
# Extra seconds a job waits after its claim: a window for fault-injection tests
# (kill -9 mid-run). Always 0 in production.
STYLESTUDY_FAULT_DELAY_SECONDS = float(env_str("STYLESTUDY_FAULT_DELAY_SECONDS", "0") or 0)
STYLESTUDY_METRICS = env_list("STYLESTUDY_METRICS")
# Style and content images a worker process keeps in memory (by content hash),
# so a stimulus shared by many candidates is read from storage once.
STYLESTUDY_STIMULUS_CACHE_MB = env_int("STYLESTUDY_STIMULUS_CACHE_MB", 256)
STYLESTUDY_MAX_UPLOAD_PIXELS = env_int("STYLESTUDY_MAX_UPLOAD_PIXELS", 40_000_000)
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "sweep-stale-jobs": {
        "task": "studies.tasks.sweep_stale_jobs_task",
        "schedule": float(STYLESTUDY_SWEEP_SECONDS),
        "options": {"queue": "cpu", "expires": float(STYLESTUDY_SWEEP_SECONDS)},
    },
    "expire-stale-participants": {
        "task": "studies.tasks.expire_stale_participants_task",
        "schedule": 300.0,
        "options": {"queue": "cpu", "expires": 300.0},
    },
}

# --- Security -----------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # participant pages read it for fetch() submissions
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preload-list submission binds the whole domain for months: an
        # operator's decision (SECURE_HSTS_PRELOAD=1), not a default.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    if env_bool("USE_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy of every page (participant and admin): scripts and styles only from
# this site's static files, never inline. The bucket's origin is allowed for images when media
# is on object storage (MEDIA_ORIGINS); STYLESTUDY_CSP_MEDIA_ORIGINS adds others, e.g. a CDN.
STYLESTUDY_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    # Presigned image URLs point at the bucket when media is on object storage.
    "img-src": ["'self'", "data:", *MEDIA_ORIGINS, *env_list("STYLESTUDY_CSP_MEDIA_ORIGINS")],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# Admin sign-in: after this many failed attempts for one user name (or from one address,
# five times as many), further attempts are refused for the lockout period.
STYLESTUDY_LOGIN_FAILURES_ALLOWED = env_int("STYLESTUDY_LOGIN_FAILURES_ALLOWED", 5)
STYLESTUDY_LOGIN_LOCKOUT_SECONDS = env_int("STYLESTUDY_LOGIN_LOCKOUT_SECONDS", 900)

# Key for pseudonymising recruiter ids (keyed hash); falls back to SECRET_KEY.
STYLESTUDY_PSEUDONYM_KEY = env_str("STYLESTUDY_PSEUDONYM_KEY") or SECRET_KEY

# --- Participants -----------------------------------------------------------
# POSTs per participant session per minute, and new sessions per client address per minute.
STYLESTUDY_RATE_LIMIT_PER_MINUTE = env_int("STYLESTUDY_RATE_LIMIT_PER_MINUTE", 60)
STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE = env_int("STYLESTUDY_ENTRY_RATE_LIMIT_PER_MINUTE", 30)
# Reverse proxies (addresses or networks) whose X-Forwarded-For is believed for the client address.
STYLESTUDY_TRUSTED_PROXIES = env_list("STYLESTUDY_TRUSTED_PROXIES")
# A group place taken at background submission is given back after this many
# minutes without a single answer (abandoned tab, bot); answering sessions keep
# theirs for the study's session timeout.
STYLESTUDY_ABANDONED_HOLD_MINUTES = env_int("STYLESTUDY_ABANDONED_HOLD_MINUTES", 10)
# Images reach participants by signed URLs valid for half to all of this many
# seconds; behind nginx, this internal location (mapped to MEDIA_ROOT) sends them.
STYLESTUDY_IMAGE_URL_MAX_AGE = env_int("STYLESTUDY_IMAGE_URL_MAX_AGE", 2 * 3600)
STYLESTUDY_ACCEL_REDIRECT_PREFIX = env_str("STYLESTUDY_ACCEL_REDIRECT_PREFIX")
# Shared with nginx's secure_link: trial pages then link stimuli by URLs nginx checks and sends
# itself (README, Production); unset, every image request goes through Django.
STYLESTUDY_IMAGE_LINK_SECRET = env_str("STYLESTUDY_IMAGE_LINK_SECRET")
# Attention checks mixed into each participant's trials (alternating scrambled-image and instructed).
STYLESTUDY_ATTENTION_CHECKS = env_int("STYLESTUDY_ATTENTION_CHECKS", 2)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Request log lines carry URLs; participant tokens and recruiter ids are redacted from them.
    "filters": {"participant_privacy": {"()": "studies.privacy.RedactParticipantData"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["participant_privacy"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.request": {"filters": ["participant_privacy"]},
        "django.server": {"filters": ["participant_privacy"]},
        "django.security": {"filters": ["participant_privacy"]},
        "django.security.csrf": {"filters": ["participant_privacy"]},
    },
}
