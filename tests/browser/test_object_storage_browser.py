"""In real headless Chromium, with media on the loopback S3 endpoint: every image arrives from the bucket."""

from __future__ import annotations

import pytest
from django.urls import reverse

from studies.models import Participant
from tests.participants.factories import make_study

from .test_participant_browser import TEXTS, _background, _context, _run_trials

pytestmark = pytest.mark.django_db(transaction=True)


def test_participant_images_come_from_presigned_urls(browser, live_server, artifacts, s3_media):
    """The page links only to the site; the browser follows each image's redirect to the bucket."""
    study = make_study(slug="b-s3", trials=3)
    context = _context(browser, "en", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    from_bucket, from_site = [], []
    page.on("response", lambda r: (from_bucket if r.url.startswith(s3_media.endpoint) else from_site).append(r))
    page.goto(live_server.url + reverse("studies:participant_entry", args=[study.slug]))
    page.get_by_role("button", name=TEXTS["en"]["agree"]).click()
    page.wait_for_selector("form[novalidate]")
    _background(page, keyboard=False)
    page.get_by_role("button", name=TEXTS["en"]["start"]).click()
    page.wait_for_selector("form[data-trial]")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(artifacts / "en-object-storage-trial.png"), full_page=True)
    (artifacts / "object-storage").mkdir(exist_ok=True)
    _run_trials(page, artifacts / "object-storage", "en", keyboard=False)
    participant = Participant.objects.get(study=study)
    assert participant.status == Participant.Status.COMPLETED
    images = [r for r in from_bucket if r.request.resource_type == "image"]
    assert images and all(r.status == 200 for r in images), [(r.url, r.status) for r in from_bucket]
    assert all("X-Amz-Signature=" in r.url for r in images)
    redirects = [r for r in from_site if r.status == 302 and ("/image/" in r.url or "/i/" in r.url)]
    assert len(redirects) >= len({r.url.split("?")[0] for r in images}), "each bucket image came via the site"
    assert not [p for p in s3_media.local_root.rglob("*") if p.is_file()], "nothing on local disk"
    context.close()
