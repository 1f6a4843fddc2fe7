"""What one participant request costs: queries per request kind, and how images are delivered.

The ceilings are the budget of a trial (first page ≤ 3, answer with the next
page ≤ 5 with its transaction's BEGIN and COMMIT on PostgreSQL, ≤ 6 elsewhere, image ≤ 1) and of an
arrival (consent page 1, consent ≤ 4, background ≤ 14); counting on every trial of a whole
session keeps them from creeping back.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from studies.actions.participants import do_record_response, trial_state
from studies.delivery import check_signed_ref, image_link, serves_links, sign_ref
from studies.models import Candidate, Participant, Response, Study, Trial, TrialItem
from studies.participant_sql import (
    participant_with_study,
    study_for_entry,
    upcoming_trials,
)

from .factories import make_study
from .helpers import answer_for, consent, session_url, start, submit_background

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]

_IMG = re.compile(r'<img src="([^"]+)"')
_PRELOAD = re.compile(r'<link rel="prefetch" href="([^"]+)"')


def _begin(client, study) -> Participant:
    participant = consent(client, study)
    submit_background(client, participant)
    start(client, participant)
    return participant


def answer_ceiling() -> int:
    """Statements of an answer with the next page: BEGIN, lock, trials, response, COMMIT; the next
    trial marked shown (or the session finished) rides in the response's statement on PostgreSQL
    and is one more elsewhere."""
    return 5 if connection.vendor == "postgresql" else 6


def test_queries_per_trial_page_answer_and_image(django_assert_max_num_queries):
    """Every trial of a session (likert, 2AFC, ranking, attention checks): page ≤ 3 (participant, trials
    with their items, shown), image ≤ 1, and the answer with the next trial's page in its response
    within :func:`answer_ceiling`."""
    walk_session_counting_queries(django_assert_max_num_queries)


def walk_session_counting_queries(django_assert_max_num_queries) -> None:
    """A whole session through the views, each request within its query ceiling (also run on PostgreSQL)."""
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    with django_assert_max_num_queries(3):
        page = client.get(session_url(participant.token))
    answered = 0
    kinds = set()
    while True:
        trial = participant.trials.filter(response__isnull=True).order_by("position").first()
        if trial is None:
            break
        kinds.add(trial.attention_kind or trial.question.kind)
        html = page.content.decode()
        assert f'action="{reverse("studies:participant_answer", args=[participant.token, trial.position])}"' in html
        images = _IMG.findall(html) + _PRELOAD.findall(html)
        assert images or trial.attention_kind == Trial.AttentionKind.INSTRUCTED
        for url in images:
            with django_assert_max_num_queries(1):
                image = client.get(url)
            assert image.status_code == 200, url
        url = reverse("studies:participant_answer", args=[participant.token, trial.position])
        data = answer_for(trial)
        with django_assert_max_num_queries(answer_ceiling()):
            page = client.post(url, data)
        assert page.status_code == 200
        answered += 1
    assert answered == participant.trials.count() == Response.objects.filter(trial__participant=participant).count()
    assert b"Thanks EN." in page.content
    participant.refresh_from_db()
    assert participant.status == Participant.Status.COMPLETED and participant.completion_code
    assert participant.completion_code.encode() in page.content
    assert {"likert", "2afc", "ranking", "scrambled", "instructed"} <= kinds


def test_queries_of_an_arrival(django_assert_max_num_queries):
    """Consent page 1 query (the study with whether it has stimuli), consent ≤ 4 (no session row: the
    browser's session list is a signed cookie), background questionnaire ≤ 14 (trials built)."""
    study = make_study()
    client = Client()
    with django_assert_max_num_queries(1):
        assert client.get(reverse("studies:participant_entry", args=[study.slug])).status_code == 200
    with django_assert_max_num_queries(4):
        response = client.post(reverse("studies:participant_entry", args=[study.slug]), {"decision": "accept"})
    assert response.status_code == 302
    participant = Participant.objects.get(token=response["Location"].rstrip("/").split("/")[-1])
    with django_assert_max_num_queries(14):
        submit_background(client, participant)
    participant.refresh_from_db()
    assert participant.status == Participant.Status.IN_PROGRESS and participant.trials.exists()


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_hand_written_reads_load_what_the_orm_loads():
    """The participant and trial reads in SQL give the instances the ORM gives (same values and types,
    datetimes aware, JSON decoded), the unanswered trials in order with the progress counts, and each
    trial's items as stored, by slot, with their files."""
    study = make_study(questions=("likert", "2afc", "ranking"))
    client = Client()
    participant = _begin(client, study)
    first = participant.trials.order_by("position").first()
    client.get(session_url(participant.token))
    client.post(reverse("studies:participant_answer", args=[participant.token, first.position]), answer_for(first))

    loaded = participant_with_study(token=participant.token)
    orm = Participant.objects.select_related("study").get(pk=participant.pk)
    assert _fields(loaded) == _fields(orm) and _fields(loaded.study) == _fields(orm.study)
    assert loaded.last_seen_at.tzinfo is not None and isinstance(loaded.study.texts, dict)
    assert participant_with_study(pk=participant.pk).token == participant.token
    with pytest.raises(Participant.DoesNotExist):
        participant_with_study(token="no-such-token")
    entry = study_for_entry(study.slug)
    assert _fields(entry) == _fields(orm.study) and entry._has_stimuli is True
    with pytest.raises(Study.DoesNotExist):
        study_for_entry("no-such-study")

    upcoming = upcoming_trials(loaded, 100)
    trials = upcoming.trials
    expected = list(Trial.objects.filter(participant=participant, response__isnull=True).select_related("question")
                    .order_by("position"))
    assert len(expected) > 3 and [_fields(t) for t in trials] == [_fields(t) for t in expected]
    assert [_fields(t.question) for t in trials] == [_fields(t.question) for t in expected]
    assert [t.pk for t in upcoming_trials(loaded, 2).trials] == [t.pk for t in expected[:2]]
    real = Trial.objects.filter(participant=participant, is_practice=False)
    assert (upcoming.total, upcoming.done) == (real.count(), real.filter(response__isnull=False).count())
    assert trials[0].position == first.position + 1 and trials[0].shown_at is not None
    assert all(t.participant is loaded for t in trials)
    for trial in trials:
        items = TrialItem.objects.filter(trial=trial).select_related("candidate__style", "candidate__content")
        assert [(i.id, i.slot, i.candidate_id, i.attention_image) for i in trial.shown_items] == [
            (i.id, i.slot, i.candidate_id, i.attention_image) for i in items.order_by("slot")]
        assert [(i.image, i.style_file, i.content_file) for i in trial.shown_items] == [
            (i.candidate.image.name, i.candidate.style.image.name, i.candidate.content.image.name)
            if i.candidate_id else ("", "", "") for i in items.order_by("slot")]
    assert any(len(t.shown_items) > 1 for t in trials) and any(t.attention_kind for t in trials)
    Candidate.objects.filter(study=study).update(image="")
    assert study_for_entry(study.slug)._has_stimuli is False


def test_answers_stored_in_sql_read_back_as_given():
    """Every kind of answer through the written INSERT reads back through the ORM as given: rating,
    chosen item, ranking (JSON), response times, attention result, submission time (aware); and the
    next trial is marked shown at the answer's time, once."""
    study = make_study(questions=("likert", "2afc", "ranking"))
    client = Client()
    participant = _begin(client, study)
    kinds = set()
    for trial in participant.trials.select_related("question").order_by("position"):
        # Activity older than its resolution is recorded by the answer's statement.
        idle = trial.position % 2 == 0
        if idle:
            Participant.objects.filter(pk=participant.pk).update(last_seen_at=timezone.now() - timedelta(minutes=5))
        answer = answer_for_trial(trial)
        answer = type(answer)(value=answer.value, choice=answer.choice, ranking=answer.ranking, client_rt_ms=1234)
        returned = do_record_response(participant, trial.position, answer)
        stored = Response.objects.get(trial=trial)
        assert returned.pk == stored.pk and returned.trial_id == trial.pk
        assert (stored.value, stored.ranking, stored.client_rt_ms) == (answer.value, answer.ranking, 1234)
        assert stored.choice_id == returned.choice_id
        if answer.choice is not None:
            assert stored.choice.slot == answer.choice and stored.choice.trial_id == trial.pk
        assert stored.passed_attention == returned.passed_attention
        assert (stored.passed_attention is None) == (not trial.attention_kind)
        assert stored.submitted_at == returned.submitted_at and stored.submitted_at.tzinfo is not None
        following = Trial.objects.filter(participant=participant, position=trial.position + 1).first()
        if following is not None:
            assert following.shown_at == stored.submitted_at
        if idle:
            assert Participant.objects.get(pk=participant.pk).last_seen_at == stored.submitted_at
        kinds.add("ranking" if answer.ranking else "choice" if answer.choice is not None else "value")
    assert kinds == {"value", "choice", "ranking"}
    participant.refresh_from_db()
    assert participant.status == Participant.Status.COMPLETED


def fail_the_last_trial_as_an_attention_check() -> None:
    """A failed attention check as the session's last answer excludes the participant and finishes the
    session in one write (on PostgreSQL one statement): excluded, failure counted, completion stored."""
    from studies.actions.participants import (
        RecruiterInfo,
        do_consent,
        do_read_instructions,
        do_submit_background,
    )

    from .factories import BACKGROUND_POST

    study = make_study(attention_allowed=0)
    for _ in range(40):  # attention checks sit at random positions: take a participant whose last one is
        participant = do_submit_background(do_consent(study, RecruiterInfo(), language="en"), BACKGROUND_POST)
        do_read_instructions(participant)
        trials = list(participant.trials.select_related("question").order_by("position"))
        if trials[-1].attention_kind:
            break
    assert trials[-1].attention_kind, "no participant had an attention check last"
    for trial in trials:
        data = answer_for(trial, correct=trial is not trials[-1])
        answer = answer_for_trial(trial)
        if trial is trials[-1]:
            answer = type(answer)(value=data.get("value"), choice=data.get("choice"))
        assert do_record_response(participant, trial.position, answer) is not None
    participant.refresh_from_db()
    assert participant.status == Participant.Status.EXCLUDED and participant.attention_failures == 1
    assert participant.completed_at is not None and participant.completion_code
    assert Response.objects.get(trial=trials[-1]).passed_attention is False


def test_a_failed_attention_check_as_the_last_answer_excludes_and_finishes():
    fail_the_last_trial_as_an_attention_check()


def test_participant_links_are_the_reversed_addresses():
    """The pages' links to a participant's own views equal ``reverse()``'s, under a script prefix too."""
    from django.urls import NoReverseMatch, set_script_prefix

    from studies.views import ParticipantLinks

    token = "AbC_d-123"
    for prefix in ("/", "/sub/"):
        set_script_prefix(prefix)
        try:
            links = ParticipantLinks(token)
            for view in ("session", "language", "background", "start", "withdraw"):
                assert links[view] == reverse(f"studies:participant_{view}", args=[token])
                assert links[view].startswith(prefix)
        finally:
            set_script_prefix("/")
    with pytest.raises(NoReverseMatch):
        ParticipantLinks(token)["no_such_view"]


def test_background_page_reuses_its_fields_only_while_the_wording_is_the_same():
    """The empty questionnaire's HTML is reused across participants, per language, but a question
    reworded or relabelled while the study is live shows at once (audited live edit)."""
    from studies.actions.live_edits import do_save_live_edit
    from studies.models import BackgroundQuestion

    study = make_study()
    first = Client()
    p1 = consent(first, study)
    page = first.get(session_url(p1.token)).content.decode()
    question = BackgroundQuestion.objects.get(study=study, key="country_grew_up")
    assert question.texts["en"] in page and 'name="country_grew_up"' in page
    second = Client()
    p2 = consent(second, study, lang="ja")
    assert question.texts["ja"] in second.get(session_url(p2.token)).content.decode()

    question.texts = {**question.texts, "en": "Which country did you grow up in (edited)?"}
    do_save_live_edit(question)
    choice = BackgroundQuestion.objects.get(study=study, key="art_training")
    choice.choices = [{**c, "labels": {**c["labels"], "en": c["labels"]["en"] + " (edited)"}} for c in choice.choices]
    do_save_live_edit(choice)
    third = Client()
    page = third.get(session_url(consent(third, study).token)).content.decode()
    assert "Which country did you grow up in (edited)?" in page and "None (edited)" in page
    assert "In which country did you grow up?" not in page
    assert 'name="country_grew_up"' in first.get(session_url(p1.token)).content.decode()


def test_answer_response_is_the_session_page_of_the_next_step():
    """The page an answer returns is the one a GET of the session shows next (nothing missed, nothing twice)."""
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    client.get(session_url(participant.token))
    trial = participant.trials.order_by("position").first()
    after = client.post(reverse("studies:participant_answer", args=[participant.token, trial.position]),
                        answer_for(trial)).content.decode()
    again = client.get(session_url(participant.token)).content.decode()
    form = re.compile(r'<form method="post" action="([^"]+)"[^>]*data-trial')
    assert form.search(after).group(1) == form.search(again).group(1).replace("&amp;", "&")
    assert form.search(after).group(1).endswith(f"/trial/{trial.position + 1}")
    assert f'data-session="{session_url(participant.token)}"' in after
    # Shown (response-time origin) once, by the answer's page.
    assert Trial.objects.get(participant=participant, position=trial.position + 1).shown_at is not None


def test_trial_page_links_signed_urls_that_the_next_page_reuses():
    """The preloaded URLs of the next trial are the ones its page shows (one browser download each)."""
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    first = client.get(session_url(participant.token)).content.decode()
    preloaded = set(_PRELOAD.findall(first))
    trial = participant.trials.order_by("position").first()
    client.post(reverse("studies:participant_answer", args=[participant.token, trial.position]), answer_for(trial))
    shown = set(_IMG.findall(client.get(session_url(participant.token)).content.decode()))
    assert preloaded and preloaded == shown
    assert all("/i/" in url and "candidates" not in url for url in preloaded | shown)


def test_signed_image_headers_etag_and_not_modified():
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    url = _IMG.findall(client.get(session_url(participant.token)).content.decode())[0]
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["ETag"].startswith('"')
    assert "private" in response["Cache-Control"] and "max-age=" in response["Cache-Control"]
    assert b"".join(response.streaming_content)[:8] == b"\x89PNG\r\n\x1a\n"
    again = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again["ETag"] == response["ETag"]


def test_signed_image_refuses_forged_or_expired_urls():
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    url = _IMG.findall(client.get(session_url(participant.token)).content.decode())[0]
    _i, ref, expires, signature = url.strip("/").split("/")
    forged = reverse("studies:signed_image", args=[ref, expires, signature[:-1] + ("0" if signature[-1] != "0" else "1")])
    assert client.get(forged).status_code == 404
    other = "c" + str(int(ref[1:]) + 1) if ref.startswith("c") else "c1"
    assert client.get(reverse("studies:signed_image", args=[other, expires, signature])).status_code == 404
    later = reverse("studies:signed_image", args=[ref, int(expires) + 3600, signature])
    assert client.get(later).status_code == 404
    # A signature that was valid stops working once its time has passed.
    past_expires, past_signature = sign_ref(ref, now=time.time() - 3 * 24 * 3600)
    assert client.get(reverse("studies:signed_image", args=[ref, past_expires, past_signature])).status_code == 404
    assert check_signed_ref(ref, int(expires), signature) > 0


def test_images_go_through_x_accel_redirect_when_configured(settings):
    """Behind nginx the bytes never pass through Python: an empty answer naming the internal location."""
    settings.STYLESTUDY_ACCEL_REDIRECT_PREFIX = "/_protected_media/"
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    html = client.get(session_url(participant.token)).content.decode()
    for url in _IMG.findall(html):
        response = client.get(url)
        assert response.status_code == 200
        assert response["X-Accel-Redirect"].startswith("/_protected_media/studies/")
        assert response.content == b""
        assert response["ETag"] and "max-age=" in response["Cache-Control"]
    legacy = client.get(reverse("studies:participant_image", args=[participant.token, 0, "0"]))
    assert legacy["X-Accel-Redirect"].startswith("/_protected_media/studies/")


def test_answer_to_a_trial_not_yet_reached_changes_nothing():
    """The current-trial check runs in the locked action: a later position is refused, nothing stored."""
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    trials = list(participant.trials.order_by("position"))
    ahead = trials[2]
    assert do_record_response(participant, ahead.position, answer_for_trial(ahead)) is None
    assert not Response.objects.filter(trial__participant=participant).exists()
    current = trials[0]
    stored = do_record_response(participant, current.position, answer_for_trial(current))
    assert stored is not None and stored.trial_id == current.pk
    assert do_record_response(participant, current.position, answer_for_trial(current)) is None
    assert Response.objects.filter(trial__participant=participant).count() == 1
    with pytest.raises(Trial.DoesNotExist):
        do_record_response(participant, 999, answer_for_trial(current))


def test_answer_validated_against_the_locked_trial_keeps_the_chosen_item():
    """A 2AFC choice is stored as the item in that slot (the insert resolves it, no extra read)."""
    study = make_study(questions=("2afc",))
    client = Client()
    participant = _begin(client, study)
    state = trial_state(participant)
    trial = state.current
    response = client.post(reverse("studies:participant_answer", args=[participant.token, trial.position]),
                           {"choice": 1, "client_rt_ms": 500})
    assert response.status_code == 200
    stored = Response.objects.get(trial=trial)
    assert stored.choice.slot == 1 and stored.choice.trial_id == trial.pk
    bad = client.post(reverse("studies:participant_answer", args=[participant.token, trial.position + 1]),
                      {"choice": 7})
    assert bad.status_code == 400
    assert not Response.objects.filter(trial__position=trial.position + 1, trial__participant=participant).exists()


def answer_for_trial(trial: Trial):
    from studies.actions.participants import Answer

    data = answer_for(trial)
    if "value" in data:
        return Answer(value=int(data["value"]))
    if "choice" in data:
        return Answer(choice=int(data["choice"]))
    return Answer(ranking=[int(x) for x in data["ranking"].split(",")])


_LINK = re.compile(r"^/m/(\d+)/([A-Za-z0-9_-]+)/([0-9a-f]{32}\.png)$")


def test_images_as_links_nginx_verifies_without_django(settings):
    """With the link secret set, a trial page links its stimuli by URLs nginx's secure_link checks: the
    signature is nginx's formula (MD5 of "<expires>/<alias> <secret>", base64url), the alias is a symbolic
    link to the permitted file, no file or method name is in the URL, and Django is never asked."""
    settings.STYLESTUDY_IMAGE_LINK_SECRET = "link-secret-for-tests"
    study = make_study()
    client = Client()
    participant = _begin(client, study)
    html = client.get(session_url(participant.token)).content.decode()
    urls = _IMG.findall(html) + _PRELOAD.findall(html)
    links = [u for u in urls if u.startswith("/m/")]
    assert links and all(u.startswith(("/m/", "/i/")) for u in urls)
    trial = trial_state(participant).current
    names = {item.image for item in trial.shown_items if item.candidate_id}
    targets = set()
    for url in links:
        expires, signature, alias = _LINK.match(url).groups()
        assert "candidates" not in url and not any(Path(n).stem in url for n in names)
        digest = hashlib.md5(f"{expires}/{alias} link-secret-for-tests".encode()).digest()
        assert signature == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        assert int(expires) - time.time() >= settings.STYLESTUDY_IMAGE_URL_MAX_AGE // 2
        link = Path(settings.MEDIA_ROOT) / "_published" / alias
        assert link.is_symlink() and link.resolve().is_file()
        targets.add(str(link.resolve().relative_to(Path(settings.MEDIA_ROOT).resolve())))
    assert names <= targets
    # The same file gets the same URL on the next page (the preloaded copy is reused); another secret,
    # another signature and alias.
    assert set(_PRELOAD.findall(html)) & set(links) <= set(links)
    assert image_link(next(iter(names))) in links
    settings.STYLESTUDY_IMAGE_LINK_SECRET = "another-secret"
    assert image_link(next(iter(names))) not in links


def test_image_links_need_local_files(settings):
    """Without the secret, or with object storage, images keep going through Django's signed view."""
    settings.STYLESTUDY_IMAGE_LINK_SECRET = ""
    assert not serves_links()
    settings.STYLESTUDY_IMAGE_LINK_SECRET = "s"
    assert serves_links()
    assert not serves_links(storage=object())


@pytest.mark.skipif(not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()), reason="nginx not installed")
def test_nginx_sends_the_linked_image_and_refuses_forged_or_expired_links(settings):
    """Real nginx with the snippet the load test and README use: Django's link opens the file, with the
    cache headers; a changed signature, expiry or alias, or an expired link, is refused."""
    # nginx's workers run as another user: a world-readable folder outside pytest's private one.
    root = Path(tempfile.mkdtemp(prefix="stylestudy-nginx-"))
    root.chmod(0o755)
    media = root / "media"
    settings.MEDIA_ROOT = str(media)
    settings.STYLESTUDY_IMAGE_LINK_SECRET = "nginx-secret"
    spec = importlib.util.spec_from_file_location("stylestudy_load_test", REPO / "bench" / "load_test.py")
    load_test = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = load_test  # dataclasses need the module registered
        spec.loader.exec_module(load_test)
    nginx = None
    try:
        study = make_study()
        client = Client()
        participant = _begin(client, study)
        html = client.get(session_url(participant.token)).content.decode()
        links = [u for u in _IMG.findall(html) + _PRELOAD.findall(html) if u.startswith("/m/")]
        assert len(links) >= 2
        (root / "nginx").mkdir()
        port = load_test.free_port()
        nginx = load_test.start_nginx(root / "nginx", port, load_test.free_port(), media, secret="nginx-secret",
                                      max_age=3600)
        base = f"http://127.0.0.1:{port}"
        ok = httpx.get(base + links[0])
        assert ok.status_code == 200 and ok.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert ok.headers["Cache-Control"] == "private, max-age=3600, immutable" and ok.headers["ETag"]
        assert httpx.get(base + links[0], headers={"If-None-Match": ok.headers["ETag"]}).status_code == 304
        expires, signature, alias = _LINK.match(links[0]).groups()
        # (The first character: the last one of 22 base64 characters also carries unused bits.)
        forged = ("A" if signature[0] != "A" else "B") + signature[1:]
        assert httpx.get(f"{base}/m/{expires}/{forged}/{alias}").status_code == 404
        assert httpx.get(f"{base}/m/{int(expires) + 1}/{signature}/{alias}").status_code == 404
        other = next(_LINK.match(u).group(3) for u in links if _LINK.match(u).group(3) != alias)
        assert httpx.get(f"{base}/m/{expires}/{signature}/{other}").status_code == 404
        name = os.path.relpath(os.path.realpath(media / "_published" / alias), os.path.realpath(media))
        past = image_link(name, now=time.time() - 3 * 24 * 3600)
        assert _LINK.match(past).group(3) == alias
        assert httpx.get(base + past).status_code == 404
    finally:
        if nginx is not None:
            load_test.stop_process(nginx)
        shutil.rmtree(root, ignore_errors=True)
