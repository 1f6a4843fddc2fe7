"""Workers on other hosts: media on S3-compatible object storage, no shared disk.

Two worker processes, each in its own empty working directory with its own
(unused) ``MEDIA_ROOT``, and the web side in this test process, share only
the database, the broker and the loopback S3 endpoint (moto's server; a
real S3 service in production). A researcher uploads through the admin, the
grid is generated and scored on both workers, one is killed with SIGKILL
mid-run, participants see their images through presigned URLs, the report
is built on a worker and downloaded. Runs on the embedded default and on
PostgreSQL + Redis.
"""

from __future__ import annotations

import io
import logging
import random
import re
import signal
import time
import zipfile
from collections import Counter
from pathlib import Path

import httpx
from django.conf import settings as conf
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from studies.actions.participants import do_add_default_background_questions
from studies.models import (
    CultureTag,
    MetricValue,
    ParticipantGroup,
    Question,
    Study,
    StudyReport,
)
from studies.permissions import make_researcher
from tests.conftest import require
from tests.participants.helpers import answer, consent, start, submit_background
from tests.pipeline.helpers import counts, wait_for
from tests.workers import celery_worker, kill_worker, purge_queues

METHODS = [("Reinhard", "reinhard"), ("Histogram", "histogram")]
METRICS = ["psnr", "ssim"]
_DONE = re.compile(r"generate_candidates_task\[[^\]]+\] succeeded in [^:]+: .*'done': \[([0-9, ]*)\]")
_RECEIVED = re.compile(r"generate_candidates_task\[[^\]]+\] received")
_STIMULUS_READ = re.compile(r"stimulus cache: read (\S+) from storage")
# The participant's own image URLs (token-addressed or signed references).
_IMAGE_URL = re.compile(r"/p/[\w-]+/image/\d+/\w+|/i/[\w:.-]+/\d+/\w+")


def _tiny_png(seed: int, size=(32, 32)) -> bytes:
    """A small textured image (colour transfer needs some variance)."""
    rng = random.Random(seed)
    img = Image.new("RGB", size)
    base = [rng.randrange(40, 220) for _ in range(3)]
    img.putdata([tuple(min(255, max(0, b + rng.randrange(-40, 40) + (x + y) % 17)) for b in base)
                 for y in range(size[1]) for x in range(size[0])])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _done_ids(log: Path) -> list[int]:
    ids = []
    for match in _DONE.finditer(log.read_text(errors="replace")):
        ids += [int(x) for x in match.group(1).replace(" ", "").split(",") if x]
    return ids


