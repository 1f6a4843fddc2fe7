"""Small shared pieces: RNG handling and the (low, high) interval type."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ConfidenceInterval(NamedTuple):
    """A ``(low, high)`` pair, as scipy returns from ``confidence_interval``."""

    low: float
    high: float


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from ``rng`` (a Generator, a seed, or ``None`` for fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def check_confidence_level(confidence_level: float) -> float:
    """Return ``confidence_level`` as a float, or raise if it is not in (0, 1)."""
    level = float(confidence_level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence_level must lie in (0, 1), got {confidence_level!r}")
    return level


def bootstrap_weights(
    n_units: int, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Multiplicities of ``n_units`` units drawn with replacement, per resample.

    Resampling units (participants) with replacement is the same as giving each
    unit a multinomial count; sums weighted by these counts are the resampled
    sums without materialising the resampled rows.

    Returns:
        Array ``(n_resamples, n_units)`` of float counts summing to ``n_units`` per row.
    """
    probs = np.full(n_units, 1.0 / n_units)
    return rng.multinomial(n_units, probs, size=n_resamples).astype(np.float64)
