"""Participant tokens and recruiter ids: how they look, how tokens are made, how both stay out of logs.

No models here: the logging configuration loads this module before Django's
apps are ready.
"""

from __future__ import annotations

import logging
import re
import secrets

#: Characters of a participant token (URL-safe base64).
TOKEN_ALPHABET = r"[A-Za-z0-9_-]"
#: A well-formed token: ``secrets.token_urlsafe(32)`` gives 43 characters.
TOKEN_PATTERN = TOKEN_ALPHABET + "{20,64}"
TOKEN_RE = re.compile(f"^{TOKEN_PATTERN}$")

#: Query parameters that carry a recruiter's participant id (Prolific, generic).
RECRUITER_ID_PARAMS = ("PROLIFIC_PID", "participant_label")
#: Query parameters that identify the recruiter's study and session (not personal).
RECRUITER_STUDY_PARAM = "STUDY_ID"
RECRUITER_SESSION_PARAM = "SESSION_ID"


def new_participant_token() -> str:
    """An unguessable URL-safe token (256 bits), never a database id."""
    return secrets.token_urlsafe(32)


_REDACTIONS = [
    (re.compile(f"(/p/){TOKEN_ALPHABET}{{8,}}"), r"\1<token>"),
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