def _worker(name: str, tmp_path: Path, *, beat: bool = False):
    """A worker in its own empty directory: own data dir, own media root, own temp dir."""
    home = tmp_path / name
    for sub in ("", "media", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env = dict(STYLESTUDY_DATA_DIR=str(home), MEDIA_ROOT=str(home / "media"), TMPDIR=str(home / "tmp"),
               STYLESTUDY_DEVICE="cpu", STYLESTUDY_METRICS=",".join(METRICS), STYLESTUDY_HEARTBEAT_SECONDS="1",
               # The window after a claim in which the kill lands (named STYLESTUDY_FAULT_DELAY_SECONDS
               # once the job lifecycle is one module; both are set so the test holds across that change).
               STYLESTUDY_GENERATION_DELAY_SECONDS="2", STYLESTUDY_FAULT_DELAY_SECONDS="2")
    if conf.CELERY_BROKER_URL.startswith("filesystem://"):
        # The embedded broker's spool is the one "service" folder the processes share, like Redis.
        env["STYLESTUDY_BROKER_DIR"] = str(Path(conf.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent)
    if beat:
        env.update(STYLESTUDY_STALE_AFTER_SECONDS="4", STYLESTUDY_SWEEP_SECONDS="2")
    log = tmp_path / "logs" / f"{name}.log"
    log.parent.mkdir(exist_ok=True)
    return home, log, celery_worker(log_path=log, beat=beat, cwd=home, **env)


def _setup_study_through_the_admin(web: Client) -> Study:
    owner = make_researcher(get_user_model().objects.create_user("lab", password="pw-lab"))
    assert web.login(username="lab", password="pw-lab")
    # 2 contents × 2 styles × 2 methods × 2 seeds: four generation tasks (one per method and seed).
    study = Study.objects.create(title="Across hosts", slug="hosts", languages=["en"], image_size=32, seeds=2,
                                 trials_per_participant=4, texts={"en": {"consent": "C.", "instructions": "I.",
                                                                          "thanks": "T."}})
    study.owners.add(owner)
    culture = CultureTag.objects.create(slug="chinese-ink", name="Chinese ink")
    upload = reverse("admin:studies_study_upload", args=[study.pk])
    for kind, seeds, extra in (("content", (1, 2), {}), ("style", (11, 12), {"culture": culture.pk})):
        files = [SimpleUploadedFile(f"{kind}{s}.png", _tiny_png(s)) for s in seeds]
        resp = web.post(upload, {"kind": kind, "files": files, **extra}, follow=True)
        assert "2 imported" in " ".join(str(m) for m in resp.context["messages"]), kind
    for label, mode in METHODS:
        resp = web.post(reverse("admin:studies_methodconfig_add"),
                        {"study": study.pk, "label": label, "method": "color", "p__color__mode": mode})
        assert resp.status_code == 302, resp.context["adminform"].form.errors
    Question.objects.create(study=study, kind="likert", dimension="style_fidelity", texts={"en": "How well?"},
                            scale_points=5, show_style=True)
    Question.objects.create(study=study, kind="2afc", dimension="overall", texts={"en": "Which?"})
    do_add_default_background_questions(study)
    ParticipantGroup.objects.create(study=study, slug="chinese", name="Chinese", culture=culture,
                                    eligibility={"cultural_background": ["chinese"]}, quota=10)
    return study


def test_two_workers_without_shared_disk_on_object_storage(transactional_db, s3_media, settings, tmp_path,
                                                           caplog, expect_services):
    caplog.set_level(logging.WARNING, logger="httpx")
    try:
        from stylecore.methods import available_methods
    except ImportError as exc:  # pragma: no cover
        require(False, f"stylecore methods not installed: {exc}")
    require("color" in available_methods(), "stylecore has no colour transfer")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    web = Client()
    study = _setup_study_through_the_admin(web)
    purge_queues()

    home_a, log_a, worker_a = _worker("worker-a", tmp_path)
    home_b, log_b, worker_b = _worker("worker-b", tmp_path, beat=True)
    with worker_a as proc_a, worker_b as proc_b:
        resp = web.post(reverse("admin:studies_study_changelist"),
                        {"action": "generate_candidates", "_selected_action": [study.pk]}, follow=True)
        assert resp.status_code == 200 and study.candidates.count() == 16

        def a_is_mid_run() -> bool:
            # A finished a task and has received another: it is inside the
            # fault-injection window after its claim (the claim takes well under 0.5 s).
            text = log_a.read_text(errors="replace")
            return bool(_done_ids(log_a)) and len(_RECEIVED.findall(text)) > len(_DONE.findall(text))
        wait_for(a_is_mid_run, 300, what="worker A done with one task and running another", log=log_a, poll=0.1)
        time.sleep(0.5)
        assert a_is_mid_run(), "worker A finished within the window; the kill would not land mid-run"
        kill_worker(proc_a, signal.SIGKILL)
        assert proc_a.poll() is not None, "worker A is dead"
        at_kill = counts(study)
        assert at_kill["done"] < 16, at_kill

        wait_for(lambda: counts(study)["done"] == 16, 300, what="all 16 candidates done", log=log_b)
        wait_for(lambda: MetricValue.objects.filter(candidate__study=study).count() == 16 * len(METRICS), 300,
                 what="metric values", log=log_b)
        psnr = MetricValue.objects.filter(candidate__study=study, name="psnr")
        assert psnr.count() == 16 and not psnr.filter(value__isnull=True).exists(), set(
            psnr.values_list("unavailable_reason", flat=True))

        # Participants, on the web side; every image through a presigned URL.
        # Through the go-live checklist, confirming its warnings as a researcher would.
        resp = web.post(reverse("admin:studies_study_checklist", args=[study.pk]),
                        {"confirm_warnings": "on"}, follow=True)
        study.refresh_from_db()
        assert study.status == Study.Status.LIVE, [str(m) for m in resp.context["messages"]]
        shown = 0
        for _ in range(3):
            browser = Client()
            participant = consent(browser, study)
            submit_background(browser, participant)
            start(browser, participant)
            while (trial := participant.trials.filter(response__isnull=True).order_by("position").first()):
                page = browser.get(reverse("studies:participant_session", args=[participant.token]))
                assert page.status_code == 200
                for url in set(_IMAGE_URL.findall(page.content.decode())):
                    redirect = browser.get(url)
                    if redirect.status_code == 200:
                        continue  # a scrambled attention-check foil, made by the web process
                    assert redirect.status_code == 302, url
                    assert redirect["Location"].startswith(s3_media.endpoint), redirect["Location"]
                    image = httpx.get(redirect["Location"])
                    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
                    Image.open(io.BytesIO(image.content)).verify()
                    shown += 1
                assert answer(browser, participant, trial).status_code == 200
            assert browser.get(reverse("studies:participant_session", args=[participant.token])).status_code == 200
            participant.refresh_from_db()
            assert participant.status == "completed", participant.status
        assert shown >= 3 * 4

        # The report: built on worker B, downloaded by the researcher through a presigned URL.
        web.post(reverse("admin:studies_study_changelist"),
                 {"action": "build_report", "_selected_action": [study.pk]}, follow=True)
        report = StudyReport.objects.get(study=study)
        wait_for(lambda: StudyReport.objects.get(pk=report.pk).status in ("done", "failed"), 300,
                 what="the report", log=log_b)
        report.refresh_from_db()
        assert report.status == "done", report.error
        assert proc_b.poll() is None
    redirect = web.get(report.archive.url)  # the link the admin shows
    assert report.archive.url == reverse("studies:media", args=[report.archive.name])
    assert redirect.status_code == 302
    archive = zipfile.ZipFile(io.BytesIO(httpx.get(redirect["Location"]).content))
    assert "report.html" in archive.namelist() and archive.testzip() is None

    # Every candidate done exactly once: by worker A or B, never by both; the
    # one A held when killed was re-queued by B's sweep and generated by B.
    rows = list(study.candidates.all())
    assert {r.status for r in rows} == {"done"} and len(rows) == 16
    done_a, done_b = _done_ids(log_a), _done_ids(log_b)
    assert done_a and done_b, "both workers generated candidates"
    assert sorted(done_a + done_b) == sorted(r.pk for r in rows), (done_a, done_b)
    # The task A held when killed: its four candidates (one method and seed), claimed twice.
    victims = [r for r in rows if r.attempts == 2]
    assert len(victims) == 4 and len({(r.method_config_id, r.seed) for r in victims}) == 1, [
        (r.pk, r.attempts) for r in rows]
    assert all(r.pk in done_b for r in victims)
    assert all(r.attempts == 1 for r in rows if r not in victims)

    # Every file is readable from the bucket; nothing else is there but what
    # the dead worker may have been storing when killed.
    keys = set(s3_media.keys())
    names = [c.image.name for c in rows] + [report.archive.name, report.html.name]
    for image in [*study.content_images.all(), *study.style_images.all()]:
        names += [image.image.name, image.thumbnail.name]
    # Scrambled attention-check foils, rendered once by the web side and kept in the bucket too.
    names += [k.removeprefix("media/") for k in keys if k.startswith(f"media/studies/{study.pk}/attention/")]
    for name in names:
        assert f"media/{name}" in keys, name
        assert s3_media.get(name), name
    assert len(keys - {f"media/{n}" for n in names}) <= 1, sorted(keys)

    # Stimuli were read from storage at most once per worker process.
    for log in (log_a, log_b):
        reads = Counter(_STIMULUS_READ.findall(log.read_text(errors="replace")))
        assert reads and max(reads.values()) == 1, reads

    # No file written to a local disk: not by the web side, not by either worker.
    assert _files(s3_media.local_root) == []
    for home in (home_a, home_b):
        assert _files(home) == [], _files(home)
