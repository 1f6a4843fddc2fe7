"""Security review, as tests: admin access, researcher isolation, tokens, CSRF, deploy settings, limits, exports."""

from __future__ import annotations

import base64
import collections
import math
import os
import re
import subprocess
import sys

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from studies.access import pseudonymise
from studies.admin import OwnedAdmin
from studies.export import study_frame
from studies.models import Participant, Response, Study
from studies.models.participants import new_participant_token
from studies.models.reports import StudyReport
from studies.permissions import make_researcher
from tests.conftest import REPO
from tests.participants.factories import make_study
from tests.participants.helpers import consent, run_to_end, start, submit_background

pytestmark = pytest.mark.django_db

PID = "PROLIFIC5ecret0000000042"


@pytest.fixture
def two_labs(settings):
    """Alice's and Bob's studies, each with one finished participant."""
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0
    users = {}
    studies = {}
    for name in ("alice", "bob"):
        users[name] = make_researcher(get_user_model().objects.create_user(name, password=f"pw-{name}"))
        study = make_study(slug=f"{name}-study")
        study.owners.add(users[name])
        client = Client()
        participant = consent(client, study, PROLIFIC_PID=f"{PID}{name}")
        submit_background(client, participant)
        start(client, participant)
        run_to_end(client, participant)
        studies[name] = study
    # A finished report (the researcher's export) of Alice's study.
    report = StudyReport.objects.create(study=studies["alice"], requested_by="alice", status="done", progress=1.0)
    report.archive.save("report.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18), save=False)
    report.html.save("report.html", ContentFile(b"<html>responses of alice-study</html>"), save=True)
    return users, studies


def _login(name: str) -> Client:
    client = Client()
    assert client.login(username=name, password=f"pw-{name}")
    return client


def _admin_urls():
    for model, model_admin in admin.site._registry.items():
        yield model, model_admin, reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


# --- the admin is staff-only --------------------------------------------------------------


def test_admin_is_closed_to_anonymous_and_non_staff_users(two_labs):
    plain = get_user_model().objects.create_user("mallory", password="pw-mallory")
    assert not plain.is_staff
    anonymous, member = Client(), Client()
    assert member.login(username="mallory", password="pw-mallory")
    urls = [reverse("admin:index")] + [url for _m, _a, url in _admin_urls()]
    study_pages = [reverse(f"admin:studies_study_{page}", args=[two_labs[1]["alice"].pk])
                   for page in ("upload", "progress", "preview", "change")]
    for url in urls + study_pages:
        for client in (anonymous, member):
            page = client.get(url)
            assert page.status_code == 302 and "/admin/login/" in page["Location"], (url, page.status_code)


# --- a researcher reaches only their own studies ----------------------------------------------


def test_researcher_sees_only_own_rows_in_every_admin_list(two_labs):
    users, studies = two_labs
    bob = _login("bob")
    checked = 0
    for model, model_admin, url in _admin_urls():
        if not isinstance(model_admin, OwnedAdmin):
            continue
        page = bob.get(url)
        assert page.status_code == 200, url
        rows = page.context["cl"].queryset
        path = "pk" if model is Study else f"{model_admin.study_path}__pk"
        assert not rows.filter(**{path: studies["alice"].pk}).exists(), f"{model.__name__}: Alice's rows listed"
        checked += 1
    assert checked >= 10


def test_researcher_cannot_open_another_researchers_rows_or_pages(two_labs):
    users, studies = two_labs
    alice_study = studies["alice"]
    bob = _login("bob")
    opened = 0
    for model, model_admin, _url in _admin_urls():
        if not isinstance(model_admin, OwnedAdmin):
            continue
        path = "pk" if model is Study else model_admin.study_path
        row = model.objects.filter(**{path: alice_study.pk}).first()
        if row is None:
            continue
        info = model._meta.app_label, model._meta.model_name
        for view in ("change", "delete", "history"):
            page = bob.get(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[row.pk]))
            # The admin answers a row outside the queryset with a redirect to its index (or 403/404).
            assert page.status_code in (302, 403, 404), (model.__name__, view, page.status_code)
            assert str(row.pk) not in page.get("Location", "")
        opened += 1
    for page in ("upload", "progress", "preview"):
        assert bob.get(reverse(f"admin:studies_study_{page}", args=[alice_study.pk])).status_code == 404
    assert opened >= 8


