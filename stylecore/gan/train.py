"""Training: CycleGAN between two collections, or one culture-conditioned generator.

:func:`train_gan` is the single entry point for the CLI and for a worker task:

- ``config.model == "cyclegan"`` (Zhu et al., ICCV 2017): generators
  ``G_AB``/``G_BA``, PatchGAN discriminators ``D_A``/``D_B``, adversarial +
  cycle-consistency (λ = 10) + identity (0.5 λ) losses, a 50-image history
  pool per discriminator, Adam(2e-4, β1 = 0.5) and a learning rate constant
  for the first half of the iterations then decaying linearly to 0.
- ``config.model == "conditional"`` (StarGAN, Choi et al., CVPR 2018): one
  :class:`~stylecore.gan.networks.ConditionalResnetGenerator` maps an image of
  any domain to any other; the discriminator adds a domain-classification
  head, trained on real images' domains, whose loss on generated images
  pushes the generator towards the requested domain; reconstruction to the
  source domain replaces the cycle loss.

Everything that decides the next iteration lives in ``out_dir/latest.pt``:
model, optimiser, scheduler and grad-scaler states, the history pools, the
data samplers' generators and epoch orders, the global torch/CUDA/numpy/
Python RNG states and the loss history. Stopping (``should_stop``) or a crash
followed by :func:`train_gan` on the same ``out_dir`` continues from the last
checkpoint with the same losses as an uninterrupted run (bit-for-bit on CPU;
on GPU with ``deterministic=True`` up to the nondeterminism of CUDA kernels).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io import save_image
from .data import MIN_IMAGES, DomainSampler, ImageCollection, collections_from
from .losses import GAN_LOSSES, discriminator_loss, generator_loss
from .networks import (
    ConditionalResnetGenerator,
    PatchDiscriminator,
    ResnetGenerator,
    from_gan_range,
    init_weights,
    to_gan_range,
)
from .pool import ImagePool

__all__ = [
    "CHECKPOINT_NAME",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "latest_checkpoint",
    "train_gan",
]

CHECKPOINT_NAME = "latest.pt"
CHECKPOINT_FORMAT = "stylecore-gan-train/1"
CONDITIONAL_FORMAT = "stylecore-conditional-generator/1"
MODELS = ("cyclegan", "conditional")
# Settings that may change between a run and its resumption without changing
# what the networks are (iters changes only where the learning rate decays).
_RESUMABLE_CHANGES = {"iters", "sample_every", "checkpoint_every", "log_every",
                      "progress_bar", "device", "deterministic", "min_images"}


@dataclass
class TrainConfig:
    """Everything that defines a GAN training run (serialised into checkpoints).

    Attributes:
        model: ``"cyclegan"`` or ``"conditional"``.
        size: training crop side in pixels (multiple of 4).
        load_size: shorter side images are resized to before cropping;
            ``None`` → ``round(size * 286 / 256)`` as in CycleGAN.
        iters: total training iterations.
        batch_size: images per domain per iteration (CycleGAN uses 1).
        ngf, ndf: filters of the first generator / discriminator layer.
        n_blocks: residual blocks; ``None`` → 9 from 256 px up, else 6.
        d_layers: discriminator stride-2 layers (3 → 70×70 patches).
        norm: generator norm of the CycleGAN generator (``"instance"``…).
        d_norm: discriminator norm.
        gan_loss: ``"lsgan"``, ``"hinge"`` or ``"nonsaturating"``.
        spectral_norm: spectral normalisation on the discriminator's convs.
        lr, beta1, beta2: Adam settings for both networks.
        decay_start: fraction of ``iters`` at constant learning rate before the
            linear decay to 0.
        lambda_cycle: weight of the cycle (or reconstruction) L1 loss.
        lambda_identity: identity-loss weight relative to ``lambda_cycle``.
        lambda_cls: weight of the domain-classification losses (conditional).
        pool_size: history-pool capacity (0 disables it).
        seed: seeds weights, data order, crops and pools.
        device: torch device string.
        amp: mixed precision (float16 with loss scaling on CUDA, bfloat16 on CPU).
        sample_every, checkpoint_every: iterations between sample grids /
            checkpoints (0 disables; a checkpoint is always written at the end).
        log_every: iterations between progress-bar and callback updates.
        deterministic: ``torch.use_deterministic_algorithms`` during training.
        progress_bar: show a tqdm bar on stderr.
        min_images: warn when a collection holds fewer images.
    """

    model: str = "cyclegan"
    size: int = 256
    load_size: int | None = None
    iters: int = 20000
    batch_size: int = 1
    ngf: int = 64
    ndf: int = 64
    n_blocks: int | None = None
    d_layers: int = 3
    norm: str = "instance"
    d_norm: str = "instance"
    gan_loss: str = "lsgan"
    spectral_norm: bool = False
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    lambda_cls: float = 1.0
    pool_size: int = 50
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 10
    deterministic: bool = False
    progress_bar: bool = True
    min_images: int = MIN_IMAGES

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {GAN_LOSSES}, got {self.gan_loss!r}")
        if self.size < 16 or self.size % 4:
            raise ValueError(f"size must be a multiple of 4 and >= 16, got {self.size}")
        if self.load_size is None:
            self.load_size = round(self.size * 286 / 256)
        if self.load_size < self.size:
            raise ValueError(f"load_size {self.load_size} is smaller than size {self.size}")
        if self.n_blocks is None:
            self.n_blocks = 9 if self.size >= 256 else 6
        if self.iters < 1:
            raise ValueError(f"iters must be >= 1, got {self.iters}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ValueError(f"decay_start must be in [0, 1], got {self.decay_start}")
        for name in ("batch_size", "ngf", "ndf", "d_layers", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class TrainProgress:
    """What a progress callback receives.

    Attributes:
        iteration: iterations completed.
        total: iterations planned.
        losses: the latest iteration's losses by name.
        seconds_per_iter: mean over this session's iterations so far.
        eta_seconds: estimated seconds to finish.
        checkpoint: path of the checkpoint just written, else ``None``.
        sample_grid: path of the sample grid just written, else ``None``.
    """

    iteration: int
    total: int
    losses: dict[str, float]
    seconds_per_iter: float
    eta_seconds: float
    checkpoint: Path | None = None
    sample_grid: Path | None = None

    @property
    def fraction(self) -> float:
        return self.iteration / self.total


@dataclass
class TrainResult:
    """Outcome of :func:`train_gan`.

    Attributes:
        out_dir: the output folder.
        iteration: iterations completed (all sessions together).
        total: iterations planned.
        stopped: ``should_stop`` ended the run early.
        resumed_from: iteration the run resumed from (0 for a fresh run).
        losses: per-iteration losses of the whole run, index ``i`` = iteration ``i + 1``.
        checkpoint: the training checkpoint (resume from it).
        generators: exported generators for inference by name
            (``"A2B"``/``"B2A"`` or ``"conditional"``).
        domains: domain names in label order.
        seconds_per_iter: mean seconds per iteration of this session.
    """

    out_dir: Path
    iteration: int
    total: int
    stopped: bool
    resumed_from: int
    losses: list[dict[str, float]]
    checkpoint: Path
    generators: dict[str, Path]
    domains: list[str]
    seconds_per_iter: float = math.nan
    sample_grids: list[Path] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.iteration >= self.total

    def loss_curve(self, name: str) -> np.ndarray:
        """One loss over iterations as a float array."""
        return np.array([row[name] for row in self.losses], dtype=np.float64)

    def summary(self) -> str:
        state = "stopped" if self.stopped else ("finished" if self.finished else "interrupted")
        last = self.losses[-1] if self.losses else {}
        parts = ", ".join(f"{k} {v:.3f}" for k, v in last.items())
        return (f"{state} at iteration {self.iteration}/{self.total} "
                f"({self.seconds_per_iter:.3f} s/it); last losses: {parts}; "
                f"checkpoint {self.checkpoint}")


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The resumable checkpoint in ``out_dir``, or ``None``."""
    path = Path(out_dir) / CHECKPOINT_NAME
    return path if path.is_file() else None


