"""The ``cyclegan`` method: a trained or published CycleGAN / culture-conditioned generator.

The work is :func:`stylecore.gan.inference.cyclegan_transfer`; this module only
describes it to the methods registry. Without the registry (an older
checkout) importing it registers nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from stylecore.gan.inference import cyclegan_transfer

try:
    from stylecore.methods import MethodSpec, Param, register_method
except ImportError:  # the registry package is not part of this checkout
    register_method = None

DEFAULT_CHECKPOINT = "cyclegan-vintagify-a2b"


def _run(content: torch.Tensor, style: torch.Tensor | None = None, *, family: str = "",
         seed: int = 0, checkpoint: str = DEFAULT_CHECKPOINT,
         target_culture: str | None = None, checkpoint_sha256: str | None = None,
         **_: Any) -> torch.Tensor:
    # ``style`` is unused: the generator's training collection is the style.
    if checkpoint_sha256:
        verify_checkpoint(checkpoint, checkpoint_sha256)
    return cyclegan_transfer(content, checkpoint, target_culture=target_culture or None)


def verify_checkpoint(checkpoint: str | Path, expected_sha256: str) -> None:
    """Refuse a generator file whose SHA-256 is not ``expected_sha256``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: its content changed (the message gives both hashes).
    """
    from stylecore.weights import sha256_file

    path = Path(str(checkpoint)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"generator checkpoint {path} does not exist")
    actual = sha256_file(path)
    if actual != expected_sha256.lower():
        raise ValueError(
            f"generator checkpoint {path} has SHA-256 {actual}, expected {expected_sha256}: "
            "the file changed since this method was configured"
        )


def _weights(family: str, params: dict[str, Any]) -> list[str]:
    # Registry names are recorded with their SHA-256; files are described in the notes.
    ckpt = str(params["checkpoint"])
    return [] if Path(ckpt).expanduser().is_file() else [ckpt]


def _notes(family: str, params: dict[str, Any]) -> str:
    ckpt = Path(str(params["checkpoint"])).expanduser()
    if not ckpt.is_file():
        return ""
    from stylecore.weights import sha256_file

    return f"generator file {ckpt.resolve()} (SHA-256 {sha256_file(ckpt)})"


if register_method is not None:
    SPEC = register_method(
        MethodSpec(
            name="cyclegan",
            description=(
                "CycleGAN (Zhu et al. 2017) or culture-conditioned generator: translates "
                "content to the style it was trained on; needs no style image"
            ),
            run=_run,
            params={
                "checkpoint": Param(
                    "str", DEFAULT_CHECKPOINT,
                    help="generator file (official CycleGAN layout, G_A2B.pth, "
                         "generator_conditional.pt, latest.pt) or weights-registry name",
                ),
                "checkpoint_sha256": Param(
                    "str", None,
                    help="expected SHA-256 of the generator file; a file that differs is refused",
                ),
                "target_culture": Param(
                    "str", None,
                    help="target culture of a conditional generator (or the domain name "
                         "selecting the direction of a CycleGAN training checkpoint)",
                ),
            },
            families=("",),
            needs_style=False,
            weights=_weights,
            notes=_notes,
        )
    )
