"""The least data the report attempts inference on, without pandas.

One definition for the report (:mod:`studies.analysis.guards`) and for the
go-live checklist (:mod:`studies.checklist`), which warns before a study goes
live when a question can never reach these at full quota.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DesignMinimums:
    """Per group and question, the least data inference is attempted on.

    Attributes:
        min_participants: Participants. The participant bootstrap has only
            ``C(2n-1, n)`` distinct resamples (126 for n = 5), and a variance
            component estimated from fewer levels is mostly noise.
        min_candidates: Distinct candidates rated: the unit of the
            correlations; below ten a correlation's interval spans most of
            ``[-1, 1]`` and the candidate bootstrap is coarse.
        min_ratings_per_candidate: Mean ratings per candidate; at 1.5 about
            half the candidates have two or more raters, the least the noise
            ceiling (split halves of the raters) can work with.
        straight_lining_min_ratings: A participant with at least this many
            ratings in a question, all identical, is reported as straight-lining.
    """

    min_participants: int = 5
    min_candidates: int = 10
    min_ratings_per_candidate: float = 1.5
    straight_lining_min_ratings: int = 5
