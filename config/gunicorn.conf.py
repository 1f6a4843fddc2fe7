"""gunicorn settings for stylestudy: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

Every value can be overridden from the environment (``GUNICORN_*``) or the
command line. Threads let one worker keep idle keep-alive connections open
and overlap database round trips; Django opens one connection per thread.
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# One process per core: on the 2-core load test (200 participants, 3 s per trial) 2 x 4 answered with
# p99 30-65 ms and 8.5-9.8 ms of server CPU per trial against 44-106 ms and 9.2-10.0 ms for 5 x 4
# (the classic 2 x cores + 1); 5 x 4 only wins at saturation (bench/README.md, *Load test*).
workers = _int("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count()))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
threads = _int("GUNICORN_THREADS", 4)
# Pending connections beyond the busy workers wait here rather than being refused.
backlog = _int("GUNICORN_BACKLOG", 2048)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Participant requests take milliseconds; a worker stuck this long is restarted.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 20)
# Recycling bounds slow memory growth; jitter avoids every worker restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 10000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 1000)
# Paths of participant pages carry their secret tokens: no access log unless
# asked for (and then without the query string, which may carry recruiter ids;
# Django's own request logging redacts tokens, this log does not).
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "warning")
# Headers from the proxy in front are trusted only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "stylestudy"
# The app (Django, and torch through the image checks) loads once in the master
# and workers fork from it: seconds instead of a full import per worker, and
# shared memory pages. No database connection is opened before the fork.
preload_app = os.environ.get("GUNICORN_PRELOAD", "1") != "0"


def shared_cache_warning(worker_count: int, cache_url: str) -> str:
    """Why rate limits would not hold across this server's processes ('' when they do)."""
    if worker_count > 1 and not cache_url:
        return (f"{worker_count} workers without CACHE_URL: each process counts rate limits on its own, "
                "so the limits multiply; set CACHE_URL=redis://… to share them")
    return ""


def when_ready(server) -> None:
    message = shared_cache_warning(server.cfg.workers, os.environ.get("CACHE_URL", ""))
    if message:
        server.log.warning(message)
