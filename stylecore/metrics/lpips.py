"""LPIPS v0.1 (Zhang et al. 2018) through the ``lpips`` package, without network access.

The package's own constructor downloads the torchvision AlexNet/VGG16 backbone.
Here the package model is built with a random backbone (no download), its
linear heads are loaded from the package's v0.1 files, and the backbone is
loaded strictly from ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``
found in the weights directories or in torchvision's cache
(``$TORCH_HOME/hub/checkpoints``). Without those files the metric reports
itself unavailable.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch

from ..weights import MissingWeightsError, get_spec, resolve
from ..weights.registry import verify_file
from ._common import check_pair
from ._registry import (
    MetricSpec,
    MetricUnavailable,
    missing_weights_reason,
    register_metric,
)

__all__ = ["backbone_path", "lpips_distance", "lpips_model"]

_BACKBONES = {"alex": "alexnet-torchvision", "vgg": "vgg16-torchvision"}


def backbone_path(net: str) -> Path | None:
    """Verified torchvision backbone file for ``net`` (``"alex"``/``"vgg"``), or ``None``."""
    wname = _BACKBONES[net]
    try:
        return resolve(wname)
    except MissingWeightsError:
        pass
    spec = get_spec(wname)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / spec.filename
    if cached.is_file():
        verify_file(spec, cached)
        return cached
    return None


def _availability(net: str):
    def check() -> str:
        if backbone_path(net) is not None:
            return ""
        return missing_weights_reason(get_spec(_BACKBONES[net]))

    return check


def lpips_model(
    net: str = "alex", device: str | torch.device = "cpu", *, backbone: str | os.PathLike | None = None
) -> Any:
    """The ``lpips.LPIPS`` v0.1 model with its backbone loaded from a local file.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        device: where the model goes.
        backbone: torchvision state-dict file of the backbone; by default the
            verified registered file (weights dirs, then torchvision's cache).

    Raises:
        MetricUnavailable: no backbone file, or the ``lpips`` package is absent.
        ValueError: unknown ``net``.
    """
    if net not in _BACKBONES:
        raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
    path = Path(backbone) if backbone is not None else backbone_path(net)
    if path is None:
        raise MetricUnavailable(missing_weights_reason(get_spec(_BACKBONES[net])))
    try:
        import lpips
    except ImportError as exc:
        raise MetricUnavailable("unavailable: the 'lpips' package is not installed") from exc
    import warnings

    with warnings.catch_warnings():
        # torchvision warns about the package's legacy ``pretrained=`` argument.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    heads_file = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    heads = torch.load(heads_file, map_location="cpu", weights_only=True)
    # The heads file holds exactly lin0..linN; ``lins.*`` aliases the same modules
    # and the scaling constants are built in.
    wanted = {k for k in model.state_dict() if k.startswith("lin") and not k.startswith("lins.")}
    if set(heads) != wanted:
        raise RuntimeError(f"LPIPS heads {heads_file} do not fit: has {sorted(heads)}, needs {sorted(wanted)}")
    model.load_state_dict(heads, strict=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    mapped = {}
    for slice_name, block in model.net.named_children():
        for key in block.state_dict():
            mapped[f"{slice_name}.{key}"] = feats.pop(key)
    model.net.load_state_dict(mapped, strict=True)
    # Leftover conv features would mean the file is not this architecture.
    if any(k.endswith("weight") for k in feats):
        raise RuntimeError(f"{path} has feature layers the {net} LPIPS backbone lacks: {sorted(feats)}")
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval().to(device)


@functools.lru_cache(maxsize=4)
def _cached(net: str, device: str) -> Any:
    return lpips_model(net, device)


def lpips_distance(image: torch.Tensor, reference: torch.Tensor, *, net: str = "alex") -> torch.Tensor:
    """LPIPS v0.1 distance per image, ``[0, 1]`` inputs rescaled to ``[-1, 1]``.

    Args:
        image: ``(B, 3, H, W)`` RGB in [0, 1].
        reference: same shape and range.
        net: ``"alex"`` or ``"vgg"``.

    Returns:
        ``(B,)`` distances >= 0.

    Raises:
        MetricUnavailable: the backbone file is absent (see module docstring).
        ShapeError, ValueError: bad or mismatched input.
    """
    check_pair(image, reference)
    model = _cached(net, str(image.device))
    with torch.inference_mode():
        out = model(image.float(), reference.float(), normalize=True)
    return out.flatten().to(image.dtype)


for _net, _label in (("alex", "AlexNet"), ("vgg", "VGG16")):
    register_metric(
        MetricSpec(
            name=f"lpips-{_net}",
            base_version="0.1",
            needs=("content",),
            higher_is_better=False,
            description=(
                f"LPIPS v0.1 (Zhang et al. 2018, lpips package) with the torchvision "
                f"{_label} backbone, between image and content."
            ),
            fn=functools.partial(lambda x, c, s, net: lpips_distance(x, c, net=net), net=_net),
            availability=_availability(_net),
        )
    )
