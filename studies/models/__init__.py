"""Data model of a study (see README "Data model")."""

from .erasure import ErasureRecord
from .participants import (
    BackgroundQuestion,
    Participant,
    ParticipantGroup,
    Response,
    Trial,
    TrialItem,
)
from .reports import StudyReport
from .study import (
    Candidate,
    ContentImage,
    CultureTag,
    MethodConfig,
    MetricValue,
    Question,
    Study,
    StyleImage,
)
from .training import GanTrainingRun

__all__ = [
    "BackgroundQuestion",
    "Candidate",
    "GanTrainingRun",
    "ContentImage",
    "CultureTag",
    "ErasureRecord",
    "MethodConfig",
    "MetricValue",
    "Participant",
    "ParticipantGroup",
    "Question",
    "Response",
    "Study",
    "StyleImage",
    "StudyReport",
    "Trial",
    "TrialItem",
]
