"""Apply a CycleGAN or culture-conditioned generator to ``(B, 3, H, W)`` images in [0, 1].

Accepted checkpoints:

- a weights-registry name (``cyclegan-vintagify-a2b``, ``cyclegan-style-ukiyoe`` …);
- an official-layout generator file (``latest_net_G_A.pth``, ``style_*.pth``,
  or ``G_A2B.pth`` written by :func:`~stylecore.gan.train.train_gan`);
- ``generator_conditional.pt`` written by :func:`~stylecore.gan.train.train_gan`;
- a training checkpoint ``latest.pt`` (CycleGAN: ``target_culture`` picks the
  direction by domain name, default A→B; conditional: as above).

Loaded generators are cached per process (a few at most), keyed by file,
modification time and device.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_image
from .._registry import did_you_mean
from ..io import crop_to, pad_to_multiple
from .networks import (
    ConditionalResnetGenerator,
    from_gan_range,
    generator_from_state_dict,
    to_gan_range,
)
from .train import CHECKPOINT_FORMAT, CONDITIONAL_FORMAT

__all__ = ["LoadedGenerator", "clear_generator_cache", "cyclegan_transfer", "load_generator"]

_CACHE_SIZE = 4
_CACHE: OrderedDict[tuple[Any, ...], LoadedGenerator] = OrderedDict()


class LoadedGenerator:
    """A generator ready for inference.

    Attributes:
        net: the network (eval mode), input/output in [-1, 1].
        domains: target names for a conditional generator (label order), the
            ``(A, B)`` names for a CycleGAN training checkpoint, else ``()``.
        conditional: whether ``net`` takes a domain label.
        source: the file it came from.
        reverse: the B→A generator of a CycleGAN training checkpoint, else ``None``.
    """

    def __init__(self, net: nn.Module, domains: tuple[str, ...], conditional: bool,
                 source: Path, reverse: nn.Module | None = None) -> None:
        self.net, self.domains, self.conditional, self.source = net, domains, conditional, source
        self.reverse = reverse

    def modules(self) -> list[nn.Module]:
        return [self.net] + ([self.reverse] if self.reverse is not None else [])

    def select(self, target_culture: str | None) -> nn.Module:
        """The network that maps to ``target_culture`` (conditional: the shared one).

        Raises:
            ValueError: ``target_culture`` is unknown, missing for a conditional
                generator, or given for a single-direction generator.
        """
        if self.conditional:
            if target_culture is None:
                raise ValueError(
                    f"{self.source} is a conditional generator: pass target_culture, one of "
                    f"{list(self.domains)}"
                )
            _domain_index(self.domains, target_culture, self.source)
            return self.net
        if target_culture is None:
            return self.net
        if self.reverse is None:
            raise ValueError(
                f"{self.source} is a single-direction generator; target_culture="
                f"{target_culture!r} applies only to conditional generators and CycleGAN "
                "training checkpoints"
            )
        return (self.reverse, self.net)[_domain_index(self.domains, target_culture, self.source)]

    def __repr__(self) -> str:
        kind = "conditional" if self.conditional else "cyclegan"
        return f"LoadedGenerator({kind}, domains={list(self.domains)}, source={str(self.source)!r})"


def _resolve(checkpoint: str | os.PathLike) -> Path:
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return path
    text = str(checkpoint)
    if os.sep not in text and not path.suffix:
        from .. import weights

        return weights.resolve(text)  # raises naming the file and the fetch command
    raise FileNotFoundError(f"generator checkpoint {path} does not exist")


def _domain_index(domains: tuple[str, ...], name: str, source: Path) -> int:
    if name in domains:
        return domains.index(name)
    hint = did_you_mean(name, domains)
    raise ValueError(f"target culture {name!r} is not one of {list(domains)} in {source}.{hint}")


def _build(path: Path) -> LoadedGenerator:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise ValueError(f"cannot read generator checkpoint {path}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict")
    if obj.get("format") == CHECKPOINT_FORMAT:
        domains, cfg = tuple(obj["domains"]), obj["config"]
        nets = obj["trainer"]["nets"]
        if cfg["model"] == "conditional":
            obj = {"format": CONDITIONAL_FORMAT, "domains": list(domains),
                   "config": {"n_domains": len(domains), "ngf": cfg["ngf"],
                              "n_blocks": cfg["n_blocks"]},
                   "state_dict": nets["G"]}
        else:
            g_ab = generator_from_state_dict(nets["G_AB"], norm=cfg["norm"]).eval()
            g_ba = generator_from_state_dict(nets["G_BA"], norm=cfg["norm"]).eval()
            return LoadedGenerator(g_ab, domains, False, path, reverse=g_ba)
    if obj.get("format") == CONDITIONAL_FORMAT:
        cfg = obj["config"]
        net = ConditionalResnetGenerator(cfg["n_domains"], cfg["ngf"], cfg["n_blocks"])
        net.load_state_dict(obj["state_dict"], strict=True)
        return LoadedGenerator(net.eval(), tuple(obj["domains"]), True, path)
    state = obj if "model.1.weight" in obj else obj.get("state_dict", obj)
    return LoadedGenerator(generator_from_state_dict(state).eval(), (), False, path)


def load_generator(checkpoint: str | os.PathLike, *,
                   device: str | torch.device = "cpu") -> LoadedGenerator:
    """Load (or fetch from the per-process cache) the generator in ``checkpoint``.

    Args:
        checkpoint: registry name or file (see the module docstring).
        device: where the network lives.

    Raises:
        FileNotFoundError: no such file (``MissingWeightsError`` for a
            registered name whose file is absent).
        ValueError: unreadable file, or not a known generator layout.
    """
    path = _resolve(checkpoint).resolve()
    st = path.stat()
    dev = torch.device(device)
    key = (str(path), st.st_mtime_ns, st.st_size, str(dev))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    loaded = _build(path)
    for net in loaded.modules():
        net.to(dev)
        for p in net.parameters():
            p.requires_grad_(False)
    _CACHE[key] = loaded
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return loaded


def clear_generator_cache() -> None:
    """Drop all cached generators (frees their memory)."""
    _CACHE.clear()


@torch.no_grad()
def cyclegan_transfer(content: torch.Tensor, checkpoint: str | os.PathLike, *,
                      target_culture: str | None = None,
                      device: str | torch.device | None = None) -> torch.Tensor:
    """Translate images with a CycleGAN or culture-conditioned generator.

    Images are padded (reflection) to a multiple of 4 for the generator's
    two downsamplings and cropped back, and converted to the generators'
    [-1, 1] convention and back.

    Args:
        content: ``(B, 3, H, W)`` images in [0, 1].
        checkpoint: registry name or generator file (see the module docstring).
        target_culture: target domain name; required for a conditional
            generator, optional for a CycleGAN training checkpoint, and not
            allowed for a plain single-direction generator file.
        device: where the generator runs (default: ``content``'s device).

    Returns:
        ``(B, 3, H, W)`` in [0, 1], on ``content``'s device and dtype.

    Raises:
        TypeError, ShapeError, ValueError: bad ``content``; unknown or missing
            ``target_culture``; unreadable checkpoint.
        FileNotFoundError: no such checkpoint.

    Example:
        >>> import tempfile
        >>> from stylecore.gan.networks import ResnetGenerator
        >>> f = tempfile.mktemp(suffix=".pth")
        >>> torch.save(ResnetGenerator(ngf=4, n_blocks=1).state_dict(), f)
        >>> cyclegan_transfer(torch.rand(1, 3, 30, 21), f).shape
        torch.Size([1, 3, 30, 21])
    """
    check_image(content, "content")
    gen = load_generator(checkpoint, device=content.device if device is None else device)
    net = gen.select(target_culture)
    dev = next(net.parameters()).device
    x, size = pad_to_multiple(content.to(dev, torch.float32), 4)
    if gen.conditional:
        index = _domain_index(gen.domains, target_culture, gen.source)
        y = net(to_gan_range(x), torch.full((x.shape[0],), index, device=dev))
    else:
        y = net(to_gan_range(x))
    return crop_to(from_gan_range(y), size).to(content.device, content.dtype)
