"""Neural style transfer by optimisation (Gatys, Ecker & Bethge, CVPR 2016).

The image is optimised (L-BFGS or Adam) to match the content image's features
at the content layers and the style image's Gram matrices at the style layers
of a loss network. The default network is VGG19: the full torchvision VGG19
when its file is present (style relu1_1…relu5_1, content relu4_2, as in the
paper), else the offline Caffe VGG19 to relu3_4 (style relu1_1, relu2_1,
relu3_1; content relu3_2). Other backbones plug in through
:func:`register_loss_network` or the ``loss_network`` argument.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from .._checks import check_image
from ._common import check_style_batch
from ._registry import MethodSpec, Param, register_method

__all__ = [
    "GramLoss",
    "LossNetwork",
    "LossNetworkSpec",
    "gatys",
    "gram_matrix",
    "register_loss_network",
]

logger = logging.getLogger(__name__)


class LossNetwork(Protocol):
    """Anything that maps ``(B, 3, H, W)`` RGB in [0, 1] to named activations."""

    def __call__(self, image: torch.Tensor, layers: Sequence[str], *, check: bool = True) -> dict[str, torch.Tensor]:
        ...


@dataclass(frozen=True)
class LossNetworkSpec:
    """A loss-network backbone: a loader and its default layers.

    Attributes:
        load: ``load(device) -> (network, weight names used)``; the network's
            layers are chosen by ``layers(network)``.
        layers: ``layers(network) -> (style_layers, content_layers)``.
    """

    load: Callable[[torch.device], tuple[LossNetwork, list[str]]]
    layers: Callable[[Any], tuple[tuple[str, ...], tuple[str, ...]]]


def _load_vgg19(device: torch.device) -> tuple[LossNetwork, list[str]]:
    from ..models.vgg_caffe import best_vgg19

    # Built outside inference mode: its parameters must serve autograd.
    with torch.inference_mode(False):
        net = best_vgg19(device)
    name = "vgg19-torchvision" if net.convention == "torchvision" else "vgg19-caffe-relu3_4"
    return net, [name]


def _vgg19_layers(net: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if net.last_layer == "relu5_4":
        return ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), ("relu4_2",)
    return ("relu1_1", "relu2_1", "relu3_1"), ("relu3_2",)


_NETWORKS: dict[str, LossNetworkSpec] = {"vgg19": LossNetworkSpec(_load_vgg19, _vgg19_layers)}
_NET_CACHE: dict[tuple[str, str], tuple[LossNetwork, list[str]]] = {}


def register_loss_network(name: str, spec: LossNetworkSpec) -> None:
    """Make a backbone available to :func:`gatys` (e.g. Inception-ResNet-v2 when its weights exist)."""
    if name in _NETWORKS and _NETWORKS[name] is not spec:
        raise ValueError(f"a loss network named {name!r} is already registered")
    _NETWORKS[name] = spec


def _network(name: str, device: torch.device) -> tuple[LossNetwork, list[str], LossNetworkSpec]:
    if name not in _NETWORKS:
        raise ValueError(f"unknown loss network {name!r}; known: {', '.join(sorted(_NETWORKS))}")
    key = (name, str(device))
    if key not in _NET_CACHE:
        _NET_CACHE[key] = _NETWORKS[name].load(device)
    net, weights = _NET_CACHE[key]
    return net, weights, _NETWORKS[name]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``F Fᵀ / (C H W)`` of ``(B, C, H, W)`` features → ``(B, C, C)``.

    Example:
        >>> gram_matrix(torch.ones(1, 2, 3, 3))
        tensor([[[0.5000, 0.5000],
                 [0.5000, 0.5000]]])
    """
    if features.dim() != 4:
        raise ValueError(f"features must have shape (B, C, H, W), got {tuple(features.shape)}")
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


