"""``python -m stylecore train cyclegan|conditional …``: train a GAN on image folders."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "train a CycleGAN or a culture-conditioned generator on image folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", choices=("cyclegan", "conditional"),
                        help="cyclegan: two domains A<->B; conditional: one generator for N domains")
    parser.add_argument("--domain-a", metavar="DIR", help="domain A images (e.g. photos)")
    parser.add_argument("--domain-b", metavar="DIR", help="domain B images (cyclegan)")
    parser.add_argument("--domains", nargs="+", default=[], metavar="[NAME=]DIR",
                        help="more domains for the conditional generator, e.g. "
                             "chinese=style/chinese japanese=style/japanese (name defaults "
                             "to the folder name)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder: checkpoint, generators, sample grids, loss log")
    parser.add_argument("--size", type=int, default=256, help="training crop size (default 256)")
    parser.add_argument("--load-size", type=int, help="shorter side before cropping "
                        "(default size*286/256)")
    parser.add_argument("--iters", type=int, default=20000, help="training iterations")
    parser.add_argument("--batch-size", type=int, default=1, help="images per domain per iteration")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1 …)")
    parser.add_argument("--amp", action="store_true", help="mixed precision")
    parser.add_argument("--ngf", type=int, default=64, help="generator width")
    parser.add_argument("--ndf", type=int, default=64, help="discriminator width")
    parser.add_argument("--n-blocks", type=int, help="residual blocks (default 9 at >=256 px, else 6)")
    parser.add_argument("--gan-loss", choices=("lsgan", "hinge", "nonsaturating"), default="lsgan",
                        help="adversarial loss (default lsgan, as CycleGAN)")
    parser.add_argument("--spectral-norm", action="store_true",
                        help="spectral normalisation in the discriminator")
    parser.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate")
    parser.add_argument("--lambda-cycle", type=float, default=10.0, help="cycle/reconstruction weight")
    parser.add_argument("--lambda-identity", type=float, default=0.5,
                        help="identity weight relative to --lambda-cycle")
    parser.add_argument("--lambda-cls", type=float, default=1.0,
                        help="domain-classification weight (conditional)")
    parser.add_argument("--pool-size", type=int, default=50, help="history pool size")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--sample-every", type=int, default=500, help="iterations between sample grids")
    parser.add_argument("--checkpoint-every", type=int, default=1000,
                        help="iterations between checkpoints")
    parser.add_argument("--no-resume", action="store_true",
                        help="start afresh even if OUT holds a checkpoint")
    parser.add_argument("--deterministic", action="store_true",
                        help="use deterministic algorithms (slower on GPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _domains(args: argparse.Namespace) -> dict[str, str]:
    named: dict[str, str] = {}
    folders = [f for f in (args.domain_a, args.domain_b) if f] + list(args.domains)
    for entry in folders:
        name, sep, folder = entry.partition("=")
        if not sep:
            name, folder = Path(entry).name, entry
        if name in named:
            raise ValueError(f"two domains are named {name!r}; name them with NAME=DIR")
        named[name] = folder
    if args.model == "cyclegan" and (not args.domain_a or not args.domain_b or args.domains):
        raise ValueError("cyclegan needs exactly --domain-a DIR and --domain-b DIR")
    if args.model == "conditional" and len(named) < 2:
        raise ValueError("conditional needs at least two domains (--domain-a and --domains …)")
    return named


def run(args: argparse.Namespace) -> int:
    from stylecore.gan.train import TrainConfig, train_gan

    config = TrainConfig(
        model=args.model, size=args.size, load_size=args.load_size, iters=args.iters,
        batch_size=args.batch_size, ngf=args.ngf, ndf=args.ndf, n_blocks=args.n_blocks,
        gan_loss=args.gan_loss, spectral_norm=args.spectral_norm, lr=args.lr,
        lambda_cycle=args.lambda_cycle, lambda_identity=args.lambda_identity,
        lambda_cls=args.lambda_cls, pool_size=args.pool_size, seed=args.seed,
        device=args.device, amp=args.amp, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, deterministic=args.deterministic,
        progress_bar=not args.quiet,
    )
    result = train_gan(config, _domains(args), args.out, resume=not args.no_resume)
    print(result.summary())
    for name, path in result.generators.items():
        print(f"generator {name}: {path}")
    return 0
