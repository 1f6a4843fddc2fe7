"""Views: health check and the participant's side of a study.

Each participant view validates input, calls one action from
:mod:`studies.actions.participants`, then renders or redirects. A participant
is reached only through :func:`studies.access.access_participant_by_token`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache, wraps

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotFound,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.translation import get_language_from_request
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .access import access_participant_by_token, is_token_shaped
from .actions import erasure
from .actions import participants as actions
from .delivery import check_signed_ref, deliver, image_link, serves_links, sign_ref
from .forms import AnswerForm, BackgroundForm
from .imaging import attention_foil_png
from .models import (
    Candidate,
    ContentImage,
    Participant,
    Question,
    Study,
    StyleImage,
    Trial,
    TrialItem,
)
from .participant_sql import ShownItem, Upcoming, study_for_entry
from .permissions import can_access_study
from .privacy import TOKEN_PATTERN
from .ratelimit import (
    RateLimited,
    check_rate_limit,
    client_key,
    entry_limit,
    participant_limit,
)

#: A signed cookie ``{study slug: token}``: returns a participant who opens the study link again on the
#: same browser to their session. A cookie, not the session store, so that a consent writes no session row.
_SESSIONS_COOKIE = "stylestudy_sessions"
_SESSIONS_SALT = "stylestudy.views.sessions"
#: Where sessions started before the cookie were remembered (read, never written).
_SESSION_KEY = "stylestudy_sessions"


def _known_sessions(request: HttpRequest) -> dict[str, str]:
    try:
        sessions = json.loads(request.get_signed_cookie(_SESSIONS_COOKIE, default="{}", salt=_SESSIONS_SALT))
    except ValueError:
        return {}
    return sessions if isinstance(sessions, dict) else {}


def _remember_sessions(response: HttpResponse, sessions: dict[str, str]) -> HttpResponse:
    response.set_signed_cookie(
        _SESSIONS_COOKIE, json.dumps(sessions, separators=(",", ":")), salt=_SESSIONS_SALT,
        max_age=settings.SESSION_COOKIE_AGE, secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax",
    )
    return response


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and the demo."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True, "database": connection.vendor})


# --- helpers ------------------------------------------------------------------


def _study_languages(study: Study) -> list[str]:
    return list(study.languages or [study.default_language or "en"])


def _choose_language(request: HttpRequest, study: Study, participant: Participant | None = None) -> str:
    """Participant's choice, then ``?lang=``, then Accept-Language, then the study default."""
    offered = _study_languages(study)
    if participant is not None and participant.language in offered:
        return participant.language
    asked = request.GET.get("lang") or request.POST.get("lang")
    if asked in offered:
        return asked
    browser = get_language_from_request(request)
    if browser in offered:
        return browser
    return study.default_language if study.default_language in offered else offered[0]


def _activate(request: HttpRequest, language: str) -> None:
    translation.activate(language)
    request.LANGUAGE_CODE = language


def _render(request, template: str, context: dict, *, status: int = 200) -> HttpResponse:
    response = render(request, f"studies/participant/{template}", context, status=status)
    # Participant pages are personal and change with progress: never cached.
    response["Cache-Control"] = "no-store"
    return response


def _is_preview(request: HttpRequest, study: Study) -> bool:
    """Whether the visitor is one of ``study``'s researchers (its owners, or a superuser) trying it out."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and can_access_study(user, study))


#: A session's address, known page or not (``/p/<token>/…``).
_SESSION_ADDRESS = re.compile(f"^/p/({TOKEN_PATTERN})/")


def _error_page_language(request: HttpRequest) -> str:
    """The language of an error page: the participant's, when the address names a session that
    exists; then ``?lang=``; then the browser's (as the locale middleware chose it)."""
    offered = dict(settings.LANGUAGES)
    match = _SESSION_ADDRESS.match(request.path_info)
    if match:
        try:
            language = Participant.objects.filter(token=match.group(1)).values_list("language", flat=True).first()
        except DatabaseError:
            language = None
        if language in offered:
            return language
    asked = request.GET.get("lang")
    if asked in offered:
        return asked
    current = translation.get_language()
    return current if current in offered else settings.LANGUAGE_CODE


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: one translated page for every unknown address (a withdrawn session's link, a
    mistyped study link), which says no more than that there is no page there."""
    with translation.override(_error_page_language(request)):
        html = render_to_string("studies/404.html")
    response = HttpResponseNotFound(html)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The site's front page ("View site" in the admin): what this server is, where to go."""
    return render(request, "studies/home.html", {})