def test_reports_exports_and_media_of_another_study_are_not_served(two_labs, settings):
    from django.core.files.storage import default_storage

    users, studies = two_labs
    alice_study = studies["alice"]
    # Stimuli of a live study are public by design (participants load them); the rest is not.
    Study.objects.filter(pk=alice_study.pk).update(status=Study.Status.CLOSED)
    report = StudyReport.objects.get(study=alice_study)
    assert report.archive.name.startswith(f"studies/{alice_study.pk}/"), report.archive.name
    names = [report.archive.name, report.html.name,
             default_storage.save(f"studies/{alice_study.pk}/exports/responses.parquet", ContentFile(b"PAR1")),
             alice_study.candidates.first().image.name]
    bob, alice = _login("bob"), _login("alice")
    for name in names:
        url = reverse("studies:media", args=[name])
        assert bob.get(url).status_code == 404, name
        assert Client().get(url).status_code == 404, name
        assert alice.get(url).status_code == 200, name
    for probe in (f"studies/{alice_study.pk}/../{studies['bob'].pk}/x.png", "../config/settings.py", "/etc/passwd"):
        assert bob.get(f"/media/{probe}").status_code == 404


# --- participant tokens -------------------------------------------------------------------------


def test_tokens_carry_256_random_bits():
    tokens = [new_participant_token() for _ in range(2000)]
    assert len(set(tokens)) == len(tokens)
    raw = b"".join(base64.urlsafe_b64decode(t + "=") for t in tokens)
    assert all(len(base64.urlsafe_b64decode(t + "=")) == 32 for t in tokens[:50])
    # Bits are balanced and bytes are spread over all 256 values (a weak generator or a
    # timestamp-derived token fails this): a chi-square of the byte counts, 255 dof.
    counts = collections.Counter(raw)
    expected = len(raw) / 256
    chi2 = sum((counts.get(b, 0) - expected) ** 2 / expected for b in range(256))
    assert chi2 < 255 + 6 * math.sqrt(2 * 255), chi2
    ones = sum(bin(b).count("1") for b in raw) / (8 * len(raw))
    assert abs(ones - 0.5) < 0.01


# --- CSRF everywhere ------------------------------------------------------------------------------


