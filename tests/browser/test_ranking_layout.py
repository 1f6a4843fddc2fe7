"""The ranking trial laid out in a browser: at phone and desktop widths, in the three languages,
every row's rank number, image (with its Enlarge button), label and Move buttons fit."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.test import Client

from studies.models import Candidate, Participant, StyleImage
from tests.participants.factories import make_study, png_bytes
from tests.participants.helpers import (
    answer,
    consent,
    session_url,
    start,
    submit_background,
)

pytestmark = pytest.mark.django_db(transaction=True)

VIEWPORTS = {"phone-390": {"width": 390, "height": 844}, "desktop-1280": {"width": 1280, "height": 900}}
ACCEPT = {"en": "en-US,en;q=0.9", "zh-hans": "zh-CN,zh;q=0.9", "ja": "ja-JP,ja;q=0.9"}

#: Every problem with one ranking row, as text (an empty list: the layout is clean).
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const box = el => el.getBoundingClientRect();
  const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5
                        && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
                         && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth) problems.push(`page ${page.scrollWidth}px wide`);
  document.querySelectorAll("[data-ranking] > li").forEach((li, i) => {
    const row = box(li);
    const parts = [...li.querySelectorAll(".rank-pos, img, .zoom-button, .rank-label, button[data-move]")];
    if (!li.querySelector(".zoom-button")) problems.push(`row ${i}: no Enlarge button`);
    parts.forEach(el => {
      const name = el.className || el.tagName;
      if (!inside(box(el), row)) problems.push(`row ${i}: ${name} outside its row`);
    });
    li.querySelectorAll("button").forEach(b => {
      const name = `row ${i}: button "${b.innerText.trim()}"`;
      if (b.scrollWidth > b.clientWidth + 1) problems.push(`${name}: text ${b.scrollWidth}px in ${b.clientWidth}px`);
      // The label on one line: a button no taller than one line of its text plus its padding.
      const style = getComputedStyle(b);
      const lines = (b.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom))
                    / parseFloat(style.lineHeight);
      if (lines > 1.5) problems.push(`${name}: label on ${lines.toFixed(1)} lines`);
    });
    const label = li.querySelector(".rank-label");
    const range = document.createRange();
    range.selectNodeContents(label);
    if (range.getClientRects().length > 1) problems.push(`row ${i}: label "${label.innerText}" broken over lines`);
    const img = li.querySelector("img");
    const zoom = li.querySelector(".zoom-button");
    if (zoom && img) {
      // The Enlarge button belongs to its image: in the image's column, right under it.
      const a = box(img), z = box(zoom);
      if (z.left < a.left - 0.5 || z.right > Math.max(a.right, a.left + z.width) + 0.5 || z.top < a.bottom - 0.5
          || z.top > a.bottom + 16) problems.push(`row ${i}: Enlarge button not under its image`);
    }
    for (let a = 0; a < parts.length; a++) {
      for (let b = a + 1; b < parts.length; b++) {
        if (parts[a].contains(parts[b]) || parts[b].contains(parts[a])) continue;
        if (overlap(box(parts[a]), box(parts[b]))) {
          problems.push(`row ${i}: ${parts[a].className || parts[a].tagName} overlaps ${parts[b].className || parts[b].tagName}`);
        }
      }
    }
  });
  return problems;
}"""


def _ranking_participant(study, lang: str) -> Participant:
    """A participant (in ``lang``) whose current trial is a ranking."""
    client = Client(HTTP_ACCEPT_LANGUAGE=ACCEPT[lang])
    participant = consent(client, study, lang=lang)
    submit_background(client, participant)
    start(client, participant)
    for trial in participant.trials.order_by("position"):
        if trial.question.kind == "ranking" and not trial.attention_kind:
            return participant
        answer(client, participant, trial)
    raise AssertionError("no ranking trial")


@pytest.fixture
def ranking_study():
    study = make_study(slug="b-rank", questions=("ranking",), trials=3)
    # Stimuli and artworks of the demo's size (256 px), so the rows are laid out as in a real study.
    for model in (Candidate, StyleImage):
        for seed, name in enumerate(model.objects.filter(study=study).values_list("image", flat=True)):
            with default_storage.open(name, "wb") as handle:
                handle.write(png_bytes(seed, size=256))
    return study


@pytest.mark.parametrize("lang", ["en", "zh-hans", "ja"])
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_ranking_rows_lay_out_cleanly(browser, live_server, artifacts, ranking_study, lang, viewport):
    participant = _ranking_participant(ranking_study, lang)
    context = browser.new_context(viewport=VIEWPORTS[viewport], extra_http_headers={"Accept-Language": ACCEPT[lang]})
    page = context.new_page()
    page.goto(live_server.url + session_url(participant.token))
    page.wait_for_selector("[data-ranking] .zoom-button")
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    page.wait_for_function("() => document.querySelector('form[data-trial]').dataset.stimulusBox")
    assert page.locator("form[data-trial]").get_attribute("data-kind") == "ranking"
    page.screenshot(path=str(artifacts / f"ranking-{lang}-{viewport}.png"), full_page=True)
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert problems == [], problems
    context.close()
