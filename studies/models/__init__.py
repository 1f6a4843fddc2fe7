"""Data model of a study (see README "Data model")."""

from .erasure import ErasureRecord
from .jobs import Job, JobStatus
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
    SetMetricValue,
    Study,
    StyleImage,
)
from .training import GanTrainingRun

__all__ = [
    "BackgroundQuestion",
    "Candidate",
    "GanTrainingRun",
    "Job",
    "JobStatus",
    "ContentImage",
    "CultureTag",
    "ErasureRecord",
    "MethodConfig",
    "MetricValue",
    "Participant",
    "ParticipantGroup",
    "Question",
    "Response",
    "SetMetricValue",
    "Study",
    "StyleImage",
    "StudyReport",
    "Trial",
    "TrialItem",
]
