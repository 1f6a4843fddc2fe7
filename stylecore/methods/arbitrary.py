"""Fast arbitrary style transfer with the feed-forward network of Ghiasi et al. (2017), via ONNX Runtime.

"Exploring the structure of a real-time, arbitrary neural artistic stylization
network" (BMVC 2017): a style-prediction network maps a 256×256 style image to a
100-d embedding, and a transformer network stylises the content conditioned on
it. The exported transformer takes 384×384 input, so the content is resized to
that, stylised and resized back. ``alpha`` interpolates the style embedding with
the content image's own embedding (the paper's strength control).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_image, check_range
from ._common import check_style_batch, preserve_color
from ._registry import MethodSpec, Param, register_method

__all__ = ["arbitrary_stylize", "style_embedding"]

_PREDICT = "magenta-arbitrary-predict"
_TRANSFORM = "magenta-arbitrary-transform"
_STYLE_SIZE = 256
_CONTENT_SIZE = 384
_SESSIONS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def _session(name: str, device: torch.device) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - the dependency is installed in the project
        raise RuntimeError("the 'arbitrary' method needs onnxruntime: pip install onnxruntime") from exc
    from ..weights import resolve

    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    key = (name, ",".join(providers))
    with _LOCK:
        if key not in _SESSIONS:
            options = ort.SessionOptions()
            # Deterministic, reproducible numerics over raw speed.
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            _SESSIONS[key] = ort.InferenceSession(str(resolve(name)), options, providers=providers)
        return _SESSIONS[key]


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def _nhwc(image: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(image.detach().float().permute(0, 2, 3, 1).cpu().numpy())


def style_embedding(style: torch.Tensor) -> torch.Tensor:
    """100-d style embeddings ``(B, 100)`` of ``(B, 3, H, W)`` images in [0, 1] (resized to 256×256).

    Raises:
        MissingWeightsError: the ONNX file is absent.
    """
    check_image(style, "style")
    sess = _session(_PREDICT, style.device)
    name = sess.get_inputs()[0].name
    out = [sess.run(None, {name: _nhwc(_resize(style[b : b + 1], (_STYLE_SIZE, _STYLE_SIZE)))})[0]
           for b in range(style.shape[0])]  # fmt: skip
    return torch.from_numpy(np.concatenate(out).reshape(style.shape[0], -1)).to(style.device)


def _transform(content: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    sess = _session(_TRANSFORM, content.device)
    inputs = sess.get_inputs()
    outs = []
    for b in range(content.shape[0]):
        x = _resize(content[b : b + 1], (_CONTENT_SIZE, _CONTENT_SIZE))
        e = embedding[min(b, embedding.shape[0] - 1)].detach().float().cpu().numpy().reshape(1, 1, 1, -1)
        y = sess.run(None, {inputs[0].name: _nhwc(x), inputs[1].name: e})[0]
        y = torch.from_numpy(y).permute(0, 3, 1, 2).to(content)
        outs.append(_resize(y.clamp(0, 1), tuple(content.shape[-2:])))
    return torch.cat(outs)


def arbitrary_stylize(
    content: torch.Tensor, style: torch.Tensor, *, alpha: float = 1.0, preserve_colors: bool = False
) -> torch.Tensor:
    """Feed-forward arbitrary style transfer (Ghiasi et al. 2017).

    Args:
        content: ``(B, 3, H, W)`` in [0, 1].
        style: ``(1 or B, 3, Hs, Ws)`` in [0, 1].
        alpha: style-embedding interpolation (0 = the content's own embedding).
        preserve_colors: luminance-only transfer.

    Returns:
        ``(B, 3, H, W)`` in [0, 1].

    Raises:
        MissingWeightsError: the ONNX files are absent.
    """
    check_image(content, "content")
    check_image(style, "style")
    check_style_batch(content, style)
    check_range(alpha, "alpha", 0.0, 1.0)
    emb = style_embedding(style)
    if alpha < 1.0:
        emb = alpha * emb + (1 - alpha) * style_embedding(content)
    out = _transform(content, emb)
    return preserve_color(out, content) if preserve_colors else out


def _run(content: torch.Tensor, style: torch.Tensor, *, family: str, seed: int, **p: Any) -> torch.Tensor:
    return arbitrary_stylize(content, style, alpha=p["alpha"], preserve_colors=p["preserve_color"])


def _run_grid(contents: list[torch.Tensor], styles: list[torch.Tensor], *, family: str, seed: int, **p: Any):
    # Style embeddings once per style (and content embeddings once per content when blending).
    s_emb = [style_embedding(s) for s in styles]
    c_emb = [style_embedding(c) for c in contents] if p["alpha"] < 1.0 else None
    out = {}
    for j, se in enumerate(s_emb):
        for i, c in enumerate(contents):
            emb = se if c_emb is None else p["alpha"] * se + (1 - p["alpha"]) * c_emb[i]
            res = _transform(c, emb)
            out[(i, j)] = preserve_color(res, c) if p["preserve_color"] else res
    return out


SPEC = register_method(
    MethodSpec(
        name="arbitrary",
        description="Fast arbitrary style transfer network (Ghiasi et al. 2017), ONNX Runtime",
        run=_run,
        run_grid=_run_grid,
        params={
            "alpha": Param("float", 1.0, minimum=0.0, maximum=1.0,
                           help="interpolates the style embedding with the content's own"),
            "preserve_color": Param("bool", False, help="luminance-only transfer: keep the content's colours"),
        },
        families=("magenta-arbitrary",),
        needs_style=True,
        weights=lambda family, p: [_PREDICT, _TRANSFORM],
        notes=lambda family, p: "transformer runs at 384x384 (the exported size); output resized back",
    )
)