def _rate_limited(request: HttpRequest, study: Study | None = None) -> HttpResponse:
    context = {"study": study, "languages": []}
    response = _render(request, "rate_limited.html", context, status=429)
    response["Retry-After"] = "60"
    return response


def participant_view(view):
    """Resolve the token, apply the language and (for POST) the per-session rate limit."""

    @wraps(view)
    def wrapper(request: HttpRequest, token: str, *args, **kwargs):
        participant = access_participant_by_token(token)
        _activate(request, _choose_language(request, participant.study, participant))
        if request.method == "POST":
            try:
                check_rate_limit("participant", participant.token, limit=participant_limit())
            except RateLimited:
                return _rate_limited(request, participant.study)
        return view(request, participant, *args, **kwargs)

    return wrapper


#: Stands in for a token in a participant address reversed once (any URL-safe text that no address holds).
_TOKEN_STAND_IN = "token~stand~in"


@lru_cache(maxsize=64)
def _address_shape(view: str, script_prefix: str) -> str:
    return reverse(f"studies:participant_{view}", args=[_TOKEN_STAND_IN])


class ParticipantLinks:
    """The addresses of a participant's own pages, by view: ``links.session``, ``links.language``, ….

    Every participant page links three of them, and ``reverse()`` costs
    about 60 µs each; here each view is reversed once per process (and
    script prefix) with a stand-in that the participant's token replaces.
    """

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __getitem__(self, view: str) -> str:  # templates look up ``links.session`` as ``links["session"]``
        return _address_shape(view, get_script_prefix()).replace(_TOKEN_STAND_IN, self.token)


def _session_url(participant: Participant) -> str:
    return ParticipantLinks(participant.token)["session"]


def _base_context(study: Study, language: str, participant: Participant | None = None, *,
                  preview: bool = False) -> dict:
    """What every participant page shows; ``preview``: the visitor, with no session yet, would get a preview."""
    return {
        "links": ParticipantLinks(participant.token) if participant is not None else None,
        "study": study,
        "participant": participant,
        "preview": participant.is_preview if participant is not None else preview,
        "language": language,
        "languages": [(code, translation.get_language_info(code)["name_local"]) for code in _study_languages(study)],
        "study_title": study.text("title", language) or study.title,
    }


# --- entry and consent --------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@never_cache
def participant_entry(request: HttpRequest, slug: str) -> HttpResponse:
    """The study link: consent page (GET), accept or decline (POST)."""
    try:
        study = study_for_entry(slug)
    except Study.DoesNotExist:
        raise Http404("no such study") from None
    language = _choose_language(request, study)
    _activate(request, language)
    source = request.GET if request.method == "GET" else request.POST
    recruiter = actions.RecruiterInfo.from_params(source)
    preview = _is_preview(request, study)
    context = _base_context(study, language, preview=preview)
    try:
        actions.check_study_open(study, preview=preview)
    except actions.StudyNotOpen:
        return _render(request, "closed.html", context, status=404 if study.status == Study.Status.DRAFT else 410)

    returning = actions.find_returning_participant(study, recruiter)
    if returning is None:
        token = _known_sessions(request).get(study.slug)
        if not token and settings.SESSION_COOKIE_NAME in request.COOKIES:
            token = request.session.get(_SESSION_KEY, {}).get(study.slug)
        if token and not recruiter.external_id:
            returning = Participant.objects.filter(token=token, study=study).first()
    if returning is not None:
        return redirect(_session_url(returning))

    if request.method == "GET":
        context.update(
            consent_text=study.text("consent", language),
            recruiter_fields=[
                (name, source.get(name))
                for name in ("PROLIFIC_PID", "participant_label", "STUDY_ID", "SESSION_ID")
                if source.get(name)
            ],
        )
        return _render(request, "consent.html", context)

    if request.POST.get("decision") != "accept":
        # Declining stores nothing at all.
        context["screenout_url"] = actions.screenout_redirect_url(study)
        return _render(request, "declined.html", context)
    try:
        check_rate_limit("entry", client_key(request), limit=entry_limit())
    except RateLimited:
        return _rate_limited(request, study)
    participant = actions.do_consent(study, recruiter, language=language, preview=preview)
    return _remember_sessions(redirect(_session_url(participant)),
                              {**_known_sessions(request), study.slug: participant.token})


# --- the session ----------------------------------------------------------------


