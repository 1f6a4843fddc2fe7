"""``manage.py demo``: the quickstart on the embedded default.

Creates an admin login and the demo study, starts a Celery worker (with the
periodic scheduler) on the configured broker, waits until it answers, queues
generation and scoring of the demo candidates, makes the study live once they
are generated, prints the URLs and credentials, and serves the site until
interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from studies.demo import create_demo_study, ensure_demo_admin, run_demo_pipeline
from studies.tasks import ping_task


class Command(BaseCommand):
    help = "Set up the demo study, start a Celery worker and serve the site."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000", help="address:port to serve on")
        parser.add_argument("--setup-only", action="store_true", help="create the demo data and exit")
        parser.add_argument("--no-worker", action="store_true", help="do not start a Celery worker")

    def handle(self, *args, addrport: str, setup_only: bool, no_worker: bool, **options):
        if not settings.DEBUG:
            raise CommandError("the demo runs only with DEBUG=1 (it creates a known admin password)")
        samples = settings.STYLESTUDY_SAMPLES_DIR
        if not (samples / "content").is_dir():
            raise CommandError(
                f"no sample images in {samples}; set STYLESTUDY_SAMPLES_DIR to a folder with content/ and style/"
            )
        login = ensure_demo_admin()
        from django.contrib.auth import get_user_model

        study = create_demo_study(samples, get_user_model().objects.get(username=login.username))
        base = f"http://{addrport}"
        self.stdout.write(self.style.SUCCESS(f"Demo study: {study.title} ({study.content_images.count()} contents, "
                                             f"{study.style_images.count()} styles)"))
        self.stdout.write(f"  admin:       {base}/admin/   user {login.username!r} password {login.password!r}")
        self.stdout.write(f"  participant: {base}{participant_link(study)}")
        self.stdout.write(f"  weights:     {settings.STYLECORE_WEIGHTS_DIR}")
        if setup_only:
            return
        worker = None if no_worker else self._start_worker()
        if worker is not None:
            # Generation runs while the site is already up (progress in the admin);
            # the study goes live by itself when its candidates are ready.
            threading.Thread(target=self._pipeline, args=(study, base), name="demo-pipeline", daemon=True).start()
        # A plain SIGTERM (e.g. from a process manager) would skip the clean-up below.
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
        try:
            call_command("runserver", addrport, use_reloader=False)
        finally:
            if worker is not None:
                worker.terminate()  # warm shutdown: the running task finishes or is re-queued
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()  # its candidate is re-queued by the stale sweep next time
                    worker.wait(timeout=30)

    def _pipeline(self, study, base: str) -> None:
        try:
            study = run_demo_pipeline(study, report=self.stdout.write)
            self.stdout.write(f"  progress:    {base}/admin/studies/study/{study.pk}/progress/")
            self.stdout.write(f"  participant: {base}{participant_link(study)}")
        finally:
            connection.close()

    def _start_worker(self) -> subprocess.Popen:
        log_path = settings.DATA_DIR / "worker.log"
        log = open(log_path, "ab")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--beat", "-Q", "gpu,cpu",
             "-c", "1", "--loglevel", "INFO", "-s", str(settings.DATA_DIR / "celerybeat-schedule")],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )
        self.stdout.write(f"  worker:      starting (log: {log_path})")
        started = time.monotonic()
        result = ping_task.delay("demo")
        try:
            answer = result.get(timeout=180)
        except Exception as exc:  # noqa: BLE001 - report any failure to answer, keep serving
            self.stderr.write(f"  worker did not answer within 180 s: {exc}")
        else:
            self.stdout.write(self.style.SUCCESS(
                f"  worker:      answered in {time.monotonic() - started:.1f} s ({answer['database']} database)"))
        return worker


def participant_link(study) -> str:
    """The public entry link of a study (participant flow), or the health check before it exists."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("studies:participant_entry", args=[study.slug])
    except NoReverseMatch:
        return reverse("studies:healthz")