class GramLoss(torch.nn.Module):
    """Sum over layers of the mean squared Gram difference to stored targets.

    ``forward`` raises until :meth:`set_target` was called.

    Example:
        >>> loss = GramLoss()
        >>> loss.set_target({"a": torch.ones(1, 2, 4, 4)})
        >>> float(loss({"a": torch.ones(1, 2, 4, 4)}))
        0.0
    """

    def __init__(self, weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.weights = weights or {}
        self.targets: dict[str, torch.Tensor] | None = None

    def set_target(self, features: dict[str, torch.Tensor]) -> None:
        self.targets = {k: gram_matrix(v).detach() for k, v in features.items()}

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.targets is None:
            raise RuntimeError("GramLoss has no target: call set_target first")
        return sum(
            self.weights.get(k, 1.0) * F.mse_loss(gram_matrix(features[k]), t.expand(features[k].shape[0], -1, -1))
            for k, t in self.targets.items()
        )  # type: ignore[return-value]


ProgressFn = Callable[[int, int, float], None]


def _optimise(
    net: LossNetwork,
    content_targets: dict[str, torch.Tensor],
    style_loss: GramLoss,
    init: torch.Tensor,
    *,
    content_weight: float,
    style_weight: float,
    optimizer: str,
    iterations: int,
    lr: float,
    progress: ProgressFn | None,
) -> torch.Tensor:
    layers = sorted(set(content_targets) | set(style_loss.targets or {}))
    x = init.detach().clone().requires_grad_(True)

    def loss_fn() -> torch.Tensor:
        feats = net(x, layers, check=False)
        c_loss = sum(F.mse_loss(feats[k], t) for k, t in content_targets.items())
        return content_weight * c_loss + style_weight * style_loss(feats)

    with torch.enable_grad():
        if optimizer == "lbfgs":
            # One L-BFGS run without projections in between: clamping the iterate
            # corrupts its curvature pairs and can stall the line search. The
            # result is clamped once at the end, as common reference code does.
            lbfgs = torch.optim.LBFGS(
                [x], lr=1.0, max_iter=iterations, max_eval=iterations * 2, history_size=50,
                line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0,
            )  # fmt: skip
            step = 0

            def closure() -> torch.Tensor:
                nonlocal step
                lbfgs.zero_grad(set_to_none=True)
                loss = loss_fn()
                loss.backward()
                step += 1
                if progress is not None:
                    progress(min(step, iterations), iterations, float(loss.detach()))
                return loss

            lbfgs.step(closure)
        else:
            adam = torch.optim.Adam([x], lr=lr)
            for step in range(1, iterations + 1):
                adam.zero_grad(set_to_none=True)
                loss = loss_fn()
                loss.backward()
                adam.step()
                with torch.no_grad():
                    # Projection back into the image range after each step.
                    x.clamp_(0, 1)
                if progress is not None:
                    progress(step, iterations, float(loss.detach()))
    return x.detach().clamp(0, 1)


def _log_progress(step: int, total: int, loss: float) -> None:
    if step == total or step % max(1, total // 10) == 0:
        logger.info("gatys: step %d/%d loss %.5g", step, total, loss)


def gatys(
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    iterations: int = 200,
    optimizer: str = "lbfgs",
    content_weight: float = 1.0,
    style_weight: float = 1e4,
    init: str = "content",
    lr: float = 0.02,
    seed: int = 0,
    loss_network: str | LossNetwork = "vgg19",
    style_layers: Sequence[str] | None = None,
    content_layers: Sequence[str] | None = None,
    progress: ProgressFn | None = _log_progress,
) -> torch.Tensor:
    """Gatys et al. style transfer by optimising the image.

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1].
        iterations: optimiser steps.
        optimizer: ``"lbfgs"`` or ``"adam"``.
        content_weight, style_weight: loss weights (Grams are normalised by C·H·W).
        init: start from ``"content"`` or ``"noise"`` (uniform, from ``seed``).
        lr: Adam learning rate (L-BFGS uses a line search).
        seed: seed of the noise initialisation.
        loss_network: a registered backbone name or a network.
        style_layers, content_layers: override the backbone's default layers.
        progress: called as ``progress(step, total, loss)`` (default: logging).

    Returns:
        ``(B, 3, H, W)`` in [0, 1].

    Raises:
        ValueError: bad images or parameters.
        MissingWeightsError: the loss network's weights are absent.
    """
    check_image(content, "content")
    check_image(style, "style")
    check_style_batch(content, style)
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    net, s_layers, c_layers = _resolve_network(loss_network, content.device, style_layers, content_layers)
    with torch.no_grad():
        c_targets = {k: v.detach() for k, v in net(content, c_layers).items()}
        style_loss = GramLoss()
        style_loss.set_target(net(style, s_layers))
    start = _initial(content, init, seed)
    return _optimise(net, c_targets, style_loss, start, content_weight=content_weight, style_weight=style_weight,
                     optimizer=optimizer, iterations=iterations, lr=lr, progress=progress)  # fmt: skip


def _resolve_network(
    loss_network: str | LossNetwork,
    device: torch.device,
    style_layers: Sequence[str] | None,
    content_layers: Sequence[str] | None,
) -> tuple[LossNetwork, tuple[str, ...], tuple[str, ...]]:
    if isinstance(loss_network, str):
        net, _, spec = _network(loss_network, device)
        s_default, c_default = spec.layers(net)
    else:
        net = loss_network
        if style_layers is None or content_layers is None:
            raise ValueError("a custom loss network needs style_layers and content_layers")
        s_default, c_default = (), ()
    return net, tuple(style_layers or s_default), tuple(content_layers or c_default)


def _initial(content: torch.Tensor, init: str, seed: int) -> torch.Tensor:
    if init == "content":
        return content.clone()
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.rand(content.shape, generator=g, dtype=content.dtype).to(content.device)


def _split_layers(text: str | None) -> tuple[str, ...] | None:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else None


def _run(content: torch.Tensor, style: torch.Tensor, *, family: str, seed: int, **p: Any) -> torch.Tensor:
    return gatys(
        content, style, iterations=p["iterations"], optimizer=p["optimizer"], content_weight=p["content_weight"],
        style_weight=p["style_weight"], init=p["init"], lr=p["lr"], seed=seed, loss_network=p["network"],
        style_layers=_split_layers(p["style_layers"]), content_layers=_split_layers(p["content_layers"]),
    )  # fmt: skip


def _run_grid(contents: list[torch.Tensor], styles: list[torch.Tensor], *, family: str, seed: int, **p: Any):
    dev = contents[0].device
    net, s_layers, c_layers = _resolve_network(
        p["network"], dev, _split_layers(p["style_layers"]), _split_layers(p["content_layers"])
    )
    with torch.no_grad():
        # Gram targets once per style, content targets once per content.
        style_losses = []
        for s in styles:
            loss = GramLoss()
            loss.set_target(net(s, s_layers))
            style_losses.append(loss)
        c_targets = [{k: v.detach() for k, v in net(c, c_layers).items()} for c in contents]
    out = {}
    for j, s_loss in enumerate(style_losses):
        for i, c in enumerate(contents):
            out[(i, j)] = _optimise(
                net, c_targets[i], s_loss, _initial(c, p["init"], seed), content_weight=p["content_weight"],
                style_weight=p["style_weight"], optimizer=p["optimizer"], iterations=p["iterations"], lr=p["lr"],
                progress=_log_progress,
            )  # fmt: skip
    return out


def _weights(family: str, p: dict[str, Any]) -> list[str]:
    if p["network"] != "vgg19":
        return []
    from ..weights import MissingWeightsError, resolve

    try:
        resolve("vgg19-torchvision")
        return ["vgg19-torchvision"]
    except MissingWeightsError:
        return ["vgg19-caffe-relu3_4"]


def _notes(family: str, p: dict[str, Any]) -> str:
    names = _weights(family, p)
    if names == ["vgg19-caffe-relu3_4"]:
        return "loss network: Caffe VGG19 to relu3_4 (style relu1_1-relu3_1, content relu3_2)"
    return f"loss network: {p['network']}"


SPEC = register_method(
    MethodSpec(
        name="gatys",
        description="Optimisation-based neural style transfer (Gatys et al. 2016) with a VGG19 loss network",
        run=_run,
        run_grid=_run_grid,
        params={
            "iterations": Param("int", 200, minimum=1, maximum=5000, help="optimiser steps"),
            "optimizer": Param("choice", "lbfgs", choices=("lbfgs", "adam"), help="L-BFGS or Adam"),
            "content_weight": Param("float", 1.0, minimum=0.0, help="weight of the content loss"),
            "style_weight": Param("float", 1e4, minimum=0.0, help="weight of the Gram (style) loss"),
            "init": Param("choice", "content", choices=("content", "noise"), help="initial image"),
            "lr": Param("float", 0.02, minimum=1e-5, maximum=1.0, help="Adam learning rate"),
            "network": Param("str", "vgg19", help="loss network backbone (registered name)"),
            "style_layers": Param("str", "", help="comma-separated style layers (default: the backbone's)"),
            "content_layers": Param("str", "", help="comma-separated content layers (default: the backbone's)"),
        },
        families=("",),
        needs_style=True,
        weights=_weights,
        notes=_notes,
        inference_only=False,
    )
)
