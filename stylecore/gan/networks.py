"""CycleGAN networks: ResNet generator, PatchGAN discriminator, conditional generator.

:class:`ResnetGenerator` and :class:`PatchDiscriminator` keep the module layout
of the official CycleGAN code (Zhu et al., ICCV 2017; ``networks.py`` of
junyanz/pytorch-CycleGAN-and-pix2pix), so their ``state_dict`` keys are the
official ones (``model.1.weight`` … ``model.26.bias``): the published
generators (``style_ukiyoe``, ``style_vangogh`` …) load strictly, and
generators trained here load in the official code.

Networks work in the official value range: input and output in [-1, 1]
(``tanh``). :func:`to_gan_range` / :func:`from_gan_range` convert from and to
the library's [0, 1] images.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .._checks import check_shape, check_tensor

__all__ = [
    "ConditionalInstanceNorm2d",
    "ConditionalResnetGenerator",
    "PatchDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "from_gan_range",
    "generator_from_state_dict",
    "init_weights",
    "to_gan_range",
]

NORMS = ("instance", "instance-affine", "batch", "none")


def to_gan_range(x: torch.Tensor) -> torch.Tensor:
    """Map images in [0, 1] to the generator range [-1, 1].

    Example:
        >>> to_gan_range(torch.tensor([0.0, 0.5, 1.0]))
        tensor([-1.,  0.,  1.])
    """
    return x * 2.0 - 1.0


def from_gan_range(y: torch.Tensor) -> torch.Tensor:
    """Map generator output in [-1, 1] to [0, 1], clamped.

    Example:
        >>> from_gan_range(torch.tensor([-1.2, 0.0, 1.0]))
        tensor([0.0000, 0.5000, 1.0000])
    """
    return ((y + 1.0) * 0.5).clamp(0.0, 1.0)


def _norm_layer(norm: str, channels: int) -> nn.Module | None:
    if norm == "instance":
        # The official setting: no affine parameters, no running statistics.
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "instance-affine":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "none":
        return None
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


def _pad(padding: str) -> type[nn.Module] | None:
    if padding == "reflect":
        return nn.ReflectionPad2d
    if padding == "replicate":
        return nn.ReplicationPad2d
    if padding == "zero":
        return None
    raise ValueError(f"padding must be 'reflect', 'replicate' or 'zero', got {padding!r}")


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-[dropout]-conv-norm(x)`` with the official key layout.

    The sub-modules sit in ``self.block`` at the official indices (pad 0,
    conv 1, norm 2, relu 3, [dropout 4], pad, conv, norm).
    """

    def __init__(self, channels: int, norm: str = "instance", dropout: bool = False,
                 padding: str = "reflect") -> None:
        super().__init__()
        bias = norm != "batch"
        pad = _pad(padding)
        layers: list[nn.Module] = []
        for i in range(2):
            if pad is not None:
                layers.append(pad(1))
            layers.append(nn.Conv2d(channels, channels, 3, padding=0 if pad else 1, bias=bias))
            n = _norm_layer(norm, channels)
            if n is not None:
                layers.append(n)
            if i == 0:
                layers.append(nn.ReLU(True))
                if dropout:
                    layers.append(nn.Dropout(0.5))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator (Johnson et al. 2016 layout as used by Zhu et al.).

    ``c7s1-ngf, d2ngf, d4ngf, R4ngf × n_blocks, u2ngf, ungf, c7s1-out, tanh``:
    two stride-2 downsamplings, residual blocks, two transposed-conv
    upsamplings. Input and output are in [-1, 1]; H and W should be
    multiples of 4 for the output to have the input's size.

    Args:
        in_channels: input channels (3 for RGB).
        out_channels: output channels.
        ngf: filters of the first layer (64 in the paper).
        n_blocks: residual blocks (9 for 256 px, 6 for 128 px in the paper).
        norm: ``"instance"`` (official, no affine), ``"instance-affine"``,
            ``"batch"`` or ``"none"``.
        dropout: dropout 0.5 inside the residual blocks.
        padding: ``"reflect"`` (official), ``"replicate"`` or ``"zero"``.

    Example:
        >>> g = ResnetGenerator(ngf=8, n_blocks=2)
        >>> g(torch.zeros(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
        >>> sorted(g.state_dict())[:2]
        ['model.1.bias', 'model.1.weight']
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, norm: str = "instance", dropout: bool = False,
                 padding: str = "reflect") -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if ngf < 1:
            raise ValueError(f"ngf must be >= 1, got {ngf}")
        self.config = {"in_channels": in_channels, "out_channels": out_channels, "ngf": ngf,
                       "n_blocks": n_blocks, "norm": norm, "dropout": dropout,
                       "padding": padding}
        bias = norm != "batch"

        def norm_relu(ch: int) -> list[nn.Module]:
            n = _norm_layer(norm, ch)
            return ([n] if n is not None else []) + [nn.ReLU(True)]

        layers: list[nn.Module] = [nn.ReflectionPad2d(3),
                                   nn.Conv2d(in_channels, ngf, 7, bias=bias), *norm_relu(ngf)]
        for i in range(2):
            mult = 2**i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       *norm_relu(ngf * mult * 2)]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, norm, dropout, padding))
        for i in range(2):
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       *norm_relu(ngf * mult // 2)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` in [-1, 1] → ``(B, out_channels, H, W)`` in [-1, 1]."""
        check_tensor(x, "input")
        check_shape(x, ["B", str(self.config["in_channels"]), "H", "W"], "input")
        return self.model(x)


_BLOCK_KEY = re.compile(r"^model\.(\d+)\.block\.")


def generator_from_state_dict(state_dict: Mapping[str, torch.Tensor], *,
                              norm: str | None = None) -> ResnetGenerator:
    """Build a :class:`ResnetGenerator` matching ``state_dict`` and load it strictly.

    Reads ``ngf``, the channel counts, the number of residual blocks, dropout
    and affine instance norm from the keys and shapes, as the official layout
    fixes them. Keys may carry a ``module.`` prefix (``DataParallel``).
    Running statistics that PyTorch < 0.4 stored for instance-norm layers are
    dropped, as the official loader does.

    Args:
        state_dict: official-layout generator weights.
        norm: force the norm type; ``None`` infers ``"instance"`` or
            ``"instance-affine"`` (batch norm must be named: its keys are
            indistinguishable from old affine instance-norm files).

    Raises:
        ValueError: the keys are not an official ResNet generator layout, or
            strict loading fails (the message lists the mismatching keys).

    Example:
        >>> g = generator_from_state_dict(ResnetGenerator(ngf=4, n_blocks=3).state_dict())
        >>> g.config["n_blocks"], g.config["ngf"]
        (3, 4)
    """
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if "model.1.weight" not in sd:
        raise ValueError(
            "not a CycleGAN ResnetGenerator state dict: no 'model.1.weight' key "
            f"(first keys: {list(sd)[:4]})"
        )
    blocks = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k))})
    first = sd["model.1.weight"]
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    last_conv = max((k for k in sd if k.endswith(".weight") and sd[k].dim() == 4
                     and not _BLOCK_KEY.match(k)), key=lambda k: int(k.split(".")[1]))
    out_channels = int(sd[last_conv].shape[0])
    if norm is None:
        norm = "instance-affine" if "model.2.weight" in sd else "instance"
    if norm.startswith("instance"):
        sd = {k: v for k, v in sd.items()
              if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    dropout = False
    if blocks:
        key = f"model.{blocks[0]}.block.6.weight"
        dropout = key in sd and sd[key].dim() == 4
    g = ResnetGenerator(in_channels, out_channels, ngf, len(blocks), norm, dropout)
    try:
        g.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"generator weights do not match the official layout: {exc}") from exc
    return g


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator (Isola et al. 2017): one logit per overlapping patch.

    With ``n_layers=3`` each output logit sees a 70×70 input patch, the
    discriminator of CycleGAN; a 256×256 input gives a 30×30 logit map. The
    key layout is the official ``NLayerDiscriminator`` one (``model.0`` …).

    Args:
        in_channels: input channels.
        ndf: filters of the first layer.
        n_layers: stride-2 conv layers after the first (3 → 70×70 patches).
        norm: norm after every conv but the first and last (as ``ResnetGenerator``).
        spectral_norm: wrap every convolution in spectral normalisation
            (Miyato et al., ICLR 2018), which bounds the discriminator's
            Lipschitz constant and steadies training.
        n_classes: if > 0, add a domain-classification head (StarGAN, Choi et
            al. 2018): ``forward`` then returns ``(patch_logits, class_logits)``
            with ``class_logits`` of shape ``(B, n_classes)`` averaged over patches.

    Example:
        >>> d = PatchDiscriminator(ndf=8)
        >>> d(torch.zeros(2, 3, 70, 70)).shape
        torch.Size([2, 1, 6, 6])
        >>> src, cls = PatchDiscriminator(ndf=8, n_classes=3)(torch.zeros(2, 3, 64, 64))
        >>> tuple(src.shape), tuple(cls.shape)
        ((2, 1, 6, 6), (2, 3))
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance", spectral_norm: bool = False, n_classes: int = 0) -> None:
        super().__init__()
        self.config = {"in_channels": in_channels, "ndf": ndf, "n_layers": n_layers,
                       "norm": norm, "spectral_norm": spectral_norm, "n_classes": n_classes}
        bias = norm != "batch"

        def conv(cin: int, cout: int, stride: int, use_bias: bool = True) -> nn.Module:
            c = nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=use_bias)
            return _spectral_norm(c) if spectral_norm else c

        def norm_act(ch: int) -> list[nn.Module]:
            n = _norm_layer(norm, ch)
            return ([n] if n is not None else []) + [nn.LeakyReLU(0.2, True)]

        layers: list[nn.Module] = [conv(in_channels, ndf, 2), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [conv(ndf * prev, ndf * mult, stride, bias), *norm_act(ndf * mult)]
        layers.append(conv(ndf * mult, 1, 1))
        self.model = nn.Sequential(*layers)
        self.cls_head = conv(ndf * mult, n_classes, 1) if n_classes > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, H, W)`` in [-1, 1] → ``(B, 1, H', W')`` logits [, ``(B, n_classes)``]."""
        check_tensor(x, "input")
        check_shape(x, ["B", str(self.config["in_channels"]), "H", "W"], "input")
        if self.cls_head is None:
            return self.model(x)
        trunk = self.model[:-1](x)
        return self.model[-1](trunk), self.cls_head(trunk).mean(dim=(2, 3))


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm with one learned scale and shift per domain (Dumoulin et al. 2017).

    ``label`` is ``(B,)`` domain indices or ``(B, n_domains)`` weights (one-hot,
    or a mixture to interpolate between domains).

    Example:
        >>> cin = ConditionalInstanceNorm2d(4, n_domains=3)
        >>> cin(torch.rand(2, 4, 8, 8), torch.tensor([0, 2])).shape
        torch.Size([2, 4, 8, 8])
    """

    def __init__(self, channels: int, n_domains: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
        self.weight = nn.Parameter(torch.ones(n_domains, channels))
        self.bias = nn.Parameter(torch.zeros(n_domains, channels))

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        onehot = _as_onehot(label, self.weight.shape[0]).to(x.dtype)
        gamma = onehot @ self.weight.to(x.dtype)
        beta = onehot @ self.bias.to(x.dtype)
        return self.norm(x) * gamma[:, :, None, None] + beta[:, :, None, None]


def _as_onehot(label: torch.Tensor, n: int) -> torch.Tensor:
    if label.dim() == 1 and not label.is_floating_point():
        if label.numel() and (int(label.min()) < 0 or int(label.max()) >= n):
            raise ValueError(f"domain labels must be in [0, {n - 1}], got {label.tolist()}")
        return nn.functional.one_hot(label, n).float()
    if label.dim() == 2 and label.shape[1] == n:
        return label.float()
    raise ValueError(
        f"label must be (B,) integer indices or (B, {n}) weights, got shape {tuple(label.shape)}"
    )


class _CondBlock(nn.Module):
    def __init__(self, ch: int, n_domains: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3)
        self.norm1 = ConditionalInstanceNorm2d(ch, n_domains)
        self.conv2 = nn.Conv2d(ch, ch, 3)
        self.norm2 = ConditionalInstanceNorm2d(ch, n_domains)

    def forward(self, x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        pad = nn.functional.pad
        h = torch.relu(self.norm1(self.conv1(pad(x, (1, 1, 1, 1), mode="reflect")), onehot))
        return x + self.norm2(self.conv2(pad(h, (1, 1, 1, 1), mode="reflect")), onehot)


class ConditionalResnetGenerator(nn.Module):
    """One ResNet generator for many target domains (the culture-conditioned generator).

    The architecture of :class:`ResnetGenerator`; the target domain enters
    through conditional instance norm in every normalisation layer. StarGAN
    (Choi et al., CVPR 2018) instead concatenates the label as constant input
    channels, but a constant map through a convolution is a per-channel
    constant that the following instance norm subtracts again, so the label
    would reach the network only through the image borders.

    Args:
        n_domains: number of domains (cultures) the generator can target.
        ngf: filters of the first layer.
        n_blocks: residual blocks.

    Example:
        >>> g = ConditionalResnetGenerator(n_domains=3, ngf=4, n_blocks=2)
        >>> g(torch.zeros(2, 3, 16, 16), torch.tensor([0, 2])).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(self, n_domains: int, ngf: int = 64, n_blocks: int = 9) -> None:
        super().__init__()
        if n_domains < 2:
            raise ValueError(f"n_domains must be >= 2, got {n_domains}")
        self.config = {"n_domains": n_domains, "ngf": ngf, "n_blocks": n_blocks}
        self.n_domains = n_domains
        self.stem = nn.Conv2d(3, ngf, 7)
        self.stem_norm = ConditionalInstanceNorm2d(ngf, n_domains)
        self.down = nn.ModuleList([nn.Conv2d(ngf, ngf * 2, 3, 2, 1), nn.Conv2d(ngf * 2, ngf * 4, 3, 2, 1)])
        self.down_norm = nn.ModuleList([ConditionalInstanceNorm2d(ngf * 2, n_domains),
                                        ConditionalInstanceNorm2d(ngf * 4, n_domains)])
        self.blocks = nn.ModuleList([_CondBlock(ngf * 4, n_domains) for _ in range(n_blocks)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, 2, 1, output_padding=1),
                                 nn.ConvTranspose2d(ngf * 2, ngf, 3, 2, 1, output_padding=1)])
        self.up_norm = nn.ModuleList([ConditionalInstanceNorm2d(ngf * 2, n_domains),
                                      ConditionalInstanceNorm2d(ngf, n_domains)])
        self.head = nn.Conv2d(ngf, 3, 7)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in [-1, 1] and ``(B,)``/``(B, n_domains)`` label → ``(B, 3, H, W)``."""
        check_tensor(x, "input")
        check_shape(x, ["B", "3", "H", "W"], "input")
        onehot = _as_onehot(label.to(x.device), self.n_domains)
        if onehot.shape[0] != x.shape[0]:
            raise ValueError(f"label has {onehot.shape[0]} entries for a batch of {x.shape[0]}")
        pad = nn.functional.pad
        h = torch.relu(self.stem_norm(self.stem(pad(x, (3, 3, 3, 3), mode="reflect")), onehot))
        for conv, norm in zip(self.down, self.down_norm):
            h = torch.relu(norm(conv(h), onehot))
        for block in self.blocks:
            h = block(h, onehot)
        for conv, norm in zip(self.up, self.up_norm):
            h = torch.relu(norm(conv(h), onehot))
        return torch.tanh(self.head(pad(h, (3, 3, 3, 3), mode="reflect")))


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise as the CycleGAN paper: conv weights ~ N(0, gain), biases 0, norm scales ~ N(1, gain).

    Uses the global torch generator; seed it first for reproducible weights.
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net
