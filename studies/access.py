"""The one way a participant reaches their own data, and the pseudonymisation of recruiter ids."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import Http404

if TYPE_CHECKING:  # models are imported lazily: logging configuration loads this module early
    from .models import Participant, Study

#: Query parameters that carry a recruiter's participant id (Prolific, generic).
RECRUITER_ID_PARAMS = ("PROLIFIC_PID", "participant_label")
#: Query parameters that identify the recruiter's study and session (not personal).
RECRUITER_STUDY_PARAM = "STUDY_ID"
RECRUITER_SESSION_PARAM = "SESSION_ID"

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def pseudonymise(study: Study, external_id: str) -> str:
    """The keyed hash (HMAC-SHA256) of a recruiter id, per study.

    The key is ``settings.STYLESTUDY_PSEUDONYM_KEY``; the study id is mixed in
    so the same person cannot be linked across studies by the stored value.

    Returns:
        64 hexadecimal characters.
    """
    key = settings.STYLESTUDY_PSEUDONYM_KEY.encode()
    message = f"{study.pk}:{external_id.strip()}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def is_token_shaped(token: object) -> bool:
    """Whether ``token`` could be a participant token (checked before any query)."""
    return isinstance(token, str) and bool(_TOKEN_RE.match(token))


def access_participant_by_token(token: str, *, for_update: bool = False) -> Participant:
    """The participant whose secret token is ``token``, with their study (one query).

    Every participant-facing view goes through here; nothing else looks a
    participant up from request data.

    Raises:
        Http404: malformed or unknown token (the same answer for both, so
            probing learns nothing).
    """
    from .models import Participant

    if not is_token_shaped(token):
        raise Http404("unknown session")
    queryset = Participant.objects.select_related("study")
    if for_update:
        # The participant's row only: the study and group rows are shared by everyone.
        queryset = queryset.select_for_update(of=("self",))
    try:
        return queryset.get(token=token)
    except Participant.DoesNotExist:
        raise Http404("unknown session") from None


_REDACTIONS = [
    (re.compile(r"(/p/)[A-Za-z0-9_-]{8,}"), r"\1<token>"),
    (re.compile("((?:" + "|".join(RECRUITER_ID_PARAMS + (RECRUITER_SESSION_PARAM,)) + r")=)[^&\s\"']*"), r"\1<redacted>"),
]


def redact(text: str) -> str:
    """``text`` with participant tokens and recruiter ids replaced by placeholders."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactParticipantData(logging.Filter):
    """Logging filter that removes tokens and recruiter ids from request log lines.

    Installed on Django's request/server/security loggers so that URLs of
    participant pages never reach a log with their secret parts.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logged as is
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
