"""Service faults: PostgreSQL crash-restarts while participants submit; Redis stops mid-generation.

Both tests bring their own disposable PostgreSQL / Redis server (a fresh
cluster in a temporary folder, a free loopback port) and stop it at the end,
so the shared services are never restarted. They need the server binaries
(``initdb``/``pg_ctl``, ``redis-server``): skipped locally when absent, a
failure under CI. They do not depend on the test database settings, so the
services pass of ``make test`` (``STYLESTUDY_EXPECT_SERVICES=1``) skips them
rather than running them a second time.

The third fault of the set, ``kill -9`` of a worker mid-generation, is
``tests/integration/test_faults.py``.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, require

pytestmark = pytest.mark.skipif(
    os.environ.get("STYLESTUDY_EXPECT_SERVICES") == "1",
    reason="brings its own PostgreSQL/Redis: runs once, in the first pass",
)


def _load_bench():
    spec = importlib.util.spec_from_file_location("stylestudy_load_test", REPO / "bench" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


load = _load_bench()


def _pg_binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the ``postgres`` user when root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
        require(bool(self.initdb and self.pg_ctl), "PostgreSQL server binaries (initdb, pg_ctl) not installed")
        if os.geteuid() == 0:
            require(shutil.which("runuser") is not None, "runuser is needed to run PostgreSQL as root")
        self.folder = Path(tempfile.mkdtemp(prefix="stylestudy-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.port = load.free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/faults"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = _as_postgres([self.pg_ctl, "-D", str(self.data), "-l", str(self.folder / "server.log"), *args])
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        subprocess.run(_as_postgres([self.initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres"]),
                       check=True, capture_output=True, timeout=180)
        self.start()
        import psycopg

        with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE faults")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._ctl("-o", options, "-w", "-t", "120", "start")

    def crash(self) -> None:
        """Stop without a clean shutdown (as a crash or power loss would): recovery replays the log."""
        self._ctl("-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivateRedis:
    """A throw-away Redis with an append-only file (as a production broker is run)."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        require(self.binary is not None, "redis-server not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="stylestudy-redis-"))
        self.port = load.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
               "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "yes"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        import redis

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.init()
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


# --- PostgreSQL restart -------------------------------------------------------------------


def test_postgres_crash_restart_while_participants_submit(private_postgres, tmp_path):
    """Clients see 503 + Retry-After while the database is down, retry, and lose nothing acknowledged."""
    data = tmp_path / "site"
    data.mkdir()
    env = load.server_env(private_postgres.url, data)
    subprocess.run([sys.executable, str(REPO / "bench" / "load_test.py"), "seed", "--database-url",
                    private_postgres.url, "--data-dir", str(data)], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    port = load.free_port()
    server = load.start_gunicorn({**env, "GUNICORN_THREADS": "2"}, port, tmp_path / "gunicorn.log", workers=2)
    base = f"http://127.0.0.1:{port}"
    stats = load.Stats()
    outcome: dict = {}

    def clients() -> None:
        try:
            # One participant per client, each to the end: a fixed duration made the test race
            # the outage (on a busy machine nobody finished in time).
            asyncio.run(load.run_clients(base, "load", participants=4, max_participants=4, duration=120,
                                         stats=stats))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=clients)
    try:
        thread.start()
        deadline = time.monotonic() + 120
        while len(stats.acked) < 5 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.2)
        assert len(stats.acked) >= 5, f"no load before the fault: {load.summarise(stats)}"
        before = len(stats.acked)
        token = stats.acked[0]["token"]

        private_postgres.crash()
        # What a participant sees while the database is down: a retry page, not a crash.
        page = httpx.get(f"{base}/p/{token}/", timeout=30)
        assert page.status_code == 503, page.text[:500]
        assert int(page.headers["Retry-After"]) > 0
        assert "Please try again in a moment" in page.text
        posted = httpx.post(f"{base}/p/{token}/trial/1", data={"value": "1"}, timeout=30,
                            headers={"Accept": "application/json"})
        # No CSRF cookie: refused before any database access (403), or 503 - never 500.
        assert posted.status_code in (403, 503), posted.text[:300]
        as_json = httpx.get(f"{base}/p/{token}/", headers={"Accept": "application/json"}, timeout=30)
        assert as_json.status_code == 503 and as_json.json()["retry"] is True
        time.sleep(3)  # the simulated participants meet the outage too
        private_postgres.start()

        thread.join(timeout=180)
        assert not thread.is_alive(), "clients did not finish"
    finally:
        load.stop_process(server)
        thread.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    summary = load.summarise(stats)
    assert summary["server_errors"] == 0 and 500 not in stats.statuses, summary
    assert stats.retry_pages >= 1 and stats.retry_pages_with_message == stats.retry_pages, summary
    assert len(stats.acked) > before, f"no answers acknowledged after the restart: {summary}"
    assert stats.participants_finished >= 1 and stats.participants_left == 0, summary

    acked = tmp_path / "acked.json"
    acked.write_text(__import__("json").dumps(stats.acked))
    audit = load._subprocess_json(["verify", "--database-url", private_postgres.url, "--data-dir", str(data),
                                   "--acked", str(acked)], env)
    print("load:", summary, "\naudit:", audit)
    assert audit["acknowledged"] == len(stats.acked)
    assert audit["lost"] == 0 and audit["duplicated"] == 0 and audit["mismatched"] == 0, audit


