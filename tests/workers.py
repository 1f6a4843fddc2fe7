"""Start real Celery worker processes against the test database and broker.

The worker is a separate OS process (prefork pool), never eager mode: it
imports Django with the same settings as the tests, except that its
``DATABASE_URL`` names the test database the test process created.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """A ``DATABASE_URL`` for the database the test process is using now."""
    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    if connection.vendor == "postgresql":
        user = cfg.get("USER") or "postgres"
        password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
        host = cfg.get("HOST") or "127.0.0.1"
        port = cfg.get("PORT") or 5432
        return f"postgres://{user}{password}@{host}:{port}/{cfg['NAME']}"
    raise RuntimeError(f"unsupported test database vendor {connection.vendor}")


def worker_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=test_database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_RESULT_BACKEND=settings.CELERY_RESULT_BACKEND,
        STYLESTUDY_DATA_DIR=str(settings.DATA_DIR),
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        PYTHONPATH=str(REPO),
    )
    env.update(overrides)
    return env


def purge_queues() -> None:
    """Drop messages left over from earlier runs, so a test sees only its own."""
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in ("gpu", "cpu"):
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - a queue that was never declared has nothing to purge
                pass


@contextmanager
def celery_worker(
    *, queues: str = "gpu,cpu", concurrency: int = 1, log_path: Path | None = None, beat: bool = False,
    cwd: Path | None = None, **env: str
) -> Iterator[subprocess.Popen]:
    """Run ``celery worker`` in its own process group; kill it on exit.

    With ``beat`` the worker also runs the periodic scheduler (the stale
    sweep), its schedule file beside ``log_path`` or in the data folder.
    ``cwd`` is its working directory (default: the repository).
    """
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    cmd = [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", queues, "-c", str(concurrency), "--pool", "prefork",
        "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h", "--without-gossip",
        "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    if beat:
        folder = log_path.parent if log_path else Path(settings.DATA_DIR)
        cmd += ["--beat", "-s", str(folder / f"celerybeat-{os.getpid()}-{time.monotonic_ns()}")]
    proc = subprocess.Popen(
        cmd, cwd=cwd or REPO, env=worker_env(**env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        kill_worker(proc, signal.SIGTERM)
        if log_path:
            log.close()


def kill_worker(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 20) -> None:
    """Signal the worker's whole process group (main process and pool children)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