def _all_views(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _all_views(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_no_view_is_exempt_from_csrf():
    exempt = [path for path, view in _all_views() if getattr(view, "csrf_exempt", False)]
    assert not exempt, exempt


def test_every_participant_and_admin_form_refuses_a_post_without_csrf_token(two_labs, settings):
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0
    users, studies = two_labs
    study = make_study(slug="csrf")
    browser = Client()
    participant = consent(browser, study)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = browser.cookies  # the same session, without the form's token
    token = participant.token
    posts = {
        reverse("studies:participant_entry", args=[study.slug]): {"decision": "accept"},
        reverse("studies:participant_language", args=[token]): {"lang": "ja"},
        reverse("studies:participant_background", args=[token]): {"cultural_background": "western"},
        reverse("studies:participant_start", args=[token]): {},
        reverse("studies:participant_answer", args=[token, 0]): {"value": "3"},
        reverse("studies:participant_withdraw", args=[token]): {"confirm": "withdraw"},
    }
    before = (Participant.objects.count(), Response.objects.count())
    for url, data in posts.items():
        assert strict.post(url, data).status_code == 403, url
    participant.refresh_from_db()
    assert participant.language == "en" and participant.group_id is None
    assert (Participant.objects.count(), Response.objects.count()) == before

    researcher = Client(enforce_csrf_checks=True)
    researcher.force_login(users["alice"])
    admin_posts = [reverse("admin:studies_study_changelist"), reverse("admin:studies_methodconfig_add"),
                   reverse("admin:studies_study_upload", args=[studies["alice"].pk]), reverse("admin:logout")]
    for url in admin_posts:
        assert researcher.post(url, {"action": "delete_selected", "_selected_action": [studies["alice"].pk]}
                               ).status_code == 403, url
    assert Study.objects.filter(pk=studies["alice"].pk).exists()
    alices_participant = Participant.objects.filter(study=studies["alice"]).first()
    erasures = [("study", "erase_participant_data", studies["alice"].pk),
                ("study", "erase_by_recruiter_id", studies["alice"].pk),
                ("participant", "erase_selected", alices_participant.pk)]
    for model, action, pk in erasures:
        assert researcher.post(reverse(f"admin:studies_{model}_changelist"), {
            "action": action, "_selected_action": [pk], "confirmed": "yes", "recruiter_id": f"{PID}alice",
        }).status_code == 403, action
    assert Participant.objects.filter(pk=alices_participant.pk).exists()
    assert Client(enforce_csrf_checks=True).post(
        reverse("admin:login"), {"username": "alice", "password": "pw-alice"}).status_code == 403


# --- production settings --------------------------------------------------------------------------

_PROD_ENV = {
    "DEBUG": "0", "DJANGO_SECRET_KEY": "k" * 20 + "-production-test-key-0123456789abcdef",
    "ALLOWED_HOSTS": "study.example.org", "DATABASE_URL": "sqlite:///:memory:",
}


def _production(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, **_PROD_ENV, "STYLESTUDY_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    env.pop("CACHE_URL", None)
    # The browser tests' async-safety override is a test-process setting, never a production one.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_check_deploy_is_clean_and_headers_are_secure(tmp_path):
    code = """
import django, sys
django.setup()
from django.core.management import call_command
from django.conf import settings
call_command("check", "--deploy", "--fail-level", "WARNING")
for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_HTTPONLY",
             "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_HSTS_INCLUDE_SUBDOMAINS"):
    assert getattr(settings, name) is True, name
assert settings.SECURE_HSTS_SECONDS >= 31536000 and settings.X_FRAME_OPTIONS == "DENY"
assert settings.DEBUG is False
from django.test import Client
r = Client().get("/healthz", secure=True, HTTP_HOST="study.example.org")
assert r.status_code == 200, r.status_code
assert r["Strict-Transport-Security"].startswith("max-age=31536000"), r.headers
assert r["X-Content-Type-Options"] == "nosniff" and r["X-Frame-Options"] == "DENY"
assert r["Referrer-Policy"] == "same-origin"
insecure = Client().get("/healthz", HTTP_HOST="study.example.org")
assert insecure.status_code == 301 and insecure["Location"].startswith("https://"), insecure.status_code
assert Client().get("/healthz", secure=True, HTTP_HOST="evil.example").status_code == 400
print("deploy-ok")
"""
    out = _production(code, tmp_path)
    assert out.returncode == 0 and "deploy-ok" in out.stdout, out.stderr[-3000:]
    assert "System check identified no issues" in out.stdout + out.stderr


def test_production_refuses_the_development_key(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=REPO, capture_output=True,
                         text=True, timeout=300,
                         env={**os.environ, **_PROD_ENV, "DJANGO_SECRET_KEY": "", "STYLESTUDY_DATA_DIR": str(tmp_path),
                              "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert out.returncode != 0 and "DJANGO_SECRET_KEY" in out.stderr


# --- rate limits on participant endpoints ------------------------------------------------------------


def test_answers_are_rate_limited_per_session(settings):
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 5
    study = make_study(slug="limited")
    client = Client()
    participant = consent(client, study)
    submit_background(client, participant)
    start(client, participant)
    url = reverse("studies:participant_answer", args=[participant.token, 0])
    codes = [client.post(url, {"value": "3"}).status_code for _ in range(8)]
    assert codes.count(429) >= 3, codes
    limited = client.post(url, {"value": "3"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    # Another participant is not affected by this one's limit.
    other_client = Client()
    other = consent(other_client, study)
    assert submit_background(other_client, other).status_code == 302


# --- pseudonymised exports ----------------------------------------------------------------------------


def test_exports_carry_only_pseudonyms(two_labs, settings):
    users, studies = two_labs
    study = studies["alice"]
    frame = study_frame(study.pk)
    assert len(frame) > 0
    text = frame.to_csv(index=False)
    participant = Participant.objects.get(study=study)
    assert f"{PID}alice" not in text and participant.token not in text
    assert participant.external_id_hash == pseudonymise(study, f"{PID}alice")
    assert set(frame["participant_hash"].dropna()) == {participant.external_id_hash}
    assert not any("token" in c or "external_id" == c or "session_id" in c for c in frame.columns), list(frame.columns)
    # The pseudonym is keyed: another key gives another value, so it cannot be recomputed from the id alone.
    settings.STYLESTUDY_PSEUDONYM_KEY = "another-key"
    assert pseudonymise(study, f"{PID}alice") != participant.external_id_hash


# --- withdrawal and erasure ------------------------------------------------------------------------


def test_withdrawal_is_reached_only_through_the_participants_own_token(two_labs):
    users, studies = two_labs
    participant = Participant.objects.get(study=studies["alice"])
    for token in ("x" * 43, participant.token[:-1] + ("A" if participant.token[-1] != "A" else "B"), "../admin"):
        url = f"/p/{token}/withdraw"
        assert Client().get(url).status_code == 404
        assert Client().post(url, {"confirm": "withdraw"}).status_code == 404
    # A researcher's login does not reach a participant's withdrawal either: only the token does.
    assert _login("bob").post(f"/p/{'y' * 43}/withdraw", {"confirm": "withdraw"}).status_code == 404
    assert Participant.objects.filter(pk=participant.pk).exists()
    # The withdrawal pages are never cached and carry no recruiter id.
    page = Client().get(reverse("studies:participant_withdraw", args=[participant.token]))
    assert page.status_code == 200 and page["Cache-Control"].startswith("no-store") or "no-cache" in page["Cache-Control"]
    assert f"{PID}alice".encode() not in page.content


def test_researcher_cannot_erase_another_researchers_participants(two_labs):
    from studies.models import ErasureRecord

    users, studies = two_labs
    alices = Participant.objects.get(study=studies["alice"])
    bob = _login("bob")
    for model, action, pk, extra in (
        ("participant", "erase_selected", alices.pk, {}),
        ("study", "erase_participant_data", studies["alice"].pk, {}),
        ("study", "erase_by_recruiter_id", studies["alice"].pk, {"recruiter_id": f"{PID}alice"}),
    ):
        bob.post(reverse(f"admin:studies_{model}_changelist"),
                 {"action": action, "_selected_action": [pk], "confirmed": "yes", **extra})
    assert Participant.objects.filter(pk=alices.pk).exists() and not ErasureRecord.objects.exists()
    assert bob.post(reverse("admin:studies_study_delete", args=[studies["alice"].pk]),
                    {"post": "yes"}).status_code in (302, 403, 404)
    assert Study.objects.filter(pk=studies["alice"].pk).exists()


# --- Content-Security-Policy and sign-in limits --------------------------------------------------------

_INLINE = [
    (re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(rb"\son[a-z]+\s*=", re.I), "event-handler attribute"),
    (re.compile(rb"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(rb"<style[\s>]", re.I), "<style> element"),
]


def _inline_code(content: bytes) -> list[str]:
    # JSON data blocks (<script type="application/json">) are data, not code.
    content = re.sub(rb'<script[^>]*type="application/json"[^>]*>.*?</script>', b"", content, flags=re.S)
    return [what for pattern, what in _INLINE if pattern.search(content)]


def test_pages_send_a_strict_csp_and_contain_no_inline_code(two_labs, settings):
    settings.STYLESTUDY_RATE_LIMIT_PER_MINUTE = 0
    users, studies = two_labs
    study = make_study(slug="csp")
    study.owners.add(users["alice"])
    client = Client()
    pages = {"consent": client.get(reverse("studies:participant_entry", args=[study.slug]))}
    participant = consent(client, study)
    pages["background"] = client.get(reverse("studies:participant_session", args=[participant.token]))
    submit_background(client, participant)
    pages["instructions"] = client.get(reverse("studies:participant_session", args=[participant.token]))
    start(client, participant)
    for _ in range(len(participant.trials.all())):
        trial = participant.trials.filter(response__isnull=True).order_by("position").first()
        pages[f"trial {trial.position} ({trial.question.kind}{trial.attention_kind and ', check'})"] = client.get(
            reverse("studies:participant_session", args=[participant.token]))
        client.post(reverse("studies:participant_answer", args=[participant.token, trial.position]),
                    __import__("tests.participants.helpers", fromlist=["answer_for"]).answer_for(trial))
    pages["done"] = client.get(reverse("studies:participant_session", args=[participant.token]))
    pages["withdraw"] = client.get(reverse("studies:participant_withdraw", args=[participant.token]))
    pages["withdrawn"] = client.post(reverse("studies:participant_withdraw", args=[participant.token]),
                                     {"confirm": "withdraw"})
    get_user_model().objects.create_superuser("root", password="pw-root")
    alice = _login("root")
    for name, url in [("admin index", reverse("admin:index")), ("login", reverse("admin:login"))] + [
        (f"admin {m.__name__}", u) for m, _a, u in _admin_urls()
    ] + [(f"admin {p}", reverse(f"admin:studies_study_{p}", args=[study.pk]))
         for p in ("change", "upload", "progress", "preview", "delete")]:
        pages[name] = (Client() if name == "login" else alice).get(url)
    pages["erase confirmation"] = alice.post(reverse("admin:studies_study_changelist"), {
        "action": "erase_participant_data", "_selected_action": [study.pk]})
    for name, page in pages.items():
        assert page.status_code == 200, (name, page.status_code)
        policy = dict(part.strip().split(" ", 1) for part in page["Content-Security-Policy"].split(";"))
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'", (name, policy)
        assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'", name
        assert policy["base-uri"] == "'none'" and "unsafe" not in page["Content-Security-Policy"], name
        assert _inline_code(page.content) == [], name


def test_stored_report_pages_are_sandboxed(two_labs):
    users, studies = two_labs
    report = StudyReport.objects.get(study=studies["alice"])
    page = _login("alice").get(reverse("studies:media", args=[report.html.name]))
    assert page.status_code == 200
    policy = page["Content-Security-Policy"]
    assert "sandbox" in policy and "script-src" not in policy and policy.startswith("default-src 'none'")


def test_admin_sign_in_is_throttled(two_labs, settings):
    settings.STYLESTUDY_LOGIN_FAILURES_ALLOWED = 5
    url = reverse("admin:login")
    guesser = Client()
    for attempt in range(5):
        page = guesser.post(url, {"username": "alice", "password": f"guess-{attempt}"})
        assert page.status_code == 200 and "_auth_user_id" not in guesser.session
    # Locked: even the right password is refused now, with a message saying why.
    locked = guesser.post(url, {"username": "alice", "password": "pw-alice"})
    assert locked.status_code == 200 and "_auth_user_id" not in guesser.session
    assert "Too many failed sign-in attempts" in locked.content.decode()
    # The user name is locked from any address, and the lock is per user name: Bob signs in.
    assert "_auth_user_id" not in (other := Client()).session
    other.post(url, {"username": "ALICE ", "password": "pw-alice"})
    assert "_auth_user_id" not in other.session
    bob = Client()
    assert bob.post(url, {"username": "bob", "password": "pw-bob"}).status_code == 302
    # After the lockout period the right password works again.
    from django.core.cache import cache

    cache.clear()
    assert Client().post(url, {"username": "alice", "password": "pw-alice"}).status_code == 302
