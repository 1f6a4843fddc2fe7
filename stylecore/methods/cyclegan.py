"""The ``cyclegan`` method: a trained or published CycleGAN / culture-conditioned generator.

The work is :func:`stylecore.gan.inference.cyclegan_transfer`; this module only
describes it to the methods registry. Without the registry (an older
checkout) importing it registers nothing.
"""

from __future__ import annotations

from typing import Any

import torch

from stylecore.gan.inference import cyclegan_transfer

try:
    from stylecore.methods import MethodSpec, Param, register_method
except ImportError:  # the registry package is not part of this checkout
    register_method = None


def run(content: torch.Tensor, style: torch.Tensor | None = None, *,
        checkpoint: str = "cyclegan-vintagify-a2b", target_culture: str | None = None,
        device: str | torch.device = "cpu", **_: Any) -> torch.Tensor:
    """``(B, 3, H, W)`` content in [0, 1] → translated images; ``style`` is unused."""
    return cyclegan_transfer(content, checkpoint, target_culture=target_culture or None,
                             device=device)


if register_method is not None:
    register_method(
        MethodSpec(
            name="cyclegan",
            description=(
                "CycleGAN (Zhu et al. 2017) or culture-conditioned generator: translates "
                "content to the style it was trained on; needs no style image"
            ),
            params={
                "checkpoint": Param(
                    "str", "cyclegan-vintagify-a2b", None, None, None,
                    "generator file (official CycleGAN layout, G_A2B.pth, "
                    "generator_conditional.pt, latest.pt) or weights-registry name",
                ),
                "target_culture": Param(
                    "str", None, None, None, None,
                    "target culture of a conditional generator (or the domain name "
                    "selecting the direction of a CycleGAN training checkpoint)",
                ),
            },
            families=("gan",),
            needs_style=False,
            run=run,
        )
    )