# --------------------------------------------------------------------------- RNG


def _rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4])},
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------- the models


class _Trainer:
    """Shared machinery: optimisers, schedule, AMP; subclasses define the step."""

    def __init__(self, config: TrainConfig, collections: list[ImageCollection],
                 device: torch.device) -> None:
        self.config, self.collections, self.device = config, collections, device
        self.domains = [c.name for c in collections]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.nets = self.build()
        for net in self.nets.values():
            net.to(device)
        self.samplers = [DomainSampler(c, config.size, config.batch_size, seed=config.seed + 1 + i)
                         for i, c in enumerate(collections)]
        self.step_generator = torch.Generator().manual_seed(config.seed + 1000)
        g_params = itertools.chain(*(n.parameters() for k, n in self.nets.items() if k.startswith("G")))
        d_params = itertools.chain(*(n.parameters() for k, n in self.nets.items() if k.startswith("D")))
        betas = (config.beta1, config.beta2)
        self.optimizers = {"G": torch.optim.Adam(g_params, lr=config.lr, betas=betas),
                           "D": torch.optim.Adam(d_params, lr=config.lr, betas=betas)}
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, self._lr_factor)
                           for k, o in self.optimizers.items()}
        self.use_scaler = config.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.use_scaler)
        self.amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def _lr_factor(self, it: int) -> float:
        # CycleGAN: constant, then linear decay reaching 0 after the last iteration.
        total = self.config.iters
        start = int(round(self.config.decay_start * total))
        return 1.0 - max(0, it - start) / float(total - start + 1)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.config.amp)

    def backward_step(self, loss: torch.Tensor, name: str) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)

    def finish_iteration(self) -> None:
        self.scaler.update()
        for s in self.schedulers.values():
            s.step()

    @staticmethod
    def set_requires_grad(nets: Sequence[nn.Module], flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    def batch(self, index: int) -> torch.Tensor:
        return to_gan_range(self.samplers[index].next().to(self.device))

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {k: n.state_dict() for k, n in self.nets.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.use_scaler else None,
            "samplers": [s.state_dict() for s in self.samplers],
            "step_generator": self.step_generator.get_state(),
            "pools": {k: p.state_dict() for k, p in self.pools().items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, n in self.nets.items():
            n.load_state_dict(state["nets"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        if self.use_scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for s, st in zip(self.samplers, state["samplers"]):
            s.load_state_dict(st)
        self.step_generator.set_state(state["step_generator"])
        for k, p in self.pools().items():
            p.load_state_dict(state["pools"][k], self.device)

    def pools(self) -> dict[str, ImagePool]:
        return {}

    def build(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def step(self) -> dict[str, float]:
        raise NotImplementedError

    def sample_grid(self) -> torch.Tensor:
        raise NotImplementedError

    def export(self, out_dir: Path) -> dict[str, Path]:
        raise NotImplementedError


class _CycleGAN(_Trainer):
    def build(self) -> dict[str, nn.Module]:
        c = self.config
        def gen() -> nn.Module:
            return init_weights(ResnetGenerator(3, 3, c.ngf, c.n_blocks, c.norm))

        def disc() -> nn.Module:
            return init_weights(PatchDiscriminator(3, c.ndf, c.d_layers, c.d_norm, c.spectral_norm))

        return {"G_AB": gen(), "G_BA": gen(), "D_A": disc(), "D_B": disc()}

    def __init__(self, config: TrainConfig, collections: list[ImageCollection],
                 device: torch.device) -> None:
        if len(collections) != 2:
            raise ValueError(f"cyclegan trains between 2 collections, got {len(collections)}")
        super().__init__(config, collections, device)
        self._pools = {"A": ImagePool(config.pool_size, seed=config.seed + 2000),
                       "B": ImagePool(config.pool_size, seed=config.seed + 2001)}

    def pools(self) -> dict[str, ImagePool]:
        return self._pools

    def step(self) -> dict[str, float]:
        c, n = self.config, self.nets
        real_a, real_b = self.batch(0), self.batch(1)
        lam_idt = c.lambda_cycle * c.lambda_identity
        self.set_requires_grad([n["D_A"], n["D_B"]], False)
        with self.autocast():
            fake_b = n["G_AB"](real_a)
            rec_a = n["G_BA"](fake_b)
            fake_a = n["G_BA"](real_b)
            rec_b = n["G_AB"](fake_a)
            adv_ab = generator_loss(n["D_B"](fake_b), c.gan_loss)
            adv_ba = generator_loss(n["D_A"](fake_a), c.gan_loss)
            cyc_a = F.l1_loss(rec_a.float(), real_a)
            cyc_b = F.l1_loss(rec_b.float(), real_b)
            loss_g = adv_ab + adv_ba + c.lambda_cycle * (cyc_a + cyc_b)
            if lam_idt > 0:
                idt_a = F.l1_loss(n["G_BA"](real_a).float(), real_a)
                idt_b = F.l1_loss(n["G_AB"](real_b).float(), real_b)
                loss_g = loss_g + lam_idt * (idt_a + idt_b)
            else:
                idt_a = idt_b = torch.zeros((), device=self.device)
        self.backward_step(loss_g, "G")
        self.set_requires_grad([n["D_A"], n["D_B"]], True)
        with self.autocast():
            pool_b = self._pools["B"].query(fake_b)
            pool_a = self._pools["A"].query(fake_a)
            d_b = 0.5 * discriminator_loss(n["D_B"](real_b), n["D_B"](pool_b), c.gan_loss)
            d_a = 0.5 * discriminator_loss(n["D_A"](real_a), n["D_A"](pool_a), c.gan_loss)
        self.backward_step(d_a + d_b, "D")
        self.finish_iteration()
        values = torch.stack([adv_ab, adv_ba, cyc_a, cyc_b, idt_a, idt_b, d_a, d_b]).detach()
        names = ("G_AB", "G_BA", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B")
        return dict(zip(names, values.float().cpu().tolist()))

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        a = to_gan_range(self.collections[0].center_crops(self.config.size, 4).to(self.device))
        b = to_gan_range(self.collections[1].center_crops(self.config.size, 4).to(self.device))
        g_ab, g_ba = self.nets["G_AB"], self.nets["G_BA"]
        modes = [g_ab.training, g_ba.training]
        g_ab.eval(), g_ba.eval()
        fb, fa = g_ab(a), g_ba(b)
        rows = [a, fb, g_ba(fb), b, fa, g_ab(fa)]
        g_ab.train(modes[0]), g_ba.train(modes[1])
        return _grid(rows)

    def export(self, out_dir: Path) -> dict[str, Path]:
        paths = {}
        for key, net in (("A2B", "G_AB"), ("B2A", "G_BA")):
            sd = {k: v.detach().cpu() for k, v in self.nets[net].state_dict().items()}
            paths[key] = _atomic_save(sd, out_dir / f"G_{key}.pth")
        return paths


class _Conditional(_Trainer):
    def build(self) -> dict[str, nn.Module]:
        c, n = self.config, len(self.collections)
        return {"G": init_weights(ConditionalResnetGenerator(n, c.ngf, c.n_blocks)),
                "D": init_weights(PatchDiscriminator(3, c.ndf, c.d_layers, c.d_norm,
                                                     c.spectral_norm, n_classes=n))}

    def __init__(self, config: TrainConfig, collections: list[ImageCollection],
                 device: torch.device) -> None:
        if len(collections) < 2:
            raise ValueError(f"the conditional generator needs >= 2 collections, got {len(collections)}")
        super().__init__(config, collections, device)

    def step(self) -> dict[str, float]:
        c, g, d = self.config, self.nets["G"], self.nets["D"]
        n_dom, bs = len(self.collections), c.batch_size
        src = torch.randint(n_dom, (bs,), generator=self.step_generator)
        # A different target for every image: (src + k) mod N with k in 1..N-1.
        trg = (src + torch.randint(1, n_dom, (bs,), generator=self.step_generator)) % n_dom
        real = to_gan_range(torch.stack([self.samplers[int(i)].draw() for i in src]).to(self.device))
        src, trg = src.to(self.device), trg.to(self.device)
        self.set_requires_grad([d], False)
        with self.autocast():
            fake = g(real, trg)
            adv_src, cls_fake = d(fake)
            adv = generator_loss(adv_src, c.gan_loss)
            cls_g = F.cross_entropy(cls_fake.float(), trg)
            rec = F.l1_loss(g(fake, src).float(), real)
            loss_g = adv + c.lambda_cls * cls_g + c.lambda_cycle * rec
            lam_idt = c.lambda_cycle * c.lambda_identity
            if lam_idt > 0:
                idt = F.l1_loss(g(real, src).float(), real)
                loss_g = loss_g + lam_idt * idt
            else:
                idt = torch.zeros((), device=self.device)
        self.backward_step(loss_g, "G")
        self.set_requires_grad([d], True)
        with self.autocast():
            src_real, cls_real = d(real)
            src_fake, _ = d(fake.detach())
            d_adv = 0.5 * discriminator_loss(src_real, src_fake, c.gan_loss)
            cls_d = F.cross_entropy(cls_real.float(), src)
            loss_d = d_adv + c.lambda_cls * cls_d
        self.backward_step(loss_d, "D")
        self.finish_iteration()
        values = torch.stack([adv, cls_g, rec, idt, d_adv, cls_d]).detach()
        names = ("G_adv", "G_cls", "rec", "idt", "D_adv", "D_cls")
        return dict(zip(names, values.float().cpu().tolist()))

    @torch.no_grad()
    def sample_grid(self) -> torch.Tensor:
        g = self.nets["G"]
        mode = g.training
        g.eval()
        x = torch.cat([c.center_crops(self.config.size, 2) for c in self.collections])
        x = to_gan_range(x.to(self.device))
        rows = [x] + [g(x, torch.full((x.shape[0],), k, device=self.device))
                      for k in range(len(self.collections))]
        g.train(mode)
        return _grid(rows)

    def export(self, out_dir: Path) -> dict[str, Path]:
        g = self.nets["G"]
        payload = {"format": CONDITIONAL_FORMAT, "domains": list(self.domains),
                   "config": dict(g.config),
                   "state_dict": {k: v.detach().cpu() for k, v in g.state_dict().items()}}
        return {"conditional": _atomic_save(payload, out_dir / "generator_conditional.pt")}


def _grid(rows: list[torch.Tensor]) -> torch.Tensor:
    from torchvision.utils import make_grid

    imgs = torch.cat([from_gan_range(r.float()).cpu() for r in rows])
    return make_grid(imgs, nrow=rows[0].shape[0], padding=2, pad_value=1.0)[None]


def _atomic_save(obj: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------- the loop


DomainSources = Mapping[str, Any] | Sequence[Any]


def _named_sources(domains: DomainSources) -> list[tuple[str, Any]]:
    if isinstance(domains, Mapping):
        return list(domains.items())
    out = []
    for i, src in enumerate(domains):
        if isinstance(src, ImageCollection):
            out.append((src.name, src))
        elif isinstance(src, (str, os.PathLike)):
            out.append((Path(src).name or f"domain{i}", src))
        else:
            raise TypeError(f"domain {i} must be a folder, a file list or an ImageCollection; "
                            "pass file lists in a {name: files} mapping")
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"domain names must differ, got {names}; pass a {{name: folder}} mapping")
    return out


def train_gan(
    config: TrainConfig,
    domains: DomainSources,
    out_dir: str | os.PathLike,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = True,
) -> TrainResult:
    """Train (or resume training) a CycleGAN or a culture-conditioned generator.

    Args:
        config: the run's settings.
        domains: the image collections, in order: a ``{name: folder or file
            list}`` mapping, or a sequence of folders / :class:`ImageCollection`
            (named after the folder). CycleGAN takes exactly two (A, B); the
            conditional generator takes two or more, e.g. photos plus one
            collection per culture, and names them as its target labels.
        out_dir: where ``latest.pt`` (resumable checkpoint), exported
            generators (``G_A2B.pth``/``G_B2A.pth`` in the official CycleGAN
            layout, or ``generator_conditional.pt``), ``samples/iter_*.png``
            grids and ``losses.jsonl`` go.
        progress: called every ``config.log_every`` iterations, at each
            checkpoint and at the end, with a :class:`TrainProgress`.
        should_stop: polled before every iteration; when it returns ``True``
            a checkpoint is written and the function returns with
            ``stopped=True`` (a later call resumes).
        resume: continue from ``out_dir/latest.pt`` when it exists; ``False``
            starts afresh (overwriting it).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ValueError: bad settings, an empty or unreadable collection (naming
            the file), or a checkpoint from an incompatible configuration.
        FileNotFoundError: a collection folder does not exist.
        FloatingPointError: a loss became NaN or infinite.
    """
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    named = _named_sources(domains)
    collections = [src if isinstance(src, ImageCollection)
                   else collections_from([(name, src)], config.load_size, config.min_images)[0]
                   for name, src in named]
    for coll in collections:
        if coll.load_size < config.size:
            raise ValueError(f"collection {coll.name!r} has load_size {coll.load_size} < size {config.size}")
    trainer_cls = _CycleGAN if config.model == "cyclegan" else _Conditional
    trainer = trainer_cls(config, collections, device)

    history: list[dict[str, float]] = []
    start = 0
    ckpt_path = out / CHECKPOINT_NAME
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        _check_compatible(ckpt, config, trainer.domains, ckpt_path)
        trainer.load_state_dict(ckpt["trainer"])
        _set_rng_state(ckpt["rng"], device)
        history = list(ckpt["losses"])
        start = int(ckpt["iteration"])

    def save_checkpoint(it: int) -> Path:
        payload = {"format": CHECKPOINT_FORMAT, "config": config.to_dict(),
                   "domains": trainer.domains, "iteration": it, "trainer": trainer.state_dict(),
                   "rng": _rng_state(device), "losses": history}
        path = _atomic_save(payload, ckpt_path)
        trainer.export(out)
        return path

    previous_det = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    bar = _progress_bar(config, start)
    grids: list[Path] = []
    stopped = False
    it = start
    t0 = time.perf_counter()
    try:
        with (out / "losses.jsonl").open("w") as log:
            # Rewritten from the checkpoint so iterations lost in a crash are not logged twice.
            for i, row in enumerate(history, 1):
                log.write(json.dumps({"iteration": i, **row}) + "\n")
            while it < config.iters:
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                losses = trainer.step()
                it += 1
                if not all(math.isfinite(v) for v in losses.values()):
                    raise FloatingPointError(
                        f"a loss became non-finite at iteration {it}: {losses}; lower the "
                        "learning rate or enable spectral_norm"
                    )
                history.append(losses)
                log.write(json.dumps({"iteration": it, **losses}) + "\n")
                bar.update(1)
                ckpt = grid = None
                if config.sample_every and it % config.sample_every == 0:
                    grid = save_image(trainer.sample_grid(), out / "samples" / f"iter_{it:07d}.png")
                    grids.append(grid)
                if config.checkpoint_every and it % config.checkpoint_every == 0 and it < config.iters:
                    log.flush()
                    ckpt = save_checkpoint(it)
                if it % config.log_every == 0 or ckpt or grid or it == config.iters:
                    bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
                    if progress is not None:
                        progress(_progress(it, config.iters, losses, t0, start, ckpt, grid))
    finally:
        bar.close()
        torch.use_deterministic_algorithms(previous_det)
    elapsed = time.perf_counter() - t0
    ckpt_file = save_checkpoint(it)
    exports = {k: v for k, v in _export_paths(out, config.model).items() if v.is_file()}
    spi = elapsed / (it - start) if it > start else math.nan
    if progress is not None:
        progress(_progress(it, config.iters, history[-1] if history else {}, t0, start,
                           ckpt_file, None))
    return TrainResult(out, it, config.iters, stopped, start, history, ckpt_file, exports,
                       trainer.domains, spi, grids)


def _export_paths(out: Path, model: str) -> dict[str, Path]:
    if model == "cyclegan":
        return {"A2B": out / "G_A2B.pth", "B2A": out / "G_B2A.pth"}
    return {"conditional": out / "generator_conditional.pt"}


def _progress(it: int, total: int, losses: dict[str, float], t0: float, start: int,
              ckpt: Path | None, grid: Path | None) -> TrainProgress:
    done = it - start
    spi = (time.perf_counter() - t0) / done if done else math.nan
    eta = spi * (total - it) if done else math.nan
    return TrainProgress(it, total, dict(losses), spi, eta, ckpt, grid)


def _progress_bar(config: TrainConfig, start: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=config.iters, initial=start, unit="it", desc=config.model,
                disable=not config.progress_bar, dynamic_ncols=True, mininterval=1.0)


def _check_compatible(ckpt: Mapping[str, Any], config: TrainConfig, domains: list[str],
                      path: Path) -> None:
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a stylecore GAN training checkpoint")
    old = dict(ckpt["config"])
    new = config.to_dict()
    diff = sorted(k for k in new if k not in _RESUMABLE_CHANGES and old.get(k) != new[k])
    if diff:
        detail = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in diff)
        raise ValueError(
            f"cannot resume from {path}: settings differ ({detail}); use another output "
            "folder or resume=False to start afresh"
        )
    if list(ckpt["domains"]) != domains:
        raise ValueError(f"cannot resume from {path}: it was trained on domains "
                         f"{list(ckpt['domains'])}, not {domains}")
    if ckpt["iteration"] > config.iters:
        warnings.warn(f"{path} is at iteration {ckpt['iteration']}, beyond iters={config.iters}",
                      stacklevel=3)
