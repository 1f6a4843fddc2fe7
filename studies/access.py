"""The one way a participant reaches their own data, and the pseudonymisation of recruiter ids."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.http import Http404

from .models import Participant, Study
from .participant_sql import participant_with_study
from .privacy import TOKEN_RE


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
    return isinstance(token, str) and bool(TOKEN_RE.match(token))


def access_participant_by_token(token: str, *, for_update: bool = False) -> Participant:
    """The participant whose secret token is ``token``, with their study (one query).

    Every participant-facing view goes through here; nothing else looks a
    participant up from request data.

    Raises:
        Http404: malformed or unknown token (the same answer for both, so
            probing learns nothing).
    """
    if not is_token_shaped(token):
        raise Http404("unknown session")
    try:
        # for_update locks the participant's row only: the study row is shared by everyone.
        return participant_with_study(token=token, for_update=for_update)
    except Participant.DoesNotExist:
        raise Http404("unknown session") from None
