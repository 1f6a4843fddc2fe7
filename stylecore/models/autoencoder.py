"""VGG19-shaped encoders and matching decoders for feature-space style transfer.

A *family* is a set of encoder/decoder pairs, one per level ``reluK_1``
(K = 1 … 5), trained together:

- ``vgg19-wct``: the normalised VGG19 and the feature inverters of Li et al.
  (NeurIPS 2017); relu1_1–relu3_1 offline, relu4_1/relu5_1 when present.
- ``vgg19-cd16x``: the 16×-compressed VGG19 of Wang et al. (CVPR 2020), distilled
  from VGG19: an approximation of it, relu1_1–relu5_1 offline.
- ``vgg19-adain``: the official AdaIN encoder (normalised VGG19 cut at relu4_1)
  and decoder (Huang & Belongie, ICCV 2017), fetched with internet.

All take RGB in [0, 1] (a first 1×1 convolution maps it to BGR×255 minus the
ImageNet mean), use reflection padding and 2×2 ceil-mode max-pooling; decoders
upsample by nearest neighbour and their output is clamped to [0, 1].
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_image

__all__ = [
    "FAMILIES",
    "Family",
    "VGGDecoder",
    "VGGEncoder",
    "available_levels",
    "family_notes",
    "family_weight_names",
    "load_decoder",
    "load_encoder",
]

# VGG19 convolutions up to reluK_1 ("P" = 2x2 max-pool), named "conv<block><index>".
_ENC_OPS: dict[int, tuple[str, ...]] = {
    1: ("conv11",),
    2: ("conv11", "conv12", "P", "conv21"),
    3: ("conv11", "conv12", "P", "conv21", "conv22", "P", "conv31"),
    4: ("conv11", "conv12", "P", "conv21", "conv22", "P", "conv31", "conv32", "conv33", "conv34",
        "P", "conv41"),
    5: ("conv11", "conv12", "P", "conv21", "conv22", "P", "conv31", "conv32", "conv33", "conv34",
        "P", "conv41", "conv42", "conv43", "conv44", "P", "conv51"),
}  # fmt: skip
_VGG_WIDTH = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def _decoder_ops(level: int) -> tuple[str, ...]:
    """The mirror of the encoder: the conv that reads reluK_1 first, upsampling where it pooled."""
    enc = _ENC_OPS[level]
    return tuple("U" if op == "P" else op for op in reversed(enc))


@dataclass(frozen=True)
class Family:
    """An encoder/decoder family.

    Attributes:
        name: family name.
        levels: ``level -> (encoder weight name, decoder weight name)``.
        widths: channels of each VGG block (block -> channels).
        offline_levels: levels whose files are in the offline weight set; method
            defaults are drawn from these so that a default never depends on
            which files a worker happens to have (a missing one is an error).
        notes: caveat recorded in provenance.
    """

    name: str
    levels: dict[int, tuple[str, str]]
    widths: dict[int, int]
    offline_levels: tuple[int, ...]
    notes: str = ""


FAMILIES: dict[str, Family] = {
    "vgg19-wct": Family(
        "vgg19-wct",
        {k: (f"wct-encoder-relu{k}_1", f"wct-decoder-relu{k}_1") for k in range(1, 6)},
        dict(_VGG_WIDTH),
        offline_levels=(1, 2, 3),
    ),
    "vgg19-cd16x": Family(
        "vgg19-cd16x",
        {k: (f"cd16x-encoder-relu{k}_1", f"cd16x-decoder-relu{k}_1") for k in range(1, 6)},
        {1: 16, 2: 32, 3: 64, 4: 128, 5: 128},
        offline_levels=(1, 2, 3, 4, 5),
        notes="vgg19-cd16x: distilled approximation of VGG19 (16x compressed, Wang et al. CVPR 2020), "
        "not VGG19 itself",
    ),
    "vgg19-adain": Family(
        "vgg19-adain",
        {4: ("adain-vgg-normalised", "adain-decoder")},
        dict(_VGG_WIDTH),
        offline_levels=(4,),
    ),
}


def get_family(name: str) -> Family:
    """The :class:`Family` called ``name``.

    Raises:
        ValueError: unknown family.
    """
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown encoder family {name!r}; known: {', '.join(FAMILIES)}") from None


def _block(name: str) -> int:
    return int(name[4])


class VGGEncoder(nn.Module):
    """VGG19 prefix up to ``relu<level>_1`` with the normalised-input 1×1 conv.

    Args:
        level: 1 … 5.
        widths: channels per block (block -> channels); the first level's
            width may differ (``first_width``), as in the distilled relu1_1 file.
        first_width: width of ``conv11`` when it differs from ``widths[1]``.
        aux: distillation-only 1×1 convs present in some files (``"conv11_aux"
            -> (in, out)``); kept so the files load strictly, never used.

    Example:
        >>> enc = VGGEncoder(2, {1: 8, 2: 16})
        >>> tuple(enc(torch.rand(1, 3, 17, 20)).shape)
        (1, 16, 9, 10)
    """

    def __init__(
        self,
        level: int,
        widths: dict[int, int],
        *,
        first_width: int | None = None,
        aux: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        super().__init__()
        if level not in _ENC_OPS:
            raise ValueError(f"level must be 1..5, got {level}")
        self.level = level
        self.ops = _ENC_OPS[level]
        self.conv0 = nn.Conv2d(3, 3, 1)
        self.convs = nn.ModuleDict()
        in_ch = 3
        for op in self.ops:
            if op == "P":
                continue
            out_ch = first_width if (op == "conv11" and first_width) else widths[_block(op)]
            self.convs[op] = nn.Conv2d(in_ch, out_ch, 3)
            in_ch = out_ch
        self.out_channels = in_ch
        self.aux = nn.ModuleDict({k: nn.Conv2d(i, o, 1) for k, (i, o) in (aux or {}).items()})
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def multiple(self) -> int:
        """Input H and W must be multiples of this for exact decoder shapes."""
        return 2 ** (self.level - 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` RGB in [0, 1] → ``(B, C, ⌈H/2^(L-1)⌉, ⌈W/2^(L-1)⌉)`` features."""
        x = self.conv0(image)
        for op in self.ops:
            if op == "P":
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            else:
                x = F.relu(self.convs[op](F.pad(x, (1, 1, 1, 1), mode="reflect")))
        return x


