"""Shared pieces of the encoder/decoder methods: levels, padding, colour preservation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..io import crop_to, pad_to_multiple
from ..models.autoencoder import (
    FAMILIES,
    family_notes,
    family_weight_names,
    get_family,
    load_decoder,
    load_encoder,
)
from ._registry import Param

FEATURE_FAMILIES: tuple[str, ...] = ("vgg19-wct", "vgg19-cd16x", "vgg19-adain")

# YIQ (NTSC 1953): luminance Y and two chrominance axes, the space Gatys et al.
# (2016, "Preserving color in neural artistic style transfer") use for luminance-only transfer.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135))


@dataclass(frozen=True)
class PaperLevels:
    """The levels a method's paper runs at, and the default drawn from them on a family.

    A default depends only on the family's offline weight set, never on which
    files a worker has: a missing or corrupt file is then an error, not a run
    over fewer levels.

    Attributes:
        levels: the paper's levels, deepest first.
        citation: who uses them (``"Li et al. 2017"``).

    Example:
        >>> wct_paper = PaperLevels((5, 4, 3, 2, 1), "Li et al. 2017")
        >>> wct_paper.on("vgg19-cd16x"), wct_paper.on("vgg19-wct")
        ([5, 4, 3, 2, 1], [3, 2, 1])
    """

    levels: tuple[int, ...]
    citation: str

    def on(self, family: str) -> list[int]:
        """Default levels on ``family``, deepest first: the paper's levels it ships offline,
        else its deepest offline level no deeper than the paper's, else its shallowest."""
        offline = get_family(family).offline_levels
        chosen = [lv for lv in self.levels if lv in offline]
        if chosen:
            return chosen
        below = [lv for lv in sorted(offline, reverse=True) if lv <= max(self.levels)]
        return [below[0] if below else min(offline)]

    def departure(self, family: str) -> str:
        """How the default on ``family`` departs from the paper (empty when it does not)."""
        chosen = self.on(family)
        if chosen == list(self.levels):
            return ""
        offline = get_family(family).offline_levels
        return (
            f"{self.citation} use {_level_names(self.levels)}; family {family} has offline weights only for "
            f"{_level_names(sorted(offline, reverse=True))}, so the default runs {_level_names(chosen)}"
        )


def _level_names(levels: Sequence[int]) -> str:
    return ", ".join(f"relu{lv}_1" for lv in levels)


def parse_levels(text: str | None, family: str, *, default: Sequence[int] | None = None) -> list[int]:
    """Levels to run, deepest first, from ``"3,2,1"`` / ``"relu3_1,relu1_1"``; ``default`` for empty text.

    Raises:
        ValueError: a level the family lacks, unparsable text, or empty text without a default.
    """
    fam = get_family(family)
    if not text:
        if default is None:
            raise ValueError("parameter 'levels': no levels given")
        return sorted(default, reverse=True)
    out = []
    for part in str(text).replace(" ", "").split(","):
        token = part.removeprefix("relu").removesuffix("_1")
        if not token.isdigit() or int(token) not in range(1, 6):
            raise ValueError(f"parameter 'levels': cannot read {part!r}; use e.g. '3,2,1' or 'relu3_1'")
        level = int(token)
        if level not in fam.levels:
            raise ValueError(
                f"parameter 'levels': family {family!r} has no relu{level}_1; it has "
                + ", ".join(f"relu{k}_1" for k in sorted(fam.levels))
            )
        if level in out:
            raise ValueError(f"parameter 'levels': relu{level}_1 is given twice")
        out.append(level)
    return sorted(out, reverse=True)


def parse_floats(text: str | None, name: str, count: int, *, low: float, high: float) -> list[float] | None:
    """Comma-separated floats (``None`` for empty text), each in [low, high]."""
    if not text:
        return None
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"parameter {name!r} must be comma-separated numbers, got {text!r}") from None
    if len(values) != count:
        raise ValueError(f"parameter {name!r} needs {count} values, got {len(values)}: {text!r}")
    for v in values:
        if not low <= v <= high:
            raise ValueError(f"parameter {name!r}: every value must be in [{low}, {high}], got {v}")
    return values


def level_alphas(alpha: float, text: str | None, levels: Sequence[int]) -> list[float]:
    """Per-level strengths: ``text`` (coarse to fine) if given, else ``alpha`` everywhere."""
    per = parse_floats(text, "level_alphas", len(levels), low=0.0, high=1.0)
    return per if per is not None else [float(alpha)] * len(levels)


def check_style_batch(content: torch.Tensor, style: torch.Tensor) -> None:
    if style.shape[0] not in (1, content.shape[0]):
        raise ValueError(
            f"style batch must be 1 or match the content batch {content.shape[0]}, got {style.shape[0]}"
        )


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(_RGB_TO_YIQ, dtype=image.dtype, device=image.device)
    return torch.einsum("ij,bjhw->bihw", m, image)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    m = torch.linalg.inv(torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)).to(yiq)
    return torch.einsum("ij,bjhw->bihw", m, yiq)