@require_GET
@participant_view
def participant_session(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Where the participant is now: background, instructions, the next trial, or the end."""
    return _current_step(request, participant)


def _current_step(request: HttpRequest, participant: Participant, upcoming: Upcoming | None = None
                  ) -> HttpResponse:
    """The page of the participant's current step (``upcoming``: their next trials, when already read)."""
    study = participant.study
    context = _base_context(study, participant.language, participant)
    status = participant.status
    if status == Participant.Status.SCREENED_OUT:
        context.update(reason=participant.screenout_reason, screenout_url=actions.screenout_redirect_url(study))
        return _render(request, "screenout.html", context)
    if status == Participant.Status.EXPIRED:
        return _render(request, "expired.html", context)
    if participant.is_finished:
        return _done(request, participant, context)
    if participant.group_id is None:
        questions = list(study.background_questions.order_by("order", "id"))
        context["fields"] = _background_fields(questions, participant.language)
        return _render(request, "background.html", context)
    if participant.instructions_read_at is None:
        context["instructions_text"] = study.text("instructions", participant.language)
        return _render(request, "instructions.html", context)
    state = actions.trial_state(participant, upcoming)
    if state.current is None:
        participant = actions.do_complete(participant)
        return _done(request, participant, context)
    actions.do_show_trial(state.current, participant)
    return _render(request, "trial.html", {**context, **_trial_context(participant, state)})


#: The empty questionnaire's fields as HTML, by everything they are made from (language, each question's
#: key, kind, wording and choices): a question edited while live is a new key, never a stale page.
_BACKGROUND_FIELDS: dict[tuple, str] = {}


def _background_fields(questions: list, language: str) -> str:
    """The fields of the unanswered background questionnaire (the same for every participant)."""
    key = (language, *((q.pk, q.key, q.kind, q.required, json.dumps([q.texts, q.choices], sort_keys=True))
                       for q in questions))
    html = _BACKGROUND_FIELDS.get(key)
    if html is None:
        if len(_BACKGROUND_FIELDS) >= 64:
            _BACKGROUND_FIELDS.clear()
        form = BackgroundForm(questions=questions, language=language)
        html = _BACKGROUND_FIELDS[key] = render_to_string("studies/participant/background_fields.html", {"form": form})
    return html


def _done(request, participant: Participant, context: dict) -> HttpResponse:
    context.update(
        thanks_text=participant.study.text("thanks", participant.language),
        completion_code=participant.completion_code,
        completion_url=actions.completion_redirect_url(participant),
    )
    return _render(request, "done.html", context)


@require_POST
@participant_view
def participant_language(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Switch the interface language, then return to the current step."""
    actions.do_set_language(participant, request.POST.get("lang", ""))
    return redirect(_session_url(participant))


@require_POST
@participant_view
def participant_background(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Submit the background questionnaire; assigns a group or screens out."""
    if participant.group_id is not None or participant.status != Participant.Status.CONSENTED:
        return redirect(_session_url(participant))
    questions = list(participant.study.background_questions.order_by("order", "id"))
    form = BackgroundForm(request.POST, questions=questions, language=participant.language)
    if not form.is_valid():
        context = _base_context(participant.study, participant.language, participant)
        context.update(form=form, fields=render_to_string("studies/participant/background_fields.html", {"form": form}))
        return _render(request, "background.html", context, status=400)
    actions.do_submit_background(participant, form.answers())
    return redirect(_session_url(participant))


@require_POST
@participant_view
def participant_start(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Instructions read: go on to the practice trial."""
    actions.do_read_instructions(participant)
    return redirect(_session_url(participant))


@require_POST
def participant_answer(request: HttpRequest, token: str, position: int) -> HttpResponse:
    """Answer the trial at ``position`` and show the next one; a repeat or stale submission changes nothing.

    The participant is not loaded before the answer: the action locks their
    row, reads the current trial once and validates the form against it. The
    answer's response is the next step's page itself (one request per trial,
    not POST, redirect and GET); the page script then puts the session's
    address in the history, so reloading or going back asks the session page
    again instead of resending the form. Without the script a resent form
    stores nothing twice and leads to the session page.
    """
    if not is_token_shaped(token):
        raise Http404("unknown session")
    try:
        check_rate_limit("participant", token, limit=participant_limit())
    except RateLimited:
        return _rate_limited(request)

    def validate(trial: Trial) -> actions.Answer:
        view = _presentation(trial)
        form = AnswerForm(request.POST, trial=trial, kind=view["kind"], points=view["points"], n_items=view["n_items"])
        if not form.is_valid():
            raise actions.InvalidAnswer(trial, form.non_field_errors())
        return form.answer()

    try:
        stored = actions.do_record_response(token, position, validate)
    except (Participant.DoesNotExist, Trial.DoesNotExist):
        raise Http404("no such trial") from None
    except actions.InvalidAnswer as invalid:
        participant = invalid.trial.participant
        _activate(request, _choose_language(request, participant.study, participant))
        state = actions.trial_state(participant)
        context = {**_base_context(participant.study, participant.language, participant),
                   **_trial_context(participant, state), "form_errors": invalid.errors}
        return _render(request, "trial.html", context, status=400)
    if stored is None:
        return redirect(ParticipantLinks(token)["session"])
    # The participant and their trials as read under the answer's lock (study included).
    participant = stored.trial.participant
    _activate(request, _choose_language(request, participant.study, participant))
    return _current_step(request, participant, stored.upcoming)


# --- trial presentation -----------------------------------------------------------


def _presentation(trial: Trial) -> dict:
    """How a trial is shown: kind, points and item count (attention checks included)."""
    question = trial.question
    n_items = len(trial.shown_items)
    if trial.attention_kind == Trial.AttentionKind.SCRAMBLED:
        return {"kind": Question.Kind.TWO_AFC, "points": 0, "n_items": 2}
    if trial.attention_kind == Trial.AttentionKind.INSTRUCTED:
        points = question.scale_points if question.kind == Question.Kind.LIKERT else 5
        return {"kind": Question.Kind.LIKERT, "points": max(points, 2), "n_items": 0}
    return {"kind": question.kind, "points": question.scale_points or 0, "n_items": n_items}


def _item_ref(item: TrialItem | ShownItem) -> str:
    """The opaque reference of an item's image (no file or method name in it)."""
    if item.candidate_id:
        return f"c{item.candidate_id}"
    kind, _sep, rest = item.attention_image.partition(":")
    content_id, _sep, seed = rest.partition(":")
    return f"x{int(content_id)}-{int(seed or 0)}" if kind == "scrambled" else f"a{int(content_id)}"


def _signed_url(ref: str, name: str = "", links: bool = False) -> str:
    """The image's URL: one nginx verifies when the file name is at hand, else Django's signed view."""
    if links and name:
        return image_link(name)
    expires, signature = sign_ref(ref)
    return reverse("studies:signed_image", args=[ref, expires, signature])


def _trial_images(trial: Trial) -> tuple[list[tuple[int, str]], list[tuple[str, str]]]:
    """Signed URLs of a trial's items ``(slot, url)`` and references ``(which, url)``.

    These are the only images of the trial the participant may see: issuing
    the URL is the permission check.
    """
    links = serves_links()
    items = trial.shown_items
    slots = [(item.slot, _signed_url(_item_ref(item), item.image, links)) for item in items]
    references = []
    first = next((item for item in items if item.candidate_id), None)
    if not trial.attention_kind and first is not None:
        if trial.question.show_style:
            references.append(("style", _signed_url(f"s{first.style_id}", first.style_file, links)))
        if trial.question.show_content:
            references.append(("content", _signed_url(f"o{first.content_id}", first.content_file, links)))
    return slots, references


def _trial_context(participant: Participant, state: actions.TrialState) -> dict:
    trial = state.current
    language = participant.language
    question = trial.question
    view = _presentation(trial)
    slots, refs = _trial_images(trial)
    items = [{"slot": slot, "url": url, "label": _("Image %(letter)s") % {"letter": "ABCDEFGHIJ"[slot]}}
             for slot, url in slots]
    ref_labels = {"style": _("Artwork (style)"), "content": _("Original photo")}
    references = [{"url": url, "label": ref_labels[which]} for which, url in refs]
    if trial.attention_kind == Trial.AttentionKind.SCRAMBLED:
        prompt = _("Which image is an intact photograph (not cut into scrambled pieces)?")
    elif trial.attention_kind == Trial.AttentionKind.INSTRUCTED:
        prompt = _("This question checks attention: please select %(value)s.") % {"value": trial.expected["value"]}
    else:
        prompt = question.text(language)
    labels = question.scale_labels.get(language) or question.scale_labels.get("en") or []
    if trial.attention_kind == Trial.AttentionKind.INSTRUCTED or len(labels) != 2:
        labels = [_("Not at all"), _("Completely")] if view["kind"] == Question.Kind.LIKERT else []
    total, done = state.total, state.done
    preload = []
    if state.following is not None:
        next_slots, next_refs = _trial_images(state.following)
        preload = [url for _slot, url in next_slots] + [url for _which, url in next_refs]
    return {
        "trial": trial,
        "kind": view["kind"],
        "prompt": prompt,
        "items": items,
        "references": references,
        "scale": list(range(1, view["points"] + 1)),
        "scale_labels": labels,
        "progress_done": done,
        "progress_total": total,
        "progress_number": min(done + 1, total),
        "is_practice": trial.is_practice,
        "after_practice": (not trial.is_practice) and done == 0,
        "answer_url": reverse("studies:participant_answer", args=[participant.token, trial.position]),
        "preload": preload,
    }


# --- images -----------------------------------------------------------------

#: Signed image URLs are personal (they come from a participant's page).
def _image_cache_control(max_age: int) -> str:
    return f"private, max-age={max(max_age, 0)}, immutable"


def _attention_name(content: ContentImage, seed: int, *, scrambled: bool) -> str:
    """The stored attention-check image of ``content`` at its study's image size, made on first request."""
    size = content.study.image_size
    stem = content.image.name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    suffix = f"x{seed}" if scrambled else "intact"
    name = f"studies/{content.study_id}/attention/{stem}-{size}-{suffix}.png"
    if not default_storage.exists(name):
        png = attention_foil_png(content.image, size=size, seed=seed, scrambled=scrambled)
        saved = default_storage.save(name, ContentFile(png))
        if saved != name:  # made by a concurrent request meanwhile: keep one copy
            default_storage.delete(saved)
    return name


def _ref_file_name(ref: str, *, study_id: int | None = None) -> str:
    """The stored file behind an image reference (one query); Http404 if none."""
    kind, number = ref[:1], ref[1:]
    try:
        if kind == "x":
            content_id, seed = (int(part) for part in number.split("-", 1))
        else:
            content_id, seed = int(number), 0
    except ValueError:
        raise Http404("no such image") from None
    scope = {"study_id": study_id} if study_id is not None else {}
    if kind == "c":
        name = Candidate.objects.filter(pk=content_id, **scope).values_list("image", flat=True).first()
    elif kind == "s":
        name = StyleImage.objects.filter(pk=content_id, **scope).values_list("image", flat=True).first()
    elif kind == "o":
        name = ContentImage.objects.filter(pk=content_id, **scope).values_list("image", flat=True).first()
    elif kind in ("a", "x"):
        # The image's dimension fields are loaded too: a model with a deferred one
        # reads it back from the database on load (one query each).
        content = (ContentImage.objects.filter(pk=content_id, **scope).select_related("study")
                   .only("id", "study_id", "image", "width", "height", "study__image_size").first())
        name = None if content is None else _attention_name(content, seed, scrambled=kind == "x")
    else:
        name = None
    if not name:
        raise Http404("no such image")
    return name


@require_GET
def signed_image(request: HttpRequest, ref: str, expires: int, signature: str) -> HttpResponse:
    """An image a participant's page linked to: the signature is the permission (checked when signed)."""
    max_age = check_signed_ref(ref, expires, signature)
    return deliver(request, _ref_file_name(ref), cache_control=_image_cache_control(max_age))


@require_GET
@participant_view
def participant_image(request: HttpRequest, participant: Participant, position: int, which: str) -> HttpResponse:
    """An image of one of the participant's own trials (names of methods never appear in the URL)."""
    items = {
        item.slot: item
        for item in TrialItem.objects.filter(trial__participant=participant, trial__position=position)
        .select_related("candidate").only(*actions.TRIAL_ITEM_FIELDS)
    }
    if which.isdigit():
        item = items.get(int(which))
        if item is None:
            raise Http404("no such image")
        name = item.candidate.image.name if item.candidate_id else _ref_file_name(
            _item_ref(item), study_id=participant.study_id)
    elif which in ("style", "content"):
        first: Candidate | None = next((i.candidate for i in items.values() if i.candidate_id), None)
        if first is None:
            raise Http404("no reference image")
        ref = f"s{first.style_id}" if which == "style" else f"o{first.content_id}"
        name = _ref_file_name(ref, study_id=participant.study_id)
    else:
        raise Http404("no such image")
    return deliver(request, name, cache_control="private, max-age=3600")


# --- withdrawal -----------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@never_cache
@participant_view
def participant_withdraw(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Withdraw: a confirmation page (GET), then every answer of the participant is deleted (POST)."""
    study = participant.study
    context = _base_context(study, participant.language, participant)
    if request.method == "GET":
        context["withdrawal_text"] = study.text("withdrawal", participant.language)
        return _render(request, "withdraw.html", context)
    if request.POST.get("confirm") != "withdraw":
        return redirect(_session_url(participant))
    # Read before the row goes: someone who finished has nothing to return on the recruitment site.
    had_finished = participant.is_finished
    erasure.do_withdraw(participant)
    # No language links: they would point at the session that no longer exists.
    context.update(participant=None, languages=[], had_finished=had_finished)
    response = _render(request, "withdrawn.html", context)
    sessions = _known_sessions(request)
    if sessions.pop(study.slug, None) is not None:
        _remember_sessions(response, sessions)
    return response
