"""Seconds per GAN training iteration at 128 and 256 px.

    python bench/gan_bench.py                     # CPU, fp32
    python bench/gan_bench.py --device cuda --amp # GPU, fp32 baseline and AMP in one run

Times full training iterations (both generators and discriminators, forward,
backward and Adam steps) through :func:`stylecore.gan.train_gan` on random
images, skipping warm-up iterations; prints the median seconds per iteration
and, with ``--amp``, the speed-up of mixed precision over the fp32 baseline
measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stylecore.gan import TrainConfig, train_gan  # noqa: E402
from stylecore.io import save_image  # noqa: E402


def _images(root: Path, n: int, side: int) -> list[Path]:
    gen = torch.Generator().manual_seed(0)
    folders = []
    for name in ("a", "b", "c"):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(n):
            x = torch.rand(1, 3, 16, 16, generator=gen)
            x = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear")
            save_image(x, folder / f"{i}.png")
        folders.append(folder)
    return folders


def time_config(cfg: TrainConfig, folders: list[Path], out: Path, warmup: int) -> float:
    stamps: list[float] = []

    def tick(_progress) -> None:
        if cfg.device.startswith("cuda"):
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doms = folders[:2] if cfg.model == "cyclegan" else folders
        train_gan(cfg, doms, out, progress=tick, resume=False)
    steps = [b - a for a, b in zip(stamps, stamps[1:])][warmup:cfg.iters - 1]
    return statistics.median(steps)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--amp", action="store_true", help="also time mixed precision")
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="crop sizes")
    p.add_argument("--iters", type=int, default=8, help="timed iterations per setting")
    p.add_argument("--warmup", type=int, default=2, help="iterations not timed")
    p.add_argument("--batch-size", type=int, default=1, help="images per domain")
    p.add_argument("--model", choices=("cyclegan", "conditional"), default="cyclegan")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{args.model}, batch {args.batch_size}, device {args.device} ({name}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{'size':>5} {'blocks':>6} {'precision':>9} {'s/it':>9} {'it/s':>7} {'vs fp32':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = _images(root / "data", 4, max(args.sizes) * 286 // 256 + 1)
        for size in args.sizes:
            base = None
            for amp in ([False, True] if args.amp else [False]):
                cfg = TrainConfig(model=args.model, size=size, iters=args.iters + args.warmup + 1,
                                  batch_size=args.batch_size, device=args.device, amp=amp,
                                  sample_every=0, checkpoint_every=0, progress_bar=False,
                                  log_every=1, min_images=1)
                spi = time_config(cfg, folders, root / f"out{size}{amp}", args.warmup)
                base = base or spi
                prec = "amp" if amp else "fp32"
                print(f"{size:>5} {cfg.n_blocks:>6} {prec:>9} {spi:>9.4f} {1 / spi:>7.2f} "
                      f"{base / spi:>7.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