def preserve_color(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the content's chrominance and take only the luminance of ``stylised`` (YIQ).

    Example:
        >>> c = torch.rand(1, 3, 8, 8)
        >>> bool(torch.allclose(preserve_color(c, c), c, atol=1e-5))
        True
    """
    y = rgb_to_yiq(stylised)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat((y, iq), dim=1)).clamp(0, 1)


Transform = Callable[[int, int, torch.Tensor], torch.Tensor]


def run_levels(
    content: torch.Tensor,
    family: str,
    levels: Sequence[int],
    alphas: Sequence[float],
    transform: Transform,
    *,
    first_features: torch.Tensor | None = None,
) -> torch.Tensor:
    """Coarse-to-fine encode → transform → blend → decode over ``levels``.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1], H and W multiples of
            ``2^(max(levels)-1)``.
        transform: ``transform(step, level, features) -> features``.
        first_features: the content's features at the first level, when
            already computed (shared across a grid).

    Returns:
        ``(B, 3, H, W)`` in [0, 1].
    """
    x = content
    for step, (level, alpha) in enumerate(zip(levels, alphas)):
        enc = load_encoder(family, level, x.device)
        dec = load_decoder(family, level, x.device)
        fc = first_features if (step == 0 and first_features is not None) else enc(x)
        if fc.shape[0] != x.shape[0]:
            fc = fc.expand(x.shape[0], *fc.shape[1:])
        ft = transform(step, level, fc)
        x = dec(ft if alpha == 1.0 else alpha * ft + (1 - alpha) * fc)
    return x


def pad_for(levels: Sequence[int], image: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    return pad_to_multiple(image, 2 ** (max(levels) - 1))


def unpad(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return crop_to(image, size)


def family_params(*, levels_help: str, alpha_default: float = 1.0) -> dict[str, Param]:
    return {
        "alpha": Param("float", alpha_default, minimum=0.0, maximum=1.0,
                       help="strength: 0 reproduces the content, 1 the full transfer"),
        "levels": Param("str", "", help=levels_help),
        "level_alphas": Param("str", "", help="per-level strengths, coarse to fine, e.g. '1,0.8,0.6' "
                              "(overrides alpha)"),
        "preserve_color": Param("bool", False, help="luminance-only transfer: keep the content's colours"),
    }


def departure_for(paper: PaperLevels) -> Callable[[str, dict[str, Any]], str]:
    """``departure(family, params)``: how the run departs from ``paper`` (only when levels are defaulted)."""

    def departure(family: str, params: dict[str, Any]) -> str:
        return "" if params.get("levels") else paper.departure(family)

    return departure


def weights_for(levels_of: Callable[[str, dict[str, Any]], list[int]]):
    def weights(family: str, params: dict[str, Any]) -> list[str]:
        return family_weight_names(family, levels_of(family, params))

    return weights


def notes_for(family: str, params: dict[str, Any]) -> str:
    return family_notes(family)


__all__ = [
    "FAMILIES",
    "FEATURE_FAMILIES",
    "PaperLevels",
    "check_style_batch",
    "family_params",
    "level_alphas",
    "notes_for",
    "pad_for",
    "parse_floats",
    "parse_levels",
    "preserve_color",
    "run_levels",
    "unpad",
    "weights_for",
]


_GRID_BATCH_PIXELS = 4 * 512 * 512  # images per decoder batch at 512 px; bounds peak memory


def grid_run(
    contents: list[torch.Tensor],
    styles: list[torch.Tensor],
    family: str,
    levels: Sequence[int],
    alphas: Sequence[float],
    prep: Callable[[int, torch.Tensor], Any],
    transform: Callable[[int, int, torch.Tensor, list[Any]], torch.Tensor],
    *,
    preserve: bool = False,
) -> dict[tuple[int, int], torch.Tensor]:
    """Grid driver: style-side ``prep(level, style_features)`` once per style and level,
    the content's first-level features once per content, pairs decoded in batches.

    ``transform(step, level, features (n, C, h, w), preps)`` gets the ``n``
    styles' prepared data in batch order.
    """
    dev = contents[0].device
    prepared = {
        level: [prep(level, load_encoder(family, level, dev)(s)) for s in styles] for level in levels
    }
    out: dict[tuple[int, int], torch.Tensor] = {}
    for i, c in enumerate(contents):
        x, size = pad_for(levels, c)
        fc0 = load_encoder(family, levels[0], dev)(x)
        per_batch = max(1, _GRID_BATCH_PIXELS // (x.shape[-1] * x.shape[-2]))
        for start in range(0, len(styles), per_batch):
            js = list(range(start, min(len(styles), start + per_batch)))

            def step_fn(step: int, level: int, fc: torch.Tensor, js: list[int] = js) -> torch.Tensor:
                return transform(step, level, fc, [prepared[level][j] for j in js])

            res = unpad(
                run_levels(x.expand(len(js), -1, -1, -1), family, levels, alphas, step_fn, first_features=fc0),
                size,
            )
            if preserve:
                res = preserve_color(res, c)
            for k, j in enumerate(js):
                out[(i, j)] = res[k : k + 1]
    return out
