"""Driving a participant through a study with Django's test client."""

from __future__ import annotations

from django.urls import reverse

from studies.models import Participant, Trial

from .factories import BACKGROUND_POST


def entry_url(study, **params) -> str:
    url = reverse("studies:participant_entry", args=[study.slug])
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def session_url(token: str) -> str:
    return reverse("studies:participant_session", args=[token])


def consent(client, study, **params) -> Participant:
    response = client.post(entry_url(study), {"decision": "accept", **params})
    assert response.status_code == 302, response.status_code
    token = response["Location"].rstrip("/").split("/")[-1]
    return Participant.objects.get(token=token)


def submit_background(client, participant, **overrides):
    data = {**BACKGROUND_POST, **overrides}
    return client.post(reverse("studies:participant_background", args=[participant.token]), data)


def start(client, participant):
    return client.post(reverse("studies:participant_start", args=[participant.token]))


def answer_for(trial: Trial, *, correct: bool = True) -> dict:
    """POST data answering ``trial`` (attention checks right unless ``correct`` is False)."""
    n = trial.items.count()
    if trial.attention_kind == Trial.AttentionKind.INSTRUCTED:
        value = trial.expected["value"]
        if not correct:
            value = 1 if value != 1 else 2
        return {"value": value, "client_rt_ms": 900}
    if trial.attention_kind == Trial.AttentionKind.SCRAMBLED:
        choice = trial.expected["choice"] if correct else 1 - trial.expected["choice"]
        return {"choice": choice, "client_rt_ms": 900}
    kind = trial.question.kind
    if kind == "likert":
        return {"value": 3, "client_rt_ms": 1200}
    if kind == "2afc":
        return {"choice": 0, "client_rt_ms": 800}
    return {"ranking": ",".join(str(i) for i in reversed(range(n))), "client_rt_ms": 2000}


def answer(client, participant, trial, **kw):
    url = reverse("studies:participant_answer", args=[participant.token, trial.position])
    return client.post(url, answer_for(trial, **kw))


def run_to_end(client, participant, *, stop_after: int | None = None, fail_attention: bool = False) -> Participant:
    """Answer trials in order through the pages (GET shows, POST answers and shows the next step)."""
    answered = 0
    while True:
        page = client.get(session_url(participant.token))
        assert page.status_code == 200
        trial = participant.trials.filter(response__isnull=True).order_by("position").first()
        if trial is None:
            break
        if stop_after is not None and answered >= stop_after:
            break
        response = answer(client, participant, trial, correct=not (fail_attention and trial.attention_kind))
        # Stored: the response is the next step's page (the loop still GETs the session to check it).
        assert response.status_code == 200, response.content[:500]
        answered += 1
    participant.refresh_from_db()
    return participant
