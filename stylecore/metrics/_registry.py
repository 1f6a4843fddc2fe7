"""The metric registry: one :class:`MetricSpec` per stable metric name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .._registry import Registry

# Filled by the public modules of this package when first looked up, so that
# importing ``stylecore.metrics`` never loads a network or an optional package.
METRICS: Registry[MetricSpec] = Registry("metric", "stylecore.metrics")

# (images, contents, styles) -> (B,) values; refs are None when not needed.
MetricFn = Callable[
    [torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"], torch.Tensor
]


class MetricUnavailable(RuntimeError):
    """A metric cannot run here (missing weights or optional package).

    The message is the full reason, starting with ``"unavailable: "``.
    """


@dataclass(frozen=True)
class MetricSpec:
    """What the library knows about one metric.

    Attributes:
        name: stable lowercase name with hyphens (``"ms-ssim"``).
        base_version: version of the definition; bumped whenever values change.
        needs: reference images the metric compares against, a subset of
            ``("content", "style")``.
        higher_is_better: direction of the score.
        description: the exact definition, with its paper.
        fn: per-image metric ``fn(images, contents, styles) -> (B,)``; ``None``
            for set metrics (see :func:`stylecore.metrics.compute_set`).
        availability: returns ``""`` when the metric can run, else the reason
            (``"unavailable: <file> (fetch with: …)"``); cheap, no model load.
        variant: returns a suffix naming the backbone actually used (e.g. when a
            deeper VGG19 is present), appended to the version.
        kind: ``"image"`` (one value per image) or ``"set"``.
        min_side: the shortest image side the definition applies to (e.g.
            MS-SSIM's five scales need 176 px); smaller images are not scored.
    """

    name: str
    base_version: str
    needs: tuple[str, ...] = ()
    higher_is_better: bool = True
    description: str = ""
    fn: MetricFn | None = field(default=None, repr=False, compare=False)
    availability: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    variant: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    kind: str = "image"
    min_side: int = 0

    @property
    def version(self) -> str:
        """Version string stored with every value (base version + backbone variant)."""
        if self.variant is None:
            return self.base_version
        suffix = self.variant()
        return f"{self.base_version}+{suffix}" if suffix else self.base_version

    def unavailable(self) -> str:
        """``""`` when the metric can run here, else the reason."""
        return self.availability() if self.availability is not None else ""

    def not_applicable(self, height: int, width: int) -> str:
        """``""`` when the metric is defined for an image of this size, else the reason.

        Example:
            >>> get_metric("ms-ssim").not_applicable(170, 256)
            'not applicable: ms-ssim needs a short side of at least 176 px, got 170x256'
        """
        if min(height, width) < self.min_side:
            return f"not applicable: {self.name} needs a short side of at least {self.min_side} px, got {height}x{width}"
        return ""


def register_metric(spec: MetricSpec) -> MetricSpec:
    """Add ``spec``; a different spec under an existing name raises ``ValueError``."""
    if spec.name != spec.name.lower() or "_" in spec.name or " " in spec.name:
        raise ValueError(f"metric names are lowercase with hyphens, got {spec.name!r}")
    return METRICS.register(spec.name, spec)


def available_metrics(kind: str | None = None) -> list[str]:
    """Names of every registered metric (optionally only ``"image"`` or ``"set"``).

    Example:
        >>> "ssim" in available_metrics()
        True
    """
    return [s.name for s in METRICS.values() if kind is None or s.kind == kind]


def get_metric(name: str) -> MetricSpec:
    """The :class:`MetricSpec` of ``name``.

    Raises:
        ValueError: unknown name, with a "Did you mean" suggestion.

    Example:
        >>> get_metric("psnr").higher_is_better
        True
    """
    return METRICS.get(name)


def weights_availability(*weight_names: str) -> Callable[[], str]:
    """An ``availability`` check that every registered weight file resolves."""

    def check() -> str:
        from stylecore.weights import MissingWeightsError, get_spec, resolve

        for wname in weight_names:
            try:
                resolve(wname)
            except MissingWeightsError:
                return missing_weights_reason(get_spec(wname))
        return ""

    return check


def missing_weights_reason(spec: object) -> str:
    """``"unavailable: <file> (fetch with: …)"`` for a weight spec."""
    return (
        f"unavailable: {spec.filename} (fetch with: {spec.fetch_command})"  # type: ignore[attr-defined]
    )