class VGGDecoder(nn.Module):
    """Inverse of :class:`VGGEncoder`: features at ``relu<level>_1`` → RGB in [0, 1].

    Args:
        level: 1 … 5.
        widths: channels per block; ``in_width`` overrides the input width.
        final_relu: the distilled decoders end in a ReLU (the output is
            clamped to [0, 1] either way).

    Example:
        >>> dec = VGGDecoder(2, {1: 8, 2: 16})
        >>> tuple(dec(torch.rand(1, 16, 8, 8)).shape)
        (1, 3, 16, 16)
    """

    def __init__(
        self, level: int, widths: dict[int, int], *, in_width: int | None = None, final_relu: bool = False
    ) -> None:
        super().__init__()
        self.level = level
        self.ops = _decoder_ops(level)
        self.final_relu = final_relu
        self.convs = nn.ModuleDict()
        in_ch = in_width or widths[level]
        convs = [op for op in self.ops if op != "U"]
        for k, op in enumerate(convs):
            if k + 1 < len(convs):
                # A conv's output feeds the next conv in the decoder: its width is that of the
                # encoder layer before it (conv44 -> 512 in block 4, conv41 -> block 3's width).
                nxt = convs[k + 1]
                out_ch = widths[_block(nxt)]
            else:
                out_ch = 3
            self.convs[op] = nn.Conv2d(in_ch, out_ch, 3)
            in_ch = out_ch
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` features → ``(B, 3, h·2^(L-1), w·2^(L-1))`` in [0, 1]."""
        x = features
        convs = [op for op in self.ops if op != "U"]
        for op in self.ops:
            if op == "U":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                continue
            x = self.convs[op](F.pad(x, (1, 1, 1, 1), mode="reflect"))
            if op != convs[-1] or self.final_relu:
                x = F.relu(x)
        return x.clamp(0, 1)


_INDEX_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


def _sequential_to_named(state: dict[str, torch.Tensor], names: list[str], *, what: str) -> dict[str, torch.Tensor]:
    """Map an ``nn.Sequential`` state dict (``"2.weight"`` …) onto conv names in layer order.

    Files that go deeper than needed (the AdaIN VGG holds all of VGG19) keep
    their extra layers unused; every needed layer must be present.
    """
    indices = sorted({int(m.group(1)) for k in state if (m := _INDEX_KEY.match(k))})
    bad = [k for k in state if not _INDEX_KEY.match(k)]
    if bad:
        raise ValueError(f"{what}: unexpected keys {bad[:5]} in an nn.Sequential weight file")
    if len(indices) < len(names):
        raise ValueError(f"{what}: file has {len(indices)} conv layers, {len(names)} are needed")
    out = {}
    for idx, name in zip(indices, names):
        out[f"{name}.weight"] = state[f"{idx}.weight"]
        out[f"{name}.bias"] = state[f"{idx}.bias"]
    return out


def _build_encoder(family: Family, level: int, state: dict) -> VGGEncoder:
    what = f"{family.name} encoder relu{level}_1"
    if family.name == "vgg19-cd16x":
        state = state["model"] if "model" in state else state
        aux = {k[: -len(".weight")]: (v.shape[1], v.shape[0]) for k, v in state.items()
               if "_aux" in k and k.endswith(".weight")}  # fmt: skip
        enc = VGGEncoder(level, family.widths, first_width=state["conv11.weight"].shape[0], aux=aux)
        mapped = {}
        for k, v in state.items():
            mapped[k if k.startswith("conv0.") else ("aux." + k if "_aux" in k else "convs." + k)] = v
    else:
        names = ["conv0"] + [op for op in _ENC_OPS[level] if op != "P"]
        named = _sequential_to_named(state, names, what=what)
        enc = VGGEncoder(level, family.widths)
        mapped = {(k if k.startswith("conv0.") else "convs." + k): v for k, v in named.items()}
    enc.load_state_dict(mapped, strict=True)
    return enc


def _build_decoder(family: Family, level: int, state: dict) -> VGGDecoder:
    what = f"{family.name} decoder relu{level}_1"
    if family.name == "vgg19-cd16x":
        state = state["model"] if "model" in state else state
        dec = VGGDecoder(level, family.widths, in_width=state[f"conv{level}1.weight"].shape[1], final_relu=True)
        if level == 1:
            # The relu1_1 pair is wider than the rest of the family (24 channels).
            dec = VGGDecoder(1, {1: state["conv11.weight"].shape[1]}, final_relu=True)
        mapped = {"convs." + k: v for k, v in state.items()}
    else:
        names = [op for op in _decoder_ops(level) if op != "U"]
        named = _sequential_to_named(state, names, what=what)
        dec = VGGDecoder(level, family.widths)
        mapped = {"convs." + k: v for k, v in named.items()}
    dec.load_state_dict(mapped, strict=True)
    return dec


_CACHE: dict[tuple[str, str, int, str], nn.Module] = {}
_LOCK = threading.Lock()


def _load(kind: str, family: str, level: int, device: str | torch.device) -> nn.Module:
    from ..weights import load_state_dict

    fam = get_family(family)
    if level not in fam.levels:
        raise ValueError(
            f"family {family!r} has no relu{level}_1 level; it has "
            + ", ".join(f"relu{k}_1" for k in sorted(fam.levels))
        )
    dev = torch.device(device)
    key = (kind, family, level, str(dev))
    with _LOCK:
        if key not in _CACHE:
            enc_name, dec_name = fam.levels[level]
            # Built outside inference mode so cached weights also serve autograd users.
            with torch.inference_mode(False):
                state = load_state_dict(enc_name if kind == "encoder" else dec_name)
                build = _build_encoder if kind == "encoder" else _build_decoder
                _CACHE[key] = build(fam, level, state).eval().to(dev)
        return _CACHE[key]


def load_encoder(family: str, level: int, device: str | torch.device = "cpu") -> VGGEncoder:
    """The cached, verified encoder of ``family`` at ``relu<level>_1``.

    Raises:
        ValueError: unknown family or level.
        MissingWeightsError: the file is absent (the message says how to fetch it).
    """
    return _load("encoder", family, level, device)  # type: ignore[return-value]


def load_decoder(family: str, level: int, device: str | torch.device = "cpu") -> VGGDecoder:
    """The cached, verified decoder of ``family`` at ``relu<level>_1`` (see :func:`load_encoder`)."""
    return _load("decoder", family, level, device)  # type: ignore[return-value]


def available_levels(family: str) -> list[int]:
    """Levels of ``family`` whose encoder and decoder files are present and verified.

    Raises:
        ChecksumMismatchError: a file that is present is corrupt. A corrupt file
            is never reported as absent: that would silently change which levels
            a default run uses.
    """
    from ..weights import MissingWeightsError, resolve

    fam = get_family(family)
    out = []
    for level, names in sorted(fam.levels.items()):
        try:
            for n in names:
                resolve(n)
        except MissingWeightsError:
            continue
        out.append(level)
    return out


def family_weight_names(family: str, levels: list[int]) -> list[str]:
    """Weight names a run over ``levels`` of ``family`` uses (for provenance)."""
    fam = get_family(family)
    return [n for level in sorted(set(levels)) for n in fam.levels[level]]


def family_notes(family: str) -> str:
    """The provenance caveat of ``family`` (empty if none)."""
    return get_family(family).notes


def encode(image: torch.Tensor, family: str, level: int) -> torch.Tensor:
    """Features of ``(B, 3, H, W)`` in [0, 1] at ``relu<level>_1`` (H, W padded by the caller)."""
    check_image(image)
    return load_encoder(family, level, image.device)(image)