# --- Redis stop -------------------------------------------------------------------------------


FAULT_METHODS = [("Reinhard", "color", {"mode": "reinhard"}), ("Histogram", "color", {"mode": "histogram"})]


def _use_broker(url: str, transport_options: dict) -> dict:
    """Point this process's Celery app at ``url``; returns what to restore."""
    from config.celery import app

    old = {"broker_url": app.conf.broker_url, "result_backend": app.conf.result_backend,
           "broker_transport_options": app.conf.broker_transport_options}
    app.conf.broker_url = url
    app.conf.result_backend = url
    app.conf.broker_transport_options = transport_options
    _reset_celery_pools(app)
    return old


def _reset_celery_pools(app) -> None:
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    # kombu keeps producer pools in a process-wide registry keyed by connection;
    # a stale entry would hand later tests a pool whose connections are closed.
    pools.reset()
    app._local.__dict__.pop("backend", None)


def test_redis_stop_keeps_participants_served_and_generation_resumes(
    transactional_db, private_redis, settings, tmp_path, samples_dir, monkeypatch
):
    from config.celery import app
    from studies.actions import do_queue_generation
    from studies.lifecycle import candidates as generation
    from studies.models import Candidate, Response
    from tests.participants.factories import make_study
    from tests.participants.helpers import (
        answer,
        consent,
        session_url,
        start,
        submit_background,
    )
    from tests.pipeline.helpers import counts, sample_grid_study, wait_for
    from tests.workers import celery_worker

    try:
        from stylecore.methods import available_methods
    except ImportError as exc:  # pragma: no cover
        require(False, f"stylecore methods not installed: {exc}")
    require("color" in available_methods(), "stylecore has no colour transfer")

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CACHES = {"default": {"BACKEND": "studies.cache.RedisCache",
                                   "LOCATION": private_redis.url,
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 1000
    import redis as redis_client
    from django.test import Client

    kv = redis_client.Redis.from_url(private_redis.url)
    participants_study = make_study(slug="served")
    grid = sample_grid_study(samples_dir, slug="redis-fault", contents=2, styles=2, methods=FAULT_METHODS)
    monkeypatch.setattr(generation, "GENERATION_BATCH_PAIRS", 1)
    restore = _use_broker(private_redis.url, {"visibility_timeout": 6 * 3600})
    log = tmp_path / "worker.log"
    try:
        with celery_worker(log_path=log, beat=True, CELERY_BROKER_URL=private_redis.url,
                           CELERY_RESULT_BACKEND=private_redis.url, STYLESTUDY_DEVICE="cpu",
                           STYLESTUDY_FAULT_DELAY_SECONDS="1.5", STYLESTUDY_HEARTBEAT_SECONDS="1",
                           STYLESTUDY_STALE_AFTER_SECONDS="4", STYLESTUDY_SWEEP_SECONDS="2",
                           # The task in flight when Redis stops is terminated and its message
                           # stays in Redis' unacknowledged set (back after the visibility
                           # timeout, 6 h); the sweep re-sends queued candidates sooner, after
                           # STYLESTUDY_REQUEUE_QUEUED_AFTER_SECONDS (1 h in production).
                           STYLESTUDY_REQUEUE_QUEUED_AFTER_SECONDS="15", STYLESTUDY_METRICS="psnr"):
            assert do_queue_generation(grid, score=False)["tasks"] == 8
            wait_for(lambda: counts(grid)["done"] >= 1, 240, what="a first candidate done", log=log, poll=0.2)

            web = Client()
            participant = consent(web, participants_study)
            assert submit_background(web, participant).status_code == 302
            assert any(k.startswith(b":1:rl:") for k in kv.keys("*")), "rate limits are counted in Redis"

            private_redis.stop()
            at_stop = counts(grid)
            assert at_stop["done"] < 8, f"generation finished before Redis stopped: {at_stop}"
            # The web side keeps serving: pages, answers (rate limits fail open), images.
            assert start(web, participant).status_code == 302
            for _ in range(3):
                page = web.get(session_url(participant.token))
                assert page.status_code == 200
                trial = participant.trials.filter(response__isnull=True).order_by("position").first()
                assert answer(web, participant, trial).status_code == 200
                assert Response.objects.filter(trial=trial).count() == 1
            time.sleep(3)
            outage = counts(grid)

            private_redis.start()
            print("at stop:", at_stop, "after the outage:", outage)
            wait_for(lambda: counts(grid)["done"] == 8, 300, what="all 8 candidates done after Redis returned",
                     log=log)
    finally:
        _use_broker(restore["broker_url"], restore["broker_transport_options"])
        app.conf.result_backend = restore["result_backend"]

    rows = list(Candidate.objects.filter(study=grid))
    assert len(rows) == 8 and {r.status for r in rows} == {"done"}, counts(grid)
    assert len({(r.content_id, r.style_id, r.method_config_id, r.seed) for r in rows}) == 8
    images = [r.image.name for r in rows]
    assert len(set(images)) == 8 and all(r.image.storage.exists(n) for r, n in zip(rows, images))
    assert outage["done"] < 8, "the outage happened while work remained"
