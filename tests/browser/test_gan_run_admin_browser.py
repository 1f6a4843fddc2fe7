"""The GAN training-run admin page in a real browser: sample grid, loss curves, "use as method"."""

from __future__ import annotations

import pytest
import torch
from django.contrib.auth import get_user_model
from django.urls import reverse

from studies.models import CultureTag, GanTrainingRun, MethodConfig
from studies.permissions import make_researcher
from studies.workers.train import run_training
from tests.pipeline.conftest import build_study
from tests.pipeline.test_training import TINY


@pytest.mark.django_db(transaction=True)
def test_training_run_page_shows_samples_and_curves_and_makes_a_method(browser, live_server, artifacts, settings,
                                                                       tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    owner = make_researcher(get_user_model().objects.create_user("carol", password="pw-carol"))
    ink = CultureTag.objects.get_or_create(slug="chinese-ink", defaults={"name": "Chinese ink"})[0]
    study = build_study(owner, ink, slug="gan-browser", methods=())
    run = GanTrainingRun.objects.create(study=study, label="ink-gan", cultures=["chinese-ink"], config=TINY)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert run_training(run.pk, device="cpu") == GanTrainingRun.Status.DONE
    finally:
        torch.set_num_threads(threads)

    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "carol")
    page.fill("#id_password", "pw-carol")
    page.click("input[type=submit]")
    page.goto(live_server.url + reverse("admin:studies_gantrainingrun_change", args=[run.pk]))
    grid = page.locator(".field-sample_preview img")
    assert grid.count() == 1
    assert grid.evaluate("img => img.complete && img.naturalWidth") > 0, "the sample grid image loads"
    curves = page.locator("svg.loss-curves polyline")
    assert curves.count() == 8 and page.locator("svg.loss-curves").is_visible()
    # TINY sets min_images=1, so two images per collection are enough for this run.
    assert page.locator(".field-data_warnings .readonly").inner_text().strip() == "enough images"
    page.locator(".field-sample_preview").screenshot(path=str(artifacts / "gan_run_samples.png"))
    page.locator(".field-loss_curves").screenshot(path=str(artifacts / "gan_run_loss_curves.png"))

    page.goto(live_server.url + reverse("admin:studies_gantrainingrun_changelist"))
    page.check(f"input[name=_selected_action][value='{run.pk}']")
    page.select_option("select[name=action]", "use_as_method")
    page.click("button[name=index]")
    assert "is now the method(s)" in page.locator(".messagelist").inner_text()
    page.screenshot(path=str(artifacts / "gan_run_used_as_method.png"))
    assert MethodConfig.objects.filter(training_run=run, method="cyclegan").count() == 1
